package postgres

import (
	"context"
	"testing"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

// Factory is the conformance-suite factory for PostgreSQL: a fresh schema per test, migrated
// on the first open. It skips the test when FINCORE_TEST_POSTGRES is unset.
func Factory(t testing.TB) func() ledger.Store {
	url := pgtest.URL(t)
	migrated := false
	return func() ledger.Store {
		st, err := OpenLedger(context.Background(), url, !migrated)
		if err != nil {
			t.Fatalf("open postgres ledger: %v", err)
		}
		migrated = true
		return st
	}
}

func TestLedgerConformance(t *testing.T) { storetest.TestLedger(t, Factory) }

// TestLedgerConformanceCopy runs the suite again with every commit sent by COPY, the path
// that large groups take.
func TestLedgerConformanceCopy(t *testing.T) {
	defer func(old int) { smallCommitMax = old }(smallCommitMax)
	smallCommitMax = 0
	storetest.TestLedger(t, Factory)
	storetest.TestLedgerExpiryTimers(t, Factory)
}

func TestLedgerExpiryTimers(t *testing.T) { storetest.TestLedgerExpiryTimers(t, Factory) }

func TestExpiryTimerBackfill(t *testing.T) {
	storetest.TestExpiryTimerBackfill(t, Factory, Migrations, func(st ledger.Store, q string) error {
		_, err := st.(ownedLedger).db.pool.Exec(context.Background(), q)
		return err
	})
}
