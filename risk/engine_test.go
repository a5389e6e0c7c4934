package risk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
	"github.com/fincore/fincore/store/storetest"
)

const payRules = `
features:
  - {name: user_count_1h, on: [payment], key: user_id, agg: count, window: 1h}
  - {name: user_amount_24h, on: [payment], key: user_id, agg: sum, field: amount, window: 24h}
  - {name: device_users_7d, on: ["*"], key: device_id, agg: distinct, field: user_id, window: 7d}
  - {name: user_logins_1h, on: [login], key: user_id, agg: count, window: 1h}
lists: [device_black, user_white]
models:
  - id: velocity
    type: scorecard
    inputs: [user_count_1h, event.amount]
    scorecard:
      base: 1
      features:
        - {input: user_count_1h, bins: [{max: 6, points: 0}, {min: 6, points: 6}], missing: 0}
        - {input: event.amount, bins: [{max: 1000, points: 0}, {min: 1000, points: 200}], missing: 0}
rules:
  - {id: R1, when: features.user_count_1h > 5, score: 40, reason: velocity_1h}
  - {id: R2, when: 'in_list("device_black", event.device_id)', action: reject, reason: device_blacklisted}
  - {id: R3, when: features.device_users_7d >= 3, score: 50, reason: shared_device}
  - {id: R4, when: 'in_list("user_white", event.user_id)', action: accept, reason: whitelisted}
  - {id: R5, when: models.velocity > 100, score: 10, reason: model_high}
  - {id: R6, when: event.amount > 1000, score: 1, reason: big}
decision: {review_at: 40, reject_at: 80}
`

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func event(t testing.TB, id, typ string, at time.Duration, fields string) *risk.Event {
	t.Helper()
	raw := fmt.Sprintf(`{"id":%q,"type":%q,"timestamp":%q%s}`, id, typ, t0.Add(at).Format(time.RFC3339Nano), fields)
	ev, err := risk.ParseEvent([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func openEngine(t testing.TB, st risk.Store) *risk.Engine {
	t.Helper()
	e, err := risk.Open(context.Background(), st, risk.Config{Logger: storetest.QuietLogger(), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// openPay opens an engine on fresh SQLite storage with payRules active as "pay".
func openPay(t *testing.T) (*risk.Engine, risk.Store) {
	t.Helper()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := db.Risk()
	e := openEngine(t, st)
	if _, err := e.PutRuleSet(context.Background(), "pay", []byte(payRules)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Activate(context.Background(), "pay", 1, 0); err != nil {
		t.Fatal(err)
	}
	return e, st
}

func TestEngineDecisions(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := db.Risk()
	e := openEngine(t, st)
	defer e.Close()

	if _, err := e.Decide(ctx, "pay", event(t, "x", "payment", 0, "")); !errors.Is(err, risk.ErrUnknownRuleSet) {
		t.Fatalf("unknown rule set: %v", err)
	}
	sum, err := e.PutRuleSet(ctx, "pay", []byte(payRules))
	if err != nil || sum.Version != 1 || !sum.Created || sum.Rules != 6 || sum.Features != 4 {
		t.Fatalf("put: %+v %v", sum, err)
	}
	if _, err := e.Decide(ctx, "pay", event(t, "x", "payment", 0, "")); !errors.Is(err, risk.ErrNotActive) {
		t.Fatalf("inactive: %v", err)
	}
	// A bad rule set is refused with its line, and nothing is stored.
	if _, err := e.PutRuleSet(ctx, "pay", []byte(strings.Replace(payRules, "features.user_count_1h > 5", "features.nope > 5", 1))); err == nil || !strings.Contains(err.Error(), "line 18") {
		t.Fatalf("bad rule set: %v", err)
	}
	if _, err := e.Activate(ctx, "pay", 2, 0); !errors.Is(err, risk.ErrUnknownVersion) {
		t.Fatalf("activate missing version: %v", err)
	}
	if _, err := e.Activate(ctx, "pay", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddListItems(ctx, "device_black", []string{"d-bad"}); err != nil {
		t.Fatal(err)
	}

	// Six payments of u1 within the hour: the sixth trips the velocity rule.
	var d *risk.Decision
	for i := range 6 {
		d, err = e.Decide(ctx, "pay", event(t, fmt.Sprintf("p%d", i), "payment", time.Duration(i)*time.Minute, `,"user_id":"u1","device_id":"d1","amount":100`))
		if err != nil {
			t.Fatal(err)
		}
	}
	if d.Decision != risk.Review || d.Score != 40 || len(d.Reasons) != 1 || d.Reasons[0].Reason != "velocity_1h" || d.Features["user_count_1h"] != 6 || d.Features["user_amount_24h"] != 600 {
		t.Fatalf("sixth payment: %+v", d)
	}
	if d.Models["velocity"] != 7 {
		t.Fatalf("model: %v", d.Models)
	}
	// The same event again: the same answer, and it is not counted twice.
	again, err := e.Decide(ctx, "pay", event(t, "p5", "payment", 5*time.Minute, `,"user_id":"u1","device_id":"d1","amount":100`))
	if err != nil || again.Decision != d.Decision || again.Score != d.Score || again.Features["user_count_1h"] != 6 || again.Models["velocity"] != 7 {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	if _, err := e.Decide(ctx, "pay", event(t, "p5", "payment", 5*time.Minute, `,"user_id":"u1","amount":999`)); !errors.Is(err, risk.ErrIDConflict) {
		t.Fatalf("conflict: %v", err)
	}
	// A login reads the payment count without adding to it; 61 minutes after the first
	// payment, one has left the window.
	d, err = e.Decide(ctx, "pay", event(t, "l1", "login", 61*time.Minute, `,"user_id":"u1"`))
	if err != nil || d.Features["user_count_1h"] != 4 || d.Features["user_logins_1h"] != 1 || d.Decision != risk.Accept {
		t.Fatalf("login: %+v %v", d, err)
	}
	// Ingested events count, once.
	for range 2 {
		if _, err := e.Ingest(ctx, event(t, "l2", "login", 62*time.Minute, `,"user_id":"u1","device_id":"d9"`)); err != nil {
			t.Fatal(err)
		}
	}
	d, err = e.Decide(ctx, "pay", event(t, "l3", "login", 63*time.Minute, `,"user_id":"u1"`))
	if err != nil || d.Features["user_logins_1h"] != 3 {
		t.Fatalf("after ingest: %+v %v", d, err)
	}
	// Reject outright on the black list; a white-listed user is accepted despite the score.
	d, err = e.Decide(ctx, "pay", event(t, "b1", "payment", 64*time.Minute, `,"user_id":"u2","device_id":"d-bad","amount":5`))
	if err != nil || d.Decision != risk.Reject || d.Reasons[0].Reason != "device_blacklisted" {
		t.Fatalf("black list: %+v %v", d, err)
	}
	// The brief decision (what payments and credit ask for) has no maps but the same rule hits.
	brief, err := e.DecideBrief(ctx, "pay", event(t, "b1", "payment", 64*time.Minute, `,"user_id":"u2","device_id":"d-bad","amount":5`))
	if err != nil || brief.Features != nil || brief.Decision != d.Decision || len(d.Reasons) == 0 || !slices.Equal(brief.RuleHits(), d.Reasons) {
		t.Fatalf("brief: %+v %v; hits %+v, want %+v", brief, err, brief.RuleHits(), d.Reasons)
	}
	if _, err := e.AddListItems(ctx, "user_white", []string{"u3"}); err != nil {
		t.Fatal(err)
	}
	for i, u := range []string{"u3", "u4", "u5"} {
		d, err = e.Decide(ctx, "pay", event(t, "s"+u, "payment", 65*time.Minute+time.Duration(i)*time.Second, `,"user_id":"`+u+`","device_id":"shared","amount":5`))
		if err != nil {
			t.Fatal(err)
		}
	}
	if d.Decision != risk.Review || d.Features["device_users_7d"] != 3 || d.Score != 50 {
		t.Fatalf("shared device: %+v", d)
	}
	// A rule that fails at run time (amount missing) counts as not hit, and is reported.
	if len(d.Errors) != 0 {
		t.Fatalf("errors: %+v", d.Errors)
	}
	d, err = e.Decide(ctx, "pay", event(t, "n1", "payment", 66*time.Minute, `,"user_id":"u6"`))
	if err != nil || len(d.Errors) != 1 || d.Errors[0].Rule != "R6" {
		t.Fatalf("rule error: %+v %v", d, err)
	}

	// Shadow: version 2 runs beside version 1; only version 1 answers; both are logged.
	if _, err := e.PutRuleSet(ctx, "pay", []byte(strings.Replace(payRules, "review_at: 40", "review_at: 1", 1))); err != nil {
		t.Fatal(err)
	}
	if h, err := e.Activate(ctx, "pay", 1, 2); err != nil || h.Active != 1 || h.Shadow != 2 || h.Latest != 2 {
		t.Fatalf("shadow: %+v %v", h, err)
	}
	d, err = e.Decide(ctx, "pay", event(t, "sh1", "payment", 67*time.Minute, `,"user_id":"u7","amount":5000`))
	if err != nil || d.Decision != risk.Accept || d.Version != 1 || d.Score != 11 || d.Models["velocity"] != 201 {
		t.Fatalf("with shadow: %+v %v", d, err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Decisions(ctx, []string{"sh1"})
	if err != nil || len(stored) != 2 || stored[0].Body[0] != 0x01 || len(stored[0].Body) > 40 {
		t.Fatalf("stored: %+v %v (want compact bodies)", stored, err)
	}
	logged, err := e.LoggedDecisions(ctx, []string{"sh1"})
	if err != nil || len(logged) != 2 || logged[0].Shadow || logged[0].Decision != "accept" || !logged[1].Shadow || logged[1].Decision != "review" || logged[1].Score != 11 || logged[1].Version != 2 {
		t.Fatalf("logged: %+v %v", logged, err)
	}
	var body struct {
		Reasons  []risk.Reason      `json:"reasons"`
		Features map[string]float64 `json:"features"`
		Models   map[string]float64 `json:"models"`
	}
	if err := json.Unmarshal(logged[0].Body, &body); err != nil || body.Features["user_count_1h"] != 1 || len(body.Features) != 4 ||
		body.Models["velocity"] != 201 || len(body.Reasons) != 2 || body.Reasons[1].Rule != "R6" || body.Reasons[1].Score != 1 {
		t.Fatalf("logged body: %s (%v)", logged[0].Body, err)
	}
}

// TestEngineRestart checks that feature state survives a restart, through a replay of the
// event log (after a crash) and through a snapshot (after a clean stop).
func TestEngineRestart(t *testing.T) {
	ctx := context.Background()
	e1, st := openPay(t)
	pay := func(e *risk.Engine, i int) *risk.Decision {
		t.Helper()
		d, err := e.Decide(ctx, "pay", event(t, fmt.Sprintf("p%d", i), "payment", time.Duration(i)*time.Minute, `,"user_id":"u1","device_id":"d1","amount":10`))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := range 3 {
		pay(e1, i)
	}
	// A crash: the log is written, the engine is not closed (no snapshot).
	if err := e1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := openEngine(t, st)
	if d := pay(e2, 3); d.Features["user_count_1h"] != 4 || d.Features["user_amount_24h"] != 40 {
		t.Fatalf("after replay: %v", d.Features)
	}
	// A replayed id is still known: it is answered as of its own time and not counted again
	// (the next event, after the restart below, sees five).
	if d := pay(e2, 2); d.Features["user_count_1h"] != 3 {
		t.Fatalf("replayed duplicate counted: %v", d.Features)
	}
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	e3 := openEngine(t, st)
	defer e3.Close()
	checkCounts(t, e3) // loaded from the snapshot
	if d := pay(e3, 4); d.Features["user_count_1h"] != 5 || d.Features["device_users_7d"] != 1 {
		t.Fatalf("after snapshot: %v", d.Features)
	}
	if h, ok := e3.RuleSet("pay"); !ok || h.Active != 1 {
		t.Fatalf("head after restart: %+v", h)
	}
}

// TestBacktest replays logged events through a candidate rule set and compares decisions and
// label quality.
func TestBacktest(t *testing.T) {
	ctx := context.Background()
	e, st := openPay(t)
	// u1 pays 8 times (fraud: labelled), u2 once (legit). The live rule set reviews u1 from
	// its sixth payment.
	for i := range 8 {
		if _, err := e.Decide(ctx, "pay", event(t, fmt.Sprintf("f%d", i), "payment", time.Duration(i)*time.Minute, `,"user_id":"u1","amount":10,"label":"fraud"`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Decide(ctx, "pay", event(t, "g1", "payment", 10*time.Minute, `,"user_id":"u2","amount":10,"label":"legit"`)); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// The candidate reviews from the third payment.
	cand := strings.Replace(payRules, "features.user_count_1h > 5", "features.user_count_1h > 2", 1)
	rep, err := risk.Backtest(ctx, st, "pay", []byte(cand), t0.Add(-time.Minute), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 9 || rep.Changed != 3 || rep.Transitions["accept->review"] != 3 || rep.Candidate["review"] != 6 || rep.Logged["review"] != 3 {
		t.Fatalf("report: %s", rep.MarshalIndent())
	}
	if rep.Labelled != 9 || rep.Quality.TP != 6 || rep.Quality.FN != 2 || rep.Quality.TN != 1 || rep.LoggedQ.TP != 3 || rep.Quality.Precision != 1 || rep.Quality.Recall != 0.75 {
		t.Fatalf("quality: %s", rep.MarshalIndent())
	}
	// Only the window: events before from warm the features but are not decided.
	rep, err = risk.Backtest(ctx, st, "pay", []byte(cand), t0.Add(4*time.Minute+30*time.Second), t0.Add(time.Hour))
	if err != nil || rep.Events != 4 || rep.WarmUp != 5 || rep.Candidate["review"] != 3 {
		t.Fatalf("windowed: %v %s", err, rep.MarshalIndent())
	}
}

// TestEviction checks that keys idle for longer than the longest window (plus their own) are
// evicted, and that eviction changes no value.
func TestEviction(t *testing.T) {
	ctx := context.Background()
	e, _ := openPay(t)
	defer e.Close()
	for i, u := range []string{"a", "b", "c"} {
		if _, err := e.Decide(ctx, "pay", event(t, "e"+u, "payment", time.Duration(i)*time.Minute, `,"user_id":"`+u+`","device_id":"d`+u+`","amount":5`)); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, e)
	before := e.Stats().Keys
	e.Sweep()
	if got := e.Stats().Keys; got != before || before == 0 {
		t.Fatalf("swept live keys: %d -> %d", before, got)
	}
	// 15 days later (the longest window is 7 days): only the new event's keys remain.
	d, err := e.Decide(ctx, "pay", event(t, "late", "payment", 15*24*time.Hour, `,"user_id":"a","device_id":"da","amount":5`))
	if err != nil || d.Features["user_count_1h"] != 1 || d.Features["user_amount_24h"] != 5 {
		t.Fatalf("after 15 days: %+v %v", d, err)
	}
	e.Sweep()
	checkCounts(t, e)
	st := e.Stats()
	if st.Evicted == 0 || st.Keys >= before {
		t.Fatalf("nothing evicted: %+v (before %d keys)", st, before)
	}
	d, err = e.Decide(ctx, "pay", event(t, "late2", "payment", 15*24*time.Hour+time.Minute, `,"user_id":"a","device_id":"da","amount":5`))
	if err != nil || d.Features["user_count_1h"] != 2 || d.Features["device_users_7d"] != 1 {
		t.Fatalf("after eviction: %+v %v", d.Features, err)
	}
}

// checkCounts checks that the lock-free counts of states and key values (metrics read them)
// agree with a walk over the state.
func checkCounts(t *testing.T, e *risk.Engine) {
	t.Helper()
	c, s := e.Counters(), e.Stats()
	if c.Keys != s.Keys || c.KeyValues != s.KeyValues || s.Keys == 0 || s.KeyValues == 0 || s.KeyValues > s.Keys {
		t.Fatalf("counters: %d states, %d key values; walk: %d, %d", c.Keys, c.KeyValues, s.Keys, s.KeyValues)
	}
}
