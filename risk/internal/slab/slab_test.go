package slab

import (
	"math/rand/v2"
	"testing"
)

// TestPool allocates and releases blocks of random sizes (small ones, and ones larger than a
// chunk), writes each block's number into all of it and checks that no block overwrote
// another, that freed blocks come back zeroed, and that the live count adds up.
func TestPool(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var p Pool[uint32]
	type blk struct {
		off uint32
		cls uint8
		id  uint32
	}
	var live []blk
	want := 0
	check := func(b blk) {
		for i, v := range p.Block(b.off, 1<<b.cls) {
			if v != b.id {
				t.Fatalf("block %d (off %#x) value %d: %d", b.id, b.off, i, v)
			}
		}
	}
	for id := uint32(1); id < 20000; id++ {
		if len(live) > 0 && rng.IntN(3) == 0 {
			k := rng.IntN(len(live))
			check(live[k])
			p.Release(live[k].off, live[k].cls)
			want -= 1 << live[k].cls
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			continue
		}
		cls := uint8(rng.IntN(9))
		if rng.IntN(2000) == 0 {
			cls = 17 // a chunk of its own
		}
		off := p.Alloc(cls)
		if off == 0 {
			t.Fatal("block 0 handed out")
		}
		b := p.Block(off, 1<<cls)
		for i, v := range b {
			if v != 0 {
				t.Fatalf("new block of class %d: value %d is %d", cls, i, v)
			}
			b[i] = id
		}
		live = append(live, blk{off, cls, id})
		want += 1 << cls
	}
	for _, b := range live {
		check(b)
	}
	if p.Live() != want || len(p.chunks) < 2 {
		t.Fatalf("live %d, want %d; %d chunks", p.Live(), want, len(p.chunks))
	}
	if Class(1) != 0 || Class(2) != 1 || Class(3) != 2 || Class(64) != 6 || Class(65) != 7 {
		t.Fatal("Class")
	}
}
