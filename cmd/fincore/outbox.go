package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"go.opentelemetry.io/otel"

	credit "github.com/fincore/fincore/credit/service"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/outbox"
)

// ledgerStream is the stream that holds the ledger's events (docs/events.md).
const ledgerStream = "LEDGER"

// eventStreams are the streams of the events that the modules serve runs publish through the
// outbox.
var eventStreams = []struct {
	name     string
	subjects []string
}{
	{ledgerStream, []string{"ledger.>"}},
	{creditStream, []string{"credit.>"}},
	{paymentStream, []string{"payment.>", "refund.>"}},
}

// outboxSubjects are every subject that the modules serve runs publish through the outbox.
func outboxSubjects() []string {
	return slices.Concat(ledger.EventSubjects, payment.EventSubjects, credit.EventSubjects)
}

// ensureEventStreams ensures the modules' event streams, then checks that a stream captures
// each of subjects: the relay publishes the outbox in order, so one event that no stream
// captures would hold up every later one. On the embedded bus a missing stream is created
// (a stream of its own for the subject, named after it); on an external bus, whose streams
// operators may manage, start fails naming the subject.
func ensureEventStreams(ctx context.Context, b *bus.Bus, subjects []string, log *slog.Logger) error {
	for _, s := range eventStreams {
		if err := b.EnsureStream(ctx, s.name, s.subjects); err != nil {
			return err
		}
	}
	for _, subject := range subjects {
		_, err := b.StreamFor(ctx, subject)
		if !errors.Is(err, bus.ErrNoStream) {
			if err != nil {
				return err
			}
			continue
		}
		if !b.Embedded() {
			return fmt.Errorf("event subject %s: no JetStream stream on the NATS server captures it, so the outbox relay would stop at its first event; "+
				"create a stream capturing %s (docs/events.md)", subject, subject)
		}
		name := outboxStreamName(subject)
		log.Warn("no stream captured an event subject; created one for it", "subject", subject, "stream", name)
		if err := b.EnsureStream(ctx, name, []string{subject}); err != nil {
			return err
		}
	}
	return nil
}

// outboxStreamName is the name of the stream made for a subject no other stream captures:
// OUTBOX_ and the subject in upper case, with '_' for '.' and for any character other than a
// letter, a digit or '-' (stream names take no '.', wildcard or path separator).
func outboxStreamName(subject string) string {
	return "OUTBOX_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-':
			return r
		}
		return '_'
	}, subject)
}

// newLedgerRelay returns a relay (not started) from st's outbox to the bus. Give its Notify to
// the engine as ledger.Config.Committed, and ensure the event streams first
// (ensureEventStreams).
func newLedgerRelay(st ledger.Store, b *bus.Bus, log *slog.Logger) (*outbox.Relay, error) {
	p, ok := st.(outbox.Provider)
	if !ok {
		return nil, fmt.Errorf("storage %T has no outbox", st)
	}
	return outbox.NewRelay(p.Outbox(), b, outbox.Config{Logger: log, TracerProvider: otel.GetTracerProvider()}), nil
}
