package window

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// model is the brute-force definition of a state: every counted event, aggregated from
// scratch for each query.
type model struct {
	spec   Spec
	events []mev
	newest int64
	any    bool
}

type mev struct {
	ts int64
	v  float64
	h  uint64
}

func (m *model) size() int64 { return int64(m.spec.Window) / Buckets }

func (m *model) bucket(ts int64) int64 { return int64(math.Floor(float64(ts) / float64(m.size()))) }

func (m *model) add(ts int64, v float64, h uint64) bool {
	w := int64(m.spec.Window)
	if m.any && ts <= m.newest-w {
		return false
	}
	if !m.any || ts > m.newest {
		m.newest, m.any = ts, true
	}
	if m.spec.Bucketed() && m.bucket(ts) <= m.bucket(m.newest)-Buckets {
		return true // accepted, but its bucket has left the window
	}
	m.events = append(m.events, mev{ts, v, h})
	return true
}

func (m *model) value(t int64) float64 {
	w := int64(m.spec.Window)
	var in []mev
	newestBucket := map[uint64]int64{}
	lo, hi := int64(0), int64(0)
	if m.spec.Bucketed() {
		hi = m.bucket(t)
		lo = max(hi, m.bucket(m.newest)) - Buckets
	}
	for _, e := range m.events {
		if m.spec.Bucketed() {
			b := m.bucket(e.ts)
			if b > m.bucket(m.newest)-Buckets && b > newestBucket[e.h] {
				newestBucket[e.h] = b
			}
			if b > lo && b <= hi {
				in = append(in, e)
			}
			continue
		}
		if e.ts > m.newest-w && e.ts > t-w && e.ts <= t {
			in = append(in, e)
		}
	}
	if len(in) == 0 && m.spec.Agg != Distinct {
		return 0
	}
	switch m.spec.Agg {
	case Count:
		return float64(len(in))
	case Sum, Avg:
		s := 0.0
		for _, e := range in {
			s += e.v
		}
		if m.spec.Agg == Avg {
			return s / float64(len(in))
		}
		return s
	case Min, Max:
		lo, hi := minMax(vals(in))
		if m.spec.Agg == Min {
			return lo
		}
		return hi
	case Distinct:
		if m.spec.Bucketed() {
			n := 0
			for _, b := range newestBucket {
				if b > lo && b <= hi {
					n++
				}
			}
			return float64(n)
		}
		seen := map[uint64]bool{}
		for _, e := range in {
			seen[e.h] = true
		}
		return float64(len(seen))
	}
	panic("agg")
}

func vals(es []mev) []float64 {
	out := make([]float64, len(es))
	for i, e := range es {
		out[i] = e.v
	}
	return out
}

// TestAgainstBruteForce drives random event streams (mostly in order, some late, some too
// late) through a State and the model, and compares every value: at each counted event's
// time, and at the time of an event of another type that only reads the feature.
func TestAgainstBruteForce(t *testing.T) {
	windows := []time.Duration{time.Minute, 5 * time.Minute, time.Hour, 24 * time.Hour, 25 * time.Hour, 7 * 24 * time.Hour, 90 * 24 * time.Hour}
	for _, w := range windows {
		for agg := Count; agg <= Distinct; agg++ {
			for seed := uint64(1); seed <= 6; seed++ {
				t.Run(fmt.Sprintf("%s/%d/%d", w, agg, seed), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(seed, uint64(w)))
					spec := Spec{Agg: agg, Window: w}
					st, m := New(spec), &model{spec: spec}
					now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC).UnixNano()
					// The stream spans about three windows, in steps of about w/50.
					step := int64(w) / 50
					for i := range 400 {
						now += rng.Int64N(2*step + 1)
						ts := now
						switch r := rng.IntN(20); {
						case r == 0:
							ts -= rng.Int64N(2 * int64(w)) // late, possibly too late to count
						case r < 3:
							ts -= rng.Int64N(step * 5) // a little late
						}
						v := float64(rng.IntN(2001) - 1000)
						h := rng.Uint64N([]uint64{8, 40, 200}[seed%3]) // few values, or more than fewRefs
						if got, want := st.Add(ts, v, h), m.add(ts, v, h); got != want {
							t.Fatalf("event %d at %d: Add %v, model %v", i, ts, got, want)
						}
						if got, want := st.Value(ts), m.value(ts); got != want {
							t.Fatalf("event %d at %d: value %v, model %v", i, ts, got, want)
						}
						// A reader at another time, before or after the newest event.
						q := now + rng.Int64N(2*step) - step
						if got, want := st.Value(q), m.value(q); got != want {
							t.Fatalf("event %d, read at %d: value %v, model %v", i, q, got, want)
						}
					}
				})
			}
		}
	}
}

func TestIdle(t *testing.T) {
	st := New(Spec{Agg: Count, Window: time.Hour})
	if !st.Idle(0) {
		t.Fatal("empty state not idle")
	}
	st.Add(int64(10*time.Hour), 1, 0)
	if st.Idle(int64(10*time.Hour + 59*time.Minute)) {
		t.Fatal("idle within its window")
	}
	if !st.Idle(int64(11 * time.Hour)) {
		t.Fatal("not idle a window after its newest event")
	}
}

func TestMaxEntries(t *testing.T) {
	defer func(n int) { MaxEntries = n }(MaxEntries)
	MaxEntries = 10
	st := New(Spec{Agg: Count, Window: time.Hour})
	for i := range 25 {
		st.Add(int64(i)*int64(time.Second), 1, 0)
	}
	if st.Value(int64(24*time.Second)) != 10 || st.Truncated != 15 || st.Len() != 10 {
		t.Fatalf("value %v truncated %d len %d", st.Value(int64(24*time.Second)), st.Truncated, st.Len())
	}
}

// TestMemoryFollowsWindow checks that an exact state's storage shrinks back as events leave
// its window.
func TestMemoryFollowsWindow(t *testing.T) {
	st := New(Spec{Agg: Sum, Window: time.Minute})
	for i := range 100_000 {
		st.Add(int64(i)*int64(time.Millisecond), 1, 0)
	}
	if st.Len() != 60_000 {
		t.Fatalf("len %d", st.Len())
	}
	for i := range 1000 {
		st.Add(int64(200*time.Second)+int64(i)*int64(time.Second), 1, 0)
	}
	if st.Len() != 60 || st.Bytes() > 96+2*60_000*16 {
		t.Fatalf("len %d bytes %d", st.Len(), st.Bytes())
	}
}

// TestBucketsFollowWindow checks that a bucketed state holds only the buckets (and distinct
// values) still in its window, and few buckets for a key seen rarely.
func TestBucketsFollowWindow(t *testing.T) {
	w := 7 * 24 * time.Hour
	for _, agg := range []Agg{Count, Distinct} {
		st := New(Spec{Agg: agg, Window: w})
		step := int64(w) / 200
		for i := range int64(2000) { // ten windows, over 200 values
			st.Add(i*step, 1, uint64(i%300))
		}
		// 60 buckets, and for distinct the 200 values of the last window.
		want := Buckets
		if agg == Distinct {
			want += 200
		}
		if st.Len() > want+1 {
			t.Fatalf("%v: len %d, want at most %d", agg, st.Len(), want+1)
		}
		rare := New(Spec{Agg: agg, Window: w})
		rare.Add(0, 1, 1)
		rare.Add(int64(w)/2, 1, 2)
		if rare.Len() > 4 || rare.Bytes() > 1000 {
			t.Fatalf("%v: a key seen twice holds len %d, %d bytes", agg, rare.Len(), rare.Bytes())
		}
	}
}

// TestSnapshotRoundTrip checks that a state rebuilt from its snapshot answers as the original
// does, now and after more events.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, w := range []time.Duration{time.Hour, 7 * 24 * time.Hour} {
		for agg := Count; agg <= Distinct; agg++ {
			rng := rand.New(rand.NewPCG(7, uint64(agg)))
			a := New(Spec{Agg: agg, Window: w})
			now := int64(1e18)
			step := int64(w) / 40
			for range 200 {
				now += rng.Int64N(step)
				a.Add(now, float64(rng.IntN(100)), rng.Uint64N(30))
			}
			b, ok := FromSnapshot(a.Snapshot())
			if !ok {
				t.Fatalf("%v %v: snapshot rejected", w, agg)
			}
			for range 100 {
				now += rng.Int64N(step)
				v, h := float64(rng.IntN(100)), rng.Uint64N(30)
				a.Add(now, v, h)
				b.Add(now, v, h)
				if a.Value(now) != b.Value(now) {
					t.Fatalf("%v %v: %v != %v", w, agg, a.Value(now), b.Value(now))
				}
			}
		}
	}
}

// TestSnapshotWithStaleSlots loads a bucketed snapshot whose slots still hold buckets that left
// the window (as snapshots written before buckets were kept sparse do): they and the values
// whose newest bucket they were are left out.
func TestSnapshotWithStaleSlots(t *testing.T) {
	w := 60 * time.Hour // buckets of an hour
	hour := int64(time.Hour)
	newest := 1000*hour + 5
	sn := Snapshot{Agg: Distinct, W: int64(w), Newest: newest, Any: true, Buckets: make([]BucketSnapshot, Buckets), Last: map[uint64]int64{}}
	for i := range sn.Buckets {
		sn.Buckets[i].Idx = math.MinInt64
	}
	put := func(idx int64, hashes ...uint64) {
		sn.Buckets[((idx%Buckets)+Buckets)%Buckets] = BucketSnapshot{Idx: idx, N: int64(len(hashes)), ND: int64(len(hashes)), Hashes: hashes}
		for _, h := range hashes {
			sn.Last[h] = idx
		}
	}
	put(1000, 1, 2)
	put(990, 3)
	put(935, 4, 5, 6) // 1000 − 65: left the window, slot not reused yet
	st, ok := FromSnapshot(sn)
	if !ok {
		t.Fatal("snapshot rejected")
	}
	if v := st.Value(newest); v != 3 || st.Len() != 5 {
		t.Fatalf("value %v len %d, want 3 and 5 (2 buckets, 3 values)", v, st.Len())
	}
	// Value 4 seen again counts once, as new.
	st.Add(newest+1, 0, 4)
	if v := st.Value(newest + 1); v != 4 {
		t.Fatalf("value %v after a returning value, want 4", v)
	}
	round, ok := FromSnapshot(st.Snapshot())
	if !ok || round.Value(newest+1) != 4 {
		t.Fatalf("round trip: %v %v", ok, round.Value(newest+1))
	}
}

// TestSharedAgreesWithSeparate drives random streams through a shared state of several
// members (two value columns, one hash column) and through one state per member, and
// compares every member's value and snapshot.
func TestSharedAgreesWithSeparate(t *testing.T) {
	members := []Member{{Count, -1}, {Sum, 0}, {Min, 0}, {Max, 1}, {Avg, 1}, {Distinct, 2}, {Sum, 1}}
	for _, w := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour} {
		for seed := uint64(1); seed <= 4; seed++ {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			shared := NewShared(w, members, 3)
			var alone []*State
			for _, m := range members {
				alone = append(alone, New(Spec{Agg: m.Agg, Window: w}))
			}
			now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC).UnixNano()
			step := int64(w) / 50
			for i := range 600 {
				now += rng.Int64N(2*step + 1)
				ts := now
				if rng.IntN(10) == 0 {
					ts -= rng.Int64N(2 * int64(w))
				}
				in := []Input{{V: float64(rng.IntN(2001) - 1000)}, {V: float64(rng.IntN(50))}, {H: rng.Uint64N([]uint64{8, 200}[seed%2])}}
				got := shared.AddInputs(ts, in)
				for k, m := range members {
					var v float64
					var h uint64
					if m.Col >= 0 {
						v, h = in[m.Col].V, in[m.Col].H
					}
					if want := alone[k].Add(ts, v, h); want != got {
						t.Fatalf("event %d: shared Add %v, member %d alone %v", i, got, k, want)
					}
				}
				q := now + rng.Int64N(2*step) - step
				for k := range members {
					for _, at := range []int64{ts, q} {
						if a, b := shared.ValueOf(k, at), alone[k].Value(at); a != b {
							t.Fatalf("event %d, member %d at %d: shared %v, alone %v", i, k, at, a, b)
						}
					}
				}
			}
			for k := range members {
				a, b := shared.SnapshotOf(k), alone[k].Snapshot()
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("member %d: snapshot %+v, alone %+v", k, a, b)
				}
			}
		}
	}
}

// TestWarmReadsOnly: Warm works on empty, exact, shared and bucketed states and changes no
// value (it only reads).
func TestWarmReadsOnly(t *testing.T) {
	shared := NewShared(time.Hour, []Member{{Count, -1}, {Sum, 0}, {Distinct, 1}}, 2)
	states := []*State{New(Spec{Agg: Count, Window: time.Minute}), New(Spec{Agg: Max, Window: time.Hour}),
		New(Spec{Agg: Distinct, Window: 7 * 24 * time.Hour}), shared}
	for _, s := range states {
		s.Warm() // empty
	}
	in := []Input{{V: 5, H: 1}, {V: 7, H: 2}}
	for i, s := range states {
		cols := in[:1]
		if s == shared {
			cols = in
		}
		for k := range int64(3) {
			s.AddInputs(k*int64(time.Second), cols)
		}
		before := make([]float64, s.Members())
		for m := range before {
			before[m] = s.ValueOf(m, 2*int64(time.Second))
		}
		if w := s.Warm(); w == 0 {
			t.Errorf("state %d: Warm read nothing", i)
		}
		for m := range before {
			if v := s.ValueOf(m, 2*int64(time.Second)); v != before[m] {
				t.Errorf("state %d member %d: %v after Warm, %v before", i, m, v, before[m])
			}
		}
	}
}
