package window

import (
	"math"
	"sort"
)

// bucketed keeps a bucketed distinct window: the buckets of w/60 that hold events and are
// still in the window, (B(H) − 60, B(H)], in index order (a key seen a few times holds a few
// buckets, not 60), and per bucket the values whose newest bucket it is, with the map from a
// value's hash to the newest bucket it was seen in. It lives outside the arena (Arena.sides).
type bucketed struct {
	agg  Agg
	size int64    // bucket length, ns
	bs   []bucket // by idx, ascending
	// Per bucket (parallel to bs), the values whose newest bucket it is, and the map from a
	// value's hash to the newest bucket it was seen in.
	ds   []distinctBucket
	last map[uint64]int64
}

// bucket is one time bucket: its index, its event count, and v: the sum (sum, avg), the
// minimum (min) or the maximum (max) of its events. It is three words, as the arena holds it.
type bucket struct {
	idx int64
	n   int64
	v   float64
}

type distinctBucket struct {
	nd     int64    // how many values have this bucket as their newest
	hashes []uint64 // values whose newest bucket was this one when added
}

func (b *bucketed) bytes() int {
	return 32 + cap(b.bs)*24 + cap(b.ds)*32 + len(b.last)*(48+8)
}

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
	b.ds = insert(b.ds, i, distinctBucket{})
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
	b.bs[i].n++
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
	return 0
}

func (b *bucketed) value(t, newest int64) float64 {
	hi, top := b.index(t), b.index(newest)
	lo := max(hi, top) - Buckets // exclusive
	return aggregate(b.agg, b.bs, b.ds, lo, hi)
}

// aggregate aggregates the buckets in (lo, hi]; ds, for distinct, runs parallel to bs.
func aggregate(agg Agg, bs []bucket, ds []distinctBucket, lo, hi int64) float64 {
	var n, nd int64
	sum, mn, mx := 0.0, math.Inf(1), math.Inf(-1)
	for i := range bs {
		s := &bs[i]
		if s.idx <= lo {
			continue
		}
		if s.idx > hi {
			break
		}
		if ds != nil {
			nd += ds[i].nd
		}
		if s.n == 0 {
			continue
		}
		n += s.n
		sum += s.v
		mn, mx = math.Min(mn, s.v), math.Max(mx, s.v)
	}
	switch agg {
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

func insert[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func minMax(vs []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}
