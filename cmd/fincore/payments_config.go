package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"

	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/platform/config"
)

// registerChannelKeys adds the channel keys the config center lacks to reg: a channel's fee
// in basis points, which the router weighs against its success rate.
func registerChannelKeys(reg *config.Registry) error {
	return reg.Register(config.Spec{Pattern: "channel.<code>.cost_bps", Type: "int 0..10000",
		Doc: "The channel's fee in basis points of the amount; the router counts 1% of fee as one point of success rate.", Validate: config.Int(0, 10000)})
}

// watchChannelConfig applies the config center's channel keys (channel.<code>.enabled,
// .weight, .priority, .cost_bps) to the router on this instance: the current values before it
// returns, then every change as the center pushes it. A deleted key returns that setting to
// the router's default. A value the router refuses is logged and ignored.
func watchChannelConfig(ctx context.Context, center *config.Center, router *route.Router, log *slog.Logger) (stop func(), err error) {
	var mu sync.Mutex
	return center.Watch(ctx, "channel", func(key string, value json.RawMessage, version uint64) {
		parts := strings.Split(key, ".")
		if len(parts) != 3 {
			return
		}
		code, field := parts[1], parts[2]
		mu.Lock()
		defer mu.Unlock()
		cfg := router.Config(code)
		def := route.DefaultConfig
		var err error
		switch field {
		case "enabled":
			cfg.Enabled = def.Enabled
			if value != nil {
				err = json.Unmarshal(value, &cfg.Enabled)
			}
		case "weight":
			cfg.Weight = def.Weight
			if value != nil {
				err = json.Unmarshal(value, &cfg.Weight)
			}
		case "priority":
			cfg.Priority = def.Priority
			if value != nil {
				err = json.Unmarshal(value, &cfg.Priority)
			}
		case "cost_bps":
			cfg.CostBps = def.CostBps
			if value != nil {
				err = json.Unmarshal(value, &cfg.CostBps)
			}
		default:
			return
		}
		if err == nil {
			err = router.Configure(code, cfg)
		}
		if err != nil {
			log.Error("channel configuration refused by the router", "key", key, "version", version, "err", err)
			return
		}
		log.Info("channel configuration applied", "channel", code, "key", key, "version", version)
	})
}
