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

// demoScreen is asked about each demo ledger purchase before it is posted; a purchase it
// refuses is not posted.
type demoScreen func(ctx context.Context, id, user, merchant string, amount int64) bool

// seedDemoRisk makes the cash-out pack the active "payment" rule set (unless one is active
// already) — the rule set that screens the cashier's payments too (docs/payments.md) — and
// returns the screen of the demo's ledger purchases, which asks the same rule set.
func seedDemoRisk(ctx context.Context, eng *risk.Engine, log *slog.Logger) (demoScreen, error) {
	if h, ok := eng.RuleSet(PaymentRuleSet); !ok || h.Active == 0 {
		src, err := fs.ReadFile(rulesets.Packs, "cash_out.yaml")
		if err != nil {
			return nil, err
		}
		sum, err := eng.PutRuleSet(ctx, PaymentRuleSet, src)
		if err != nil {
			return nil, err
		}
		if _, err := eng.Activate(ctx, PaymentRuleSet, sum.Version, 0); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, id, user, merchant string, amount int64) bool {
		raw := fmt.Sprintf(`{"type":"payment","id":%q,"timestamp":%q,"user_id":%q,"merchant_id":%q,"amount":%d}`,
			id, time.Now().UTC().Format(time.RFC3339Nano), user, merchant, amount)
		ev, err := risk.ParseEvent([]byte(raw))
		if err != nil {
			return false
		}
		d, err := eng.DecideBrief(ctx, PaymentRuleSet, ev)
		if err != nil {
			log.Debug("demo risk decision failed", "id", id, "err", err)
			return true
		}
		if d.Decision == risk.Reject {
			log.Info("demo payment rejected by risk", "id", id, "score", d.Score, "reasons", len(d.RuleHits()))
			return false
		}
		return true
	}, nil
}
