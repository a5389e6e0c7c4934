package sqlite

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/lock/locktest"
)

// Embedded mode is one process: every handle of a test is the one database's backend.
func lockFactory(t testing.TB) func() lock.Backend {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func() lock.Backend { return db.Locks() }
}

func TestLockConformance(t *testing.T) { locktest.Run(t, lockFactory) }

// TestLocksReleasedOnOpen: a process that died holding a lease does not keep the next process
// of the data directory waiting, and tokens carry on from where they were.
func TestLocksReleasedOnOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := db.Locks().TryAcquire(ctx, "ledger", "old-process", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // as if killed: the lease was never released
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g2, err := db.Locks().TryAcquire(ctx, "ledger", "new-process", time.Hour)
	if err != nil {
		t.Fatalf("the restarted process waits for a dead one: %v", err)
	}
	if g2.Token <= g.Token || g2.Previous != "" {
		t.Fatalf("grant after restart = %+v; want a token above %d and no previous holder", g2, g.Token)
	}
	if err := db.Locks().Renew(ctx, "ledger", "old-process", g.Token, time.Hour); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("dead process's lease renewed: %v", err)
	}
}
