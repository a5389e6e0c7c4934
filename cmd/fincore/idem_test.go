package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServeIdempotencyKey checks that `fincore serve` stores Idempotency-Key responses in its
// storage (a replay survives a restart) and counts the outcomes in /metrics.
func TestServeIdempotencyKey(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, "--data", data)
	defer func() { srv.kill() }()
	post := func(body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.url("/v1/accounts"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "serve-key-1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := post(`{"id":"a","currency":"CNY"}`); r.StatusCode != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v", r.StatusCode, r.Header)
	}
	srv.kill()
	srv.start()
	if r := post(`{"id":"a","currency":"CNY"}`); r.StatusCode != 201 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay after a restart: %d %v", r.StatusCode, r.Header)
	}
	if r := post(`{"id":"b","currency":"CNY"}`); r.StatusCode != 409 {
		t.Fatalf("conflict: %d", r.StatusCode)
	}
	resp, err := client.Get(srv.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`fincore_idempotency_requests_total{outcome="replayed"} 1`,
		`fincore_idempotency_requests_total{outcome="conflict"} 1`,
	} {
		if !strings.Contains(string(b), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
