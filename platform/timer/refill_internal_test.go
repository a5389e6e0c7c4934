package timer

import (
	"context"
	"log/slog"
	"sort"
	"testing"
	"time"
)

// memDue is a Store whose Due reads from a fixed list of pending timers; the other methods
// are not used by these tests.
type memDue struct {
	Store
	pending []Record
	calls   int
}

func (m *memDue) Due(_ context.Context, from, to time.Time, limit int) ([]Record, error) {
	m.calls++
	sort.Slice(m.pending, func(i, j int) bool { return m.pending[i].NextAt.Before(m.pending[j].NextAt) })
	var out []Record
	for _, r := range m.pending {
		if len(out) >= limit {
			break
		}
		if !r.NextAt.Before(from) && r.NextAt.Before(to) {
			out = append(out, r)
		}
	}
	return out, nil
}

// A refill that finds the window full (it filled between the refiller's look and the
// refill, as Schedule and Committed can do) loads nothing and leaves the horizon where it
// was, so the timers beyond it are still loaded later. It used to move the horizon to
// now+Lookahead, and those timers were never fired.
func TestRefillOfAFullWindowKeepsTheHorizon(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	st := &memDue{}
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		st.pending = append(st.pending, Record{Timer: Timer{ID: string(rune('a' + i)), Handler: "h", FireAt: at}, NextAt: at})
	}
	s, err := New(Config{Store: st, WindowMax: 2, Lookahead: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.horizon = t0
	if err := s.refill(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	if len(s.byID) != 2 || !s.truncated || !s.horizon.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("first refill: %d in window, truncated %v, horizon %v", len(s.byID), s.truncated, s.horizon.Sub(t0))
	}
	// The window is full: a refill now must not skip "c" and "d".
	h := s.horizon
	if err := s.refill(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	if !s.horizon.Equal(h) || s.refilling || st.calls != 1 {
		t.Fatalf("refill of a full window: horizon %v (was %v), refilling %v, queries %d", s.horizon.Sub(t0), h.Sub(t0), s.refilling, st.calls)
	}
	// Once "a" and "b" are done and have left the window, the rest is loaded.
	st.pending = st.pending[2:]
	for _, id := range []string{"a", "b"} {
		e := s.byID[id]
		s.heap = s.heap[:0]
		s.forgetLocked(e)
	}
	if err := s.refill(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	if s.byID["c"] == nil || s.byID["d"] == nil {
		t.Fatalf("after room was made the window holds %v", keys(s.byID))
	}
}

func keys(m map[string]*entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
