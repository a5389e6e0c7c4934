package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/store/sqlite"
)

// TestServeConfig: the config center of `fincore serve` stores changes made over the API,
// writes them to the audit log, applies switches on the instance, refuses what auth.Settings
// would not apply, and keeps the values across a restart.
func TestServeConfig(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--data", dir)
	defer srv.kill()
	put := func(key, body string) (int, string) {
		t.Helper()
		st, b, _ := call(t, testAPIKey, "PUT", srv.url("/v1/config/"+key), body)
		return st, b
	}
	if st, body := put("switch.ledger", `{"value": "off", "reason": "failover drill"}`); st != 200 {
		t.Fatalf("PUT switch.ledger: %d %s", st, body)
	}
	// The instance's watcher applies the switch: the ledger refuses even reads.
	waitStatus(t, srv.url("/v1/accounts/a"), 503)

	var audit struct {
		Data []auth.AuditView `json:"data"`
	}
	st, body, _ := call(t, testAPIKey, "GET", srv.url("/v1/audit?action=config.set"), "")
	if err := json.Unmarshal([]byte(body), &audit); st != 200 || err != nil || len(audit.Data) != 1 {
		t.Fatalf("audit log: %d %s", st, body)
	}
	if e := audit.Data[0]; e.Target != "config:switch.ledger" || string(e.After) != `"off"` || string(e.Before) != "null" ||
		!strings.HasPrefix(e.Actor, "fk_") || e.RequestID == "" {
		t.Fatalf("audit entry: %+v", e)
	}

	// The access settings' own rules apply before anything is stored: a rate limit names an
	// API key id.
	if st, body := put("ratelimit.key.bob", `{"value": {"rate_per_s": 1, "burst": 1}}`); st != 422 || !strings.Contains(body, "config_value_invalid") {
		t.Errorf("PUT ratelimit.key.bob: %d %s", st, body)
	}

	// Keys modules register are served too (the payments router's channel fee).
	if st, body := put("channel.icbc.cost_bps", `{"value": 60}`); st != 200 {
		t.Errorf("PUT channel.icbc.cost_bps: %d %s", st, body)
	}

	// After a restart the stored switch is applied again, over the (absent) flag.
	srv.kill()
	srv.start()
	waitStatus(t, srv.url("/v1/accounts/a"), 503)
	if st, body := put("switch.ledger", `{"value": "on"}`); st != 200 || !strings.Contains(body, `"old_value":"off"`) {
		t.Fatalf("PUT switch.ledger on: %d %s", st, body)
	}
	waitStatus(t, srv.url("/v1/accounts/a"), 404)
}

// waitStatus polls GET url until it answers status.
func waitStatus(t *testing.T, url string, status int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body, _ := call(t, testAPIKey, "GET", url, "")
		if st == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s, want %d", url, st, body, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inProcessServer serves the API as serve assembles it (ledger on SQLite, authentication,
// config center on an embedded bus) from an httptest server.
func inProcessServer(t *testing.T) *httptest.Server {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	quiet := slog.New(slog.DiscardHandler)
	metrics := obs.New()
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet, Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	b, err := bus.Start(ctx, bus.Options{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	api := newHandler(eng, st, metrics, quiet)
	var af authFlags
	acc, err := af.enableAuth(ctx, api, st, metrics, quiet, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	center, err := startConfig(ctx, b, api, acc, config.NewRegistry(), metrics, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(center.Close)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

// TestConfigCommand runs fincore config against a server.
func TestConfigCommand(t *testing.T) {
	srv := inProcessServer(t)
	run := func(args ...string) (string, error) {
		t.Helper()
		var out bytes.Buffer
		err := cmdConfig(append(args, "--server", srv.URL, "--key", testAPIKey), &out, io.Discard)
		return out.String(), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("fincore config %v: %v", args, err)
		}
		return out
	}
	if out := must("set", "channel.icbc.weight", "250", "--reason", "more traffic"); !strings.HasPrefix(out, "channel.icbc.weight: (unset) -> 250 (version ") {
		t.Fatalf("set: %q", out)
	}
	if out := must("set", "channel.icbc.priority", "-5"); !strings.Contains(out, "-> -5 ") {
		t.Fatalf("set of a negative value: %q", out)
	}
	// A VALUE that is not JSON is a string.
	if out := must("set", "switch.payments", "degraded"); !strings.Contains(out, `-> "degraded"`) {
		t.Fatalf("set of a bare word: %q", out)
	}
	out := must("set", "channel.icbc.weight", "300")
	if !strings.HasPrefix(out, "channel.icbc.weight: 250 -> 300 (version ") {
		t.Fatalf("second set: %q", out)
	}
	if out := must("get", "channel.icbc.weight"); out != "300\n" {
		t.Fatalf("get: %q", out)
	}
	var version int
	if _, err := fmt.Sscanf(out[strings.LastIndex(out, "version "):], "version %d)", &version); err != nil {
		t.Fatalf("no version in %q", out)
	}
	if _, err := run("set", "channel.icbc.weight", "1", "--expect-version", fmt.Sprint(version-1)); err == nil || !strings.Contains(err.Error(), "config_conflict") {
		t.Fatalf("set with a stale version: %v", err)
	}
	must("set", "channel.icbc.weight", "310", "--expect-version", fmt.Sprint(version))

	list := must("list", "--prefix", "channel.")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "KEY") || !strings.HasPrefix(lines[1], "channel.icbc.priority  -5 ") ||
		!strings.HasPrefix(lines[2], "channel.icbc.weight    310 ") {
		t.Fatalf("list:\n%s", list)
	}
	if all := must("list"); !strings.Contains(all, `switch.payments        "degraded"`) {
		t.Fatalf("list of everything:\n%s", all)
	}
	hist := strings.Split(strings.TrimSpace(must("history", "channel.icbc.weight")), "\n")
	if len(hist) != 4 || !strings.Contains(hist[1], " 300  310 ") || !strings.Contains(hist[3], " -    250  more traffic") {
		t.Fatalf("history:\n%s", strings.Join(hist, "\n"))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "channel.icbc.weight", "1001"}, "config_value_invalid"},
		{[]string{"set", "channel.icbc.colour", "1"}, "config_key_unknown"},
		{[]string{"get", "channel.cmb.weight"}, "config_not_set"},
		{[]string{"get"}, "needs 1 argument"},
		{[]string{"set", "channel.icbc.weight"}, "needs 2 argument"},
		{[]string{"fetch", "x"}, "unknown config command"},
		{[]string{"get", "x", "extra"}, "unexpected arguments"},
	} {
		if _, err := run(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fincore config %v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	var out2 bytes.Buffer
	if err := cmdConfig([]string{"get", "switch.payments", "--server", srv.URL, "--key", "fk_0000000000000000_wrong"}, &out2, io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong key: %v", err)
	}
	if err := cmdConfig([]string{"get", "switch.payments", "--server", "ftp://x"}, &out2, io.Discard); err == nil {
		t.Fatal("an ftp server URL was accepted")
	}
	t.Setenv(envAPIKey, "")
	if err := cmdConfig([]string{"get", "switch.payments", "--server", srv.URL}, &out2, io.Discard); err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Fatalf("no key: %v", err)
	}
	t.Setenv(envAPIKey, testAPIKey)
	out2.Reset()
	if err := cmdConfig([]string{"get", "switch.payments", "--server", srv.URL}, &out2, io.Discard); err != nil || out2.String() != "\"degraded\"\n" {
		t.Fatalf("key from the environment: %q %v", out2.String(), err)
	}
}
