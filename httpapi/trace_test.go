package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/store/sqlite"
)

// tracedAPI is the API and its engine on SQLite, both tracing into an in-memory recorder.
func tracedAPI(t *testing.T) (*testAPI, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ledger.Open(context.Background(), st, ledger.Config{
		Logger: slog.New(slog.DiscardHandler), ExpiryInterval: time.Hour, TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := idem.New(st.(idem.Provider).Idempotency(), idem.Config{Logger: slog.New(slog.DiscardHandler)})
	api := NewServer(eng, Options{Logger: slog.New(slog.DiscardHandler), TracerProvider: tp, Idempotency: svc})
	api.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
		st.Close()
	})
	return &testAPI{t: t, eng: eng, srv: srv, api: api}, rec
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// spansNamed returns the ended spans called name.
func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func oneSpan(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	ss := spansNamed(rec, name)
	if len(ss) != 1 {
		var names []string
		for _, s := range rec.Ended() {
			names = append(names, s.Name())
		}
		t.Fatalf("%d spans named %q, want 1; spans: %q", len(ss), name, names)
	}
	return ss[0]
}

// TestTraceRequestSpanTree checks that a write request continues the client's trace and
// produces server span → ledger.write → ledger.commit, with the route, status and request id.
func TestTraceRequestSpanTree(t *testing.T) {
	a, rec := tracedAPI(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const clientSpan = "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/accounts", strings.NewReader(`{"id":"a","currency":"USD"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+clientSpan+"-01")
	req.Header.Set("X-Request-Id", "req-trace-1")
	req.Header.Set(IdempotencyKeyHeader, "trace-key")
	a.send(req).wantStatus(t, 201)

	srv := oneSpan(t, rec, "POST /v1/accounts")
	write := oneSpan(t, rec, "ledger.write")
	commit := oneSpan(t, rec, "ledger.commit")
	if got := srv.SpanContext().TraceID().String(); got != traceID {
		t.Errorf("server span trace %s, want the client's %s", got, traceID)
	}
	if got := srv.Parent().SpanID().String(); got != clientSpan || !srv.Parent().IsRemote() {
		t.Errorf("server span parent %s (remote %v), want the client's span %s", got, srv.Parent().IsRemote(), clientSpan)
	}
	if srv.SpanKind() != trace.SpanKindServer {
		t.Errorf("server span kind %v", srv.SpanKind())
	}
	if write.Parent().SpanID() != srv.SpanContext().SpanID() {
		t.Errorf("ledger.write is not the server span's child")
	}
	if commit.Parent().SpanID() != write.SpanContext().SpanID() || commit.SpanContext().TraceID() != srv.SpanContext().TraceID() {
		t.Errorf("ledger.commit is not ledger.write's child in the same trace")
	}
	if len(write.Links()) != 0 {
		t.Errorf("ledger.write links %v, want none (the commit is its child)", write.Links())
	}
	for k, want := range map[attribute.Key]attribute.Value{
		"http.request.method":       attribute.StringValue("POST"),
		"http.route":                attribute.StringValue("/v1/accounts"),
		"http.response.status_code": attribute.IntValue(201),
		"url.path":                  attribute.StringValue("/v1/accounts"),
		"fincore.request_id":        attribute.StringValue("req-trace-1"),
		"fincore.idempotency":       attribute.StringValue("executed"),
	} {
		if got := attrs(srv)[k]; got != want {
			t.Errorf("server span %s = %v, want %v", k, got.Emit(), want.Emit())
		}
	}
	if srv.Status().Code != codes.Unset {
		t.Errorf("server span status %v, want unset for a 201", srv.Status())
	}
	ca := attrs(commit)
	if ca["ledger.accounts_created"].AsInt64() != 1 || ca["ledger.requests"].AsInt64() != 1 {
		t.Errorf("commit attributes %v", commit.Attributes())
	}
	// The commit ends before the write span, which ends before the server span.
	if commit.EndTime().After(write.EndTime()) || write.EndTime().After(srv.EndTime()) {
		t.Errorf("spans do not nest in time")
	}
}

// TestTraceOutcomes checks the span of requests that no route matched, that failed on the
// client's side and that failed on the server's.
func TestTraceOutcomes(t *testing.T) {
	a, rec := tracedAPI(t)
	a.do("GET", "/no/such", "").wantStatus(t, 404)
	a.do("GET", "/v1/accounts/nope", "").wantStatus(t, 404)
	a.do("GET", "/boom", "").wantStatus(t, 500)

	unmatched := oneSpan(t, rec, "GET")
	if _, ok := attrs(unmatched)["http.route"]; ok {
		t.Errorf("unmatched request has http.route")
	}
	if attrs(unmatched)["fincore.error_code"].AsString() != "route_not_found" || unmatched.Status().Code != codes.Unset {
		t.Errorf("unmatched: %v %v", unmatched.Attributes(), unmatched.Status())
	}
	notFound := oneSpan(t, rec, "GET /v1/accounts/{id}")
	if attrs(notFound)["http.route"].AsString() != "/v1/accounts/{id}" || attrs(notFound)["http.response.status_code"].AsInt64() != 404 {
		t.Errorf("account not found: %v", notFound.Attributes())
	}
	if notFound.Parent().IsValid() {
		t.Errorf("a request without traceparent starts a new trace, got parent %v", notFound.Parent())
	}
	boom := oneSpan(t, rec, "GET /boom")
	if boom.Status().Code != codes.Error || attrs(boom)["http.response.status_code"].AsInt64() != 500 {
		t.Errorf("panic: status %v, attributes %v", boom.Status(), boom.Attributes())
	}
	if ev := boom.Events(); len(ev) != 1 || ev[0].Name != "panic" {
		t.Errorf("panic events %v", ev)
	}
	// A method outside the standard set does not become a span name.
	a.do("BREW", "/v1/accounts", "").wantStatus(t, 405)
	oneSpan(t, rec, "_OTHER")
}

// TestTraceGroupCommitLinks sends concurrent writes, which the engine commits in groups, and
// checks that every write's trace leads to the commit that wrote it: the commit span is the
// write span's child or linked from it, and the commit links back to each write of its group.
func TestTraceGroupCommitLinks(t *testing.T) {
	a, rec := tracedAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := a.srv.Client().Post(a.srv.URL+"/v1/transfers", "application/json",
				strings.NewReader(transferBody(fmt.Sprint("t", i), "a", "b", 1)))
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode != 201 {
				t.Errorf("transfer %d: %d", i, res.StatusCode)
			}
		})
	}
	wg.Wait()
	commits := make(map[trace.SpanID]sdktrace.ReadOnlySpan)
	for _, c := range spansNamed(rec, "ledger.commit") {
		commits[c.SpanContext().SpanID()] = c
	}
	writes := spansNamed(rec, "ledger.write")
	if len(writes) != n+2 {
		t.Fatalf("%d write spans, want %d", len(writes), n+2)
	}
	grouped := 0
	for _, w := range writes {
		var commit sdktrace.ReadOnlySpan
		for _, c := range commits {
			if c.Parent().SpanID() == w.SpanContext().SpanID() {
				commit = c
			}
		}
		if commit == nil {
			if len(w.Links()) != 1 {
				t.Fatalf("write span with no child commit has links %v", w.Links())
			}
			commit = commits[w.Links()[0].SpanContext.SpanID()]
			if commit == nil {
				t.Fatalf("write span links to %v, not a commit span", w.Links()[0].SpanContext.SpanID())
			}
			grouped++
			linked := false
			for _, l := range commit.Links() {
				linked = linked || l.SpanContext.SpanID() == w.SpanContext().SpanID()
			}
			if !linked {
				t.Errorf("commit %v does not link back to write %v", commit.SpanContext().SpanID(), w.SpanContext().SpanID())
			}
		}
	}
	t.Logf("%d commits for %d writes; %d writes reached their commit by a link", len(commits), len(writes), grouped)
	var reqs int64
	for _, c := range commits {
		reqs += attrs(c)["ledger.requests"].AsInt64()
		if got := int64(len(c.Links())) + 1; got != attrs(c)["ledger.requests"].AsInt64() {
			t.Errorf("commit of %d requests has parent + %d links", attrs(c)["ledger.requests"].AsInt64(), len(c.Links()))
		}
	}
	if reqs != n+2 {
		t.Errorf("commits cover %d requests, want %d", reqs, n+2)
	}
}
