package timer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Defaults for the Config fields left zero.
const (
	DefaultLookahead      = 30 * time.Second
	DefaultWindowMax      = 100_000
	DefaultWorkers        = 64
	DefaultHandlerTimeout = 30 * time.Second
	DefaultBackoffBase    = time.Second
	DefaultBackoffMax     = time.Hour
	DefaultDoneBatchMax   = 1024
	DefaultRefillBatchMax = 1024
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultPurgeEvery     = time.Minute
	DefaultPurgeBatchMax  = 10_000
	DefaultStoreRetry     = time.Second
)

// Config configures a Service. Only Store is required.
type Config struct {
	Store Store
	// Clock defaults to SystemClock.
	Clock Clock
	// Publisher delivers timers whose Handler starts with BusPrefix; without one they fail
	// (and are retried) until one is configured.
	Publisher Publisher
	// Lookahead is how far ahead of now the in-memory window reaches (DefaultLookahead).
	// Timers are loaded from the Store at least Lookahead/2 before they are due.
	Lookahead time.Duration
	// WindowMax bounds the timers held in memory, waiting or being delivered
	// (DefaultWindowMax). Each takes about 260 bytes of Go heap plus its payload (measured:
	// BenchmarkTimerFire in store/sqlite), so the default holds about 26 MB for small
	// payloads however many timers are pending.
	WindowMax int
	// Workers bounds concurrent deliveries (DefaultWorkers).
	Workers int
	// HandlerTimeout is the deadline of the context a handler gets (DefaultHandlerTimeout).
	// Handlers must return when it is done; a worker waits for its handler to return.
	HandlerTimeout time.Duration
	// BackoffBase and BackoffMax shape retries: the n-th failure waits
	// min(BackoffBase·2^(n-1), BackoffMax) (DefaultBackoffBase, DefaultBackoffMax).
	BackoffBase, BackoffMax time.Duration
	// RefillBatchMax bounds the timers loaded from the Store by one query
	// (DefaultRefillBatchMax), which keeps each merge into the window short.
	RefillBatchMax int
	// DoneBatchMax bounds the completions written in one transaction (DefaultDoneBatchMax).
	DoneBatchMax int
	// DoneWait, if positive, is how long the service gathers completions after the first
	// before writing them (wall-clock time, not Clock), unless DoneBatchMax come sooner.
	// Without it completions are written as soon as the previous write ends, which under a
	// steady stream of deliveries is one small transaction after another, each taking the
	// store's write connection (on SQLite the only one, shared with the ledger's commits)
	// and an fsync. A completion not yet written only means the timer fires again after a
	// crash, which handlers tolerate anyway (delivery is at least once).
	DoneWait time.Duration
	// Retention is how long done timers are kept, so that scheduling the same ID again is
	// still recognised as a duplicate (DefaultRetention). Purges run every PurgeEvery
	// (DefaultPurgeEvery), deleting at most PurgeBatchMax timers each (DefaultPurgeBatchMax).
	Retention     time.Duration
	PurgeEvery    time.Duration
	PurgeBatchMax int
	// StoreRetry is the wait after a failed Store call before trying again
	// (DefaultStoreRetry).
	StoreRetry time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told about every delivery attempt (for metrics).
	Observer Observer
	// TracerProvider makes a "timer.fire" span around every delivery attempt (default: none
	// are made).
	TracerProvider trace.TracerProvider
}

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	setDur := func(p *time.Duration, d time.Duration) {
		if *p <= 0 {
			*p = d
		}
	}
	setInt := func(p *int, d int) {
		if *p <= 0 {
			*p = d
		}
	}
	setDur(&c.Lookahead, DefaultLookahead)
	setInt(&c.WindowMax, DefaultWindowMax)
	setInt(&c.Workers, DefaultWorkers)
	setDur(&c.HandlerTimeout, DefaultHandlerTimeout)
	setDur(&c.BackoffBase, DefaultBackoffBase)
	setDur(&c.BackoffMax, DefaultBackoffMax)
	setInt(&c.DoneBatchMax, DefaultDoneBatchMax)
	setInt(&c.RefillBatchMax, DefaultRefillBatchMax)
	setDur(&c.Retention, DefaultRetention)
	setDur(&c.PurgeEvery, DefaultPurgeEvery)
	setInt(&c.PurgeBatchMax, DefaultPurgeBatchMax)
	setDur(&c.StoreRetry, DefaultStoreRetry)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// entry is a timer in the in-memory window.
type entry struct {
	t        Timer
	due      time.Time // NextAt
	attempts int
	index    int // position in the heap; -1 while being delivered
	// cancelled is set when Cancel finds the timer being delivered.
	cancelled bool
	// successor is the due time of a newer scheduling of the same ID (after a Cancel) that
	// must be loaded once this one leaves the window; zero if none.
	successor time.Time
}

type dueHeap []*entry

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].t.ID < h[j].t.ID
}
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// Stats are counters since Start.
type Stats struct {
	Fired     int64 // deliveries that succeeded and were marked done
	Failed    int64 // deliveries that failed (each will be retried)
	InMemory  int   // timers in the window, waiting or being delivered
	WindowMax int   // the bound on InMemory (Config.WindowMax)
}

// Service fires durable timers. Create it with New, register handlers, then Start it.
type Service struct {
	cfg    Config
	tracer trace.Tracer

	hmu      sync.RWMutex
	handlers map[string]HandlerFunc

	mu   sync.Mutex
	heap dueHeap
	byID map[string]*entry
	// horizon: every pending timer with NextAt < horizon is in byID (or is being written
	// by a goroutine that will put it there).
	horizon time.Time
	// truncated: the last refill stopped at WindowMax, so the window may be refilled before
	// time reaches the horizon.
	truncated bool
	// While a refill's query runs, refilling is set, refillTo is its upper bound, gone
	// collects IDs that left the window (so stale rows are not loaded again) and lowered is
	// the lowest due time that could not be put in the window.
	refilling bool
	refillTo  time.Time
	gone      map[string]struct{}
	lowered   time.Time
	// refills counts refills begun and ended: Schedule compares it across its Store write.
	refills atomic.Uint64

	wake       chan struct{} // wakes the firing loop
	refillWake chan struct{} // wakes the refiller
	work       chan *entry
	doneCh     chan *entry

	fired, failed atomic.Int64

	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	workers sync.WaitGroup // the workers (part of wg): stopping waits for them to flush
}

// New returns a service over cfg.Store; it fires nothing until Start.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("timer: Config.Store is required")
	}
	cfg.setDefaults()
	return &Service{
		cfg:        cfg,
		tracer:     newTracer(cfg.TracerProvider),
		handlers:   map[string]HandlerFunc{},
		byID:       map[string]*entry{},
		wake:       make(chan struct{}, 1),
		refillWake: make(chan struct{}, 1),
		work:       make(chan *entry, cfg.Workers),
		doneCh:     make(chan *entry, cfg.WindowMax), // never full: all it holds are in the window
	}, nil
}

// Register sets the in-process handler for timers whose Handler is name. Timers for a name
// with no handler fail and are retried, so a handler may be registered after Start.
func (s *Service) Register(name string, fn HandlerFunc) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.handlers[name] = fn
	s.signal()
}

// Schedule stores t durably and, if it is due within the window, puts it in memory. It is
// idempotent by t.ID: an existing timer with the same content (pending or done within the
// retention period) makes it a no-op; one with different content gives ErrConflict.
func (s *Service) Schedule(ctx context.Context, t Timer) error {
	if err := t.Validate(); err != nil {
		return err
	}
	refills := s.refills.Load()
	created, err := s.cfg.Store.Schedule(ctx, t)
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return fmt.Errorf("timer %s: %w", t.ID, err)
		}
		return fmt.Errorf("timer %s: schedule: %w", t.ID, err)
	}
	if !created {
		return nil
	}
	s.mu.Lock()
	if s.refilling || s.refills.Load() != refills {
		// A refill may have read the new row and the timer may even have fired and left the
		// window since: putting it in now could deliver it twice. Have it loaded from the
		// Store instead, which knows whether it is still pending.
		if t.FireAt.Before(s.limitLocked()) {
			s.lowerLocked(t.FireAt)
		}
	} else {
		s.offerLocked(&entry{t: t, due: t.FireAt, index: -1})
	}
	s.mu.Unlock()
	s.signal()
	return nil
}

// Committed tells the service about timers that another component wrote to its Store in
// its own transaction (as Store.ScheduleMany would), once that transaction has committed: a
// ledger commit writes the expiry timers of its pending transfers this way. Those due within
// the window are put in memory; the others are loaded when their time nears, as are all of
// them if Committed is never called. It only takes the service's lock, so a commit
// goroutine may call it; it does not keep ts.
func (s *Service) Committed(ts []Timer) {
	if len(ts) == 0 {
		return
	}
	s.mu.Lock()
	for _, t := range ts {
		if old := s.byID[t.ID]; old != nil && !old.cancelled && old.t.FireAt.Equal(t.FireAt) {
			continue // already loaded by a refill that saw the committed row
		}
		s.offerLocked(&entry{t: t, due: t.FireAt, index: -1})
	}
	s.mu.Unlock()
	s.signal()
}

// Cancel deletes the pending timer with this ID and reports whether there was one. A
// delivery already running is not interrupted; its result is then ignored.
func (s *Service) Cancel(ctx context.Context, id string) (bool, error) {
	ok, err := s.cfg.Store.Cancel(ctx, id)
	if err != nil {
		return false, fmt.Errorf("timer %s: cancel: %w", id, err)
	}
	s.mu.Lock()
	if e := s.byID[id]; e != nil {
		if e.index >= 0 {
			heap.Remove(&s.heap, e.index)
			s.forgetLocked(e)
		} else {
			e.cancelled = true
		}
	}
	s.mu.Unlock()
	return ok, nil
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	n := len(s.byID)
	s.mu.Unlock()
	return Stats{Fired: s.fired.Load(), Failed: s.failed.Load(), InMemory: n, WindowMax: s.cfg.WindowMax}
}

// Backlog counts the timers pending in the Store and finds the earliest due; see
// Store.Backlog.
func (s *Service) Backlog(ctx context.Context) (Backlog, error) {
	return s.cfg.Store.Backlog(ctx)
}

// Start starts firing timers, beginning with those already due. It returns at once; Stop
// stops the service.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("timer: service already started")
	}
	s.started = true
	s.mu.Unlock()
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(4 + s.cfg.Workers)
	go func() { defer s.wg.Done(); s.loop(ctx) }()
	go func() { defer s.wg.Done(); s.refiller(ctx) }()
	go func() { defer s.wg.Done(); s.commit(ctx) }()
	go func() { defer s.wg.Done(); s.purge(ctx) }()
	s.workers.Add(s.cfg.Workers)
	for range s.cfg.Workers {
		go func() { defer s.wg.Done(); defer s.workers.Done(); s.worker(ctx) }()
	}
	s.cfg.Logger.Info("timer service started", "window_max", s.cfg.WindowMax, "lookahead", s.cfg.Lookahead, "workers", s.cfg.Workers)
	return nil
}

// Stop stops the service and waits for its goroutines. Deliveries in progress are
// abandoned; their timers fire again on the next start.
func (s *Service) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.wg.Wait()
	s.cfg.Logger.Info("timer service stopped", "fired", s.fired.Load(), "failed", s.failed.Load())
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) signalRefill() {
	select {
	case s.refillWake <- struct{}{}:
	default:
	}
}

// limitLocked is the due time below which a timer belongs in the window.
func (s *Service) limitLocked() time.Time {
	if s.refilling && s.refillTo.After(s.horizon) {
		return s.refillTo
	}
	return s.horizon
}

// offerLocked puts e in the window if it belongs there and fits; otherwise it makes sure a
// later refill loads it.
func (s *Service) offerLocked(e *entry) {
	if !e.due.Before(s.limitLocked()) {
		return
	}
	if old := s.byID[e.t.ID]; old != nil {
		// An older scheduling of the same ID, cancelled, is still being delivered: load
		// this one from the Store once that one has left.
		old.successor = minNonZero(old.successor, e.due)
		return
	}
	if len(s.byID) >= s.cfg.WindowMax {
		s.lowerLocked(e.due) // full: load it from the Store later
		return
	}
	s.byID[e.t.ID] = e
	heap.Push(&s.heap, e)
}

func (s *Service) lowerLocked(t time.Time) {
	if t.Before(s.horizon) {
		s.horizon = t
		s.signalRefill()
	}
	if s.refilling && (s.lowered.IsZero() || t.Before(s.lowered)) {
		s.lowered = t
	}
}

// forgetLocked removes e from the window (not from the heap).
func (s *Service) forgetLocked(e *entry) {
	if s.byID[e.t.ID] == e {
		delete(s.byID, e.t.ID)
	}
	if s.refilling {
		s.gone[e.t.ID] = struct{}{}
	}
	if !e.successor.IsZero() {
		s.lowerLocked(e.successor)
	}
	s.signalRefill()
}

// loop hands due timers to the workers.
func (s *Service) loop(ctx context.Context) {
	clock := s.cfg.Clock
	for ctx.Err() == nil {
		now := clock.Now()
		s.mu.Lock()
		for len(s.heap) > 0 && !s.heap[0].due.After(now) {
			select {
			case s.work <- s.heap[0]:
				heap.Pop(&s.heap)
				continue
			default:
			}
			break // workers busy: a finishing worker wakes us
		}
		var tick <-chan time.Time
		if len(s.heap) > 0 && s.heap[0].due.After(now) {
			tick = clock.After(s.heap[0].due.Sub(now))
		}
		s.mu.Unlock()
		select {
		case <-tick:
		case <-s.wake:
		case <-ctx.Done():
		}
	}
}

// refiller keeps the window filled: it loads timers from the Store before they are due,
// in chunks of at most RefillBatchMax, without holding up the firing loop.
func (s *Service) refiller(ctx context.Context) {
	clock := s.cfg.Clock
	for ctx.Err() == nil {
		now := clock.Now()
		s.mu.Lock()
		room := s.cfg.WindowMax - len(s.byID)
		want, at := s.wantRefillLocked(now, room)
		s.mu.Unlock()
		if want {
			if err := s.refill(ctx, now); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.cfg.Logger.Error("timer: load due timers", "err", err)
				select {
				case <-clock.After(s.cfg.StoreRetry):
				case <-ctx.Done():
				}
			}
			continue
		}
		var tick <-chan time.Time
		if !at.IsZero() {
			tick = clock.After(at.Sub(now))
		}
		select {
		case <-tick:
		case <-s.refillWake:
		case <-ctx.Done():
		}
	}
}

// wantRefillLocked reports whether to refill the window now and, if not, when to look
// again (zero: when woken). Refills load whole chunks where they can, so that a window full
// of timers is not topped up one query per freed slot: a chunk is RefillBatchMax timers, or
// a quarter of WindowMax if that is smaller.
func (s *Service) wantRefillLocked(now time.Time, room int) (bool, time.Time) {
	if room <= 0 {
		return false, time.Time{}
	}
	chunk := max(1, min(s.cfg.RefillBatchMax, s.cfg.WindowMax/4))
	// Below this lead the window is topped up with whatever fits.
	urgent := s.horizon.Add(-min(s.cfg.Lookahead/8, time.Second))
	topUp := s.horizon.Add(-s.cfg.Lookahead / 2)
	switch {
	case !now.Before(urgent):
		return true, time.Time{}
	case room >= chunk && !now.Before(topUp):
		return true, time.Time{}
	case room >= chunk && s.truncated && s.horizon.Before(now.Add(s.cfg.Lookahead)):
		return true, time.Time{}
	case room >= chunk:
		return false, topUp
	}
	return false, urgent
}

// refill loads timers due in [horizon, now+Lookahead) into the window.
func (s *Service) refill(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	from := s.horizon
	if from.IsZero() {
		from = time.Unix(0, 0)
	}
	to := now.Add(s.cfg.Lookahead)
	room := min(s.cfg.WindowMax-len(s.byID), s.cfg.RefillBatchMax)
	if room <= 0 {
		// The window filled (Schedule, Committed) since the refiller looked: a query for
		// nothing would read as "everything up to to is loaded" and move the horizon past
		// timers that are in neither the window nor a later refill's range.
		s.mu.Unlock()
		return nil
	}
	s.refilling, s.refillTo, s.gone, s.lowered = true, to, map[string]struct{}{}, time.Time{}
	s.refills.Add(1)
	s.mu.Unlock()

	recs, err := s.cfg.Store.Due(ctx, from, to, room)

	s.mu.Lock()
	defer s.mu.Unlock()
	lowered, gone := s.lowered, s.gone
	s.refilling, s.gone, s.lowered = false, nil, time.Time{}
	s.refills.Add(1)
	if err != nil {
		if !lowered.IsZero() && lowered.Before(s.horizon) {
			s.horizon = lowered
		}
		return err
	}
	horizon := to
	s.truncated = len(recs) >= room
	if s.truncated {
		// Only what was read is known to be loaded: the horizon stops at the last row.
		horizon = recs[len(recs)-1].NextAt
	}
	for _, r := range recs {
		if old, ok := s.byID[r.ID]; ok {
			if !old.t.FireAt.Equal(r.FireAt) {
				old.successor = minNonZero(old.successor, r.NextAt)
			}
			continue
		}
		if _, ok := gone[r.ID]; ok {
			continue // left the window during the query: the row read may be stale
		}
		if len(s.byID) >= s.cfg.WindowMax {
			horizon = minTime(horizon, r.NextAt)
			s.truncated = true
			break
		}
		e := &entry{t: r.Timer, due: r.NextAt, attempts: r.Attempts}
		s.byID[r.ID] = e
		heap.Push(&s.heap, e)
	}
	if !lowered.IsZero() {
		horizon = minTime(horizon, lowered)
	}
	s.horizon = horizon
	if len(s.heap) > 0 {
		s.signal()
	}
	return nil
}

func minNonZero(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return minTime(a, b)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// worker delivers timers.
func (s *Service) worker(ctx context.Context) {
	for {
		var e *entry
		select {
		case e = <-s.work:
			s.signal() // room in the queue: the loop may hand out more
		case <-ctx.Done():
			return
		}
		s.mu.Lock()
		cancelled := e.cancelled
		if cancelled {
			s.forgetLocked(e)
		}
		s.mu.Unlock()
		if cancelled {
			continue // cancelled while queued
		}
		started := s.cfg.Clock.Now()
		err := s.deliverTraced(ctx, e, started)
		if ctx.Err() != nil {
			return // abandoned: fires again after a restart
		}
		if o := s.cfg.Observer; o != nil {
			o.TimerDelivered(Delivery{Handler: e.t.Handler, Attempt: e.attempts + 1, Lateness: started.Sub(e.due), Err: err})
		}
		if err == nil {
			s.doneCh <- e // never blocks: doneCh has room for every timer in the window
			continue
		}
		s.failed.Add(1)
		attempts := e.attempts + 1
		next := s.cfg.Clock.Now().Add(s.backoff(attempts))
		msg := err.Error()
		if len(msg) > MaxErrorBytes {
			msg = msg[:MaxErrorBytes]
		}
		if ferr := s.cfg.Store.Fail(ctx, Key{e.t.ID, e.t.FireAt}, attempts, msg, next); ferr != nil {
			// The retry still happens from memory; after a restart it happens at once.
			s.cfg.Logger.Error("timer: record failure", "id", e.t.ID, "err", ferr)
		}
		s.mu.Lock()
		e.attempts, e.due = attempts, next
		if e.cancelled {
			s.forgetLocked(e)
		} else if next.Before(s.limitLocked()) {
			heap.Push(&s.heap, e)
		} else {
			s.forgetLocked(e) // a later refill loads it
		}
		s.mu.Unlock()
		s.signal()
	}
}

// backoff is the wait after the n-th failure.
func (s *Service) backoff(n int) time.Duration {
	d := s.cfg.BackoffBase
	for i := 1; i < n && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, s.cfg.BackoffMax)
}

func (s *Service) deliver(ctx context.Context, t Timer) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HandlerTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler %s panicked: %v", t.Handler, r)
		}
	}()
	if subject, ok := t.Subject(); ok {
		if s.cfg.Publisher == nil {
			return fmt.Errorf("no publisher configured for %s", t.Handler)
		}
		return s.cfg.Publisher.Publish(ctx, subject, fmt.Sprintf("timer:%s:%d", t.ID, t.FireAt.UnixNano()), t.Payload)
	}
	s.hmu.RLock()
	fn := s.handlers[t.Handler]
	s.hmu.RUnlock()
	if fn == nil {
		return fmt.Errorf("no handler registered for %q", t.Handler)
	}
	return fn(ctx, t)
}

// flushDone writes, as the service stops, the completions not written yet — batch, and those
// the workers hand over until they have all returned — so that a clean stop does not deliver
// them again at the next start (which matters with DoneWait). It gives storage a few
// seconds; what it cannot write fires again after a restart.
func (s *Service) flushDone(ctx context.Context, batch []*entry) {
	s.workers.Wait()
	for {
		select {
		case e := <-s.doneCh:
			batch = append(batch, e)
			continue
		default:
		}
		break
	}
	keys := make([]Key, 0, len(batch))
	for _, e := range batch {
		keys = append(keys, Key{e.t.ID, e.t.FireAt})
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for len(keys) > 0 {
		n := min(len(keys), s.cfg.DoneBatchMax)
		if err := s.cfg.Store.Done(wctx, keys[:n], s.cfg.Clock.Now()); err != nil {
			s.cfg.Logger.Error("timer: mark done while stopping", "timers", len(keys), "err", err)
			return
		}
		s.fired.Add(int64(n))
		keys = keys[n:]
	}
}

// commit marks delivered timers done, in groups of up to DoneBatchMax per transaction.
func (s *Service) commit(ctx context.Context) {
	batch := make([]*entry, 0, s.cfg.DoneBatchMax)
	keys := make([]Key, 0, s.cfg.DoneBatchMax)
	for {
		batch, keys = batch[:0], keys[:0]
		select {
		case e := <-s.doneCh:
			batch = append(batch, e)
		case <-ctx.Done():
			s.flushDone(ctx, nil)
			return
		}
		if w := s.cfg.DoneWait; w > 0 {
			t := time.NewTimer(w)
		gather:
			for len(batch) < s.cfg.DoneBatchMax {
				select {
				case e := <-s.doneCh:
					batch = append(batch, e)
				case <-t.C:
					break gather
				case <-ctx.Done():
					t.Stop()
					s.flushDone(ctx, batch)
					return
				}
			}
			t.Stop()
		}
	drain:
		for len(batch) < s.cfg.DoneBatchMax {
			select {
			case e := <-s.doneCh:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		for _, e := range batch {
			keys = append(keys, Key{e.t.ID, e.t.FireAt})
		}
		for {
			err := s.cfg.Store.Done(ctx, keys, s.cfg.Clock.Now())
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				s.flushDone(ctx, batch)
				return
			}
			s.cfg.Logger.Error("timer: mark done", "timers", len(keys), "err", err)
			select {
			case <-s.cfg.Clock.After(s.cfg.StoreRetry):
			case <-ctx.Done():
				s.flushDone(ctx, batch)
				return
			}
		}
		s.mu.Lock()
		for _, e := range batch {
			s.forgetLocked(e)
		}
		s.mu.Unlock()
		s.fired.Add(int64(len(batch)))
		s.signal()
	}
}

// purge deletes done timers older than the retention period.
func (s *Service) purge(ctx context.Context) {
	for {
		select {
		case <-s.cfg.Clock.After(s.cfg.PurgeEvery):
		case <-ctx.Done():
			return
		}
		before := s.cfg.Clock.Now().Add(-s.cfg.Retention)
		if _, err := s.cfg.Store.Purge(ctx, before, s.cfg.PurgeBatchMax); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Error("timer: purge done timers", "err", err)
		}
	}
}
