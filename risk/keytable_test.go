package risk

import (
	"fmt"
	"slices"
	"testing"
)

// TestKeyTableCollisions: key values whose hashes collide are told apart by field and value,
// and removing some of a chain (first, middle, last, all) keeps the others.
func TestKeyTableCollisions(t *testing.T) {
	tb := newKeyTable()
	keys := func() []string {
		var out []string
		tb.each(func(ks *keyStates) { out = append(out, fmt.Sprintf("%d/%s", ks.fid, ks.key)) })
		slices.Sort(out)
		return out
	}
	for i := range 5 {
		tb.add(7, &keyStates{key: fmt.Sprint("k", i), fid: 1})
	}
	tb.add(7, &keyStates{key: "k0", fid: 2}) // the same value of another field
	tb.add(9, &keyStates{key: "other", fid: 1})
	for i := range 5 {
		if ks := tb.get(7, 1, fmt.Sprint("k", i)); ks == nil || ks.key != fmt.Sprint("k", i) || ks.fid != 1 {
			t.Fatalf("k%d: %+v", i, ks)
		}
	}
	if ks := tb.get(7, 2, "k0"); ks == nil || ks.fid != 2 {
		t.Fatalf("field 2: %+v", ks)
	}
	if tb.get(7, 1, "k9") != nil || tb.get(8, 1, "k0") != nil || tb.get(9, 2, "other") != nil {
		t.Fatal("found a key value never added")
	}
	drop := map[string]bool{"k0": true, "k2": true, "k4": true, "other": true}
	tb.filter(func(ks *keyStates) bool { return !(ks.fid == 1 && drop[ks.key]) })
	if got, want := keys(), []string{"1/k1", "1/k3", "2/k0"}; !slices.Equal(got, want) {
		t.Fatalf("after filter: %v, want %v", got, want)
	}
	if tb.get(7, 1, "k1") == nil || tb.get(7, 1, "k3") == nil || tb.get(7, 2, "k0") == nil || tb.get(7, 1, "k2") != nil {
		t.Fatal("look-ups after filter")
	}
	if _, ok := tb.m[9]; ok {
		t.Fatal("an emptied hash is still in the map")
	}
	tb.filter(func(*keyStates) bool { return false })
	if len(tb.m) != 0 || len(keys()) != 0 {
		t.Fatalf("after removing everything: %v", keys())
	}
}
