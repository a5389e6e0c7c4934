package lock_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/lock/locktest"
)

func TestMemoryConformance(t *testing.T) {
	locktest.Run(t, func(t testing.TB) func() lock.Backend {
		m := lock.NewMemory()
		return func() lock.Backend { return m }
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name, lockName, holder string
		ttl                    time.Duration
		ok                     bool
	}{
		{"ok", "ledger.writer-1_a", "host:1", time.Second, true},
		{"empty name", "", "h", time.Second, false},
		{"long name", strings.Repeat("a", lock.NameMax+1), "h", time.Second, false},
		{"max name", strings.Repeat("a", lock.NameMax), "h", time.Second, true},
		{"name with space", "a b", "h", time.Second, false},
		{"name with slash", "a/b", "h", time.Second, false},
		{"empty holder", "a", "", time.Second, false},
		{"long holder", "a", strings.Repeat("h", lock.HolderMax+1), time.Second, false},
		{"holder with newline", "a", "h\n", time.Second, false},
		{"holder with invalid utf-8", "a", "h\xff", time.Second, false},
		{"ttl too short", "a", "h", lock.MinTTL - 1, false},
		{"ttl too long", "a", "h", lock.MaxTTL + 1, false},
		{"ttl bounds", "a", "h", lock.MinTTL, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := lock.Validate(tc.lockName, tc.holder, tc.ttl)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	l := lock.New(lock.NewMemory(), lock.Options{})
	if _, err := l.TryAcquire(t.Context(), "bad name", "h", time.Second); err == nil {
		t.Fatal("TryAcquire accepted an invalid name")
	}
}
