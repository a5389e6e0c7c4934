package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/fincore/fincore/bank/iso8583"
	"github.com/fincore/fincore/bank/sim"
)

// cmdBankSim serves a simulated bank over HTTP until SIGINT or SIGTERM.
func cmdBankSim(args []string) error {
	fs := flag.NewFlagSet("bank-sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "address to listen on (HTTP interface)")
	isoAddr := fs.String("iso-addr", "", "also serve the bank as an ISO 8583 host on this TCP address (its async rate must be 0)")
	name := fs.String("name", "SIM", "bank name, the prefix of its references")
	seed := fs.Uint64("seed", 0, "random seed (0: random)")
	var p sim.Profile
	fs.DurationVar(&p.Median, "median", 20*time.Millisecond, "median answer latency")
	fs.DurationVar(&p.P99, "p99", 200*time.Millisecond, "99th percentile answer latency (log-normal)")
	fs.Float64Var(&p.DeclineRate, "decline", 0.03, "share of payments the issuer declines")
	issuerDecline := fs.String("issuer-decline", "", "decline rates of issuing banks, instead of --decline for their cards: BANK=rate[,BANK=rate...]")
	fs.Float64Var(&p.InsufficientRate, "insufficient", 0.02, "share of payments refused for insufficient funds")
	fs.Float64Var(&p.SystemErrorRate, "system-error", 0.01, "share of requests failing at the bank before charging")
	fs.Float64Var(&p.DropRate, "drop", 0.005, "share of requests lost on the way in (never answered, never charged)")
	fs.Float64Var(&p.LostAnswerRate, "lost-answer", 0.005, "share of requests charged whose answer is lost")
	fs.Float64Var(&p.AsyncRate, "async", 0.1, "share of requests answered 'pending' and decided later by notification")
	fs.Float64Var(&p.DuplicateNotifyRate, "duplicate-notify", 0.1, "share of notifications sent twice")
	fs.DurationVar(&p.NotifyDelayMax, "notify-delay", 500*time.Millisecond, "notifications are delayed by up to this (so they reorder)")
	notifyURL := fs.String("notify-url", "", "URL that receives signed notifications (none if empty)")
	secret := fs.String("secret", os.Getenv("FINCORE_BANK_SIM_SECRET"), "notification signing secret (default $FINCORE_BANK_SIM_SECRET)")
	err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if p.IssuerDeclineRates, err = parseRates(*issuerDecline); err != nil {
		return fmt.Errorf("--issuer-decline %w", err)
	}
	if *notifyURL != "" && *secret == "" {
		return errors.New("--notify-url needs --secret (or FINCORE_BANK_SIM_SECRET)")
	}
	opts := sim.Options{Name: *name, Profile: p, Seed: *seed}
	if *notifyURL != "" {
		opts.Notify = sim.NotifyHTTP(*notifyURL, []byte(*secret), nil)
	}
	b, err := sim.New(opts)
	if err != nil {
		return err
	}
	defer b.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *isoAddr != "" {
		if p.AsyncRate > 0 {
			return errors.New("--iso-addr needs --async 0: an ISO 8583 host answers in line")
		}
		isoLn, err := net.Listen("tcp", *isoAddr)
		if err != nil {
			return err
		}
		host := iso8583.NewHost(b, nil)
		defer host.Close()
		go host.Serve(isoLn)
		fmt.Fprintf(os.Stderr, "simulated bank %s: ISO 8583 host on %s\n", *name, isoLn.Addr())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: sim.Handler(b), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "simulated bank %s listening on http://%s\n", *name, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return nil
}

// parseRates parses code=rate[,code=rate...] (nil for "").
func parseRates(s string) (map[string]float64, error) {
	pairs, err := splitPairs(s)
	if err != nil || len(pairs) == 0 {
		return nil, err
	}
	out := make(map[string]float64, len(pairs))
	for k, v := range pairs {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: want a rate in [0, 1]", k, v)
		}
		out[k] = r
	}
	return out, nil
}
