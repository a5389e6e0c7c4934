package risk

import (
	"context"
	"log/slog"
	"testing"
)

// TestApplyWithStaleCatalog: an event that read the catalog before an activation replaced it
// must not be counted with the old one once it holds its locks (the hand-over of back-filled
// features relies on it); apply then counts it with the new one.
func TestApplyWithStaleCatalog(t *testing.T) {
	ctx := context.Background()
	e, err := Open(ctx, DiscardStore(), Config{Logger: slog.New(slog.DiscardHandler), SnapshotEvery: -1, NoCloseSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	src := "features:\n  - {name: n_1h, on: [payment], key: user_id, agg: count, window: 1h}\nrules:\n  - {id: R1, when: features.n_1h > 3, score: 10, reason: r1}\ndecision: {review_at: 40, reject_at: 80}\n"
	for v, doc := range []string{src, src + "# v2\n"} {
		if _, err := e.PutRuleSet(ctx, "pay", []byte(doc)); err != nil {
			t.Fatal(err)
		}
		stale := e.cat.Load()
		if _, err := e.Activate(ctx, "pay", v+1, 0); err != nil {
			t.Fatal(err)
		}
		ev, err := ParseEvent([]byte(`{"type":"payment","id":"e1","timestamp":"2026-12-04T10:00:00Z","user_id":"u1"}`))
		if err != nil {
			t.Fatal(err)
		}
		var sc scratch
		if got := e.applyWith(stale, ev, true, nil, &sc); got != nil {
			t.Fatalf("v%d: applied with a replaced catalog", v+1)
		}
		if e.Counters().Keys != 0 || e.watermark.Load() != 0 {
			t.Fatalf("v%d: the stale attempt changed the state", v+1)
		}
	}
}
