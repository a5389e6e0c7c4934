package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/obs"
)

// testAPIKey is the admin key every server started by the tests takes from FINCORE_API_KEY
// (set in TestMain), and that client sends.
const testAPIKey = "test-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"

// bearerTransport adds an Authorization header to requests that have none.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// lockedBuffer collects a process's output; safe to read while the process writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// envWithout returns this process's environment without the variable name.
func envWithout(name string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// call sends a request with the token ("" for none) and returns the status and body.
func call(t *testing.T, token, method, url, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req) // not client: it would add the test key
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// documentedOps returns the operations of an OpenAPI document ("POST /v1/keys") and whether
// each is public (declared with an empty security requirement, like bank notifications,
// which a signature authenticates instead of a key).
func documentedOps(t *testing.T, doc []byte) map[string]bool {
	t.Helper()
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &spec); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for path, ops := range spec.Paths {
		for method, raw := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
			default:
				continue
			}
			var op struct {
				Security *[]json.RawMessage `json:"security"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			out[strings.ToUpper(method)+" "+path] = op.Security != nil && len(*op.Security) == 0
		}
	}
	return out
}

var printedKey = regexp.MustCompile(`fk_[0-9a-f]{16}_[a-z2-7]{52}`)

// waitOutput polls the server's output until it contains want (what it prints before
// "listening" has then been copied too, since a pipe keeps order) and returns it.
func waitOutput(t *testing.T, srv *server, want string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out := srv.logs.String(); strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("server output lacks %q:\n%s", want, srv.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeNeedsKeys: serve turns authentication on; operational routes stay open; the
// refusals are counted in /metrics.
func TestServeNeedsKeys(t *testing.T) {
	srv := startServer(t, "--data", t.TempDir())
	defer srv.kill()
	if st, body, h := call(t, "", "GET", srv.url("/v1/accounts/a"), ""); st != 401 || !strings.Contains(body, `"unauthenticated"`) || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d %s", st, body)
	}
	if st, body, _ := call(t, testAPIKey, "POST", srv.url("/v1/accounts"), `{"id":"a","currency":"CNY"}`); st != 201 {
		t.Fatalf("with the FINCORE_API_KEY key: %d %s", st, body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics"} {
		if st, body, _ := call(t, "", "GET", srv.url(p), ""); st != 200 {
			t.Errorf("GET %s without a key: %d %s", p, st, body)
		}
	}
	// Every /v1 operation the served OpenAPI document lists (every module serve wires)
	// refuses a request without a key.
	_, doc, _ := call(t, "", "GET", srv.url("/openapi.json"), "")
	refused := 0
	for op, public := range documentedOps(t, []byte(doc)) {
		method, path, _ := strings.Cut(op, " ")
		if public || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		p := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x")
		if st, body, _ := call(t, "", method, srv.url(p), ""); st != 401 {
			t.Errorf("%s without a key: %d %s", op, st, body)
		}
		refused++
	}
	if refused < 20 {
		t.Fatalf("only %d /v1 operations in the served document", refused)
	}
	_, metrics, _ := call(t, "", "GET", srv.url("/metrics"), "")
	for _, want := range []string{fmt.Sprintf(`fincore_http_rejected_total{reason="unauthenticated"} %d`, refused+1), `fincore_http_rejected_total{reason="forbidden"} 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(waitOutput(t, srv, "fincore is listening"), "fk_") {
		t.Fatalf("a key was printed although FINCORE_API_KEY is set:\n%s", srv.logs)
	}
}

// TestServeFirstStartPrintsAdminKeyOnce: without FINCORE_API_KEY, the first start prints a
// generated admin key; later starts print none, and the key keeps working.
func TestServeFirstStartPrintsAdminKeyOnce(t *testing.T) {
	dir := t.TempDir()
	srv := &server{t: t, args: []string{"--data", dir}, addr: freeAddr(t), env: envWithout(envAPIKey)}
	srv.start()
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	keys := printedKey.FindAllString(waitOutput(t, srv, "fincore is listening"), -1)
	if len(keys) != 1 {
		t.Fatalf("first start printed %d keys:\n%s", len(keys), srv.logs)
	}
	admin := keys[0]
	if st, body, _ := call(t, admin, "GET", srv.url("/v1/keys"), ""); st != 200 || !strings.Contains(body, `"admin"`) {
		t.Fatalf("printed key: %d %s", st, body)
	}
	srv.kill()
	srv.start()
	if keys := printedKey.FindAllString(waitOutput(t, srv, "fincore is listening"), -1); len(keys) != 0 {
		t.Fatalf("a restart printed a key:\n%s", srv.logs)
	}
	if st, body, _ := call(t, admin, "GET", srv.url("/v1/audit?action=key.create"), ""); st != 200 || !strings.Contains(body, `"actor":"system:bootstrap"`) {
		t.Fatalf("after restart: %d %s", st, body)
	}
}

// TestServeRefusesRevokedEnvKey: a FINCORE_API_KEY that an operator revoked stops serve
// instead of leaving automation locked out without a word.
func TestServeRefusesRevokedEnvKey(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data", dir)
	st, body, _ := call(t, testAPIKey, "GET", srv.url("/v1/keys"), "")
	m := regexp.MustCompile(`"id":"(fk_[0-9a-f]{16})"`).FindStringSubmatch(body)
	if st != 200 || m == nil {
		t.Fatalf("list keys: %d %s", st, body)
	}
	if st, body, _ := call(t, testAPIKey, "POST", srv.url("/v1/keys/"+m[1]+"/revoke"), ""); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	srv.kill()
	out, err := exec.Command(binPath, "serve", "--data", dir, "--addr", freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "FINCORE_API_KEY") || !strings.Contains(string(out), "revoked") {
		t.Fatalf("serve with a revoked FINCORE_API_KEY: %v\n%s", err, out)
	}
}

// TestServeDemoKey: every demo start prints a fresh working key and revokes the last one.
func TestServeDemoKey(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data", dir, "--demo")
	defer func() {
		if srv.cmd.ProcessState == nil {
			srv.kill()
		}
	}()
	demoKey := func() string {
		t.Helper()
		return printedKey.FindString(waitOutput(t, srv, "curl -H"))
	}
	first := demoKey()
	if !strings.Contains(srv.logs.String(), `curl -H "Authorization: Bearer $FINCORE_KEY" http://`+srv.addr+`/v1/accounts/demo:merchant:1`) {
		t.Fatalf("no curl example:\n%s", srv.logs)
	}
	if st, body, _ := call(t, first, "GET", srv.url("/v1/accounts/demo:merchant:1"), ""); st != 200 {
		t.Fatalf("demo key: %d %s", st, body)
	}
	srv.kill()
	srv.start()
	second := demoKey()
	if second == first {
		t.Fatal("the demo key did not change")
	}
	if st, _, _ := call(t, second, "GET", srv.url("/v1/accounts/demo:merchant:1"), ""); st != 200 {
		t.Fatalf("second demo key: %d", st)
	}
	if st, _, _ := call(t, first, "GET", srv.url("/v1/accounts/demo:merchant:1"), ""); st != 401 {
		t.Fatalf("previous demo key: %d, want 401", st)
	}
}

// TestServeLimitAndSwitchFlags: the static settings from flags are in force.
func TestServeLimitAndSwitchFlags(t *testing.T) {
	srv := startServer(t, "--data", t.TempDir(), "--switch", "ledger=degraded", "--rate-limit", "0.001:2")
	defer srv.kill()
	st, body, h := call(t, testAPIKey, "POST", srv.url("/v1/accounts"), `{"id":"a","currency":"CNY"}`)
	if st != 503 || !strings.Contains(body, `"degraded"`) || h.Get("Retry-After") == "" {
		t.Fatalf("write to a degraded ledger: %d %s", st, body)
	}
	if st, body, _ := call(t, testAPIKey, "GET", srv.url("/v1/accounts/a"), ""); st != 404 {
		t.Fatalf("read from a degraded ledger: %d %s", st, body)
	}
	// The burst of 2 is spent; the next token comes in 1000 s.
	st, body, h = call(t, testAPIKey, "GET", srv.url("/v1/accounts/a"), "")
	if st != 429 || !strings.Contains(body, `"rate_limited"`) || h.Get("Retry-After") != "1000" {
		t.Fatalf("third request: %d %s Retry-After %q", st, body, h.Get("Retry-After"))
	}
	for _, bad := range [][]string{{"--switch", "ledger=sideways"}, {"--rate-limit", "fast"}, {"--key-rate-limit", "bob=1:1"}} {
		out, err := exec.Command(binPath, append([]string{"serve", "--data", t.TempDir(), "--addr", freeAddr(t)}, bad...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), bad[0]) {
			t.Errorf("serve %v: %v\n%s", bad, err, out)
		}
	}
}

// TestKeysCommand runs fincore keys on the database and against a running server.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	run := func(env []string, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(binPath, append([]string{"keys"}, args...)...)
		cmd.Env = env
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			return out.String() + errOut.String(), err
		}
		return out.String(), nil
	}
	// On the database, no server running.
	out, err := run(nil, "create", "--name", "reporting", "--scopes", "ledger:read", "--tenant", "acme", "--data", dir)
	token := strings.TrimSpace(out)
	if err != nil || !printedKey.MatchString(token) {
		t.Fatalf("create: %v %q", err, out)
	}
	id := token[:19]
	out, err = run(nil, "list", "--data", dir)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "reporting") || !strings.Contains(out, "acme") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := run(nil, "create", "--name", "x", "--scopes", "ledger:erase", "--data", dir); err == nil || !strings.Contains(out, "scope") {
		t.Fatalf("bad scope: %v %s", err, out)
	}

	// Against the server: the CLI's key works there, and is revoked through it.
	srv := startServer(t, "--data", dir)
	defer srv.kill()
	if st, body, _ := call(t, token, "GET", srv.url("/v1/accounts/nope"), ""); st != 404 {
		t.Fatalf("CLI-made key on the server: %d %s", st, body)
	}
	if out, err := run(nil, "list", "--data", dir); err == nil || !strings.Contains(out, "--url") {
		t.Fatalf("list on a database in use: %v %s", err, out)
	}
	if out, err := run(envWithout(envAPIKey), "list", "--url", srv.url("")); err == nil || !strings.Contains(out, envAPIKey) {
		t.Fatalf("--url without a key: %v %s", err, out)
	}
	out, err = run(nil, "create", "--name", "over http", "--scopes", "risk:write,ledger:read", "--url", srv.url(""))
	if err != nil || !printedKey.MatchString(strings.TrimSpace(out)) {
		t.Fatalf("create over HTTP: %v %s", err, out)
	}
	if out, err = run(nil, "revoke", id, "--url", srv.url("")); err != nil || !strings.Contains(out, "revoked "+id) {
		t.Fatalf("revoke over HTTP: %v %s", err, out)
	}
	if st, _, _ := call(t, token, "GET", srv.url("/v1/accounts/nope"), ""); st != 401 {
		t.Fatalf("revoked key: %d", st)
	}
	out, err = run(nil, "list", "--url", srv.url(""))
	if err != nil || !strings.Contains(out, "over http") || !strings.Contains(out, "risk:write") {
		t.Fatalf("list over HTTP: %v\n%s", err, out)
	}
	// The audit log names the CLI user and the server's admin key.
	_, body, _ := call(t, testAPIKey, "GET", srv.url("/v1/audit"), "")
	if !regexp.MustCompile(`"actor":"cli(:[^"]+)?","action":"key.create","target":"` + id).MatchString(body) {
		t.Fatalf("no CLI creation in the audit log: %s", body)
	}
	if out, err := run(nil, "revoke", "--url", srv.url("")); err == nil {
		t.Fatalf("revoke without an id: %s", out)
	}
}

// TestEveryServedRouteNeedsAKey builds the API as serve does (the routes of every module
// wired here included) and checks that each /v1 route has a scope and refuses a request
// without a key, and that the operational routes do not.
func TestEveryServedRouteNeedsAKey(t *testing.T) {
	ctx := t.Context()
	st := testStore(t)
	quiet := slog.New(slog.DiscardHandler)
	metrics := obs.New()
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet, Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	riskEng, err := newRiskEngine(ctx, st, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer riskEng.Close()
	api := withRisk(newHandler(eng, st, metrics, quiet), riskEng)
	var af authFlags
	if _, err := af.enableAuth(ctx, api, st, metrics, quiet, io.Discard); err != nil {
		t.Fatal(err)
	}
	api.RegisterConfig(nil) // as startConfig does; the gate answers before the center is used
	public := documentedOps(t, httpapi.OpenAPI)
	n := 0
	for _, pattern := range api.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, httptest.NewRequest(method, regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "x"), nil))
		switch {
		case strings.HasPrefix(path, "/v1/") && public[pattern]:
			if api.Scope(pattern) != "" {
				t.Errorf("%s is public in openapi.json but needs %s", pattern, api.Scope(pattern))
			}
		case strings.HasPrefix(path, "/v1/"):
			n++
			if api.Scope(pattern) == "" || w.Code != 401 {
				t.Errorf("%s: scope %q, answered %d without a key", pattern, api.Scope(pattern), w.Code)
			}
		case w.Code == 401 || w.Code == 403:
			t.Errorf("operational route %s answered %d", pattern, w.Code)
		}
	}
	if n < 20 { // ledger, keys, audit and risk routes
		t.Fatalf("only %d /v1 routes", n)
	}
}
