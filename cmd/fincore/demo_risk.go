package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/fincore/fincore/risk"
	"github.com/fincore/fincore/rulesets"
)

// demoRuleSet is the rule set the demo's payments are screened by: the cash-out pack.
const demoRuleSet = "demo-payments"

// demoScreen, when set, is asked about each demo payment before it is posted; a payment it
// refuses is not posted.
var demoScreen func(ctx context.Context, id, user, merchant string, amount int64) bool

// seedDemoRisk installs the cash-out pack as the demo's rule set and routes the demo's
// payments through the risk engine.
func seedDemoRisk(ctx context.Context, eng *risk.Engine, log *slog.Logger) error {
	src, err := fs.ReadFile(rulesets.Packs, "cash_out.yaml")
	if err != nil {
		return err
	}
	sum, err := eng.PutRuleSet(ctx, demoRuleSet, src)
	if err != nil {
		return err
	}
	if _, err := eng.Activate(ctx, demoRuleSet, sum.Version, 0); err != nil {
		return err
	}
	demoScreen = func(ctx context.Context, id, user, merchant string, amount int64) bool {
		raw := fmt.Sprintf(`{"type":"payment","id":%q,"timestamp":%q,"user_id":%q,"merchant_id":%q,"amount":%d}`,
			id, time.Now().UTC().Format(time.RFC3339Nano), user, merchant, amount)
		ev, err := risk.ParseEvent([]byte(raw))
		if err != nil {
			return false
		}
		d, err := eng.Decide(ctx, demoRuleSet, ev)
		if err != nil {
			log.Debug("demo risk decision failed", "id", id, "err", err)
			return true
		}
		if d.Decision == risk.Reject {
			log.Info("demo payment rejected by risk", "id", id, "score", d.Score, "reasons", len(d.Reasons))
			return false
		}
		return true
	}
	return nil
}
