package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
)

const riskRules = `features:
  - {name: user_count_1h, on: [payment], key: user_id, agg: count, window: 1h}
lists: [device_black]
rules:
  - {id: R1, when: features.user_count_1h > 2, score: 50, reason: velocity}
  - {id: R2, when: 'in_list("device_black", event.device_id)', action: reject, reason: black_device}
decision: {review_at: 40, reject_at: 80}
`

func newRiskAPI(t *testing.T) *testAPI {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAPIOn(t, st, ledger.Config{})
	eng, err := risk.Open(context.Background(), st.(risk.Provider).Risk(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	a.api.RegisterRisk(eng)
	return a
}

func (a *testAPI) putRuleSet(name, src, contentType string) response {
	a.t.Helper()
	req, err := http.NewRequest("PUT", a.srv.URL+"/v1/risk/rulesets/"+name, strings.NewReader(src))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return a.send(req)
}

func TestRiskAPI(t *testing.T) {
	a := newRiskAPI(t)
	ev := func(id, user, device string) string {
		return `{"id":"` + id + `","type":"payment","timestamp":"2026-12-04T10:00:00Z","user_id":"` + user + `","device_id":"` + device + `","amount":100}`
	}
	a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","event":`+ev("e0", "u1", "d1")+`}`).wantError(t, 404, "risk_ruleset_not_found", "ruleset")

	var v struct {
		Name    string `json:"name"`
		Version int    `json:"version"`
		Rules   int    `json:"rules"`
	}
	a.putRuleSet("pay", riskRules, "application/yaml").wantStatus(t, 201).decode(t, &v)
	if v.Name != "pay" || v.Version != 1 || v.Rules != 2 {
		t.Fatalf("put: %+v", v)
	}
	a.putRuleSet("pay", riskRules, "application/yaml").wantStatus(t, 200)
	bad := a.putRuleSet("pay", strings.Replace(riskRules, "user_count_1h > 2", "user_count_2h > 2", 1), "application/yaml").wantError(t, 422, "risk_ruleset_invalid", "")
	if !strings.Contains(bad.Message, "line 5") || !strings.Contains(bad.Message, `unknown feature "user_count_2h"`) {
		t.Fatalf("bad rule set message: %s", bad.Message)
	}
	a.putRuleSet("Bad Name", riskRules, "application/yaml").wantError(t, 400, "invalid_request", "name")
	a.putRuleSet("pay", riskRules, "image/png").wantError(t, 415, "unsupported_media_type", "")

	a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","event":`+ev("e0", "u1", "d1")+`}`).wantError(t, 409, "risk_ruleset_inactive", "ruleset")
	a.do("POST", "/v1/risk/rulesets/pay/activate", `{"version":7}`).wantError(t, 404, "risk_ruleset_not_found", "version")
	a.do("POST", "/v1/risk/rulesets/pay/activate", `{}`).wantError(t, 400, "invalid_request", "version")
	a.do("POST", "/v1/risk/rulesets/pay/activate", `{"version":1}`).wantStatus(t, 200)
	var h headResponse
	a.do("GET", "/v1/risk/rulesets/pay", "").wantStatus(t, 200).decode(t, &h)
	if h.Version != 1 || h.LatestVersion != 1 || h.ShadowVersion != 0 {
		t.Fatalf("head %+v", h)
	}

	var lc struct{ Changed, Size int }
	a.do("PUT", "/v1/risk/lists/device_black/items", `{"items":["d-bad","d-worse"]}`).wantStatus(t, 200).decode(t, &lc)
	if lc.Changed != 2 || lc.Size != 2 {
		t.Fatalf("list add: %+v", lc)
	}
	a.do("DELETE", "/v1/risk/lists/device_black/items", `{"items":["d-worse"]}`).wantStatus(t, 200).decode(t, &lc)
	if lc.Changed != 1 || lc.Size != 1 {
		t.Fatalf("list remove: %+v", lc)
	}
	a.do("PUT", "/v1/risk/lists/device_black/items", `{"items":[""]}`).wantError(t, 400, "invalid_request", "items[0]")

	var d decisionResponse
	for i, id := range []string{"e1", "e2", "e3"} {
		a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","explain":true,"event":`+ev(id, "u1", "d1")+`}`).wantStatus(t, 200).decode(t, &d)
		if d.Features["user_count_1h"] != float64(i+1) {
			t.Fatalf("%s: features %v", id, d.Features)
		}
	}
	if d.Decision != "review" || d.Score != 50 || len(d.Reasons) != 1 || d.Reasons[0].Reason != "velocity" || d.Version != 1 {
		t.Fatalf("third payment: %+v", d)
	}
	// Without explain, no features.
	d = decisionResponse{}
	a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","event":`+ev("e4", "u2", "d-bad")+`}`).wantStatus(t, 200).decode(t, &d)
	if d.Decision != "reject" || d.Features != nil {
		t.Fatalf("black list: %+v", d)
	}
	a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","event":`+ev("e4", "u3", "d-bad")+`}`).wantError(t, 409, "id_conflict", "event.id")
	a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","event":{"id":"x","type":"payment"}}`).wantError(t, 400, "invalid_request", "event.timestamp")
	a.do("POST", "/v1/risk/decisions", `{"ruleset":"pay","event":{},"extra":1}`).wantError(t, 400, "invalid_request", "extra")
	a.do("POST", "/v1/risk/decisions", `{"event":{}}`).wantError(t, 400, "invalid_request", "ruleset")

	var in struct {
		ID      string `json:"id"`
		Applied bool   `json:"applied"`
	}
	a.do("POST", "/v1/risk/events", `{"event":`+ev("i1", "u9", "d9")+`}`).wantStatus(t, 202).decode(t, &in)
	if !in.Applied {
		t.Fatalf("ingest: %+v", in)
	}
	a.do("POST", "/v1/risk/events", `{"event":`+ev("i1", "u9", "d9")+`}`).wantStatus(t, 202).decode(t, &in)
	if in.Applied {
		t.Fatal("duplicate ingest applied")
	}
}

// TestDecisionJSONIsEncodingJSON checks that the hand-written answer of POST
// /v1/risk/decisions is byte for byte what encoding/json writes for decisionResponse: with no
// reason, with several (actions included), with rule errors, and with event ids that need
// escaping.
func TestDecisionJSONIsEncodingJSON(t *testing.T) {
	ctx := context.Background()
	eng, err := risk.Open(ctx, risk.DiscardStore(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rules := `features:
  - {name: n, on: [payment], key: user_id, agg: count, window: 1h}
lists: [black]
rules:
  - {id: R1, when: features.n > 1, score: 50, reason: velocity}
  - {id: R2, when: 'in_list("black", event.device_id)', action: reject, reason: black_device}
  - {id: R3, when: event.amount > 100, score: 5, action: review, reason: big}
  - {id: R4, when: 'event.note startsWith "x"', score: 1, reason: note}
decision: {review_at: 40, reject_at: 80}
`
	sum, err := eng.PutRuleSet(ctx, "p", []byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Activate(ctx, "p", sum.Version, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.AddListItems(ctx, "black", []string{"d1"}); err != nil {
		t.Fatal(err)
	}
	for i, ev := range []string{
		`{"type":"payment","id":"a1","timestamp":"2026-12-04T10:00:00Z","user_id":"u1","amount":5,"note":"y"}`,
		`{"type":"payment","id":"a<2>&\"é\u2028","timestamp":"2026-12-04T10:00:01Z","user_id":"u1","amount":500,"device_id":"d1","note":"x"}`,
		`{"type":"payment","id":"a3","timestamp":"2026-12-04T10:00:02Z","user_id":"u1","note":7}`,
	} {
		e, err := risk.ParseEvent([]byte(ev))
		if err != nil {
			t.Fatal(err)
		}
		d, err := eng.DecideBrief(ctx, "p", e)
		if err != nil {
			t.Fatal(err)
		}
		x := d.Explain()
		want, err := json.Marshal(decisionResponse{Decision: d.Decision, Score: d.Score, Reasons: x.Reasons, RuleSet: d.RuleSet,
			Version: d.Version, EventID: d.EventID, Errors: d.Errors})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
		if i == 2 && (len(d.Errors) == 0 || len(x.Reasons) == 0) {
			t.Fatalf("event %d should have hit rules and failed R4: %+v", i, d)
		}
	}
}

// TestDecisionAnswerHasLength checks that a decision's answer, large (many reasons, past
// net/http's chunking threshold) or small, is sent with a Content-Length that matches it and
// not in chunks, and that reusing answer buffers leaves nothing of a larger answer in a
// smaller one.
func TestDecisionAnswerHasLength(t *testing.T) {
	a := newRiskAPI(t)
	var rules strings.Builder
	rules.WriteString("features:\n  - {name: n, on: [payment], key: user_id, agg: count, window: 1h}\nrules:\n")
	for i := range 80 {
		fmt.Fprintf(&rules, "  - {id: rule_%d, when: event.amount > 1000, score: 1, reason: a_long_enough_reason_code_%d}\n", i, i)
	}
	rules.WriteString("decision: {review_at: 40, reject_at: 1000}\n")
	a.putRuleSet("big", rules.String(), "application/yaml").wantStatus(t, 201)
	a.do("POST", "/v1/risk/rulesets/big/activate", `{"version":1}`).wantStatus(t, 200)
	for i, amount := range []int{5000, 10, 7000, 20} {
		ev := fmt.Sprintf(`{"id":"e%d","type":"payment","timestamp":"2026-12-04T10:00:00Z","user_id":"u1","amount":%d}`, i, amount)
		req, err := http.NewRequest("POST", a.srv.URL+"/v1/risk/decisions", strings.NewReader(`{"ruleset":"big","event":`+ev+`}`))
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("event %d: %d %s %v", i, res.StatusCode, body, err)
		}
		if len(res.TransferEncoding) != 0 || res.ContentLength != int64(len(body)) || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("event %d: transfer encoding %v, content length %d for %d bytes, type %q", i, res.TransferEncoding, res.ContentLength, len(body), res.Header.Get("Content-Type"))
		}
		var d decisionResponse
		if err := json.Unmarshal(body, &d); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, body)
		}
		wantReasons := 0
		if amount > 1000 {
			wantReasons = 80
			if len(body) <= 2048 {
				t.Fatalf("event %d: the answer (%d bytes) should be past the chunking threshold", i, len(body))
			}
		}
		if len(d.Reasons) != wantReasons || d.EventID != fmt.Sprintf("e%d", i) {
			t.Fatalf("event %d: %d reasons, event %q", i, len(d.Reasons), d.EventID)
		}
	}
}

// TestDecisionBodyLengths checks bodies read into a buffer of their declared size and
// bodies longer than that path takes (read as they arrive): both decide.
func TestDecisionBodyLengths(t *testing.T) {
	a := newRiskAPI(t)
	a.putRuleSet("pay", riskRules, "application/yaml").wantStatus(t, 201)
	a.do("POST", "/v1/risk/rulesets/pay/activate", `{"version":1}`).wantStatus(t, 200)
	for i, pad := range []int{0, exactBodyMax + 10} {
		body := `{"ruleset":"pay",` + strings.Repeat(" ", pad) + `"event":{"id":"L` + fmt.Sprint(i) +
			`","type":"payment","timestamp":"2026-12-04T10:00:00Z","user_id":"u1","amount":100}}`
		var d decisionResponse
		a.do("POST", "/v1/risk/decisions", body).wantStatus(t, 200).decode(t, &d)
		if d.EventID != "L"+fmt.Sprint(i) || d.Decision != "accept" {
			t.Fatalf("body of %d bytes: %+v", len(body), d)
		}
	}
}
