package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/platform/obs"
)

// startIdempotency returns the Idempotency-Key service on st's database, counting outcomes
// in m, and starts the purge of expired keys. stop ends the purge and waits for it. If st
// keeps no keys, the service is nil and the header is ignored.
func startIdempotency(st ledger.Store, ttl time.Duration, m *obs.Metrics, log *slog.Logger) (svc *idem.Service, stop func()) {
	p, ok := st.(idem.Provider)
	if !ok {
		log.Warn("storage keeps no idempotency keys: the Idempotency-Key header is ignored")
		return nil, func() {}
	}
	svc = idem.New(p.Idempotency(), idem.Config{TTL: ttl, Logger: log, Observe: m.ObserveIdempotency})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Run(ctx)
	}()
	return svc, func() { cancel(); <-done }
}
