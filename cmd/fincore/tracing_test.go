package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestServeExportsTraces runs `fincore serve --otlp-endpoint` against a local collector and
// checks that a request's spans are posted to it in the client's trace when the server shuts
// down, and that the request's log line carries the trace id.
func TestServeExportsTraces(t *testing.T) {
	var mu sync.Mutex
	var posts [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		mu.Lock()
		posts = append(posts, b)
		mu.Unlock()
	}))
	defer collector.Close()

	srv := startServer(t, "--data", t.TempDir(), "--log-level", "info", "--otlp-endpoint", collector.URL)
	defer srv.kill()
	const traceID = "5bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("POST", srv.url("/v1/accounts"), strings.NewReader(`{"id":"a","currency":"CNY"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create account: %d", resp.StatusCode)
	}
	// A graceful stop flushes the spans still batched.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()

	mu.Lock()
	all := bytes.Join(posts, nil)
	mu.Unlock()
	id, _ := hex.DecodeString(traceID)
	for _, want := range [][]byte{id, []byte("POST /v1/accounts"), []byte("ledger.commit"), []byte("fincore")} {
		if !bytes.Contains(all, want) {
			t.Errorf("the collector received no %q in %d posts", want, len(posts))
		}
	}
	if !strings.Contains(srv.logs.String(), `"trace_id":"`+traceID+`"`) {
		t.Errorf("no log line carries the trace id:\n%s", srv.logs)
	}
}
