package risk

import (
	"context"
	"fmt"
	"github.com/cespare/xxhash/v2"
	"time"
)

// replayBatch is how many logged events a replay reads at a time.
const replayBatch = 10_000

// restore rebuilds the feature state after a start: from the snapshot if there is one, then
// by replaying the logged events after it (or, without a snapshot, the events of the last
// retention period) in log order.
func (e *Engine) restore(ctx context.Context) error {
	cat := e.cat.Load()
	after, from, had, err := e.loadSnapshot(ctx)
	if err != nil {
		return err
	}
	if after > 0 {
		// Features the snapshot does not know (a version activated after it was taken, or
		// whose back-fill a stop interrupted) are back-filled up to the snapshot's position
		// first; the replay below then counts the events after it in every feature.
		b := e.backfillOf(cat, func(id int) bool { return !had[cat.feats[id].Sig] }, e.watermark.Load())
		if b != nil {
			if _, err := b.run(ctx, after); err != nil {
				return err
			}
			b.moveIn()
		}
		if err := e.rememberIDs(ctx, after, cat.retention); err != nil {
			return err
		}
	}
	if after == 0 {
		last, ok, err := e.store.LastEvent(ctx)
		if err != nil {
			return fmt.Errorf("read event log: %w", err)
		}
		if !ok {
			return nil
		}
		from = last.Time.Add(-time.Duration(cat.retention))
	}
	t0 := time.Now()
	n := 0
	sc := new(scratch)
	for {
		evs, err := e.store.Events(ctx, after, from, replayBatch)
		if err != nil {
			return fmt.Errorf("replay event log: %w", err)
		}
		for _, le := range evs {
			ev, err := ParseEvent(le.Body)
			if err != nil {
				return fmt.Errorf("replay event %s: %w", le.ID, err)
			}
			if s, first := e.dedupe.claim(ev.ID, xxhash.Sum64(ev.Raw), ev.Time.UnixNano()); first {
				s.finish()
			}
			e.apply(ev, true, nil, sc)
			after = le.Seq
		}
		if len(evs) < replayBatch {
			break
		}
	}
	if n > 0 {
		e.log.Info("risk: feature state rebuilt", "events_replayed", n, "took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// rememberIDs marks as seen the ids of the events logged up to the snapshot's position (after)
// that live ingestion would still remember and could still count: those of the de-duplication
// window and of the longest window before the watermark. Without it a repeat of such an event
// sent after a restart would be counted again (the log would skip it, the state would not).
func (e *Engine) rememberIDs(ctx context.Context, after int64, retention int64) error {
	g := e.watermark.Load()
	if g == 0 {
		return nil
	}
	span := int64(e.cfg.DedupeWindow)
	if retention > 0 {
		span = min(span, retention)
	}
	seq := int64(0)
	for {
		evs, err := e.store.Events(ctx, seq, time.Unix(0, g-span), replayBatch)
		if err != nil {
			return fmt.Errorf("read event log: %w", err)
		}
		for _, le := range evs {
			if le.Seq > after {
				return nil
			}
			if s, first := e.dedupe.claim(le.ID, xxhash.Sum64(le.Body), le.Time.UnixNano()); first {
				s.finish()
			}
			seq = le.Seq
		}
		if len(evs) < replayBatch {
			return nil
		}
	}
}
