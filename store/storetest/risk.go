package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/migration"
)

// TestRiskStore holds a risk.Store to the behaviour the risk engine relies on. open returns a
// fresh, empty store for each subtest.
func TestRiskStore(t *testing.T, open func(t testing.TB) risk.Store) {
	ctx := context.Background()
	at := time.Date(2026, 12, 4, 10, 0, 0, 123, time.UTC)
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("RuleSetVersions", func(t *testing.T) {
		s := open(t)
		v, created, err := s.PutRuleSet(ctx, "pay", []byte("a"), at)
		if err != nil || v != 1 || !created {
			t.Fatalf("first: %d %v %v", v, created, err)
		}
		// The same source again is the same version.
		if v, created, err = s.PutRuleSet(ctx, "pay", []byte("a"), at); err != nil || v != 1 || created {
			t.Fatalf("same: %d %v %v", v, created, err)
		}
		if v, created, err = s.PutRuleSet(ctx, "pay", []byte("b"), at); err != nil || v != 2 || !created {
			t.Fatalf("second: %d %v %v", v, created, err)
		}
		// Going back to an older source is a new version.
		if v, _, err = s.PutRuleSet(ctx, "pay", []byte("a"), at); err != nil || v != 3 {
			t.Fatalf("third: %d %v", v, err)
		}
		if v, _, err = s.PutRuleSet(ctx, "login", []byte("x"), at); err != nil || v != 1 {
			t.Fatalf("other name: %d %v", v, err)
		}
		src, ok, err := s.RuleSetSource(ctx, "pay", 2)
		if err != nil || !ok || string(src) != "b" {
			t.Fatalf("source: %q %v %v", src, ok, err)
		}
		if _, ok, err := s.RuleSetSource(ctx, "pay", 9); err != nil || ok {
			t.Fatalf("missing version: %v %v", ok, err)
		}
		must(t, s.SetHead(ctx, risk.Head{Name: "pay", Active: 2, Shadow: 3, Updated: at}))
		if err := s.SetHead(ctx, risk.Head{Name: "nope", Active: 1, Updated: at}); err == nil {
			t.Fatal("head of an unknown rule set accepted")
		}
		hs, err := s.Heads(ctx)
		must(t, err)
		want := []risk.Head{{Name: "login", Latest: 1, Updated: at}, {Name: "pay", Latest: 3, Active: 2, Shadow: 3, Updated: at}}
		if fmt.Sprint(hs) != fmt.Sprint(want) {
			t.Fatalf("heads %v, want %v", hs, want)
		}
	})

	t.Run("Lists", func(t *testing.T) {
		s := open(t)
		n, err := s.AddListItems(ctx, "black", []string{"d1", "d2", "d1"}, at)
		if err != nil || n != 2 {
			t.Fatalf("add: %d %v", n, err)
		}
		if n, err = s.AddListItems(ctx, "white", []string{"u1"}, at); err != nil || n != 1 {
			t.Fatalf("add: %d %v", n, err)
		}
		if n, err = s.RemoveListItems(ctx, "black", []string{"d1", "zz"}); err != nil || n != 1 {
			t.Fatalf("remove: %d %v", n, err)
		}
		got, err := s.ListItems(ctx)
		must(t, err)
		if fmt.Sprint(got) != fmt.Sprint(map[string][]string{"black": {"d2"}, "white": {"u1"}}) {
			t.Fatalf("items %v", got)
		}
	})

	t.Run("Log", func(t *testing.T) {
		s := open(t)
		ev := func(id string, ts time.Duration) risk.LoggedEvent {
			return risk.LoggedEvent{ID: id, Type: "payment", Time: at.Add(ts), Body: json.RawMessage(`{"id":"` + id + `"}`), Received: at, Label: "fraud"}
		}
		if _, ok, err := s.LastEvent(ctx); err != nil || ok {
			t.Fatalf("empty log: %v %v", ok, err)
		}
		dec := risk.LoggedDecision{EventID: "e1", RuleSet: "pay", Version: 2, Decision: "review", Score: 40, Body: json.RawMessage(`{"x":1}`), At: at}
		shadow := dec
		shadow.Shadow, shadow.Version, shadow.Decision = true, 3, "reject"
		must(t, s.AppendLog(ctx, []risk.LoggedEvent{ev("e1", 0), ev("e2", -time.Hour)}, []risk.LoggedDecision{dec, shadow}))
		// e1 again is skipped; e3 is logged after e2.
		must(t, s.AppendLog(ctx, []risk.LoggedEvent{ev("e1", time.Minute), ev("e3", time.Second)}, nil))
		all, err := s.Events(ctx, 0, time.Time{}, 10)
		must(t, err)
		var ids []string
		for i, e := range all {
			ids = append(ids, e.ID)
			if i > 0 && e.Seq <= all[i-1].Seq {
				t.Fatalf("seq not increasing: %v", all)
			}
		}
		if !slices.Equal(ids, []string{"e1", "e2", "e3"}) || !all[0].Time.Equal(at) || string(all[0].Body) != `{"id":"e1"}` || all[0].Label != "fraud" {
			t.Fatalf("events %+v", all)
		}
		// By time and by position.
		recent, err := s.Events(ctx, 0, at.Add(-time.Minute), 10)
		must(t, err)
		after, err := s.Events(ctx, all[0].Seq, time.Time{}, 1)
		must(t, err)
		if len(recent) != 2 || recent[1].ID != "e3" || len(after) != 1 || after[0].ID != "e2" {
			t.Fatalf("recent %+v after %+v", recent, after)
		}
		last, ok, err := s.LastEvent(ctx)
		if err != nil || !ok || last.ID != "e3" {
			t.Fatalf("last %+v %v %v", last, ok, err)
		}
		ds, err := s.Decisions(ctx, []string{"e1", "e2"})
		must(t, err)
		if len(ds) != 2 || ds[0].Shadow || !ds[1].Shadow || ds[1].Decision != "reject" || ds[0].Score != 40 || string(ds[0].Body) != `{"x":1}` || !ds[0].At.Equal(at) {
			t.Fatalf("decisions %+v", ds)
		}
	})

	t.Run("LogLargeBatch", func(t *testing.T) {
		// Batches longer than a statement's worth of rows, with ids repeated inside the
		// batch and across batches: every event once, in the order given, every decision.
		s := open(t)
		mk := func(ids ...int) (evs []risk.LoggedEvent, ds []risk.LoggedDecision) {
			for _, i := range ids {
				id := fmt.Sprint("e", i)
				evs = append(evs, risk.LoggedEvent{ID: id, Type: "payment", Time: at.Add(time.Duration(i) * time.Second), Body: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`), Received: at})
				ds = append(ds, risk.LoggedDecision{EventID: id, RuleSet: "pay", Version: 1, Decision: "accept", Score: i, Body: json.RawMessage(`{}`), At: at})
			}
			return evs, ds
		}
		var first []int
		for i := range 150 {
			first = append(first, i)
			if i%50 == 7 {
				first = append(first, i) // the same id again in the batch
			}
		}
		evs, ds := mk(first...)
		must(t, s.AppendLog(ctx, evs, ds))
		var second []int
		for i := 140; i < 300; i++ {
			second = append(second, i)
		}
		evs, ds = mk(second...)
		must(t, s.AppendLog(ctx, evs, ds))
		all, err := s.Events(ctx, 0, time.Time{}, 1000)
		must(t, err)
		if len(all) != 300 {
			t.Fatalf("%d events logged, want 300", len(all))
		}
		for i, e := range all {
			if e.ID != fmt.Sprint("e", i) || string(e.Body) != `{"i":`+fmt.Sprint(i)+`}` || !e.Time.Equal(at.Add(time.Duration(i)*time.Second)) {
				t.Fatalf("event %d: %+v", i, e)
			}
		}
		got, err := s.Decisions(ctx, []string{"e7", "e145", "e299"})
		must(t, err)
		// e7 twice in the first batch, e145 in both, e299 once.
		if len(got) != 5 || got[0].EventID != "e7" || got[1].EventID != "e7" || got[2].Score != 145 || got[3].Score != 145 || got[4].EventID != "e299" {
			t.Fatalf("decisions %+v", got)
		}
	})

	t.Run("LogDecisionsAndEventsApart", func(t *testing.T) {
		// Decisions logged in a later batch than their event, of an event id logged again,
		// and without any logged event are all found by their event id, in log order.
		s := open(t)
		ev := func(id string) risk.LoggedEvent {
			return risk.LoggedEvent{ID: id, Type: "payment", Time: at, Body: json.RawMessage(`{"id":"` + id + `"}`), Received: at}
		}
		dec := func(id string, score int) risk.LoggedDecision {
			return risk.LoggedDecision{EventID: id, RuleSet: "pay", Version: 1, Decision: "accept", Score: score, Body: json.RawMessage(`{}`), At: at}
		}
		must(t, s.AppendLog(ctx, []risk.LoggedEvent{ev("a"), ev("b")}, []risk.LoggedDecision{dec("a", 1)}))
		must(t, s.AppendLog(ctx, []risk.LoggedEvent{ev("a")}, []risk.LoggedDecision{dec("b", 2), dec("a", 3), dec("nolog", 4)}))
		must(t, s.AppendLog(ctx, nil, []risk.LoggedDecision{dec("b", 5)}))
		got, err := s.Decisions(ctx, []string{"a", "b", "nolog", "missing"})
		must(t, err)
		scores := map[string][]int{} // by event, in log order
		for _, d := range got {
			scores[d.EventID] = append(scores[d.EventID], d.Score)
		}
		if len(got) != 5 || !slices.Equal(scores["a"], []int{1, 3}) || !slices.Equal(scores["b"], []int{2, 5}) || !slices.Equal(scores["nolog"], []int{4}) {
			t.Fatalf("decisions %+v", got)
		}
		if got, err := s.Decisions(ctx, []string{"nolog"}); err != nil || len(got) != 1 || got[0].EventID != "nolog" {
			t.Fatalf("decision without its event: %+v %v", got, err)
		}
	})

	t.Run("Snapshot", func(t *testing.T) {
		s := open(t)
		if _, _, ok, err := s.LoadSnapshot(ctx); err != nil || ok {
			t.Fatalf("empty: %v %v", ok, err)
		}
		must(t, s.SaveSnapshot(ctx, 5, []byte("one"), at))
		must(t, s.SaveSnapshot(ctx, 9, []byte("two"), at))
		seq, data, ok, err := s.LoadSnapshot(ctx)
		if err != nil || !ok || seq != 9 || string(data) != "two" {
			t.Fatalf("snapshot %d %q %v %v", seq, data, ok, err)
		}
	})
}

// BenchRiskLog appends b.N decisions to st's log the way the risk engine's writer does, in
// batches of 100 events and their 100 decisions per AppendLog: event bodies of ~230 bytes and
// decision bodies of 250 (the sizes of `fincore bench risk`). cpu_ns/op is the process's CPU
// time (background checkpoints included) per decided event logged; ns/op also waits for the
// disk.
func BenchRiskLog(b *testing.B, st risk.Store) {
	ctx := context.Background()
	const batch = 100
	at := time.Now().UTC()
	body := make(json.RawMessage, 250)
	for i := range body {
		body[i] = byte(i)
	}
	evs, ds := make([]risk.LoggedEvent, batch), make([]risk.LoggedDecision, batch)
	b.ResetTimer()
	cpu0 := bench.ProcessCPU()
	for n := 0; n < b.N; n += batch {
		m := min(batch, b.N-n)
		for i := range m {
			id := fmt.Sprintf("ev%d_%d", at.UnixNano(), n+i)
			ts := at.Add(time.Duration(n+i) * time.Millisecond)
			evs[i] = risk.LoggedEvent{ID: id, Type: "payment", Time: ts, Received: at,
				Body: fmt.Appendf(nil, `{"type":"payment","id":%q,"timestamp":%q,"user_id":"u%d","device_id":"d%d","card_id":"c%d","ip":"10.1.2.3","merchant_id":"m12","amount":%d,"channel":"app"}`,
					id, ts.Format(time.RFC3339Nano), n+i, (n+i)%20000, n+i, 100+n+i)}
			ds[i] = risk.LoggedDecision{EventID: id, RuleSet: "bench1764960000", Version: 1, Decision: "review", Score: 340, Body: body, At: at}
		}
		if err := st.AppendLog(ctx, evs[:m], ds[:m]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bench.ProcessCPU()-cpu0)/float64(b.N), "cpu_ns/op")
}

// TestRiskDecisionsBackfill checks a backend's migration 0012 (found in migrations), which
// gives the decisions logged before it the seq of their logged event: run by exec on st's
// database after their event_seq was cleared, it sets it again for every decision whose event
// is logged, and leaves the others to be found by id.
func TestRiskDecisionsBackfill(t *testing.T, st risk.Store, migrations func() ([]migration.Migration, error), exec func(sql string) error) {
	ctx := context.Background()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m migration.Migration) bool { return m.Version == 12 })
	if i < 0 {
		t.Fatal("no migration 0012")
	}
	start := strings.Index(ms[i].SQL, "UPDATE risk_decisions")
	end := strings.Index(ms[i].SQL[max(start, 0):], ";")
	if start < 0 || end < 0 {
		t.Fatal("migration 0012 has no UPDATE risk_decisions statement")
	}
	backfill := ms[i].SQL[start : start+end]
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	var evs []risk.LoggedEvent
	var ds []risk.LoggedDecision
	for _, id := range []string{"a", "b", "c"} {
		evs = append(evs, risk.LoggedEvent{ID: id, Type: "payment", Time: at, Body: json.RawMessage(`{}`), Received: at})
		ds = append(ds, risk.LoggedDecision{EventID: id, RuleSet: "pay", Version: 1, Decision: "accept", Body: json.RawMessage(`{}`), At: at})
	}
	ds = append(ds, risk.LoggedDecision{EventID: "nolog", RuleSet: "pay", Version: 1, Decision: "accept", Body: json.RawMessage(`{}`), At: at})
	if err := st.AppendLog(ctx, evs, ds); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE risk_decisions SET event_seq = NULL`, backfill,
		// What is still without its event's seq goes: only the decision of "nolog" may.
		`DELETE FROM risk_decisions WHERE event_seq IS NULL`} {
		if err := exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err := st.Decisions(ctx, []string{"a", "b", "c", "nolog"})
	if err != nil || len(got) != 3 || got[0].EventID != "a" || got[2].EventID != "c" {
		t.Fatalf("after the backfill: %+v %v", got, err)
	}
}
