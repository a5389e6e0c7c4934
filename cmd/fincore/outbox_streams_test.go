package main

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/bus"
)

// TestEventStreamsCaptureEveryOutboxSubject: the streams serve ensures capture every subject
// the modules publish through the outbox, with no stream made for a stray one.
func TestEventStreamsCaptureEveryOutboxSubject(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := bus.Start(t.Context(), bus.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := ensureEventStreams(t.Context(), b, outboxSubjects(), log); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"ledger": ledgerStream, "credit": creditStream, "payment": paymentStream, "refund": paymentStream}
	for _, s := range outboxSubjects() {
		got, err := b.StreamFor(t.Context(), s)
		if prefix, _, _ := strings.Cut(s, "."); err != nil || got != want[prefix] {
			t.Errorf("%s is captured by %q (%v), want %s", s, got, err, want[prefix])
		}
	}
	var names []string
	for n := range b.JetStream().StreamNames(t.Context()).Name() {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{creditStream, ledgerStream, paymentStream}) || logs.Len() > 0 {
		t.Fatalf("streams %v; logs %s", names, logs.String())
	}
}

// TestEventSubjectWithoutStream: a subject that no stream captures gets a stream of its own on
// the embedded bus, so the relay publishes past its events; on an external bus, start fails
// naming the subject and creates nothing.
func TestEventSubjectWithoutStream(t *testing.T) {
	ctx := t.Context()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := bus.Start(ctx, bus.Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	subjects := append(outboxSubjects(), "chargeback.opened")
	if err := ensureEventStreams(ctx, b, subjects, log); err != nil {
		t.Fatal(err)
	}
	if got, err := b.StreamFor(ctx, "chargeback.opened"); err != nil || got != "OUTBOX_CHARGEBACK_OPENED" {
		t.Fatalf("chargeback.opened is captured by %q, %v", got, err)
	}
	if !strings.Contains(logs.String(), "subject=chargeback.opened") {
		t.Fatalf("no warning: %s", logs.String())
	}
	logs.Reset()
	if err := ensureEventStreams(ctx, b, subjects, log); err != nil || logs.Len() > 0 {
		t.Fatalf("again: %v; logs %s", err, logs.String())
	}

	// The relay publishes the stray event and the ledger's after it.
	st := testStore(t)
	relay, err := newLedgerRelay(st, b, log)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: log, Committed: relay.Notify})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	relay.Start()
	defer relay.Stop()
	if _, err := eng.Commit(ctx, ledger.Unit{Events: []ledger.ModuleEvent{{Subject: "chargeback.opened", ID: "cb_1", Payload: []byte(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.CreateAccounts(ctx, []ledger.AccountInput{{ID: "a", Currency: "CNY"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the outbox to drain", func() bool {
		lag, err := relay.Lag(ctx)
		return err == nil && lag.Unpublished == 0
	})

	ext, err := bus.Start(ctx, bus.Options{URL: b.ClientURL(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	err = ensureEventStreams(ctx, ext, append(outboxSubjects(), "dispute.closed"), log)
	if err == nil || !strings.Contains(err.Error(), "event subject dispute.closed") {
		t.Fatalf("external bus without a stream for dispute.closed: %v", err)
	}
	if _, err := ext.StreamFor(ctx, "dispute.closed"); !errors.Is(err, bus.ErrNoStream) {
		t.Fatalf("a stream was made on the external bus: %v", err)
	}
}
