package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/fincore/fincore/bench"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/postgres"
	"github.com/fincore/fincore/store/sqlite"
)

// cmdBenchTimers loads pending timers into fresh storage and runs the timer service over
// them at a sustained fire rate (DESIGN.md F2), then prints one final JSON line.
func cmdBenchTimers(args []string) error {
	fs := flag.NewFlagSet("bench timers", flag.ContinueOnError)
	var cfg bench.TimerConfig
	fs.IntVar(&cfg.Timers, "timers", 1_000_000, "pending timers loaded before the run")
	fs.IntVar(&cfg.Rate, "rate", 10_000, "fires per second to sustain (the loaded timers come due this far apart)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured run: rate × duration timers fire (at most --timers)")
	fs.IntVar(&cfg.WindowMax, "window", 0, "timers held in memory (default: the service's, 100000)")
	data := fs.String("data", "", "directory for the embedded database; it must not hold one yet (default: a temporary directory, removed afterwards)")
	pgURL := fs.String("postgres", "", "PostgreSQL URL; the run uses a schema of its own in that database and drops it afterwards")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	cfg.Progress = os.Stderr
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, backend, cleanup, err := openBenchTimerStore(ctx, *data, *pgURL)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := bench.RunTimers(ctx, cfg, st)
	if err != nil {
		return err
	}
	res.Backend = backend
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

// openBenchTimerStore opens empty timer storage for the benchmark: a new SQLite database in
// data (or a temporary directory), or a new schema in the PostgreSQL database at pgURL.
// cleanup closes it and removes what the run made, but a --data directory.
func openBenchTimerStore(ctx context.Context, data, pgURL string) (timer.Store, string, func(), error) {
	if pgURL != "" {
		return openBenchTimerSchema(ctx, pgURL)
	}
	cleanup := func() {}
	if data == "" {
		dir, err := os.MkdirTemp("", "fincore-bench-timers-")
		if err != nil {
			return nil, "", nil, err
		}
		data, cleanup = dir, func() { os.RemoveAll(dir) }
	} else if _, err := os.Stat(filepath.Join(data, "fincore.db")); err == nil {
		// Its pending timers would be fired by the run, and the run's left to a server.
		return nil, "", nil, fmt.Errorf("--data %s already holds a database: give a new directory", data)
	}
	db, err := sqlite.Open(data)
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	st, err := db.Timers()
	if err != nil {
		db.Close()
		cleanup()
		return nil, "", nil, err
	}
	rm := cleanup
	return st, "sqlite", func() { db.Close(); rm() }, nil
}

// openBenchTimerSchema creates a schema of its own in the database at base, migrates it and
// returns its timer store; cleanup drops the schema.
func openBenchTimerSchema(ctx context.Context, base string) (timer.Store, string, func(), error) {
	admin, err := postgres.Open(ctx, base)
	if err != nil {
		return nil, "", nil, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		admin.Close()
		return nil, "", nil, err
	}
	schema := "fincore_bench_timers_" + hex.EncodeToString(b[:])
	if _, err := admin.Pool().Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.Pool().Exec(dctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "bench timers: drop schema %s: %v\n", schema, err)
		}
		admin.Close()
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		drop()
		return nil, "", nil, errors.New("--postgres must be a postgres:// URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String())
	if err == nil {
		err = db.Migrate(ctx)
		if err != nil {
			db.Close()
		}
	}
	if err != nil {
		drop()
		return nil, "", nil, err
	}
	return db.Timers(), "postgres", func() { db.Close(); drop() }, nil
}
