package risk

import (
	"context"
	"math"
	"reflect"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/expr-lang/expr/vm"
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

	c  *Compiled // what decided
	fv []float64 // feature values in the rule set's order
	mv []float64 // model values in the rule set's order
}

// compact returns a copy of d without the Features and Models maps (their values stay in fv
// and mv), to be remembered for repeated requests at a fraction of the memory.
func (d *Decision) compact() *Decision {
	c := *d
	c.Features, c.Models = nil, nil
	return &c
}

// expand returns a copy of a compact decision with its maps rebuilt.
func (d *Decision) expand() *Decision {
	c := *d
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
// ErrIDConflict.
func (e *Engine) Decide(ctx context.Context, name string, ev *Event) (*Decision, error) {
	sets := *e.sets.Load()
	l := sets[name]
	if l == nil {
		return nil, ErrUnknownRuleSet
	}
	if l.active == nil {
		return nil, ErrNotActive
	}
	body := xxhash.Sum64(ev.Raw)
	s, first := e.dedupe.claim(ev.ID, body, ev.Time.UnixNano())
	if first {
		dec, err := e.decide(l, ev, true)
		if err != nil {
			e.dedupe.forget(ev.ID)
		} else {
			s.decs = append(s.decs, dec.compact())
		}
		s.err = err
		close(s.ready)
		return dec, err
	}
	if err := e.wait(ctx, s, body); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.decs {
		if d.RuleSet == name {
			return d.expand(), nil
		}
	}
	dec, err := e.decide(l, ev, false)
	if err == nil {
		s.decs = append(s.decs, dec.compact())
	}
	return dec, err
}

// wait waits for the first request of an event id to finish and checks that this one
// carries the same event.
func (e *Engine) wait(ctx context.Context, s *seen, body uint64) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
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
		e.apply(ev, true, func() { e.enqueue(logItem{event: ev}) })
	} else {
		e.dedupe.forget(ev.ID)
	}
	s.err = err
	close(s.ready)
	return err == nil, err
}

func (e *Engine) decide(l *loaded, ev *Event, count bool) (*Decision, error) {
	if err := e.enqueueCheck(); err != nil {
		return nil, err
	}
	e.stats.decisions.Add(1)
	var logFn func()
	if count {
		logFn = func() { e.enqueue(logItem{event: ev}) }
	}
	values := e.apply(ev, count, logFn)
	dec := e.evaluate(l.active, ev, values)
	e.enqueue(logItem{decision: dec})
	if l.shadow != nil {
		sd := e.evaluate(l.shadow, ev, values)
		e.enqueue(logItem{decision: sd, shadow: true})
	}
	return dec, nil
}

// envPool recycles expression VMs.
var vmPool = sync.Pool{New: func() any { return new(vm.VM) }}

// evaluate runs c's models and rules on ev with the feature values (by state id).
func (e *Engine) evaluate(c *Compiled, ev *Event, values []float64) *Decision {
	env := reflect.New(c.env.typ).Elem()
	env.Field(envEvent).Set(reflect.ValueOf(ev.Fields))
	fv := env.Field(envFeatures)
	for i, id := range c.stateIDs {
		fv.Field(i).SetFloat(values[id])
	}
	mv := env.Field(envModels)
	var xbuf [64]float64
	for i, m := range c.Models {
		x := xbuf[:0]
		for _, in := range m.inputs {
			if in.feature >= 0 {
				x = append(x, values[c.stateIDs[in.feature]])
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
		mv.Field(i).SetFloat(p)
	}
	envAny := env.Interface()
	machine := vmPool.Get().(*vm.VM)
	defer vmPool.Put(machine)
	d := &Decision{RuleSet: c.Name, Version: c.Version, EventID: ev.ID, Reasons: []Reason{}, c: c}
	var forceReject, forceAccept, forceReview bool
	for _, r := range c.Rules {
		out, err := machine.Run(r.prog, envAny)
		if err != nil {
			e.stats.ruleErrors.Add(1)
			d.Errors = append(d.Errors, RuleError{Rule: r.ID, Error: clipText(err.Error())})
			continue
		}
		if hit, _ := out.(bool); !hit {
			continue
		}
		d.Score += r.Score
		d.Reasons = append(d.Reasons, Reason{Rule: r.ID, Reason: r.Reason, Score: r.Score, Action: r.Action})
		switch r.Action {
		case Reject:
			forceReject = true
		case Accept:
			forceAccept = true
		case Review:
			forceReview = true
		}
	}
	switch {
	case forceReject:
		d.Decision = Reject
	case forceAccept:
		d.Decision = Accept
	case d.Score >= c.Decision.RejectAt:
		d.Decision = Reject
	case d.Score >= c.Decision.ReviewAt || forceReview:
		d.Decision = Review
	default:
		d.Decision = Accept
	}
	d.fv = make([]float64, len(c.Features))
	for i := range c.Features {
		d.fv[i] = values[c.stateIDs[i]]
	}
	if len(c.Models) > 0 {
		d.mv = make([]float64, len(c.Models))
		for i := range c.Models {
			d.mv[i] = mv.Field(i).Float()
		}
	}
	return d.expand()
}
