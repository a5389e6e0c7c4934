package risk

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/fincore/fincore/risk/window"
)

// A lane is a set of features that count the same events: the same key field, event types,
// filter and window, differing only in aggregation and field (user_count_24h,
// user_amount_24h, user_max_24h ...). For a key value seen for the first time, the features
// of an exact lane share one window state: the events' times are kept once, each field's
// values once, and the filter runs once.
//
// A lane is fixed when its features first appear and is never changed: a feature a later rule
// set version adds to the same events starts a lane of its own (it is back-filled from the
// event log, see backfill.go, while the lane's other features keep their counts). The window states are still per feature as
// far as anything outside the shards sees: each feature reads its own member, and snapshots
// hold one state per feature (a restart loads them as one state each; new key values share
// again).
type laneDef struct {
	ids     []int           // state ids of its features
	members []window.Member // per feature: its aggregation and input column
	cols    []laneCol       // the inputs the members read
	window  time.Duration
	feature *Feature // one of its features, for the event types and the filter
	share   bool     // an exact window of two or more features: one state per key value
}

// shareLanes lets a test turn sharing off, to compare against one state per feature.
var shareLanes = true

// laneCol is one input of a lane: a number from an event field, or the hash of its value.
type laneCol struct {
	field string
	hash  bool
}

// laneUse is a lane as a key group uses it: the members whose features are loaded.
type laneUse struct {
	def  *laneDef
	live []int // indexes in def.ids
}

// laneBase is what the features of a lane have in common.
func laneBase(f *Feature) string {
	on := slices.Clone(f.On)
	slices.Sort(on)
	return strings.Join(on, ",") + "|" + f.Key + "|" + f.Window.String() + "|" + strings.TrimSpace(f.Where)
}

func (ld *laneDef) add(id int, f *Feature) {
	agg, _ := window.ParseAgg(f.Agg)
	col := -1
	if agg != window.Count {
		c := laneCol{field: f.Field, hash: agg == window.Distinct}
		col = slices.Index(ld.cols, c)
		if col < 0 {
			col = len(ld.cols)
			ld.cols = append(ld.cols, c)
		}
	}
	ld.ids = append(ld.ids, id)
	ld.members = append(ld.members, window.Member{Agg: agg, Col: col})
}

// assignLanes puts the features of g (state ids and definitions, in group order) into lanes:
// each feature keeps the lane it got when it first appeared; new features of one base form
// new lanes. The caller holds admin.
func (e *Engine) assignLanes(g *keyGroup) {
	fresh := map[string]*laneDef{}
	uses := map[*laneDef]int{}
	for i, id := range g.ids {
		ld := e.laneOf[id]
		if ld == nil {
			f := g.defs[i]
			base := laneBase(f)
			if ld = fresh[base]; ld == nil {
				ld = &laneDef{window: f.Window, feature: f}
				fresh[base] = ld
			}
			ld.add(id, f)
			e.laneOf[id] = ld
		}
		u, ok := uses[ld]
		if !ok {
			u = len(g.lanes)
			uses[ld] = u
			g.lanes = append(g.lanes, laneUse{def: ld})
		}
		g.lanes[u].live = append(g.lanes[u].live, slices.Index(ld.ids, id))
	}
	for _, ld := range fresh {
		ld.share = shareLanes && len(ld.ids) > 1 && len(ld.ids) <= window.MaxMembers && len(ld.cols) <= window.MaxMembers && ld.window <= window.ExactMax
	}
}

// inputs fills in with ev's inputs for the lane's columns. A missing or non-numeric field
// counts as 0; a missing distinct value hashes as "".
func (ld *laneDef) inputs(ev *Event, in []window.Input) []window.Input {
	in = in[:0]
	for _, c := range ld.cols {
		if c.hash {
			k, _ := ev.Key(c.field)
			in = append(in, window.Input{H: xxhash.Sum64String(k)})
			continue
		}
		v, ok := ev.Number(c.field)
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		in = append(in, window.Input{V: v})
	}
	return in
}

// applyLane counts ev (when counted) in the lane's states of one key value and reads the
// values of its loaded features into values (by state id). The caller holds the shard's lock.
func (e *Engine) applyLane(sh *shard, ks int32, u *laneUse, ev *Event, ts int64, counted bool, values []float64, sc *scratch) {
	ld := u.def
	// at[n] is the slot of live member n, -1 while it has none.
	at := sc.slots[:0]
	missing := 0
	for _, k := range u.live {
		i := sh.keys.find(ks, int32(ld.ids[k]))
		at = append(at, i)
		if i < 0 {
			missing++
		}
	}
	sc.slots = at
	if counted {
		sc.in = ld.inputs(ev, sc.in)
		a := sh.arena
		if ld.share && missing == len(u.live) {
			// A key value new to the lane: one state for all its features.
			ci := sh.keys.addCell(ks, window.NewSharedCell(a, int64(ld.window), ld.members, len(ld.cols)))
			for n, k := range u.live {
				at[n] = int(sh.keys.recs[ks].nSlots)
				sh.keys.addSlot(ks, stateSlot{id: int32(ld.ids[k]), m: int32(k), ci: ci})
			}
			sh.nStates.Add(int64(len(u.live)))
			missing = 0
		}
		if missing > 0 {
			for n, k := range u.live {
				if at[n] < 0 {
					at[n] = int(sh.keys.recs[ks].nSlots)
					ci := sh.keys.addCell(ks, window.NewCell(a, window.Spec{Agg: ld.members[k].Agg, Window: ld.window}))
					sh.keys.addSlot(ks, stateSlot{id: int32(ld.ids[k]), ci: ci})
					sh.nStates.Add(1)
				}
			}
		}
		// Count the event once in each state the lane's features have.
		var added [4]int32
		nAdded := 0
		slots, cells := sh.keys.slotsOf(ks), sh.keys.cellsOf(ks)
	next:
		for n, k := range u.live {
			sl := &slots[at[n]]
			c := &cells[sl.ci]
			if c.Members() == 1 {
				if col := ld.members[k].Col; col >= 0 {
					c.AddInputs(a, ts, sc.in[col:col+1])
				} else {
					c.AddInputs(a, ts, nil)
				}
				continue
			}
			for _, x := range added[:nAdded] {
				if x == sl.ci {
					continue next
				}
			}
			c.AddInputs(a, ts, sc.in)
			if nAdded < len(added) {
				added[nAdded] = sl.ci
				nAdded++
			}
		}
	}
	slots, cells := sh.keys.slotsOf(ks), sh.keys.cellsOf(ks)
	for _, i := range at {
		if i >= 0 {
			sl := &slots[i]
			values[sl.id] = cells[sl.ci].ValueOf(sh.arena, int(sl.m), ts)
		}
	}
}
