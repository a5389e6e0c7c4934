package risk

import (
	"context"
	"encoding/json"
	"time"
)

// logItem is one record for the decision log writer: an event, or a decision with what it
// saw.
type logItem struct {
	event    *Event
	decision *Decision
	shadow   bool
	flushed  chan struct{} // closed once everything queued before it is written
}

// enqueueCheck fails when the engine is closed or the log queue is nearly full, before any
// state changes.
func (e *Engine) enqueueCheck() error {
	if e.closed.Load() {
		return ErrClosed
	}
	if len(e.logq) > cap(e.logq)-cap(e.logq)/8 {
		return ErrOverloaded
	}
	return nil
}

// enqueue hands a record to the writer. The queue keeps a reserve (see enqueueCheck), so this
// rarely waits.
func (e *Engine) enqueue(it logItem) {
	e.closeMu.RLock()
	defer e.closeMu.RUnlock()
	if e.closed.Load() {
		return
	}
	e.logq <- it
}

// decisionBody is what the decision log keeps of a decision beyond its columns.
type decisionBody struct {
	Reasons  []Reason           `json:"reasons"`
	Features map[string]float64 `json:"features"`
	Models   map[string]float64 `json:"models,omitempty"`
	Errors   []RuleError        `json:"errors,omitempty"`
}

// writeLog is the single writer of the event and decision log: it takes whatever has queued
// (up to LogBatch records) and writes it in one transaction (group commit).
func (e *Engine) writeLog() {
	defer e.wg.Done()
	var events []LoggedEvent
	var decisions []LoggedDecision
	for {
		it, ok := <-e.logq
		if !ok {
			return
		}
		events, decisions = events[:0], decisions[:0]
		var flushed []chan struct{}
		take := func(it logItem) {
			if it.flushed != nil {
				flushed = append(flushed, it.flushed)
				return
			}
			events, decisions = e.record(it, events, decisions)
		}
		take(it)
	fill:
		for len(events)+len(decisions) < e.cfg.LogBatch && flushed == nil {
			select {
			case it, ok := <-e.logq:
				if !ok {
					break fill
				}
				take(it)
			default:
				break fill
			}
		}
		e.writeBatch(events, decisions)
		for _, c := range flushed {
			close(c)
		}
	}
}

// writeBatch writes one batch, retrying a failed write with backoff so that the order of
// events is kept.
func (e *Engine) writeBatch(events []LoggedEvent, decisions []LoggedDecision) {
	if len(events)+len(decisions) == 0 {
		return
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := e.store.AppendLog(ctx, events, decisions)
		cancel()
		if err == nil {
			break
		}
		e.stats.logErrors.Add(1)
		e.log.Error("risk: write decision log", "err", err, "events", len(events), "decisions", len(decisions), "attempt", attempt+1)
		if attempt >= 8 && e.closed.Load() {
			e.log.Error("risk: giving up on a decision log batch at shutdown", "events", len(events), "decisions", len(decisions))
			break
		}
		time.Sleep(min(time.Duration(1<<min(attempt, 6))*50*time.Millisecond, 3*time.Second))
	}
}

func (e *Engine) record(it logItem, events []LoggedEvent, decisions []LoggedDecision) ([]LoggedEvent, []LoggedDecision) {
	now := e.cfg.Now().UTC()
	if it.event != nil {
		label, _ := it.event.Fields["label"].(string)
		return append(events, LoggedEvent{ID: it.event.ID, Type: it.event.Type, Time: it.event.Time, Body: it.event.Raw, Label: label, Received: now}), decisions
	}
	d := it.decision
	body, _ := json.Marshal(decisionBody{Reasons: d.Reasons, Features: d.Features, Models: d.Models, Errors: d.Errors})
	return events, append(decisions, LoggedDecision{
		EventID: d.EventID, RuleSet: d.RuleSet, Version: d.Version, Shadow: it.shadow,
		Decision: d.Decision, Score: d.Score, Body: body, At: now,
	})
}
