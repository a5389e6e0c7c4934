package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeMetricsAndReady checks that `fincore serve` wires /readyz and /metrics to its
// engine and API (platform/obs tests the metrics themselves).
func TestServeMetricsAndReady(t *testing.T) {
	// Without the simulated banks, the cashier creates no accounts at start: the ledger
	// counters below are the test's alone.
	srv := startServer(t, "--data", t.TempDir(), "--no-sim-banks")
	defer srv.kill()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get(srv.url(path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if st, body := get("/readyz"); st != http.StatusOK || strings.TrimSpace(body) != `{"status":"ready"}` {
		t.Fatalf("GET /readyz: %d %s", st, body)
	}
	if st, body, err := doJSON("POST", srv.url("/v1/accounts"), map[string]any{"id": "a", "currency": "CNY"}); err != nil || st != 201 {
		t.Fatalf("create account: %d %s %v", st, body, err)
	}
	st, body := get("/metrics")
	if st != http.StatusOK {
		t.Fatalf("GET /metrics: %d", st)
	}
	for _, want := range []string{
		"\nfincore_ledger_writer_up 1\n",
		"\nfincore_ledger_accounts_created_total 9\n", // and the credit chart's 8 accounts of CNY
		"\n" + `fincore_http_requests_total{method="POST",route="POST /v1/accounts",status="201"} 1` + "\n",
		"\n" + `fincore_http_requests_total{method="GET",route="GET /readyz",status="200"} 1` + "\n",
		"\ngo_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
}
