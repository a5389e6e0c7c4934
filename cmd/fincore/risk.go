package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fincore/fincore/bench"

	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/risk"
)

// newRiskEngine opens the risk engine on the storage of st: rule sets, lists, and the feature
// state rebuilt from the snapshot and the event log. With m, the engine's metrics are
// registered there.
func newRiskEngine(ctx context.Context, st ledger.Store, log *slog.Logger, m *obs.Metrics) (*risk.Engine, error) {
	p, ok := st.(risk.Provider)
	if !ok {
		return nil, fmt.Errorf("storage %T has no risk store", st)
	}
	cfg := risk.Config{Logger: log}
	if m != nil {
		cfg.Observer = m.RiskObserver()
	}
	eng, err := risk.Open(ctx, p.Risk(), cfg)
	if err == nil && m != nil {
		m.WatchRisk(eng)
	}
	return eng, err
}

// withRisk adds the risk routes to the API.
func withRisk(api *httpapi.Server, eng *risk.Engine) *httpapi.Server {
	api.RegisterRisk(eng)
	return api
}

// cmdBenchRisk runs the reference risk workload against a fresh (or given) store, in process
// or over HTTP, and prints one final JSON line.
func cmdBenchRisk(args []string) error {
	fs := flag.NewFlagSet("bench risk", flag.ContinueOnError)
	var cfg bench.RiskConfig
	fs.IntVar(&cfg.Clients, "clients", 4, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "unmeasured warm-up before the measured run")
	fs.IntVar(&cfg.Users, "users", 100_000, "users")
	fs.IntVar(&cfg.Devices, "devices", 20_000, "devices")
	fs.IntVar(&cfg.Rules, "rules", 200, "rules")
	fs.IntVar(&cfg.Trees, "trees", 300, "trees per model")
	fs.IntVar(&cfg.Rate, "rate", 0, "offer the measured run's decisions at this many per second, evenly spaced (latency counts from each decision's slot, so a backlog shows); 0: each client decides as fast as it can")
	useHTTP := fs.Bool("http", false, "go through the HTTP API of an in-process server on a loopback port")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	var sf storeFlags
	sf.register(fs, false)
	fs.Lookup("data").DefValue = ""
	sf.data = ""
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx := context.Background()
	st, closeStore, err := openBenchStore(ctx, &sf, "fincore-bench-risk-")
	if err != nil {
		return err
	}
	defer closeStore()
	quiet := benchLogger()
	p, ok := st.(risk.Provider)
	if !ok {
		return fmt.Errorf("storage %T has no risk store", st)
	}
	eng, err := risk.Open(ctx, p.Risk(), risk.Config{Logger: quiet, SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		return err
	}
	defer eng.Close()
	t0 := time.Now()
	name := fmt.Sprintf("bench%d", time.Now().Unix())
	sum, err := eng.PutRuleSet(ctx, name, []byte(bench.RiskRuleSet(cfg)))
	if err != nil {
		return err
	}
	if _, err := eng.Activate(ctx, name, sum.Version, 0); err != nil {
		return err
	}
	for list, n := range map[string]int{"device_black": 200, "user_white": 500, "ip_grey": 1000} {
		items := make([]string, n)
		for i := range items {
			switch list {
			case "device_black":
				items[i] = fmt.Sprintf("d%d", i*97)
			case "user_white":
				items[i] = fmt.Sprintf("u%d", i*193)
			default:
				items[i] = fmt.Sprintf("10.%d.%d.1", i%200, i%250)
			}
		}
		if _, err := eng.AddListItems(ctx, list, items); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench: rule set with %d rules, %d features, %d models ready in %s\n", sum.Rules, sum.Features, sum.Models, time.Since(t0).Round(time.Millisecond))

	decide := bench.EngineDecider(eng, name)
	transport := "in-process"
	if *useHTTP {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		// As serve runs it: request metrics, and authentication with a key of the load
		// generator's own.
		metrics := obs.New()
		api := httpapi.NewServer(nil, httpapi.Options{Logger: quiet, Observe: metrics.ObserveHTTP})
		api.RegisterRisk(eng)
		token, err := benchKey(ctx, api, st, metrics, httpapi.ScopeRiskWrite)
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		poster, err := bench.NewHTTPPoster("http://"+ln.Addr().String()+"/v1/risk/decisions", token, cfg.Clients, 30*time.Second)
		if err != nil {
			return err
		}
		defer poster.Close()
		decide = bench.HTTPDecider(poster, name)
		transport = "http"
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	gen := bench.NewRiskEvents(cfg, time.Now().Add(-time.Hour), 20_000)
	cpu0 := cpuTime()
	res, err := bench.RunRisk(ctx, cfg, gen, decide)
	if err != nil {
		return err
	}
	// On a shared machine wall-clock throughput depends on the neighbours; CPU time per
	// decision (this process, warm-up included, decision log writing included) does not.
	if used := cpuTime() - cpu0; used > 0 {
		total := (cfg.Warmup + cfg.Duration).Seconds()
		res.CPUSeconds = float64(int64(used.Seconds()*100)) / 100
		res.CPUMicrosPerDecision = float64(int64(used.Seconds()/(float64(res.Decisions)*total/cfg.Duration.Seconds())*1e7)) / 10
	}
	res.Transport, res.Backend = transport, sf.backend()
	stats := eng.Stats()
	res.StateKeys = stats.Keys
	if stats.Keys > 0 {
		res.BytesPerWindow = float64(int64(float64(stats.StateBytes)/float64(stats.Keys)*10)) / 10
		// A key value (a user, a device) has one window state per feature on its key field.
		res.BytesPerKey = res.BytesPerWindow * 10
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}

// cmdRisk runs the offline risk tools: fincore risk backtest | decisions.
func cmdRisk(args []string) error {
	if len(args) >= 1 && args[0] == "decisions" {
		return cmdRiskDecisions(args[1:], os.Stdout)
	}
	if len(args) < 1 || args[0] != "backtest" {
		return fmt.Errorf("usage: fincore risk backtest --ruleset FILE --from T1 --to T2 [--name NAME] (--data DIR | --postgres URL)\n" +
			"       fincore risk decisions --event ID[,ID...] (--data DIR | --postgres URL)")
	}
	fs := flag.NewFlagSet("risk backtest", flag.ContinueOnError)
	file := fs.String("ruleset", "", "candidate rule set file (YAML or JSON)")
	fromS := fs.String("from", "", "start of the period (RFC 3339)")
	toS := fs.String("to", "", "end of the period, exclusive (RFC 3339)")
	name := fs.String("name", "", "rule set whose logged decisions to compare with (default: any active decision)")
	var sf storeFlags
	sf.register(fs, false)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *file == "" || *fromS == "" || *toS == "" {
		return fmt.Errorf("--ruleset, --from and --to are required")
	}
	from, err := time.Parse(time.RFC3339, *fromS)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	to, err := time.Parse(time.RFC3339, *toS)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	src, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	ctx := context.Background()
	st, closeStore, err := openRiskStore(ctx, &sf)
	if err != nil {
		return err
	}
	defer closeStore()
	rep, err := risk.Backtest(ctx, st, *name, src, from, to)
	if err != nil {
		return err
	}
	os.Stdout.Write(append(rep.MarshalIndent(), '\n'))
	return nil
}
