package lock

import (
	"context"
	"sync"
	"time"
)

// Memory is a Backend in this process's memory: for tests, and for locks that only
// goroutines of one process contend for. Its tokens start again at 1 when the process
// restarts, so it must not guard storage that outlives the process.
type Memory struct {
	mu    sync.Mutex
	locks map[string]*memLock
	now   func() time.Time
}

type memLock struct {
	holder  string // "" when released
	token   uint64
	expires time.Time
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory { return &Memory{locks: map[string]*memLock{}, now: time.Now} }

// TryAcquire implements Backend.
func (m *Memory) TryAcquire(_ context.Context, name, holder string, ttl time.Duration) (Grant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	l := m.locks[name]
	if l == nil {
		l = &memLock{}
		m.locks[name] = l
	}
	if l.holder != "" && l.holder != holder && now.Before(l.expires) {
		return Grant{}, ErrHeld
	}
	g := Grant{Token: l.token + 1, Previous: l.holder}
	*l = memLock{holder: holder, token: g.Token, expires: now.Add(ttl)}
	return g, nil
}

// Renew implements Backend.
func (m *Memory) Renew(_ context.Context, name, holder string, token uint64, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.locks[name]
	if l == nil || l.token != token || l.holder != holder {
		return ErrNotHeld
	}
	l.expires = m.now().Add(ttl)
	return nil
}

// Release implements Backend.
func (m *Memory) Release(_ context.Context, name, holder string, token uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.locks[name]
	if l == nil || l.token != token || l.holder != holder {
		return ErrNotHeld
	}
	l.holder, l.expires = "", time.Time{}
	return nil
}
