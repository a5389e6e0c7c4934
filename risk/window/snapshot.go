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
func (s *State) Snapshot() Snapshot { return s.SnapshotOf(0) }

// SnapshotOf returns member m's content, as the state of that feature alone would hold it.
// The slices are copies. A bucketed window is written as 60 slots, bucket i at position i mod
// 60 and unused slots with Idx math.MinInt64.
func (s *State) SnapshotOf(m int) Snapshot {
	out := Snapshot{Agg: s.agg, W: s.w, Newest: s.newest, Any: s.any, Truncated: s.Truncated}
	if s.bk == nil {
		mem := s.ex.members[m]
		out.Agg = mem.Agg
		out.TS = append([]int64(nil), s.ex.ts[s.ex.head:]...)
		if mem.Col >= 0 {
			col := &s.ex.cols[mem.Col]
			if col.hashes {
				out.HS = append([]uint64(nil), col.hs[s.ex.head:]...)
			} else {
				out.Vals = append([]float64(nil), col.vals[s.ex.head:]...)
			}
		}
		return out
	}
	out.Buckets = make([]BucketSnapshot, Buckets)
	for i := range out.Buckets {
		out.Buckets[i].Idx = math.MinInt64
	}
	for i, b := range s.bk.bs {
		bs := BucketSnapshot{Idx: b.idx, N: b.n, V: b.v}
		if s.bk.ds != nil {
			bs.ND, bs.Hashes = s.bk.ds[i].nd, append([]uint64(nil), s.bk.ds[i].hashes...)
		}
		out.Buckets[s.bk.pos(b.idx)] = bs
	}
	if s.bk.last != nil {
		out.Last = make(map[uint64]int64, len(s.bk.last))
		for h, i := range s.bk.last {
			out.Last[h] = i
		}
	}
	return out
}

// FromSnapshot rebuilds a State; it reports false if the snapshot is inconsistent.
func FromSnapshot(sn Snapshot) (*State, bool) {
	if sn.Agg > Distinct || sn.W <= 0 {
		return nil, false
	}
	s := New(Spec{Agg: sn.Agg, Window: durationOf(sn.W)})
	s.newest, s.any, s.Truncated = sn.Newest, sn.Any, sn.Truncated
	if s.bk == nil {
		needVals := sn.Agg == Sum || sn.Agg == Min || sn.Agg == Max || sn.Agg == Avg
		if len(sn.Buckets) > 0 || (needVals && len(sn.Vals) != len(sn.TS)) || (sn.Agg == Distinct && len(sn.HS) != len(sn.TS)) {
			return nil, false
		}
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
			s.ex.add(ts, in[:], s.newest-s.w)
		}
		return s, true
	}
	if len(sn.Buckets) != Buckets {
		return nil, false
	}
	// Slots that held a bucket which has since left the window are left out, with the
	// values whose newest bucket they were.
	top := s.bk.index(sn.Newest)
	live := map[int64]bool{}
	for _, b := range sn.Buckets {
		if b.Idx == math.MinInt64 || (sn.Any && b.Idx <= top-Buckets) || live[b.Idx] {
			continue
		}
		live[b.Idx] = true
		s.bk.bs = append(s.bk.bs, bucket{idx: b.Idx, n: b.N, v: b.V})
		if sn.Agg == Distinct {
			s.bk.ds = append(s.bk.ds, distinctBucket{nd: b.ND, hashes: b.Hashes})
		}
	}
	order := make([]int, len(s.bk.bs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return s.bk.bs[order[i]].idx < s.bk.bs[order[j]].idx })
	bs := make([]bucket, len(order))
	var ds []distinctBucket
	for k, i := range order {
		bs[k] = s.bk.bs[i]
		if s.bk.ds != nil {
			ds = append(ds, s.bk.ds[i])
		}
	}
	s.bk.bs, s.bk.ds = bs, ds
	for h, idx := range sn.Last {
		if live[idx] {
			if s.bk.last == nil {
				s.bk.last = make(map[uint64]int64, len(sn.Last))
			}
			s.bk.last[h] = idx
		}
	}
	return s, true
}
