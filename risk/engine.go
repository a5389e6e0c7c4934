package risk

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/risk/window"
)

// Errors of the engine. Rule set problems are RuleSetErrors, event problems *EventError.
var (
	ErrUnknownRuleSet = errors.New("risk: no such rule set")
	ErrUnknownVersion = errors.New("risk: no such rule set version")
	ErrNotActive      = errors.New("risk: the rule set has no active version")
	ErrIDConflict     = errors.New("risk: an event with this id was received with a different body")
	ErrOverloaded     = errors.New("risk: the decision log queue is full")
	ErrClosed         = errors.New("risk: the engine is closed")
	ErrBadName        = errors.New("risk: invalid name")
)

// Config configures an Engine. Zero values take the defaults.
type Config struct {
	// BuildModel builds the models of rule sets (default BuildModel).
	BuildModel ModelBuilder
	Logger     *slog.Logger
	// Now is the clock for log records (default time.Now).
	Now func() time.Time
	// Shards is the number of feature state shards, each with its own lock (default 64).
	Shards int
	// LogQueue bounds the records waiting for the decision log writer (default 65,536);
	// when it is full, decisions fail with ErrOverloaded rather than go unlogged.
	LogQueue int
	// LogBatch bounds the records written in one transaction (default 4,096).
	LogBatch int
	// LogInterval is the least time between the starts of two log transactions while
	// records keep coming (default 20 ms; negative: none): larger transactions cost less
	// per record (each commit rewrites the tail pages of the tables and indexes and syncs).
	// A decision does not wait for its log record either way; Flush writes at once.
	LogInterval time.Duration
	// DedupeMax bounds the event ids remembered for de-duplication (default 1,000,000; a
	// remembered decision takes about 100 bytes plus its id and 8 bytes per feature and
	// model and 4 per rule hit, each rounded up to a power of two);
	// the oldest are forgotten first, and ids are kept for at most DedupeWindow (default
	// 24 hours). The event log's unique id also keeps a later duplicate out of replays.
	DedupeMax    int
	DedupeWindow time.Duration
	// SweepEvery is how often idle keys are evicted (default 30 s).
	SweepEvery time.Duration
	// SnapshotEvery is how often the feature state is snapshotted (default 10 minutes;
	// negative: only at Close).
	SnapshotEvery time.Duration
	// NoCloseSnapshot skips the snapshot at Close (benchmarks and tools on throw-away state).
	NoCloseSnapshot bool
	// Observer, if set, is told about every answered decision (for metrics).
	Observer Observer
}

// Engine evaluates events against rule sets. It is safe for concurrent use.
type Engine struct {
	cfg   Config
	store Store
	log   *slog.Logger
	lists *listSet

	admin  sync.Mutex // serialises rule set changes
	sets   atomic.Pointer[map[string]*loaded]
	cat    atomic.Pointer[catalog]
	sigIDs map[string]int // feature signature -> state id; ids are never reused (admin)
	nextID int
	// fieldIDs numbers the key fields, for the shards' maps (admin; never reused).
	fieldIDs map[string]int32
	// laneOf is the lane of each state id (admin; a feature keeps its lane).
	laneOf map[int]*laneDef

	shards    []shard
	seed      maphash.Seed
	watermark atomic.Int64 // G: the newest event time applied, Unix ns
	dedupe    dedupe

	logq    chan logItem
	reader  *LogReader // of the decision log, bodies as JSON
	closed  atomic.Bool
	closeMu sync.RWMutex // held for reading while enqueueing, for writing by Close
	done    chan struct{}
	wg      sync.WaitGroup

	stats stats

	oldMu       sync.Mutex
	oldCompiled map[string]*Compiled // compiledOf: versions no longer loaded, by name@version
}

// compiledOf returns the compiled version v of rule set name, for a remembered decision: the
// loaded one, or one compiled again from the store (kept for a few such versions); nil if
// there is none.
func (e *Engine) compiledOf(name string, v int) *Compiled {
	if l := (*e.sets.Load())[name]; l != nil {
		for _, c := range []*Compiled{l.active, l.shadow} {
			if c != nil && c.Version == v {
				return c
			}
		}
	}
	key := fmt.Sprintf("%s@%d", name, v)
	e.oldMu.Lock()
	defer e.oldMu.Unlock()
	if c, ok := e.oldCompiled[key]; ok {
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := e.compileStored(ctx, name, v)
	if err != nil {
		e.log.Warn("risk: rule set version of a remembered decision not compiled", "ruleset", name, "version", v, "err", err)
		c = nil // remembered as missing too
	}
	if len(e.oldCompiled) >= 8 || e.oldCompiled == nil {
		e.oldCompiled = map[string]*Compiled{}
	}
	e.oldCompiled[key] = c
	return c
}

// loaded is a rule set's head with its compiled active and shadow versions.
type loaded struct {
	head   Head
	active *Compiled
	shadow *Compiled
}

// catalog is every feature state the loaded rule sets use, grouped by key field.
type catalog struct {
	feats     map[int]*Feature // state id -> a definition
	groups    []keyGroup
	retention int64 // R: the longest window, ns
	maxID     int
	nLanes    int // lanes over all groups
}

type keyGroup struct {
	field string
	fid   int32 // the field's number (Engine.fieldIDs)
	ids   []int // state ids
	defs  []*Feature
	lanes []laneUse
}

type shard struct {
	mu   sync.Mutex
	keys *keyTable
	// arena holds the data of the shard's window states (keyTable.cells).
	arena *window.Arena
	// nKeys and nStates count the key values and window states held; written under mu, read
	// by Counters without it.
	nKeys, nStates atomic.Int64
	_              [32]byte // keep neighbouring locks off one cache line
}

// Open starts an engine on st: it loads the lists and the active and shadow rule sets, and
// rebuilds the feature state from the snapshot and the logged events after it.
func Open(ctx context.Context, st Store, cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BuildModel == nil {
		cfg.BuildModel = BuildModel
	}
	if cfg.Shards <= 0 {
		cfg.Shards = 64
	}
	if cfg.LogQueue <= 0 {
		cfg.LogQueue = 1 << 16
	}
	if cfg.LogBatch <= 0 {
		cfg.LogBatch = 4096
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = 20 * time.Millisecond
	}
	if cfg.DedupeMax <= 0 {
		cfg.DedupeMax = 1_000_000
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = 24 * time.Hour
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 30 * time.Second
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 10 * time.Minute
	}
	e := &Engine{
		cfg: cfg, store: st, log: cfg.Logger, lists: newListSet(),
		sigIDs: map[string]int{}, fieldIDs: map[string]int32{}, laneOf: map[int]*laneDef{}, shards: make([]shard, cfg.Shards), seed: maphash.MakeSeed(),
		logq: make(chan logItem, cfg.LogQueue), reader: NewLogReader(st), done: make(chan struct{}),
	}
	e.dedupe.init(cfg.DedupeMax, int64(cfg.DedupeWindow))
	e.dedupe.compiled = e.compiledOf
	for i := range e.shards {
		e.shards[i].keys = newKeyTable()
		e.shards[i].arena = new(window.Arena)
	}
	empty := map[string]*loaded{}
	e.sets.Store(&empty)
	e.cat.Store(&catalog{feats: map[int]*Feature{}})
	items, err := st.ListItems(ctx)
	if err != nil {
		return nil, fmt.Errorf("load lists: %w", err)
	}
	e.lists.load(items)
	heads, err := st.Heads(ctx)
	if err != nil {
		return nil, fmt.Errorf("load rule sets: %w", err)
	}
	sets := map[string]*loaded{}
	for _, h := range heads {
		l := &loaded{head: h}
		if l.active, err = e.compileStored(ctx, h.Name, h.Active); err != nil {
			return nil, err
		}
		if l.shadow, err = e.compileStored(ctx, h.Name, h.Shadow); err != nil {
			return nil, err
		}
		sets[h.Name] = l
	}
	e.install(sets)
	if err := e.restore(ctx); err != nil {
		return nil, err
	}
	e.wg.Add(2)
	go e.writeLog()
	go e.sweepLoop()
	return e, nil
}

// Close stops the engine: it snapshots the feature state and waits for the decision log to be
// written.
func (e *Engine) Close() error {
	if !e.closed.Load() && !e.cfg.NoCloseSnapshot {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := e.Snapshot(ctx); err != nil {
			e.log.Warn("risk: snapshot at close failed; the next start replays more of the log", "err", err)
		}
		cancel()
	}
	e.closeMu.Lock()
	if e.closed.Swap(true) {
		e.closeMu.Unlock()
		return nil
	}
	close(e.logq)
	e.closeMu.Unlock()
	close(e.done)
	e.wg.Wait()
	return nil
}

// compileStored compiles version v of name from the store (nil for v == 0).
func (e *Engine) compileStored(ctx context.Context, name string, v int) (*Compiled, error) {
	if v == 0 {
		return nil, nil
	}
	src, ok, err := e.store.RuleSetSource(ctx, name, v)
	if err != nil {
		return nil, fmt.Errorf("load rule set %s v%d: %w", name, v, err)
	}
	if !ok {
		return nil, ErrUnknownVersion
	}
	return e.compile(name, v, src)
}

func (e *Engine) compile(name string, v int, src []byte) (*Compiled, error) {
	rs, err := ParseRuleSet(src)
	if err != nil {
		return nil, err
	}
	c, err := Compile(rs, CompileOptions{Lists: e.lists, BuildModel: e.cfg.BuildModel})
	if err != nil {
		return nil, err
	}
	c.Name, c.Version = name, v
	return c, nil
}

// install makes sets the loaded rule sets and rebuilds the feature catalog. The caller holds
// admin (or is Open).
func (e *Engine) install(sets map[string]*loaded) { e.publish(e.plan(sets), sets) }

// publish makes cat the feature catalog and sets the loaded rule sets (the catalog first, so
// that a decision that sees the new rule sets sees their features).
func (e *Engine) publish(cat *catalog, sets map[string]*loaded) {
	e.cat.Store(cat)
	e.sets.Store(&sets)
}

// plan builds the feature catalog of sets and numbers the compiled versions' features by
// state id. A feature the current catalog has keeps its id (and state); one it lacks gets a
// new id, so that any state left from an earlier time it was loaded is not taken for its
// own. The caller holds admin (or is Open).
func (e *Engine) plan(sets map[string]*loaded) *catalog {
	prev := e.cat.Load()
	cat := &catalog{feats: map[int]*Feature{}}
	groups := map[string]*keyGroup{}
	var order []string
	add := func(c *Compiled) {
		if c == nil {
			return
		}
		c.stateIDs = make([]int, len(c.Features))
		for i, f := range c.Features {
			id, ok := e.sigIDs[f.Sig]
			if ok && prev.feats[id] == nil && cat.feats[id] == nil {
				ok = false
			}
			if !ok {
				e.nextID++
				id = e.nextID
				e.sigIDs[f.Sig] = id
			}
			c.stateIDs[i] = id
			if _, dup := cat.feats[id]; dup {
				continue
			}
			cat.feats[id] = f
			cat.retention = max(cat.retention, int64(f.Window))
			g := groups[f.Key]
			if g == nil {
				fid, ok := e.fieldIDs[f.Key]
				if !ok {
					fid = int32(len(e.fieldIDs))
					e.fieldIDs[f.Key] = fid
				}
				g = &keyGroup{field: f.Key, fid: fid}
				groups[f.Key] = g
				order = append(order, f.Key)
			}
			g.ids = append(g.ids, id)
			g.defs = append(g.defs, f)
		}
	}
	names := make([]string, 0, len(sets))
	for n := range sets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		add(sets[n].active)
		add(sets[n].shadow)
	}
	for _, k := range order {
		g := groups[k]
		e.assignLanes(g)
		cat.nLanes += len(g.lanes)
		cat.groups = append(cat.groups, *g)
	}
	cat.maxID = e.nextID
	return cat
}

// applied is what applying an event to the feature state produced: the value of every
// feature of the catalog, by state id.
type applied struct {
	values []float64 // by state id
	fresh  bool      // the event was new to the state (not a duplicate, not too old)
}

// apply counts ev in the features that count it and reads every feature's value at its
// time, into sc.values (by state id). With count false (a duplicate event) it only reads.
// logFn, if set, runs while the touched shards are still locked, so that the event log's
// order agrees with the order in which events changed each key's state.
func (e *Engine) apply(ev *Event, count bool, logFn func(), sc *scratch) []float64 {
	for {
		if values := e.applyWith(e.cat.Load(), ev, count, logFn, sc); values != nil {
			return values
		}
	}
}

// applyWith is apply with the catalog cat. It returns nil, having changed nothing, when the
// catalog was replaced before it held its shards' locks (an activation hands back-filled
// features over with every shard locked: an event counted with the old catalog must be
// logged before the hand-over, one logged after it must count in the new features).
func (e *Engine) applyWith(cat *catalog, ev *Event, count bool, logFn func(), sc *scratch) []float64 {
	ts := ev.Time.UnixNano()
	if n := cat.maxID + 1; cap(sc.values) < n {
		sc.values = make([]float64, n)
	} else {
		sc.values = sc.values[:n]
		clear(sc.values)
	}
	values := sc.values
	if cap(sc.counts) < cat.nLanes {
		sc.counts = make([]bool, cat.nLanes)
	}

	// Work out everything that does not need a lock first: keys, shards, filters.
	type touch struct {
		g      *keyGroup
		key    string
		hash   uint64 // keyHash
		shard  int
		counts []bool // whether ev counts in each of g's lanes
		any    bool   // whether it counts in any
		ks     int32  // its record in the shard's table, -1 for none
	}
	var touchBuf [8]touch
	touches := touchBuf[:0]
	var lockBuf [8]int
	locks := lockBuf[:0]
	off := 0
	for gi := range cat.groups {
		g := &cat.groups[gi]
		key, ok := ev.Key(g.field)
		if !ok {
			continue
		}
		h := e.keyHash(g.field, key)
		t := touch{g: g, key: key, hash: h, shard: e.shardOf(h), ks: -1}
		if count {
			t.counts = sc.counts[off : off+len(g.lanes) : off+len(g.lanes)]
			off += len(g.lanes)
			for i := range g.lanes {
				f := g.lanes[i].def.feature
				c := f.Matches(ev.Type) && f.passes(ev)
				t.counts[i] = c
				t.any = t.any || c
			}
		}
		touches = append(touches, t)
		if !slices.Contains(locks, t.shard) {
			locks = append(locks, t.shard)
		}
	}
	slices.Sort(locks)
	for _, s := range locks {
		e.shards[s].mu.Lock()
	}
	if e.cat.Load() != cat {
		for _, s := range locks {
			e.shards[s].mu.Unlock()
		}
		return nil
	}
	g := e.watermark.Load()
	accept := count && (cat.retention == 0 || g == 0 || ts > g-cat.retention)
	if accept && ts > g {
		for !e.watermark.CompareAndSwap(g, ts) {
			if g = e.watermark.Load(); ts <= g {
				break
			}
		}
	}
	if count && !accept {
		e.stats.tooOld.Add(1)
	}
	// Look every key value up, then warm all their states, before counting: most of the
	// time here is cache misses, and independent loads in a row overlap theirs.
	var warm int64
	for i := range touches {
		t := &touches[i]
		t.ks = e.shards[t.shard].keys.get(t.hash, t.g.fid, t.key)
	}
	for _, t := range touches {
		if t.ks >= 0 {
			sh := &e.shards[t.shard]
			cells := sh.keys.cellsOf(t.ks)
			for i := range cells {
				warm += cells[i].Warm(sh.arena)
			}
		}
	}
	sc.warm = warm
	for _, t := range touches {
		sh := &e.shards[t.shard]
		ks := t.ks
		if ks < 0 {
			if !accept || !t.any {
				continue // nothing to read, nothing to count
			}
			ks = sh.keys.add(t.hash, t.g.fid, t.key)
			sh.nKeys.Add(1)
		}
		for i := range t.g.lanes {
			e.applyLane(sh, ks, &t.g.lanes[i], ev, ts, accept && t.counts[i], values, sc)
		}
	}
	if logFn != nil {
		logFn()
	}
	for _, s := range locks {
		e.shards[s].mu.Unlock()
	}
	return values
}

// keyHash is the hash of a key field's value: it picks the shard and the key table entry.
func (e *Engine) keyHash(field, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	h.WriteString(field)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64()
}

// shardOf is the shard of a key value with hash h.
func (e *Engine) shardOf(h uint64) int { return int(h % uint64(len(e.shards))) }

// Watermark is the newest event time the feature state has seen.
func (e *Engine) Watermark() time.Time { return time.Unix(0, e.watermark.Load()).UTC() }

// Stats are counters for metrics and benchmarks.
type Stats struct {
	// Decisions evaluated (repeats of an event id not included); Events ingested without a
	// decision; Counted events counted into the feature state, decided or ingested (the
	// first time their id was seen); Duplicates requests that repeated an event id; TooOld
	// events older than the state keeps; RuleErrors rules that failed for an event;
	// LogErrors failed writes of the decision log; Overloaded requests refused because
	// the log queue was nearly full; Evicted window states dropped as idle or unused.
	Decisions, Events, Counted, Duplicates, TooOld, RuleErrors, LogErrors, Overloaded, Evicted int64
	// Backfilled is the logged events replayed into features new to the loaded rule sets.
	Backfilled int64
	// Keys is the number of window states held (one per feature and key value); KeyValues
	// the number of key values (users, devices ...) they belong to.
	Keys       int
	KeyValues  int
	StateBytes int64 // estimated memory of the states (Stats only)
}

type stats struct {
	decisions, events, counted, duplicates, tooOld, ruleErrors, logErrors, overloaded, evicted atomic.Int64
	backfilled                                                                                 atomic.Int64
}

// Stats returns the engine's counters, and the feature state's size (which takes every
// shard's lock in turn and visits every state).
func (e *Engine) Stats() Stats {
	s := e.Counters()
	s.Keys, s.KeyValues = 0, 0
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		// The key table (index, records, key values, slots, Cells) and the arena of the
		// states' data, with their unused room.
		s.StateBytes += int64(sh.keys.memBytes() + sh.arena.Bytes())
		sh.keys.each(func(ks int32) {
			s.KeyValues++
			s.Keys += len(sh.keys.slotsOf(ks))
		})
		sh.mu.Unlock()
	}
	return s
}

// Counters returns the engine's counters and the number of states and key values, without
// locks (StateBytes is 0).
func (e *Engine) Counters() Stats {
	s := Stats{
		Decisions: e.stats.decisions.Load(), Events: e.stats.events.Load(), Counted: e.stats.counted.Load(),
		Duplicates: e.stats.duplicates.Load(), TooOld: e.stats.tooOld.Load(), RuleErrors: e.stats.ruleErrors.Load(),
		LogErrors: e.stats.logErrors.Load(), Overloaded: e.stats.overloaded.Load(), Evicted: e.stats.evicted.Load(),
		Backfilled: e.stats.backfilled.Load(),
	}
	for i := range e.shards {
		s.KeyValues += int(e.shards[i].nKeys.Load())
		s.Keys += int(e.shards[i].nStates.Load())
	}
	return s
}

// sweepLoop evicts idle keys and the state of features no rule set uses any more.
func (e *Engine) sweepLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.SweepEvery)
	defer t.Stop()
	var snap <-chan time.Time
	if e.cfg.SnapshotEvery > 0 {
		st := time.NewTicker(e.cfg.SnapshotEvery)
		defer st.Stop()
		snap = st.C
	}
	for {
		select {
		case <-e.done:
			return
		case <-t.C:
			e.Sweep()
		case <-snap:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := e.Snapshot(ctx); err != nil {
				e.log.Warn("risk: snapshot failed", "err", err)
			}
			cancel()
		}
	}
}

// Sweep evicts, shard by shard, the states that can no longer affect any accepted event
// (their newest event is a window older than the oldest time still accepted) and those of
// features no loaded rule set uses.
func (e *Engine) Sweep() {
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		// The catalog is read under the lock: an activation publishes a new one (with
		// back-filled states) while it holds every shard's lock.
		cat := e.cat.Load()
		floor := e.watermark.Load() - cat.retention
		e.stats.evicted.Add(sh.dropSlots(func(sl stateSlot, c *window.Cell) bool {
			if int(sl.id) > cat.maxID {
				return false // being back-filled, not yet published
			}
			_, live := cat.feats[int(sl.id)]
			return !live || c.Idle(floor)
		}))
		sh.mu.Unlock()
	}
	e.dedupe.expire(e.watermark.Load())
}

// dropSlots removes the states for which drop is true (a shared state once no slot uses it),
// and the key values left with none, and returns how many slots it removed. The caller holds
// sh.mu.
func (sh *shard) dropSlots(drop func(sl stateSlot, c *window.Cell) bool) int64 {
	var n int64
	var used []int32 // per cell: slots kept, then its new index
	t := sh.keys
	t.filter(func(ks int32) bool {
		slots, cells := t.slotsOf(ks), t.cellsOf(ks)
		used = used[:0]
		for range cells {
			used = append(used, 0)
		}
		kept := 0
		for _, sl := range slots {
			if drop(sl, &cells[sl.ci]) {
				n++
				continue
			}
			used[sl.ci]++
			slots[kept] = sl
			kept++
		}
		nc := 0
		for i := range cells {
			if used[i] == 0 {
				cells[i].Free(sh.arena)
				continue
			}
			used[i] = int32(nc)
			cells[nc] = cells[i]
			nc++
		}
		for i := range slots[:kept] {
			slots[i].ci = used[slots[i].ci]
		}
		t.truncate(ks, kept, nc)
		if kept == 0 {
			sh.nKeys.Add(-1)
			return false
		}
		return true
	})
	sh.nStates.Add(-n)
	return n
}
