package sqlite

import (
	"testing"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/storetest"
)

// Factory is the conformance-suite factory for SQLite: a fresh directory per test.
func Factory(t testing.TB) func() ledger.Store {
	dir := t.TempDir()
	return func() ledger.Store {
		st, err := OpenLedger(dir)
		if err != nil {
			t.Fatalf("open sqlite ledger: %v", err)
		}
		return st
	}
}

func TestLedgerConformance(t *testing.T) { storetest.TestLedger(t, Factory) }

func TestLedgerExpiryTimers(t *testing.T) { storetest.TestLedgerExpiryTimers(t, Factory) }

func TestExpiryTimerBackfill(t *testing.T) {
	storetest.TestExpiryTimerBackfill(t, Factory, Migrations, func(st ledger.Store, q string) error {
		_, err := st.(ownedLedger).db.write.Exec(q)
		return err
	})
}
