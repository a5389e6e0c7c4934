package risk

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/fincore/fincore/platform/jsonw"
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
		e.stats.overloaded.Add(1)
		return ErrOverloaded
	}
	return nil
}

// LogQueue returns how many records wait for the decision log writer, and the queue's
// capacity.
func (e *Engine) LogQueue() (depth, capacity int) { return len(e.logq), cap(e.logq) }

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

// AppendJSON appends the decision as the API answers it without explain: {"decision",
// "score", "reasons", "ruleset", "ruleset_version", "event_id", "errors"?}, the same bytes
// encoding/json writes for those fields, without its reflection.
func (d *Decision) AppendJSON(b []byte) []byte {
	b = append(append(append(b, `{"decision":"`...), d.Decision...), `","score":`...)
	b = strconv.AppendInt(b, int64(d.Score), 10)
	b = append(b, `,"reasons":[`...)
	if d.c != nil {
		for i, ri := range d.hits {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, d.c.frag.rules[ri]...)
		}
	} else {
		for i, r := range d.Reasons {
			if i > 0 {
				b = append(b, ',')
			}
			rb, _ := json.Marshal(r)
			b = append(b, rb...)
		}
	}
	b = append(append(append(b, `],"ruleset":"`...), d.RuleSet...), `","ruleset_version":`...)
	b = strconv.AppendInt(b, int64(d.Version), 10)
	b = jsonw.AppendString(append(b, `,"event_id":`...), d.EventID)
	if len(d.Errors) > 0 {
		errs, _ := json.Marshal(d.Errors)
		b = append(append(b, `,"errors":`...), errs...)
	}
	return append(b, '}')
}

// logFragments are the constant pieces of a rule set version's decision log bodies as JSON.
// Names, rule ids, reasons and actions are restricted by the rule set grammar to characters
// that need no JSON escaping.
type logFragments struct {
	rules    []string // per rule: {"rule":"R1","reason":"velocity","score":40[,"action":"reject"]}
	features []string // per feature: "name":
	models   []string // per model: "id":
}

// fragmentsOf returns the fragments of a rule set's features, models and rules (Compile keeps
// all three, in the document's order, in a valid rule set).
func fragmentsOf(features []FeatureDef, models []ModelDef, rules []RuleDef) *logFragments {
	f := &logFragments{}
	for _, r := range rules {
		b := append([]byte(`{"rule":"`), r.ID...)
		b = append(append(append(b, `","reason":"`...), r.Reason...), `","score":`...)
		b = strconv.AppendInt(b, int64(r.Score), 10)
		if r.Action != "" {
			b = append(append(append(b, `,"action":"`...), r.Action...), '"')
		}
		f.rules = append(f.rules, string(append(b, '}')))
	}
	for _, ft := range features {
		f.features = append(f.features, `"`+ft.Name+`":`)
	}
	for _, m := range models {
		f.models = append(f.models, `"`+m.ID+`":`)
	}
	return f
}

// appendNumber appends v as a JSON number (null for NaN and infinities, which JSON lacks), as
// strconv.AppendFloat(b, v, 'g', -1, 64) writes it; whole numbers below a million, the
// common case of counts, take a shorter path with the same output.
func appendNumber(b []byte, v float64) []byte {
	if v > -1e6 && v < 1e6 && v == math.Trunc(v) && (v != 0 || !math.Signbit(v)) {
		return strconv.AppendInt(b, int64(v), 10)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// writeLog is the single writer of the event and decision log: it takes whatever has queued
// (up to LogBatch records), waiting until LogInterval has passed since its previous write
// began, and writes it in one transaction (group commit). A flush request is written at once.
func (e *Engine) writeLog() {
	defer e.wg.Done()
	var events []LoggedEvent
	var decisions []LoggedDecision
	// The decision bodies of a batch are written one after another into arena, which is
	// reused by the next batch (the store does not keep them once AppendLog returns).
	var arena []byte
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	var last time.Time // when the previous write began
	for {
		it, ok := <-e.logq
		if !ok {
			return
		}
		clear(events)
		clear(decisions)
		events, decisions, arena = events[:0], decisions[:0], arena[:0]
		now := e.cfg.Now().UTC()
		var flushed []chan struct{}
		take := func(it logItem) {
			if it.flushed != nil {
				flushed = append(flushed, it.flushed)
				return
			}
			events, decisions, arena = e.record(it, now, events, decisions, arena)
		}
		take(it)
		waiting := false
	fill:
		for len(events)+len(decisions) < e.cfg.LogBatch && flushed == nil {
			select {
			case it, ok := <-e.logq:
				if !ok {
					break fill
				}
				take(it)
				continue
			default:
			}
			if !waiting {
				d := e.cfg.LogInterval - time.Since(last)
				if d <= 0 {
					break fill
				}
				wait.Reset(d)
				waiting = true
			}
			select {
			case it, ok := <-e.logq:
				if !ok {
					break fill
				}
				take(it)
			case <-wait.C:
				waiting = false
				break fill
			}
		}
		if waiting {
			wait.Stop()
		}
		last = time.Now()
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

func (e *Engine) record(it logItem, now time.Time, events []LoggedEvent, decisions []LoggedDecision, arena []byte) ([]LoggedEvent, []LoggedDecision, []byte) {
	if it.event != nil {
		label, _ := it.event.Fields["label"].(string)
		return append(events, LoggedEvent{ID: it.event.ID, Type: it.event.Type, Time: it.event.Time, Body: it.event.Raw, Label: label, Received: now}), decisions, arena
	}
	d := it.decision
	start := len(arena)
	arena = appendCompactBody(arena, d)
	return events, append(decisions, LoggedDecision{
		EventID: d.EventID, RuleSet: d.RuleSet, Version: d.Version, Shadow: it.shadow,
		Decision: d.Decision, Score: d.Score, Body: arena[start:len(arena):len(arena)], At: now,
	}), arena
}
