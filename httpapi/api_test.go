package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/sqlite"
)

// testAPI is the API over a real engine, served by a real HTTP server.
type testAPI struct {
	t   testing.TB
	eng *ledger.Engine
	srv *httptest.Server
	api *Server
	log *syncBuffer
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestAPI serves the API over an engine on a fresh SQLite database.
func newTestAPI(t testing.TB) *testAPI {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	return newTestAPIOn(t, st, ledger.Config{})
}

// newTestAPIOn serves the API over an engine on st. It closes both when the test ends.
func newTestAPIOn(t testing.TB, st ledger.Store, cfg ledger.Config) *testAPI {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.ExpiryInterval == 0 {
		cfg.ExpiryInterval = time.Hour // tests expire explicitly
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	eng, err := ledger.Open(context.Background(), st, cfg)
	if err != nil {
		st.Close()
		t.Fatalf("open engine: %v", err)
	}
	api := NewServer(eng, Options{Logger: logger})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
		st.Close()
	})
	return &testAPI{t: t, eng: eng, srv: srv, api: api, log: logs}
}

// response is what the server answered.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request. body "" sends no body; a JSON body gets Content-Type application/json.
func (a *testAPI) do(method, path, body string) response {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatalf("new request: %v", err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return a.send(req)
}

func (a *testAPI) send(req *http.Request) response {
	a.t.Helper()
	res, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatalf("read response: %v", err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// jsonBody marshals v for a request.
func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// decode unmarshals the response body into v, failing the test if it is not JSON.
func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json (%s)", ct, r)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// apiErr returns the error object of an error response.
func (r response) apiErr(t testing.TB) errorObject {
	t.Helper()
	var env struct {
		Error *errorObject `json:"error"`
	}
	r.decode(t, &env)
	if env.Error == nil {
		t.Fatalf("no error object in %s", r)
	}
	return *env.Error
}

// wantStatus fails the test unless the response has the status.
func (r response) wantStatus(t testing.TB, status int) response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// wantError checks an error response's status, code and param.
func (r response) wantError(t testing.TB, status int, code, param string) errorObject {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.Status, status, code, r.Body)
	}
	e := r.apiErr(t)
	if e.Code != code || e.Param != param {
		t.Fatalf("error code %q param %q, want %q %q: %s", e.Code, e.Param, code, param, r.Body)
	}
	if e.Message == "" || e.Type == "" {
		t.Fatalf("error without type or message: %s", r.Body)
	}
	return e
}

// account is an account response.
type account struct {
	ID        string            `json:"id"`
	Currency  string            `json:"currency"`
	Code      string            `json:"code"`
	Flags     ledger.Flags      `json:"flags"`
	Metadata  map[string]string `json:"metadata"`
	Timestamp string            `json:"timestamp"`
	Balances  ledger.Balances   `json:"balances"`
}

// transfer is a transfer response.
type transfer struct {
	ID              string            `json:"id"`
	DebitAccountID  string            `json:"debit_account_id"`
	CreditAccountID string            `json:"credit_account_id"`
	Amount          int64             `json:"amount"`
	Currency        string            `json:"currency"`
	Code            string            `json:"code"`
	Pending         bool              `json:"pending"`
	PendingID       string            `json:"pending_id"`
	TimeoutSeconds  int64             `json:"timeout_seconds"`
	ExpiresAt       string            `json:"expires_at"`
	Status          string            `json:"status"`
	Timestamp       string            `json:"timestamp"`
	Metadata        map[string]string `json:"metadata"`
}

// mustAccount creates an account and returns it.
func (a *testAPI) mustAccount(id, currency string, flags ledger.Flags) account {
	a.t.Helper()
	var acc account
	a.do("POST", "/v1/accounts", jsonBody(map[string]any{"id": id, "currency": currency, "flags": flags})).
		wantStatus(a.t, 201).decode(a.t, &acc)
	return acc
}

// transferBody is a create-transfer request.
func transferBody(id, dr, cr string, amount int64, extra ...any) string {
	m := map[string]any{"id": id, "debit_account_id": dr, "credit_account_id": cr, "amount": amount, "currency": "USD"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return jsonBody(m)
}

// mustTransfer creates a transfer and returns it.
func (a *testAPI) mustTransfer(id, dr, cr string, amount int64, extra ...any) transfer {
	a.t.Helper()
	var tr transfer
	a.do("POST", "/v1/transfers", transferBody(id, dr, cr, amount, extra...)).wantStatus(a.t, 201).decode(a.t, &tr)
	return tr
}

// balances reads an account's balances through the API.
func (a *testAPI) balances(id string) ledger.Balances {
	a.t.Helper()
	var acc account
	a.do("GET", "/v1/accounts/"+id, "").wantStatus(a.t, 200).decode(a.t, &acc)
	return acc.Balances
}

// history lists every record of an account through the API, paging with starting_after.
func (a *testAPI) history(id string, limit int) []transfer {
	a.t.Helper()
	var all []transfer
	after := ""
	for range 10000 {
		path := fmt.Sprintf("/v1/accounts/%s/transfers?limit=%d", id, limit)
		if after != "" {
			path += "&starting_after=" + after
		}
		var page struct {
			Data    []transfer `json:"data"`
			HasMore *bool      `json:"has_more"`
		}
		a.do("GET", path, "").wantStatus(a.t, 200).decode(a.t, &page)
		if page.Data == nil || page.HasMore == nil {
			a.t.Fatalf("list page without data or has_more")
		}
		all = append(all, page.Data...)
		if !*page.HasMore {
			return all
		}
		if len(page.Data) == 0 {
			a.t.Fatalf("has_more with an empty page")
		}
		after = page.Data[len(page.Data)-1].ID
	}
	a.t.Fatalf("paging did not end")
	return nil
}

// snapshot is the observable state of some accounts: balances and histories.
type snapshot struct {
	Balances map[string]ledger.Balances
	History  map[string][]string
	Records  int64
}

func (a *testAPI) snapshot(ids ...string) snapshot {
	a.t.Helper()
	s := snapshot{Balances: map[string]ledger.Balances{}, History: map[string][]string{}, Records: a.eng.Stats().Records}
	for _, id := range ids {
		s.Balances[id] = a.balances(id)
		for _, t := range a.history(id, 1000) {
			s.History[id] = append(s.History[id], t.ID)
		}
	}
	return s
}

func (s snapshot) equal(o snapshot) bool {
	if s.Records != o.Records || len(s.Balances) != len(o.Balances) {
		return false
	}
	for id, b := range s.Balances {
		if o.Balances[id] != b || strings.Join(s.History[id], ",") != strings.Join(o.History[id], ",") {
			return false
		}
	}
	return true
}
