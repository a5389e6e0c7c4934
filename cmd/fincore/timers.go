package main

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/timer"
)

// timerStream holds the messages of timers that publish to the bus on subjects under
// "timer." (docs/timers.md). Timers may publish to other subjects too, as long as some
// stream captures them.
const timerStream = "TIMERS"

// newTimerService returns the durable timer service (not started) over the timers of st's
// database, publishing bus timers through b and reporting to m. Register in-process handlers
// on it, then Start it; Stop it before the bus closes.
func newTimerService(ctx context.Context, st ledger.Store, b *bus.Bus, m *obs.Metrics, log *slog.Logger) (*timer.Service, error) {
	p, ok := st.(timer.Provider)
	if !ok {
		return nil, fmt.Errorf("storage %T has no timers", st)
	}
	if err := b.EnsureStream(ctx, timerStream, []string{"timer.>"}); err != nil {
		return nil, err
	}
	svc, err := timer.New(timer.Config{Store: p.Timers(), Publisher: b, Observer: m, Logger: log, TracerProvider: otel.GetTracerProvider(),
		DoneWait: timerDoneWait, Workers: timerWorkers})
	if err != nil {
		return nil, err
	}
	m.WatchTimers(svc)
	return svc, nil
}
