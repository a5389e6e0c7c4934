package risk

import (
	"context"
	"math"
	"sync"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"

	"github.com/expr-lang/expr/vm"
	"github.com/fincore/fincore/risk/window"
)

// Outcomes of a decision.
const (
	Accept = "accept"
	Review = "review"
	Reject = "reject"
)

// Decision is the engine's answer for an event.
type Decision struct {
	Decision string   `json:"decision"`
	Score    int      `json:"score"`
	Reasons  []Reason `json:"reasons"`
	RuleSet  string   `json:"ruleset"`
	Version  int      `json:"ruleset_version"`
	EventID  string   `json:"event_id"`
	// Features and Models are every feature and model of the rule set as computed for this
	// event; the API returns them when asked to explain.
	Features map[string]float64 `json:"features,omitempty"`
	Models   map[string]float64 `json:"models,omitempty"`
	// Errors are rules whose expression failed at run time (they count as not hit).
	Errors []RuleError `json:"errors,omitempty"`

	c    *Compiled // what decided
	fv   []float64 // feature values in the rule set's order
	mv   []float64 // model values in the rule set's order
	hits []int32   // indexes of the rules that hit (Reasons), in c.Rules
}

// Explain returns the decision in full: with its Reasons, and with its Features and Models
// maps (every feature and model value of the rule set as computed for the event). d itself is
// not changed (decisions are shared with repeated requests of the same event).
func (d *Decision) Explain() *Decision {
	if d.Features != nil || d.c == nil {
		return d
	}
	c := *d
	c.Reasons = d.RuleHits()
	c.Features = make(map[string]float64, len(d.fv))
	for i, f := range d.c.Features {
		c.Features[f.Name] = d.fv[i]
	}
	if len(d.mv) > 0 {
		c.Models = make(map[string]float64, len(d.mv))
		for i, m := range d.c.Models {
			c.Models[m.id] = d.mv[i]
		}
	}
	return &c
}

// RuleHits returns the rules that hit, as Explain's Reasons, without building the Features and
// Models maps: what callers that act on a brief decision (DecideBrief) need besides its
// outcome and score. The slice is new unless d already holds its Reasons.
func (d *Decision) RuleHits() []Reason {
	if d.Reasons != nil || d.c == nil {
		return d.Reasons
	}
	r := make([]Reason, len(d.hits))
	for i, ri := range d.hits {
		r[i] = d.c.Rules[ri].reason
	}
	return r
}

// Reason is a rule that hit.
type Reason struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Score  int    `json:"score"`
	Action string `json:"action,omitempty"`
}

// RuleError is a rule whose expression failed for this event.
type RuleError struct {
	Rule  string `json:"rule"`
	Error string `json:"error"`
}

// Decide counts ev in the feature state (once per event id) and evaluates it against the
// active version of the rule set name; the shadow version, if any, is evaluated and logged
// too. Both decisions are logged with their features, models and rule hits. The same
// event sent again gets the decision it got the first time; sent for another rule set, it is
// evaluated without being counted again. The same id with a different body is
// ErrIDConflict. The decision is explained (see Decision.Explain).
func (e *Engine) Decide(ctx context.Context, name string, ev *Event) (*Decision, error) {
	d, err := e.DecideBrief(ctx, name, ev)
	if err != nil {
		return nil, err
	}
	return d.Explain(), nil
}

// DecideBrief is Decide without building the Reasons list and the Features and Models maps:
// it gives the outcome, the score and the rest; Explain builds the full decision and
// AppendJSON writes the API's answer (reasons included) from what it holds. The decision is
// shared with repeated requests of the event and must not be modified.
func (e *Engine) DecideBrief(ctx context.Context, name string, ev *Event) (*Decision, error) {
	var t0 time.Time
	if e.cfg.Observer != nil {
		t0 = time.Now()
	}
	dec, shadow, repeat, err := e.decideOnce(ctx, name, ev)
	if err == nil && e.cfg.Observer != nil {
		e.cfg.Observer.Decided(Observation{RuleSet: name, Decision: dec.Decision, Shadow: shadow, Repeat: repeat, Duration: time.Since(t0)})
	}
	return dec, err
}

// decideOnce decides ev once per event id and rule set (see Decide); it also returns the
// shadow version's decision ("" without one, or for a repeat) and whether the decision was
// given before.
func (e *Engine) decideOnce(ctx context.Context, name string, ev *Event) (*Decision, string, bool, error) {
	sets := *e.sets.Load()
	l := sets[name]
	if l == nil {
		return nil, "", false, ErrUnknownRuleSet
	}
	if l.active == nil {
		return nil, "", false, ErrNotActive
	}
	body := xxhash.Sum64(ev.Raw)
	s, first := e.dedupe.claim(ev.ID, body, ev.Time.UnixNano())
	if first {
		dec, shadow, err := e.decide(l, ev, true)
		if err != nil {
			e.dedupe.forget(ev.ID)
		} else {
			s.keep(dec)
		}
		s.err = err
		s.finish()
		return dec, shadow, false, err
	}
	if err := e.wait(ctx, s, body); err != nil {
		return nil, "", false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.decision(name); d != nil {
		return d, "", true, nil
	}
	dec, shadow, err := e.decide(l, ev, false)
	if err == nil {
		s.keep(dec)
	}
	return dec, shadow, false, err
}

// Observer is told about every decision the engine answers, for metrics (platform/obs has
// one). It is called on the deciding goroutine once the decision is made: it must be fast and
// must not block.
type Observer interface {
	Decided(o Observation)
}

// Observation is one answered decision.
type Observation struct {
	RuleSet  string
	Decision string // accept, review or reject
	// Shadow is the shadow version's decision, "" without a shadow version (or for a
	// repeat).
	Shadow string
	// Repeat is true when the event id was decided before for this rule set: the first
	// decision was answered again, nothing was evaluated.
	Repeat   bool
	Duration time.Duration // from the call to the answer
}

// wait waits for the first request of an event id to finish and checks that this one
// carries the same event.
func (e *Engine) wait(ctx context.Context, s *seen, body uint64) error {
	if ch := s.finished(); ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.stats.duplicates.Add(1)
	if s.body != body {
		return ErrIDConflict
	}
	return s.err
}

// Ingest counts ev in the feature state without a decision. It reports false when the id
// was already received (the event is not counted again).
func (e *Engine) Ingest(ctx context.Context, ev *Event) (bool, error) {
	body := xxhash.Sum64(ev.Raw)
	s, first := e.dedupe.claim(ev.ID, body, ev.Time.UnixNano())
	if !first {
		return false, e.wait(ctx, s, body)
	}
	err := e.enqueueCheck()
	if err == nil {
		e.stats.events.Add(1)
		e.stats.counted.Add(1)
		sc := scratchPool.Get().(*scratch)
		e.apply(ev, true, func() { e.enqueue(logItem{event: ev}) }, sc)
		scratchPool.Put(sc)
	} else {
		e.dedupe.forget(ev.ID)
	}
	s.err = err
	s.finish()
	return err == nil, err
}

func (e *Engine) decide(l *loaded, ev *Event, count bool) (*Decision, string, error) {
	if err := e.enqueueCheck(); err != nil {
		return nil, "", err
	}
	e.stats.decisions.Add(1)
	var logFn func()
	if count {
		e.stats.counted.Add(1)
		logFn = func() { e.enqueue(logItem{event: ev}) }
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	values := e.apply(ev, count, logFn, sc)
	dec := e.evaluate(l.active, ev, values, sc)
	e.enqueue(logItem{decision: dec})
	shadow := ""
	if l.shadow != nil {
		sd := e.evaluate(l.shadow, ev, values, sc)
		e.enqueue(logItem{decision: sd, shadow: true})
		shadow = sd.Decision
	}
	return dec, shadow, nil
}

// scratch is the working memory of one decision, recycled.
type scratch struct {
	values []float64 // feature values by state id
	counts []bool    // whether the event counts in each lane of the touched key groups
	in     []window.Input
	slots  []int     // applyLane: the slot of each live member of a lane
	warm   int64     // apply: what warming the states read (kept so that the reads stay)
	x      []float64 // model inputs
	dv     []float64 // evaluate: feature and model values
	hits   []int32   // indexes of the rules that hit
	env    fastEnv   // evaluate: the environment of the compiled rules
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// vmPool recycles expression VMs.
var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// evaluate runs c's models and rules on ev with the feature values (by state id). Rules run
// as closures where they were compiled to them, on expr's VM otherwise (and where a closure
// defers to it).
func (e *Engine) evaluate(c *Compiled, ev *Event, values []float64, sc *scratch) *Decision {
	nf := len(c.Features)
	// The values are worked out in the scratch, then copied with the rule hits into one
	// pointer-free allocation (decisions are remembered for de-duplication: fewer objects).
	if n := nf + len(c.Models); cap(sc.dv) < n {
		sc.dv = make([]float64, n)
	} else {
		sc.dv = sc.dv[:n]
	}
	vals := sc.dv
	fv, mv := vals[:nf:nf], vals[nf:]
	for i, id := range c.stateIDs {
		fv[i] = values[id]
	}
	for i, m := range c.Models {
		mv[i], sc.x = m.predict(ev, fv, sc.x)
	}
	d := &Decision{RuleSet: c.Name, Version: c.Version, EventID: ev.ID, c: c}
	env := &sc.env // in the scratch: the closures' environment would escape to the heap
	*env = fastEnv{fields: ev.Fields, vals: vals}
	defer func() { *env = fastEnv{} }() // keep nothing of the event alive in the pool
	var slow any                        // the environment of expr's VM, built when first needed
	var machine *vm.VM
	hits := sc.hits[:0]
	var forceReject, forceAccept, forceReview bool
	for ri, r := range c.Rules {
		var hit, ok bool
		if r.fast != nil {
			hit, ok = r.fast(env)
		}
		if !ok {
			if slow == nil {
				slow = c.env.build(ev, fv, mv)
				machine = vmPool.Get().(*vm.VM)
				defer vmPool.Put(machine)
			}
			out, err := machine.Run(r.prog, slow)
			if err != nil {
				e.stats.ruleErrors.Add(1)
				d.Errors = append(d.Errors, RuleError{Rule: r.ID, Error: clipText(err.Error())})
				continue
			}
			hit, _ = out.(bool)
		}
		if !hit {
			continue
		}
		hits = append(hits, int32(ri))
		d.Score += r.Score
		forceReject = forceReject || r.Action == Reject
		forceAccept = forceAccept || r.Action == Accept
		forceReview = forceReview || r.Action == Review
	}
	sc.hits = hits
	d.fv, d.mv, d.hits = packDecision(fv, mv, hits)
	d.Decision = c.Decision.outcome(d.Score, forceReject, forceAccept, forceReview)
	return d
}

// packDecision copies a decision's feature and model values and rule hits into one
// allocation; mv is nil when empty, hits nil when none hit.
func packDecision(fv, mv []float64, hits []int32) ([]float64, []float64, []int32) {
	nf, nv := len(fv), len(fv)+len(mv)
	buf := make([]float64, nv+(len(hits)+1)/2)
	copy(buf, fv)
	copy(buf[nf:], mv)
	var h []int32
	if len(hits) > 0 {
		h = unpackHits(buf[nv:], len(hits))
		copy(h, hits)
	}
	out := buf[nf:nv:nv]
	if len(mv) == 0 {
		out = nil
	}
	return buf[:nf:nf], out, h
}

// unpackHits is the first n rule hits packed (two to a value) in v.
func unpackHits(v []float64, n int) []int32 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&v[0])), n)
}

// predict evaluates the model on ev with the rule set's feature values fv (a missing event
// input is NaN; a NaN prediction is 0). x is scratch space for the inputs, returned for reuse.
func (m *compiledModel) predict(ev *Event, fv, x []float64) (float64, []float64) {
	x = x[:0]
	for _, in := range m.inputs {
		if in.feature >= 0 {
			x = append(x, fv[in.feature])
		} else if v, ok := ev.Number(in.field); ok {
			x = append(x, v)
		} else {
			x = append(x, math.NaN())
		}
	}
	p := m.model.Predict(x)
	if math.IsNaN(p) {
		p = 0
	}
	return p, x
}

// outcome is the decision for a summed score and the actions of the rules that hit: any
// reject rejects; otherwise any accept accepts; otherwise the thresholds, or a review action,
// decide.
func (dd DecisionDef) outcome(score int, reject, accept, review bool) string {
	switch {
	case reject:
		return Reject
	case accept:
		return Accept
	case score >= dd.RejectAt:
		return Reject
	case score >= dd.ReviewAt || review:
		return Review
	}
	return Accept
}
