package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
	"github.com/fincore/fincore/platform/obs"
)

// authConfigPatterns are the configuration keys the access settings apply (rate limits and
// degradation switches).
var authConfigPatterns = []string{"ratelimit.default", "ratelimit.key.<key_id>", "switch.<name...>"}

// startConfig opens the config center on b's JetStream with the keys of reg (the built-in ones
// and those modules registered) and wires it in: values of the keys the access settings
// apply must also pass their checks (a key id's form, say), every change
// is written to the audit log, this instance applies rate limits and switches as they change
// (the stored values first, over the flags' static ones), metrics go to m, and api serves
// /v1/config. Close the center before the bus.
func startConfig(ctx context.Context, b *bus.Bus, api *httpapi.Server, acc *access, reg *config.Registry, m *obs.Metrics, log *slog.Logger) (*config.Center, error) {
	for _, p := range authConfigPatterns {
		if err := reg.AddCheck(p, acc.Settings().Validate); err != nil {
			return nil, err
		}
	}
	c, err := config.Open(ctx, b.JetStream(), config.Options{
		Registry: reg, Auditor: configAuditor{acc.Keys}, Observer: m.ConfigObserver(), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	// The watches end when the center closes.
	if _, err := watchAccessConfig(ctx, c, acc, log); err != nil {
		c.Close()
		return nil, fmt.Errorf("apply access settings: %w", err)
	}
	api.RegisterConfig(c)
	return c, nil
}
