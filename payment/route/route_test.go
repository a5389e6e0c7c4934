package route

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestDropScenarioMeetsTargets(t *testing.T) {
	// The targets: within 1.5 points of the oracle, traffic shifted within 30 s.
	// Several seeds, so that a lucky draw cannot pass it.
	for seed := uint64(1); seed <= 3; seed++ {
		res, err := Simulate(DropScenario(200, 3*time.Minute, time.Minute, seed))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d: %+v", seed, res)
		if res.GapPP > 1.5 {
			t.Errorf("seed %d: %.2f points below the oracle, want ≤ 1.5", seed, res.GapPP)
		}
		if res.ShiftSeconds < 0 || res.ShiftSeconds > 30 {
			t.Errorf("seed %d: traffic shifted after %.0f s, want ≤ 30", seed, res.ShiftSeconds)
		}
		if res.Shares["bank-b"] < res.Payments/2 {
			t.Errorf("seed %d: bank-b, best after the drop, got only %d of %d", seed, res.Shares["bank-b"], res.Payments)
		}
	}
}

func TestDisabledAndDrainedChannelsGetNothing(t *testing.T) {
	r := New(Options{Seed: 7})
	must(t, r.Configure("off", ChannelConfig{Enabled: false, Weight: 100}))
	must(t, r.Configure("drained", ChannelConfig{Enabled: true, Weight: 0}))
	for i := 0; i < 1000; i++ {
		got := r.Rank(t0, []string{"off", "drained", "on"})
		if len(got) != 1 || got[0] != "on" {
			t.Fatalf("Rank = %v, want [on]", got)
		}
	}
	must(t, r.Configure("on", ChannelConfig{Enabled: false, Weight: 100}))
	if got := r.Rank(t0, []string{"off", "drained", "on"}); len(got) != 0 {
		t.Fatalf("with every channel off Rank = %v", got)
	}
}

func TestPriorityWinsAmongEquals(t *testing.T) {
	r := New(Options{Seed: 3, Tolerance: 0.05})
	must(t, r.Configure("low", ChannelConfig{Enabled: true, Weight: 100, Priority: 0}))
	must(t, r.Configure("high", ChannelConfig{Enabled: true, Weight: 100, Priority: 5}))
	// Both channels equally good and well known.
	for i := 0; i < 2000; i++ {
		r.Observe(t0, "low", i%10 != 0)
		r.Observe(t0, "high", i%10 != 0)
	}
	high := 0
	for i := 0; i < 1000; i++ {
		if r.Rank(t0, []string{"low", "high"})[0] == "high" {
			high++
		}
	}
	if high < 950 {
		t.Errorf("the higher priority channel got %d of 1000 among equals", high)
	}
}

func TestWeightsSplitAmongEquals(t *testing.T) {
	r := New(Options{Seed: 5, Tolerance: 0.05})
	must(t, r.Configure("a", ChannelConfig{Enabled: true, Weight: 300}))
	must(t, r.Configure("b", ChannelConfig{Enabled: true, Weight: 100}))
	for i := 0; i < 5000; i++ {
		r.Observe(t0, "a", i%20 != 0)
		r.Observe(t0, "b", i%20 != 0)
	}
	a := 0
	const n = 4000
	for i := 0; i < n; i++ {
		if r.Rank(t0, []string{"a", "b"})[0] == "a" {
			a++
		}
	}
	// Expected 3:1, i.e. 75%; allow sampling noise.
	if share := float64(a) / n; share < 0.70 || share > 0.80 {
		t.Errorf("weight 300 vs 100 gave a %.3f share, want about 0.75", share)
	}
}

func TestCostCountsAgainstAChannel(t *testing.T) {
	r := New(Options{Seed: 11})
	must(t, r.Configure("cheap", ChannelConfig{Enabled: true, Weight: 100}))
	must(t, r.Configure("dear", ChannelConfig{Enabled: true, Weight: 100, CostBps: 500})) // 5%
	for i := 0; i < 3000; i++ {
		r.Observe(t0, "cheap", i%100 >= 3) // 97%
		r.Observe(t0, "dear", true)        // 100%, but 5% dearer
	}
	cheap := 0
	for i := 0; i < 1000; i++ {
		if r.Rank(t0, []string{"cheap", "dear"})[0] == "cheap" {
			cheap++
		}
	}
	if cheap < 950 {
		t.Errorf("the cheaper channel (97%% at no cost vs 100%% at 5%%) got %d of 1000", cheap)
	}
}

func TestEvidenceDecaysWithHalfLife(t *testing.T) {
	r := New(Options{HalfLife: 10 * time.Second, Seed: 1})
	for i := 0; i < 100; i++ {
		r.Observe(t0, "a", true)
	}
	v := r.Views(t0.Add(10 * time.Second))
	if len(v) != 1 || v[0].Evidence < 49.99 || v[0].Evidence > 50.01 {
		t.Fatalf("after one half-life the evidence is %+v, want 50", v)
	}
	if v[0].Attempts != 100 || v[0].Successes != 100 {
		t.Errorf("lifetime counters %+v", v[0])
	}
	if want := 51.0 / 52; v[0].SuccessRate != want {
		t.Errorf("success rate %v, want %v", v[0].SuccessRate, want)
	}
}

func TestConfigValidation(t *testing.T) {
	r := New(Options{})
	for _, c := range []ChannelConfig{{Weight: -1}, {Weight: 1001}, {CostBps: -1}, {CostBps: 10001}} {
		if err := r.Configure("x", c); err == nil {
			t.Errorf("Configure(%+v) accepted", c)
		}
	}
	if got := r.Config("never"); got != DefaultConfig {
		t.Errorf("unconfigured channel config %+v", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func BenchmarkRank3(b *testing.B) {
	r := New(Options{Seed: 1})
	codes := []string{"a", "b", "c"}
	for _, c := range codes {
		for i := 0; i < 100; i++ {
			r.Observe(t0, c, i%10 != 0)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.Rank(t0.Add(time.Duration(i)*time.Millisecond), codes)
	}
}

// TestRankAllocatesOnlyItsAnswer: ranking runs for every payment attempt; the ranked list it
// returns is its only allocation.
func TestRankAllocatesOnlyItsAnswer(t *testing.T) {
	r := New(Options{Seed: 7})
	cands := []string{"bank-a", "bank-b", "bank-c"}
	r.Rank(t0, cands) // the channels' states are made on first sight
	if n := testing.AllocsPerRun(200, func() { r.Rank(t0, cands) }); n > 1 {
		t.Errorf("Rank allocates %.0f objects, want 1", n)
	}
}
