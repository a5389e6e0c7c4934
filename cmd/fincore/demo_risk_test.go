package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/store/sqlite"
)

// TestDemoPaymentsGoThroughRisk checks that the demo's payments are screened by the risk
// engine: ordinary ones pass, one to a listed cash-out merchant is refused, and both are
// decisions the engine counted.
func TestDemoPaymentsGoThroughRisk(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eng, err := risk.Open(ctx, db.Risk(), risk.Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	demoScreen, err := seedDemoRisk(ctx, eng, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if !demoScreen(ctx, "p1", "demo:user:1", "demo:merchant:1", 1234) {
		t.Fatal("ordinary demo payment refused")
	}
	if _, err := eng.AddListItems(ctx, "cashout_merchants", []string{"demo:merchant:2"}); err != nil {
		t.Fatal(err)
	}
	if demoScreen(ctx, "p2", "demo:user:1", "demo:merchant:2", 1234) {
		t.Fatal("payment to a listed cash-out merchant passed")
	}
	if n := eng.Stats().Decisions; n != 2 {
		t.Fatalf("decisions %d", n)
	}
}
