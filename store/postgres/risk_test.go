package postgres

import (
	"testing"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

func openRisk(t testing.TB) risk.Store {
	db := openDB(t, pgtest.URL(t))
	if err := db.Migrate(bg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db.Risk()
}

func TestRiskStore(t *testing.T) { storetest.TestRiskStore(t, openRisk) }

// BenchmarkRiskLog: the cost of logging one decided event; see storetest.BenchRiskLog.
//
//	FINCORE_TEST_POSTGRES=... go test ./store/postgres -run '^$' -bench RiskLog -benchtime 200000x
func BenchmarkRiskLog(b *testing.B) { storetest.BenchRiskLog(b, openRisk(b)) }

func TestRiskDecisionsBackfill(t *testing.T) {
	db := openDB(t, pgtest.URL(t))
	if err := db.Migrate(bg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	storetest.TestRiskDecisionsBackfill(t, db.Risk(), Migrations, func(q string) error {
		_, err := db.pool.Exec(bg, q)
		return err
	})
}
