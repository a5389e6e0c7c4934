package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/lock/natskv"
	"github.com/fincore/fincore/platform/obs"
)

// ledgerLock is the name of the ledger writer's lock.
const ledgerLock = "ledger.writer"

// lockFlags choose where the ledger writer's lease lives (docs/locks.md).
type lockFlags struct {
	backend  string
	ttl      time.Duration
	instance string
}

func (f *lockFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.backend, "lock", "auto", "where the ledger writer lease lives: postgres, nats (JetStream KV) or none; "+
		"auto is postgres with --postgres and none with embedded storage, which one process owns")
	fs.DurationVar(&f.ttl, "lease-ttl", 10*time.Second, "time to live of the ledger writer lease: a standby takes over this long after the writer stops renewing it")
	fs.StringVar(&f.instance, "instance", "", "this instance's name as lease holder, unique among instances sharing storage "+
		"(default: host name and absolute data directory; a restart under the same name takes its lease back at once)")
}

// lessor returns the ledger writer's lessor, or nil when the writer takes no lease.
func (f *lockFlags) lessor(ctx context.Context, sf *storeFlags, st ledger.Store, b *bus.Bus, m *obs.Metrics, log *slog.Logger) (ledger.Lessor, error) {
	backend := f.backend
	if backend == "auto" {
		backend = "none"
		if sf.postgres != "" {
			backend = "postgres"
		}
	}
	var be lock.Backend
	switch backend {
	case "none":
		return nil, nil
	case "postgres":
		if sf.postgres == "" {
			return nil, errors.New("--lock postgres needs --postgres")
		}
		p, ok := st.(lock.Provider)
		if !ok {
			return nil, fmt.Errorf("storage %T has no lock table", st)
		}
		be = p.Locks()
	case "nats":
		if sf.postgres == "" {
			return nil, errors.New("--lock nats needs --postgres: embedded storage is owned by one process and needs no lease")
		}
		kv, err := natskv.Open(ctx, b.JetStream(), natskv.DefaultBucket, 1)
		if err != nil {
			return nil, err
		}
		be = kv
	default:
		return nil, fmt.Errorf("--lock must be auto, postgres, nats or none, not %q", f.backend)
	}
	holder, err := f.holder(sf)
	if err != nil {
		return nil, err
	}
	if err := lock.Validate(ledgerLock, holder, f.ttl); err != nil {
		return nil, fmt.Errorf("--lease-ttl or --instance: %w", err)
	}
	log.Info("ledger writer lease", "lock", backend, "holder", holder, "ttl", f.ttl)
	l := lock.New(be, lock.Options{Observer: m.LockObserver(), Logger: log})
	return ledgerLessor{l: l, holder: holder, ttl: f.ttl}, nil
}

func (f *lockFlags) holder(sf *storeFlags) (string, error) {
	if f.instance != "" {
		return f.instance, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("host name for the lease holder (or give --instance): %w", err)
	}
	dir, err := filepath.Abs(sf.data)
	if err != nil {
		return "", err
	}
	return host + ":" + dir, nil
}

// ledgerLessor hands out the ledger writer's lease from a Locker.
type ledgerLessor struct {
	l      *lock.Locker
	holder string
	ttl    time.Duration
}

func (x ledgerLessor) TryAcquire(ctx context.Context) (ledger.WriterLease, error) {
	lease, err := x.l.TryAcquire(ctx, ledgerLock, x.holder, x.ttl)
	if errors.Is(err, lock.ErrHeld) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return lease, nil
}

func (x ledgerLessor) Acquire(ctx context.Context) (ledger.WriterLease, error) {
	lease, err := x.l.Acquire(ctx, ledgerLock, x.holder, x.ttl)
	if err != nil {
		return nil, err
	}
	return lease, nil
}

// setupAsWriter runs a module's start-up writes to the ledger (idempotent, such as creating
// its accounts): now if this instance is the ledger writer, else in the background as soon as
// it becomes the writer, so that a standby starts without writing. Errors other than
// not_leader are returned (now) or logged and retried (later).
func setupAsWriter(ctx context.Context, eng *ledger.Engine, log *slog.Logger, what string, setup func(context.Context) error) error {
	err := setup(ctx)
	if e := apierror.As(err); e == nil || e.Code != apierror.NotLeader {
		return err
	}
	log.Info("standby: setup deferred until this instance is the ledger writer", "module", what)
	go func() {
		backoff := 100 * time.Millisecond
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			if !eng.Writable() {
				continue
			}
			err := setup(ctx)
			if err == nil {
				log.Info("setup done as the ledger writer", "module", what)
				return
			}
			if e := apierror.As(err); e == nil || e.Code != apierror.NotLeader {
				log.Error("setup as the ledger writer failed; retrying", "module", what, "err", err)
				backoff = min(2*backoff, 10*time.Second)
			}
		}
	}()
	return nil
}
