package risk

import (
	"hash/maphash"
	"sync"

	"github.com/fincore/fincore/risk/internal/slab"
)

// dedupe remembers recent event ids, so that an event sent twice is applied once and a
// decision asked twice gets the same answer. It is bounded in count and in event time.
//
// An id whose first request is still running is pending: a *seen that repeats wait on. Once
// it finished, the id and its decision are kept without pointers (a memo in a ring in
// arrival order, the id's bytes and the decision's values in pools, an index of integers),
// so that a million remembered decisions are a few large objects the garbage collector does
// not scan; a repeat gets a decision rebuilt from the memo, equal to the first. The rare
// decisions that do not fit a memo (those with rule errors, and those for a second rule set)
// are kept as they are.
type dedupe struct {
	seed   maphash.Seed
	parts  [16]dedupePart
	max    int   // per part
	window int64 // ns of event time
	// compiled returns the compiled version of a rule set that decided a remembered event
	// (nil if it cannot be had: the decision is then rebuilt without its rule set's names).
	compiled func(name string, version int) *Compiled
}

type dedupePart struct {
	mu      sync.Mutex
	pending map[string]*seen
	index   map[uint64]uint32 // id hash -> position in ring + 1
	ring    []memo            // circular, in arrival order: [head, head+n)
	head, n int
	ids     slab.Pool[byte]
	vals    slab.Pool[float64]
	names   []string // rule set names, by memo.set
	nameIdx map[string]int32
	extra   map[string][]*Decision // decisions kept whole, by id
}

// memo is a remembered event whose first request finished, and its first decision.
type memo struct {
	h, body uint64 // the id's hash, the body's
	ts      int64
	id      uint32 // block in ids
	idLen   uint32
	vals    uint32 // block in vals: feature and model values, then the hits (two per value)
	idCls   uint8
	valsCls uint8
	outcome uint8
	extra   bool // more decisions in extra
	nf, nm  uint16
	nh      uint16 // rule hits
	set     int32  // index in names; -1: no decision
	version int32
	score   int32
}

// seen is an event whose first request is running (or has finished, for the requests that
// found it then): the hash of what was received, and the decisions given (one per rule set;
// none for an event ingested without one). finish marks the first request as finished; a
// request that waits for it makes the channel it waits on (most ids are never repeated).
type seen struct {
	body uint64
	err  error
	mu   sync.Mutex
	done bool          // the first request finished (mu)
	wake chan struct{} // made by a waiter, closed by finish (mu)
	decs []*Decision
	d    *dedupe
	id   string
	ts   int64
}

var outcomes = [...]string{Accept, Review, Reject}

func (d *dedupe) init(max int, window int64) {
	d.seed = maphash.MakeSeed()
	d.max = max/len(d.parts) + 1
	d.window = window
	for i := range d.parts {
		p := &d.parts[i]
		p.pending = map[string]*seen{}
		p.index = map[uint64]uint32{}
		p.nameIdx = map[string]int32{}
		p.extra = map[string][]*Decision{}
	}
}

func (d *dedupe) hash(id string) uint64 { return maphash.String(d.seed, id) }

func (d *dedupe) part(h uint64) *dedupePart { return &d.parts[h%uint64(len(d.parts))] }

// claim returns the entry for id and whether this call created it (the caller then fills it
// and calls finish).
func (d *dedupe) claim(id string, body uint64, ts int64) (*seen, bool) {
	h := d.hash(id)
	p := d.part(h)
	p.mu.Lock()
	if s, ok := p.pending[id]; ok {
		p.mu.Unlock()
		return s, false
	}
	if m := p.find(h, id); m != nil {
		s := &seen{body: m.body, done: true, d: d, id: id, ts: m.ts}
		var vals []float64
		if m.set >= 0 {
			vals = append(vals, p.vals.Block(m.vals, int(m.nf+m.nm)+(int(m.nh)+1)/2)...)
		}
		cm, name := *m, ""
		if m.set >= 0 {
			name = p.names[m.set]
		}
		s.decs = append(s.decs, p.extra[id]...)
		p.mu.Unlock()
		if cm.set >= 0 {
			s.decs = append(s.decs, d.rebuild(&cm, name, id, vals))
		}
		return s, false
	}
	s := &seen{body: body, d: d, id: id, ts: ts}
	p.pending[id] = s
	p.mu.Unlock()
	return s, true
}

// find returns the memo of id, nil if none. The caller holds mu.
func (p *dedupePart) find(h uint64, id string) *memo {
	pos, ok := p.index[h]
	if !ok {
		return nil
	}
	m := &p.ring[pos-1]
	if string(p.ids.Block(m.id, int(m.idLen))) != id {
		return nil // another id with the same 64-bit hash: not remembered
	}
	return m
}

// rebuild makes the decision a memo holds.
func (d *dedupe) rebuild(m *memo, name, id string, vals []float64) *Decision {
	dec := &Decision{Decision: outcomes[m.outcome], Score: int(m.score), RuleSet: name, Version: int(m.version), EventID: id}
	if d.compiled != nil {
		dec.c = d.compiled(name, int(m.version))
	}
	nv := int(m.nf + m.nm)
	fv, mv := vals[:m.nf], vals[m.nf:nv]
	var hits []int32
	if m.nh > 0 {
		hits = unpackHits(vals[nv:], int(m.nh))
	}
	dec.fv, dec.mv, dec.hits = packDecision(fv, mv, hits)
	return dec
}

// forget drops id (its first request failed before changing anything).
func (d *dedupe) forget(id string) {
	p := d.part(d.hash(id))
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
}

// settle remembers a pending id whose first request finished without error, with its
// decisions.
func (d *dedupe) settle(s *seen) {
	h := d.hash(s.id)
	p := d.part(h)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[s.id] != s {
		return // forgotten
	}
	delete(p.pending, s.id)
	for p.n >= d.max {
		p.pop()
	}
	if p.n == len(p.ring) {
		p.grow(d.max)
	}
	pos := (p.head + p.n) % len(p.ring)
	p.n++
	m := memo{h: h, body: s.body, ts: s.ts, idLen: uint32(len(s.id)), set: -1}
	if len(s.id) > 0 {
		m.idCls = slab.Class(len(s.id))
		m.id = p.ids.Alloc(m.idCls)
		copy(p.ids.Block(m.id, len(s.id)), s.id)
	}
	decs := s.decs
	if len(decs) > 0 && len(decs[0].Errors) == 0 && len(decs[0].fv) < 1<<16 && len(decs[0].mv) < 1<<16 && len(decs[0].hits) < 1<<16 {
		dec := decs[0]
		decs = decs[1:]
		set, ok := p.nameIdx[dec.RuleSet]
		if !ok {
			set = int32(len(p.names))
			p.names = append(p.names, dec.RuleSet)
			p.nameIdx[dec.RuleSet] = set
		}
		m.set, m.version, m.score = set, int32(dec.Version), int32(dec.Score)
		for i, o := range outcomes {
			if o == dec.Decision {
				m.outcome = uint8(i)
			}
		}
		m.nf, m.nm, m.nh = uint16(len(dec.fv)), uint16(len(dec.mv)), uint16(len(dec.hits))
		nv := len(dec.fv) + len(dec.mv)
		n := nv + (len(dec.hits)+1)/2
		if n > 0 {
			m.valsCls = slab.Class(n)
			m.vals = p.vals.Alloc(m.valsCls)
			v := p.vals.Block(m.vals, n)
			copy(v, dec.fv)
			copy(v[len(dec.fv):], dec.mv)
			copy(unpackHits(v[nv:], len(dec.hits)), dec.hits)
		}
	}
	if len(decs) > 0 {
		m.extra = true
		p.extra[s.id] = append(p.extra[s.id][:0:0], decs...)
	}
	p.ring[pos] = m
	p.index[h] = uint32(pos + 1)
}

// keepMore remembers another rule set's decision for a finished id.
func (d *dedupe) keepMore(id string, dec *Decision) {
	h := d.hash(id)
	p := d.part(h)
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.find(h, id)
	if m == nil {
		return // forgotten meanwhile
	}
	m.extra = true
	p.extra[id] = append(p.extra[id], dec)
}

// grow enlarges the ring (up to max entries), keeping the entries' order.
func (p *dedupePart) grow(limit int) {
	ring := make([]memo, min(limit, max(64, 2*len(p.ring))))
	for i := range p.n {
		ring[i] = p.ring[(p.head+i)%len(p.ring)]
		if m := &ring[i]; p.index[m.h] == uint32((p.head+i)%len(p.ring)+1) {
			p.index[m.h] = uint32(i + 1)
		}
	}
	p.ring, p.head = ring, 0
}

// pop forgets the oldest memo.
func (p *dedupePart) pop() {
	m := &p.ring[p.head]
	if p.index[m.h] == uint32(p.head+1) {
		delete(p.index, m.h)
	}
	if m.extra {
		delete(p.extra, string(p.ids.Block(m.id, int(m.idLen))))
	}
	if m.idLen > 0 {
		p.ids.Release(m.id, m.idCls)
	}
	p.vals.Release(m.vals, m.valsCls)
	*m = memo{}
	p.head = (p.head + 1) % len(p.ring)
	p.n--
}

// expire forgets ids whose events are older than the window before now (event time).
func (d *dedupe) expire(now int64) {
	for i := range d.parts {
		p := &d.parts[i]
		p.mu.Lock()
		for p.n > 0 && p.ring[p.head].ts < now-d.window {
			p.pop()
		}
		p.mu.Unlock()
	}
}

// finish marks the first request for the id as finished (its err and decisions set),
// remembers the id if it succeeded, and wakes the requests waiting for it.
func (s *seen) finish() {
	if s.err == nil && s.d != nil {
		s.d.settle(s)
	}
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
	for _, d := range s.decs {
		if d.RuleSet == name {
			return d
		}
	}
	return nil
}

// keep adds d to the decisions given: the first request's before finish, a later one's
// (another rule set's) after it. The caller holds mu, or is the first request.
func (s *seen) keep(d *Decision) {
	s.decs = append(s.decs, d)
	if s.done && s.d != nil {
		s.d.keepMore(s.id, d)
	}
}
