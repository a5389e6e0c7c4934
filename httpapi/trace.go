package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/fincore/fincore/apierror"
)

// Tracing uses only the OpenTelemetry API; the program chooses the SDK and exporter (or none,
// and every span is a no-op).

// propagator reads the W3C traceparent and tracestate headers of a request.
var propagator = propagation.TraceContext{}

// Span attributes of this package beyond the semantic conventions.
const (
	attrRequestID = attribute.Key("fincore.request_id")
	attrErrorCode = attribute.Key("fincore.error_code")
)

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer("github.com/fincore/fincore/httpapi")
}

// startSpan starts the server span of r, as a child of the client's span when r carries a
// traceparent header. It is named after the method until the route is known.
func (s *Server) startSpan(r *http.Request, requestID string) (context.Context, trace.Span) {
	ctx := r.Context()
	if r.Header.Get("Traceparent") != "" {
		ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	attrs := [...]attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(boundedMethod(r.Method)),
		semconv.URLPath(r.URL.Path),
		attrRequestID.String(requestID),
	}
	return s.tracer.Start(ctx, boundedMethod(r.Method), serverSpan, trace.WithAttributes(attrs[:]...))
}

// serverSpan is the option of every server span, made once.
var serverSpan = trace.WithSpanKind(trace.SpanKindServer)

// endSpan names the span after the route pattern that served the request ("POST
// /v1/transfers"), records the outcome and ends it. route is "" when no route matched.
func endSpan(span trace.Span, route string, status int, code apierror.Code, panicked any) {
	if !span.IsRecording() {
		// Without a tracing SDK (or for a span not sampled) the calls below do nothing, but
		// their arguments would still be built for every request.
		span.End()
		return
	}
	if route != "" {
		span.SetName(route)
		if _, path, ok := strings.Cut(route, " "); ok {
			span.SetAttributes(semconv.HTTPRoute(path))
		}
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if code != "" {
		span.SetAttributes(attrErrorCode.String(string(code)))
	}
	if panicked != nil {
		span.AddEvent("panic", trace.WithAttributes(attribute.String("panic", fmt.Sprint(panicked))))
	}
	// A server span is in error for a 5xx only: a 4xx is the client's mistake, answered as
	// designed.
	if status >= 500 {
		span.SetStatus(codes.Error, string(code))
	}
	span.End()
}

// boundedMethod keeps span names and attributes to the standard methods ("_OTHER" for the
// rest, as the semantic conventions ask), so a client cannot mint unbounded names.
func boundedMethod(m string) string {
	if StandardMethod(m) {
		return m
	}
	return "_OTHER"
}

// StandardMethod reports whether m is one of the methods HTTP defines. Telemetry names
// other methods by a placeholder, to keep label and span name sets bounded.
func StandardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}
