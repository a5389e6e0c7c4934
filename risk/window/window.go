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
//
// The engine keeps millions of states: as Cells, small values without pointers whose data
// lives in an Arena, a few large pointer-free slices the garbage collector does not scan.
// State is a Cell with an arena of its own, for callers that hold a few states.
package window

import "time"

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
// field's values once, and each feature is a member read with ValueOf. It is a Cell with an
// Arena of its own. It is not safe for concurrent use.
type State struct {
	a Arena
	c Cell
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
	st := new(State)
	st.c = NewCell(&st.a, s)
	return st
}

// NewShared returns an empty exact state (window at most ExactMax) of several members over
// cols input columns. A column is read by members of one kind: values (sum, min, max, avg) or
// hashes (distinct).
func NewShared(window time.Duration, members []Member, cols int) *State {
	st := new(State)
	st.c = NewSharedCell(&st.a, int64(window), members, cols)
	return st
}

// Members is the number of aggregations the state keeps.
func (s *State) Members() int { return s.c.Members() }

// Newest is the newest timestamp counted (H), in Unix nanoseconds; 0 when empty.
func (s *State) Newest() int64 { return s.c.newest }

// Add counts an event at ts (Unix nanoseconds) with value v (used by sum, min, max, avg) and
// hash h of its distinct value (used by distinct), for a state of one feature. It reports
// false if the event is older than the state keeps (ts <= H − w) and was not counted.
func (s *State) Add(ts int64, v float64, h uint64) bool {
	in := [1]Input{{V: v, H: h}}
	return s.AddInputs(ts, in[:])
}

// AddInputs counts an event at ts with one input per column (see Add).
func (s *State) AddInputs(ts int64, in []Input) bool {
	ok := s.c.AddInputs(&s.a, ts, in)
	s.Truncated = s.c.truncated
	return ok
}

// Value is the aggregate for an event at t (Unix nanoseconds) of the first member.
func (s *State) Value(t int64) float64 { return s.c.ValueOf(&s.a, 0, t) }

// ValueOf is member m's aggregate for an event at t.
func (s *State) ValueOf(m int, t int64) float64 { return s.c.ValueOf(&s.a, m, t) }

// Warm reads the memory that counting an event and reading a value touch first (the state,
// its newest time, and its first column or buckets) and returns a number made from it. A
// caller about to use several states warms them all first: the loads do not depend on each
// other, so their cache misses overlap instead of following one another.
func (s *State) Warm() int64 { return s.c.Warm(&s.a) }

// Idle reports whether the state can no longer change the value or the storage of any event
// newer than floor: then it may be dropped (its key evicted) without changing any result.
// The engine passes the oldest time it still accepts.
func (s *State) Idle(floor int64) bool { return s.c.Idle(floor) }

// Len is the number of events (exact) or distinct values and buckets (bucketed) held.
func (s *State) Len() int { return s.c.Len(&s.a) }

// Bytes estimates the memory the state holds (all its members).
func (s *State) Bytes() int { return s.c.Bytes(&s.a) }

func durationOf(ns int64) time.Duration { return time.Duration(ns) }
