package risk

import (
	"math/bits"

	"github.com/fincore/fincore/risk/internal/slab"
	"github.com/fincore/fincore/risk/window"
)

// keyTable holds the key values of a shard and their window states, without pointers for the
// garbage collector to follow: an open-addressed index of record numbers, keyed by the 64-bit
// hash of the key field and value that also picks the shard (keyHash); records (keyRec) in
// one slice; each record's value bytes, slots and window states (Cells, whose data is in the
// shard's window.Arena) in blocks of pools of plain values (slab). A million key values are
// then a handful of large objects, not millions of small ones a collection has to mark.
//
// Records are named by their number (int32), which stays while the record lives; views of a
// record's slots and cells are valid until the next call that adds to the table.
type keyTable struct {
	index []int32 // record number + 1; 0 is empty. Length a power of two (or 0).
	recs  []keyRec
	freeR []int32 // numbers of free records
	live  int
	bytes slab.Pool[byte]
	slots slab.Pool[stateSlot]
	cells slab.Pool[window.Cell]
}

// keyRec is one key value (the user u1, the device d7) with its window states: one slot per
// feature (state id) that has counted an event of it, slot i reading member m of cell ci (a
// state may be shared by the features of a lane).
type keyRec struct {
	h            uint64
	fid          int32 // the key field (Engine.fieldIDs); -1 for a free record
	key, keyLen  uint32
	slots, cells uint32 // blocks in the pools
	nSlots       uint16
	nCells       uint16
	keyCls       uint8
	slotCls      uint8
	cellCls      uint8
}

// stateSlot is the window state of one feature (state id) for a key value: member m of its
// key value's cell ci.
type stateSlot struct {
	id int32
	m  int32
	ci int32
}

func newKeyTable() *keyTable { return new(keyTable) }

// home is the index position of hash h.
func (t *keyTable) home(h uint64) int {
	return int((h * 0x9E3779B97F4A7C15) >> (64 - bits.TrailingZeros(uint(len(t.index)))))
}

// get returns the record of key value key of field fid, whose hash is h; -1 if it has none.
func (t *keyTable) get(h uint64, fid int32, key string) int32 {
	if len(t.index) == 0 {
		return -1
	}
	mask := len(t.index) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		r := t.index[i] - 1
		if r < 0 {
			return -1
		}
		if rec := &t.recs[r]; rec.h == h && rec.fid == fid && string(t.bytes.Block(rec.key, int(rec.keyLen))) == key {
			return r
		}
	}
}

// add adds key value key of field fid with hash h, which get does not find, without states,
// and returns its record.
func (t *keyTable) add(h uint64, fid int32, key string) int32 {
	if (t.live+1)*4 > len(t.index)*3 {
		t.grow()
	}
	var r int32
	if n := len(t.freeR); n > 0 {
		r = t.freeR[n-1]
		t.freeR = t.freeR[:n-1]
	} else {
		r = int32(len(t.recs))
		t.recs = append(t.recs, keyRec{})
	}
	rec := keyRec{h: h, fid: fid, keyLen: uint32(len(key))}
	if len(key) > 0 {
		rec.keyCls = slab.Class(len(key))
		rec.key = t.bytes.Alloc(rec.keyCls)
		copy(t.bytes.Block(rec.key, len(key)), key)
	}
	t.recs[r] = rec
	t.live++
	mask := len(t.index) - 1
	i := t.home(h)
	for t.index[i] != 0 {
		i = (i + 1) & mask
	}
	t.index[i] = r + 1
	return r
}

func (t *keyTable) grow() {
	old := t.index
	t.index = make([]int32, max(16, 2*len(old)))
	mask := len(t.index) - 1
	for _, x := range old {
		if x == 0 {
			continue
		}
		i := t.home(t.recs[x-1].h)
		for t.index[i] != 0 {
			i = (i + 1) & mask
		}
		t.index[i] = x
	}
}

// key returns record r's value.
func (t *keyTable) key(r int32) string {
	rec := &t.recs[r]
	return string(t.bytes.Block(rec.key, int(rec.keyLen)))
}

// slotsOf and cellsOf are record r's slots and cells.
func (t *keyTable) slotsOf(r int32) []stateSlot {
	rec := &t.recs[r]
	return t.slots.Block(rec.slots, int(rec.nSlots))
}

func (t *keyTable) cellsOf(r int32) []window.Cell {
	rec := &t.recs[r]
	return t.cells.Block(rec.cells, int(rec.nCells))
}

// cell returns the state of record r's slot i.
func (t *keyTable) cell(r int32, i int) *window.Cell {
	rec := &t.recs[r]
	return &t.cells.From(rec.cells)[t.slots.From(rec.slots)[i].ci]
}

// find returns the index of record r's slot of state id, -1 if it has none.
func (t *keyTable) find(r int32, id int32) int {
	for i, sl := range t.slotsOf(r) {
		if sl.id == id {
			return i
		}
	}
	return -1
}

// addSlot appends sl to record r's slots.
func (t *keyTable) addSlot(r int32, sl stateSlot) {
	rec := &t.recs[r]
	appendTo(&t.slots, &rec.slots, &rec.slotCls, &rec.nSlots, sl)
}

// addCell appends c to record r's cells and returns its index.
func (t *keyTable) addCell(r int32, c window.Cell) int32 {
	rec := &t.recs[r]
	return appendTo(&t.cells, &rec.cells, &rec.cellCls, &rec.nCells, c)
}

// appendTo appends v to the block *off (class *cls, *n values) of p, moving it to a larger
// block when it is full, and returns v's index.
func appendTo[T any](p *slab.Pool[T], off *uint32, cls *uint8, n *uint16, v T) int32 {
	k := int(*n)
	if k == 1<<16-1 {
		panic("risk: too many window states for one key value")
	}
	if k == 0 || k == 1<<*cls {
		*off, *cls = resize(p, *off, *cls, k, k+1)
	}
	p.From(*off)[k] = v
	*n++
	return int32(k)
}

// truncate keeps record r's first slots and cells.
func (t *keyTable) truncate(r int32, slots, cells int) {
	rec := &t.recs[r]
	clear(t.cells.Block(rec.cells, int(rec.nCells))[cells:])
	rec.nSlots, rec.nCells = uint16(slots), uint16(cells)
}

// filter calls keep for every record and removes those it answers false for (the caller frees
// their cells' arena data first).
func (t *keyTable) filter(keep func(r int32) bool) {
	for r := range t.recs {
		if !t.isFree(int32(r)) && !keep(int32(r)) {
			t.remove(int32(r))
		}
	}
}

func (t *keyTable) isFree(r int32) bool { return t.recs[r].fid < 0 }

// remove removes record r.
func (t *keyTable) remove(r int32) {
	rec := &t.recs[r]
	mask := len(t.index) - 1
	i := t.home(rec.h)
	for t.index[i] != r+1 {
		i = (i + 1) & mask
	}
	// Backward shift: move later entries of the probe run into the hole.
	for {
		j := i
		for {
			j = (j + 1) & mask
			if t.index[j] == 0 {
				t.index[i] = 0
				goto removed
			}
			k := t.home(t.recs[t.index[j]-1].h)
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			break
		}
		t.index[i] = t.index[j]
		i = j
	}
removed:
	if rec.keyLen > 0 {
		t.bytes.Release(rec.key, rec.keyCls)
	}
	t.slots.Release(rec.slots, rec.slotCls)
	if rec.cells != 0 {
		clear(t.cells.Block(rec.cells, int(rec.nCells)))
		t.cells.Release(rec.cells, rec.cellCls)
	}
	*rec = keyRec{fid: -1}
	t.freeR = append(t.freeR, r)
	t.live--
}

// each calls f for every record.
func (t *keyTable) each(f func(r int32)) {
	for r := range t.recs {
		if !t.isFree(int32(r)) {
			f(int32(r))
		}
	}
}

// len is the number of key values.
func (t *keyTable) len() int { return t.live }

// memBytes is the memory the table holds (index, records, pools).
func (t *keyTable) memBytes() int {
	return cap(t.index)*4 + cap(t.recs)*40 + cap(t.freeR)*4 + t.bytes.Cap() + t.bytes.Overhead() +
		t.slots.Cap()*12 + t.slots.Overhead() + t.cells.Cap()*window.CellSize + t.cells.Overhead()
}

// resize moves block off of p (class cls, n values used) to one of at least want values.
func resize[T any](p *slab.Pool[T], off uint32, cls uint8, n, want int) (uint32, uint8) {
	nc := slab.Class(want)
	if off != 0 && nc <= cls {
		return off, cls
	}
	no := p.Alloc(nc)
	if n > 0 {
		copy(p.Block(no, n), p.Block(off, n))
	}
	p.Release(off, cls)
	return no, nc
}
