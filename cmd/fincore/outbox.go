package main

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/outbox"
)

// ledgerStream is the stream that holds the ledger's events (docs/events.md).
const ledgerStream = "LEDGER"

// newLedgerRelay ensures the ledger's stream and returns a relay (not started) from st's
// outbox to it. Give its Notify to the engine as ledger.Config.Committed.
func newLedgerRelay(ctx context.Context, st ledger.Store, b *bus.Bus, log *slog.Logger) (*outbox.Relay, error) {
	p, ok := st.(outbox.Provider)
	if !ok {
		return nil, fmt.Errorf("storage %T has no outbox", st)
	}
	if err := b.EnsureStream(ctx, ledgerStream, []string{"ledger.>"}); err != nil {
		return nil, err
	}
	return outbox.NewRelay(p.Outbox(), b, outbox.Config{Logger: log, TracerProvider: otel.GetTracerProvider()}), nil
}
