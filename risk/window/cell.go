package window

import (
	"math"
	"sort"
	"unsafe"
)

// Cell is a window state whose data lives in an Arena: the Cell itself is a small value
// without pointers (kept in the engine's own pointer-free slices), and every call passes the
// arena that holds its block. The semantics are State's (see the package comment); State is
// a Cell with an arena of its own.
//
// An exact window's block holds its members, a header per input column (running sum, minimum
// and maximum, and for a distinct column its table of hash reference counts, a block of its
// own), then the events' times and one array per column, the live events at [head, n). A
// bucketed window's block holds its buckets, (index, count, value) each; bucketed distinct
// windows keep their values' maps in an ordinary object the arena keeps for them.
type Cell struct {
	w, newest int64
	truncated int64
	off       uint32 // block (exact, buckets) or side index
	head, n   uint32 // exact: live events [head, n); buckets: n buckets
	cap       uint32 // events (exact) or buckets the block holds
	cls       uint8
	kind      uint8
	agg       Agg // the first member's
	nmem      uint8
	ncols     uint8
	any       bool
}

const (
	kindExact uint8 = iota
	kindBuckets
	kindSide // bucketed distinct: a *bucketed in Arena.sides
)

// colHdr is the header of an exact window's input column in its block.
type colHdr struct {
	sum, min, max float64
	refs          uint64 // distinct: offset (low 32 bits) and class (next 8) of the counts' table
	nrefs         uint64 // distinct: values in the table
	flags         uint64
}

const (
	colWords   = 6
	flagHashes = 1
	flagDirty  = 2 // min/max need a rescan (an extreme left the window)
)

// NewCell returns an empty state of one feature, in a.
func NewCell(a *Arena, s Spec) Cell {
	w := int64(s.Window)
	if s.Bucketed() {
		if s.Agg == Distinct {
			b := &bucketed{agg: s.Agg, size: w / Buckets}
			return Cell{w: w, agg: s.Agg, kind: kindSide, nmem: 1, off: a.addSide(b)}
		}
		c := Cell{w: w, agg: s.Agg, kind: kindBuckets, nmem: 1, cls: 0}
		c.off = a.alloc(0)
		c.cap = uint32(classWords(0) / 3)
		return c
	}
	m := singles[s.Agg : s.Agg+1 : s.Agg+1]
	return newExactCell(a, w, m, m[0].Col+1)
}

// NewSharedCell returns an empty exact state (window at most ExactMax) of several members
// over cols input columns, in a (see NewShared).
func NewSharedCell(a *Arena, window int64, members []Member, cols int) Cell {
	if window > int64(ExactMax) || len(members) == 0 || len(members) > MaxMembers || cols > MaxMembers {
		panic("window: NewShared needs an exact window and 1 to MaxMembers members")
	}
	return newExactCell(a, window, members, cols)
}

// MaxMembers bounds the members and columns of a shared state.
const MaxMembers = 250

func newExactCell(a *Arena, w int64, members []Member, cols int) Cell {
	c := Cell{w: w, agg: members[0].Agg, kind: kindExact, nmem: uint8(len(members)), ncols: uint8(cols)}
	hdr := c.hdr()
	c.cls = classFor(hdr + 2*(1+cols))
	c.cap = uint32((classWords(c.cls) - hdr) / (1 + cols))
	c.off = a.alloc(c.cls)
	for i, m := range members {
		a.blk(c.off)[i/4] |= (uint64(m.Agg) | uint64(uint8(m.Col+1))<<8) << (16 * (i % 4))
		if m.Agg == Distinct {
			c.col(a, m.Col).flags |= flagHashes
		}
	}
	return c
}

func (c *Cell) hdr() int { return (int(c.nmem)+3)/4 + colWords*int(c.ncols) }

// member returns member i of an exact state.
func (c *Cell) member(a *Arena, i int) Member {
	x := a.blk(c.off)[i/4] >> (16 * (i % 4))
	return Member{Agg: Agg(x & 0xff), Col: int(uint8(x>>8)) - 1}
}

func (c *Cell) col(a *Arena, k int) *colHdr {
	return (*colHdr)(unsafe.Pointer(&a.blk(c.off)[(int(c.nmem)+3)/4+colWords*k]))
}

// ts is the times of the stored events, [0, n) with capacity cap. Views of a block are valid
// until the block is released (the state grows or shrinks into another one).
func (c *Cell) ts(a *Arena) []int64 {
	return unsafe.Slice((*int64)(unsafe.Pointer(&a.blk(c.off)[c.hdr()])), c.cap)[:c.n]
}

func (c *Cell) vals(a *Arena, k int) []float64 {
	p := c.hdr() + int(c.cap)*(1+k)
	return unsafe.Slice((*float64)(unsafe.Pointer(&a.blk(c.off)[p])), c.cap)[:c.n]
}

func (c *Cell) hashes(a *Arena, k int) []uint64 {
	p := c.hdr() + int(c.cap)*(1+k)
	return a.blk(c.off)[p : p+int(c.cap)][:c.n]
}

func (c *Cell) buckets(a *Arena) []bucket {
	return unsafe.Slice((*bucket)(unsafe.Pointer(&a.blk(c.off)[0])), c.cap)[:c.n]
}

// Members is the number of aggregations the state keeps.
func (c *Cell) Members() int { return int(c.nmem) }

// Newest is the newest timestamp counted (H), in Unix nanoseconds; 0 when empty.
func (c *Cell) Newest() int64 { return c.newest }

// Truncated counts events (or values) dropped because the state was full.
func (c *Cell) Truncated() int64 { return c.truncated }

// Idle reports whether the state can no longer change the value or the storage of any event
// newer than floor (see State.Idle).
func (c *Cell) Idle(floor int64) bool { return !c.any || c.newest <= floor-c.w }

// Len is the number of events (exact) or distinct values and buckets (bucketed) held.
func (c *Cell) Len(a *Arena) int {
	switch c.kind {
	case kindExact:
		return int(c.n - c.head)
	case kindBuckets:
		return int(c.n)
	}
	b := a.sides[c.off]
	return len(b.last) + len(b.bs)
}

// CellSize is the size of a Cell.
const CellSize = int(unsafe.Sizeof(Cell{}))

// Bytes estimates the memory the state holds (all its members): the Cell and its blocks.
func (c *Cell) Bytes(a *Arena) int {
	const base = CellSize
	switch c.kind {
	case kindExact:
		n := base + classWords(c.cls)*8
		for k := range int(c.ncols) {
			if h := c.col(a, k); h.refs != 0 {
				n += classWords(uint8(h.refs>>32)) * 8
			}
		}
		return n
	case kindBuckets:
		return base + classWords(c.cls)*8
	}
	return base + a.sides[c.off].bytes()
}

// Free releases the state's blocks; the Cell must not be used afterwards.
func (c *Cell) Free(a *Arena) {
	switch c.kind {
	case kindExact:
		for k := range int(c.ncols) {
			if h := c.col(a, k); h.refs != 0 {
				a.release(uint32(h.refs), uint8(h.refs>>32))
			}
		}
		a.release(c.off, c.cls)
	case kindBuckets:
		a.release(c.off, c.cls)
	default:
		a.dropSide(c.off)
	}
	*c = Cell{}
}

// Move returns the state moved from arena from to arena to (its blocks in from are freed).
func (c Cell) Move(from, to *Arena) Cell {
	out := c
	switch c.kind {
	case kindSide:
		out.off = to.addSide(from.sides[c.off])
		from.dropSide(c.off)
		return out
	case kindExact, kindBuckets:
		out.off = to.alloc(c.cls)
		n := classWords(c.cls)
		copy(to.blk(out.off)[:n], from.blk(c.off)[:n])
	}
	if c.kind == kindExact {
		for k := range int(c.ncols) {
			h := out.col(to, k)
			if h.refs == 0 {
				continue
			}
			roff, rcls := uint32(h.refs), uint8(h.refs>>32)
			noff := to.alloc(rcls)
			n := classWords(rcls)
			copy(to.blk(noff)[:n], from.blk(roff)[:n])
			out.col(to, k).refs = uint64(noff) | uint64(rcls)<<32
		}
	}
	c.Free(from)
	return out
}

// Warm reads the memory that counting an event and reading a value touch first (see
// State.Warm) and returns a number made from it.
func (c *Cell) Warm(a *Arena) int64 {
	switch c.kind {
	case kindExact:
		n := c.newest + int64(a.blk(c.off)[0])
		if c.n > 0 {
			n += int64(a.blk(c.off)[c.hdr()+int(c.n)-1])
		}
		return n
	case kindBuckets:
		return c.newest + int64(a.blk(c.off)[0])
	}
	return c.newest + int64(len(a.sides[c.off].bs))
}

// Add counts an event at ts with value v and hash h, for a state of one feature (see
// State.Add).
func (c *Cell) Add(a *Arena, ts int64, v float64, h uint64) bool {
	in := [1]Input{{V: v, H: h}}
	return c.AddInputs(a, ts, in[:])
}

// AddInputs counts an event at ts with one input per column (see State.Add).
func (c *Cell) AddInputs(a *Arena, ts int64, in []Input) bool {
	if c.any && ts <= c.newest-c.w {
		return false
	}
	if !c.any || ts > c.newest {
		c.newest, c.any = ts, true
	}
	if c.kind == kindExact {
		c.truncated += c.exactAdd(a, ts, in, c.newest-c.w)
		return true
	}
	var v float64
	var h uint64
	if len(in) > 0 {
		v, h = in[0].V, in[0].H
	}
	if c.kind == kindBuckets {
		c.bucketAdd(a, ts, v)
	} else {
		c.truncated += a.sides[c.off].add(ts, v, h, c.newest)
	}
	return true
}

// Value is the aggregate for an event at t of the first member.
func (c *Cell) Value(a *Arena, t int64) float64 { return c.ValueOf(a, 0, t) }

// ValueOf is member m's aggregate for an event at t.
func (c *Cell) ValueOf(a *Arena, m int, t int64) float64 {
	if !c.any {
		return 0
	}
	switch c.kind {
	case kindExact:
		return c.exactValue(a, m, t-c.w, t)
	case kindBuckets:
		return c.bucketValue(a, t)
	}
	return a.sides[c.off].value(t, c.newest)
}

// exact windows

// room makes room for one more event: it compacts the block when a quarter or more of it is
// dead events, and moves the state to a block twice the size otherwise.
func (c *Cell) room(a *Arena) {
	if c.n < c.cap {
		return
	}
	live := c.n - c.head
	if c.head > 0 && live <= c.cap-c.cap/4 {
		c.compact(a)
		return
	}
	c.resize(a, 2*int(c.cap))
}

// compact moves the live events to the front of their arrays.
func (c *Cell) compact(a *Arena) {
	h, n := int(c.head), int(c.n)
	ts := c.ts(a)
	copy(ts, ts[h:n])
	for k := range int(c.ncols) {
		if c.col(a, k).flags&flagHashes != 0 {
			hs := c.hashes(a, k)
			copy(hs, hs[h:n])
		} else {
			vs := c.vals(a, k)
			copy(vs, vs[h:n])
		}
	}
	c.head, c.n = 0, uint32(n-h)
}

// resize moves the state to a block with room for at least events events (and its live
// events), the live events first.
func (c *Cell) resize(a *Arena, events int) {
	hdr, per := c.hdr(), 1+int(c.ncols)
	live := int(c.n - c.head)
	cls := classFor(hdr + max(events, live, 2)*per)
	if cls == c.cls {
		c.compact(a)
		return
	}
	off := a.alloc(cls)
	nc := *c
	nc.off, nc.cls, nc.head, nc.n = off, cls, 0, uint32(live)
	nc.cap = uint32((classWords(cls) - hdr) / per)
	copy(a.blk(off)[:hdr], a.blk(c.off)[:hdr])
	copy(nc.ts(a), c.ts(a)[c.head:])
	for k := range int(c.ncols) {
		copy(nc.hashes(a, k), c.hashes(a, k)[c.head:])
	}
	a.release(c.off, c.cls)
	*c = nc
}

// exactAdd inserts the event and drops events at or before floor; it returns how many events
// it dropped because the state was full.
func (c *Cell) exactAdd(a *Arena, t int64, in []Input, floor int64) int64 {
	c.room(a)
	h, n := int(c.head), int(c.n)
	ts := c.ts(a)
	// Events mostly arrive in time order: append; a late one is inserted in place.
	i := n
	if n > h && ts[n-1] > t {
		i = h + sort.Search(n-h, func(k int) bool { return ts[h+k] > t })
	}
	c.n++
	ts = ts[:n+1]
	copy(ts[i+1:], ts[i:n])
	ts[i] = t
	live := n + 1 - h
	hashCols := false
	for k := range int(c.ncols) {
		col := c.col(a, k)
		if col.flags&flagHashes != 0 {
			hs := c.hashes(a, k)
			copy(hs[i+1:], hs[i:n])
			hs[i] = in[k].H
			hashCols = true
			continue
		}
		v := in[k].V
		vs := c.vals(a, k)
		copy(vs[i+1:], vs[i:n])
		vs[i] = v
		col.sum += v
		if live == 1 {
			col.min, col.max = v, v
			col.flags &^= flagDirty
		} else if col.flags&flagDirty == 0 {
			col.min, col.max = math.Min(col.min, v), math.Max(col.max, v)
		}
	}
	if hashCols {
		for k := range int(c.ncols) {
			if c.col(a, k).flags&flagHashes != 0 {
				c.refInc(a, k, in[k].H)
			}
		}
	}
	for c.head < c.n && c.ts(a)[c.head] <= floor {
		c.pop(a)
	}
	var dropped int64
	for int(c.n-c.head) > MaxEntries {
		c.pop(a)
		dropped++
	}
	// Memory follows the window: a block far larger than the events left is replaced.
	if c.cap >= 64 && int(c.n-c.head)*8 <= int(c.cap) {
		c.resize(a, 2*int(c.n-c.head))
	}
	return dropped
}

// pop drops the oldest event.
func (c *Cell) pop(a *Arena) {
	i := int(c.head)
	for k := range int(c.ncols) {
		col := c.col(a, k)
		if col.flags&flagHashes != 0 {
			c.refDec(a, k, c.hashes(a, k)[i])
			continue
		}
		v := c.vals(a, k)[i]
		col.sum -= v
		if v <= col.min || v >= col.max {
			col.flags |= flagDirty
		}
	}
	c.head++
	if c.head == c.n {
		c.head, c.n = 0, 0
		for k := range int(c.ncols) {
			c.col(a, k).sum = 0 // no rounding residue survives an empty window
		}
	}
}

// The reference counts of a distinct column: an open-addressed table of (hash, count) pairs
// in a block of its own, at most half full, with backward-shift deletion.

const golden = 0x9E3779B97F4A7C15

func refSlot(h uint64, slots int) int {
	return int((h * golden) >> (64 - uint(len64(slots))))
}

// len64 is log2 of a power of two.
func len64(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	return k
}

func (c *Cell) refInc(a *Arena, k int, h uint64) {
	col := c.col(a, k)
	slots := 0
	if col.refs != 0 {
		slots = classWords(uint8(col.refs>>32)) / 2
	}
	if int(col.nrefs+1)*2 > slots {
		c.growRefs(a, k, max(4, 2*slots))
		col = c.col(a, k)
		slots = classWords(uint8(col.refs>>32)) / 2
	}
	r := a.blk(uint32(col.refs))
	mask := slots - 1
	for i := refSlot(h, slots); ; i = (i + 1) & mask {
		p := 2 * i
		if r[p+1] == 0 {
			r[p], r[p+1] = h, 1
			col.nrefs++
			return
		}
		if r[p] == h {
			r[p+1]++
			return
		}
	}
}

func (c *Cell) growRefs(a *Arena, k int, slots int) {
	cls := classFor(2 * slots)
	off := a.alloc(cls)
	col := c.col(a, k)
	oldOff, oldCls := uint32(col.refs), uint8(col.refs>>32)
	col.refs = uint64(off) | uint64(cls)<<32
	if oldOff == 0 {
		return
	}
	mask := slots - 1
	old := classWords(oldCls) / 2
	o, nw := a.blk(oldOff), a.blk(off)
	for j := range old {
		p := 2 * j
		if o[p+1] == 0 {
			continue
		}
		h := o[p]
		i := refSlot(h, slots)
		for nw[2*i+1] != 0 {
			i = (i + 1) & mask
		}
		nw[2*i], nw[2*i+1] = h, o[p+1]
	}
	a.release(oldOff, oldCls)
}

func (c *Cell) refDec(a *Arena, k int, h uint64) {
	col := c.col(a, k)
	if col.refs == 0 {
		return
	}
	slots := classWords(uint8(col.refs>>32)) / 2
	r := a.blk(uint32(col.refs))
	mask := slots - 1
	i := refSlot(h, slots)
	for {
		p := 2 * i
		if r[p+1] == 0 {
			return // not counted
		}
		if r[p] == h {
			break
		}
		i = (i + 1) & mask
	}
	if r[2*i+1]--; r[2*i+1] > 0 {
		return
	}
	col.nrefs--
	// Backward shift: move later entries of the probe run into the hole.
	for {
		j := i
		for {
			j = (j + 1) & mask
			q := 2 * j
			if r[q+1] == 0 {
				r[2*i], r[2*i+1] = 0, 0
				return
			}
			home := refSlot(r[q], slots)
			// The entry at j may fill the hole at i unless its home lies cyclically in (i, j].
			if i <= j {
				if i < home && home <= j {
					continue
				}
			} else if i < home || home <= j {
				continue
			}
			break
		}
		r[2*i], r[2*i+1] = r[2*j], r[2*j+1]
		i = j
	}
}

// exactValue aggregates member m over the events in (lo, hi].
func (c *Cell) exactValue(a *Arena, m int, lo, hi int64) float64 {
	mem := c.member(a, m)
	agg := mem.Agg
	var col *colHdr
	if mem.Col >= 0 {
		col = c.col(a, mem.Col)
	}
	h, n := int(c.head), int(c.n)
	if h == n {
		return 0
	}
	ts := c.ts(a)
	newest := c.newest
	if hi >= newest && ts[h] > lo {
		// The whole state: the running aggregates answer.
		return c.running(a, agg, mem.Col, col)
	}
	i := h + sort.Search(n-h, func(k int) bool { return ts[h+k] > lo })
	j := n
	if hi < newest {
		j = h + sort.Search(n-h, func(k int) bool { return ts[h+k] > hi })
	} else if p := i - h; p < n-i && (agg == Count || agg == Sum || agg == Avg) {
		// A suffix of the state, longer than the prefix it leaves out: subtract the prefix.
		if agg == Count {
			return float64(n - i)
		}
		s := col.sum
		for _, v := range c.vals(a, mem.Col)[h:i] {
			s -= v
		}
		if agg == Avg {
			return s / float64(n-i)
		}
		return s
	}
	return c.scan(a, agg, mem.Col, i, j)
}

func (c *Cell) running(a *Arena, agg Agg, k int, col *colHdr) float64 {
	n := float64(c.n - c.head)
	switch agg {
	case Count:
		return n
	case Sum:
		return col.sum
	case Avg:
		return col.sum / n
	case Min, Max:
		if col.flags&flagDirty != 0 {
			col.min, col.max = minMax(c.vals(a, k)[c.head:])
			col.flags &^= flagDirty
		}
		if agg == Min {
			return col.min
		}
		return col.max
	case Distinct:
		return float64(col.nrefs)
	}
	return 0
}

// scan aggregates the events at indexes [i, j).
func (c *Cell) scan(a *Arena, agg Agg, k int, i, j int) float64 {
	if j <= i {
		return 0
	}
	switch agg {
	case Count:
		return float64(j - i)
	case Sum, Avg:
		s := 0.0
		for _, v := range c.vals(a, k)[i:j] {
			s += v
		}
		if agg == Avg {
			return s / float64(j-i)
		}
		return s
	case Min, Max:
		lo, hi := minMax(c.vals(a, k)[i:j])
		if agg == Min {
			return lo
		}
		return hi
	case Distinct:
		seen := make(map[uint64]struct{}, j-i)
		for _, h := range c.hashes(a, k)[i:j] {
			seen[h] = struct{}{}
		}
		return float64(len(seen))
	}
	return 0
}

// bucketed windows (not distinct) in the arena: the buckets that hold events and are still in
// the window, (B(H) − 60, B(H)], in index order.

func (c *Cell) bucketIndex(ts int64) int64 {
	size := c.w / Buckets
	q := ts / size
	if ts%size < 0 {
		q-- // floor for times before 1970
	}
	return q
}

func (c *Cell) bucketAdd(a *Arena, ts int64, v float64) {
	bi, top := c.bucketIndex(ts), c.bucketIndex(c.newest)
	if bi <= top-Buckets {
		return // its bucket already left the window
	}
	bs := c.buckets(a)
	k := 0
	for k < len(bs) && bs[k].idx <= top-Buckets {
		k++
	}
	if k > 0 {
		bs = bs[:copy(bs, bs[k:])]
		c.n = uint32(len(bs))
	}
	n := len(bs)
	i := n
	switch {
	case n > 0 && bs[n-1].idx == bi:
		i = n - 1
	case n > 0 && bs[n-1].idx > bi:
		i = sort.Search(n, func(k int) bool { return bs[k].idx >= bi })
		if bs[i].idx == bi {
			break
		}
		fallthrough
	default:
		if c.n == c.cap {
			cls := c.cls + 1
			off := a.alloc(cls)
			copy(a.blk(off)[:3*n], a.blk(c.off)[:3*n])
			a.release(c.off, c.cls)
			c.off, c.cls, c.cap = off, cls, uint32(classWords(cls)/3)
		}
		c.n++
		bs = c.buckets(a)
		copy(bs[i+1:], bs[i:n])
		bs[i] = bucket{idx: bi}
	}
	s := &bs[i]
	switch {
	case c.agg == Min && (s.n == 0 || v < s.v), c.agg == Max && (s.n == 0 || v > s.v):
		s.v = v
	case c.agg == Sum || c.agg == Avg:
		s.v += v
	}
	s.n++
}

func (c *Cell) bucketValue(a *Arena, t int64) float64 {
	// The buckets (B(t) − 60, B(t)] that the state still holds, (B(H) − 60, B(H)].
	hi, top := c.bucketIndex(t), c.bucketIndex(c.newest)
	lo := max(hi, top) - Buckets // exclusive
	return aggregate(c.agg, c.buckets(a), nil, lo, hi)
}
