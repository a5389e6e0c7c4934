package window

import "math/bits"

// Arena holds the data of many window states (Cells) in one large slice of words, which the
// garbage collector does not scan (it holds no pointers): a heap of a few million states
// is then a few large objects instead of millions of small ones full of pointers, and a
// collection's mark phase does not grow with the number of states. Blocks come in sizes of
// powers of two words; a freed block is kept on its size's free list for the next state that
// needs one (the slice is never shrunk). Bucketed distinct states, which keep maps, are the
// exception: they live in ordinary Go objects the arena keeps a table of.
//
// An Arena is not safe for concurrent use: the engine gives each shard's lock one.
type Arena struct {
	mem   []uint64
	free  [maxClass + 1][]uint32 // offsets of free blocks, by class
	words int                    // words in live blocks
	sides []*bucketed            // bucketed distinct states, by Cell.off
	freeS []uint32               // free indexes of sides
}

const (
	minWords = 4  // the smallest block
	maxClass = 31 // blocks of up to 4<<31 words
	reserved = minWords
)

func classWords(c uint8) int { return minWords << c }

// classFor is the smallest class of at least n words.
func classFor(n int) uint8 {
	if n <= minWords {
		return 0
	}
	c := bits.Len(uint((n - 1) / minWords))
	if c > maxClass {
		panic("window: state too large")
	}
	return uint8(c)
}

// alloc returns a zeroed block of class c.
func (a *Arena) alloc(c uint8) uint32 {
	n := classWords(c)
	a.words += n
	if f := a.free[c]; len(f) > 0 {
		off := f[len(f)-1]
		a.free[c] = f[:len(f)-1]
		clear(a.mem[off : int(off)+n])
		return off
	}
	if len(a.mem) == 0 {
		a.mem = make([]uint64, reserved, 256) // offset 0 means no block
	}
	off := len(a.mem)
	if off+n > 1<<32 {
		panic("window: arena full")
	}
	if off+n > cap(a.mem) {
		m := make([]uint64, off, max(2*cap(a.mem), off+n))
		copy(m, a.mem)
		a.mem = m
	}
	a.mem = a.mem[:off+n]
	return uint32(off)
}

// release frees the block at off of class c.
func (a *Arena) release(off uint32, c uint8) {
	if off == 0 {
		return
	}
	a.words -= classWords(c)
	a.free[c] = append(a.free[c], off)
}

// Words is the number of words (8 bytes) in the arena's live blocks.
func (a *Arena) Words() int { return a.words }

// Bytes is the memory the arena holds: its slice, its free lists and side table.
func (a *Arena) Bytes() int {
	n := cap(a.mem)*8 + cap(a.sides)*8 + cap(a.freeS)*4
	for _, f := range a.free {
		n += cap(f) * 4
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
