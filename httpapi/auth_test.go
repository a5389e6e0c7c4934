package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/clock"
	"github.com/fincore/fincore/store/sqlite"
)

// authAPI is the API with authentication on, over SQLite, with a fake clock for the rate
// limiter and an admin key.
type authAPI struct {
	*testAPI
	keys     *auth.Service
	limits   *auth.Limiter
	switches *auth.Switches
	clock    *clock.Fake
	admin    string // the admin key's token

	mu       sync.Mutex
	rejected map[string]int
}

func newAuthAPI(t *testing.T) *authAPI {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &authAPI{testAPI: newTestAPIOn(t, st, ledger.Config{}), clock: clock.NewFake(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)),
		rejected: map[string]int{}}
	a.keys = auth.NewService(st.(auth.Provider).Auth(), auth.Config{})
	if a.limits, err = auth.NewLimiter(auth.Limit{}, a.clock.Now); err != nil {
		t.Fatal(err)
	}
	a.switches = auth.NewSwitches()
	a.api.UseAuth(Guard{Keys: a.keys, Limits: a.limits, Switches: a.switches, Rejected: func(reason string) {
		a.mu.Lock()
		a.rejected[reason]++
		a.mu.Unlock()
	}})
	token, created, err := a.keys.Bootstrap(context.Background(), auth.Origin{Actor: "test"}, "admin")
	if err != nil || !created {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	a.admin = token
	return a
}

// newReq builds a request with a bearer token ("" sends no Authorization header) and, for a
// body, Content-Type application/json.
func (a *authAPI) newReq(token, method, path, body string) *http.Request {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// as sends a request with a bearer token.
func (a *authAPI) as(token, method, path, body string) response {
	a.t.Helper()
	return a.send(a.newReq(token, method, path, body))
}

// key creates a key with scopes through the API and returns its token and id.
func (a *authAPI) key(name string, scopes ...string) (token, id string) {
	a.t.Helper()
	var out struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	a.as(a.admin, "POST", "/v1/keys", jsonBody(map[string]any{"name": name, "scopes": scopes})).wantStatus(a.t, 201).decode(a.t, &out)
	return out.Secret, out.ID
}

func (a *authAPI) rejections(reason string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rejected[reason]
}

// wildcard matches a route pattern's wildcards, replaced to make a request path.
var wildcard = regexp.MustCompile(`\{[^}]+\}`)

// TestEveryRouteDemandsItsScope walks every registered route: each /v1 route has a scope
// and refuses a request without a key (401), with an unknown key (401) and with a key
// lacking the scope (403), and lets a key with exactly that scope, and an admin key, past
// the guard. Public routes answer without a key.
func TestEveryRouteDemandsItsScope(t *testing.T) {
	a := newAuthAPI(t)
	stranger, _ := a.key("stranger", "nomodule:write")
	tokens := map[string]string{} // scope -> token of a key holding only it
	checked := 0
	for _, pattern := range a.api.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		req := wildcard.ReplaceAllString(path, "x1")
		scope := a.api.Scope(pattern)
		if !strings.HasPrefix(path, "/v1/") {
			if scope != "" {
				continue // an operational route with a scope is checked like the others
			}
			if r := a.as("", method, req, ""); r.Status == 401 || r.Status == 403 {
				t.Errorf("public %s answered %s", pattern, r)
			}
			continue
		}
		if scope == "" {
			if !publicInOpenAPI(t, pattern) {
				t.Errorf("%s has no scope, and openapi.json does not declare it public (security: [])", pattern)
			}
			continue
		}
		checked++
		r := a.as("", method, req, "")
		r.wantError(t, 401, "unauthenticated", "")
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="fincore"` {
			t.Errorf("%s without a key: WWW-Authenticate %q", pattern, got)
		}
		r = a.as("fk_0123456789abcdef_notarealsecretnotarealsecretnotarealsecret0000", method, req, "")
		r.wantError(t, 401, "unauthenticated", "")
		if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
			t.Errorf("%s with a bad key: WWW-Authenticate %q", pattern, got)
		}
		r = a.as(stranger, method, req, "")
		r.wantError(t, 403, "forbidden", "")
		if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `scope="`+scope+`"`) {
			t.Errorf("%s with the wrong scope: WWW-Authenticate %q", pattern, got)
		}
		if mod, ok := strings.CutSuffix(scope, ":write"); ok {
			reader, ok := tokens[mod+":read"]
			if !ok {
				reader, _ = a.key("reader", mod+":read")
				tokens[mod+":read"] = reader
			}
			a.as(reader, method, req, "").wantError(t, 403, "forbidden", "")
		}
		tok, ok := tokens[scope]
		if !ok {
			tok, _ = a.key("holder of "+scope, scope)
			tokens[scope] = tok
		}
		for _, token := range []string{tok, a.admin} {
			if r := a.as(token, method, req, ""); r.Status == 401 || r.Status == 403 {
				t.Errorf("%s with a key holding %s: %s", pattern, scope, r)
			}
		}
	}
	if checked < 14 { // 9 ledger routes and 5 key and audit routes at least
		t.Fatalf("only %d /v1 routes checked", checked)
	}
	if a.rejections(RejectUnauthenticated) != 2*checked || a.rejections(RejectForbidden) < checked {
		t.Fatalf("rejections counted: %v", a.rejected)
	}
}

// publicInOpenAPI reports whether openapi.json declares the operation pattern ("POST
// /v1/x") with an empty security requirement: public on purpose.
func publicInOpenAPI(t *testing.T, pattern string) bool {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	method, path, _ := strings.Cut(pattern, " ")
	raw, ok := doc.Paths[path][strings.ToLower(method)]
	var op struct {
		Security *[]json.RawMessage `json:"security"`
	}
	if !ok || json.Unmarshal(raw, &op) != nil {
		return false
	}
	return op.Security != nil && len(*op.Security) == 0
}

func TestAuthHeaderForms(t *testing.T) {
	a := newAuthAPI(t)
	for _, h := range []string{"Basic " + a.admin, "Bearer", "Bearer ", a.admin, "Bearer " + a.admin + "x", "Bearer " + strings.Repeat("a", 5000)} {
		req, _ := http.NewRequest("GET", a.srv.URL+"/v1/keys", nil)
		req.Header.Set("Authorization", h)
		r := a.send(req)
		r.wantError(t, 401, "unauthenticated", "")
		if !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("Authorization %.20q: WWW-Authenticate %q", h, r.Header.Get("WWW-Authenticate"))
		}
	}
	req, _ := http.NewRequest("GET", a.srv.URL+"/v1/keys", nil)
	req.Header.Set("Authorization", "bearer   "+a.admin+"  ")
	a.send(req).wantStatus(t, 200)
}

// TestActorAndTenantInContext checks what a handler sees of its caller, and that the
// request log names the caller.
func TestActorAndTenantInContext(t *testing.T) {
	a := newAuthAPI(t)
	a.api.HandleScoped("GET /v1/whoami", "ledger:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, 200, map[string]string{"actor": Actor(r.Context()), "tenant": auth.TenantFrom(r.Context())})
	}))
	var k struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	a.as(a.admin, "POST", "/v1/keys", `{"name":"t","scopes":["ledger:read"],"tenant_id":"acme"}`).wantStatus(t, 201).decode(t, &k)
	var who map[string]string
	a.as(k.Secret, "GET", "/v1/whoami", "").wantStatus(t, 200).decode(t, &who)
	if who["actor"] != k.ID || who["tenant"] != "acme" {
		t.Fatalf("handler saw %v, want actor %s tenant acme", who, k.ID)
	}
	found := false
	for _, l := range logLines(t, a.log.String(), "http request") {
		if l["route"] == "GET /v1/whoami" && l["actor"] == k.ID {
			found = true
		}
	}
	if !found {
		t.Fatalf("no request log line names the actor: %s", a.log.String())
	}
}

func TestRevokedKeyIsRefused(t *testing.T) {
	a := newAuthAPI(t)
	tok, id := a.key("short-lived", "ledger:read")
	a.as(tok, "GET", "/v1/accounts/nope", "").wantError(t, 404, "account_not_found", "id")
	a.as(a.admin, "POST", "/v1/keys/"+id+"/revoke", "").wantStatus(t, 200)
	a.as(tok, "GET", "/v1/accounts/nope", "").wantError(t, 401, "unauthenticated", "")
}

func TestRateLimit(t *testing.T) {
	a := newAuthAPI(t)
	tok, id := a.key("busy", "ledger:read")
	other, _ := a.key("calm", "ledger:read")
	if err := a.limits.SetKey(id, auth.Limit{RatePerS: 0.5, Burst: 2}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		a.as(tok, "GET", "/v1/accounts/nope", "").wantStatus(t, 404)
	}
	r := a.as(tok, "GET", "/v1/accounts/nope", "")
	r.wantError(t, 429, "rate_limited", "")
	if got := r.Header.Get("Retry-After"); got != "2" { // a token every 2 s
		t.Fatalf("Retry-After %q, want 2", got)
	}
	if e := r.apiErr(t); e.Type != "rate_limit_error" {
		t.Fatalf("type %q", e.Type)
	}
	a.as(other, "GET", "/v1/accounts/nope", "").wantStatus(t, 404) // its own bucket (unlimited default)
	a.clock.Advance(2 * time.Second)
	a.as(tok, "GET", "/v1/accounts/nope", "").wantStatus(t, 404)
	a.as(tok, "GET", "/v1/accounts/nope", "").wantStatus(t, 429)
	if n := a.rejections(RejectRateLimited); n != 2 {
		t.Fatalf("%d rate_limited rejections counted, want 2", n)
	}
	// Public routes are not limited.
	for range 5 {
		a.as(tok, "GET", "/healthz", "").wantStatus(t, 200)
	}
}

func TestSwitches(t *testing.T) {
	a := newAuthAPI(t)
	tok, _ := a.key("rw", "ledger:write")
	a.as(tok, "POST", "/v1/accounts", `{"id":"a1","currency":"CNY"}`).wantStatus(t, 201)
	if err := a.switches.Set("ledger", auth.Degraded); err != nil {
		t.Fatal(err)
	}
	r := a.as(tok, "POST", "/v1/accounts", `{"id":"a2","currency":"CNY"}`)
	r.wantError(t, 503, "degraded", "")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 degraded without Retry-After")
	}
	a.as(tok, "GET", "/v1/accounts/a1", "").wantStatus(t, 200) // reads go on
	if err := a.switches.Set("ledger", auth.Off); err != nil {
		t.Fatal(err)
	}
	a.as(tok, "GET", "/v1/accounts/a1", "").wantError(t, 503, "degraded", "")
	a.as(a.admin, "GET", "/v1/keys", "").wantStatus(t, 200) // admin routes are never switched
	if err := a.switches.Set("ledger", auth.On); err != nil {
		t.Fatal(err)
	}
	// Finer switches are for handlers to read.
	if err := a.switches.Set("ledger.expiry", auth.Off); err != nil {
		t.Fatal(err)
	}
	if a.api.Switch("ledger.expiry") != auth.Off || a.api.Switch("ledger") != auth.On || newTestAPI(t).api.Switch("ledger.expiry") != auth.On {
		t.Fatal("Server.Switch")
	}
	a.as(tok, "POST", "/v1/accounts", `{"id":"a2","currency":"CNY"}`).wantStatus(t, 201)
	if n := a.rejections(RejectDegraded); n != 2 {
		t.Fatalf("%d degraded rejections, want 2", n)
	}
}

// TestAuthOff: without UseAuth, routes need no key (the API as the ledger tests use it).
func TestAuthOff(t *testing.T) {
	a := newTestAPI(t)
	a.do("POST", "/v1/accounts", `{"id":"a1","currency":"CNY"}`).wantStatus(t, 201)
	a.do("GET", "/v1/keys", "").wantError(t, 404, "route_not_found", "")
}

func TestUseAuthTwicePanics(t *testing.T) {
	s := NewServer(nil, Options{Logger: slog.New(slog.DiscardHandler)})
	g := Guard{Keys: auth.NewService(nil, auth.Config{})}
	s.UseAuth(g)
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	s.UseAuth(g)
}

// TestGuardRefusalIsObserved: a refused request is logged and measured under its route.
func TestGuardRefusalIsObserved(t *testing.T) {
	var routes []string
	s := NewServer(nil, Options{Logger: slog.New(slog.DiscardHandler), Observe: func(method, route string, status int, d time.Duration) {
		routes = append(routes, route)
	}})
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s.UseAuth(Guard{Keys: auth.NewService(st.Auth(), auth.Config{})})
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/v1/accounts/x", nil))
	if w.Code != 401 || len(routes) != 1 || routes[0] != "GET /v1/accounts/{id}" {
		t.Fatalf("status %d, observed routes %v", w.Code, routes)
	}
}
