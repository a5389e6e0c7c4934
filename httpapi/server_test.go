package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/sqlite"
)

func TestRouteNotFoundAndMethodNotAllowed(t *testing.T) {
	a := newTestAPI(t)
	for _, path := range []string{"/", "/v1", "/v1/nothing", "/v1/accounts/a/transfers/extra", "/v2/accounts"} {
		a.do("GET", path, "").wantError(t, 404, "route_not_found", "")
	}
	cases := []struct{ method, path, allow string }{
		{"DELETE", "/v1/accounts/x", "GET, HEAD"},
		{"GET", "/v1/accounts", "POST"},
		{"GET", "/v1/transfer_batches", "POST"},
		{"PUT", "/v1/transfers/x/post", "POST"},
		{"POST", "/v1/transfers/x", "GET, HEAD"},
		{"POST", "/healthz", "GET, HEAD"},
	}
	for _, c := range cases {
		r := a.do(c.method, c.path, "")
		r.wantError(t, 405, "method_not_allowed", "")
		if got := r.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

func TestHealthzAndOpenAPIServed(t *testing.T) {
	a := newTestAPI(t)
	var h map[string]string
	a.do("GET", "/healthz", "").wantStatus(t, 200).decode(t, &h)
	if h["status"] != "ok" {
		t.Fatalf("healthz %v", h)
	}
	var doc map[string]any
	a.do("GET", "/openapi.json", "").wantStatus(t, 200).decode(t, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi %v", doc["openapi"])
	}
}

// logLines parses the JSON log lines with message msg.
func logLines(t *testing.T, logs string, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestIDAndLog(t *testing.T) {
	a := newTestAPI(t)
	req, _ := http.NewRequest("POST", a.srv.URL+"/v1/accounts", strings.NewReader(`{"id":"a","currency":"USD"}`))
	req.Header.Set("X-Request-Id", "client-req.1")
	r := a.send(req).wantStatus(t, 201)
	if got := r.Header.Get("X-Request-Id"); got != "client-req.1" {
		t.Fatalf("X-Request-Id %q", got)
	}
	req, _ = http.NewRequest("GET", a.srv.URL+"/v1/accounts/nope", nil)
	req.Header.Set("X-Request-Id", "has spaces and \u00e9")
	r = a.send(req)
	generated := r.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^req_[0-9a-f]{24}$`).MatchString(generated) {
		t.Fatalf("generated X-Request-Id %q", generated)
	}
	lines := logLines(t, a.log.String(), "http request")
	if len(lines) != 2 {
		t.Fatalf("%d request log lines:\n%s", len(lines), a.log.String())
	}
	l := lines[0]
	if l["method"] != "POST" || l["route"] != "POST /v1/accounts" || l["status"] != float64(201) ||
		l["request_id"] != "client-req.1" || l["duration"] == nil {
		t.Fatalf("log line %v", l)
	}
	l = lines[1]
	if l["route"] != "GET /v1/accounts/{id}" || l["status"] != float64(404) || l["request_id"] != generated || l["code"] != "account_not_found" {
		t.Fatalf("log line %v", l)
	}
}

// faultyStore injects storage failures whose messages must never reach a client.
type faultyStore struct {
	ledger.Store
	failCommit, failReads atomic.Bool
	gate                  chan struct{} // if set, Commit waits for it
	entered               chan struct{} // signalled when Commit starts waiting
}

var errSecret = errors.New(`sqlite: SELECT secret FROM accounts: disk I/O error at /var/lib/fincore`)

func (f *faultyStore) Commit(ctx context.Context, token int64, b *ledger.Batch) error {
	if f.gate != nil {
		f.entered <- struct{}{}
		<-f.gate
	}
	if f.failCommit.Load() {
		return errSecret
	}
	return f.Store.Commit(ctx, token, b)
}

func (f *faultyStore) GetAccount(ctx context.Context, id string) (*ledger.Account, error) {
	if f.failReads.Load() {
		return nil, errSecret
	}
	return f.Store.GetAccount(ctx, id)
}

func newFaultyAPI(t *testing.T) (*testAPI, *faultyStore) {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyStore{Store: st}
	return newTestAPIOn(t, f, ledger.Config{}), f
}

func TestStorageFailuresAreHidden(t *testing.T) {
	a, f := newFaultyAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})

	f.failReads.Store(true)
	r := a.do("GET", "/v1/accounts/a", "")
	r.wantError(t, 500, "internal_error", "")
	if strings.Contains(string(r.Body), "SELECT") || strings.Contains(string(r.Body), "/var/lib") {
		t.Fatalf("internal detail leaked: %s", r.Body)
	}
	if !strings.Contains(a.log.String(), "SELECT secret") {
		t.Fatalf("the real error was not logged:\n%s", a.log.String())
	}
	f.failReads.Store(false)

	f.failCommit.Store(true)
	r = a.do("POST", "/v1/transfers", transferBody("t1", "a", "b", 5))
	r.wantError(t, 503, "unavailable", "")
	if r.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if strings.Contains(string(r.Body), "SELECT") {
		t.Fatalf("internal detail leaked: %s", r.Body)
	}
	f.failCommit.Store(false)
	// The engine reloads its state after a failed commit; the group it had prepared
	// meanwhile may be refused with 503 too. Clients retry, idempotently by id.
	for attempt := 0; ; attempt++ {
		r = a.do("POST", "/v1/transfers", transferBody("t1", "a", "b", 5))
		if r.Status != 503 || attempt == 5 {
			break
		}
	}
	r.wantStatus(t, 201)
	if b := a.balances("a"); b != (ledger.Balances{DebitsPosted: 5}) {
		t.Fatalf("a %+v", b)
	}
}

func TestCancelledRequest(t *testing.T) {
	a, f := newFaultyAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	f.gate, f.entered = make(chan struct{}), make(chan struct{})

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-f.entered // the transfer is being committed
		cancel()
	}()
	req := httptest.NewRequest("POST", "/v1/transfers", strings.NewReader(transferBody("t1", "a", "b", 5))).WithContext(ctx)
	rec := httptest.NewRecorder()
	a.api.ServeHTTP(rec, req)
	r := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	r.wantError(t, 503, "unavailable", "")

	// The commit completes after the client gave up; a retry with the same id tells.
	f.gate <- struct{}{}
	f.gate = nil
	a.do("POST", "/v1/transfers", transferBody("t1", "a", "b", 5)).wantStatus(t, 200)
}

func TestPanicRecoveredAndExtraRoutes(t *testing.T) {
	a := newTestAPI(t)
	a.api.HandleFunc("GET /v1/boom", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	a.api.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"id": r.PathValue("id"), "request_id": RequestID(r.Context())})
	})
	a.do("GET", "/v1/boom", "").wantError(t, 500, "internal_error", "")
	var thing map[string]string
	a.do("GET", "/v1/things/x1", "").wantStatus(t, 200).decode(t, &thing)
	if thing["id"] != "x1" || thing["request_id"] == "" {
		t.Fatalf("thing %v", thing)
	}
	a.do("DELETE", "/v1/things/x1", "").wantError(t, 405, "method_not_allowed", "")
	if !strings.Contains(a.log.String(), "panic serving request") {
		t.Fatal("panic not logged")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Handle accepted a pattern without a method")
		}
	}()
	a.api.HandleFunc("/v1/nomethod", func(http.ResponseWriter, *http.Request) {})
}

func TestMaxBodyBytesOption(t *testing.T) {
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ledger.Open(context.Background(), st, ledger.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); st.Close() })
	h := New(eng, Options{MaxBodyBytes: 64})
	for _, body := range []string{`{"id":"a","currency":"USD"}`, `{"id":"b","currency":"USD","metadata":{"k":"` + strings.Repeat("v", 64) + `"}}`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/accounts", strings.NewReader(body)))
		r := response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		if len(body) <= 64 {
			r.wantStatus(t, 201)
			continue
		}
		if e := r.wantError(t, 413, "request_too_large", ""); !strings.Contains(e.Message, "64 bytes") {
			t.Fatalf("message %q", e.Message)
		}
	}
}

func TestObserveHook(t *testing.T) {
	type seen struct {
		method, route string
		status        int
	}
	var got []seen
	s := NewServer(nil, Options{ // the engine is not used by these routes
		Logger: slog.New(slog.DiscardHandler),
		Observe: func(method, route string, status int, d time.Duration) {
			if d < 0 {
				t.Errorf("negative duration %v", d)
			}
			got = append(got, seen{method, route, status})
		},
	})
	s.HandleFunc("GET /v1/boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	s.HandleFunc("GET /v1/silent/{id}", func(http.ResponseWriter, *http.Request) {})
	for _, r := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/v1/boom"}, {"GET", "/v1/silent/x1"}, {"GET", "/nothing"}, {"POST", "/healthz"},
	} {
		s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}
	want := []seen{
		{"GET", "GET /healthz", 200},
		{"GET", "GET /v1/boom", 500},
		{"GET", "GET /v1/silent/{id}", 200}, // the pattern, not the path; nothing written is 200
		{"GET", "unmatched", 404},
		{"POST", "unmatched", 405},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("observed %v, want %v", got, want)
	}
}

func TestRouteScopes(t *testing.T) {
	s := NewServer(nil, Options{})
	for pattern, want := range map[string]string{
		"POST /v1/transfers":      ScopeLedgerWrite,
		"GET /v1/accounts/{id}":   ScopeLedgerRead,
		"GET /healthz":            "",
		"GET /v1/no-such-pattern": "",
	} {
		if got := s.Scope(pattern); got != want {
			t.Errorf("Scope(%q) = %q, want %q", pattern, got, want)
		}
	}
	s.HandleScoped("PUT /v1/things/{id}", ScopeAdmin, http.NotFoundHandler())
	if got := s.Scope("PUT /v1/things/{id}"); got != ScopeAdmin {
		t.Errorf("Scope after HandleScoped = %q", got)
	}
}

func TestActorContext(t *testing.T) {
	ctx := context.Background()
	if a := Actor(ctx); a != "" {
		t.Fatalf("Actor of a bare context = %q", a)
	}
	if a := Actor(WithActor(ctx, "key_1")); a != "key_1" {
		t.Fatalf("Actor = %q, want key_1", a)
	}
}
