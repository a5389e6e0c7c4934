package obs_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
)

// TestRiskMetrics runs a risk engine on SQLite with the metrics as its observer and source:
// decisions by rule set and outcome, shadow decisions, repeats, latency, events, the state
// gauges and the log queue.
func TestRiskMetrics(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := obs.New()
	eng, err := risk.Open(ctx, db.Risk(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1, Observer: m.RiskObserver()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	m.WatchRisk(eng)
	rules := `features:
  - {name: n, on: [payment], key: user_id, agg: count, window: 1h}
  - {name: d, on: [payment], key: device_id, agg: count, window: 1h}
rules:
  - {id: R1, when: features.n > %d, score: 50, reason: velocity}
  - {id: R2, when: 'event.note startsWith "x"', score: 1, reason: note}
decision: {review_at: 40, reject_at: 80}
`
	for _, limit := range []int{1, 2} {
		if _, err := eng.PutRuleSet(ctx, "pay", []byte(fmt.Sprintf(rules, limit))); err != nil {
			t.Fatal(err)
		}
	}
	// Version 1 active, version 2 in shadow.
	if _, err := eng.Activate(ctx, "pay", 1, 2); err != nil {
		t.Fatal(err)
	}
	ev := func(id, user, extra string) *risk.Event {
		e, err := risk.ParseEvent([]byte(`{"type":"payment","id":"` + id + `","timestamp":"2026-12-04T10:00:0` + id[1:] + `Z","user_id":"` + user + `","device_id":"d1"` + extra + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// u1 pays three times: accept, review (active > 1), review; the shadow (> 2) accepts
	// twice, then reviews. e3 also fails R2 (note is a number). u2's event is ingested.
	for _, e := range []*risk.Event{ev("e1", "u1", ""), ev("e2", "u1", ""), ev("e3", "u1", `,"note":5`), ev("e2", "u1", "")} {
		if _, err := eng.Decide(ctx, "pay", e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.Ingest(ctx, ev("e4", "u2", "")); err != nil {
		t.Fatal(err)
	}
	fams := scrapeRegistry(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"fincore_risk_decisions_total", []string{"decision=accept", "ruleset=pay"}, 1},
		{"fincore_risk_decisions_total", []string{"decision=review", "ruleset=pay"}, 2},
		{"fincore_risk_shadow_decisions_total", []string{"decision=accept", "ruleset=pay"}, 2},
		{"fincore_risk_shadow_decisions_total", []string{"decision=review", "ruleset=pay"}, 1},
		{"fincore_risk_repeated_decisions_total", []string{"ruleset=pay"}, 1},
		{"fincore_risk_events_total", nil, 4},
		{"fincore_risk_events_ingested_total", nil, 1},
		{"fincore_risk_duplicates_total", nil, 1},
		{"fincore_risk_rule_errors_total", nil, 2}, // e3 in the active and the shadow version
		{"fincore_risk_events_too_old_total", nil, 0},
		{"fincore_risk_overloaded_total", nil, 0},
		{"fincore_risk_key_values", nil, 3}, // u1, u2, d1
		{"fincore_risk_windows", nil, 3},
		{"fincore_risk_log_queue_capacity", nil, 1 << 16},
	} {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if q := value(t, fams, "fincore_risk_log_queue_depth"); q < 0 || q > 20 {
		t.Errorf("log queue depth %v", q)
	}
	if h := histogram(t, fams, "fincore_risk_decision_duration_seconds"); h.GetSampleCount() != 4 || h.GetSampleSum() <= 0 {
		t.Errorf("latency histogram: %d samples, sum %v", h.GetSampleCount(), h.GetSampleSum())
	}
}

// TestRiskRuleSetLabelsBounded: rule set names past the bound count as "other".
func TestRiskRuleSetLabelsBounded(t *testing.T) {
	m := obs.New()
	o := m.RiskObserver()
	for i := range 70 {
		o.Decided(risk.Observation{RuleSet: fmt.Sprint("rs", i), Decision: risk.Accept})
	}
	fams := scrapeRegistry(t, m)
	if got := len(fams["fincore_risk_decisions_total"].Metric); got != 65 {
		t.Fatalf("%d label sets, want 64 names and other", got)
	}
	if got := value(t, fams, "fincore_risk_decisions_total", "decision=accept", "ruleset=other"); got != 6 {
		t.Fatalf("other = %v, want 6", got)
	}
}
