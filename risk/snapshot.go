package risk

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"fmt"
	"time"

	"github.com/fincore/fincore/risk/window"
)

// snapshot is the encoded feature state: each state under its feature's signature (ids are
// per process), the watermark, and the log position it covers.
type snapshot struct {
	Watermark int64
	Sigs      []string
	States    []snapState
}

type snapState struct {
	Sig   int // index in Sigs
	Field string
	Key   string
	State window.Snapshot
}

// Snapshot writes the feature state to the store, with the position in the event log it
// covers, so that a restart replays only the events after it. It briefly stops decisions
// (every shard is locked while the log catches up and the state is copied).
func (e *Engine) Snapshot(ctx context.Context) error {
	for i := range e.shards {
		e.shards[i].mu.Lock()
	}
	locked := true
	unlock := func() {
		if locked {
			for i := range e.shards {
				e.shards[i].mu.Unlock()
			}
			locked = false
		}
	}
	defer unlock()
	// Every applied event is queued for the log; once the writer has caught up, the last
	// logged event is the last one the state holds.
	if err := e.flush(ctx); err != nil {
		return err
	}
	last, _, err := e.store.LastEvent(ctx)
	if err != nil {
		return err
	}
	cat := e.cat.Load()
	sn := snapshot{Watermark: e.watermark.Load()}
	sigIdx := map[int]int{}
	for id, f := range cat.feats {
		sigIdx[id] = len(sn.Sigs)
		sn.Sigs = append(sn.Sigs, f.Sig)
	}
	for i := range e.shards {
		a, t := e.shards[i].arena, e.shards[i].keys
		t.each(func(ks int32) {
			key := t.key(ks)
			for j, sl := range t.slotsOf(ks) {
				si, ok := sigIdx[int(sl.id)]
				if !ok {
					continue
				}
				sn.States = append(sn.States, snapState{Sig: si, Field: cat.feats[int(sl.id)].Key, Key: key, State: t.cell(ks, j).SnapshotOf(a, int(sl.m))})
			}
		})
	}
	unlock()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(&sn); err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := e.store.SaveSnapshot(ctx, last.Seq, buf.Bytes(), e.cfg.Now().UTC()); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	e.log.Info("risk: feature state snapshot saved", "seq", last.Seq, "states", len(sn.States), "bytes", buf.Len())
	return nil
}

// Flush waits until the log writer has written every event and decision queued before it.
func (e *Engine) Flush(ctx context.Context) error { return e.flush(ctx) }

func (e *Engine) flush(ctx context.Context) error {
	done := make(chan struct{})
	e.closeMu.RLock()
	if e.closed.Load() {
		e.closeMu.RUnlock()
		return ErrClosed
	}
	e.logq <- logItem{flushed: done}
	e.closeMu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadSnapshot loads the stored snapshot into the shards, for the features the loaded rule
// sets use. It returns the log position the snapshot covers (0 without one), the time from
// which events must be replayed, and the signatures of the features it has state for.
func (e *Engine) loadSnapshot(ctx context.Context) (int64, time.Time, map[string]bool, error) {
	seq, data, ok, err := e.store.LoadSnapshot(ctx)
	if err != nil || !ok {
		return 0, time.Time{}, nil, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return 0, time.Time{}, nil, fmt.Errorf("read snapshot: %w", err)
	}
	var sn snapshot
	if err := gob.NewDecoder(zr).Decode(&sn); err != nil {
		return 0, time.Time{}, nil, fmt.Errorf("decode snapshot: %w", err)
	}
	ids := make([]int, len(sn.Sigs))
	had := make(map[string]bool, len(sn.Sigs))
	for i, sig := range sn.Sigs {
		had[sig] = true
		id, ok := e.sigIDs[sig]
		if !ok {
			id = -1 // no loaded rule set uses it any more
		}
		ids[i] = id
	}
	n := 0
	for _, s := range sn.States {
		if s.Sig < 0 || s.Sig >= len(ids) || ids[s.Sig] < 0 {
			continue
		}
		fid, known := e.fieldIDs[s.Field]
		h := e.keyHash(s.Field, s.Key)
		sh := &e.shards[e.shardOf(h)]
		st, ok := window.CellFromSnapshot(sh.arena, s.State)
		if !ok {
			return 0, time.Time{}, nil, fmt.Errorf("snapshot: state of %s %q is inconsistent", s.Field, s.Key)
		}
		if !known {
			st.Free(sh.arena)
			continue // not a key field of the loaded rule sets
		}
		ks := sh.keys.get(h, fid, s.Key)
		if ks < 0 {
			ks = sh.keys.add(h, fid, s.Key)
			sh.nKeys.Add(1)
		}
		id := int32(ids[s.Sig])
		if sh.keys.find(ks, id) >= 0 {
			st.Free(sh.arena)
			continue // the same state twice: keep the first
		}
		sh.keys.addSlot(ks, stateSlot{id: id, ci: sh.keys.addCell(ks, st)})
		sh.nStates.Add(1)
		n++
	}
	e.watermark.Store(sn.Watermark)
	e.log.Info("risk: feature state snapshot loaded", "seq", seq, "states", n)
	return seq, time.Time{}, had, nil
}
