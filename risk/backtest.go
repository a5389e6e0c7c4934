package risk

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// BacktestReport says how a candidate rule set would have decided the logged events of a
// period, next to what was decided at the time.
type BacktestReport struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Events  int       `json:"events"`
	WarmUp  int       `json:"warm_up_events"`
	Changed int       `json:"changed"`
	// Candidate and Logged count outcomes; Logged only covers events that were decided.
	Candidate map[string]int `json:"candidate"`
	Logged    map[string]int `json:"logged"`
	// Transitions counts "logged->candidate" pairs that differ.
	Transitions map[string]int `json:"transitions"`
	// Labelled quality: an event is positive when its label is "fraud" (or "1"), negative
	// for any other label; flagged when the decision is review or reject.
	Labelled  int           `json:"labelled"`
	Quality   *Quality      `json:"candidate_quality,omitempty"`
	LoggedQ   *Quality      `json:"logged_quality,omitempty"`
	TopRules  []RuleHits    `json:"top_rules"`
	Examples  []ChangedCase `json:"examples,omitempty"`
	RuleSetID string        `json:"ruleset"`
}

// Quality is precision and recall of flagging fraud.
type Quality struct {
	TP, FP, FN, TN int
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
}

// RuleHits counts a rule's hits in the candidate.
type RuleHits struct {
	Rule string `json:"rule"`
	Hits int    `json:"hits"`
}

// ChangedCase is one event whose decision would change.
type ChangedCase struct {
	EventID   string `json:"event_id"`
	Logged    string `json:"logged"`
	Candidate string `json:"candidate"`
	Score     int    `json:"score"`
}

// Backtest replays the events logged in st between from and to through the candidate rule
// set source, in their original order, and compares the decisions with the logged ones of the
// rule set name ("" compares with any rule set's active decision). Feature windows are first
// warmed with the events of the candidate's longest window before from. Nothing is written
// to st.
func Backtest(ctx context.Context, st Store, name string, source []byte, from, to time.Time) (*BacktestReport, error) {
	lists, err := st.ListItems(ctx)
	if err != nil {
		return nil, err
	}
	e, err := Open(ctx, &scratchStore{lists: lists}, Config{SnapshotEvery: -1, SweepEvery: time.Hour, NoCloseSnapshot: true})
	if err != nil {
		return nil, err
	}
	defer e.Close()
	if name == "" {
		name = "candidate"
	}
	sum, err := e.PutRuleSet(ctx, name, source)
	if err != nil {
		return nil, err
	}
	if _, err := e.Activate(ctx, name, sum.Version, 0); err != nil {
		return nil, err
	}
	l := (*e.sets.Load())[name]
	rep := &BacktestReport{From: from, To: to, Candidate: map[string]int{}, Logged: map[string]int{}, Transitions: map[string]int{}, RuleSetID: name}
	cq, lq := &Quality{}, &Quality{}
	hits := map[string]int{}
	warmFrom := from.Add(-time.Duration(e.cat.Load().retention))
	var after int64
	sc := new(scratch)
	for {
		evs, err := st.Events(ctx, after, warmFrom, replayBatch)
		if err != nil {
			return nil, err
		}
		var batch []*Event
		var ids []string
		for _, le := range evs {
			after = le.Seq
			if !le.Time.Before(to) {
				continue
			}
			ev, err := ParseEvent(le.Body)
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", le.ID, err)
			}
			if le.Time.Before(from) {
				e.apply(ev, true, nil, sc)
				rep.WarmUp++
				continue
			}
			batch = append(batch, ev)
			ids = append(ids, ev.ID)
		}
		logged := map[string]string{}
		if len(ids) > 0 {
			ds, err := st.Decisions(ctx, ids)
			if err != nil {
				return nil, err
			}
			for _, d := range ds {
				if !d.Shadow && (d.RuleSet == name || (name == "candidate" && logged[d.EventID] == "")) {
					logged[d.EventID] = d.Decision
				}
			}
		}
		for _, ev := range batch {
			d := e.evaluate(l.active, ev, e.apply(ev, true, nil, sc), sc)
			rep.Events++
			rep.Candidate[d.Decision]++
			for _, ri := range d.hits {
				hits[l.active.Rules[ri].ID]++
			}
			old, ok := logged[ev.ID]
			if ok {
				rep.Logged[old]++
				if old != d.Decision {
					rep.Changed++
					rep.Transitions[old+"->"+d.Decision]++
					if len(rep.Examples) < 20 {
						rep.Examples = append(rep.Examples, ChangedCase{EventID: ev.ID, Logged: old, Candidate: d.Decision, Score: d.Score})
					}
				}
			}
			if label, isLabel := ev.Fields["label"]; isLabel {
				fraud := label == "fraud" || label == "1" || label == float64(1) || label == true
				rep.Labelled++
				cq.add(fraud, d.Decision != Accept)
				if ok {
					lq.add(fraud, old != Accept)
				}
			}
		}
		if len(evs) < replayBatch {
			break
		}
	}
	if rep.Labelled > 0 {
		rep.Quality = cq.finish()
		if lq.TP+lq.FP+lq.FN+lq.TN > 0 {
			rep.LoggedQ = lq.finish()
		}
	}
	for r, n := range hits {
		rep.TopRules = append(rep.TopRules, RuleHits{r, n})
	}
	sort.Slice(rep.TopRules, func(i, j int) bool {
		a, b := rep.TopRules[i], rep.TopRules[j]
		return a.Hits > b.Hits || a.Hits == b.Hits && a.Rule < b.Rule
	})
	if len(rep.TopRules) > 20 {
		rep.TopRules = rep.TopRules[:20]
	}
	return rep, nil
}

func (q *Quality) add(positive, flagged bool) {
	switch {
	case positive && flagged:
		q.TP++
	case positive:
		q.FN++
	case flagged:
		q.FP++
	default:
		q.TN++
	}
}

func (q *Quality) finish() *Quality {
	if q.TP+q.FP > 0 {
		q.Precision = float64(q.TP) / float64(q.TP+q.FP)
	}
	if q.TP+q.FN > 0 {
		q.Recall = float64(q.TP) / float64(q.TP+q.FN)
	}
	return q
}

// scratchStore is a Store in memory that keeps rule sets and lists and discards the log: the
// backtest's engine writes nothing to the real store.
type scratchStore struct {
	lists   map[string][]string
	sources map[string][][]byte
	heads   map[string]Head
}

func (s *scratchStore) PutRuleSet(_ context.Context, name string, source []byte, at time.Time) (int, bool, error) {
	if s.sources == nil {
		s.sources, s.heads = map[string][][]byte{}, map[string]Head{}
	}
	s.sources[name] = append(s.sources[name], source)
	h := s.heads[name]
	h.Name, h.Latest, h.Updated = name, len(s.sources[name]), at
	s.heads[name] = h
	return h.Latest, true, nil
}

func (s *scratchStore) RuleSetSource(_ context.Context, name string, v int) ([]byte, bool, error) {
	if v < 1 || v > len(s.sources[name]) {
		return nil, false, nil
	}
	return s.sources[name][v-1], true, nil
}

func (s *scratchStore) SetHead(_ context.Context, h Head) error { s.heads[h.Name] = h; return nil }
func (s *scratchStore) Heads(context.Context) ([]Head, error)   { return nil, nil }
func (s *scratchStore) AddListItems(context.Context, string, []string, time.Time) (int, error) {
	return 0, nil
}
func (s *scratchStore) RemoveListItems(context.Context, string, []string) (int, error) { return 0, nil }
func (s *scratchStore) ListItems(context.Context) (map[string][]string, error) {
	return s.lists, nil
}
func (s *scratchStore) AppendLog(context.Context, []LoggedEvent, []LoggedDecision) error { return nil }
func (s *scratchStore) Events(context.Context, int64, time.Time, int) ([]LoggedEvent, error) {
	return nil, nil
}
func (s *scratchStore) LastEvent(context.Context) (LoggedEvent, bool, error) {
	return LoggedEvent{}, false, nil
}
func (s *scratchStore) Decisions(context.Context, []string) ([]LoggedDecision, error) {
	return nil, nil
}
func (s *scratchStore) SaveSnapshot(context.Context, int64, []byte, time.Time) error { return nil }
func (s *scratchStore) LoadSnapshot(context.Context) (int64, []byte, bool, error) {
	return 0, nil, false, nil
}

// MarshalIndent renders the report for people.
func (r *BacktestReport) MarshalIndent() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}

// DiscardStore returns a Store that keeps rule sets in memory and discards the event and
// decision log, for benchmarks and tools that must not write.
func DiscardStore() Store { return &scratchStore{} }
