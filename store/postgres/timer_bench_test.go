package postgres

import (
	"testing"

	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

func openBenchTimers(b *testing.B) *TimerStore {
	db := openDB(b, pgtest.URL(b))
	if err := db.Migrate(bg); err != nil {
		b.Fatal(err)
	}
	return db.Timers()
}

// BenchmarkTimerFire: 1,000,000 pending timers, 10,000 fires a second; see
// storetest.BenchTimerFire. Needs FINCORE_TEST_POSTGRES.
//
//	go test ./store/postgres -run '^$' -bench TimerFire -benchtime 50000x
func BenchmarkTimerFire(b *testing.B) { storetest.BenchTimerFire(b, openBenchTimers(b)) }

// BenchmarkTimerDrain: a backlog of overdue timers at start; see storetest.BenchTimerDrain.
func BenchmarkTimerDrain(b *testing.B) { storetest.BenchTimerDrain(b, openBenchTimers(b)) }
