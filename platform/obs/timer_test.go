package obs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/sqlite"
)

func openTimerStore(t *testing.T) *sqlite.TimerStore {
	t.Helper()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := db.Timers()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTimerMetrics runs a timer service on SQLite with the metrics as its observer: fires
// by handler and outcome, retries, lateness, the window and the storage backlog.
func TestTimerMetrics(t *testing.T) {
	st := openTimerStore(t)
	m := obs.New()
	svc, err := timer.New(timer.Config{Store: st, Observer: m, BackoffBase: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m.WatchTimers(svc)
	var mu sync.Mutex
	calls := map[string]int{}
	svc.Register("h", func(_ context.Context, tm timer.Timer) error {
		mu.Lock()
		defer mu.Unlock()
		calls[tm.ID]++
		if tm.ID == "f" && calls[tm.ID] == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	})
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	now := time.Now()
	for _, tm := range []timer.Timer{{ID: "ok", FireAt: now}, {ID: "f", FireAt: now}, {ID: "later", FireAt: now.Add(10 * time.Second)}} {
		tm.Handler = "h"
		if err := svc.Schedule(t.Context(), tm); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); svc.Stats().Fired < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("fired %+v", svc.Stats())
		}
	}
	fams := scrapeRegistry(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"fincore_timer_fires_total", []string{"handler=h", "outcome=ok"}, 2},
		{"fincore_timer_fires_total", []string{"handler=h", "outcome=error"}, 1},
		{"fincore_timer_retries_total", []string{"handler=h"}, 1},
		{"fincore_timer_window", nil, 1}, // "later"
		{"fincore_timer_window_max", nil, timer.DefaultWindowMax},
		{"fincore_timer_pending", nil, 1},
		{"fincore_timer_overdue_seconds", nil, 0},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Three attempts started after their due times (the retry at least 10 ms after the
	// failure that scheduled it, its own due time).
	if h := histogram(t, fams, "fincore_timer_lateness_seconds"); h.GetSampleCount() != 3 || h.GetSampleSum() < 0 {
		t.Errorf("lateness histogram: %d samples, sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
}

// TestTimerOverdueGauge: a timer that came due while no service delivered it shows in the
// overdue gauge.
func TestTimerOverdueGauge(t *testing.T) {
	st := openTimerStore(t)
	svc, err := timer.New(timer.Config{Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	m := obs.New()
	if _, ok := scrapeRegistry(t, m)["fincore_timer_pending"]; ok {
		t.Fatal("timer gauges reported before WatchTimers")
	}
	m.WatchTimers(svc)
	if err := svc.Schedule(t.Context(), timer.Timer{ID: "late", Handler: "h", FireAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	fams := scrapeRegistry(t, m)
	if got := value(t, fams, "fincore_timer_pending"); got != 1 {
		t.Errorf("pending %v", got)
	}
	if got := value(t, fams, "fincore_timer_overdue_seconds"); got < 60 || got > 3600 {
		t.Errorf("overdue %v s, want about 60", got)
	}
}

// TestTimerHandlerLabelsBounded: handler names beyond the first 64 count as "other".
func TestTimerHandlerLabelsBounded(t *testing.T) {
	m := obs.New()
	for i := range 100 {
		m.TimerDelivered(timer.Delivery{Handler: fmt.Sprintf("bus:payment.%d", i), Attempt: 1})
	}
	m.TimerDelivered(timer.Delivery{Handler: "bus:payment.0", Attempt: 1})
	fams := scrapeRegistry(t, m)
	if n := len(fams["fincore_timer_fires_total"].Metric); n != 65 {
		t.Fatalf("%d fires series, want 64 handlers and other", n)
	}
	if got := value(t, fams, "fincore_timer_fires_total", "handler=other", "outcome=ok"); got != 36 {
		t.Fatalf("other = %v, want 36", got)
	}
	if got := value(t, fams, "fincore_timer_fires_total", "handler=bus:payment.0", "outcome=ok"); got != 2 {
		t.Fatalf("bus:payment.0 = %v, want 2", got)
	}
}
