package main

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/config"
)

// configAuditor records every change the config center makes in the audit log
// (config.Auditor): action config.set or config.delete, target config:<key>, the old and new
// values, the actor of the change and the id of the request that made it.
type configAuditor struct{ keys *auth.Service }

var _ config.Auditor = configAuditor{}

func (a configAuditor) AuditConfigChange(ctx context.Context, c config.Change) error {
	o := auth.Origin{Actor: c.Actor, RequestID: httpapi.RequestID(ctx)}
	return a.keys.RecordConfigChange(ctx, o, c.Key, c.OldValue, c.Value)
}

// watchAccessConfig applies the config center's rate limits (ratelimit.*) and switches
// (switch.*) to acc: their current values before it returns, then every change, on this
// instance. A value the settings refuse (the center validates before storing, so only a
// bug gets one through) is logged and leaves the setting as it was.
func watchAccessConfig(ctx context.Context, center *config.Center, acc *access, log *slog.Logger) (stop func(), err error) {
	set := acc.Settings()
	var stops []func()
	stop = func() {
		for _, s := range stops {
			s()
		}
	}
	for _, prefix := range []string{"ratelimit.", auth.PrefixSwitch} {
		s, err := center.Watch(ctx, prefix, func(key string, value json.RawMessage, version uint64) {
			if err := set.Apply(key, value); err != nil {
				log.Error("configuration refused by the access settings", "key", key, "version", version, "err", err)
			}
		})
		if err != nil {
			stop()
			return nil, err
		}
		stops = append(stops, s)
	}
	return stop, nil
}
