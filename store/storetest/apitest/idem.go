// Package apitest is the part of the conformance suite that runs over the HTTP API: behaviours
// of the API that rest on storage (Idempotency-Key), run against every backend. It is apart
// from storetest because the API's own tests use storetest.
package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/store/storetest"
)

var ctx = context.Background()

// TestIdempotencyHTTP runs the Idempotency-Key behaviours of the API over real HTTP, with the
// keys stored in the backend under test.
func TestIdempotencyHTTP(t *testing.T, f storetest.Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *idemHTTP)
		cfg  idem.Config
	}{
		{"ReplayAndConflict", testIdemReplayConflict, idem.Config{}},
		{"BadKeys", testIdemBadKeys, idem.Config{}},
		{"ErrorsAreStored", testIdemErrorsStored, idem.Config{}},
		{"ServerErrorsAreNot", testIdemServerErrors, idem.Config{}},
		{"InProgress", testIdemInProgress, idem.Config{}},
		{"ConcurrentDuplicates", testIdemConcurrentHTTP, idem.Config{}},
		{"ScopedPerActor", testIdemActors, idem.Config{}},
		{"ExpiryAndPurge", testIdemExpiryHTTP, idem.Config{}},
		{"LargeResponse", testIdemLargeResponse, idem.Config{ResponseMax: 128}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newIdemHTTP(t, f, tc.cfg)) })
	}
}

// idemHTTP is the API over a backend, with its idempotency keys in the same backend, a
// settable clock for the keys, and test routes: POST /test/flaky (500, then 200),
// POST /test/slow (waits for release), POST /test/panic (panics, then 200).
type idemHTTP struct {
	t       *testing.T
	srv     *httptest.Server
	svc     *idem.Service
	clock   *storetest.Clock
	outcome map[idem.Outcome]*atomic.Int64

	flakyCalls, panicCalls, slowCalls, secretCalls atomic.Int64
	slowEntered, slowRelease                       chan struct{}
}

func newIdemHTTP(t *testing.T, f storetest.Factory, cfg idem.Config) *idemHTTP {
	st := f(t)()
	h := &idemHTTP{t: t, clock: storetest.NewClock(), outcome: map[idem.Outcome]*atomic.Int64{},
		slowEntered: make(chan struct{}, 8), slowRelease: make(chan struct{})}
	for _, o := range []idem.Outcome{idem.Execute, idem.Replay, idem.Conflict, idem.InProgress} {
		h.outcome[o] = new(atomic.Int64)
	}
	eng := storetest.OpenEngine(t, st, h.clock.Now)
	cfg.Now, cfg.Logger = h.clock.Now, storetest.QuietLogger()
	cfg.Observe = func(o idem.Outcome) { h.outcome[o].Add(1) }
	h.svc = idem.New(st.(idem.Provider).Idempotency(), cfg)
	api := httpapi.NewServer(eng, httpapi.Options{Logger: storetest.QuietLogger(), Idempotency: h.svc})
	api.HandleFunc("POST /test/flaky", func(w http.ResponseWriter, r *http.Request) {
		if h.flakyCalls.Add(1) == 1 {
			httpapi.WriteJSON(w, 500, map[string]string{"try": "again"})
			return
		}
		httpapi.WriteJSON(w, 200, map[string]int64{"call": h.flakyCalls.Load()})
	})
	api.HandleFunc("POST /test/panic", func(w http.ResponseWriter, r *http.Request) {
		if h.panicCalls.Add(1) == 1 {
			panic("handler bug")
		}
		httpapi.WriteJSON(w, 200, map[string]string{"ok": "yes"})
	})
	api.HandleFunc("POST /test/slow", func(w http.ResponseWriter, r *http.Request) {
		n := h.slowCalls.Add(1)
		h.slowEntered <- struct{}{}
		<-h.slowRelease
		httpapi.WriteJSON(w, 200, map[string]int64{"call": n})
	})
	api.HandleFunc("POST /test/secret", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, no-store")
		httpapi.WriteJSON(w, 201, map[string]int64{"secret": h.secretCalls.Add(1)})
	})
	api.HandleFunc("POST /test/large", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteJSON(w, 200, map[string]string{"pad": strings.Repeat("x", 200)})
	})
	// The caller's identity, as the authentication layer would set it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(httpapi.WithActor(r.Context(), r.Header.Get("X-Test-Actor"))))
	}))
	t.Cleanup(srv.Close)
	h.srv = srv
	return h
}

type idemResp struct {
	status int
	header http.Header
	body   string
}

func (r idemResp) replayed() bool { return r.header.Get(httpapi.ReplayedHeader) == "true" }

func (r idemResp) code() string {
	var e struct {
		Error struct{ Code, Param string }
	}
	json.Unmarshal([]byte(r.body), &e)
	return e.Error.Code
}

// post sends a POST with the given idempotency key(s) ("" for none) and extra headers as
// "Name: value".
func (h *idemHTTP) post(path, body string, keys []string, headers ...string) idemResp {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for _, k := range keys {
		req.Header.Add(httpapi.IdempotencyKeyHeader, k)
	}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Set(k, v)
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return idemResp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (h *idemHTTP) postKey(path, body, key string, headers ...string) idemResp {
	h.t.Helper()
	return h.post(path, body, []string{key}, headers...)
}

func (h *idemHTTP) get(path string) idemResp {
	h.t.Helper()
	res, err := h.srv.Client().Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return idemResp{status: res.StatusCode, header: res.Header, body: string(b)}
}

func wantResp(t *testing.T, r idemResp, status int, code string, replayed bool) {
	t.Helper()
	if r.status != status || r.code() != code || r.replayed() != replayed {
		t.Fatalf("got %d %q replayed=%v, want %d %q replayed=%v: %s", r.status, r.code(), r.replayed(), status, code, replayed, r.body)
	}
}

func (h *idemHTTP) wantOutcomes(exec, replay, conflict, inProgress int64) {
	h.t.Helper()
	got := [4]int64{h.outcome[idem.Execute].Load(), h.outcome[idem.Replay].Load(), h.outcome[idem.Conflict].Load(), h.outcome[idem.InProgress].Load()}
	if want := [4]int64{exec, replay, conflict, inProgress}; got != want {
		h.t.Fatalf("outcomes (executed, replayed, conflict, in progress) = %v, want %v", got, want)
	}
}

const idemAccount = `{"id":"acc_1","currency":"USD"}`

func idemTransfer(id string, amount int) string {
	return fmt.Sprintf(`{"id":%q,"debit_account_id":"acc_1","credit_account_id":"acc_2","amount":%d,"currency":"USD"}`, id, amount)
}

func testIdemReplayConflict(t *testing.T, h *idemHTTP) {
	first := h.postKey("/v1/accounts", idemAccount, "key-1")
	wantResp(t, first, 201, "", false)
	replay := h.postKey("/v1/accounts", idemAccount, "key-1")
	wantResp(t, replay, 201, "", true)
	if replay.body != first.body || replay.header.Get("Content-Type") != "application/json" {
		t.Fatalf("replay %q %q, want the first response %q", replay.header.Get("Content-Type"), replay.body, first.body)
	}
	if replay.header.Get("X-Request-Id") == first.header.Get("X-Request-Id") {
		t.Fatal("a replay repeats the first request's X-Request-Id")
	}
	// The same key with another body, or on another route, is a conflict and executes
	// nothing.
	c := h.postKey("/v1/accounts", `{"id":"acc_2","currency":"USD"}`, "key-1")
	wantResp(t, c, 409, "idempotency_conflict", false)
	wantResp(t, h.postKey("/v1/transfers", idemAccount, "key-1"), 409, "idempotency_conflict", false)
	if r := h.get("/v1/accounts/acc_2"); r.status != 404 {
		t.Fatalf("the conflicting request created acc_2: %d", r.status)
	}
	// Without a key, the ledger's own id makes the request idempotent (200 on replay).
	wantResp(t, h.post("/v1/accounts", idemAccount, nil), 200, "", false)
	// GET ignores the header.
	if r := h.get("/v1/accounts/acc_1"); r.status != 200 || r.replayed() {
		t.Fatalf("GET: %d replayed=%v", r.status, r.replayed())
	}
	h.wantOutcomes(1, 1, 2, 0)
}

func testIdemBadKeys(t *testing.T, h *idemHTTP) {
	for name, keys := range map[string][]string{
		"empty":     {""},
		"too long":  {strings.Repeat("k", idem.KeyMax+1)},
		"space":     {"has space"},
		"non-ASCII": {"clé"},
		"control":   {"a\tb"},
		"twice":     {"k1", "k2"},
	} {
		r := h.post("/v1/accounts", idemAccount, keys)
		if r.status != 400 || r.code() != "invalid_request" || !strings.Contains(r.body, `"param":"Idempotency-Key"`) {
			t.Errorf("%s key: %d %s", name, r.status, r.body)
		}
	}
	if r := h.get("/v1/accounts/acc_1"); r.status != 404 {
		t.Fatalf("a request with a bad key wrote: %d", r.status)
	}
	// The longest key is accepted.
	wantResp(t, h.postKey("/v1/accounts", idemAccount, strings.Repeat("k", idem.KeyMax)), 201, "", false)
	h.wantOutcomes(1, 0, 0, 0)
}

func testIdemErrorsStored(t *testing.T, h *idemHTTP) {
	h.postKey("/v1/accounts", idemAccount, "acc-1")
	// The credit account does not exist yet: 404, stored.
	wantResp(t, h.postKey("/v1/transfers", idemTransfer("t1", 5), "xfer-1"), 404, "account_not_found", false)
	h.postKey("/v1/accounts", `{"id":"acc_2","currency":"USD"}`, "acc-2")
	// The replay answers what the key's request got, although it would now succeed.
	wantResp(t, h.postKey("/v1/transfers", idemTransfer("t1", 5), "xfer-1"), 404, "account_not_found", true)
	// A validation error (400) is stored too.
	wantResp(t, h.postKey("/v1/transfers", `{"id":"t2"}`, "xfer-2"), 400, "invalid_request", false)
	wantResp(t, h.postKey("/v1/transfers", `{"id":"t2"}`, "xfer-2"), 400, "invalid_request", true)
	// A new key executes.
	wantResp(t, h.postKey("/v1/transfers", idemTransfer("t1", 5), "xfer-3"), 201, "", false)
}

func testIdemServerErrors(t *testing.T, h *idemHTTP) {
	// A 500 is not stored: the retry executes and its answer is stored.
	wantResp(t, h.postKey("/test/flaky", `{}`, "f1"), 500, "", false)
	second := h.postKey("/test/flaky", `{}`, "f1")
	wantResp(t, second, 200, "", false)
	third := h.postKey("/test/flaky", `{}`, "f1")
	wantResp(t, third, 200, "", true)
	if third.body != second.body || h.flakyCalls.Load() != 2 {
		t.Fatalf("after a 500 and a success: %d calls, replay %s", h.flakyCalls.Load(), third.body)
	}
	// A response marked Cache-Control: no-store (a new API key's secret) is never stored.
	for want := range int64(2) {
		wantResp(t, h.postKey("/test/secret", `{}`, "sec"), 201, "", false)
		if h.secretCalls.Load() != want+1 {
			t.Fatalf("secret route called %d times, want %d", h.secretCalls.Load(), want+1)
		}
	}
	// A handler that panicked releases its key too.
	wantResp(t, h.postKey("/test/panic", `{}`, "p1"), 500, "internal_error", false)
	wantResp(t, h.postKey("/test/panic", `{}`, "p1"), 200, "", false)
	wantResp(t, h.postKey("/test/panic", `{}`, "p1"), 200, "", true)
	if h.panicCalls.Load() != 2 {
		t.Fatalf("panic route called %d times, want 2", h.panicCalls.Load())
	}
}

func testIdemInProgress(t *testing.T, h *idemHTTP) {
	done := make(chan idemResp, 1)
	go func() { done <- h.postKey("/test/slow", `{}`, "s1") }()
	<-h.slowEntered
	dup := h.postKey("/test/slow", `{}`, "s1")
	wantResp(t, dup, 409, "idempotency_in_progress", false)
	if dup.header.Get("Retry-After") != "1" {
		t.Fatalf("in-progress answer without Retry-After: %v", dup.header)
	}
	// A different body with the key in flight is still a conflict.
	wantResp(t, h.postKey("/test/slow", `{"x":1}`, "s1"), 409, "idempotency_conflict", false)
	close(h.slowRelease)
	first := <-done
	wantResp(t, first, 200, "", false)
	replay := h.postKey("/test/slow", `{}`, "s1")
	wantResp(t, replay, 200, "", true)
	if replay.body != first.body || h.slowCalls.Load() != 1 {
		t.Fatalf("slow route called %d times; replay %s, first %s", h.slowCalls.Load(), replay.body, first.body)
	}
	h.wantOutcomes(1, 1, 1, 1)
}

func testIdemConcurrentHTTP(t *testing.T, h *idemHTTP) {
	h.postKey("/v1/accounts", idemAccount, "a1")
	h.postKey("/v1/accounts", `{"id":"acc_2","currency":"USD"}`, "a2")
	// 24 clients send the same transfer under the same key at once; then 24 send distinct
	// transfers under one key each, twice, concurrently.
	const n = 24
	var wg sync.WaitGroup
	res := make([]idemResp, n)
	for i := range n {
		wg.Go(func() { res[i] = h.postKey("/v1/transfers", idemTransfer("same", 7), "dup-key") })
	}
	wg.Wait()
	executed := 0
	for _, r := range res {
		switch {
		case r.status == 201 && !r.replayed():
			executed++
		case r.status == 201 && r.replayed(), r.status == 409 && r.code() == "idempotency_in_progress":
		default:
			t.Fatalf("concurrent duplicate answered %d %s", r.status, r.body)
		}
	}
	if executed != 1 {
		t.Fatalf("%d of %d concurrent duplicates executed, want 1", executed, n)
	}
	res2 := make([]idemResp, 2*n)
	for i := range 2 * n {
		wg.Go(func() {
			res2[i] = h.postKey("/v1/transfers", idemTransfer(fmt.Sprint("t", i%n), 1), fmt.Sprint("k", i%n))
		})
	}
	wg.Wait()
	for _, r := range res2 {
		if r.status != 201 && !(r.status == 409 && r.code() == "idempotency_in_progress") {
			t.Fatalf("answered %d %s", r.status, r.body)
		}
	}
	// Every key now replays, and the ledger holds each transfer once.
	for i := range n {
		wantResp(t, h.postKey("/v1/transfers", idemTransfer(fmt.Sprint("t", i), 1), fmt.Sprint("k", i)), 201, "", true)
	}
	var acc struct {
		Balances struct {
			DebitsPosted int64 `json:"debits_posted"`
		} `json:"balances"`
	}
	if err := json.Unmarshal([]byte(h.get("/v1/accounts/acc_1").body), &acc); err != nil {
		t.Fatal(err)
	}
	if want := int64(7 + n); acc.Balances.DebitsPosted != want {
		t.Fatalf("acc_1 debits_posted = %d, want %d", acc.Balances.DebitsPosted, want)
	}
}

func testIdemActors(t *testing.T, h *idemHTTP) {
	// Two callers may use the same key for different requests.
	wantResp(t, h.postKey("/v1/accounts", idemAccount, "shared", "X-Test-Actor: key_a"), 201, "", false)
	wantResp(t, h.postKey("/v1/accounts", `{"id":"acc_2","currency":"USD"}`, "shared", "X-Test-Actor: key_b"), 201, "", false)
	wantResp(t, h.postKey("/v1/accounts", idemAccount, "shared", "X-Test-Actor: key_a"), 201, "", true)
	// Another caller's replay of key_a's request is its own first use of the key.
	wantResp(t, h.postKey("/v1/accounts", idemAccount, "shared", "X-Test-Actor: key_c"), 200, "", false)
}

func testIdemExpiryHTTP(t *testing.T, h *idemHTTP) {
	wantResp(t, h.postKey("/v1/accounts", idemAccount, "old"), 201, "", false)
	h.clock.Advance(idem.DefaultTTL - time.Second)
	wantResp(t, h.postKey("/v1/accounts", `{"id":"acc_2","currency":"USD"}`, "old"), 409, "idempotency_conflict", false)
	h.clock.Advance(time.Second)
	// Expired: purge removes it and the key is free for a new request.
	if n, err := h.svc.Purge(ctx); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	wantResp(t, h.postKey("/v1/accounts", `{"id":"acc_2","currency":"USD"}`, "old"), 201, "", false)
}

// testIdemLargeResponse runs with ResponseMax 128: a larger response is sent but not stored.
func testIdemLargeResponse(t *testing.T, h *idemHTTP) {
	for range 2 {
		r := h.postKey("/test/large", `{}`, "big")
		wantResp(t, r, 200, "", false)
		if len(r.body) <= 200 {
			t.Fatalf("response body %d bytes", len(r.body))
		}
	}
	h.wantOutcomes(2, 0, 0, 0)
}
