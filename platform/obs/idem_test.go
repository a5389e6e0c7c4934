package obs_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/store/sqlite"
)

// TestIdempotencyMetrics checks that every Idempotency-Key outcome is counted, and that each
// series exists before its first request.
func TestIdempotencyMetrics(t *testing.T) {
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	m := obs.New()
	eng, err := ledger.Open(context.Background(), st, ledger.Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	svc := idem.New(st.(idem.Provider).Idempotency(), idem.Config{Logger: log, Observe: m.ObserveIdempotency})
	api := httpapi.NewServer(eng, httpapi.Options{Logger: log, Idempotency: svc})
	api.Handle("GET /metrics", m.Handler())
	srv := httptest.NewServer(api)
	e := &env{t: t, st: st, eng: eng, srv: srv}
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
		st.Close()
	})
	const name = "fincore_idempotency_requests_total"
	fams := e.scrape()
	for _, o := range []string{"executed", "replayed", "conflict", "in_progress"} {
		if v := value(t, fams, name, "outcome="+o); v != 0 {
			t.Fatalf("%s{%s} = %v before any request", name, o, v)
		}
	}
	post := func(body string, want int) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/v1/accounts", strings.NewReader(body))
		req.Header.Set("Idempotency-Key", "k1")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	post(`{"id":"a","currency":"USD"}`, 201)
	post(`{"id":"a","currency":"USD"}`, 201)
	post(`{"id":"a","currency":"USD"}`, 201)
	post(`{"id":"b","currency":"USD"}`, 409)
	fams = e.scrape()
	for o, want := range map[string]float64{"executed": 1, "replayed": 2, "conflict": 1, "in_progress": 0} {
		if v := value(t, fams, name, "outcome="+o); v != want {
			t.Errorf("%s{%s} = %v, want %v", name, o, v, want)
		}
	}
}
