package sqlite

import (
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/store/storetest"
)

// timerLoader bulk-inserts timers in transactions of up to 50,000 rows, 500 per statement.
func timerLoader(d *DB) storetest.TimerLoader {
	return func(tb testing.TB, n int, base time.Time, gap time.Duration) {
		tb.Helper()
		const perStmt = 500
		row := "(?,?,?,?,?)"
		stmts := map[int]string{}
		args := make([]any, 0, 5*perStmt)
		for i := 0; i < n; {
			tx, err := d.write.Begin()
			if err != nil {
				tb.Fatal(err)
			}
			for j := 0; j < 50_000 && i < n; {
				k := min(perStmt, n-i)
				q, ok := stmts[k]
				if !ok {
					q = `INSERT INTO timers (id, handler, fire_at, payload, next_at) VALUES ` + strings.Repeat(row+",", k-1) + row
					stmts[k] = q
				}
				args = args[:0]
				for m := range k {
					at := base.Add(time.Duration(i+m) * gap).UnixNano()
					args = append(args, storetest.BenchTimerID(i+m), "bench", at, storetest.BenchPayload, at)
				}
				if _, err := tx.Exec(q, args...); err != nil {
					tb.Fatal(err)
				}
				i, j = i+k, j+k
			}
			if err := tx.Commit(); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func openBenchTimers(b *testing.B) (*TimerStore, storetest.TimerLoader) {
	db, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	st, err := db.Timers()
	if err != nil {
		b.Fatal(err)
	}
	return st, timerLoader(db)
}

// BenchmarkTimerFire: 1,000,000 pending timers, 10,000 fires a second; see
// storetest.BenchTimerFire.
//
//	go test ./store/sqlite -run '^$' -bench TimerFire -benchtime 50000x
func BenchmarkTimerFire(b *testing.B) {
	st, load := openBenchTimers(b)
	storetest.BenchTimerFire(b, st, load)
}

// BenchmarkTimerDrain: a backlog of overdue timers at start; see storetest.BenchTimerDrain.
//
//	go test ./store/sqlite -run '^$' -bench TimerDrain -benchtime 100000x
func BenchmarkTimerDrain(b *testing.B) {
	st, load := openBenchTimers(b)
	storetest.BenchTimerDrain(b, st, load)
}
