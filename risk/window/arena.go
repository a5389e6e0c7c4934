package window

import "github.com/fincore/fincore/risk/internal/slab"

// Arena holds the data of many window states (Cells) in chunks of words the garbage
// collector does not scan (they hold no pointers): a heap of a few million states is then a
// few thousand large objects instead of millions of small ones full of pointers, and a
// collection's mark phase does not grow with the number of states. Blocks come in sizes of
// powers of two words; a freed block is kept for the next state that needs one of its size,
// and the arena grows by chunks, without copying what it holds. Bucketed distinct states,
// which keep maps, are the exception: they live in ordinary Go objects the arena keeps a
// table of.
//
// An Arena is not safe for concurrent use: the engine gives each shard's lock one.
type Arena struct {
	p     slab.Pool[uint64]
	sides []*bucketed // bucketed distinct states, by Cell.off
	freeS []uint32    // free indexes of sides
}

const minWords = 4 // the smallest block

func classWords(c uint8) int { return minWords << c }

// classFor is the smallest class of at least n words.
func classFor(n int) uint8 { return slab.Class((n + minWords - 1) / minWords) }

// alloc returns a zeroed block of class c.
func (a *Arena) alloc(c uint8) uint32 { return a.p.Alloc(c + 2) }

// release frees the block at off of class c.
func (a *Arena) release(off uint32, c uint8) { a.p.Release(off, c+2) }

// blk is the block at off (index it only within the block).
func (a *Arena) blk(off uint32) []uint64 { return a.p.From(off) }

// Words is the number of words (8 bytes) in the arena's live blocks.
func (a *Arena) Words() int { return a.p.Live() }

// Bytes is the memory the arena holds: its chunks (live blocks, free blocks and the unused
// rest), its free lists, and the bucketed distinct states it keeps.
func (a *Arena) Bytes() int {
	n := a.p.Cap()*8 + a.p.Overhead() + cap(a.sides)*8 + cap(a.freeS)*4
	for _, b := range a.sides {
		if b != nil {
			n += b.bytes()
		}
	}
	return n
}

func (a *Arena) addSide(b *bucketed) uint32 {
	if n := len(a.freeS); n > 0 {
		i := a.freeS[n-1]
		a.freeS = a.freeS[:n-1]
		a.sides[i] = b
		return i
	}
	a.sides = append(a.sides, b)
	return uint32(len(a.sides) - 1)
}

func (a *Arena) dropSide(i uint32) {
	a.sides[i] = nil
	a.freeS = append(a.freeS, i)
}
