package risk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
	"github.com/fincore/fincore/store/storetest"
)

// bfV1 is the version active before the activation; bfV2 keeps its features and adds others:
// to a lane of v1 (amt_1h, max_1h count the same events as n_1h), with filters, on another
// key field, and bucketed (> 24 h) sums and distinct counts.
const bfV1 = `features:
  - {name: n_1h, on: [payment], key: user_id, agg: count, window: 1h}
  - {name: amt_24h, on: [payment], key: user_id, agg: sum, field: amount, window: 24h}
  - {name: n_7d, on: [payment], key: user_id, agg: count, window: 7d}
  - {name: d_users_1h, on: ["*"], key: device_id, agg: distinct, field: user_id, window: 1h}
rules:
  - {id: R1, when: features.n_1h > 3, score: 10, reason: r1}
decision: {review_at: 40, reject_at: 80}
`

var bfNew = []string{
	"  - {name: amt_1h, on: [payment], key: user_id, agg: sum, field: amount, window: 1h}\n",
	"  - {name: max_1h, on: [payment], key: user_id, agg: max, field: amount, window: 1h}\n",
	"  - {name: big_n_30m, on: [payment], key: user_id, agg: count, window: 30m, where: \"event.amount > 500\"}\n",
	"  - {name: dev_n_2h, on: [\"*\"], key: device_id, agg: count, window: 2h}\n",
	"  - {name: login_n_10m, on: [login], key: user_id, agg: count, window: 10m}\n",
	"  - {name: m_sum_3d, on: [payment], key: merchant_id, agg: sum, field: amount, window: 3d}\n",
	"  - {name: u_dev_2d, on: [\"*\"], key: user_id, agg: distinct, field: device_id, window: 2d}\n",
}

var bfV2 = strings.Replace(bfV1, "rules:\n", strings.Join(bfNew, "")+"rules:\n", 1)

// bfEvent is one event of a random stream, with what the brute force needs.
type bfEvent struct {
	raw          string
	typ          string
	user, device string
	amount       int
	at           time.Time
}

// bfStream returns n random events: mostly in order, some late by up to 2 hours, a few recent
// ones sent twice (not where dupOK is false: a restart forgets the ids before its snapshot).
func bfStream(seed uint64, n int, dupOK func(i int) bool) []bfEvent {
	r := rand.New(rand.NewPCG(seed, 77))
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var evs []bfEvent
	for i := range n {
		now = now.Add(time.Duration(r.IntN(90)) * time.Second)
		at := now
		if r.IntN(10) == 0 {
			at = at.Add(-time.Duration(r.IntN(7200)) * time.Second)
		}
		e := bfEvent{
			typ:  []string{"payment", "payment", "payment", "login", "refund"}[r.IntN(5)],
			user: fmt.Sprintf("u%d", r.IntN(4+i/100)), device: fmt.Sprintf("d%d", r.IntN(3+i/200)),
			amount: r.IntN(1000), at: at,
		}
		id := fmt.Sprintf("e%d", i)
		if i > 0 && r.IntN(40) == 0 && dupOK(i) {
			evs = append(evs, evs[len(evs)-1-r.IntN(min(len(evs), 20))]) // the same event again: counted once
			continue
		}
		e.raw = fmt.Sprintf(`{"type":%q,"id":%q,"timestamp":%q,"user_id":%q,"device_id":%q,"merchant_id":"m%d","amount":%d}`,
			e.typ, id, at.Format(time.RFC3339), e.user, e.device, r.IntN(3), e.amount)
		evs = append(evs, e)
	}
	return evs
}

// bruteForce gives the exact new features for evs[i], computed from the stream, when evs[i]
// is not late (no earlier event is newer): then no event of its windows was cut.
func bruteForce(evs []bfEvent, i int) (map[string]float64, bool) {
	cur := evs[i]
	seen := map[string]bool{}
	for _, e := range evs[:i] {
		if e.at.After(cur.at) || e.raw == cur.raw {
			return nil, false // late, or a repeat
		}
	}
	f := map[string]float64{}
	in := func(e bfEvent, w time.Duration) bool { return e.at.After(cur.at.Add(-w)) && !e.at.After(cur.at) }
	for _, e := range evs[:i+1] {
		if seen[e.raw] {
			continue
		}
		seen[e.raw] = true
		if e.user == cur.user && e.typ == "payment" && in(e, time.Hour) {
			f["amt_1h"] += float64(e.amount)
			f["max_1h"] = max(f["max_1h"], float64(e.amount))
		}
		if e.user == cur.user && e.typ == "payment" && e.amount > 500 && in(e, 30*time.Minute) {
			f["big_n_30m"]++
		}
		if e.device == cur.device && in(e, 2*time.Hour) {
			f["dev_n_2h"]++
		}
		if e.user == cur.user && e.typ == "login" && in(e, 10*time.Minute) {
			f["login_n_10m"]++
		}
	}
	return f, true
}

type bfRig struct {
	t      *testing.T
	ctx    context.Context
	dirA   string
	a, ref *risk.Engine
	dbA    *sqlite.DB
	closeA func()
	closer []func() error
}

// newRig returns a rig whose engines and stores are closed when the test ends.
func newRig(t *testing.T) *bfRig {
	r := &bfRig{t: t, ctx: context.Background(), dirA: t.TempDir()}
	t.Cleanup(func() {
		for i := len(r.closer) - 1; i >= 0; i-- {
			r.closer[i]()
		}
	})
	return r
}

func (r *bfRig) open(dir string) *risk.Engine {
	db, err := sqlite.Open(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	r.closer = append(r.closer, db.Close)
	// No snapshot at Close: a Close is a crash unless the test snapshots first.
	e, err := risk.Open(r.ctx, db.Risk(), risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		r.t.Fatal(err)
	}
	r.closer = append(r.closer, e.Close)
	if dir == r.dirA {
		r.dbA, r.closeA = db, func() { e.Close(); db.Close() }
	}
	return e
}

func (r *bfRig) put(e *risk.Engine, src string) int {
	s, err := e.PutRuleSet(r.ctx, "pay", []byte(src))
	if err != nil {
		r.t.Fatal(err)
	}
	return s.Version
}

func (r *bfRig) activate(e *risk.Engine, v int) {
	if _, err := e.Activate(r.ctx, "pay", v, 0); err != nil {
		r.t.Fatal(err)
	}
}

// restart stops the engine under test (with a snapshot first when snap) and starts it again
// on the same data.
func (r *bfRig) restart(snap bool) {
	if snap {
		if err := r.a.Snapshot(r.ctx); err != nil {
			r.t.Fatal(err)
		}
	}
	r.closeA()
	r.a = r.open(r.dirA)
}

func (r *bfRig) decide(e *risk.Engine, raw string) *risk.Decision {
	ev, err := risk.ParseEvent([]byte(raw))
	if err != nil {
		r.t.Fatal(err)
	}
	d, err := e.Decide(r.ctx, "pay", ev)
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// TestBackfillAgreesWithFeaturesFromTheStart runs random streams through an engine that
// activates a version with new features mid-stream and through a reference engine that had
// that version from the start: every decision after the activation must have the same value
// for every feature, and the new exact features must equal a brute-force computation over
// the stream. Variants restart the engine after the activation (from a snapshot taken before
// it, and from one taken after it) and stop it after the activation was stored but before it
// took effect (the back-fill then runs at the start).
func TestBackfillAgreesWithFeaturesFromTheStart(t *testing.T) {
	for _, mode := range []string{"plain", "restart-after", "crash-after", "crash-during"} {
		t.Run(mode, func(t *testing.T) {
			for seed := range uint64(3) {
				testBackfill(t, mode, seed)
			}
		})
	}
}

func testBackfill(t *testing.T, mode string, seed uint64) {
	r := newRig(t)
	r.a = r.open(r.dirA)
	r.ref = r.open(t.TempDir())
	r.activate(r.a, r.put(r.a, bfV1))
	r.activate(r.ref, r.put(r.ref, bfV2))

	const activateAt, restartAt = 400, 650
	evs := bfStream(seed, 900, func(i int) bool { return i < activateAt || i >= restartAt+25 || i >= activateAt+25 && i < restartAt })
	compared, brute := 0, 0
	sent := map[string]bool{}
	for i, ev := range evs {
		switch {
		case i == activateAt-100 && mode == "crash-after":
			if err := r.a.Snapshot(r.ctx); err != nil {
				t.Fatal(err)
			}
		case i == activateAt:
			// Both engines as a sweep leaves them: back-filling rebuilds the states a
			// sweep keeps (the others cannot change any counted event).
			r.a.Sweep()
			r.ref.Sweep()
			v2 := r.put(r.a, bfV2)
			if mode == "crash-during" {
				// The activation is stored; the engine stops before it takes effect.
				if err := r.a.Snapshot(r.ctx); err != nil {
					t.Fatal(err)
				}
				h, _ := r.a.RuleSet("pay")
				h.Active = v2
				if err := r.dbA.Risk().SetHead(r.ctx, h); err != nil {
					t.Fatal(err)
				}
				r.restart(false)
			} else {
				r.activate(r.a, v2)
			}
			if s := r.a.Counters(); s.Backfilled == 0 {
				t.Fatalf("%s: nothing was back-filled", mode)
			}
		case i == restartAt && mode == "restart-after":
			r.restart(true)
		case i == restartAt && mode == "crash-after":
			r.restart(false) // from the snapshot taken before the activation
		}
		da := r.decide(r.a, ev.raw)
		dr := r.decide(r.ref, ev.raw)
		if i < activateAt || sent[ev.raw] {
			sent[ev.raw] = true
			continue // before the activation, or a repeat (which gets its first decision)
		}
		sent[ev.raw] = true
		if da.Version != 2 || fmt.Sprint(da.Features) != fmt.Sprint(dr.Features) || da.Score != dr.Score {
			t.Fatalf("%s seed %d event %d %s:\nback-filled v%d %v\nfrom start     %v", mode, seed, i, ev.raw, da.Version, da.Features, dr.Features)
		}
		compared++
		if want, ok := bruteForce(evs, i); ok {
			for k, v := range want {
				if da.Features[k] != v {
					t.Fatalf("%s seed %d event %d %s: %s = %v, brute force %v", mode, seed, i, ev.raw, k, da.Features[k], v)
				}
			}
			brute++
		}
	}
	if compared < 400 || brute < 200 {
		t.Fatalf("compared %d decisions, %d by brute force", compared, brute)
	}
}

// TestBackfillHandOverUnderTraffic activates a version with new features while other
// goroutines send events: none may be lost or counted twice at the hand-over. A reference
// engine with the new version from the start is then sent the same events in the order the
// engine logged them, and later decisions must agree on every feature.
func TestBackfillHandOverUnderTraffic(t *testing.T) {
	r := newRig(t)
	r.a = r.open(r.dirA)
	r.ref = r.open(t.TempDir())
	r.activate(r.a, r.put(r.a, bfV1))
	r.activate(r.ref, r.put(r.ref, bfV2))
	v2 := r.put(r.a, bfV2)

	// Distinct ids, all within half an hour, so that every event counts in the later windows.
	rng := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var evs []bfEvent
	for i := range 40_000 {
		at := base.Add(time.Duration(i) * 45 * time.Millisecond)
		evs = append(evs, bfEvent{raw: fmt.Sprintf(`{"type":%q,"id":"t%d","timestamp":%q,"user_id":"u%d","device_id":"d%d","merchant_id":"m%d","amount":%d}`,
			[]string{"payment", "payment", "login"}[rng.IntN(3)], i, at.Format(time.RFC3339Nano), rng.IntN(20), rng.IntN(8), rng.IntN(3), rng.IntN(1000))})
	}
	const before = 4000
	for _, ev := range evs[:before] {
		r.decide(r.a, ev.raw)
		r.decide(r.ref, ev.raw)
	}
	// The engine under test gets the next events from two goroutines while it activates v2,
	// and 200 more once it has.
	var wg sync.WaitGroup
	var mu sync.Mutex
	next, limit, extended := before, len(evs)-1000, false
	var sentDuring int
	activating := make(chan struct{})
	activated := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-activating
			for {
				mu.Lock()
				select {
				case <-activated:
					if !extended {
						limit, extended = min(limit, next+200), true
					}
				default:
					sentDuring++
				}
				i := next
				if i >= limit {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				ev, err := risk.ParseEvent([]byte(evs[i].raw))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := r.a.Ingest(r.ctx, ev); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(200 * time.Microsecond) // traffic the back-fill can catch up with
			}
		}()
	}
	close(activating)
	time.Sleep(5 * time.Millisecond)
	r.activate(r.a, v2)
	close(activated)
	wg.Wait()
	if t.Failed() {
		return
	}
	if !extended {
		t.Fatal("the events ran out before the activation returned")
	}
	during := next
	t.Logf("events sent while activating: %d", sentDuring)
	// The reference counts the same events in the order the engine logged them.
	if err := r.a.Flush(r.ctx); err != nil {
		t.Fatal(err)
	}
	logged, err := r.dbA.Risk().Events(r.ctx, 0, time.Time{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, le := range logged {
		ev, err := risk.ParseEvent(le.Body)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := r.ref.Ingest(r.ctx, ev); err != nil {
			t.Fatal(err)
		} else if ok {
			n++
		}
	}
	if n != during-before {
		t.Fatalf("the reference counted %d new events, want %d", n, during-before)
	}
	for i, ev := range evs[during : during+1000] {
		da, dr := r.decide(r.a, ev.raw), r.decide(r.ref, ev.raw)
		if fmt.Sprint(da.Features) != fmt.Sprint(dr.Features) {
			t.Fatalf("event %d %s:\nback-filled %v\nfrom start  %v", during+i, ev.raw, da.Features, dr.Features)
		}
	}
}

// BenchmarkBackfill measures activating bfV2 (seven new features, two of them bucketed) on an
// engine that has counted 100,000 events under bfV1: the back-fill replays them from the log.
// It reports the CPU time per replayed event.
func BenchmarkBackfill(b *testing.B) {
	ctx := context.Background()
	evs := bfStream(11, 100_000, func(int) bool { return false })
	for b.Loop() {
		b.StopTimer()
		db, err := sqlite.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		e, err := risk.Open(ctx, db.Risk(), risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1, NoCloseSnapshot: true})
		if err != nil {
			b.Fatal(err)
		}
		for _, src := range []string{bfV1, bfV2} {
			if _, err := e.PutRuleSet(ctx, "pay", []byte(src)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := e.Activate(ctx, "pay", 1, 0); err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			pe, err := risk.ParseEvent([]byte(ev.raw))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Ingest(ctx, pe); err != nil {
				b.Fatal(err)
			}
		}
		if err := e.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		cpu0 := bench.ProcessCPU()
		b.StartTimer()
		if _, err := e.Activate(ctx, "pay", 2, 0); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n := e.Counters().Backfilled
		b.ReportMetric(float64(bench.ProcessCPU()-cpu0)/float64(n), "cpu-ns/event")
		b.ReportMetric(float64(n), "events")
		e.Close()
		db.Close()
		b.StartTimer()
	}
}

// TestRepeatAfterRestart: an event id counted before a snapshot and sent again after a
// restart is not counted again (the restart remembers the ids the log holds), and the same
// id with another body is still a conflict.
func TestRepeatAfterRestart(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.a = r.open(r.dirA)
	r.activate(r.a, r.put(r.a, payRules))
	for i, id := range []string{"p1", "p2"} {
		if _, err := r.a.Decide(ctx, "pay", event(t, id, "payment", time.Duration(i)*time.Minute, `,"user_id":"u1","amount":1`)); err != nil {
			t.Fatal(err)
		}
	}
	r.restart(true)
	d, err := r.a.Decide(ctx, "pay", event(t, "p1", "payment", 0, `,"user_id":"u1","amount":1`))
	if err != nil || d.Features["user_count_1h"] != 1 { // p1 at its time, not counted again
		t.Fatalf("repeat after restart: %v %v", d.Features, err)
	}
	if _, err := r.a.Decide(ctx, "pay", event(t, "p2", "payment", 0, `,"user_id":"u1","amount":2`)); !errors.Is(err, risk.ErrIDConflict) {
		t.Fatalf("conflict after restart: %v", err)
	}
	d, err = r.a.Decide(ctx, "pay", event(t, "p3", "payment", 2*time.Minute, `,"user_id":"u1","amount":1`))
	if err != nil || d.Features["user_count_1h"] != 3 {
		t.Fatalf("next event: %v %v", d.Features, err)
	}
}

// TestBackfillShadow: a shadow version's new features are back-filled too; its logged
// decisions carry the values of an engine that had the version from the start.
func TestBackfillShadow(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.a = r.open(r.dirA)
	r.ref = r.open(t.TempDir())
	v1 := r.put(r.a, bfV1)
	r.activate(r.a, v1)
	r.activate(r.ref, r.put(r.ref, bfV2))
	evs := bfStream(21, 500, func(int) bool { return false })
	want := map[string]string{}
	var ids []string
	for i, ev := range evs {
		if i == 300 {
			r.a.Sweep()
			r.ref.Sweep()
			v2 := r.put(r.a, bfV2)
			if _, err := r.a.Activate(ctx, "pay", v1, v2); err != nil {
				t.Fatal(err)
			}
		}
		r.decide(r.a, ev.raw)
		dr := r.decide(r.ref, ev.raw)
		if i >= 300 {
			id := dr.EventID
			ids = append(ids, id)
			b, _ := json.Marshal(dr.Features)
			want[id] = string(b)
		}
	}
	if err := r.a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	logged, err := r.a.LoggedDecisions(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ld := range logged {
		if !ld.Shadow {
			continue
		}
		var body struct{ Features map[string]float64 }
		if err := json.Unmarshal(ld.Body, &body); err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(body.Features); string(b) != want[ld.EventID] {
			t.Fatalf("shadow decision of %s: %s, from the start %s", ld.EventID, b, want[ld.EventID])
		}
		n++
	}
	if n != len(ids) {
		t.Fatalf("%d shadow decisions logged, want %d", n, len(ids))
	}
}

// failingEvents is a store whose Events fails from its failAt-th call on (0: never).
type failingEvents struct {
	risk.Store
	calls, failAt int
}

func (f *failingEvents) Events(ctx context.Context, after int64, from time.Time, limit int) ([]risk.LoggedEvent, error) {
	f.calls++
	if f.failAt > 0 && f.calls >= f.failAt {
		return nil, errors.New("read failed")
	}
	return f.Store.Events(ctx, after, from, limit)
}

// TestBackfillFailure: an activation whose back-fill cannot read the log at the hand-over
// (after its states were moved in) fails and changes nothing: the old version decides, the
// stored head is the old one, and no back-filled state is left.
func TestBackfillFailure(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &failingEvents{Store: db.Risk()}
	e := openEngine(t, st)
	defer e.Close()
	for _, src := range []string{bfV1, bfV2} {
		if _, err := e.PutRuleSet(ctx, "pay", []byte(src)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Activate(ctx, "pay", 1, 0); err != nil {
		t.Fatal(err)
	}
	for _, ev := range bfStream(3, 300, func(int) bool { return false }) {
		pe, err := risk.ParseEvent([]byte(ev.raw))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Decide(ctx, "pay", pe); err != nil {
			t.Fatal(err)
		}
	}
	before := e.Stats()
	// Two catch-up passes read the log once each; the third read is the hand-over's.
	st.calls, st.failAt = 0, 3
	if _, err := e.Activate(ctx, "pay", 2, 0); err == nil || st.calls != 3 {
		t.Fatalf("activation: %v after %d reads", err, st.calls)
	}
	st.failAt = 0
	if h, _ := e.RuleSet("pay"); h.Active != 1 {
		t.Fatalf("active version %d", h.Active)
	}
	heads, err := st.Heads(ctx)
	if err != nil || len(heads) != 1 || heads[0].Active != 1 {
		t.Fatalf("stored heads %+v %v", heads, err)
	}
	if after := e.Stats(); after.Keys != before.Keys || after.KeyValues != before.KeyValues || e.Counters().Keys != before.Keys {
		t.Fatalf("states %d, key values %d; before %d, %d", after.Keys, after.KeyValues, before.Keys, before.KeyValues)
	}
	// Activating again works, and back-fills.
	if _, err := e.Activate(ctx, "pay", 2, 0); err != nil {
		t.Fatal(err)
	}
	if e.Stats().Keys <= before.Keys {
		t.Fatal("nothing back-filled")
	}
}
