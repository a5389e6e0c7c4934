package sqlite

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/timer"
)

// shiftedClock is the system clock moved by a fixed offset, so that timers bulk-loaded with
// fire times on a fixed grid come due when the benchmark wants them to.
type shiftedClock struct{ shift time.Duration }

func (c shiftedClock) Now() time.Time                         { return time.Now().Add(c.shift) }
func (c shiftedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// bulkTimers inserts n pending timers with ids b000000000.., due every gap from base, with a
// 16-byte payload, in transactions of 50,000 rows.
func bulkTimers(tb testing.TB, d *DB, n int, base time.Time, gap time.Duration) {
	tb.Helper()
	const perStmt = 500
	row := "(?,?,?,?,?)"
	stmt, err := d.write.Prepare(`INSERT INTO timers (id, handler, fire_at, payload, next_at) VALUES ` + strings.Repeat(row+",", perStmt-1) + row)
	if err != nil {
		tb.Fatal(err)
	}
	defer stmt.Close()
	payload := []byte("0123456789abcdef")
	args := make([]any, 0, 5*perStmt)
	for i := 0; i < n; {
		tx, err := d.write.Begin()
		if err != nil {
			tb.Fatal(err)
		}
		st := tx.Stmt(stmt)
		for j := 0; j < 50_000 && i < n; j += perStmt {
			args = args[:0]
			for k := range perStmt {
				at := base.Add(time.Duration(i+k) * gap).UnixNano()
				args = append(args, fmt.Sprintf("b%09d", i+k), "bench", at, payload, at)
			}
			if _, err := st.Exec(args...); err != nil {
				tb.Fatal(err)
			}
			i += perStmt
		}
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
}

func heapBytes() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkTimerFire holds 1,000,000 pending timers, due every 100µs (10,000 a second), in
// SQLite, and runs the timer service over them with the default configuration: it reports
// the Go heap the service takes per pending timer and per timer in its window, then fires
// b.N of them at their sustained rate of 10,000/s and reports the achieved rate and the
// lateness (handler start minus fire time). Run with a fixed count, e.g.
//
//	go test ./store/sqlite -run '^$' -bench TimerFire -benchtime 50000x
func BenchmarkTimerFire(b *testing.B) {
	const pending = 1_000_000
	const gap = 100 * time.Microsecond
	if b.N > pending {
		b.Fatalf("b.N %d exceeds the %d timers loaded", b.N, pending)
	}
	db, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	loadStart := time.Now()
	bulkTimers(b, db, pending, base, gap)
	b.Logf("loaded %d timers in %s", pending, time.Since(loadStart).Round(time.Millisecond))

	lateness := make([]int64, b.N)
	var fired atomic.Int64
	allFired := make(chan struct{})
	// The first timer comes due 3s from now, once the window is loaded and measured.
	clock := shiftedClock{shift: base.Sub(time.Now()) - 3*time.Second}

	before := heapBytes()
	store, err := db.Timers()
	if err != nil {
		b.Fatal(err)
	}
	svc, err := timer.New(timer.Config{Store: store, Clock: clock, RefillBatchMax: benchEnvInt("REFILL", 0), WindowMax: benchEnvInt("WINDOW", 0)})
	if err != nil {
		b.Fatal(err)
	}
	svc.Register("bench", func(_ context.Context, t timer.Timer) error {
		late := clock.Now().Sub(t.FireAt)
		if i := fired.Add(1) - 1; i < int64(len(lateness)) {
			lateness[i] = int64(late)
			if i == int64(len(lateness))-1 {
				close(allFired)
			}
		}
		return nil
	})
	b.ResetTimer()
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	deadline := time.Now().Add(2500 * time.Millisecond)
	for svc.Stats().InMemory < timer.DefaultWindowMax && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	inMemory := svc.Stats().InMemory
	after := heapBytes()
	delta := float64(after) - float64(before)
	b.ReportMetric(delta/pending, "heap_B/pending_timer")
	b.ReportMetric(delta/float64(inMemory), "heap_B/window_timer")
	b.Logf("heap %d -> %d bytes with %d pending, %d in the window", before, after, pending, inMemory)

	start := time.Now()
	select {
	case <-allFired:
	case <-time.After(time.Duration(b.N)*gap + time.Minute):
		b.Fatalf("only %d of %d fired", fired.Load(), b.N)
	}
	firstDue := base
	lastDue := base.Add(time.Duration(b.N-1) * gap)
	elapsed := clock.Now().Sub(firstDue)
	_ = start
	b.StopTimer()
	slices.Sort(lateness)
	q := func(p float64) float64 { return float64(lateness[int(p*float64(len(lateness)-1))]) / 1e6 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "fires/s")
	b.ReportMetric(q(0.5), "lateness_p50_ms")
	b.ReportMetric(q(0.99), "lateness_p99_ms")
	b.ReportMetric(q(1), "lateness_max_ms")
	b.Logf("due span %s, fired over %s; min lateness %s", lastDue.Sub(firstDue), elapsed.Round(time.Millisecond), time.Duration(lateness[0]))
	if lateness[0] < 0 {
		b.Errorf("a timer fired %s early", time.Duration(-lateness[0]))
	}
}

func benchEnvInt(name string, def int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv("FINCORE_BENCH_TIMER_"+name), &v); err != nil {
		return def
	}
	return v
}

// BenchmarkTimerDrain fires b.N timers that all came due while no service ran (a restart
// after downtime) and reports how fast the service works through the backlog.
//
//	go test ./store/sqlite -run '^$' -bench TimerDrain -benchtime 100000x
func BenchmarkTimerDrain(b *testing.B) {
	db, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	base := time.Now().Add(-time.Hour)
	bulkTimers(b, db, (b.N+499)/500*500, base, time.Microsecond)
	store, err := db.Timers()
	if err != nil {
		b.Fatal(err)
	}
	svc, err := timer.New(timer.Config{Store: store})
	if err != nil {
		b.Fatal(err)
	}
	var fired atomic.Int64
	svc.Register("bench", func(context.Context, timer.Timer) error { fired.Add(1); return nil })
	b.ResetTimer()
	start := time.Now()
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Stop()
	deadline := time.Now().Add(5 * time.Minute)
	for svc.Stats().Fired < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("marked done %d of %d", svc.Stats().Fired, b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fires/s")
}
