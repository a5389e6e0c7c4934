package window

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

// Snapshot returns the state's content. The slices are copies.
func (s *State) Snapshot() Snapshot {
	out := Snapshot{Agg: s.agg, W: s.w, Newest: s.newest, Any: s.any, Truncated: s.Truncated}
	if s.ex != nil {
		out.TS = append([]int64(nil), s.ex.ts[s.ex.head:]...)
		if s.ex.vals != nil {
			out.Vals = append([]float64(nil), s.ex.vals[s.ex.head:]...)
		}
		if s.ex.hs != nil {
			out.HS = append([]uint64(nil), s.ex.hs[s.ex.head:]...)
		}
		return out
	}
	for i, b := range s.bk.bs {
		bs := BucketSnapshot{Idx: b.idx, N: b.n, V: b.v}
		if s.bk.ds != nil {
			bs.ND, bs.Hashes = s.bk.ds[i].nd, append([]uint64(nil), s.bk.ds[i].hashes...)
		}
		out.Buckets = append(out.Buckets, bs)
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
	if s.ex != nil {
		if len(sn.Buckets) > 0 || (s.ex.needVals() && len(sn.Vals) != len(sn.TS)) || (sn.Agg == Distinct && len(sn.HS) != len(sn.TS)) {
			return nil, false
		}
		// Re-adding rebuilds the running aggregates and reference counts.
		for i, ts := range sn.TS {
			var v float64
			var h uint64
			if sn.Vals != nil {
				v = sn.Vals[i]
			}
			if sn.HS != nil {
				h = sn.HS[i]
			}
			s.ex.add(ts, v, h, s.newest-s.w)
		}
		return s, true
	}
	if len(sn.Buckets) != Buckets {
		return nil, false
	}
	for i, b := range sn.Buckets {
		s.bk.bs[i] = bucket{idx: b.Idx, n: b.N, v: b.V}
		if s.bk.ds != nil {
			s.bk.ds[i] = distinctBucket{nd: b.ND, hashes: b.Hashes}
		}
	}
	s.bk.last = sn.Last
	return s, true
}
