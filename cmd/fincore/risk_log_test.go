package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
)

// TestRiskDecisionsCommand decides events, then reads their logged decisions with fincore
// risk decisions: the body (stored compact) comes out as JSON with the rule set's names.
func TestRiskDecisionsCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := risk.Open(ctx, db.Risk(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	rules := `
features:
  - {name: user_n_1h, on: [payment], key: user_id, agg: count, window: 1h}
  - {name: user_avg_1h, on: [payment], key: user_id, agg: avg, field: amount, window: 1h}
rules:
  - {id: many, when: features.user_n_1h > 1, score: 50, reason: velocity}
  - {id: big, when: event.amount > 100, score: 10, reason: big_amount}
decision: {review_at: 50, reject_at: 100}
`
	if _, err := eng.PutRuleSet(ctx, "pay", []byte(rules)); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Activate(ctx, "pay", 1, 0); err != nil {
		t.Fatal(err)
	}
	for i, amount := range []string{"100", "205"} {
		ev, err := risk.ParseEvent([]byte(`{"type":"payment","id":"e` + string(rune('1'+i)) + `","timestamp":"2026-12-05T10:00:0` + string(rune('0'+i)) + `Z","user_id":"u1","amount":` + amount + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Decide(ctx, "pay", ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	var out bytes.Buffer
	if err := cmdRiskDecisions([]string{"--data", dir, "--event", "e1,e2"}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q", out.String())
	}
	var d loggedDecision
	if err := json.Unmarshal([]byte(lines[1]), &d); err != nil {
		t.Fatal(err)
	}
	want := `{"reasons":[{"rule":"many","reason":"velocity","score":50},{"rule":"big","reason":"big_amount","score":10}],"features":{"user_n_1h":2,"user_avg_1h":152.5}}`
	if d.EventID != "e2" || d.RuleSet != "pay" || d.Version != 1 || d.Decision != "review" || d.Score != 60 || string(d.Body) != want {
		t.Fatalf("decision %+v body %s", d, d.Body)
	}
	if err := cmdRiskDecisions([]string{"--data", dir}, &out); err == nil {
		t.Fatal("no --event accepted")
	}
}
