package obs_test

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
	"github.com/fincore/fincore/platform/obs"
)

// TestConfigMetrics: a stored change counts once, and each watcher that applies it records its
// latency and moves the version gauge.
func TestConfigMetrics(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	b, err := bus.Start(t.Context(), bus.Options{DataDir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := obs.New()
	if _, ok := scrapeRegistry(t, m)["fincore_config_version"]; ok {
		t.Fatal("config metrics registered before a Center asked for them")
	}
	c, err := config.Open(t.Context(), b.JetStream(), config.Options{Observer: m.ConfigObserver(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m.ConfigObserver() != m.ConfigObserver() {
		t.Fatal("ConfigObserver returned two observers")
	}
	applied := make(chan uint64, 4)
	for range 2 {
		stop, err := c.Watch(t.Context(), "switch.", func(_ string, _ json.RawMessage, v uint64) { applied <- v })
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
	}
	ch, err := c.Set(t.Context(), "switch.pay", []byte(`"off"`), config.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	<-applied
	<-applied
	// The latency is recorded just after the watcher's function returns.
	var fams map[string]*dto.MetricFamily
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		fams = scrapeRegistry(t, m)
		if fams["fincore_config_apply_seconds"].GetMetric()[0].GetHistogram().GetSampleCount() == 2 || time.Now().After(deadline) {
			break
		}
	}
	if v := fams["fincore_config_changes_total"].GetMetric()[0].GetCounter().GetValue(); v != 1 {
		t.Errorf("fincore_config_changes_total = %v, want 1", v)
	}
	if v := fams["fincore_config_version"].GetMetric()[0].GetGauge().GetValue(); v != float64(ch.Version) {
		t.Errorf("fincore_config_version = %v, want %d", v, ch.Version)
	}
	h := fams["fincore_config_apply_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() < 0 || h.GetSampleSum() > 10 {
		t.Errorf("fincore_config_apply_seconds: %d samples, sum %v; want 2 samples", h.GetSampleCount(), h.GetSampleSum())
	}
}
