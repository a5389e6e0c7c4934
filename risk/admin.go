package risk

import (
	"context"
	"fmt"
	"maps"
)

// Summary describes a stored rule set version.
type Summary struct {
	Name     string `json:"name"`
	Version  int    `json:"version"`
	Created  bool   `json:"created"`
	Features int    `json:"features"`
	Rules    int    `json:"rules"`
	Models   int    `json:"models"`
	Lists    int    `json:"lists"`
}

// PutRuleSet validates source and stores it as the next version of the rule set name. A
// source equal to the newest version's is not stored again (Created is false). Nothing is
// stored when the rule set is invalid (the error is RuleSetErrors, each with its line).
func (e *Engine) PutRuleSet(ctx context.Context, name string, source []byte) (Summary, error) {
	if !ValidName(name) {
		return Summary{}, ErrBadName
	}
	c, err := e.compile(name, 0, source)
	if err != nil {
		return Summary{}, err
	}
	v, created, err := e.store.PutRuleSet(ctx, name, source, e.cfg.Now().UTC())
	if err != nil {
		return Summary{}, fmt.Errorf("store rule set %s: %w", name, err)
	}
	e.admin.Lock()
	defer e.admin.Unlock()
	sets := maps.Clone(*e.sets.Load())
	l := sets[name]
	if l == nil {
		l = &loaded{head: Head{Name: name}}
	} else {
		cp := *l
		l = &cp
	}
	l.head.Latest = max(l.head.Latest, v)
	sets[name] = l
	e.sets.Store(&sets)
	return Summary{Name: name, Version: v, Created: created, Features: len(c.Features), Rules: len(c.Rules), Models: len(c.Models), Lists: len(c.Lists)}, nil
}

// Activate makes version the active version of name and shadow (0: none) its shadow. The
// feature state of features the new versions share with the old ones carries over; features
// new to the engine are back-filled from the event log before the versions take effect (see
// backfill.go), while decisions go on with the versions before.
func (e *Engine) Activate(ctx context.Context, name string, version, shadow int) (Head, error) {
	e.admin.Lock()
	defer e.admin.Unlock()
	sets := maps.Clone(*e.sets.Load())
	old := sets[name]
	if old == nil {
		return Head{}, ErrUnknownRuleSet
	}
	l := &loaded{head: old.head}
	var err error
	if l.active, err = e.compileStored(ctx, name, version); err != nil {
		return Head{}, err
	}
	if l.shadow, err = e.compileStored(ctx, name, shadow); err != nil {
		return Head{}, err
	}
	if l.active == nil {
		return Head{}, ErrUnknownVersion
	}
	l.head.Active, l.head.Shadow, l.head.Updated = version, shadow, e.cfg.Now().UTC()
	commit := func() error {
		if err := e.store.SetHead(ctx, l.head); err != nil {
			return fmt.Errorf("activate rule set %s: %w", name, err)
		}
		return nil
	}
	sets[name] = l
	cat := e.plan(sets)
	b := e.newBackfill(e.cat.Load(), cat, e.watermark.Load())
	if b == nil {
		if err := commit(); err != nil {
			return Head{}, err
		}
		e.publish(cat, sets)
		return l.head, nil
	}
	// Features new to the engine: their state is built from the event log first. A caller
	// that stops waiting (a client timing out on a long back-fill) does not waste the work:
	// it runs to the end (Close stops it).
	ctx = context.WithoutCancel(ctx)
	committed, err := e.activateBackfilled(ctx, b, cat, sets, commit)
	if err != nil {
		if committed {
			if rerr := e.store.SetHead(ctx, old.head); rerr != nil {
				e.log.Error("risk: activation failed after it was stored and could not be undone; a restart activates it", "ruleset", name, "err", rerr)
			}
		}
		return Head{}, err
	}
	return l.head, nil
}

// RuleSet returns the versions of a rule set.
func (e *Engine) RuleSet(name string) (Head, bool) {
	l := (*e.sets.Load())[name]
	if l == nil {
		return Head{}, false
	}
	return l.head, true
}

// MaxListItems bounds one list change.
const MaxListItems = 10_000

// AddListItems adds items to the list name, durably, and returns how many were new.
func (e *Engine) AddListItems(ctx context.Context, name string, items []string) (int, error) {
	if !ValidName(name) {
		return 0, ErrBadName
	}
	n, err := e.store.AddListItems(ctx, name, items, e.cfg.Now().UTC())
	if err != nil {
		return 0, fmt.Errorf("add to list %s: %w", name, err)
	}
	e.lists.add(name, items)
	return n, nil
}

// RemoveListItems removes items from the list name and returns how many it held.
func (e *Engine) RemoveListItems(ctx context.Context, name string, items []string) (int, error) {
	if !ValidName(name) {
		return 0, ErrBadName
	}
	n, err := e.store.RemoveListItems(ctx, name, items)
	if err != nil {
		return 0, fmt.Errorf("remove from list %s: %w", name, err)
	}
	e.lists.remove(name, items)
	return n, nil
}

// ListSize is the number of items in the list name.
func (e *Engine) ListSize(name string) int { return e.lists.size(name) }
