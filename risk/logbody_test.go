package risk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
	"github.com/fincore/fincore/store/storetest"
)

// TestLoggedBodies decides events of the reference rule set (200 rules, 50 features, 5
// models) on SQLite and reads the decision log back, through a new engine as after a restart:
// every body, stored compact, reads as the reasons, features and models the decision had.
func TestLoggedBodies(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	e := openEngine(t, db.Risk())
	sum, err := e.PutRuleSet(ctx, "ref", []byte(bench.RiskRuleSet(bench.RiskConfig{Trees: 20})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Activate(ctx, "ref", sum.Version, 0); err != nil {
		t.Fatal(err)
	}
	gen := bench.NewRiskEvents(bench.RiskConfig{Users: 50, Devices: 20}, t0, 20)
	rng := rand.New(rand.NewPCG(3, 4))
	want := map[string]*risk.Decision{}
	var ids []string
	for range 300 {
		ev, err := risk.ParseEvent(gen.Next(rng))
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Decide(ctx, "ref", ev)
		if err != nil {
			t.Fatal(err)
		}
		want[ev.ID], ids = d, append(ids, ev.ID)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	stored, err := db.Risk().Decisions(ctx, ids)
	if err != nil || len(stored) != len(ids) {
		t.Fatalf("%d stored decisions (%v)", len(stored), err)
	}
	size := 0
	for _, d := range stored {
		size += len(d.Body)
	}
	t.Logf("%d bytes per stored body", size/len(stored))
	if size/len(stored) > 600 {
		t.Fatalf("%d bytes per stored body, want compact bodies", size/len(stored))
	}

	e2 := openEngine(t, db.Risk())
	defer e2.Close()
	logged, err := e2.LoggedDecisions(ctx, ids)
	if err != nil || len(logged) != len(ids) {
		t.Fatalf("%d logged decisions (%v)", len(logged), err)
	}
	hits := 0
	for _, l := range logged {
		d := want[l.EventID]
		var body struct {
			Reasons  []risk.Reason      `json:"reasons"`
			Features map[string]float64 `json:"features"`
			Models   map[string]float64 `json:"models"`
			Errors   []risk.RuleError   `json:"errors"`
		}
		if err := json.Unmarshal(l.Body, &body); err != nil {
			t.Fatalf("%s: %v in %s", l.EventID, err, l.Body)
		}
		if l.Decision != d.Decision || l.Score != d.Score || l.Version != sum.Version || !reflect.DeepEqual(body.Reasons, d.Reasons) ||
			!reflect.DeepEqual(body.Features, d.Features) || !reflect.DeepEqual(body.Models, d.Models) || len(body.Errors) != 0 {
			t.Fatalf("%s: logged %+v %s\ndecided %+v", l.EventID, l, l.Body, d)
		}
		hits += len(body.Reasons)
	}
	if hits == 0 || len(want[ids[0]].Features) != 50 || len(want[ids[0]].Models) != 5 {
		t.Fatalf("%d rule hits; features %v", hits, want[ids[0]].Features)
	}
}

// TestLoggedBodiesJSON checks that bodies logged as JSON (before bodies were compact) read as
// they are, and that a compact body whose rule set version is missing is an error.
func TestLoggedBodiesJSON(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t).Risk()
	at := t0
	err := st.AppendLog(ctx, nil, []risk.LoggedDecision{
		{EventID: "old", RuleSet: "gone", Version: 3, Decision: "accept", Body: json.RawMessage(`{"reasons":[],"features":{"x":1}}`), At: at},
		{EventID: "lost", RuleSet: "gone", Version: 3, Decision: "accept", Body: json.RawMessage{1, 0, 0, 0, 0}, At: at},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := risk.NewLogReader(st)
	got, err := r.Decisions(ctx, []string{"old"})
	if err != nil || len(got) != 1 || string(got[0].Body) != `{"reasons":[],"features":{"x":1}}` {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := r.Decisions(ctx, []string{"lost"}); err == nil || fmt.Sprint(err) != "decision of event lost by gone version 3: rule set gone version 3 is not stored" {
		t.Fatalf("missing version: %v", err)
	}
}

// openSQLite opens a fresh SQLite database, closed when the test ends.
func openSQLite(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// countingStore counts the log transactions and the records in them.
type countingStore struct {
	risk.Store
	mu      sync.Mutex
	batches []int
}

func (s *countingStore) AppendLog(ctx context.Context, evs []risk.LoggedEvent, ds []risk.LoggedDecision) error {
	s.mu.Lock()
	s.batches = append(s.batches, len(evs)+len(ds))
	s.mu.Unlock()
	return s.Store.AppendLog(ctx, evs, ds)
}

func (s *countingStore) written() (batches, records int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.batches {
		records += n
	}
	return len(s.batches), records
}

// TestLogInterval checks that the log writer gathers the records of LogInterval into one
// transaction, and that Flush does not wait for the interval.
func TestLogInterval(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: openSQLite(t).Risk()}
	e, err := risk.Open(ctx, st, risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1, NoCloseSnapshot: true, LogInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.PutRuleSet(ctx, "pay", []byte(payRules)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Activate(ctx, "pay", 1, 0); err != nil {
		t.Fatal(err)
	}
	decide := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := e.DecideBrief(ctx, "pay", event(t, fmt.Sprint("iv", i), "payment", time.Duration(i)*time.Second, `,"user_id":"u1","amount":10`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first record is written at once (no write for an hour before it); the rest wait
	// for the interval, or for Flush.
	decide(0, 1)
	deadline := time.Now().Add(10 * time.Second)
	for b, _ := st.written(); b == 0 && time.Now().Before(deadline); b, _ = st.written() {
		time.Sleep(time.Millisecond)
	}
	b1, n1 := st.written()
	decide(1, 40)
	time.Sleep(50 * time.Millisecond)
	if b, n := st.written(); b != 1 || n != n1 || n1 > 2 {
		t.Fatalf("before the interval: %d transactions of %d records, want the first one (%d records) only", b, n, n1)
	}
	start := time.Now()
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if b, n := st.written(); b != b1+1 || n != 80 || time.Since(start) > 5*time.Second {
		t.Fatalf("after Flush: %d transactions of %d records in %s, want %d of 80 at once", b, n, time.Since(start), b1+1)
	}
}
