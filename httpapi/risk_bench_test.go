package httpapi

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fincore/fincore/risk"
)

// BenchmarkDecisionRequest measures the HTTP side of POST /v1/risk/decisions in process
// (middleware, request decoding, event parsing, the answer), with a one-rule rule set so that
// the engine's own work stays small, and without net/http's connection handling.
func BenchmarkDecisionRequest(b *testing.B) {
	ctx := context.Background()
	eng, err := risk.Open(ctx, risk.DiscardStore(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	sum, err := eng.PutRuleSet(ctx, "pay", []byte(riskRules))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Activate(ctx, "pay", sum.Version, 0); err != nil {
		b.Fatal(err)
	}
	s := NewServer(nil, Options{Logger: slog.New(slog.DiscardHandler)})
	s.RegisterRisk(eng)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		body := `{"ruleset":"pay","event":{"type":"payment","id":"e` + strconv.Itoa(i) + `","timestamp":"2026-12-04T10:00:00Z","user_id":"u` +
			strconv.Itoa(i%1000) + `","device_id":"d1","card_id":"c7","ip":"10.1.2.3","merchant_id":"m9","amount":12345,"channel":"web"}}`
		req := httptest.NewRequest("POST", "/v1/risk/decisions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}
