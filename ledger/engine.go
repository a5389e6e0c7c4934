package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/timer"
)

// Config tunes the engine. Zero values take the defaults.
type Config struct {
	// QueueMax bounds the requests waiting for the writer (default 4096). When it is full a
	// request waits up to EnqueueWait, then fails with apierror.Overloaded.
	QueueMax    int
	EnqueueWait time.Duration
	// GroupMax bounds the inputs the writer takes into one group commit (default 16384). A
	// single request is never split, so a group may exceed it by one request.
	GroupMax int
	// CacheMax bounds the accounts the writer keeps in memory (default 1,000,000).
	CacheMax int
	// CommitInterval, if positive, is the least time between the starts of two group
	// commits while requests keep coming: the writer holds the next group open until then,
	// gathering what arrives. Each commit has a fixed cost (a transaction, its WAL pages, an
	// fsync); under a steady stream of small requests — payments, each three units — a
	// millisecond or two of gathering more than pays for itself. An idle writer commits a
	// request at once.
	CommitInterval time.Duration
	// RecordCacheMax bounds the versions of module records (Unit.Records) the writer keeps
	// in memory, so that a record written again soon (the next state of a payment) is
	// checked without a read (default 100,000; about 100 bytes each).
	RecordCacheMax int
	// ExpiryInterval, if positive, makes the engine sweep storage for pending transfers past
	// their timeout, at start and then every ExpiryInterval, and expire them. It is off by
	// default: each pending transfer with a timeout commits with a durable expiry timer
	// (Batch.Timers) whose handler, ExpireTimer, expires it on time. The sweep is for an
	// engine run without a timer service (docs/adr/0012-ledger-expiry-on-timers.md).
	ExpiryInterval time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// Observer, if set, is told about every group commit (for metrics).
	Observer Observer
	// Committed, if set, is called after every group commit that wrote events, on the
	// engine's commit goroutine: it must not block (the outbox relay's Notify is a
	// non-blocking channel send).
	Committed func()
	// TracerProvider makes the engine's spans (default: none are made).
	TracerProvider trace.TracerProvider
	// TimersCommitted, if set, is given the timers of every group commit that wrote some
	// (Batch.Timers), on the engine's commit goroutine, after the commit: it must not block
	// and must not keep the slice. (*timer.Service).Committed fits.
	TimersCommitted func([]timer.Timer)
	// Lessor, if set, is for several processes sharing one store: the engine writes only
	// while it holds the writer lease Lessor hands out, and is a standby otherwise (reads
	// work; writes fail with not_leader). Without it the engine is the writer from Open to
	// Close, as the only process on its storage (docs/locks.md).
	Lessor Lessor
}

// Observer receives the outcome of every group commit the engine hands to storage. It is
// called on the engine's commit goroutine before the group's requests are acknowledged, so it
// must be fast, must not block and must not call the engine.
type Observer interface {
	GroupCommitted(c GroupCommit)
}

// GroupCommit describes one group commit: what it held and how storage answered.
type GroupCommit struct {
	Inputs   int           // inputs (accounts, transfers, expiries) in the group's requests
	Records  int           // journal records written (attempted, if Err is set)
	Accounts int           // accounts created (attempted, if Err is set)
	Duration time.Duration // time spent in Store.Commit
	Err      error         // the commit's error, or nil
}

func (c *Config) defaults() {
	if c.QueueMax <= 0 {
		c.QueueMax = 4096
	}
	if c.EnqueueWait <= 0 {
		c.EnqueueWait = 2 * time.Second
	}
	if c.GroupMax <= 0 {
		c.GroupMax = 16384
	}
	if c.CacheMax <= 0 {
		c.CacheMax = 1_000_000
	}
	if c.RecordCacheMax <= 0 {
		c.RecordCacheMax = 100_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// BatchError is the failure of an atomic batch: the index of the failing input and why.
type BatchError struct {
	Index int
	Err   *apierror.Error
}

func (e *BatchError) Error() string { return fmt.Sprintf("batch item %d: %v", e.Index, e.Err) }

// Stats are the engine's counters since it opened.
type Stats struct {
	Groups       int64 // group commits written
	Records      int64 // journal records written
	Accounts     int64 // accounts created
	QueueDepth   int   // requests waiting now
	CommitNanos  int64 // total time spent in Store.Commit
	LastGroupLen int64 // inputs in the last group
}

// Engine is the ledger's single writer. Callers on any goroutine submit requests; one
// goroutine takes whatever has queued, validates it against cached balances, writes it in one
// storage transaction and then acknowledges every request in it (group commit).
type Engine struct {
	store  Store
	cfg    Config
	tracer trace.Tracer
	stop   chan struct{} // closed by Close
	wg     sync.WaitGroup
	once   sync.Once

	term   atomic.Pointer[term]           // the writer's current term; nil while a standby
	failed atomic.Pointer[apierror.Error] // why the engine cannot write now; nil if it can

	groups, records, accounts, commitNanos, lastGroupLen atomic.Int64

	// Owned by the writer goroutine.
	cache      map[string]*Account
	recCache   map[RecordKey]recordHead // the latest versions of records written or read lately
	lastTs     Timestamp
	lastHash   []byte
	needReload bool
	g          *group   // the group being prepared
	bufs       [2]group // groups alternate: one prepared while the other commits
	prev       *group   // the group being committed, if any
}

type request struct {
	accounts  []AccountInput
	transfers []TransferInput
	expire    []string
	atomic    bool
	unit      *Unit           // for Commit: records, events and timers written with the transfers
	outcomes  []expireOutcome // per expire input

	invalid []*apierror.Error // per input, found before queueing (non-atomic only)
	ares    []AccountResult
	tres    []TransferResult
	err     error
	done    chan struct{}

	span        trace.SpanContext // the submitter's span
	commit      trace.SpanContext // the span of the commit that wrote it
	commitChild bool              // the commit span is a child of span
}

func (r *request) size() int {
	n := len(r.accounts) + len(r.transfers) + len(r.expire)
	if r.unit != nil {
		n += len(r.unit.Records)
	}
	return n
}

// Open starts an engine on st. Without Config.Lessor it makes the engine the writer of st at
// once. With one, the engine becomes the writer if the lease is free now (a lone instance, or
// one restarted under the same holder, is the writer before Open returns), and otherwise
// starts as a standby that takes over when the lease comes free.
func Open(ctx context.Context, st Store, cfg Config) (*Engine, error) {
	cfg.defaults()
	e := &Engine{
		store:    st,
		cfg:      cfg,
		tracer:   newTracer(cfg.TracerProvider),
		stop:     make(chan struct{}),
		cache:    make(map[string]*Account),
		recCache: make(map[RecordKey]recordHead),
	}
	e.bufs[0].init()
	e.bufs[1].init()
	if cfg.Lessor == nil {
		if _, err := e.startTerm(ctx, nil); err != nil {
			return nil, fmt.Errorf("ledger writer: %w", err)
		}
	} else {
		e.failed.Store(errStandby())
		lease, err := cfg.Lessor.TryAcquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("ledger writer lease: %w", err)
		}
		var first *term
		if lease == nil {
			cfg.Logger.Info("ledger standby: another instance holds the writer lease")
		} else if first, err = e.startTerm(ctx, lease); err != nil {
			e.releaseLease(lease)
			if !errors.Is(err, ErrFenced) {
				return nil, fmt.Errorf("ledger writer: %w", err)
			}
			cfg.Logger.Warn("ledger standby: storage has seen a newer writer lease", "err", err)
		}
		e.wg.Add(1)
		go e.lead(first)
	}
	if cfg.ExpiryInterval > 0 {
		e.wg.Add(1)
		go e.expireLoop()
	}
	return e, nil
}

// Close stops the engine after the group in progress; queued requests fail with Unavailable.
// An engine with a Lessor releases its lease, so that a standby takes over at once.
func (e *Engine) Close() error {
	e.once.Do(func() { close(e.stop) })
	e.wg.Wait()
	return nil
}

// Writable reports whether the engine can write now: false once it is closed, while it is a
// standby, and once it has been fenced by a newer writer. A storage error that the writer may
// recover from leaves it true.
func (e *Engine) Writable() bool { return e.WriteErr() == nil }

// WriteErr returns the error writes get now (an *apierror.Error: unavailable when closed,
// not_leader while a standby or fenced), or nil if the engine can write.
func (e *Engine) WriteErr() error {
	select {
	case <-e.stop:
		return apierror.New(apierror.Unavailable, "")
	default:
	}
	if err := e.failed.Load(); err != nil {
		return err
	}
	if e.term.Load() == nil {
		return errStandby()
	}
	return nil
}

// Token is the writer token of the engine's current term (the one storage checks on every
// commit), or 0 while it is a standby.
func (e *Engine) Token() int64 {
	if t := e.term.Load(); t != nil {
		return t.token
	}
	return 0
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	depth := 0
	if t := e.term.Load(); t != nil {
		depth = len(t.queue)
	}
	return Stats{
		Groups: e.groups.Load(), Records: e.records.Load(), Accounts: e.accounts.Load(),
		QueueDepth: depth, CommitNanos: e.commitNanos.Load(), LastGroupLen: e.lastGroupLen.Load(),
	}
}

// CreateAccounts creates accounts. Each input succeeds or fails on its own.
func (e *Engine) CreateAccounts(ctx context.Context, ins []AccountInput) ([]AccountResult, error) {
	r := &request{accounts: ins, invalid: make([]*apierror.Error, len(ins))}
	for i := range ins {
		r.invalid[i] = ValidateAccount(&ins[i])
	}
	if err := e.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.ares, r.err
}

// CreateTransfers applies transfer inputs in order. With atomic, either all apply or none
// does and the error is a *BatchError naming the first failing input; otherwise each input
// succeeds or fails on its own and the error is nil unless the whole request failed.
func (e *Engine) CreateTransfers(ctx context.Context, ins []TransferInput, atomic bool) ([]TransferResult, error) {
	if len(ins) > BatchMax {
		return nil, apierror.Newf(apierror.BatchTooLarge, "transfers", "the batch holds %d transfers; at most %d are allowed", len(ins), BatchMax)
	}
	r := &request{transfers: ins, atomic: atomic}
	// Invalid inputs are marked here, off the writer, and fail in order with the rest: an
	// atomic batch fails at its first failing input, whether invalid or refused by a rule.
	for i := range ins {
		if err := ValidateTransfer(&ins[i]); err != nil {
			if r.invalid == nil {
				r.invalid = make([]*apierror.Error, len(ins))
			}
			r.invalid[i] = err
		}
	}
	if err := e.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.tres, r.err
}

// CreateTransfer applies one transfer input.
func (e *Engine) CreateTransfer(ctx context.Context, in TransferInput) (*Transfer, bool, error) {
	res, err := e.CreateTransfers(ctx, []TransferInput{in}, false)
	if err != nil {
		return nil, false, err
	}
	return res[0].Transfer, res[0].Created, res[0].Err
}

func (e *Engine) submit(ctx context.Context, r *request) (err error) {
	if err := e.WriteErr(); err != nil {
		return err
	}
	tm := e.term.Load()
	if tm == nil {
		return e.failure()
	}
	ctx, span := e.startWrite(ctx, r)
	defer func() { endWrite(span, r, err) }()
	r.done = make(chan struct{})
	select {
	case <-tm.stop:
		return e.failure()
	default:
	}
	select {
	case tm.queue <- r:
	default:
		t := time.NewTimer(e.cfg.EnqueueWait)
		defer t.Stop()
		select {
		case tm.queue <- r:
		case <-ctx.Done():
			return ctx.Err()
		case <-tm.stop:
			return e.failure()
		case <-t.C:
			return apierror.New(apierror.Overloaded, "")
		}
	}
	select {
	case <-r.done:
		return nil
	case <-tm.exited:
		// Queued after the term's writer drained its queue: nobody will answer it, and no
		// later term will see it.
		select {
		case <-r.done:
			return nil
		default:
			return e.failure()
		}
	case <-ctx.Done():
		// The request may still be applied; an idempotent retry tells.
		return ctx.Err()
	}
}

// run is the writer loop. It is pipelined: while one group is being committed by its own
// goroutine, the writer gathers and applies the next one in memory; when that commit ends it
// tops the next group up with what queued meanwhile (topUp) and hands it to storage if the
// previous commit has succeeded. Records of the group in flight are
// read from memory (they are not visible in storage yet), so the next group sees them.
func (e *Engine) run(t *term) {
	defer e.wg.Done()
	for {
		var first *request
		select {
		case <-t.stop:
		case <-e.stop:
		case first = <-t.queue:
		}
		if first == nil {
			e.settle()
			e.drain(t.queue)
			close(t.exited)
			return
		}
		g := &e.bufs[0]
		if g == e.prev {
			g = &e.bufs[1]
		}
		g.reqs = append(g.reqs[:0], first)
		n := first.size()
	more:
		for n < e.cfg.GroupMax {
			select {
			case r := <-t.queue:
				g.reqs = append(g.reqs, r)
				n += r.size()
			default:
				break more
			}
		}
		e.lastGroupLen.Store(int64(n))
		g.inputs = n
		if len(e.cache) > e.cfg.CacheMax {
			// Evict only with nothing in flight: every cached balance is then durable.
			e.settle()
			e.evict()
		}
		if len(e.recCache) > e.cfg.RecordCacheMax {
			// Safe at any time: a version not cached is in the group in flight or in storage.
			e.evictRecords()
		}
		ok := e.prepare(g)
		if ok {
			e.topUp(t, g)
			e.seal(g)
		}
		if prevFailed := e.settle(); prevFailed {
			if ok {
				e.finish(g.reqs, e.failure())
			}
			continue
		}
		if ok {
			e.prev = g
			g.started = time.Now()
			e.wg.Add(1)
			go e.commit(t, g)
		}
	}
}

// failure is the error for requests that cannot be written now.
func (e *Engine) failure() error {
	if err := e.WriteErr(); err != nil {
		return err
	}
	return apierror.New(apierror.Unavailable, "")
}

// settle waits for the group in flight, if any, and reports whether its commit failed. After
// a failure the cached state (which includes the failed group) is dropped and the journal
// head reloaded before the next group.
func (e *Engine) settle() (failed bool) {
	p := e.prev
	if p == nil {
		return false
	}
	<-p.done
	e.prev = nil
	if p.err == nil {
		return false
	}
	clear(e.cache)
	clear(e.recCache)
	e.needReload = true
	return true
}

func (e *Engine) evict() {
	n := len(e.cache) - e.cfg.CacheMax*3/4
	for id := range e.cache {
		if n <= 0 {
			break
		}
		delete(e.cache, id)
		n--
	}
}

func (e *Engine) evictRecords() {
	n := len(e.recCache) - e.cfg.RecordCacheMax*3/4
	for k := range e.recCache {
		if n <= 0 {
			break
		}
		delete(e.recCache, k)
		n--
	}
}

// commit writes a prepared group of term t and acknowledges its requests.
func (e *Engine) commit(t *term, g *group) {
	defer e.wg.Done()
	defer close(g.done)
	b := &g.batch
	if len(b.NewAccounts)+len(b.Transfers)+len(b.Closed)+len(b.Records)+len(b.Events)+len(b.Timers) > 0 {
		if t.lease != nil && !t.lease.Valid() {
			// Not worth sending: storage would accept it only if nobody has taken over yet.
			g.err = errLeaseExpired
			e.cfg.Logger.Error("ledger writer lease expired: not committing", "token", t.token)
			e.failed.Store(errFencedWriter())
			e.finish(g.reqs, errFencedWriter())
			t.fence()
			return
		}
		ctx, span := e.startCommit(g)
		t0 := time.Now()
		err := e.store.Commit(ctx, t.token, b)
		d := time.Since(t0)
		endCommit(span, err)
		e.commitNanos.Add(int64(d))
		if o := e.cfg.Observer; o != nil {
			o.GroupCommitted(GroupCommit{
				Inputs: g.inputs, Records: len(b.Transfers), Accounts: len(b.NewAccounts), Duration: d, Err: err,
			})
		}
		if err != nil {
			g.err = err
			if errors.Is(err, ErrFenced) {
				e.cfg.Logger.Error("ledger writer fenced: stopping writes", "token", t.token, "err", err)
				e.failed.Store(errFencedWriter())
				e.finish(g.reqs, errFencedWriter())
				t.fence()
				return
			}
			// The commit may or may not have reached storage. The writer reloads; clients
			// retry idempotently and learn which.
			e.cfg.Logger.Error("ledger commit failed", "err", err, "records", len(b.Transfers))
			e.finish(g.reqs, apierror.New(apierror.Unavailable, ""))
			return
		}
		e.groups.Add(1)
		e.records.Add(int64(len(b.Transfers)))
		e.accounts.Add(int64(len(b.NewAccounts)))
		if f := e.cfg.Committed; f != nil && len(b.Events) > 0 {
			f()
		}
		if f := e.cfg.TimersCommitted; f != nil && len(b.Timers) > 0 {
			f(b.Timers)
		}
	}
	for _, r := range g.reqs {
		close(r.done)
	}
}

// drain fails what is left in a term's queue.
func (e *Engine) drain(q chan *request) {
	for {
		select {
		case r := <-q:
			r.err = e.failure()
			close(r.done)
		default:
			return
		}
	}
}

// group is the writer's working state for one group commit.
type group struct {
	reqs      []*request
	inputs    int           // inputs of reqs
	done      chan struct{} // closed when the commit has finished
	started   time.Time     // when the commit started
	err       error         // the commit's error, set before done is closed
	now       Timestamp
	batch     Batch
	transfers map[string]*Transfer // records created in this group, by id
	existing  map[string]*Transfer // records loaded from the store
	undo      []undoRec
	startHash []byte
	acctIDs   []string
	trIDs     []string
	eventBuf  []byte // the encoded payloads of batch.Events, reused across commits

	records       map[RecordKey]*Record    // records written in this group
	loadedRecords map[RecordKey]recordHead // current versions loaded for this group
	recKeys       []RecordKey
	more          []*request // requests being added by topUp
	moduleEvents  []Event    // events of units, appended after the ledger's own
}

func (g *group) init() {
	g.transfers = make(map[string]*Transfer)
	g.existing = make(map[string]*Transfer)
	g.records = make(map[RecordKey]*Record)
	g.loadedRecords = make(map[RecordKey]recordHead)
}

func (g *group) reset() {
	clear(g.transfers)
	clear(g.existing)
	clear(g.records)
	clear(g.loadedRecords)
	g.recKeys = g.recKeys[:0]
	clear(g.more)
	g.more = g.more[:0]
	g.moduleEvents = g.moduleEvents[:0]
	g.batch = Batch{
		NewAccounts: g.batch.NewAccounts[:0],
		Transfers:   g.batch.Transfers[:0], Closed: g.batch.Closed[:0], Events: g.batch.Events[:0],
		Timers: g.batch.Timers[:0], Records: g.batch.Records[:0], Keep: g.batch.Keep[:0],
	}
	g.undo = g.undo[:0]
	g.acctIDs = g.acctIDs[:0]
	g.trIDs = g.trIDs[:0]
}

func (g *group) lookup(id string) *Transfer {
	if t := g.transfers[id]; t != nil {
		return t
	}
	return g.existing[id]
}

type undoKind uint8

const (
	undoBalances undoKind = iota
	undoNewAccount
	undoStatus
)

type undoRec struct {
	kind   undoKind
	a      *Account
	bal    Balances
	tr     *Transfer
	status Status
}

type savepoint struct {
	undo, newAccounts, transfers, closed, timers int
	lastTs                                       Timestamp
	lastHash                                     []byte
}

func (e *Engine) save() savepoint {
	g := e.g
	return savepoint{len(g.undo), len(g.batch.NewAccounts), len(g.batch.Transfers), len(g.batch.Closed), len(g.batch.Timers), e.lastTs, e.lastHash}
}

// rollback undoes everything applied since sp.
func (e *Engine) rollback(sp savepoint) {
	g := e.g
	for i := len(g.undo) - 1; i >= sp.undo; i-- {
		u := &g.undo[i]
		switch u.kind {
		case undoBalances:
			u.a.Balances = u.bal
		case undoNewAccount:
			delete(e.cache, u.a.ID)
		case undoStatus:
			u.tr.Status = u.status
		}
	}
	g.undo = g.undo[:sp.undo]
	g.batch.NewAccounts = g.batch.NewAccounts[:sp.newAccounts]
	for _, t := range g.batch.Transfers[sp.transfers:] {
		delete(g.transfers, t.ID)
	}
	g.batch.Transfers = g.batch.Transfers[:sp.transfers]
	g.batch.Closed = g.batch.Closed[:sp.closed]
	g.batch.Timers = g.batch.Timers[:sp.timers]
	e.lastTs, e.lastHash = sp.lastTs, sp.lastHash
}

// prepare loads what g refers to and applies it in memory. It reports false if g's requests
// have already been failed.
func (e *Engine) prepare(g *group) bool {
	ctx := context.Background()
	e.g = g
	g.reset()
	g.done, g.err = make(chan struct{}), nil
	if err := e.failed.Load(); err != nil {
		e.finish(g.reqs, err)
		return false
	}
	if e.needReload {
		e.settle()
		head, err := e.store.Head(ctx)
		if err != nil {
			e.cfg.Logger.Error("reload journal head", "err", err)
			e.finish(g.reqs, apierror.New(apierror.Unavailable, ""))
			return false
		}
		e.lastTs, e.lastHash, e.needReload = head.Timestamp, head.Hash, false
	}
	if err := e.load(ctx, g.reqs); err != nil {
		e.cfg.Logger.Error("ledger load", "err", err)
		e.finish(g.reqs, apierror.New(apierror.Unavailable, ""))
		return false
	}
	g.now = Timestamp(e.cfg.Now().UnixNano())
	g.startHash = e.lastHash
	for _, r := range g.reqs {
		e.apply(r)
	}
	return true
}

// topUp adds to the prepared group g the requests that arrived while the previous group
// committed: it waits for that commit to end (or the writer to stop), then loads and applies
// what has queued meanwhile. A group thus closes when storage is free to take it: a request
// waits for the commit in flight and its own, not also for a group that closed just before it
// came; and groups grow with the commit time, which keeps the work per request down when
// commits are slow. (Taking requests one by one as they arrive costs more than it saves:
// each is a wake-up of the writer and a read of storage.)
func (e *Engine) topUp(t *term, g *group) {
	p := e.prev
	if p == nil {
		return
	}
	select {
	case <-p.done:
	case <-t.stop:
		return
	case <-e.stop:
		return
	}
	if wait := time.Until(p.started.Add(e.cfg.CommitInterval)); e.cfg.CommitInterval > 0 && wait > 0 {
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-t.stop:
		case <-e.stop:
		}
		tm.Stop()
	}
	more, n := g.more[:0], 0
	for g.inputs+n < e.cfg.GroupMax {
		select {
		case r := <-t.queue:
			more = append(more, r)
			n += r.size()
			continue
		default:
		}
		break
	}
	g.more = more
	if len(more) > 0 {
		e.prepareMore(g, more, n)
	}
}

// prepareMore loads and applies reqs (of n inputs) into the prepared group g. If they cannot
// be (the writer failed, or a read failed), they alone fail.
func (e *Engine) prepareMore(g *group, reqs []*request, n int) {
	if err := e.failed.Load(); err != nil {
		e.finish(reqs, err)
		return
	}
	g.acctIDs, g.trIDs, g.recKeys = g.acctIDs[:0], g.trIDs[:0], g.recKeys[:0]
	if err := e.load(context.Background(), reqs); err != nil {
		e.cfg.Logger.Error("ledger load", "err", err)
		e.finish(reqs, apierror.New(apierror.Unavailable, ""))
		return
	}
	if now := Timestamp(e.cfg.Now().UnixNano()); now > g.now {
		g.now = now
	}
	for _, r := range reqs {
		e.apply(r)
	}
	g.reqs = append(g.reqs, reqs...)
	g.inputs += n
	e.lastGroupLen.Store(int64(g.inputs))
}

// seal finishes a prepared group for its commit: the events of its accounts and transfers
// are encoded (on the writer, so that the commit path, which bounds throughput, only writes
// the bytes), then the events of its units follow them.
func (e *Engine) seal(g *group) {
	g.eventBuf = encodeEvents(&g.batch, g.eventBuf)
	g.batch.Events = append(g.batch.Events, g.moduleEvents...)
}

// finish fails every request of a group that could not be written.
func (e *Engine) finish(reqs []*request, err error) {
	for _, r := range reqs {
		r.ares, r.tres, r.err = nil, nil, err
		close(r.done)
	}
}

// load brings every account and transfer the group refers to into memory, in two or three
// queries for the whole group.
func (e *Engine) load(ctx context.Context, reqs []*request) error {
	g := e.g
	for _, r := range reqs {
		for i := range r.accounts {
			if id := r.accounts[i].ID; id != "" && e.cache[id] == nil {
				g.acctIDs = append(g.acctIDs, id)
			}
		}
		for i := range r.transfers {
			in := &r.transfers[i]
			if r.invalid != nil && r.invalid[i] != nil {
				continue
			}
			g.trIDs = append(g.trIDs, in.ID)
			if in.Action == ActionCreate {
				if e.cache[in.DebitAccountID] == nil {
					g.acctIDs = append(g.acctIDs, in.DebitAccountID)
				}
				if e.cache[in.CreditAccountID] == nil {
					g.acctIDs = append(g.acctIDs, in.CreditAccountID)
				}
			} else {
				g.trIDs = append(g.trIDs, in.PendingID)
			}
		}
		g.trIDs = append(g.trIDs, r.expire...)
		if r.unit != nil {
			for i := range r.unit.Records {
				g.recKeys = append(g.recKeys, r.unit.Records[i].Record.Key())
			}
		}
	}
	if err := e.loadRecords(ctx); err != nil {
		return err
	}
	if len(g.trIDs) > 0 {
		ids := dedupe(g.trIDs)
		if len(g.transfers)+len(g.existing) > 0 {
			// Adding to a prepared group (topUp): what it knows — created here, or loaded
			// and perhaps closed here — is newer than storage and the group in flight.
			unknown := ids[:0]
			for _, id := range ids {
				if g.lookup(id) == nil {
					unknown = append(unknown, id)
				}
			}
			ids = unknown
		}
		var trs []*Transfer
		if p := e.prev; p != nil {
			// Records of the group in flight are not in storage yet (or just got there):
			// take them from memory, as copies, since the committer is reading them.
			rest := ids[:0:0]
			for _, id := range ids {
				if t := p.lookup(id); t != nil {
					cp := *t
					trs = append(trs, &cp)
				} else {
					rest = append(rest, id)
				}
			}
			ids = rest
		}
		if len(ids) > 0 {
			loaded, err := e.store.LoadTransfers(ctx, ids)
			if err != nil {
				return err
			}
			trs = append(trs, loaded...)
		}
		for _, t := range trs {
			g.existing[t.ID] = t
			if t.Pending {
				if e.cache[t.DebitAccountID] == nil {
					g.acctIDs = append(g.acctIDs, t.DebitAccountID)
				}
				if e.cache[t.CreditAccountID] == nil {
					g.acctIDs = append(g.acctIDs, t.CreditAccountID)
				}
			}
		}
	}
	if len(g.acctIDs) > 0 {
		accts, err := e.store.LoadAccounts(ctx, dedupe(g.acctIDs))
		if err != nil {
			return err
		}
		for _, a := range accts {
			if e.cache[a.ID] == nil {
				e.cache[a.ID] = a
			}
		}
	}
	return nil
}

func dedupe(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

func (e *Engine) apply(r *request) {
	switch {
	case len(r.accounts) > 0:
		r.ares = make([]AccountResult, len(r.accounts))
		for i := range r.accounts {
			if err := r.invalid[i]; err != nil {
				r.ares[i].Err = err
				continue
			}
			a, created, err := e.applyAccount(&r.accounts[i])
			if err != nil {
				r.ares[i].Err = err
				continue
			}
			cp := *a
			r.ares[i] = AccountResult{Account: &cp, Created: created}
		}
	case len(r.expire) > 0:
		r.tres = make([]TransferResult, len(r.expire))
		r.outcomes = make([]expireOutcome, len(r.expire))
		for i, id := range r.expire {
			t, o := e.applyExpire(id)
			if t != nil {
				cp := *t
				r.tres[i] = TransferResult{Transfer: &cp, Created: true}
			}
			r.outcomes[i] = o
		}
	default:
		if r.unit != nil {
			if err := e.checkRecords(r.unit); err != nil {
				r.err = err
				return
			}
		}
		r.tres = make([]TransferResult, len(r.transfers))
		sp := e.save()
		for i := range r.transfers {
			var t *Transfer
			var created bool
			var err *apierror.Error
			if r.invalid != nil && r.invalid[i] != nil {
				err = r.invalid[i]
			} else {
				t, created, err = e.applyTransfer(&r.transfers[i])
			}
			if err != nil {
				if r.atomic {
					e.rollback(sp)
					r.tres = nil
					r.err = &BatchError{Index: i, Err: err}
					return
				}
				r.tres[i].Err = err
				continue
			}
			cp := *t
			if cp.Status == StatusPending && cp.ExpiresAt != 0 && e.g.now >= cp.ExpiresAt {
				cp.Status = StatusExpired // as reads show it: it can no longer be posted
			}
			r.tres[i] = TransferResult{Transfer: &cp, Created: created}
		}
		if r.unit != nil {
			e.appendUnit(r.unit)
		}
	}
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random id with a type prefix, e.g. "acc_...".
func NewID(prefix string) string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

func (e *Engine) nextTs() Timestamp {
	ts := e.g.now
	if ts <= e.lastTs {
		ts = e.lastTs + 1
	}
	e.lastTs = ts
	return ts
}

func (e *Engine) applyAccount(in *AccountInput) (*Account, bool, *apierror.Error) {
	fp := accountFingerprint(in)
	if in.ID != "" {
		if a := e.cache[in.ID]; a != nil {
			if bytes.Equal(a.ReqHash, fp) {
				return a, false, nil
			}
			return nil, false, apierror.Newf(apierror.IDConflict, "id", "account %q already exists with a different body", in.ID)
		}
	} else {
		in.ID = NewID("acc")
	}
	meta := in.Metadata
	if len(meta) == 0 {
		meta = nil
	}
	a := &Account{
		ID: in.ID, Currency: in.Currency, Code: in.Code, Flags: in.Flags, Metadata: meta,
		Timestamp: e.nextTs(), ReqHash: fp,
	}
	e.cache[a.ID] = a
	e.g.undo = append(e.g.undo, undoRec{kind: undoNewAccount, a: a})
	e.g.batch.NewAccounts = append(e.g.batch.NewAccounts, a)
	return a, true, nil
}

// touch records an account's balances for undo.
func (e *Engine) touch(a *Account) {
	e.g.undo = append(e.g.undo, undoRec{kind: undoBalances, a: a, bal: a.Balances})
}

func addOK(a, b int64) bool { return b <= 0 || a <= math.MaxInt64-b }

func (e *Engine) applyTransfer(in *TransferInput) (*Transfer, bool, *apierror.Error) {
	g := e.g
	fp := transferFingerprint(in)
	if t := g.lookup(in.ID); t != nil {
		if bytes.Equal(t.ReqHash, fp) {
			return t, false, nil
		}
		return nil, false, apierror.Newf(apierror.IDConflict, "id", "transfer %q already exists with a different body", in.ID)
	}
	if in.Action != ActionCreate {
		return e.applyClose(in, fp)
	}
	dr := e.cache[in.DebitAccountID]
	if dr == nil {
		return nil, false, apierror.Newf(apierror.AccountNotFound, "debit_account_id", "account %q does not exist", in.DebitAccountID)
	}
	cr := e.cache[in.CreditAccountID]
	if cr == nil {
		return nil, false, apierror.Newf(apierror.AccountNotFound, "credit_account_id", "account %q does not exist", in.CreditAccountID)
	}
	if dr.Currency != in.Currency || cr.Currency != in.Currency {
		return nil, false, apierror.Newf(apierror.CurrencyMismatch, "currency",
			"transfer is in %s but the debit account is in %s and the credit account in %s", in.Currency, dr.Currency, cr.Currency)
	}
	amt := in.Amount
	db, cb := &dr.Balances, &cr.Balances
	if !addOK(db.DebitsPending, db.DebitsPosted) || !addOK(db.DebitsPending+db.DebitsPosted, amt) ||
		!addOK(cb.CreditsPending, cb.CreditsPosted) || !addOK(cb.CreditsPending+cb.CreditsPosted, amt) {
		return nil, false, apierror.New(apierror.BalanceOverflow, "amount")
	}
	if dr.Flags.DebitsMustNotExceedCredits && db.DebitsPending+db.DebitsPosted+amt > db.CreditsPosted {
		return nil, false, apierror.Newf(apierror.ExceedsCredits, "amount",
			"account %q has %d available; the transfer needs %d", dr.ID, db.CreditsPosted-db.DebitsPosted-db.DebitsPending, amt)
	}
	if cr.Flags.CreditsMustNotExceedDebits && cb.CreditsPending+cb.CreditsPosted+amt > cb.DebitsPosted {
		return nil, false, apierror.Newf(apierror.ExceedsDebits, "amount",
			"account %q has %d available; the transfer needs %d", cr.ID, cb.DebitsPosted-cb.CreditsPosted-cb.CreditsPending, amt)
	}
	meta := in.Metadata
	if len(meta) == 0 {
		meta = nil
	}
	t := &Transfer{
		ID: in.ID, DebitAccountID: in.DebitAccountID, CreditAccountID: in.CreditAccountID,
		Amount: amt, Currency: in.Currency, Code: in.Code, Pending: in.Pending,
		TimeoutSeconds: in.TimeoutSeconds, Metadata: meta, ReqHash: fp, Status: StatusPosted,
	}
	if in.Pending {
		t.Status = StatusPending
		t.PendingDelta = amt
	} else {
		t.PostedDelta = amt
	}
	e.appendRecord(t, dr, cr)
	if t.ExpiresAt != 0 {
		e.g.batch.Timers = append(e.g.batch.Timers, ExpiryTimer(t))
	}
	return t, true, nil
}

// applyClose posts or voids a pending transfer.
func (e *Engine) applyClose(in *TransferInput, fp []byte) (*Transfer, bool, *apierror.Error) {
	g := e.g
	p := g.lookup(in.PendingID)
	if p == nil || !p.Pending {
		return nil, false, apierror.Newf(apierror.PendingNotFound, "pending_id", "no pending transfer %q", in.PendingID)
	}
	if p.Status != StatusPending {
		return nil, false, apierror.Newf(apierror.PendingAlreadyClosed, "pending_id", "pending transfer %q is already %s", p.ID, p.Status)
	}
	if p.ExpiresAt != 0 && g.now >= p.ExpiresAt {
		return nil, false, apierror.Newf(apierror.PendingAlreadyClosed, "pending_id", "pending transfer %q has expired", p.ID)
	}
	amt, status := int64(0), StatusVoided
	if in.Action == ActionPost {
		status = StatusPosted
		amt = in.Amount
		if amt == 0 {
			amt = p.Amount
		}
		if amt > p.Amount {
			return nil, false, apierror.Newf(apierror.AmountExceedsPending, "amount", "amount %d exceeds the pending amount %d", amt, p.Amount)
		}
	}
	dr, cr := e.cache[p.DebitAccountID], e.cache[p.CreditAccountID]
	if dr == nil || cr == nil {
		return nil, false, apierror.Newf(apierror.Internal, "", "accounts of pending transfer %q are missing", p.ID)
	}
	if !addOK(dr.Balances.DebitsPosted, amt) || !addOK(cr.Balances.CreditsPosted, amt) {
		return nil, false, apierror.New(apierror.BalanceOverflow, "amount")
	}
	recAmount := amt
	if status == StatusVoided {
		recAmount = p.Amount
	}
	meta := in.Metadata
	if len(meta) == 0 {
		meta = nil
	}
	t := &Transfer{
		ID: in.ID, DebitAccountID: p.DebitAccountID, CreditAccountID: p.CreditAccountID,
		Amount: recAmount, Currency: p.Currency, Code: p.Code, PendingID: p.ID, Status: status,
		Metadata: meta, ReqHash: fp, PendingDelta: -p.Amount, PostedDelta: amt,
	}
	e.closePending(p, status)
	e.appendRecord(t, dr, cr)
	return t, true, nil
}

func (e *Engine) closePending(p *Transfer, status Status) {
	g := e.g
	g.undo = append(g.undo, undoRec{kind: undoStatus, tr: p, status: p.Status})
	p.Status = status
	if g.transfers[p.ID] == nil {
		// Written by an earlier group: update its row. (One created in this group is
		// inserted with its final status.)
		g.batch.Closed = append(g.batch.Closed, Closed{ID: p.ID, Status: status})
	}
}

// appendRecord stamps, applies and chains a journal record.
func (e *Engine) appendRecord(t *Transfer, dr, cr *Account) {
	g := e.g
	e.touch(dr)
	e.touch(cr)
	dr.Balances.DebitsPending += t.PendingDelta
	dr.Balances.DebitsPosted += t.PostedDelta
	cr.Balances.CreditsPending += t.PendingDelta
	cr.Balances.CreditsPosted += t.PostedDelta
	t.Timestamp = e.nextTs()
	if t.Pending && t.TimeoutSeconds > 0 {
		t.ExpiresAt = t.Timestamp + Timestamp(t.TimeoutSeconds)*Timestamp(time.Second)
	}
	t.DebitBalances = dr.Balances
	t.CreditBalances = cr.Balances
	t.Hash = ChainHash(e.lastHash, t)
	e.lastHash = t.Hash
	g.batch.Transfers = append(g.batch.Transfers, t)
	g.transfers[t.ID] = t
}
