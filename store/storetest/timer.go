package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/platform/clock"
	"github.com/fincore/fincore/platform/timer"
)

// TestTimerStore holds a timer.Store to the behaviour platform/timer relies on. open returns
// a fresh, empty store for each subtest.
func TestTimerStore(t *testing.T, open func(t testing.TB) timer.Store) {
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	tm := func(id string, at time.Duration, payload string) timer.Timer {
		return timer.Timer{ID: id, Handler: "h", FireAt: base.Add(at), Payload: []byte(payload)}
	}
	ids := func(rs []timer.Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	eq := func(t *testing.T, got, want []string) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("ScheduleIdempotent", func(t *testing.T) {
		s := open(t)
		created, err := s.Schedule(ctx, tm("a", 0, "p"))
		if err != nil || !created {
			t.Fatalf("first schedule: %v %v", created, err)
		}
		created, err = s.Schedule(ctx, tm("a", 0, "p"))
		if err != nil || created {
			t.Fatalf("same content: %v %v", created, err)
		}
		for _, other := range []timer.Timer{tm("a", time.Nanosecond, "p"), tm("a", 0, "q"), {ID: "a", Handler: "g", FireAt: base, Payload: []byte("p")}} {
			if _, err := s.Schedule(ctx, other); !errors.Is(err, timer.ErrConflict) {
				t.Fatalf("different content %+v: %v", other, err)
			}
		}
		r, ok, err := s.Get(ctx, "a")
		must(t, err)
		if !ok || !r.FireAt.Equal(base) || !r.NextAt.Equal(base) || string(r.Payload) != "p" || r.Handler != "h" || r.Attempts != 0 || !r.Pending() {
			t.Fatalf("stored %+v %v", r, ok)
		}
		// An empty payload round-trips.
		_, err = s.Schedule(ctx, timer.Timer{ID: "empty", Handler: "h", FireAt: base})
		must(t, err)
		if created, err := s.Schedule(ctx, timer.Timer{ID: "empty", Handler: "h", FireAt: base, Payload: []byte{}}); err != nil || created {
			t.Fatalf("empty payload again: %v %v", created, err)
		}
	})

	t.Run("ScheduleMany", func(t *testing.T) {
		s := open(t)
		_, err := s.Schedule(ctx, tm("old", 0, "kept"))
		must(t, err)
		n, err := s.ScheduleMany(ctx, []timer.Timer{tm("x", time.Second, "px"), tm("old", time.Hour, "other"), tm("y", 0, ""), tm("x", time.Second, "px")})
		if err != nil || n != 2 {
			t.Fatalf("ScheduleMany = %d, %v; want 2 inserted", n, err)
		}
		if n, err := s.ScheduleMany(ctx, nil); err != nil || n != 0 {
			t.Fatalf("ScheduleMany(nil) = %d, %v", n, err)
		}
		r, _, err := s.Get(ctx, "old")
		must(t, err)
		if string(r.Payload) != "kept" || !r.FireAt.Equal(base) {
			t.Fatalf("existing timer changed: %+v", r)
		}
		r, ok, err := s.Get(ctx, "x")
		must(t, err)
		if !ok || !r.Pending() || !r.FireAt.Equal(base.Add(time.Second)) || !r.NextAt.Equal(r.FireAt) || string(r.Payload) != "px" || r.Handler != "h" {
			t.Fatalf("inserted %+v %v", r, ok)
		}
		rs, err := s.Due(ctx, base, base.Add(time.Minute), 10)
		must(t, err)
		eq(t, ids(rs), []string{"old", "y", "x"})
		// Many at once, beyond any one statement's size.
		many := make([]timer.Timer, 3000)
		for i := range many {
			many[i] = tm(fmt.Sprintf("m%04d", i), time.Duration(i)*time.Millisecond, "")
		}
		if n, err := s.ScheduleMany(ctx, many); err != nil || n != len(many) {
			t.Fatalf("ScheduleMany(3000) = %d, %v", n, err)
		}
		rs, err = s.Due(ctx, base.Add(time.Hour), base.Add(2*time.Hour), 10)
		must(t, err)
		if len(rs) != 0 {
			t.Fatalf("due later: %v", ids(rs))
		}
		rs, err = s.Due(ctx, base.Add(2999*time.Millisecond), base.Add(time.Hour), 10)
		must(t, err)
		eq(t, ids(rs), []string{"m2999"})
	})

	t.Run("DueOrderAndWindow", func(t *testing.T) {
		s := open(t)
		for i, id := range []string{"c", "a", "b", "d", "e"} {
			_, err := s.Schedule(ctx, tm(id, time.Duration(i%3)*time.Second, ""))
			must(t, err)
		}
		// c@0 a@1 b@2 d@0 e@1
		rs, err := s.Due(ctx, base, base.Add(3*time.Second), 10)
		must(t, err)
		eq(t, ids(rs), []string{"c", "d", "a", "e", "b"})
		rs, err = s.Due(ctx, base, base.Add(3*time.Second), 3)
		must(t, err)
		eq(t, ids(rs), []string{"c", "d", "a"})
		rs, err = s.Due(ctx, base.Add(time.Second), base.Add(2*time.Second), 10)
		must(t, err)
		eq(t, ids(rs), []string{"a", "e"})
		rs, err = s.Due(ctx, base, base, 10)
		must(t, err)
		eq(t, ids(rs), nil)
		rs, err = s.Due(ctx, base, base.Add(time.Hour), 0)
		must(t, err)
		eq(t, ids(rs), nil)
	})

	t.Run("DoneAndFail", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"a", "b", "c"} {
			_, err := s.Schedule(ctx, tm(id, 0, id))
			must(t, err)
		}
		next := base.Add(time.Minute)
		must(t, s.Fail(ctx, timer.Key{ID: "b", FireAt: base}, 1, "boom", next))
		r, _, err := s.Get(ctx, "b")
		must(t, err)
		if r.Attempts != 1 || r.LastError != "boom" || !r.NextAt.Equal(next) || !r.FireAt.Equal(base) {
			t.Fatalf("after fail %+v", r)
		}
		// A key with another fire time names another scheduling: ignored.
		must(t, s.Fail(ctx, timer.Key{ID: "a", FireAt: base.Add(1)}, 5, "stale", next))
		must(t, s.Done(ctx, []timer.Key{{ID: "c", FireAt: base.Add(1)}}, base))
		rs, err := s.Due(ctx, base, base.Add(time.Second), 10)
		must(t, err)
		eq(t, ids(rs), []string{"a", "c"})
		if rs[0].Attempts != 0 {
			t.Fatalf("stale fail applied: %+v", rs[0])
		}
		doneAt := base.Add(2 * time.Second)
		must(t, s.Done(ctx, []timer.Key{{ID: "a", FireAt: base}, {ID: "c", FireAt: base}, {ID: "missing", FireAt: base}}, doneAt))
		rs, err = s.Due(ctx, time.Unix(0, 0), base.Add(time.Hour), 10)
		must(t, err)
		eq(t, ids(rs), []string{"b"})
		r, ok, err := s.Get(ctx, "a")
		must(t, err)
		if !ok || r.Pending() || !r.DoneAt.Equal(doneAt) || !r.NextAt.IsZero() {
			t.Fatalf("done record %+v", r)
		}
		// Done is final: same content is a no-op, different content a conflict, a late
		// failure or cancel changes nothing.
		if created, err := s.Schedule(ctx, tm("a", 0, "a")); err != nil || created {
			t.Fatalf("reschedule done: %v %v", created, err)
		}
		if _, err := s.Schedule(ctx, tm("a", 0, "other")); !errors.Is(err, timer.ErrConflict) {
			t.Fatalf("conflict with done: %v", err)
		}
		must(t, s.Fail(ctx, timer.Key{ID: "a", FireAt: base}, 9, "late", next))
		if ok, err := s.Cancel(ctx, "a"); err != nil || ok {
			t.Fatalf("cancel done: %v %v", ok, err)
		}
		r, _, _ = s.Get(ctx, "a")
		if r.Pending() || r.Attempts != 0 {
			t.Fatalf("done record changed: %+v", r)
		}
		must(t, s.Done(ctx, nil, base))
	})

	t.Run("Backlog", func(t *testing.T) {
		s := open(t)
		b, err := s.Backlog(ctx)
		must(t, err)
		if b.Pending != 0 || !b.Earliest.IsZero() {
			t.Fatalf("empty store backlog %+v", b)
		}
		for i, id := range []string{"a", "b", "c"} {
			_, err := s.Schedule(ctx, tm(id, time.Duration(i)*time.Second, ""))
			must(t, err)
		}
		must(t, s.Done(ctx, []timer.Key{{ID: "a", FireAt: base}}, base))
		must(t, s.Fail(ctx, timer.Key{ID: "c", FireAt: base.Add(2 * time.Second)}, 1, "x", base.Add(time.Hour)))
		b, err = s.Backlog(ctx)
		must(t, err)
		if b.Pending != 2 || !b.Earliest.Equal(base.Add(time.Second)) {
			t.Fatalf("backlog %+v, want 2 pending from %s", b, base.Add(time.Second))
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		s := open(t)
		_, err := s.Schedule(ctx, tm("a", 0, "p"))
		must(t, err)
		if ok, err := s.Cancel(ctx, "a"); err != nil || !ok {
			t.Fatalf("cancel: %v %v", ok, err)
		}
		if ok, err := s.Cancel(ctx, "a"); err != nil || ok {
			t.Fatalf("cancel again: %v %v", ok, err)
		}
		if _, ok, err := s.Get(ctx, "a"); err != nil || ok {
			t.Fatalf("get cancelled: %v %v", ok, err)
		}
		// A cancelled id may be scheduled again, with any content.
		if created, err := s.Schedule(ctx, tm("a", time.Hour, "new")); err != nil || !created {
			t.Fatalf("schedule after cancel: %v %v", created, err)
		}
	})

	t.Run("Purge", func(t *testing.T) {
		s := open(t)
		for i := range 5 {
			_, err := s.Schedule(ctx, tm(fmt.Sprint(i), 0, ""))
			must(t, err)
		}
		must(t, s.Done(ctx, []timer.Key{{ID: "0", FireAt: base}, {ID: "1", FireAt: base}}, base))
		must(t, s.Done(ctx, []timer.Key{{ID: "2", FireAt: base}}, base.Add(time.Hour)))
		n, err := s.Purge(ctx, base.Add(time.Minute), 1)
		must(t, err)
		if n != 1 {
			t.Fatalf("purged %d, want 1 (limit)", n)
		}
		n, err = s.Purge(ctx, base.Add(time.Minute), 10)
		must(t, err)
		if n != 1 {
			t.Fatalf("purged %d, want 1", n)
		}
		for id, want := range map[string]bool{"0": false, "1": false, "2": true, "3": true, "4": true} {
			if _, ok, err := s.Get(ctx, id); err != nil || ok != want {
				t.Fatalf("get %s after purge: %v %v", id, ok, err)
			}
		}
		// A purged id may be scheduled again.
		if created, err := s.Schedule(ctx, tm("0", 0, "")); err != nil || !created {
			t.Fatalf("schedule purged id: %v %v", created, err)
		}
	})
}

// TestTimerService runs the timer service over a store: 2,000 timers over 20 seconds with a
// window of 100, one in ten failing once, and a restart halfway. Every timer is delivered
// successfully, none before its time, none more than once more than it needs (a delivery
// cut short by the restart may be repeated), and all end done in the store.
func TestTimerService(t *testing.T, open func(t testing.TB) timer.Store) {
	const n = 2000
	ctx := context.Background()
	st := open(t)
	clock := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	start := clock.Now()
	var mu sync.Mutex
	calls := map[string]int{}
	var early []string
	handle := func(_ context.Context, tm timer.Timer) error {
		now := clock.Now()
		mu.Lock()
		defer mu.Unlock()
		calls[tm.ID]++
		if now.Before(tm.FireAt) {
			early = append(early, tm.ID)
		}
		if tm.Payload[0] == 'f' && calls[tm.ID] == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}
	newService := func() *timer.Service {
		svc, err := timer.New(timer.Config{Store: st, Clock: clock, WindowMax: 100, Lookahead: time.Second,
			BackoffBase: 100 * time.Millisecond, Logger: QuietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		svc.Register("h", handle)
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := newService()
	for i := range n {
		payload := "ok"
		if i%10 == 0 {
			payload = "fail"
		}
		tm := timer.Timer{ID: fmt.Sprintf("t%04d", i), Handler: "h", FireAt: start.Add(time.Duration(i) * 10 * time.Millisecond), Payload: []byte(payload)}
		if err := svc.Schedule(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	for step := range 300 {
		if step == 100 {
			svc.Stop()
			svc = newService()
		}
		clock.Advance(100 * time.Millisecond)
		// Let the service catch up to within a second of the clock before moving on.
		for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
			rs, err := st.Due(ctx, time.Unix(0, 0), clock.Now().Add(-time.Second), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("timer %s overdue by more than a second", rs[0].ID)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs, err := st.Due(ctx, time.Unix(0, 0), clock.Now().Add(time.Hour), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer %s still pending: %+v", rs[0].ID, rs[0])
		}
		clock.Advance(100 * time.Millisecond) // retries wait on the clock
		time.Sleep(time.Millisecond)
	}
	svc.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(early) > 0 {
		t.Fatalf("%d timers fired early, e.g. %s", len(early), early[0])
	}
	for i := range n {
		id := fmt.Sprintf("t%04d", i)
		// The failing timers need a second delivery. A restart may repeat a delivery whose
		// outcome was not yet written, so one more is allowed.
		want, attempts := 1, 0
		if i%10 == 0 {
			want, attempts = 2, 1
		}
		if c := calls[id]; c < want || c > want+1 {
			t.Fatalf("%s delivered %d times, want %d", id, c, want)
		}
		r, ok, err := st.Get(ctx, id)
		if err != nil || !ok || r.Pending() || r.Attempts > attempts {
			t.Fatalf("%s in store: %+v %v %v", id, r, ok, err)
		}
	}
}

// benchEnvInt reads FINCORE_BENCH_TIMER_<name>, for trying other settings by hand.
func benchEnvInt(name string) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv("FINCORE_BENCH_TIMER_"+name), &v); err != nil {
		return 0
	}
	return v
}

// logWriter sends the benchmark's progress lines to the test log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// BenchTimerFire holds 1,000,000 pending timers in st (empty before), due every 100µs
// (10,000 a second), and runs the timer service over them (bench.RunTimers, which `fincore
// bench timers` runs too) with the default configuration (RefillBatchMax and WindowMax can
// be overridden with FINCORE_BENCH_TIMER_REFILL and FINCORE_BENCH_TIMER_WINDOW) until b.N
// have fired. It reports the Go heap the service takes per pending timer and per timer in
// its window, the achieved rate and the lateness (handler start minus fire time). Run it
// with a fixed count, e.g. -benchtime 50000x.
func BenchTimerFire(b *testing.B, st timer.Store) {
	const pending, rate = 1_000_000, 10_000
	if b.N > pending {
		b.Fatalf("b.N %d exceeds the %d timers loaded", b.N, pending)
	}
	res, err := bench.RunTimers(context.Background(), bench.TimerConfig{
		Timers: pending, Rate: rate, Duration: time.Duration(b.N) * time.Second / rate,
		WindowMax: benchEnvInt("WINDOW"), RefillBatchMax: benchEnvInt("REFILL"), Progress: logWriter{b},
	}, st)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.BytesPerTimer, "heap_B/pending_timer")
	b.ReportMetric(res.BytesPerWindowTimer, "heap_B/window_timer")
	b.ReportMetric(res.FiresPerS, "fires/s")
	b.ReportMetric(res.LatenessP50Ms, "lateness_p50_ms")
	b.ReportMetric(res.LatenessP99Ms, "lateness_p99_ms")
	b.ReportMetric(res.LatenessMaxMs, "lateness_max_ms")
	if res.Early > 0 {
		b.Errorf("%d timers fired early", res.Early)
	}
}

// BenchTimerDrain fires b.N timers in st that all came due while no service ran (a restart
// after downtime) and reports how fast the service works through the backlog.
func BenchTimerDrain(b *testing.B, st timer.Store) {
	if err := bench.LoadTimers(context.Background(), st, b.N, time.Now().Add(-time.Hour), time.Microsecond); err != nil {
		b.Fatal(err)
	}
	svc, err := timer.New(timer.Config{Store: st, Logger: QuietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	svc.Register(bench.BenchTimerHandler, func(context.Context, timer.Timer) error { return nil })
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
