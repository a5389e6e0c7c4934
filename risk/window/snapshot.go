package window

import (
	"math"
	"sort"
)

// Snapshot is a State's content in exported form, for encoding (encoding/gob) into the
// engine's snapshot of the feature state.
type Snapshot struct {
	Agg       Agg
	W         int64
	Newest    int64
	Any       bool
	Truncated int64
	// Exact windows: the events in time order.
	TS   []int64   `json:",omitempty"`
	Vals []float64 `json:",omitempty"`
	HS   []uint64  `json:",omitempty"`
	// Bucketed windows.
	Buckets []BucketSnapshot `json:",omitempty"`
	Last    map[uint64]int64 `json:",omitempty"`
}

// BucketSnapshot is one time bucket.
type BucketSnapshot struct {
	Idx, N, ND int64
	V          float64 // sum, minimum or maximum, by aggregation
	Hashes     []uint64
}

// Snapshot returns the content of the state's first member (see SnapshotOf).
func (s *State) Snapshot() Snapshot { return s.c.SnapshotOf(&s.a, 0) }

// SnapshotOf returns member m's content, as the state of that feature alone would hold it.
func (s *State) SnapshotOf(m int) Snapshot { return s.c.SnapshotOf(&s.a, m) }

// FromSnapshot rebuilds a State; it reports false if the snapshot is inconsistent.
func FromSnapshot(sn Snapshot) (*State, bool) {
	st := new(State)
	c, ok := CellFromSnapshot(&st.a, sn)
	if !ok {
		return nil, false
	}
	st.c, st.Truncated = c, c.truncated
	return st, true
}

// SnapshotOf returns member m's content, as the state of that feature alone would hold it.
// The slices are copies. A bucketed window is written as 60 slots, bucket i at position i mod
// 60 and unused slots with Idx math.MinInt64.
func (c *Cell) SnapshotOf(a *Arena, m int) Snapshot {
	out := Snapshot{Agg: c.agg, W: c.w, Newest: c.newest, Any: c.any, Truncated: c.truncated}
	if c.kind == kindExact {
		mem := c.member(a, m)
		out.Agg = mem.Agg
		out.TS = append([]int64(nil), c.ts(a)[c.head:]...)
		if mem.Col >= 0 {
			if c.col(a, mem.Col).flags&flagHashes != 0 {
				out.HS = append([]uint64(nil), c.hashes(a, mem.Col)[c.head:]...)
			} else {
				out.Vals = append([]float64(nil), c.vals(a, mem.Col)[c.head:]...)
			}
		}
		return out
	}
	out.Buckets = make([]BucketSnapshot, Buckets)
	for i := range out.Buckets {
		out.Buckets[i].Idx = math.MinInt64
	}
	pos := func(idx int64) int { return int(((idx % Buckets) + Buckets) % Buckets) }
	if c.kind == kindBuckets {
		for _, b := range c.buckets(a) {
			out.Buckets[pos(b.idx)] = BucketSnapshot{Idx: b.idx, N: b.n, V: b.v}
		}
		return out
	}
	bk := a.sides[c.off]
	for i, b := range bk.bs {
		out.Buckets[pos(b.idx)] = BucketSnapshot{Idx: b.idx, N: b.n, V: b.v, ND: bk.ds[i].nd, Hashes: append([]uint64(nil), bk.ds[i].hashes...)}
	}
	if bk.last != nil {
		out.Last = make(map[uint64]int64, len(bk.last))
		for h, i := range bk.last {
			out.Last[h] = i
		}
	}
	return out
}

// CellFromSnapshot rebuilds a state in a; it reports false if the snapshot is inconsistent.
func CellFromSnapshot(a *Arena, sn Snapshot) (Cell, bool) {
	if sn.Agg > Distinct || sn.W <= 0 {
		return Cell{}, false
	}
	spec := Spec{Agg: sn.Agg, Window: durationOf(sn.W)}
	if !spec.Bucketed() {
		needVals := sn.Agg == Sum || sn.Agg == Min || sn.Agg == Max || sn.Agg == Avg
		if len(sn.Buckets) > 0 || (needVals && len(sn.Vals) != len(sn.TS)) || (sn.Agg == Distinct && len(sn.HS) != len(sn.TS)) {
			return Cell{}, false
		}
		c := NewCell(a, spec)
		c.newest, c.any, c.truncated = sn.Newest, sn.Any, sn.Truncated
		// Re-adding rebuilds the running aggregates and reference counts.
		var in [1]Input
		for i, ts := range sn.TS {
			in[0] = Input{}
			if needVals {
				in[0].V = sn.Vals[i]
			}
			if sn.Agg == Distinct {
				in[0].H = sn.HS[i]
			}
			c.exactAdd(a, ts, in[:], c.newest-c.w)
		}
		return c, true
	}
	if len(sn.Buckets) != Buckets {
		return Cell{}, false
	}
	// Slots that held a bucket which has since left the window are left out, with the
	// values whose newest bucket they were.
	size := sn.W / Buckets
	top := sn.Newest / size
	if sn.Newest%size < 0 {
		top--
	}
	live := map[int64]bool{}
	var bs []bucket
	var ds []distinctBucket
	for _, b := range sn.Buckets {
		if b.Idx == math.MinInt64 || (sn.Any && b.Idx <= top-Buckets) || live[b.Idx] {
			continue
		}
		live[b.Idx] = true
		bs = append(bs, bucket{idx: b.Idx, n: b.N, v: b.V})
		ds = append(ds, distinctBucket{nd: b.ND, hashes: b.Hashes})
	}
	order := make([]int, len(bs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return bs[order[i]].idx < bs[order[j]].idx })
	sbs := make([]bucket, len(order))
	sds := make([]distinctBucket, len(order))
	for k, i := range order {
		sbs[k], sds[k] = bs[i], ds[i]
	}
	c := NewCell(a, spec)
	c.newest, c.any, c.truncated = sn.Newest, sn.Any, sn.Truncated
	if c.kind == kindBuckets {
		if len(sbs) > 0 {
			a.release(c.off, c.cls)
			c.cls = classFor(3 * len(sbs))
			c.off = a.alloc(c.cls)
			c.cap = uint32(classWords(c.cls) / 3)
			c.n = uint32(len(sbs))
			copy(c.buckets(a), sbs)
		}
		return c, true
	}
	bk := a.sides[c.off]
	bk.bs, bk.ds = sbs, sds
	for h, idx := range sn.Last {
		if live[idx] {
			if bk.last == nil {
				bk.last = make(map[uint64]int64, len(sn.Last))
			}
			bk.last[h] = idx
		}
	}
	return c, true
}
