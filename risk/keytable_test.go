package risk

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fincore/fincore/risk/window"
)

// TestKeyTableCollisions: key values whose hashes collide are told apart by field and value,
// and removing some of a run of them (first, middle, last, all) keeps the others.
func TestKeyTableCollisions(t *testing.T) {
	tb := newKeyTable()
	keys := func() []string {
		var out []string
		tb.each(func(r int32) { out = append(out, fmt.Sprintf("%d/%s", tb.recs[r].fid, tb.key(r))) })
		slices.Sort(out)
		return out
	}
	for i := range 5 {
		tb.add(7, 1, fmt.Sprint("k", i))
	}
	tb.add(7, 2, "k0") // the same value of another field
	tb.add(9, 1, "other")
	for i := range 5 {
		if r := tb.get(7, 1, fmt.Sprint("k", i)); r < 0 || tb.key(r) != fmt.Sprint("k", i) || tb.recs[r].fid != 1 {
			t.Fatalf("k%d: %d", i, r)
		}
	}
	if r := tb.get(7, 2, "k0"); r < 0 || tb.recs[r].fid != 2 {
		t.Fatalf("field 2: %d", r)
	}
	if tb.get(7, 1, "k9") >= 0 || tb.get(8, 1, "k0") >= 0 || tb.get(9, 2, "other") >= 0 {
		t.Fatal("found a key value never added")
	}
	drop := map[string]bool{"k0": true, "k2": true, "k4": true, "other": true}
	tb.filter(func(r int32) bool { return !(tb.recs[r].fid == 1 && drop[tb.key(r)]) })
	if got, want := keys(), []string{"1/k1", "1/k3", "2/k0"}; !slices.Equal(got, want) {
		t.Fatalf("after filter: %v, want %v", got, want)
	}
	if tb.get(7, 1, "k1") < 0 || tb.get(7, 1, "k3") < 0 || tb.get(7, 2, "k0") < 0 || tb.get(7, 1, "k2") >= 0 {
		t.Fatal("look-ups after filter")
	}
	tb.filter(func(int32) bool { return false })
	if tb.len() != 0 || len(keys()) != 0 {
		t.Fatalf("after removing everything: %v", keys())
	}
}

// TestKeyTableAgainstMap adds and removes random key values (3,000 values over 50 hashes, so
// that the index has long runs that wrap) with slots and cells, and compares every
// look-up and every record's content with a map.
func TestKeyTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tb := newKeyTable()
	var a window.Arena
	type want struct {
		h     uint64
		slots []stateSlot
	}
	ref := map[string]*want{}
	spec := window.Spec{Agg: window.Count, Window: time.Hour}
	for step := range 20000 {
		key := fmt.Sprint("v", rng.IntN(3000))
		h := uint64(rng.IntN(50))
		if w, ok := ref[key]; ok {
			h = w.h
		}
		r := tb.get(h, 1, key)
		if w := ref[key]; (r >= 0) != (w != nil) {
			t.Fatalf("step %d: %s found %v, in map %v", step, key, r >= 0, w != nil)
		}
		switch {
		case r < 0:
			r = tb.add(h, 1, key)
			ref[key] = &want{h: h}
		case rng.IntN(4) == 0:
			for _, c := range tb.cellsOf(r) {
				c.Free(&a)
			}
			tb.filter(func(x int32) bool { return x != r })
			delete(ref, key)
			continue
		}
		c := window.NewCell(&a, spec)
		c.Add(&a, int64(step), 1, 0)
		sl := stateSlot{id: int32(step), ci: tb.addCell(r, c)}
		tb.addSlot(r, sl)
		ref[key].slots = append(ref[key].slots, sl)
	}
	if tb.len() != len(ref) {
		t.Fatalf("%d key values, map %d", tb.len(), len(ref))
	}
	for key, w := range ref {
		r := tb.get(w.h, 1, key)
		if r < 0 || !slices.Equal(tb.slotsOf(r), w.slots) {
			t.Fatalf("%s: slots %v, want %v", key, tb.slotsOf(r), w.slots)
		}
		for i, sl := range tb.slotsOf(r) {
			if c := tb.cell(r, i); c.Newest() != int64(sl.id) {
				t.Fatalf("%s slot %d: cell of step %d, want %d", key, i, c.Newest(), sl.id)
			}
		}
	}
}
