package httpapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
)

// configAPI is the API with authentication on and the configuration routes on a Center over
// an embedded bus.
type configAPI struct {
	*authAPI
	center *config.Center
}

func newConfigAPI(t *testing.T) *configAPI {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	b, err := bus.Start(t.Context(), bus.Options{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c, err := config.Open(t.Context(), b.JetStream(), config.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	a := &configAPI{authAPI: newAuthAPI(t), center: c}
	a.api.RegisterConfig(c)
	return a
}

func (a *configAPI) put(key, body string) config.Change {
	a.t.Helper()
	var ch config.Change
	a.as(a.admin, "PUT", "/v1/config/"+key, body).wantStatus(a.t, 200).decode(a.t, &ch)
	return ch
}

func TestConfigAPI(t *testing.T) {
	a := newConfigAPI(t)
	admin, err := a.keys.Authenticate(t.Context(), a.admin)
	if err != nil {
		t.Fatal(err)
	}
	applied := make(chan string, 10)
	stop, err := a.center.Watch(t.Context(), "switch.", func(key string, value json.RawMessage, version uint64) {
		applied <- fmt.Sprintf("%s=%s@%d", key, value, version)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	a.as(a.admin, "GET", "/v1/config/switch.payments", "").wantError(t, 404, "config_not_set", "key")
	ch := a.put("switch.payments", `{"value": "degraded", "reason": "ICBC outage"}`)
	if ch.Key != "switch.payments" || string(ch.Value) != `"degraded"` || string(ch.OldValue) != "null" || ch.OldVersion != 0 ||
		ch.Actor != admin.ID || ch.Reason != "ICBC outage" || ch.Version == 0 || ch.At.IsZero() {
		t.Fatalf("PUT answered %+v", ch)
	}
	if got := <-applied; got != fmt.Sprintf(`switch.payments="degraded"@%d`, ch.Version) {
		t.Fatalf("watcher applied %s", got)
	}
	var e config.Entry
	r := a.as(a.admin, "GET", "/v1/config/switch.payments", "").wantStatus(t, 200)
	r.decode(t, &e)
	for _, field := range []string{`"key":`, `"value":`, `"version":`, `"updated_by":`, `"reason":`, `"updated_at":`} {
		if !strings.Contains(string(r.Body), field) {
			t.Errorf("GET answered %s, without %s", r.Body, field)
		}
	}
	if e.Key != "switch.payments" || string(e.Value) != `"degraded"` || e.Version != ch.Version || e.Actor != admin.ID ||
		e.Reason != "ICBC outage" || !e.At.Equal(ch.At) {
		t.Fatalf("GET answered %+v", e)
	}

	// Compare-and-set.
	ch2 := a.put("switch.payments", fmt.Sprintf(`{"value": "on", "expected_version": %d}`, ch.Version))
	if string(ch2.OldValue) != `"degraded"` || ch2.OldVersion != ch.Version {
		t.Fatalf("second PUT answered %+v", ch2)
	}
	a.as(a.admin, "PUT", "/v1/config/switch.payments", fmt.Sprintf(`{"value": "off", "expected_version": %d}`, ch.Version)).
		wantError(t, 409, "config_conflict", "expected_version")
	a.as(a.admin, "PUT", "/v1/config/switch.payments", `{"value": "off", "expected_version": 0}`).
		wantError(t, 409, "config_conflict", "expected_version")
	a.put("channel.icbc.weight", `{"value": 10, "expected_version": 0}`)

	// Refusals store nothing.
	for _, tc := range []struct {
		key, body   string
		status      int
		code, param string
	}{
		{"switch.payments", `{"value": "paused"}`, 422, "config_value_invalid", "value"},
		{"channel.icbc.weight", `{"value": 1001}`, 422, "config_value_invalid", "value"},
		{"channel.icbc.weight", `{"value": "10"}`, 422, "config_value_invalid", "value"},
		{"ratelimit.default", `{"value": {"rate_per_s": 10}}`, 422, "config_value_invalid", "value"},
		{"channel.icbc.colour", `{"value": "red"}`, 404, "config_key_unknown", "key"},
		{"nope", `{"value": 1}`, 404, "config_key_unknown", "key"},
		{"switch.payments", `{}`, 400, "invalid_request", "value"},
		{"switch.payments", `{"value": null}`, 400, "invalid_request", "value"},
		{"switch.payments", `{"value": "on", "why": "x"}`, 400, "invalid_request", "why"},
		{"switch.payments", `{"value": "on", "expected_version": -1}`, 400, "invalid_request", "expected_version"},
		{"switch.payments", `{"value": "on", "expected_version": "3"}`, 400, "invalid_request", "expected_version"},
		{"switch.payments", `{"value": "on", "reason": 5}`, 400, "invalid_request", "reason"},
		{"switch.payments", `{"value": "on", "reason": "` + strings.Repeat("r", config.ReasonMaxBytes+1) + `"}`, 400, "invalid_request", "reason"},
		{"switch.payments", `"on"`, 400, "invalid_request", ""},
		{"switch.payments", `{"value": "on"} x`, 400, "invalid_request", ""},
	} {
		t.Run(tc.code+"/"+tc.param, func(t *testing.T) {
			a.as(a.admin, "PUT", "/v1/config/"+tc.key, tc.body).wantError(t, tc.status, tc.code, tc.param)
		})
	}
	if e, _ := a.center.Get(t.Context(), "switch.payments"); e.Version != ch2.Version {
		t.Fatalf("a refused PUT changed the key: %+v", e)
	}

	// History, newest first, with paging by version.
	var h struct {
		Data    []config.Change `json:"data"`
		HasMore bool            `json:"has_more"`
	}
	a.as(a.admin, "GET", "/v1/config/switch.payments/history", "").wantStatus(t, 200).decode(t, &h)
	if len(h.Data) != 2 || h.HasMore || h.Data[0].Version != ch2.Version || h.Data[1].Version != ch.Version || h.Data[1].Reason != "ICBC outage" {
		t.Fatalf("history: %+v", h)
	}
	a.as(a.admin, "GET", "/v1/config/switch.payments/history?limit=1", "").wantStatus(t, 200).decode(t, &h)
	if len(h.Data) != 1 || !h.HasMore || h.Data[0].Version != ch2.Version {
		t.Fatalf("history page 1: %+v", h)
	}
	a.as(a.admin, "GET", fmt.Sprintf("/v1/config/switch.payments/history?limit=1&starting_after=%d", ch2.Version), "").wantStatus(t, 200).decode(t, &h)
	if len(h.Data) != 1 || h.HasMore || h.Data[0].Version != ch.Version {
		t.Fatalf("history page 2: %+v", h)
	}
	a.as(a.admin, "GET", "/v1/config/switch.nothing/history", "").wantStatus(t, 200).decode(t, &h)
	if len(h.Data) != 0 || h.Data == nil {
		t.Fatalf("history of an unset key: %s", a.as(a.admin, "GET", "/v1/config/switch.nothing/history", "").Body)
	}
	a.as(a.admin, "GET", "/v1/config/x.y/history", "").wantError(t, 404, "config_key_unknown", "key")
	a.as(a.admin, "GET", "/v1/config/switch.payments/history?limit=65", "").wantError(t, 400, "invalid_request", "limit")
	a.as(a.admin, "GET", "/v1/config/switch.payments/history?starting_after=v3", "").wantError(t, 400, "invalid_request", "starting_after")

	// List, by key, with a prefix and paging.
	a.put("channel.cmb.weight", `{"value": 20}`)
	a.put("channel.cmb.enabled", `{"value": false}`)
	var l struct {
		Data    []config.Entry `json:"data"`
		HasMore bool           `json:"has_more"`
	}
	keys := func() string {
		var ks []string
		for _, e := range l.Data {
			ks = append(ks, e.Key+"="+string(e.Value))
		}
		return strings.Join(ks, " ")
	}
	a.as(a.admin, "GET", "/v1/config", "").wantStatus(t, 200).decode(t, &l)
	if got := keys(); got != `channel.cmb.enabled=false channel.cmb.weight=20 channel.icbc.weight=10 switch.payments="on"` || l.HasMore {
		t.Fatalf("list: %s (has_more %v)", got, l.HasMore)
	}
	a.as(a.admin, "GET", "/v1/config?prefix=channel.&limit=2", "").wantStatus(t, 200).decode(t, &l)
	if got := keys(); got != `channel.cmb.enabled=false channel.cmb.weight=20` || !l.HasMore {
		t.Fatalf("list page 1: %s (has_more %v)", got, l.HasMore)
	}
	a.as(a.admin, "GET", "/v1/config?prefix=channel.&limit=2&starting_after=channel.cmb.weight", "").wantStatus(t, 200).decode(t, &l)
	if got := keys(); got != `channel.icbc.weight=10` || l.HasMore {
		t.Fatalf("list page 2: %s (has_more %v)", got, l.HasMore)
	}
	a.as(a.admin, "GET", "/v1/config?prefix=risk.", "").wantStatus(t, 200).decode(t, &l)
	if l.Data == nil || len(l.Data) != 0 {
		t.Fatalf("empty list: %+v", l)
	}
	a.as(a.admin, "GET", "/v1/config?limit=0", "").wantError(t, 400, "invalid_request", "limit")
	a.as(a.admin, "GET", "/v1/config?colour=red", "").wantError(t, 400, "invalid_request", "colour")
	a.as(a.admin, "GET", "/v1/config/switch.payments?x=1", "").wantError(t, 400, "invalid_request", "x")
}

// TestConfigAPINeedsAdmin: only admin keys read or change configuration.
func TestConfigAPINeedsAdmin(t *testing.T) {
	a := newConfigAPI(t)
	reader, _ := a.key("reader", "ledger:read", "ledger:write")
	for _, r := range []struct{ pattern, method, path, body string }{
		{"GET /v1/config", "GET", "/v1/config", ""},
		{"GET /v1/config/{key}", "GET", "/v1/config/switch.payments", ""},
		{"PUT /v1/config/{key}", "PUT", "/v1/config/switch.payments", `{"value":"off"}`},
		{"GET /v1/config/{key}/history", "GET", "/v1/config/switch.payments/history", ""},
	} {
		if s := a.api.Scope(r.pattern); s != ScopeAdmin {
			t.Errorf("%s has scope %q", r.pattern, s)
		}
		a.as("", r.method, r.path, r.body).wantError(t, 401, "unauthenticated", "")
		a.as(reader, r.method, r.path, r.body).wantError(t, 403, "forbidden", "")
	}
	if _, err := a.center.Get(t.Context(), "switch.payments"); err == nil {
		t.Fatal("a refused request stored a value")
	}
}
