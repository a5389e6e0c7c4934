package outbox_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fincore/fincore/platform/bus"
	"github.com/fincore/fincore/platform/outbox"
	"github.com/fincore/fincore/store/storetest"
)

// TestRelayTracesPages checks that the relay makes one span per page it publishes, with the
// page's events and sequence numbers, and marks a page whose publish failed as an error.
func TestRelayTracesPages(t *testing.T) {
	r, _ := newRig(t, func(ob outbox.Store, b *bus.Bus) *outbox.Relay {
		return outbox.NewRelay(ob, b, outbox.Config{Logger: storetest.QuietLogger()})
	})
	r.transfers(t, 8) // 10 events: 2 accounts, 8 transfers
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	pub := &failThird{}
	rl := outbox.NewRelay(r.ob, pub, outbox.Config{PageMax: 4, TracerProvider: tp})
	after, err := rl.Drain(ctx, 0)
	if err == nil {
		t.Fatal("the third publish should fail")
	}
	if _, err := rl.Drain(ctx, after); err != nil {
		t.Fatal(err)
	}
	type page struct {
		events, first, last int64
		failed              bool
	}
	var got []page
	for _, s := range rec.Ended() {
		if s.Name() != "outbox.publish" {
			t.Fatalf("span %q", s.Name())
		}
		p := page{failed: s.Status().Code == codes.Error}
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "outbox.events":
				p.events = kv.Value.AsInt64()
			case "outbox.first_seq":
				p.first = kv.Value.AsInt64()
			case "outbox.last_seq":
				p.last = kv.Value.AsInt64()
			}
		}
		got = append(got, p)
	}
	// Page 1 (seq 1-4) fails at its third event after marking two; then pages from seq 3.
	if len(got) != 3 || !got[0].failed || got[0].events != 4 || got[1].failed || got[1].first != 3 {
		t.Fatalf("pages %+v", got)
	}
	var total int64
	for _, p := range got[1:] {
		total += p.events
		if p.last-p.first+1 != p.events {
			t.Errorf("page %+v: seq range does not match its events", p)
		}
	}
	if total != 8 || got[len(got)-1].last != 10 {
		t.Errorf("after the failure, pages %+v publish %d events, want seq 3-10", got[1:], total)
	}
}

// failThird fails its third publish, once.
type failThird struct{ calls int }

func (f *failThird) Publish(context.Context, string, string, []byte) error {
	f.calls++
	if f.calls == 3 {
		return errors.New("bus unavailable")
	}
	return nil
}
