package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/fincore/fincore/platform/obs"
)

// traceFlags are the flags that turn OpenTelemetry tracing on.
type traceFlags struct {
	endpoint string
	ratio    float64
}

func (f *traceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "otlp-endpoint", "", "export OpenTelemetry traces over OTLP/HTTP to this collector URL, e.g. http://127.0.0.1:4318 (default: tracing off)")
	fs.Float64Var(&f.ratio, "trace-sample-ratio", 1, "with --otlp-endpoint: share of new traces recorded, 0 to 1 (a client's traceparent decides for its own requests)")
}

// start installs the tracer provider the flags describe and returns the function that flushes
// and stops it.
func (f *traceFlags) start(log *slog.Logger) (stop func(), err error) {
	t, err := obs.NewTracing(obs.TracingOptions{
		Endpoint: f.endpoint, SampleRatio: f.ratio, ServiceName: "fincore", ServiceVersion: versionString(), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	t.Install()
	if f.endpoint != "" {
		log.Info("tracing on", "otlp_endpoint", f.endpoint, "sample_ratio", f.ratio)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(ctx); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}, nil
}
