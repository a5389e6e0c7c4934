package timer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/clock"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/sqlite"
)

var bg = context.Background()

// eventually polls cond until it holds or a 30-second deadline passes (generous: the
// machine may be shared with other jobs).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder is a handler that records each delivery and the clock's time at it.
type recorder struct {
	clock timer.Clock
	mu    sync.Mutex
	calls map[string]int
	early []string
	fail  map[string]int // failures left, by id
}

func newRecorder(c timer.Clock) *recorder {
	return &recorder{clock: c, calls: map[string]int{}, fail: map[string]int{}}
}

func (r *recorder) handle(_ context.Context, t timer.Timer) error {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[t.ID]++
	if now.Before(t.FireAt) {
		r.early = append(r.early, fmt.Sprintf("%s at %s before %s", t.ID, now, t.FireAt))
	}
	if r.fail[t.ID] > 0 {
		r.fail[t.ID]--
		return errors.New("handler failed on purpose")
	}
	return nil
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id]
}

func (r *recorder) check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.early) > 0 {
		t.Fatalf("%d timers fired early, e.g. %s", len(r.early), r.early[0])
	}
}

type harness struct {
	t     testing.TB
	dir   string
	db    *sqlite.DB
	store *sqlite.TimerStore
	clock *clock.Fake
	rec   *recorder
	svc   *timer.Service
}

func openDB(t testing.TB, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(dir)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	return db
}

// newHarness opens a SQLite store in a fresh directory and starts a service over it with a
// fake clock and a recording handler named "rec".
func newHarness(t testing.TB, cfg timer.Config) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))}
	h.rec = newRecorder(h.clock)
	h.start(cfg)
	t.Cleanup(h.stop)
	return h
}

func (h *harness) start(cfg timer.Config) {
	h.t.Helper()
	h.db = openDB(h.t, h.dir)
	store, err := h.db.Timers()
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = store
	cfg.Store, cfg.Clock = h.store, h.clock
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	svc, err := timer.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	svc.Register("rec", h.rec.handle)
	if err := svc.Start(bg); err != nil {
		h.t.Fatal(err)
	}
	h.svc = svc
}

func (h *harness) stop() {
	if h.svc != nil {
		h.svc.Stop()
		h.svc = nil
	}
	if h.db != nil {
		h.db.Close()
		h.db = nil
	}
}

func (h *harness) schedule(id string, at time.Time, payload string) {
	h.t.Helper()
	if err := h.svc.Schedule(bg, timer.Timer{ID: id, Handler: "rec", FireAt: at, Payload: []byte(payload)}); err != nil {
		h.t.Fatalf("schedule %s: %v", id, err)
	}
}

// settle schedules a sentinel timer due now and waits until it has fired and been marked
// done: the service has then processed everything due up to now.
var sentinels int

func (h *harness) settle() {
	h.t.Helper()
	sentinels++
	id := fmt.Sprintf("sentinel-%d", sentinels)
	h.schedule(id, h.clock.Now(), "")
	h.waitDone(id)
}

func (h *harness) waitDone(id string) {
	h.t.Helper()
	eventually(h.t, id+" done", func() bool {
		r, ok, err := h.store.Get(bg, id)
		return err == nil && ok && !r.Pending()
	})
}

func TestFiresOnTimeNeverEarly(t *testing.T) {
	h := newHarness(t, timer.Config{})
	at := h.clock.Now().Add(10 * time.Second)
	h.schedule("a", at, "hello")
	h.clock.Advance(10*time.Second - time.Nanosecond)
	h.settle()
	if n := h.rec.count("a"); n != 0 {
		t.Fatalf("fired %d times before its time", n)
	}
	h.clock.Advance(time.Nanosecond)
	h.waitDone("a")
	if n := h.rec.count("a"); n != 1 {
		t.Fatalf("fired %d times", n)
	}
	r, _, _ := h.store.Get(bg, "a")
	if !r.DoneAt.Equal(at) || r.Attempts != 0 || string(r.Payload) != "hello" {
		t.Fatalf("record %+v", r)
	}
	h.rec.check(t)
}

func TestScheduleIdempotent(t *testing.T) {
	h := newHarness(t, timer.Config{})
	at := h.clock.Now().Add(time.Second)
	h.schedule("a", at, "p")
	h.schedule("a", at, "p")
	err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: "rec", FireAt: at, Payload: []byte("q")})
	if !errors.Is(err, timer.ErrConflict) || !strings.Contains(err.Error(), "a") {
		t.Fatalf("different payload: %v", err)
	}
	if err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: "rec", FireAt: at.Add(time.Second), Payload: []byte("p")}); !errors.Is(err, timer.ErrConflict) {
		t.Fatalf("different time: %v", err)
	}
	h.clock.Advance(time.Second)
	h.waitDone("a")
	// Once done, the same content is still a no-op: it does not fire again.
	h.schedule("a", at, "p")
	h.settle()
	if n := h.rec.count("a"); n != 1 {
		t.Fatalf("fired %d times", n)
	}
	for _, bad := range []timer.Timer{{Handler: "rec", FireAt: at}, {ID: "x", FireAt: at}, {ID: "x", Handler: "rec"},
		{ID: "x", Handler: "rec", FireAt: at, Payload: make([]byte, timer.MaxPayloadBytes+1)}} {
		if err := h.svc.Schedule(bg, bad); err == nil {
			t.Errorf("invalid timer %+v accepted", bad)
		}
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, timer.Config{})
	at := h.clock.Now().Add(time.Second)
	h.schedule("a", at, "")
	h.schedule("b", at, "")
	h.schedule("far", at.Add(time.Hour), "") // outside the window: only in the store
	for _, id := range []string{"a", "far"} {
		if ok, err := h.svc.Cancel(bg, id); err != nil || !ok {
			t.Fatalf("cancel %s: %v %v", id, ok, err)
		}
	}
	if ok, err := h.svc.Cancel(bg, "a"); err != nil || ok {
		t.Fatalf("cancel again: %v %v", ok, err)
	}
	h.clock.Advance(2 * time.Hour)
	h.waitDone("b")
	h.settle()
	if h.rec.count("a") != 0 || h.rec.count("far") != 0 {
		t.Fatalf("cancelled timers fired: %v", h.rec.calls)
	}
	if ok, err := h.svc.Cancel(bg, "b"); err != nil || ok {
		t.Fatalf("cancel fired timer: %v %v", ok, err)
	}
}

func TestRetryWithBackoff(t *testing.T) {
	h := newHarness(t, timer.Config{BackoffBase: time.Second, BackoffMax: 3 * time.Second})
	h.rec.fail["a"] = 4
	at := h.clock.Now().Add(time.Second)
	h.schedule("a", at, "")
	h.clock.Advance(time.Second)
	// Failures wait 1s, 2s, 3s (capped), 3s.
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		attempts := i + 1
		eventually(t, fmt.Sprintf("failure %d recorded", attempts), func() bool {
			r, _, _ := h.store.Get(bg, "a")
			return r.Attempts == attempts
		})
		r, _, _ := h.store.Get(bg, "a")
		if !r.Pending() || r.LastError != "handler failed on purpose" || !r.NextAt.Equal(h.clock.Now().Add(wait)) {
			t.Fatalf("after failure %d: %+v (now %s)", attempts, r, h.clock.Now())
		}
		h.clock.Advance(wait - time.Nanosecond)
		h.settle()
		if n := h.rec.count("a"); n != attempts {
			t.Fatalf("retried early: %d calls after %d failures", n, attempts)
		}
		h.clock.Advance(time.Nanosecond)
	}
	h.waitDone("a")
	r, _, _ := h.store.Get(bg, "a")
	if r.Attempts != 4 || h.rec.count("a") != 5 {
		t.Fatalf("record %+v, calls %d", r, h.rec.count("a"))
	}
	if st := h.svc.Stats(); st.Failed != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnregisteredHandlerRetries(t *testing.T) {
	h := newHarness(t, timer.Config{BackoffBase: time.Second})
	at := h.clock.Now()
	if err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: "later", FireAt: at}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "failure recorded", func() bool {
		r, _, _ := h.store.Get(bg, "a")
		return r.Attempts == 1 && strings.Contains(r.LastError, "no handler")
	})
	done := make(chan struct{}, 1)
	h.svc.Register("later", func(context.Context, timer.Timer) error { done <- struct{}{}; return nil })
	h.clock.Advance(time.Second)
	h.waitDone("a")
	<-done
}

type fakePublisher struct {
	mu   sync.Mutex
	msgs []string
}

func (p *fakePublisher) Publish(_ context.Context, subject, msgID string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, subject+" "+msgID+" "+string(data))
	return nil
}

func TestBusDelivery(t *testing.T) {
	pub := &fakePublisher{}
	h := newHarness(t, timer.Config{Publisher: pub})
	at := h.clock.Now().Add(time.Second)
	if err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: timer.BusPrefix + "ledger.expire", FireAt: at, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	h.waitDone("a")
	want := fmt.Sprintf("ledger.expire timer:a:%d x", at.UnixNano())
	if len(pub.msgs) != 1 || pub.msgs[0] != want {
		t.Fatalf("published %q, want %q", pub.msgs, want)
	}
}

// Timers that came due while no service ran fire at start, with their attempt counts kept.
func TestRestartFiresOverdue(t *testing.T) {
	h := newHarness(t, timer.Config{BackoffBase: time.Minute})
	now := h.clock.Now()
	h.rec.fail["f"] = 1
	h.schedule("f", now, "")
	eventually(t, "failure recorded", func() bool {
		r, _, _ := h.store.Get(bg, "f")
		return r.Attempts == 1
	})
	for i := range 100 {
		h.schedule(fmt.Sprint(i), now.Add(time.Duration(i+1)*time.Second), "")
	}
	h.stop()
	h.clock.Advance(time.Hour)
	h.start(timer.Config{WindowMax: 30}) // smaller than the backlog: several refills
	for i := range 100 {
		h.waitDone(fmt.Sprint(i))
	}
	h.waitDone("f")
	r, _, _ := h.store.Get(bg, "f")
	if r.Attempts != 1 || h.rec.count("f") != 2 {
		t.Fatalf("record %+v, calls %d", r, h.rec.count("f"))
	}
	for i := range 100 {
		if n := h.rec.count(fmt.Sprint(i)); n != 1 {
			t.Fatalf("timer %d fired %d times", i, n)
		}
	}
}

// 10,000 timers over 20 seconds, with a window far smaller than the backlog, some scheduled
// while others fire: each fires exactly once, none early.
func TestTenThousandFireExactlyOnce(t *testing.T) {
	const n = 10_000
	h := newHarness(t, timer.Config{WindowMax: 500, Lookahead: time.Second})
	start := h.clock.Now()
	at := func(i int) time.Time { return start.Add(time.Duration(i) * 2 * time.Millisecond) }
	id := func(i int) string { return fmt.Sprintf("t%05d", i) }
	for i := 0; i < n; i += 2 {
		h.schedule(id(i), at(i), "")
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i < n; i += 2 {
			if err := h.svc.Schedule(bg, timer.Timer{ID: id(i), Handler: "rec", FireAt: at(i)}); err != nil {
				t.Errorf("schedule: %v", err)
				return
			}
		}
	})
	for range 250 {
		h.clock.Advance(100 * time.Millisecond)
		runtime.Gosched() // let the service interleave with the clock
	}
	wg.Wait()
	eventually(t, "all fired", func() bool { return h.svc.Stats().Fired >= n })
	h.clock.Advance(time.Minute)
	h.settle()
	h.rec.check(t)
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	for i := range n {
		if c := h.rec.calls[id(i)]; c != 1 {
			t.Fatalf("%s fired %d times", id(i), c)
		}
	}
}

// A timer cancelled while its handler runs and scheduled again under the same ID fires
// again at its new time.
func TestCancelDuringDeliveryThenReschedule(t *testing.T) {
	h := newHarness(t, timer.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var got []string
	h.svc.Register("block", func(_ context.Context, tm timer.Timer) error {
		mu.Lock()
		got = append(got, string(tm.Payload))
		first := len(got) == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		return nil
	})
	now := h.clock.Now()
	if err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: "block", FireAt: now, Payload: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	<-started
	if ok, err := h.svc.Cancel(bg, "a"); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: "block", FireAt: now.Add(time.Second), Payload: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	close(release)
	h.settle()
	h.clock.Advance(time.Second)
	h.waitDone("a")
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != "[old new]" {
		t.Fatalf("deliveries %v", got)
	}
}

// A timer cancelled while queued for a busy worker is not delivered.
func TestCancelWhileQueued(t *testing.T) {
	h := newHarness(t, timer.Config{Workers: 1})
	started, release := make(chan struct{}), make(chan struct{})
	h.svc.Register("block", func(context.Context, timer.Timer) error {
		close(started)
		<-release
		return nil
	})
	now := h.clock.Now()
	if err := h.svc.Schedule(bg, timer.Timer{ID: "a", Handler: "block", FireAt: now}); err != nil {
		t.Fatal(err)
	}
	<-started
	h.schedule("b", now, "")
	eventually(t, "b queued", func() bool { return h.svc.Stats().InMemory == 2 })
	if ok, err := h.svc.Cancel(bg, "b"); err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	close(release)
	h.waitDone("a")
	h.settle()
	if n := h.rec.count("b"); n != 0 {
		t.Fatalf("cancelled timer delivered %d times", n)
	}
}
