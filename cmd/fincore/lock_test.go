package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/store/sqlite"
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

// TestSetupAsWriter: a standby defers a module's set-up writes until it becomes the ledger
// writer, then runs them.
func TestSetupAsWriter(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	locker := lock.New(lock.NewMemory(), lock.Options{Logger: log, Poll: 10 * time.Millisecond})
	open := func(holder string) *ledger.Engine {
		e, err := ledger.Open(ctx, st, ledger.Config{Logger: log, Lessor: ledgerLessor{l: locker, holder: holder, ttl: time.Hour}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a := open("A")
	b := open("B")
	defer b.Close()
	if !a.Writable() || b.Writable() {
		t.Fatalf("writable: A %v, B %v; want A only", a.Writable(), b.Writable())
	}
	var calls atomic.Int32
	setup := func(ctx context.Context) error {
		calls.Add(1)
		_, err := b.CreateAccounts(ctx, []ledger.AccountInput{{ID: "clearing", Currency: "CNY"}})
		return err
	}
	if err := setupAsWriter(ctx, b, log, "test", setup); err != nil {
		t.Fatalf("setup on a standby: %v", err)
	}
	if _, err := b.Account(ctx, "clearing"); err == nil {
		t.Fatal("the standby wrote")
	}
	a.Close() // releases the lease: B takes over and runs the setup
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := b.Account(ctx, "clearing"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("setup never ran on the new writer (%d calls)", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Other errors are returned at once.
	boom := errors.New("boom")
	if err := setupAsWriter(ctx, b, log, "test", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("setupAsWriter = %v, want boom", err)
	}
}
