package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracingOptions configure OpenTelemetry tracing.
type TracingOptions struct {
	// Endpoint is the OTLP/HTTP collector URL, e.g. "http://127.0.0.1:4318". A URL with no
	// path gets the standard "/v1/traces"; a URL with a path is used as it is. "" turns
	// tracing off: no spans are recorded and nothing is sent.
	Endpoint string
	// SampleRatio is the share of new traces recorded, from 0 to 1. A request whose client
	// sent a traceparent follows the client's sampling decision instead.
	SampleRatio float64
	// ServiceName and ServiceVersion describe this process in every span (service.name,
	// service.version).
	ServiceName    string
	ServiceVersion string
	// Logger receives the exporter's errors (a collector that is down loses spans, never
	// requests).
	Logger *slog.Logger
}

// Tracing is the process's tracer provider.
type Tracing struct {
	trace.TracerProvider
	sdk *sdktrace.TracerProvider // nil when tracing is off
	log *slog.Logger
}

// Shutdown sends the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// exportURL turns Endpoint into the URL the exporter posts to.
func exportURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--otlp-endpoint %q must be an http:// or https:// URL such as http://127.0.0.1:4318", endpoint)
	}
	if strings.Trim(u.Path, "/") == "" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// NewTracing returns the tracer provider o describes: a no-op when o.Endpoint is "", else
// the OpenTelemetry SDK sampling o.SampleRatio of new traces and exporting spans over
// OTLP/HTTP (protobuf) in batches. The exporter's queue is bounded (2,048 spans): when the
// collector cannot keep up, spans are dropped, never requests delayed.
func NewTracing(o TracingOptions) (*Tracing, error) {
	if o.Endpoint == "" {
		return &Tracing{TracerProvider: noop.NewTracerProvider(), log: o.Logger}, nil
	}
	if !(o.SampleRatio >= 0 && o.SampleRatio <= 1) {
		return nil, errors.New("the trace sample ratio must be between 0 and 1")
	}
	u, err := exportURL(o.Endpoint)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// New only configures the exporter; it connects when it first exports.
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(u))
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	name := o.ServiceName
	if name == "" {
		name = "fincore"
	}
	res := resource.NewSchemaless(semconv.ServiceName(name), semconv.ServiceVersion(o.ServiceVersion))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return &Tracing{TracerProvider: tp, sdk: tp, log: o.Logger}, nil
}

// Install makes t the process's global tracer provider, which every package that was not
// given a provider of its own uses, W3C trace context the global propagator, and t's logger
// the receiver of OpenTelemetry's internal errors (an exporter that cannot reach its
// collector).
func (t *Tracing) Install() {
	if log := t.log; log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err) }))
	}
	otel.SetTracerProvider(t.TracerProvider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
}
