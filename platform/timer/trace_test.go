package timer_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/fincore/fincore/platform/timer"
)

// TestFireSpans checks that every delivery attempt is a "timer.fire" span with the timer's
// handler, id, attempt and lateness, marked as an error when the handler failed.
func TestFireSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	h := newHarness(t, timer.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), BackoffBase: time.Second})
	h.rec.fail["t1"] = 1
	h.schedule("t1", h.clock.Now(), "")
	eventually(t, "the first attempt", func() bool { return h.rec.count("t1") == 1 })
	h.clock.Advance(2 * time.Second)
	h.waitDone("t1")

	type attempt struct {
		attempt int64
		failed  bool
	}
	var got []attempt
	eventually(t, "two ended spans", func() bool { return len(rec.Ended()) >= 2 })
	for _, s := range rec.Ended() {
		if s.Name() != "timer.fire" || s.Parent().IsValid() {
			t.Fatalf("span %q with parent %v", s.Name(), s.Parent())
		}
		a := attempt{failed: s.Status().Code == codes.Error}
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case "timer.handler":
				if kv.Value.AsString() != "rec" {
					t.Errorf("handler %q", kv.Value.AsString())
				}
			case "timer.id":
				if kv.Value.AsString() != "t1" {
					t.Errorf("id %q", kv.Value.AsString())
				}
			case "timer.attempt":
				a.attempt = kv.Value.AsInt64()
			case "timer.lateness_ms":
				if kv.Value.AsFloat64() < 0 {
					t.Errorf("lateness %v", kv.Value.AsFloat64())
				}
			}
		}
		got = append(got, a)
	}
	if len(got) != 2 || got[0] != (attempt{1, true}) || got[1] != (attempt{2, false}) {
		t.Fatalf("attempts %+v, want a failed first and a successful second", got)
	}
}
