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
	after, from, err := e.loadSnapshot(ctx)
	if err != nil {
		return err
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
				close(s.ready)
			}
			e.apply(ev, true, nil, sc)
			after = le.Seq
			n++
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
