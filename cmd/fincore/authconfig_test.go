package main

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/store/sqlite"
)

// TestConfigDrivesAccess: a change stored in the config center (embedded JetStream) reaches
// the limiter and the switches through the watch, and lands in the audit log with its actor,
// old and new values.
func TestConfigDrivesAccess(t *testing.T) {
	ctx := t.Context()
	quiet := slog.New(slog.DiscardHandler)
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	api := httpapi.NewServer(eng, httpapi.Options{Logger: quiet})
	af := authFlags{rateLimit: "50:100"}
	acc, err := af.enableAuth(ctx, api, st, obs.New(), quiet, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Start(ctx, bus.Options{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	center, err := config.Open(ctx, b.JetStream(), config.Options{Bucket: fmt.Sprintf("test_access_%08x", rand.Uint32()),
		Auditor: configAuditor{acc.Keys}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	// A value stored before the watch starts is applied when it starts.
	if _, err := center.Set(ctx, "switch.ledger", []byte(`"degraded"`), config.Meta{Actor: "fk_00000000000000aa"}); err != nil {
		t.Fatal(err)
	}
	stop, err := watchAccessConfig(ctx, center, acc, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if acc.Switches.State("ledger") != auth.Degraded {
		t.Fatal("the stored switch was not applied at start")
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	const keyID = "fk_0123456789abcdef"
	for _, kv := range [][2]string{
		{"ratelimit.key." + keyID, `{"rate_per_s": 2, "burst": 3}`},
		{"ratelimit.default", `{"rate_per_s": 10, "burst": 20}`},
		{"switch.ledger", `"off"`},
	} {
		if _, err := center.Set(ctx, kv[0], []byte(kv[1]), config.Meta{Actor: "fk_00000000000000aa"}); err != nil {
			t.Fatal(err)
		}
	}
	eventually("settings applied", func() bool {
		def, per := acc.Limits.Limits()
		return per[keyID] == (auth.Limit{RatePerS: 2, Burst: 3}) && def == (auth.Limit{RatePerS: 10, Burst: 20}) && acc.Switches.State("ledger") == auth.Off
	})
	es, _, err := acc.Keys.ListAudit(ctx, "", "fk_00000000000000aa", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 || es[0].Action != auth.ActionConfigSet || es[0].Target != "config:switch.ledger" ||
		string(es[0].Before) != `"degraded"` || string(es[0].After) != `"off"` || es[3].Before != nil {
		t.Fatalf("audit entries: %+v", es)
	}
}
