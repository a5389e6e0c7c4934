package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/config"
)

// childReport is what the second process of `bench config` prints when its watchers are done.
type childReport struct {
	LatencyNs []int64 `json:"latency_ns"`
	Missing   int     `json:"missing"`
}

// cmdBenchConfig measures the time from a configuration set to it being applied by every
// watcher: it runs watchers here and in a second process of this binary (both connected to
// the same NATS: the embedded server, listening on a loopback port for this benchmark only,
// or --nats), sets a probe key at a steady pace, and prints one JSON line with p50_ms and
// p99_ms over all watchers.
func cmdBenchConfig(args []string) error {
	fs := flag.NewFlagSet("bench config", flag.ContinueOnError)
	dataDir := fs.String("data", "", "directory for the embedded NATS server's files (default: a temporary one)")
	natsURL := fs.String("nats", "", "an external NATS JetStream server to use instead of an embedded one")
	watchers := fs.Int("watchers", 100, "watchers in all, split between the two processes")
	sets := fs.Int("sets", 500, "changes to make")
	interval := fs.Duration("interval", 10*time.Millisecond, "time between changes")
	child := fs.Bool("child", false, "internal: run as the benchmark's second process")
	bucket := fs.String("bucket", "", "internal: the benchmark's key-value bucket")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *watchers < 2 && !*child || *watchers < 1 || *sets < 1 || *interval <= 0 {
		return errors.New("need --watchers >= 2, --sets >= 1 and --interval > 0")
	}
	if *sets > 100_000 || *watchers > 10_000 {
		return errors.New("at most 100,000 sets and 10,000 watchers")
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Everything is bounded: the run, the wait for the last change, start-up.
	deadline := time.Duration(*sets)**interval + time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), deadline+time.Minute)
	defer cancel()
	if *child {
		return benchConfigChild(ctx, *natsURL, *bucket, *watchers, *sets, deadline, quiet)
	}

	opts := bus.Options{URL: *natsURL, Logger: quiet}
	mode := "external"
	if *natsURL == "" {
		mode = "embedded"
		dir := *dataDir
		if dir == "" {
			tmp, err := os.MkdirTemp("", "fincore-bench-config-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir = tmp
		}
		opts.DataDir = filepath.Join(dir, "nats")
		opts.Listen = "127.0.0.1:0" // for the second process; serve never listens unless asked
	}
	b, err := bus.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer b.Close()
	url := *natsURL
	if url == "" {
		url = b.ClientURL()
	}
	name := fmt.Sprintf("fincore_bench_config_%08x", rand.Uint32())
	c, err := openBenchCenter(ctx, b, name, quiet)
	if err != nil {
		return err
	}
	defer func() {
		c.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		b.JetStream().DeleteKeyValue(dctx, name)
	}()

	// The second process takes half the watchers.
	theirs := *watchers / 2
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "config", "--child", "--nats", url, "--bucket", name,
		"--watchers", fmt.Sprint(theirs), "--sets", fmt.Sprint(*sets), "--interval", interval.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill() // if we return early; harmless after it exited
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 64<<10), 256<<20)
	if !lines.Scan() || lines.Text() != "ready" {
		return fmt.Errorf("second process did not start: %v %q", lines.Err(), lines.Text())
	}

	ours, err := bench.WatchConfigProbe(ctx, c, *watchers-theirs, *sets)
	if err != nil {
		return err
	}
	defer ours.Stop()
	fmt.Fprintf(os.Stderr, "bench config: %d watchers in 2 processes on %s NATS; %d sets, one every %s\n", *watchers, mode, *sets, *interval)
	start := time.Now()
	if err := bench.SetConfigProbe(ctx, c, *sets, *interval); err != nil {
		return err
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	latency, missing := ours.Wait(wctx)
	ownP99 := bench.SummarizeConfig(latency).P99Ms

	if !lines.Scan() {
		return fmt.Errorf("second process gave no report: %v", lines.Err())
	}
	var rep childReport
	if err := json.Unmarshal(lines.Bytes(), &rep); err != nil {
		return fmt.Errorf("second process's report: %w", err)
	}
	theirsLat := make([]time.Duration, len(rep.LatencyNs))
	for i, ns := range rep.LatencyNs {
		theirsLat[i] = time.Duration(ns)
	}
	childP99 := bench.SummarizeConfig(theirsLat).P99Ms
	res := bench.SummarizeConfig(append(latency, theirsLat...))
	res.Missing = missing + rep.Missing
	res.Sets, res.Watchers, res.Processes, res.Bus = *sets, *watchers, 2, mode
	fmt.Fprintf(os.Stderr, "bench config: %d deliveries in %s; set->applied p50 %.3f ms, p99 %.3f ms (this process %.3f, the other %.3f), max %.3f ms; %d missing\n",
		res.Count, time.Since(start).Round(time.Millisecond), res.P50Ms, res.P99Ms, ownP99, childP99, res.MaxMs, res.Missing)
	j, _ := json.Marshal(res)
	fmt.Println(string(j))
	if res.Missing > 0 {
		return fmt.Errorf("%d deliveries missing", res.Missing)
	}
	return nil
}

// benchConfigChild is the second process: watchers on the shared bucket, "ready" once they
// run, then one JSON line of what they measured.
func benchConfigChild(ctx context.Context, url, bucket string, watchers, sets int, deadline time.Duration, log *slog.Logger) error {
	if url == "" || bucket == "" {
		return errors.New("--child needs --nats and --bucket")
	}
	b, err := bus.Start(ctx, bus.Options{URL: url, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	c, err := openBenchCenter(ctx, b, bucket, log)
	if err != nil {
		return err
	}
	defer c.Close()
	w, err := bench.WatchConfigProbe(ctx, c, watchers, sets)
	if err != nil {
		return err
	}
	defer w.Stop()
	fmt.Println("ready")
	wctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	latency, missing := w.Wait(wctx)
	rep := childReport{LatencyNs: make([]int64, len(latency)), Missing: missing}
	for i, d := range latency {
		rep.LatencyNs[i] = int64(d)
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// openBenchCenter opens a Center on the benchmark's own bucket, with its probe key.
func openBenchCenter(ctx context.Context, b *bus.Bus, bucket string, log *slog.Logger) (*config.Center, error) {
	reg := config.NewRegistry()
	if err := bench.RegisterConfigProbe(reg); err != nil {
		return nil, err
	}
	return config.Open(ctx, b.JetStream(), config.Options{Bucket: bucket, Registry: reg, Logger: log})
}
