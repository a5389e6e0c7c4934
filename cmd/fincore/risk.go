package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/risk"
)

// newRiskEngine opens the risk engine on the storage of st: rule sets, lists, and the feature
// state rebuilt from the snapshot and the event log.
func newRiskEngine(ctx context.Context, st ledger.Store, log *slog.Logger) (*risk.Engine, error) {
	p, ok := st.(risk.Provider)
	if !ok {
		return nil, fmt.Errorf("storage %T has no risk store", st)
	}
	return risk.Open(ctx, p.Risk(), risk.Config{Logger: log})
}

// withRisk adds the risk routes to the API.
func withRisk(api *httpapi.Server, eng *risk.Engine) *httpapi.Server {
	api.RegisterRisk(eng)
	return api
}
