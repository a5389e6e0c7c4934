package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/obs"
)

// TestLockFlags: embedded storage takes no lease unless asked, and wrong combinations are
// refused before anything starts.
func TestLockFlags(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name     string
		lf       lockFlags
		postgres string
		err      string // "" for no error and no lessor
	}{
		{"embedded auto", lockFlags{backend: "auto", ttl: 10 * time.Second}, "", ""},
		{"none", lockFlags{backend: "none", ttl: 10 * time.Second}, "postgres://x", ""},
		{"postgres without postgres", lockFlags{backend: "postgres", ttl: 10 * time.Second}, "", "needs --postgres"},
		{"nats without postgres", lockFlags{backend: "nats", ttl: 10 * time.Second}, "", "needs --postgres"},
		{"unknown", lockFlags{backend: "zookeeper", ttl: 10 * time.Second}, "", "must be auto"},
		{"ttl too short", lockFlags{backend: "postgres", ttl: time.Millisecond}, "postgres://x", "--lease-ttl"},
		{"holder with a newline", lockFlags{backend: "postgres", ttl: time.Second, instance: "a\nb"}, "postgres://x", "--instance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sf := &storeFlags{data: t.TempDir(), postgres: tc.postgres}
			st := lockProviderStub{}
			l, err := tc.lf.lessor(t.Context(), sf, st, nil, obs.New(), log)
			if tc.err == "" {
				if err != nil || l != nil {
					t.Fatalf("lessor = %v, %v; want none", l, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.err)
			}
		})
	}
}

// lockProviderStub is a store whose database holds locks (in memory); nothing else is used.
type lockProviderStub struct{ ledger.Store }

func (lockProviderStub) Locks() lock.Backend { return lock.NewMemory() }
