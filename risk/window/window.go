// Package window keeps sliding-window aggregates for one feature and one key value: count,
// sum, min, max, avg and distinct over the events of the last window.
//
// Semantics (DESIGN.md R2, tested against a brute-force computation):
//
//   - A State holds the counted events e with e.ts > H − w, where H is the newest timestamp
//     counted so far and w the window. An event older than that when it arrives is not
//     stored (Add reports false).
//   - Value(t) aggregates the stored events with timestamps in (t − w, t]. For an event
//     counted at t = H this is exactly the events of (t − w, t], the current one included.
//     For an event that arrives late (t < H), events at or before H − w have already left the
//     state, so its window is cut at H − w.
//   - Windows up to 24 hours are exact: every event is kept. Longer windows keep 60 time
//     buckets of w/60 each: Value(t) aggregates the buckets (B(t) − 60, B(t)], where B(x) is
//     x's bucket, so the window's edges move in steps of w/60.
//   - distinct is exact (a 64-bit hash per value; a collision needs billions of values).
//   - An empty aggregate is 0, for every aggregation.
//
// Memory is bounded per state: at most MaxEntries events (exact windows) or distinct values
// (bucketed windows); past that the oldest are dropped and Truncated counts them, so the value
// becomes a lower bound rather than the process growing without limit.
package window

import (
	"math"
	"sort"
	"time"
)

// Agg is an aggregation.
type Agg uint8

// Aggregations.
const (
	Count Agg = iota
	Sum
	Min
	Max
	Avg
	Distinct
)

// ParseAgg returns the aggregation named s.
func ParseAgg(s string) (Agg, bool) {
	switch s {
	case "count":
		return Count, true
	case "sum":
		return Sum, true
	case "min":
		return Min, true
	case "max":
		return Max, true
	case "avg":
		return Avg, true
	case "distinct":
		return Distinct, true
	}
	return 0, false
}

// ExactMax is the longest window kept exactly; longer windows are bucketed.
const ExactMax = 24 * time.Hour

// Buckets is the number of time buckets of a bucketed window.
const Buckets = 60

// MaxEntries bounds one state: events kept by an exact window, distinct values by a bucketed
// one.
var MaxEntries = 100_000

// Spec says what a state aggregates.
type Spec struct {
	Agg    Agg
	Window time.Duration
}

// Bucketed reports whether the window is kept in time buckets.
func (s Spec) Bucketed() bool { return s.Window > ExactMax }

// State is the window of one feature for one key value, or, for exact windows, of several
// features that count the same events (the same key, event types, filter and window) and
// differ only in their aggregation and field: then the events' times are kept once, each
// field's values once, and each feature is a member read with ValueOf. It is not safe for
// concurrent use: the engine gives each key's states to one writer.
type State struct {
	agg    Agg       // the first member's aggregation
	w      int64     // window, ns
	newest int64     // H: newest timestamp counted
	any    bool      // whether anything was ever counted
	ex     exact     // exact windows (bk nil)
	bk     *bucketed // bucketed windows (one member)
	// Truncated counts events (or values) dropped because the state was full.
	Truncated int64
}

// Member is one aggregation of a shared state: Agg over the input column Col (the index
// in the inputs given to AddInputs; -1 for count, which reads none).
type Member struct {
	Agg Agg
	Col int
}

// Input is one column of an event's inputs: V for sum, min, max and avg, H (the hash of the
// value) for distinct.
type Input struct {
	V float64
	H uint64
}

// singles are the member lists of the states of one feature, by aggregation: count reads no
// column, the others column 0. States share them (members never change).
var singles = [...]Member{Count: {Count, -1}, Sum: {Sum, 0}, Min: {Min, 0}, Max: {Max, 0}, Avg: {Avg, 0}, Distinct: {Distinct, 0}}

// New returns an empty state of one feature.
func New(s Spec) *State {
	w := int64(s.Window)
	if s.Bucketed() {
		// The state and its buckets in one allocation.
		p := new(struct {
			st State
			bk bucketed
		})
		p.bk = bucketed{agg: s.Agg, size: w / Buckets}
		p.st = State{agg: s.Agg, w: w, bk: &p.bk}
		return &p.st
	}
	m := singles[s.Agg : s.Agg+1 : s.Agg+1]
	return newExact(w, m, m[0].Col+1)
}

// NewShared returns an empty exact state (window at most ExactMax) of several members over
// cols input columns. A column is read by members of one kind: values (sum, min, max, avg) or
// hashes (distinct).
func NewShared(window time.Duration, members []Member, cols int) *State {
	if window > ExactMax || len(members) == 0 {
		panic("window: NewShared needs an exact window and members")
	}
	return newExact(int64(window), members, cols)
}

// newExact returns an empty exact state of members over cols input columns. With up to two
// columns it is one allocation with its columns and room for the times and values of its
// first two events: a new key value makes several states at once and most see few events,
// so fewer allocations, and the first events' data next to the state in memory.
func newExact(w int64, members []Member, cols int) *State {
	var st *State
	switch cols {
	case 0:
		p := new(struct {
			st State
			ts [2]int64
		})
		st = &p.st
		st.ex.ts = p.ts[:0]
	case 1:
		p := new(struct {
			st   State
			ts   [2]int64
			cols [1]column
			vals [1][2]float64
		})
		st = &p.st
		st.ex.ts, st.ex.cols = p.ts[:0], p.cols[:]
		p.cols[0].vals = p.vals[0][:0]
	case 2:
		p := new(struct {
			st   State
			ts   [2]int64
			cols [2]column
			vals [2][2]float64
		})
		st = &p.st
		st.ex.ts, st.ex.cols = p.ts[:0], p.cols[:]
		p.cols[0].vals, p.cols[1].vals = p.vals[0][:0], p.vals[1][:0]
	default:
		st = new(State)
		st.ex.cols = make([]column, cols)
	}
	st.agg, st.w = members[0].Agg, w
	st.ex.init(members)
	return st
}

// Members is the number of aggregations the state keeps.
func (s *State) Members() int {
	if s.bk != nil {
		return 1
	}
	return len(s.ex.members)
}

// Newest is the newest timestamp counted (H), in Unix nanoseconds; 0 when empty.
func (s *State) Newest() int64 { return s.newest }

// Add counts an event at ts (Unix nanoseconds) with value v (used by sum, min, max, avg) and
// hash h of its distinct value (used by distinct), for a state of one feature. It reports
// false if the event is older than the state keeps (ts <= H − w) and was not counted.
func (s *State) Add(ts int64, v float64, h uint64) bool {
	in := [1]Input{{V: v, H: h}}
	return s.AddInputs(ts, in[:])
}

// AddInputs counts an event at ts with one input per column (see Add).
func (s *State) AddInputs(ts int64, in []Input) bool {
	if s.any && ts <= s.newest-s.w {
		return false
	}
	if !s.any || ts > s.newest {
		s.newest, s.any = ts, true
	}
	if s.bk == nil {
		s.Truncated += s.ex.add(ts, in, s.newest-s.w)
	} else {
		var v float64
		var h uint64
		if len(in) > 0 {
			v, h = in[0].V, in[0].H
		}
		s.Truncated += s.bk.add(ts, v, h, s.newest)
	}
	return true
}

// Value is the aggregate for an event at t (Unix nanoseconds) of the first member.
func (s *State) Value(t int64) float64 { return s.ValueOf(0, t) }

// ValueOf is member m's aggregate for an event at t.
func (s *State) ValueOf(m int, t int64) float64 {
	if !s.any {
		return 0
	}
	if s.bk == nil {
		return s.ex.value(m, t-s.w, t, s.newest)
	}
	return s.bk.value(t, s.newest)
}

// Warm reads the memory that counting an event and reading a value touch first (the state,
// its newest time, and its first column or buckets) and returns a number made from it. A
// caller about to use several states warms them all first: the loads do not depend on each
// other, so their cache misses overlap instead of following one another.
func (s *State) Warm() int64 {
	if s.bk != nil {
		return s.newest + int64(len(s.bk.bs))
	}
	n := s.newest
	if k := len(s.ex.ts); k > 0 {
		n += s.ex.ts[k-1]
	}
	if len(s.ex.cols) > 0 {
		c := &s.ex.cols[0]
		n += int64(len(c.vals) + len(c.hs) + len(c.refs.few))
	}
	return n
}

// Idle reports whether the state can no longer change the value or the storage of any event
// newer than floor: then it may be dropped (its key evicted) without changing any result.
// The engine passes the oldest time it still accepts.
func (s *State) Idle(floor int64) bool { return !s.any || s.newest <= floor-s.w }

// Len is the number of events (exact) or distinct values and buckets (bucketed) held.
func (s *State) Len() int {
	if s.bk == nil {
		return len(s.ex.ts) - s.ex.head
	}
	return len(s.bk.last) + len(s.bk.bs)
}

// Bytes estimates the memory the state holds (all its members).
func (s *State) Bytes() int {
	const base = 128
	if s.bk == nil {
		per := 8
		for i := range s.ex.cols {
			if s.ex.cols[i].hashes {
				per += 8 + 24 // the hash, and its share of the reference counts
			} else {
				per += 8
			}
		}
		return base + len(s.ex.members)*16 + len(s.ex.cols)*96 + cap(s.ex.ts)*per
	}
	n := base + 32 + cap(s.bk.bs)*24
	if s.bk.agg == Distinct {
		n += cap(s.bk.ds)*32 + len(s.bk.last)*(48+8)
	}
	return n
}

// exact keeps every event of the window, sorted by time, with running aggregates over the
// whole state (H − w, H]: the events' times, and per input column its values (or hashes).
type exact struct {
	head    int
	ts      []int64
	cols    []column
	members []Member
}

// column is one input of the events, with its running aggregates over the whole state.
type column struct {
	hashes   bool
	vals     []float64 // sum, min, max, avg
	hs       []uint64  // distinct
	refs     refCounts // distinct: how many stored events hold each hash
	sum      float64
	min, max float64
	mmDirty  bool // min/max need a rescan (an extreme left the window)
}

// init sets up an empty exact window of members over e.cols (empty columns).
func (e *exact) init(members []Member) {
	e.members = members
	for _, m := range members {
		if m.Agg == Distinct {
			e.cols[m.Col].hashes = true
		}
	}
}

// add inserts the event and drops events at or before floor; it returns how many events it
// dropped because the state was full.
func (e *exact) add(ts int64, in []Input, floor int64) int64 {
	n := len(e.ts)
	// Events mostly arrive in time order: append; a late one is inserted in place.
	i := n
	if n > e.head && e.ts[n-1] > ts {
		i = e.head + sort.Search(n-e.head, func(k int) bool { return e.ts[e.head+k] > ts })
	}
	e.ts = insert(e.ts, i, ts)
	live := e.live()
	for c := range e.cols {
		col := &e.cols[c]
		if col.hashes {
			h := in[c].H
			col.hs = insert(col.hs, i, h)
			col.refs.inc(h)
			continue
		}
		v := in[c].V
		col.vals = insert(col.vals, i, v)
		col.sum += v
		if live == 1 {
			col.min, col.max, col.mmDirty = v, v, false
		} else if !col.mmDirty {
			col.min, col.max = math.Min(col.min, v), math.Max(col.max, v)
		}
	}
	e.expire(floor)
	var dropped int64
	for e.live() > MaxEntries {
		e.pop()
		dropped++
	}
	return dropped
}

func (e *exact) live() int { return len(e.ts) - e.head }

// expire drops events at or before floor.
func (e *exact) expire(floor int64) {
	for e.head < len(e.ts) && e.ts[e.head] <= floor {
		e.pop()
	}
}

// pop drops the oldest event.
func (e *exact) pop() {
	i := e.head
	for c := range e.cols {
		col := &e.cols[c]
		if col.hashes {
			col.refs.dec(col.hs[i])
			continue
		}
		v := col.vals[i]
		col.sum -= v
		if v <= col.min || v >= col.max {
			col.mmDirty = true
		}
	}
	e.head++
	if e.head == len(e.ts) {
		e.head = 0
		e.ts = e.ts[:0]
		for c := range e.cols {
			col := &e.cols[c]
			col.vals = col.vals[:0:cap(col.vals)]
			col.hs = col.hs[:0:cap(col.hs)]
			col.sum = 0 // no rounding residue survives an empty window
		}
		return
	}
	// Compact when the dead prefix is half the slice, so memory follows the window.
	if e.head >= 1024 && e.head*2 >= len(e.ts) {
		e.ts = compact(e.ts, e.head)
		for c := range e.cols {
			col := &e.cols[c]
			if col.hashes {
				col.hs = compact(col.hs, e.head)
			} else {
				col.vals = compact(col.vals, e.head)
			}
		}
		e.head = 0
	}
}

// refCounts counts hashes: in a short unsorted list while there are few distinct ones (most
// keys see a handful of values), in a map beyond that.
type refCounts struct {
	few  []hashRef
	many map[uint64]int32
}

type hashRef struct {
	h uint64
	n int32
}

// fewRefs is how many distinct hashes refCounts keeps in its list before it moves to a map.
const fewRefs = 16

func (r *refCounts) len() int {
	if r.many != nil {
		return len(r.many)
	}
	return len(r.few)
}

func (r *refCounts) inc(h uint64) {
	if r.many != nil {
		r.many[h]++
		return
	}
	for i := range r.few {
		if r.few[i].h == h {
			r.few[i].n++
			return
		}
	}
	if len(r.few) < fewRefs {
		r.few = append(r.few, hashRef{h, 1})
		return
	}
	r.many = make(map[uint64]int32, 2*fewRefs)
	for _, x := range r.few {
		r.many[x.h] = x.n
	}
	r.many[h]++
	r.few = nil
}

func (r *refCounts) dec(h uint64) {
	if r.many != nil {
		if r.many[h]--; r.many[h] <= 0 {
			delete(r.many, h)
		}
		if len(r.many) == 0 {
			r.many = nil // back to the list
		}
		return
	}
	for i := range r.few {
		if r.few[i].h == h {
			if r.few[i].n--; r.few[i].n <= 0 {
				last := len(r.few) - 1
				r.few[i] = r.few[last]
				r.few = r.few[:last]
			}
			return
		}
	}
}

func insert[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func compact[T any](s []T, head int) []T {
	n := copy(s, s[head:])
	return s[:n]
}

// value aggregates member m over the events in (lo, hi]; newest is H (every stored event is
// <= H).
func (e *exact) value(m int, lo, hi, newest int64) float64 {
	agg := e.members[m].Agg
	var col *column
	if c := e.members[m].Col; c >= 0 {
		col = &e.cols[c]
	}
	n := len(e.ts)
	if e.head == n {
		return 0
	}
	if hi >= newest && (e.ts[e.head] > lo) {
		// The whole state: the running aggregates answer.
		return e.running(agg, col)
	}
	i := e.head + sort.Search(n-e.head, func(k int) bool { return e.ts[e.head+k] > lo })
	j := n
	if hi < newest {
		j = e.head + sort.Search(n-e.head, func(k int) bool { return e.ts[e.head+k] > hi })
	} else if p := i - e.head; p < n-i && (agg == Count || agg == Sum || agg == Avg) {
		// A suffix of the state, longer than the prefix it leaves out: subtract the prefix.
		if agg == Count {
			return float64(n - i)
		}
		s := col.sum
		for _, v := range col.vals[e.head:i] {
			s -= v
		}
		if agg == Avg {
			return s / float64(n-i)
		}
		return s
	}
	return scan(agg, col, i, j)
}

func (e *exact) running(agg Agg, col *column) float64 {
	n := float64(e.live())
	switch agg {
	case Count:
		return n
	case Sum:
		return col.sum
	case Avg:
		return col.sum / n
	case Min, Max:
		if col.mmDirty {
			col.min, col.max = minMax(col.vals[e.head:])
			col.mmDirty = false
		}
		if agg == Min {
			return col.min
		}
		return col.max
	case Distinct:
		return float64(col.refs.len())
	}
	return 0
}

// scan aggregates the events at indexes [i, j).
func scan(agg Agg, col *column, i, j int) float64 {
	if j <= i {
		return 0
	}
	switch agg {
	case Count:
		return float64(j - i)
	case Sum, Avg:
		s := 0.0
		for _, v := range col.vals[i:j] {
			s += v
		}
		if agg == Avg {
			return s / float64(j-i)
		}
		return s
	case Min, Max:
		lo, hi := minMax(col.vals[i:j])
		if agg == Min {
			return lo
		}
		return hi
	case Distinct:
		seen := make(map[uint64]struct{}, j-i)
		for _, h := range col.hs[i:j] {
			seen[h] = struct{}{}
		}
		return float64(len(seen))
	}
	return 0
}

func minMax(vs []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// bucketed keeps the buckets of w/60 that hold events and are still in the window,
// (B(H) − 60, B(H)], in index order: a key seen a few times holds a few buckets, not 60.
type bucketed struct {
	agg  Agg
	size int64    // bucket length, ns
	bs   []bucket // by idx, ascending
	// Distinct only: per bucket (parallel to bs), the values whose newest bucket it is, and
	// the map from a value's hash to the newest bucket it was seen in.
	ds   []distinctBucket
	last map[uint64]int64
}

// bucket is one time bucket: its index, its event count, and v: the sum (sum, avg), the
// minimum (min) or the maximum (max) of its events.
type bucket struct {
	idx int64
	n   int64
	v   float64
}

type distinctBucket struct {
	nd     int64    // how many values have this bucket as their newest
	hashes []uint64 // values whose newest bucket was this one when added
}

func (b *bucketed) pos(idx int64) int { return int(((idx % Buckets) + Buckets) % Buckets) }

func (b *bucketed) index(ts int64) int64 {
	q := ts / b.size
	if ts%b.size < 0 {
		q-- // floor for times before 1970
	}
	return q
}

// expire drops the buckets that left the window (B(H) − 60, B(H)], top being B(H), and the
// distinct values whose newest bucket they were.
func (b *bucketed) expire(top int64) {
	n := 0
	for n < len(b.bs) && b.bs[n].idx <= top-Buckets {
		n++
	}
	if n == 0 {
		return
	}
	if b.ds != nil {
		for k := range n {
			for _, h := range b.ds[k].hashes {
				if b.last[h] == b.bs[k].idx {
					delete(b.last, h)
				}
			}
		}
		m := copy(b.ds, b.ds[n:])
		clear(b.ds[m:])
		b.ds = b.ds[:m]
	}
	b.bs = b.bs[:copy(b.bs, b.bs[n:])]
}

// find returns the position of bucket idx, inserting an empty one if there is none.
func (b *bucketed) find(idx int64) int {
	n := len(b.bs)
	if n > 0 && b.bs[n-1].idx == idx {
		return n - 1
	}
	i := n
	if n > 0 && b.bs[n-1].idx > idx {
		var found bool
		if i, found = b.search(idx); found {
			return i
		}
	}
	b.bs = insert(b.bs, i, bucket{idx: idx})
	if b.agg == Distinct {
		b.ds = insert(b.ds, i, distinctBucket{})
	}
	return i
}

// search finds bucket idx by binary search: its position, or where it would go.
func (b *bucketed) search(idx int64) (int, bool) {
	i := sort.Search(len(b.bs), func(k int) bool { return b.bs[k].idx >= idx })
	return i, i < len(b.bs) && b.bs[i].idx == idx
}

func (b *bucketed) add(ts int64, v float64, h uint64, newest int64) int64 {
	bi, top := b.index(ts), b.index(newest)
	if bi <= top-Buckets {
		return 0 // its bucket already left the window
	}
	b.expire(top)
	i := b.find(bi)
	s := &b.bs[i]
	switch {
	case b.agg == Min && (s.n == 0 || v < s.v), b.agg == Max && (s.n == 0 || v > s.v):
		s.v = v
	case b.agg == Sum || b.agg == Avg:
		s.v += v
	}
	s.n++
	if b.agg == Distinct {
		if b.last == nil {
			b.last = make(map[uint64]int64)
		}
		prev, ok := b.last[h]
		if !ok || bi > prev {
			if !ok && len(b.last) >= MaxEntries {
				return 1
			}
			if ok {
				if p, found := b.search(prev); found {
					b.ds[p].nd--
				}
			}
			b.last[h] = bi
			b.ds[i].nd++
			b.ds[i].hashes = append(b.ds[i].hashes, h)
		}
	}
	return 0
}

func (b *bucketed) value(t, newest int64) float64 {
	// The buckets (B(t) − 60, B(t)] that the state still holds, (B(H) − 60, B(H)].
	hi, top := b.index(t), b.index(newest)
	lo := max(hi, top) - Buckets // exclusive
	var n, nd int64
	sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
	for i := range b.bs {
		s := &b.bs[i]
		if s.idx <= lo {
			continue
		}
		if s.idx > hi {
			break
		}
		if b.ds != nil {
			nd += b.ds[i].nd
		}
		if s.n == 0 {
			continue
		}
		n += s.n
		sum += s.v
		mn, mx = math.Min(mn, s.v), math.Max(mx, s.v)
	}
	switch b.agg {
	case Count:
		return float64(n)
	case Sum:
		return sum
	case Avg:
		if n == 0 {
			return 0
		}
		return sum / float64(n)
	case Min:
		if n == 0 {
			return 0
		}
		return mn
	case Max:
		if n == 0 {
			return 0
		}
		return mx
	case Distinct:
		// A value counts if its newest bucket is in the window. For a late event (t < H)
		// a value seen both before and after t counts only by its newest bucket, so this is
		// a lower bound there.
		return float64(nd)
	}
	return 0
}

func durationOf(ns int64) time.Duration { return time.Duration(ns) }
