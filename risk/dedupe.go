package risk

import (
	"hash/maphash"
	"sync"
)

// dedupe remembers recent event ids, so that an event sent twice is applied once and a
// decision asked twice gets the same answer. It is bounded in count and in event time.
type dedupe struct {
	seed   maphash.Seed
	parts  [16]dedupePart
	max    int   // per part
	window int64 // ns of event time
}

type dedupePart struct {
	mu   sync.Mutex
	ids  map[string]*seen
	fifo []fifoEntry
	head int
}

type fifoEntry struct {
	id string
	ts int64
}

// seen is one remembered event: the hash of what was received, and the decisions given (one
// per rule set; none for an event ingested without one). finish marks the first request for
// the id as finished; a request that waits for it makes the channel it waits on (most ids
// are never repeated, so most entries have none: one object less per remembered event).
type seen struct {
	body uint64
	err  error
	mu   sync.Mutex
	done bool          // the first request finished (mu)
	wake chan struct{} // made by a waiter, closed by finish (mu)
	dec  *Decision     // the first rule set's decision
	more []*Decision   // other rule sets'
}

// finish marks the first request for the id as finished (its err and decision set) and
// wakes the requests waiting for it.
func (s *seen) finish() {
	s.mu.Lock()
	s.done = true
	if s.wake != nil {
		close(s.wake)
	}
	s.mu.Unlock()
}

// finished returns nil once the first request finished, otherwise a channel closed when it
// does.
func (s *seen) finished() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

// decision returns the decision given for rule set name, nil if none. The caller holds mu.
func (s *seen) decision(name string) *Decision {
	if s.dec != nil && s.dec.RuleSet == name {
		return s.dec
	}
	for _, d := range s.more {
		if d.RuleSet == name {
			return d
		}
	}
	return nil
}

// keep adds d to the decisions given. The caller holds mu, or is the first request.
func (s *seen) keep(d *Decision) {
	if s.dec == nil {
		s.dec = d
		return
	}
	s.more = append(s.more, d)
}

func (d *dedupe) init(max int, window int64) {
	d.seed = maphash.MakeSeed()
	d.max = max/len(d.parts) + 1
	d.window = window
	for i := range d.parts {
		d.parts[i].ids = map[string]*seen{}
	}
}

func (d *dedupe) part(id string) *dedupePart {
	return &d.parts[maphash.String(d.seed, id)%uint64(len(d.parts))]
}

// claim returns the entry for id and whether this call created it (the caller then fills it
// and calls finish).
func (d *dedupe) claim(id string, body uint64, ts int64) (*seen, bool) {
	p := d.part(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.ids[id]; ok {
		return s, false
	}
	s := &seen{body: body}
	p.ids[id] = s
	p.fifo = append(p.fifo, fifoEntry{id, ts})
	for len(p.fifo)-p.head > d.max {
		p.pop()
	}
	return s, true
}

// forget drops id (its first request failed before changing anything).
func (d *dedupe) forget(id string) {
	p := d.part(id)
	p.mu.Lock()
	delete(p.ids, id)
	p.mu.Unlock()
}

func (p *dedupePart) pop() {
	delete(p.ids, p.fifo[p.head].id)
	p.fifo[p.head] = fifoEntry{}
	p.head++
	if p.head >= 1024 && p.head*2 >= len(p.fifo) {
		p.fifo = p.fifo[:copy(p.fifo, p.fifo[p.head:])]
		p.head = 0
	}
}

// expire forgets ids whose events are older than the window before now (event time).
func (d *dedupe) expire(now int64) {
	for i := range d.parts {
		p := &d.parts[i]
		p.mu.Lock()
		for p.head < len(p.fifo) && p.fifo[p.head].ts < now-d.window {
			p.pop()
		}
		p.mu.Unlock()
	}
}
