package ledger

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing. The engine uses only the OpenTelemetry API (not even its global provider, whose
// package brings in net/http): Config.TracerProvider, a no-op by default, makes the spans. Each write request gets a "ledger.write" span in its
// caller's trace, covering the wait in the queue and the commit. A group commit serves many
// requests from many traces, so its "ledger.commit" span is the child of the first request
// in the group that is being sampled and links to the others; every other request's span
// links back to it, so each trace leads to the commit that made its request durable.

const tracerName = "github.com/fincore/fincore/ledger"

// commitLinksMax bounds the links of one commit span (a group may hold thousands of
// requests; the SDK's own default limit is 128).
const commitLinksMax = 64

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// startWrite starts the span of a write request and records it on r for the commit to find.
func (e *Engine) startWrite(ctx context.Context, r *request) (context.Context, trace.Span) {
	ctx, span := e.tracer.Start(ctx, "ledger.write", trace.WithAttributes(
		attribute.Int("ledger.accounts", len(r.accounts)),
		attribute.Int("ledger.transfers", len(r.transfers)),
		attribute.Bool("ledger.atomic", r.atomic),
	))
	r.span = span.SpanContext()
	return ctx, span
}

// endWrite ends a write request's span, linking it to its commit's span. The writer's fields
// of r are read only once it has answered (a caller that gave up early must not read them).
func endWrite(span trace.Span, r *request, err error) {
	select {
	case <-r.done:
		if r.commit.IsValid() && !r.commitChild {
			span.AddLink(trace.Link{SpanContext: r.commit})
		}
		if err == nil {
			err = r.err
		}
	default:
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// startCommit starts the span of a group commit and tells the group's requests about it.
func (e *Engine) startCommit(g *group) (context.Context, trace.Span) {
	var parent trace.SpanContext
	for _, r := range g.reqs {
		if r.span.IsSampled() {
			parent = r.span
			break
		}
	}
	ctx := context.Background()
	if parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	var links []trace.Link
	for _, r := range g.reqs {
		if len(links) == commitLinksMax {
			break
		}
		if r.span.IsValid() && !r.span.Equal(parent) {
			links = append(links, trace.Link{SpanContext: r.span})
		}
	}
	b := &g.batch
	ctx, span := e.tracer.Start(ctx, "ledger.commit", trace.WithLinks(links...), trace.WithAttributes(
		attribute.Int("ledger.requests", len(g.reqs)),
		attribute.Int("ledger.inputs", g.inputs),
		attribute.Int("ledger.records", len(b.Transfers)),
		attribute.Int("ledger.accounts_created", len(b.NewAccounts)),
		attribute.Int("ledger.events", len(b.Events)),
	))
	sc := span.SpanContext()
	for _, r := range g.reqs {
		// Read by the submitter only after r.done is closed.
		r.commit = sc
		r.commitChild = parent.IsValid() && r.span.Equal(parent)
	}
	return ctx, span
}

func endCommit(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	span.End()
}
