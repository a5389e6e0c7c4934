package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

func openBenchTimers(b *testing.B) (*TimerStore, storetest.TimerLoader) {
	db := openDB(b, pgtest.URL(b))
	if err := db.Migrate(bg); err != nil {
		b.Fatal(err)
	}
	load := func(tb testing.TB, n int, base time.Time, gap time.Duration) {
		tb.Helper()
		rows := make([][]any, 0, 50_000)
		for i := 0; i < n; {
			rows = rows[:0]
			for ; len(rows) < cap(rows) && i < n; i++ {
				at := base.Add(time.Duration(i) * gap).UnixNano()
				rows = append(rows, []any{storetest.BenchTimerID(i), "bench", at, storetest.BenchPayload, at})
			}
			if _, err := db.pool.CopyFrom(bg, pgx.Identifier{"timers"}, []string{"id", "handler", "fire_at", "payload", "next_at"},
				pgx.CopyFromRows(rows)); err != nil {
				tb.Fatal(err)
			}
		}
		if _, err := db.pool.Exec(bg, `ANALYZE timers`); err != nil {
			tb.Fatal(err)
		}
	}
	return db.Timers(), load
}

// BenchmarkTimerFire: 1,000,000 pending timers, 10,000 fires a second; see
// storetest.BenchTimerFire. Needs FINCORE_TEST_POSTGRES.
//
//	go test ./store/postgres -run '^$' -bench TimerFire -benchtime 50000x
func BenchmarkTimerFire(b *testing.B) {
	st, load := openBenchTimers(b)
	storetest.BenchTimerFire(b, st, load)
}

// BenchmarkTimerDrain: a backlog of overdue timers at start; see storetest.BenchTimerDrain.
func BenchmarkTimerDrain(b *testing.B) {
	st, load := openBenchTimers(b)
	storetest.BenchTimerDrain(b, st, load)
}
