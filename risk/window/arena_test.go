package window

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestArenaSharedByCells drives many states of every kind in one arena (their blocks grow,
// shrink and are reused between them), moves half of them to a second arena midway and frees
// some, and compares every value and snapshot with a State of its own; at the end, freeing
// everything leaves both arenas without live words.
func TestArenaSharedByCells(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var a, b Arena
	type pair struct {
		c     Cell
		in    *Arena
		alone []*State
		m     []Member
		cols  int
	}
	var ps []*pair
	windows := []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	for i := range 120 {
		w := windows[i%len(windows)]
		p := &pair{in: &a}
		if i%3 == 0 && w <= ExactMax {
			p.m, p.cols = []Member{{Count, -1}, {Sum, 0}, {Max, 0}, {Distinct, 1}, {Min, 0}}, 2
			p.c = NewSharedCell(&a, int64(w), p.m, p.cols)
		} else {
			agg := Agg(rng.IntN(int(Distinct) + 1))
			p.m, p.cols = []Member{singles[agg]}, singles[agg].Col+1
			p.c = NewCell(&a, Spec{Agg: agg, Window: w})
		}
		for _, m := range p.m {
			p.alone = append(p.alone, New(Spec{Agg: m.Agg, Window: w}))
		}
		ps = append(ps, p)
	}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC).UnixNano()
	for step := range 6000 {
		now += rng.Int64N(int64(40 * time.Second))
		p := ps[rng.IntN(len(ps))]
		if p.in == nil {
			continue
		}
		ts := now - rng.Int64N(int64(time.Minute))*int64(rng.IntN(4)/3)
		in := []Input{{V: float64(rng.IntN(100))}, {H: rng.Uint64N(40)}}
		if p.cols == 1 {
			in = in[:1]
			in[0].H = rng.Uint64N(40)
		} else if p.cols == 0 {
			in = nil
		}
		p.c.AddInputs(p.in, ts, in)
		for k, m := range p.m {
			var v float64
			var h uint64
			if m.Col >= 0 {
				v, h = in[m.Col].V, in[m.Col].H
			}
			p.alone[k].Add(ts, v, h)
			if got, want := p.c.ValueOf(p.in, k, ts), p.alone[k].Value(ts); got != want {
				t.Fatalf("step %d member %d: %v, alone %v", step, k, got, want)
			}
		}
		switch step {
		case 3000:
			for i, q := range ps {
				if i%2 == 0 {
					q.c, q.in = q.c.Move(&a, &b), &b
				}
			}
		case 4000:
			for i, q := range ps {
				if i%5 == 0 {
					q.c.Free(q.in)
					q.in = nil
				}
			}
		}
	}
	for i, p := range ps {
		if p.in == nil {
			continue
		}
		for k := range p.m {
			if got, want := fmt.Sprint(p.c.SnapshotOf(p.in, k)), fmt.Sprint(p.alone[k].Snapshot()); got != want {
				t.Fatalf("state %d member %d: snapshot %s, alone %s", i, k, got, want)
			}
		}
		p.c.Free(p.in)
	}
	if a.Words() != 0 || b.Words() != 0 {
		t.Fatalf("live words after freeing every state: %d, %d", a.Words(), b.Words())
	}
}
