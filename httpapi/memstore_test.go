package httpapi

import (
	"context"
	"sort"
	"sync"
	"testing"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/storetest"
)

// memStore is an in-memory ledger.Store for the fuzz tests, where SQLite's fsync per commit
// would cost most of the fuzzing time. It is deliberately simple; the conformance suite in
// store/storetest is what holds real backends to the contract.
type memStore struct {
	mu        sync.Mutex
	token     int64
	lease     uint64 // the highest lease token seen
	lastTs    ledger.Timestamp
	accounts  map[string]*ledger.Account
	transfers map[string]*ledger.Transfer
	journal   []*ledger.Transfer            // in timestamp order
	byAccount map[string][]*ledger.Transfer // in timestamp order
}

var _ ledger.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		accounts:  map[string]*ledger.Account{},
		transfers: map[string]*ledger.Transfer{},
		byAccount: map[string][]*ledger.Transfer{},
	}
}

// account returns a copy of account id with balances from its latest journal record, as
// the Store contract says. The caller holds mu.
func (m *memStore) account(id string) *ledger.Account {
	a := m.accounts[id]
	if a == nil {
		return nil
	}
	c := *a
	c.Balances = ledger.Balances{}
	if list := m.byAccount[id]; len(list) > 0 {
		last := list[len(list)-1]
		if last.DebitAccountID == id {
			c.Balances = last.DebitBalances
		} else {
			c.Balances = last.CreditBalances
		}
	}
	return &c
}

func copyTransfer(t *ledger.Transfer) *ledger.Transfer { c := *t; return &c }

func (m *memStore) AcquireWriter(_ context.Context, lease uint64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if lease <= m.lease && (lease != 0 || m.lease != 0) {
		return 0, ledger.FencedLease(lease, m.lease)
	}
	m.lease = lease
	m.token++
	return m.token, nil
}

func (m *memStore) Head(context.Context) (ledger.Head, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := ledger.Head{Timestamp: m.lastTs, Hash: ledger.GenesisHash}
	if n := len(m.journal); n > 0 {
		h.Hash = m.journal[n-1].Hash
	}
	return h, nil
}

func (m *memStore) LoadAccounts(_ context.Context, ids []string) ([]*ledger.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ledger.Account
	for _, id := range ids {
		if a := m.account(id); a != nil {
			out = append(out, a)
		}
	}
	return out, nil
}

func (m *memStore) LoadTransfers(_ context.Context, ids []string) ([]*ledger.Transfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ledger.Transfer
	for _, id := range ids {
		if t := m.transfers[id]; t != nil {
			out = append(out, copyTransfer(t))
		}
	}
	return out, nil
}

func (m *memStore) Commit(_ context.Context, token int64, b *ledger.Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if token != m.token {
		return ledger.ErrFenced
	}
	for _, a := range b.NewAccounts {
		c := *a
		m.accounts[a.ID] = &c
		m.lastTs = max(m.lastTs, a.Timestamp)
	}
	for _, t := range b.Transfers {
		c := copyTransfer(t)
		m.transfers[c.ID] = c
		m.journal = append(m.journal, c)
		m.byAccount[c.DebitAccountID] = append(m.byAccount[c.DebitAccountID], c)
		m.byAccount[c.CreditAccountID] = append(m.byAccount[c.CreditAccountID], c)
		m.lastTs = max(m.lastTs, c.Timestamp)
	}
	for _, c := range b.Closed {
		if t := m.transfers[c.ID]; t != nil && t.Status == ledger.StatusPending {
			t.Status = c.Status
		}
	}
	return nil
}

func (m *memStore) GetAccount(_ context.Context, id string) (*ledger.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.account(id); a != nil {
		return a, nil
	}
	return nil, ledger.ErrNotFound
}

func (m *memStore) GetTransfer(_ context.Context, id string) (*ledger.Transfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.transfers[id]; t != nil {
		return copyTransfer(t), nil
	}
	return nil, ledger.ErrNotFound
}

func (m *memStore) AccountTransfers(_ context.Context, accountID string, before ledger.Timestamp, limit int) ([]*ledger.Transfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ledger.Transfer
	list := m.byAccount[accountID]
	for i := len(list) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || list[i].Timestamp < before {
			out = append(out, copyTransfer(list[i]))
		}
	}
	return out, nil
}

func (m *memStore) LastTransferAt(_ context.Context, accountID string, at ledger.Timestamp) (*ledger.Transfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.byAccount[accountID]
	i := sort.Search(len(list), func(i int) bool { return list[i].Timestamp > at })
	if i == 0 {
		return nil, ledger.ErrNotFound
	}
	return copyTransfer(list[i-1]), nil
}

func (m *memStore) DuePending(_ context.Context, now ledger.Timestamp, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, t := range m.journal {
		if len(ids) == limit {
			break
		}
		if t.Status == ledger.StatusPending && t.ExpiresAt != 0 && t.ExpiresAt <= now {
			ids = append(ids, t.ID)
		}
	}
	return ids, nil
}

func (m *memStore) ScanTransfers(_ context.Context, after ledger.Timestamp, limit int) ([]*ledger.Transfer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*ledger.Transfer
	for _, t := range m.journal {
		if t.Timestamp > after && len(out) < limit {
			out = append(out, copyTransfer(t))
		}
	}
	return out, nil
}

func (m *memStore) ScanAccounts(_ context.Context, after string, limit int) ([]*ledger.Account, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.accounts))
	for id := range m.accounts {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []*ledger.Account
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, m.account(id))
	}
	return out, nil
}

func (m *memStore) Close() error { return nil }

// TestMemStoreConformance holds the fuzz tests' in-memory store to the same contract as the
// real backends, so the fuzzers exercise the ledger's real behaviour.
func TestMemStoreConformance(t *testing.T) {
	storetest.TestLedger(t, func(t testing.TB) func() ledger.Store {
		st := newMemStore()
		return func() ledger.Store { return st }
	})
}

// Records are not used by the API tests.
func (m *memStore) LoadRecords(context.Context, []ledger.RecordKey) ([]*ledger.Record, error) {
	return nil, nil
}
func (m *memStore) GetRecord(context.Context, string, string) (*ledger.Record, error) {
	return nil, ledger.ErrNotFound
}
func (m *memStore) ListRecords(context.Context, ledger.RecordQuery) ([]*ledger.Record, bool, error) {
	return nil, false, nil
}
