package natskv_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/lock"
	"github.com/fincore/fincore/platform/lock/locktest"
	"github.com/fincore/fincore/platform/lock/natskv"
)

func startBus(t testing.TB, opts bus.Options) *bus.Bus {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start bus: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// factory gives each test its own bucket; each handle is a Backend of its own, as each
// process has one.
func factory(b *bus.Bus) locktest.Factory {
	return func(t testing.TB) func() lock.Backend {
		bucket := fmt.Sprintf("fincore_locktest_%08x", rand.Uint32())
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			b.JetStream().DeleteKeyValue(ctx, bucket)
		})
		return func() lock.Backend {
			be, err := natskv.Open(context.Background(), b.JetStream(), bucket, 1)
			if err != nil {
				t.Fatal(err)
			}
			return be
		}
	}
}

func TestConformanceEmbedded(t *testing.T) {
	locktest.Run(t, factory(startBus(t, bus.Options{DataDir: t.TempDir()})))
}

func TestConformanceExternal(t *testing.T) {
	url := os.Getenv("FINCORE_TEST_NATS")
	if url == "" {
		t.Skip("FINCORE_TEST_NATS not set")
	}
	locktest.Run(t, factory(startBus(t, bus.Options{URL: url})))
}

// TestTokenSurvivesKeyDeletion: a lock key deleted by hand starts again above every token it
// ever had, so storage fenced by those tokens still accepts the next holder.
func TestTokenSurvivesKeyDeletion(t *testing.T) {
	ctx := t.Context()
	b := startBus(t, bus.Options{DataDir: t.TempDir()})
	be, err := natskv.Open(ctx, b.JetStream(), "fincore_locktest_deletion", 1)
	if err != nil {
		t.Fatal(err)
	}
	const name = "ledger"
	var last uint64
	for range 3 {
		g, err := be.TryAcquire(ctx, name, "A", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		last = g.Token
		if err := be.Release(ctx, name, "A", g.Token); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := b.JetStream().KeyValue(ctx, "fincore_locktest_deletion")
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := be.Release(ctx, name, "A", last); !errors.Is(err, lock.ErrNotHeld) {
		t.Fatalf("Release of a deleted lock = %v, want ErrNotHeld", err)
	}
	g, err := be.TryAcquire(ctx, name, "B", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if g.Token <= last {
		t.Fatalf("token after the key was deleted: %d, not above %d", g.Token, last)
	}
}
