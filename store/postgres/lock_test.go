package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/lock/locktest"
	"github.com/fincore/fincore/store/postgres/pgtest"
)

// lockFactory gives each test a fresh schema; each handle is its own connection pool, as each
// process has one.
func lockFactory(t testing.TB) func() lock.Backend {
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(first.Close)
	if err := first.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return func() lock.Backend {
		db, err := Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		return db.Locks()
	}
}

func TestLockConformance(t *testing.T) { locktest.Run(t, lockFactory) }
