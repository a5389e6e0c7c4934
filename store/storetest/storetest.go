// Package storetest is the conformance suite every storage backend must pass: the same
// ledger behaviours, run through the engine, against SQLite and PostgreSQL alike.
package storetest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/clock"
)

// Factory creates fresh, empty storage for one test and returns a function that opens it. Each
// call of open returns a new handle on the same storage, as a restarted process would see it;
// the caller closes the previous handle first.
type Factory func(t testing.TB) (open func() ledger.Store)

// Clock is the settable clock of the ledger tests.
type Clock = clock.Fake

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

// OpenEngine opens an engine on st with the clock and closes both when the test ends.
func OpenEngine(t testing.TB, st ledger.Store, clock func() time.Time) *ledger.Engine {
	t.Helper()
	e, err := ledger.Open(context.Background(), st, ledger.Config{Now: clock, ExpiryInterval: time.Hour, Logger: QuietLogger()})
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { e.Close(); st.Close() })
	return e
}

// QuietLogger discards log output, for tests.
func QuietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
