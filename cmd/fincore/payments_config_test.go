package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
)

// TestConfigDrivesRouting: channel keys stored in the config center (embedded JetStream)
// reach the router through the watch: disabling a channel takes it out of every ranking.
func TestConfigDrivesRouting(t *testing.T) {
	ctx := t.Context()
	quiet := slog.New(slog.DiscardHandler)
	b, err := bus.Start(ctx, bus.Options{DataDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := config.NewRegistry()
	if err := registerChannelKeys(reg); err != nil {
		t.Fatal(err)
	}
	center, err := config.Open(ctx, b.JetStream(), config.Options{Bucket: fmt.Sprintf("test_routing_%08x", rand.Uint32()), Registry: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer center.Close()
	set := func(key, value string) {
		t.Helper()
		if _, err := center.Set(ctx, key, []byte(value), config.Meta{Actor: "ops"}); err != nil {
			t.Fatal(err)
		}
	}
	set("channel.sim-b.weight", "300") // before the watch: applied when it starts
	router := route.New(route.Options{Seed: 1})
	stop, err := watchChannelConfig(ctx, center, router, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if c := router.Config("sim-b"); c.Weight != 300 || !c.Enabled {
		t.Fatalf("sim-b config %+v", c)
	}
	set("channel.sim-a.enabled", "false")
	set("channel.sim-a.cost_bps", "25")
	waitFor := func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal("change not applied in 5 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(func() bool { c := router.Config("sim-a"); return !c.Enabled && c.CostBps == 25 })
	for range 100 {
		for _, code := range router.Rank(time.Now(), []string{"sim-a", "sim-b"}) {
			if code == "sim-a" {
				t.Fatal("a disabled channel was ranked")
			}
		}
	}
	if _, err := center.Set(ctx, "channel.sim-a.cost_bps", []byte("20000"), config.Meta{}); err == nil {
		t.Fatal("an invalid cost was stored")
	}
}
