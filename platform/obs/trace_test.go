package obs_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/store/sqlite"
)

// collector is an OTLP/HTTP trace receiver on a local test server.
type collector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
	spans []*tracepb.Span
	svc   []string // service.name of each resource received
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("collector got %s %s %q: %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("collector: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.paths = append(c.paths, r.URL.Path)
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					c.svc = append(c.svc, kv.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				c.spans = append(c.spans, ss.Spans...)
			}
		}
		c.mu.Unlock()
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) names() map[string]*tracepb.Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]*tracepb.Span)
	for _, s := range c.spans {
		m[s.Name] = s
	}
	return m
}

// tracedServer serves the API on SQLite with tracing t and a JSON log into logs.
func tracedServer(t *testing.T, tr *obs.Tracing, logs io.Writer) *httptest.Server {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(obs.LogHandler(slog.NewJSONHandler(logs, nil)))
	eng, err := ledger.Open(context.Background(), st, ledger.Config{Logger: log, TracerProvider: tr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewServer(eng, httpapi.Options{Logger: log, TracerProvider: tr}))
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
		st.Close()
	})
	return srv
}

func post(t *testing.T, srv *httptest.Server, path, body, traceparent string) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

// TestTracingExportsOverOTLP turns tracing on with a real local collector, serves a request
// that carries a client's traceparent and checks that its spans reach the collector over
// OTLP/HTTP on /v1/traces, in the client's trace, and that the request's log line carries the
// trace's ids.
func TestTracingExportsOverOTLP(t *testing.T) {
	c := newCollector(t)
	tr, err := obs.NewTracing(obs.TracingOptions{Endpoint: c.srv.URL, SampleRatio: 1, ServiceName: "fincore-test"})
	if err != nil {
		t.Fatal(err)
	}
	// A file takes concurrent writes from the server's goroutines.
	logs, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	srv := tracedServer(t, tr, logs)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	post(t, srv, "/v1/accounts", `{"id":"a","currency":"USD"}`, "00-"+traceID+"-b7ad6b7169203331-01")
	if err := tr.Shutdown(context.Background()); err != nil { // flushes the batch
		t.Fatal(err)
	}
	got := c.names()
	for _, name := range []string{"POST /v1/accounts", "ledger.write", "ledger.commit"} {
		s := got[name]
		if s == nil {
			t.Fatalf("collector lacks span %q; got %v", name, got)
		}
		if hex.EncodeToString(s.TraceId) != traceID {
			t.Errorf("%s in trace %x, want %s", name, s.TraceId, traceID)
		}
	}
	c.mu.Lock()
	if len(c.paths) == 0 || c.paths[0] != "/v1/traces" || c.svc[0] != "fincore-test" {
		t.Errorf("posted to %v with service %v", c.paths, c.svc)
	}
	c.mu.Unlock()

	var line map[string]any
	logged, err := os.ReadFile(logs.Name())
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.Lines(string(logged)) {
		if strings.Contains(l, `"msg":"http request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	srvSpan := got["POST /v1/accounts"]
	if line["trace_id"] != traceID || line["span_id"] != hex.EncodeToString(srvSpan.SpanId) {
		t.Errorf("request log line %v, want trace_id %s span_id %x", line, traceID, srvSpan.SpanId)
	}
}

// TestTracingSampling checks that a ratio of 0 records no new trace but follows a client that
// sampled its own, and that with no endpoint nothing is recorded or sent.
func TestTracingSampling(t *testing.T) {
	c := newCollector(t)
	tr, err := obs.NewTracing(obs.TracingOptions{Endpoint: c.srv.URL + "/custom/path", SampleRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	srv := tracedServer(t, tr, io.Discard)
	post(t, srv, "/v1/accounts", `{"id":"a","currency":"USD"}`, "")
	post(t, srv, "/v1/accounts", `{"id":"b","currency":"USD"}`, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	post(t, srv, "/v1/accounts", `{"id":"c","currency":"USD"}`, "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	traces := map[string]bool{}
	for _, s := range c.spans {
		traces[hex.EncodeToString(s.TraceId)] = true
	}
	if len(traces) != 1 || !traces["0af7651916cd43dd8448eb211c80319c"] {
		t.Errorf("exported traces %v, want only the client-sampled one", traces)
	}
	if len(c.paths) == 0 || c.paths[0] != "/custom/path" {
		t.Errorf("posted to %v, want the endpoint's own path", c.paths)
	}

	off, err := obs.NewTracing(obs.TracingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := off.Tracer("x").Start(context.Background(), "nothing")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("tracing off recorded a span")
	}
	span.End()
}

func TestTracingOptionsRefused(t *testing.T) {
	for _, o := range []obs.TracingOptions{
		{Endpoint: "127.0.0.1:4318", SampleRatio: 1},
		{Endpoint: "ftp://collector:4318", SampleRatio: 1},
		{Endpoint: "http://", SampleRatio: 1},
		{Endpoint: "http://collector:4318?x=1", SampleRatio: 1},
		{Endpoint: "http://collector:4318", SampleRatio: 1.5},
		{Endpoint: "http://collector:4318", SampleRatio: -0.1},
	} {
		if _, err := obs.NewTracing(o); err == nil {
			t.Errorf("NewTracing(%+v) accepted", o)
		}
	}
}

// TestLogHandlerWithoutSpan checks that records logged with no span are unchanged.
func TestLogHandlerWithoutSpan(t *testing.T) {
	var b bytes.Buffer
	slog.New(obs.LogHandler(slog.NewJSONHandler(&b, nil))).With("k", "v").InfoContext(context.Background(), "hello")
	if s := b.String(); strings.Contains(s, "trace_id") || !strings.Contains(s, `"k":"v"`) {
		t.Errorf("log line %s", s)
	}
}
