package obs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/store/sqlite"
)

// env is an engine on SQLite served over HTTP with metrics and readiness wired as
// cmd/fincore wires them.
type env struct {
	t   *testing.T
	st  ledger.Store
	eng *ledger.Engine
	srv *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	m := obs.New()
	eng, err := ledger.Open(context.Background(), st, ledger.Config{Logger: log, Observer: m})
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	m.WatchEngine(eng)
	api := httpapi.NewServer(eng, httpapi.Options{Logger: log, Observe: m.ObserveHTTP})
	api.Handle("GET /metrics", m.Handler())
	api.Handle("GET /readyz", obs.Ready(api, log, obs.LedgerReady(eng, st)))
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, eng: eng, srv: srv}
}

// do sends a request and returns the status and body.
func (e *env) do(method, path, body string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (e *env) want(status int, method, path, body string) string {
	e.t.Helper()
	got, b := e.do(method, path, body)
	if got != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, status, b)
	}
	return b
}

// scrape reads /metrics and parses it.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		e.t.Fatalf("GET /metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		e.t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metric finds the sample of family name whose labels are exactly labels ("k=v" pairs).
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric family %s", name)
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for i, l := range m.Label { // the text format sorts labels by name
			if l.GetName()+"="+l.GetValue() != labels[i] {
				continue next
			}
		}
		return m
	}
	t.Fatalf("no sample %s%v", name, labels)
	return nil
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := metric(t, fams, name, labels...)
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	t.Helper()
	h := metric(t, fams, name, labels...).Histogram
	if h == nil {
		t.Fatalf("%s is not a histogram", name)
	}
	return h
}

func transferBody(id string, amount int64) string {
	return fmt.Sprintf(`{"id":%q,"debit_account_id":"a","credit_account_id":"b","amount":%d,"currency":"USD"}`, id, amount)
}

// TestMetricsCountRequestsAndCommits drives the API and checks that every HTTP and ledger
// metric moved by exactly what was done.
func TestMetricsCountRequestsAndCommits(t *testing.T) {
	e := newEnv(t)
	e.want(201, "POST", "/v1/accounts", `{"id":"a","currency":"USD"}`)
	e.want(201, "POST", "/v1/accounts", `{"id":"b","currency":"USD"}`)
	const transfers = 5
	for i := range transfers {
		e.want(201, "POST", "/v1/transfers", transferBody(fmt.Sprintf("t%d", i), int64(100+i)))
	}
	e.want(200, "POST", "/v1/transfers", transferBody("t0", 100)) // idempotent replay: no write
	e.want(400, "POST", "/v1/transfers", `{"id":"bad"}`)          // refused before the ledger
	e.want(200, "GET", "/v1/accounts/a", "")
	e.want(200, "GET", "/v1/accounts/b", "")
	e.want(404, "GET", "/no/such/path", "")
	e.want(405, "BREW", "/v1/transfers", "")

	fams := e.scrape()
	const req, dur = "fincore_http_requests_total", "fincore_http_request_duration_seconds"
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"method=POST", "route=POST /v1/accounts", "status=201"}, 2},
		{[]string{"method=POST", "route=POST /v1/transfers", "status=201"}, transfers},
		{[]string{"method=POST", "route=POST /v1/transfers", "status=200"}, 1},
		{[]string{"method=POST", "route=POST /v1/transfers", "status=400"}, 1},
		// The route pattern, not the path: both accounts count under one series.
		{[]string{"method=GET", "route=GET /v1/accounts/{id}", "status=200"}, 2},
		{[]string{"method=GET", "route=unmatched", "status=404"}, 1},
		{[]string{"method=OTHER", "route=unmatched", "status=405"}, 1},
	} {
		if got := value(t, fams, req, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", req, c.labels, got, c.want)
		}
	}
	for _, m := range fams[req].Metric {
		for _, l := range m.Label {
			if strings.Contains(l.GetValue(), "/v1/accounts/a") || strings.Contains(l.GetValue(), "/no/such") {
				t.Errorf("raw path in a label: %v", m.Label)
			}
		}
	}
	if h := histogram(t, fams, dur, "method=POST", "route=POST /v1/transfers"); h.GetSampleCount() != transfers+2 {
		t.Errorf("%s count %d, want %d", dur, h.GetSampleCount(), transfers+2)
	}

	// Requests are sequential, so each write is its own group; the replay writes nothing.
	const groups = 2 + transfers
	for _, c := range []struct {
		name string
		want float64
	}{
		{"fincore_ledger_records_total", transfers},
		{"fincore_ledger_accounts_created_total", 2},
		{"fincore_ledger_groups_total", groups},
		{"fincore_ledger_commit_failures_total", 0},
		{"fincore_ledger_writer_up", 1},
		{"fincore_ledger_queue_depth", 0},
	} {
		if got := value(t, fams, c.name); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if st := e.eng.Stats(); float64(st.Records) != transfers || st.Groups != groups {
		t.Errorf("engine stats %+v disagree with the metrics", st)
	}
	if h := histogram(t, fams, "fincore_ledger_group_inputs"); h.GetSampleCount() != groups || h.GetSampleSum() != groups {
		t.Errorf("group_inputs count %d sum %v, want %d inputs in %d groups", h.GetSampleCount(), h.GetSampleSum(), groups, groups)
	}
	if h := histogram(t, fams, "fincore_ledger_commit_duration_seconds"); h.GetSampleCount() != groups || h.GetSampleSum() <= 0 {
		t.Errorf("commit_duration count %d sum %v, want %d commits taking some time", h.GetSampleCount(), h.GetSampleSum(), groups)
	}

	// An atomic batch of three is one input group of three records.
	e.want(201, "POST", "/v1/transfer_batches",
		`{"atomic":true,"transfers":[`+transferBody("b0", 1)+","+transferBody("b1", 2)+","+transferBody("b2", 3)+`]}`)
	fams = e.scrape()
	if got := value(t, fams, "fincore_ledger_records_total"); got != transfers+3 {
		t.Errorf("records_total = %v after a batch of 3, want %v", got, transfers+3)
	}
	if h := histogram(t, fams, "fincore_ledger_group_inputs"); h.GetSampleCount() != groups+1 || h.GetSampleSum() != groups+3 {
		t.Errorf("group_inputs count %d sum %v after a batch of 3", h.GetSampleCount(), h.GetSampleSum())
	}
	// The first scrape is counted once it has been answered.
	if got := value(t, fams, req, "method=GET", "route=GET /metrics", "status=200"); got != 1 {
		t.Errorf("GET /metrics counted %v times, want 1", got)
	}

	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes"} {
		if fams[name] == nil {
			t.Errorf("no Go runtime metric %s", name)
		}
	}
	if runtime.GOOS == "linux" && fams["process_cpu_seconds_total"] == nil {
		t.Error("no process metrics")
	}
}

// TestReadyz checks that /readyz answers ready while the engine can write and storage
// answers, and 503 in the error envelope once either stops.
func TestReadyz(t *testing.T) {
	for _, c := range []struct {
		name     string
		breakIt  func(e *env)
		writerUp float64
		code     string // the readiness answer's error code
	}{
		{"fenced", func(e *env) {
			// A newer writer takes the ledger; the engine learns it on its next commit.
			if _, err := e.st.AcquireWriter(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			body := e.want(503, "POST", "/v1/accounts", `{"id":"c","currency":"USD"}`)
			if !strings.Contains(body, `"not_leader"`) {
				t.Errorf("write after fencing: %s", body)
			}
		}, 0, "not_leader"},
		{"engine closed", func(e *env) { e.eng.Close() }, 0, "unavailable"},
		{"storage closed", func(e *env) { e.st.Close() }, 1, "unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.want(201, "POST", "/v1/accounts", `{"id":"a","currency":"USD"}`)
			if body := e.want(200, "GET", "/readyz", ""); strings.TrimSpace(body) != `{"status":"ready"}` {
				t.Fatalf("ready body %s", body)
			}
			c.breakIt(e)

			resp, err := e.srv.Client().Get(e.srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env struct {
				Error struct{ Type, Code, Message string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 503 || env.Error.Code != c.code || env.Error.Type != "unavailable_error" ||
				env.Error.Message == "" || resp.Header.Get("Retry-After") == "" {
				t.Errorf("not ready: %d %+v (Retry-After %q)", resp.StatusCode, env.Error, resp.Header.Get("Retry-After"))
			}
			if strings.Contains(strings.ToLower(env.Error.Message), "sql") {
				t.Errorf("storage detail leaked: %q", env.Error.Message)
			}
			fams := e.scrape()
			if got := value(t, fams, "fincore_ledger_writer_up"); got != c.writerUp {
				t.Errorf("writer_up = %v, want %v", got, c.writerUp)
			}
			if got := value(t, fams, "fincore_http_requests_total", "method=GET", "route=GET /readyz", "status=503"); got != 1 {
				t.Errorf("503 readiness answers counted %v, want 1", got)
			}
		})
	}
}

// TestFencedCommitCountsAsFailure checks that the commit the fenced engine attempted counts
// as a failure and not as a group.
func TestFencedCommitCountsAsFailure(t *testing.T) {
	e := newEnv(t)
	e.want(201, "POST", "/v1/accounts", `{"id":"a","currency":"USD"}`)
	if _, err := e.st.AcquireWriter(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	e.want(503, "POST", "/v1/accounts", `{"id":"b","currency":"USD"}`)
	fams := e.scrape()
	if got := value(t, fams, "fincore_ledger_commit_failures_total"); got != 1 {
		t.Errorf("commit_failures_total = %v, want 1", got)
	}
	if got := value(t, fams, "fincore_ledger_groups_total"); got != 1 {
		t.Errorf("groups_total = %v, want 1", got)
	}
	if got := value(t, fams, "fincore_ledger_accounts_created_total"); got != 1 {
		t.Errorf("accounts_created_total = %v, want 1", got)
	}
}
