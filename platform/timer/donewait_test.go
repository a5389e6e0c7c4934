package timer_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/timer"
)

// doneLog wraps a store and records each Done call: when it began and how many timers it
// marked.
type doneLog struct {
	timer.Store
	mu    sync.Mutex
	at    []time.Time
	sizes []int
}

func (d *doneLog) Done(ctx context.Context, keys []timer.Key, at time.Time) error {
	d.mu.Lock()
	d.at, d.sizes = append(d.at, time.Now()), append(d.sizes, len(keys))
	d.mu.Unlock()
	return d.Store.Done(ctx, keys, at)
}

func (d *doneLog) calls() ([]time.Time, []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.at...), append([]int(nil), d.sizes...)
}

// startDoneLog starts a service with cfg over a fresh SQLite store wrapped in a doneLog, with
// the handler "h".
func startDoneLog(t *testing.T, cfg timer.Config, h timer.HandlerFunc) (*timer.Service, *doneLog) {
	t.Helper()
	db := openDB(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	st, err := db.Timers()
	if err != nil {
		t.Fatal(err)
	}
	log := &doneLog{Store: st}
	cfg.Store, cfg.Logger = log, slog.New(slog.DiscardHandler)
	svc, err := timer.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.Register("h", h)
	if err := svc.Start(bg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc, log
}

// With DoneWait, a completion is written no sooner than DoneWait after it was handed over,
// so that completions arriving meanwhile share its transaction.
func TestDoneWaitGathersCompletions(t *testing.T) {
	const wait = 300 * time.Millisecond
	var mu sync.Mutex
	var returned time.Time
	svc, log := startDoneLog(t, timer.Config{DoneWait: wait}, func(context.Context, timer.Timer) error {
		mu.Lock()
		returned = time.Now()
		mu.Unlock()
		return nil
	})
	if err := svc.Schedule(bg, timer.Timer{ID: "one", Handler: "h", FireAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the completion written", func() bool { return svc.Stats().Fired == 1 })
	at, sizes := log.calls()
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 1 || sizes[0] != 1 {
		t.Fatalf("Done calls of sizes %v, want one of 1", sizes)
	}
	if gap := at[0].Sub(returned); gap < wait {
		t.Fatalf("the completion was written %s after the handler returned, want at least DoneWait (%s)", gap, wait)
	}
}

// DoneWait never holds back a full batch: with DoneBatchMax completions gathered the batch
// is written at once, however long DoneWait is.
func TestDoneWaitFullBatchesAtOnce(t *testing.T) {
	svc, log := startDoneLog(t, timer.Config{DoneWait: time.Hour, DoneBatchMax: 10},
		func(context.Context, timer.Timer) error { return nil })
	for i := range 20 {
		if err := svc.Schedule(bg, timer.Timer{ID: fmt.Sprintf("t%d", i), Handler: "h", FireAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "20 completions written", func() bool { return svc.Stats().Fired == 20 })
	if _, sizes := log.calls(); len(sizes) != 2 || sizes[0] != 10 || sizes[1] != 10 {
		t.Fatalf("Done calls of sizes %v, want two of 10", sizes)
	}
}

// Stopping the service writes the completions DoneWait was still gathering: a clean stop does
// not deliver them again at the next start.
func TestDoneWaitFlushedOnStop(t *testing.T) {
	delivered := make(chan struct{}, 1)
	db := openDB(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	st, err := db.Timers()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := timer.New(timer.Config{Store: st, DoneWait: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Observer: observerFunc(func(timer.Delivery) { delivered <- struct{}{} })})
	if err != nil {
		t.Fatal(err)
	}
	svc.Register("h", func(context.Context, timer.Timer) error { return nil })
	if err := svc.Start(bg); err != nil {
		t.Fatal(err)
	}
	if err := svc.Schedule(bg, timer.Timer{ID: "one", Handler: "h", FireAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	<-delivered // the worker hands the completion over right after telling the observer
	if r, _, _ := st.Get(bg, "one"); !r.Pending() {
		t.Fatal("the completion was written before DoneWait passed")
	}
	svc.Stop()
	if r, ok, err := st.Get(bg, "one"); err != nil || !ok || r.Pending() {
		t.Fatalf("after Stop the timer is %+v (found %v, %v), want done", r, ok, err)
	}
}

type observerFunc func(timer.Delivery)

func (f observerFunc) TimerDelivered(d timer.Delivery) { f(d) }
