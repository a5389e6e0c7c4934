package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/fincore/fincore/ledger"
)

// openBenchStore opens the storage a benchmark runs on: what the flags name, or fresh
// embedded storage in a temporary directory. The returned function closes it (and removes the
// directory).
func openBenchStore(ctx context.Context, sf *storeFlags, prefix string) (ledger.Store, func(), error) {
	var dir string
	if sf.postgres == "" && sf.data == "" {
		var err error
		if dir, err = os.MkdirTemp("", prefix); err != nil {
			return nil, nil, err
		}
		sf.data = dir
	}
	st, err := sf.openLedgerStore(ctx, true)
	if err != nil {
		if dir != "" {
			os.RemoveAll(dir)
		}
		return nil, nil, err
	}
	return st, func() {
		st.Close()
		if dir != "" {
			os.RemoveAll(dir)
		}
	}, nil
}

// startCPUProfile writes a CPU profile to path until the returned function is called; with
// path "" it does nothing.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// benchLogger logs warnings and errors only, to stderr.
func benchLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
