package sqlite

import (
	"testing"

	"github.com/fincore/fincore/store/storetest"
)

func openBenchTimers(b *testing.B) *TimerStore {
	db, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st, err := db.Timers()
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkTimerFire: 1,000,000 pending timers, 10,000 fires a second; see
// storetest.BenchTimerFire (and `fincore bench timers`, the same run from the CLI).
//
//	go test ./store/sqlite -run '^$' -bench TimerFire -benchtime 50000x
func BenchmarkTimerFire(b *testing.B) { storetest.BenchTimerFire(b, openBenchTimers(b)) }

// BenchmarkTimerDrain: a backlog of overdue timers at start; see storetest.BenchTimerDrain.
//
//	go test ./store/sqlite -run '^$' -bench TimerDrain -benchtime 100000x
func BenchmarkTimerDrain(b *testing.B) { storetest.BenchTimerDrain(b, openBenchTimers(b)) }
