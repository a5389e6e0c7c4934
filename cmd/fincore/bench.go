package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/obs"
)

// cmdBenchLedger runs a ledger load against a fresh (or given) store, in process or over
// HTTP, and prints one final JSON line.
func cmdBenchLedger(args []string) error {
	fs := flag.NewFlagSet("bench ledger", flag.ContinueOnError)
	var cfg bench.LedgerConfig
	fs.StringVar(&cfg.Scenario, "scenario", "uniform", "uniform: transfers spread over all accounts; hot: 90% of credits to 10 accounts")
	fs.IntVar(&cfg.Batch, "batch", 100, "transfers per request")
	fs.IntVar(&cfg.Clients, "clients", 64, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.IntVar(&cfg.Accounts, "accounts", 100_000, "accounts")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured run to this file")
	useHTTP := fs.Bool("http", false, "go through the HTTP API of an in-process server on a loopback port")
	var sf storeFlags
	sf.register(fs, false)
	fs.Lookup("data").DefValue = ""
	sf.data = ""
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx := context.Background()
	st, closeStore, err := openBenchStore(ctx, &sf, "fincore-bench-")
	if err != nil {
		return err
	}
	defer closeStore()
	quiet := benchLogger()
	// Metrics are on, as in serve, so that the benchmark measures what production runs.
	metrics := obs.New()
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet, Observer: metrics})
	if err != nil {
		return err
	}
	defer eng.Close()
	t0 := time.Now()
	if err := bench.SetupAccounts(ctx, eng, cfg.Accounts, "CNY"); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: %d accounts ready in %s; running %s for %s\n", cfg.Accounts, time.Since(t0).Round(time.Millisecond), cfg.Scenario, cfg.Duration)

	var sub bench.Submitter = bench.EngineSubmitter{Engine: eng}
	transport := "in-process"
	if *useHTTP {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		api := newHandler(eng, st, metrics, quiet)
		token, err := benchKey(ctx, api, st, metrics, httpapi.ScopeLedgerWrite)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		tr := &http.Transport{MaxIdleConnsPerHost: cfg.Clients + 8, MaxConnsPerHost: cfg.Clients + 8, DisableCompression: true}
		sub = bench.HTTPSubmitter{BaseURL: "http://" + ln.Addr().String(), Client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, APIKey: token}
		transport = "http"
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	before := eng.Stats()
	res, err := bench.RunLedger(ctx, cfg, sub)
	if err != nil {
		return err
	}
	after := eng.Stats()
	res.Transport, res.Backend = transport, sf.backend()
	res.Groups = after.Groups - before.Groups
	if res.Groups > 0 {
		res.AvgGroup = float64(int64(float64(after.Records-before.Records)/float64(res.Groups)*10)) / 10
		res.AvgCommitMs = float64(int64(float64(after.CommitNanos-before.CommitNanos)/float64(res.Groups)/1e3)) / 1e3
	}
	if res.Transfers == 0 {
		return errors.New("no transfer succeeded")
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}
