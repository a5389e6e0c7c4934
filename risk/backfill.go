package risk

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/fincore/fincore/risk/window"
)

// Back-filling. A feature new to the feature catalog (a rule set version activated, active
// or shadow, that declares a feature no loaded version has) gets its state from the event
// log before any decision reads it, so that its values are those of an engine that had the
// feature all along:
//
//  1. The logged events from the back-fill horizon on are replayed, page by page and in log
//     order, into window states private to the back-fill, while the engine goes on deciding
//     with the versions it had (catch-up; no lock is held).
//  2. The log writer is flushed and the events logged meanwhile replayed, again until a pass
//     replays few events (or after 8 passes), so that what is left is short.
//  3. The private states are moved into the shards, a few key values per lock of a shard
//     (moveIn): their ids are above the published catalog's, so nothing reads them yet.
//  4. Hand-over: every shard is locked, the log flushed again (now the log holds every event
//     the state has counted), the last events replayed into the moved states, and the new
//     catalog and rule sets published, all before the locks are released. An event counted
//     before the hand-over is in the log up to that point and so in the back-fill; one
//     counted after it sees the new catalog (apply re-checks the catalog once it holds its
//     locks). Decisions wait only for this step: a flush and the tail of the log.
//
// The log holds each event id once (the store skips an id it has), which is how live
// ingestion counts it, and the replay decides which events are too old with a watermark of
// its own, as live ingestion did when they arrived.
//
// The horizon is the watermark minus the longest window of the catalog (the oldest time an
// event is still counted) minus twice the window of the longest new feature: every state that
// a sweep would keep is rebuilt with every event it would hold. States that a sweep would
// evict are dropped when they are moved in. Events older than the horizon are not read.

// handOverTail is how few events the last catch-up pass must replay before the hand-over
// (which replays what was logged since with decisions waiting).
const handOverTail = 200

// backfill rebuilds the state of some features of a catalog from the event log.
type backfill struct {
	e     *Engine
	fill  *Engine // private feature state: one shard, its own watermark; never logs
	cat   *catalog
	ids   []int // the features' state ids
	from  time.Time
	after int64 // the last log position replayed
	n     int   // events replayed
	sc    scratch
	t0    time.Time
	// flushed is how long the hand-over's flush of the log took.
	flushed time.Duration
}

// newBackfill prepares the back-fill of the features of cat that old lacks; nil when there are
// none or when no event was counted yet (g, the watermark, is 0).
func (e *Engine) newBackfill(old, cat *catalog, g int64) *backfill {
	return e.backfillOf(cat, func(id int) bool { return old.feats[id] == nil }, g)
}

// backfillOf prepares the back-fill of the features of cat for which want is true.
func (e *Engine) backfillOf(cat *catalog, want func(id int) bool, g int64) *backfill {
	if g == 0 {
		return nil
	}
	sub := &catalog{feats: map[int]*Feature{}, retention: cat.retention, maxID: cat.maxID}
	var ids []int
	var longest time.Duration
	for _, grp := range cat.groups {
		ng := keyGroup{field: grp.field, fid: grp.fid}
		for i, id := range grp.ids {
			if want(id) {
				ng.ids = append(ng.ids, id)
				ng.defs = append(ng.defs, grp.defs[i])
			}
		}
		// A lane added by an activation holds only new features; at a start, a lane may hold
		// features the snapshot has and others it lacks: only the latter are filled (a
		// state shared by them still keeps every member, unread).
		for _, u := range grp.lanes {
			var live []int
			for _, k := range u.live {
				if want(u.def.ids[k]) {
					live = append(live, k)
				}
			}
			if len(live) > 0 {
				ng.lanes = append(ng.lanes, laneUse{def: u.def, live: live})
				longest = max(longest, u.def.window)
			}
		}
		if len(ng.lanes) > 0 {
			sub.groups = append(sub.groups, ng)
			sub.nLanes += len(ng.lanes)
			for i, id := range ng.ids {
				sub.feats[id] = ng.defs[i]
			}
			ids = append(ids, ng.ids...)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	fill := &Engine{shards: make([]shard, 1), seed: e.seed}
	fill.shards[0].keys = newKeyTable()
	fill.shards[0].arena = new(window.Arena)
	fill.cat.Store(sub)
	slices.Sort(ids)
	from := g - cat.retention - 2*int64(longest) - int64(longest/window.Buckets)
	return &backfill{e: e, fill: fill, cat: sub, ids: ids, from: time.Unix(0, from).UTC(), t0: time.Now()}
}

// run replays the logged events after the last one replayed, up to the log position upto
// (all of them when upto is 0), and returns how many it replayed.
func (b *backfill) run(ctx context.Context, upto int64) (int, error) {
	n := 0
	for {
		evs, err := b.e.store.Events(ctx, b.after, b.from, replayBatch)
		if err != nil {
			return n, fmt.Errorf("back-fill features: read event log: %w", err)
		}
		for _, le := range evs {
			if upto > 0 && le.Seq > upto {
				return n, nil
			}
			ev, err := ParseEvent(le.Body)
			if err != nil {
				return n, fmt.Errorf("back-fill features: event %s: %w", le.ID, err)
			}
			b.fill.apply(ev, true, nil, &b.sc)
			b.after = le.Seq
			b.n++
			n++
			b.e.stats.backfilled.Add(1)
		}
		if len(evs) < replayBatch {
			return n, nil
		}
		b.e.log.Info("risk: back-filling features", "features", len(b.ids), "events", b.n, "seq", b.after,
			"keys", b.fill.shards[0].nKeys.Load(), "took", time.Since(b.t0).Round(time.Millisecond))
	}
}

// moveIn puts the back-filled states into the engine's shards, dropping those a sweep would
// evict. It takes each shard's lock for at most moveChunk key values at a time, so the engine
// runs on meanwhile: the states' ids are above the published catalog's, so decisions do not
// read them, snapshots skip them and Sweep keeps them until the hand-over publishes them (or
// dropStates removes them).
func (b *backfill) moveIn() {
	e := b.e
	fields := map[int32]string{}
	for _, g := range b.cat.groups {
		fields[g.fid] = g.field
	}
	type keyed struct {
		h  uint64
		ks int32
	}
	src := b.fill.shards[0].keys
	per := make([][]keyed, len(e.shards))
	src.each(func(ks int32) {
		h := e.keyHash(fields[src.recs[ks].fid], src.key(ks))
		i := e.shardOf(h)
		per[i] = append(per[i], keyed{h, ks})
	})
	states := 0
	from := b.fill.shards[0].arena
	var moved []int32 // per source cell: its index in the key value's cells, -1 before it moves
	for i, list := range per {
		sh := &e.shards[i]
		for len(list) > 0 {
			chunk := list[:min(len(list), moveChunk)]
			list = list[len(chunk):]
			sh.mu.Lock()
			floor := e.watermark.Load() - b.cat.retention
			for _, k := range chunk {
				ks := int32(-1)
				fid := src.recs[k.ks].fid
				cells := src.cellsOf(k.ks)
				moved = moved[:0]
				for range cells {
					moved = append(moved, -1)
				}
				for _, sl := range src.slotsOf(k.ks) {
					c := &cells[sl.ci]
					if c.Idle(floor) {
						continue
					}
					if ks < 0 {
						key := src.key(k.ks)
						if ks = sh.keys.get(k.h, fid, key); ks < 0 {
							ks = sh.keys.add(k.h, fid, key)
							sh.nKeys.Add(1)
						}
					}
					if moved[sl.ci] < 0 {
						moved[sl.ci] = sh.keys.addCell(ks, c.Move(from, sh.arena))
					}
					sl.ci = moved[sl.ci]
					sh.keys.addSlot(ks, sl) // the ids are new: no slot has them
					sh.nStates.Add(1)
					states++
				}
			}
			sh.mu.Unlock()
		}
	}
	e.log.Info("risk: features back-filled", "features", len(b.ids), "events", b.n, "states", states,
		"took", time.Since(b.t0).Round(time.Millisecond))
}

// moveChunk is how many key values moveIn moves in per lock of a shard.
const moveChunk = 256

// dropStates removes the states of the back-filled features from the shards (an activation
// that failed after moveIn).
func (b *backfill) dropStates() {
	e := b.e
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		sh.dropSlots(func(sl stateSlot, _ *window.Cell) bool {
			_, ok := slices.BinarySearch(b.ids, int(sl.id))
			return ok
		})
		sh.mu.Unlock()
	}
}

// activateBackfilled publishes cat and sets once the features new in cat are back-filled (see
// above); commit records the activation in the store before the hand-over. It returns an
// error, having published nothing, when the log cannot be read or commit fails, and whether
// commit ran. The caller holds admin.
func (e *Engine) activateBackfilled(ctx context.Context, b *backfill, cat *catalog, sets map[string]*loaded, commit func() error) (bool, error) {
	// Catch up without locks, pass after pass (each reads what was logged during the one
	// before), until what is left for the hand-over is short.
	for pass := 0; ; pass++ {
		if err := e.flush(ctx); err != nil {
			return false, err
		}
		n, err := b.run(ctx, 0)
		if err != nil {
			return false, err
		}
		if n <= handOverTail || pass >= 8 {
			break
		}
	}
	if err := commit(); err != nil {
		return false, err
	}
	return true, e.handOver(ctx, b, cat, sets)
}

// handOver moves the back-filled states in, then replays the tail of the log into them with
// every shard locked and publishes cat and sets before unlocking.
func (e *Engine) handOver(ctx context.Context, b *backfill, cat *catalog, sets map[string]*loaded) error {
	b.moveIn()
	for i := range e.shards {
		e.shards[i].mu.Lock()
	}
	t0 := time.Now()
	n, err := b.tail(ctx)
	if err == nil {
		e.publish(cat, sets)
	}
	for i := range e.shards {
		e.shards[i].mu.Unlock()
	}
	if err != nil {
		b.dropStates()
		return err
	}
	e.log.Info("risk: back-filled features handed over", "tail_events", n, "paused", time.Since(t0).Round(time.Microsecond),
		"flush", b.flushed.Round(time.Microsecond))
	return nil
}

// tail replays the events logged since the catch-up into the engine's shards, once the states
// are moved in. The caller holds every shard's lock: the replay works on the shards' tables
// without taking them.
func (b *backfill) tail(ctx context.Context) (int, error) {
	e := b.e
	t0 := time.Now()
	if err := e.flush(ctx); err != nil {
		return 0, err
	}
	b.flushed = time.Since(t0)
	fill := &Engine{shards: make([]shard, len(e.shards)), seed: e.seed}
	for i := range fill.shards {
		fill.shards[i].keys = e.shards[i].keys // the same tables and states
		fill.shards[i].arena = e.shards[i].arena
	}
	fill.watermark.Store(b.fill.watermark.Load())
	fill.cat.Store(b.cat)
	b.fill = fill
	n, err := b.run(ctx, 0)
	for i := range fill.shards {
		e.shards[i].nKeys.Add(fill.shards[i].nKeys.Load())
		e.shards[i].nStates.Add(fill.shards[i].nStates.Load())
	}
	return n, err
}
