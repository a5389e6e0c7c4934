package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/platform/obs"
)

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(obs.LogHandler(slog.NewJSONHandler(os.Stderr, opts))), nil
	case "text":
		return slog.New(obs.LogHandler(slog.NewTextHandler(os.Stderr, opts))), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text")
}

// newHandler returns the API on eng with the operational routes: GET /metrics from m (which
// should also be eng's ledger.Config.Observer) and GET /readyz on eng and st.
func newHandler(eng *ledger.Engine, st ledger.Store, m *obs.Metrics, log *slog.Logger) *httpapi.Server {
	m.WatchEngine(eng)
	api := httpapi.NewServer(eng, httpapi.Options{Logger: log, Observe: m.ObserveHTTP})
	api.Handle("GET /metrics", m.Handler())
	api.Handle("GET /readyz", obs.Ready(api, log, obs.LedgerReady(eng, st)))
	return api
}

// cmdServe runs the server until SIGINT or SIGTERM, then drains in-flight requests, lets
// the ledger writer finish its group, and closes storage.
func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	demo := fs.Bool("demo", false, "seed demo accounts and generate a gentle stream of demo traffic")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "json or text")
	natsURL := fs.String("nats", "", "URL of an external NATS JetStream cluster; default: an embedded server")
	natsListen := fs.String("nats-listen", "", "also let other processes reach the embedded NATS server on this address (default: no TCP listener)")
	var sf storeFlags
	sf.register(fs, true)
	var af authFlags
	af.register(fs)
	var tf traceFlags
	tf.register(fs)
	var pf paymentFlags
	pf.register(fs)
	idemTTL := fs.Duration("idempotency-ttl", idem.DefaultTTL, "how long an Idempotency-Key is remembered")
	var lf lockFlags
	lf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	tuneGC()
	stopTracing, err := tf.start(log)
	if err != nil {
		return err
	}
	defer stopTracing()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := sf.openLedgerStore(ctx, sf.migrate)
	if err != nil {
		return err
	}
	defer st.Close()
	busData := filepath.Join(sf.data, "nats")
	if sf.data == "" {
		busData = filepath.Join(".", "fincore-data", "nats")
	}
	b, err := bus.Start(ctx, bus.Options{DataDir: busData, URL: *natsURL, Listen: *natsListen, Logger: log})
	if err != nil {
		return fmt.Errorf("event bus: %w", err)
	}
	defer b.Close()
	if u := b.ClientURL(); u != "" {
		log.Info("embedded NATS listening", "url", u)
	}
	if err := ensureEventStreams(ctx, b, outboxSubjects(), log); err != nil {
		return fmt.Errorf("event streams: %w", err)
	}
	relay, err := newLedgerRelay(st, b, log)
	if err != nil {
		return fmt.Errorf("event outbox: %w", err)
	}
	metrics := obs.New()
	timers, err := newTimerService(ctx, st, b, metrics, log)
	if err != nil {
		return fmt.Errorf("timers: %w", err)
	}
	lessor, err := lf.lessor(ctx, &sf, st, b, metrics, log)
	if err != nil {
		return err
	}
	eng, err := ledger.Open(ctx, gateCommits(st), ledger.Config{Logger: log, Observer: metrics, Committed: relay.Notify, TracerProvider: otel.GetTracerProvider(),
		TimersCommitted: timers.Committed, Lessor: lessor, CommitInterval: ledgerCommitInterval})
	if err != nil {
		return err
	}
	defer eng.Close()
	metrics.WatchOutbox(relay.Lag)
	relay.Start()
	defer relay.Stop() // before the bus closes; what it leaves unpublished goes out on the next start
	timers.Register(ledger.ExpiryHandler, eng.ExpireTimer)
	riskEng, err := newRiskEngine(ctx, st, log, metrics)
	if err != nil {
		return fmt.Errorf("risk engine: %w", err)
	}
	defer riskEng.Close()
	key, err := cardKey(sf.data, sf.postgres == "")
	if err != nil {
		return err
	}
	pays, err := newPayments(ctx, eng, st, timers, riskEng, key, pf, metrics, log)
	if err != nil {
		return fmt.Errorf("payments: %w", err)
	}
	defer pays.Close() // after the timers stop: their handlers call the banks
	creditSvc, err := newCredit(ctx, eng, st, timers, riskEng, metrics, log)
	if err != nil {
		return fmt.Errorf("credit: %w", err)
	}
	if err := timers.Start(context.Background()); err != nil {
		return err
	}
	defer timers.Stop() // first: its handlers use the engine and the bus
	idems, stopIdems := startIdempotency(st, *idemTTL, metrics, log)
	defer stopIdems()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	api := withCredit(withPayments(withRisk(newHandler(eng, st, metrics, log), riskEng), pays), creditSvc)
	api = withRecon(api, pays)
	api.UseIdempotency(idems)
	acc, err := af.enableAuth(ctx, api, st, metrics, log, os.Stderr)
	if err != nil {
		return err
	}
	reg := config.NewRegistry()
	if err := registerChannelKeys(reg); err != nil {
		return err
	}
	center, err := startConfig(ctx, b, api, acc, reg, metrics, log)
	if err != nil {
		return fmt.Errorf("config center: %w", err)
	}
	defer center.Close() // before the bus closes
	if _, err := watchChannelConfig(ctx, center, pays.router, log); err != nil {
		return fmt.Errorf("config center: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	where := "embedded storage in " + sf.data
	if sf.postgres != "" {
		where = "PostgreSQL"
	}
	log.Info("fincore listening", "addr", "http://"+ln.Addr().String(), "storage", where, "version", versionString())
	fmt.Fprintf(os.Stderr, "fincore is listening on http://%s (%s)\n", ln.Addr(), where)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if *demo {
		if err := seedDemo(ctx, eng); err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
		screen, err := seedDemoRisk(ctx, riskEng, log)
		if err != nil {
			return fmt.Errorf("seed demo risk rules: %w", err)
		}
		go demoTraffic(ctx, eng, screen, log)
		cards, err := seedPaymentsDemo(ctx, pays.svc)
		if err != nil {
			return fmt.Errorf("seed payments demo: %w", err)
		}
		go paymentsDemoTraffic(ctx, pays.svc, cards, log)
		if err := seedCreditDemo(ctx, creditSvc); err != nil {
			return fmt.Errorf("seed credit demo: %w", err)
		}
		if err := printDemo(ctx, acc.Keys, ln.Addr().String()); err != nil {
			return fmt.Errorf("demo key: %w", err)
		}
	}
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}
