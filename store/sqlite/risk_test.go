package sqlite

import (
	"testing"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/storetest"
)

// OpenRisk opens a fresh database in a temporary directory and returns its risk store.
func OpenRisk(t testing.TB) risk.Store {
	t.Helper()
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Risk()
}

func TestRiskStore(t *testing.T) { storetest.TestRiskStore(t, OpenRisk) }

// BenchmarkRiskLog: the cost of logging one decided event; see storetest.BenchRiskLog.
//
//	go test ./store/sqlite -run '^$' -bench RiskLog -benchtime 200000x
func BenchmarkRiskLog(b *testing.B) { storetest.BenchRiskLog(b, OpenRisk(b)) }

func TestRiskDecisionsBackfill(t *testing.T) {
	db, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.TestRiskDecisionsBackfill(t, db.Risk(), Migrations, func(q string) error {
		_, err := db.write.Exec(q)
		return err
	})
}
