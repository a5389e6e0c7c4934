package timer

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer("github.com/fincore/fincore/platform/timer")
}

// deliverTraced delivers e's timer inside a "timer.fire" span, the root of a trace of its
// own: the handler's work (a ledger write, a bus publish) becomes its child.
func (s *Service) deliverTraced(ctx context.Context, e *entry, started time.Time) error {
	ctx, span := s.tracer.Start(ctx, "timer.fire", trace.WithNewRoot(), trace.WithAttributes(
		attribute.String("timer.handler", e.t.Handler),
		attribute.String("timer.id", e.t.ID),
		attribute.Int("timer.attempt", e.attempts+1),
		attribute.Float64("timer.lateness_ms", float64(started.Sub(e.due))/float64(time.Millisecond)),
	))
	defer span.End()
	err := s.deliver(ctx, e.t)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	return err
}
