package bench

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/sqlite"
)

func TestPickHot(t *testing.T) {
	cfg := LedgerConfig{Scenario: "hot", Batch: 1, Clients: 1, Accounts: 1000}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	hot := 0
	const n = 100_000
	for i := 0; i < n; i++ {
		dr, cr := pick(rng, &cfg)
		if dr == cr || dr < cfg.HotCount {
			t.Fatalf("pick gave debit %d credit %d", dr, cr)
		}
		if cr < cfg.HotCount {
			hot++
		}
	}
	if share := float64(hot) / n; share < 0.89 || share > 0.91 {
		t.Fatalf("hot share of credits = %.3f, want 0.90", share)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []LedgerConfig{
		{Scenario: "skewed", Batch: 1, Clients: 1},
		{Batch: 0, Clients: 1},
		{Batch: ledger.BatchMax + 1, Clients: 1},
		{Batch: 1, Clients: 0},
		{Batch: 1, Clients: 1, Accounts: 5},
	} {
		if err := cfg.defaults(); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
}

// TestRunLedger drives a real engine briefly and checks that what the run reports is what
// the ledger holds.
func TestRunLedger(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng, err := ledger.Open(ctx, st, ledger.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	const accounts = 50
	if err := SetupAccounts(ctx, eng, accounts, "CNY"); err != nil {
		t.Fatal(err)
	}
	if err := SetupAccounts(ctx, eng, accounts, "CNY"); err != nil {
		t.Fatalf("setup is not idempotent: %v", err)
	}
	res, err := RunLedger(ctx, LedgerConfig{Scenario: "uniform", Batch: 5, Clients: 4, Duration: 300 * time.Millisecond, Accounts: accounts}, EngineSubmitter{eng})
	if err != nil {
		t.Fatal(err)
	}
	if res.Transfers == 0 || res.Failed != 0 || res.TransfersPerS <= 0 || res.P99Ms < res.P50Ms {
		t.Fatalf("result %+v", res)
	}
	var credits int64
	for i := 0; i < accounts; i++ {
		a, err := eng.Account(ctx, AccountID(i))
		if err != nil {
			t.Fatal(err)
		}
		credits += a.Balances.CreditsPosted
	}
	rep, err := ledger.Verify(ctx, st)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
	if rep.Records != res.Transfers || credits == 0 {
		t.Fatalf("run reported %d transfers, journal holds %d", res.Transfers, rep.Records)
	}
}
