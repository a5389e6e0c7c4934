// Package slab hands out blocks of plain values (no pointers, so the garbage collector does
// not scan them) from large chunks, for the risk engine's per-shard state: window data, key
// values, slots, remembered decisions.
package slab

import "math/bits"

// ChunkLen is the number of values of a chunk. Blocks never cross a chunk; a block larger
// than a chunk gets one of its own.
const ChunkLen = 1 << 16

// Pool hands out blocks of 1<<cls values, named by a uint32 (chunk number << 16 | offset;
// 0 is never a block), and reuses freed blocks by size. The pool grows by adding chunks, so
// a growing pool does not copy what it holds (only its first chunk starts small and doubles,
// so that small pools stay small). Views of blocks stay valid until the block is released.
// A Pool is not safe for concurrent use.
type Pool[T any] struct {
	chunks [][]T
	cur    int // the chunk small blocks are cut from
	free   [33][]uint32
	live   int // values in live blocks
}

// Class is the smallest class of at least n values (n >= 1).
func Class(n int) uint8 {
	if n <= 1 {
		return 0
	}
	return uint8(bits.Len(uint(n - 1)))
}

// Alloc returns a zeroed block of 1<<cls values.
func (p *Pool[T]) Alloc(cls uint8) uint32 {
	n := 1 << cls
	p.live += n
	if f := p.free[cls]; len(f) > 0 {
		off := f[len(f)-1]
		p.free[cls] = f[:len(f)-1]
		clear(p.Block(off, n))
		return off
	}
	if len(p.chunks) == 0 {
		p.chunks = append(p.chunks, make([]T, 1, 64)) // value 0 of chunk 0 is never a block
	}
	if n > ChunkLen/2 {
		// A block of its own (a chunk of ChunkLen would leave too much of itself unused).
		if len(p.chunks) >= 1<<16 {
			panic("slab: pool full")
		}
		p.chunks = append(p.chunks, make([]T, n))
		return uint32(len(p.chunks)-1) << 16
	}
	c := p.chunks[p.cur]
	if len(c)+n > ChunkLen {
		if len(p.chunks) >= 1<<16 {
			panic("slab: pool full")
		}
		p.chunks = append(p.chunks, make([]T, 0, ChunkLen))
		p.cur = len(p.chunks) - 1
		c = p.chunks[p.cur]
	}
	if len(c)+n > cap(c) { // only the first chunk grows
		m := make([]T, len(c), min(ChunkLen, max(2*cap(c), len(c)+n)))
		copy(m, c)
		c = m
	}
	off := len(c)
	p.chunks[p.cur] = c[:off+n]
	return uint32(p.cur)<<16 | uint32(off)
}

// Release frees block off of class cls (0 is ignored).
func (p *Pool[T]) Release(off uint32, cls uint8) {
	if off == 0 {
		return
	}
	p.live -= 1 << cls
	p.free[cls] = append(p.free[cls], off)
}

// Block is the first n values of block off.
func (p *Pool[T]) Block(off uint32, n int) []T {
	if n == 0 {
		return nil
	}
	o := int(off & 0xffff)
	return p.chunks[off>>16][o : o+n : o+n]
}

// From is block off and what follows it in its chunk (index it only within the block).
func (p *Pool[T]) From(off uint32) []T {
	return p.chunks[off>>16][off&0xffff:]
}

// Live is the number of values in live blocks.
func (p *Pool[T]) Live() int { return p.live }

// Cap is the number of values the pool's chunks hold, and Overhead the bytes of its free
// lists and chunk table.
func (p *Pool[T]) Cap() int {
	n := 0
	for _, c := range p.chunks {
		n += cap(c)
	}
	return n
}

func (p *Pool[T]) Overhead() int {
	n := cap(p.chunks) * 24
	for _, f := range p.free {
		n += cap(f) * 4
	}
	return n
}
