package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/fincore/fincore/platform/jsonw"
	"github.com/fincore/fincore/platform/timer"
)

// ErrNotFound is returned by Store reads for a missing account or transfer.
var ErrNotFound = errors.New("ledger: not found")

// ErrFenced is returned by Store.Commit when the writer's token has been superseded by a
// newer writer, and by Store.AcquireWriter for a lease token that a newer one has superseded:
// the caller must stop writing.
var ErrFenced = errors.New("ledger: writer fenced by a newer token")

// FencedLease is AcquireWriter's error for lease token lease when the store has seen seen.
func FencedLease(lease, seen uint64) error {
	if lease == 0 {
		return fmt.Errorf("%w: a writer without a lease cannot start once writers hold leases (lease token %d seen)", ErrFenced, seen)
	}
	return fmt.Errorf("%w: lease token %d is not above %d, the highest seen", ErrFenced, lease, seen)
}

// Batch is everything one group commit writes, in one storage transaction.
//
// Balances are never written as such: every journal record carries both accounts' balances
// just after it, so an account's current balances are those of its latest record (and its
// balances at any instant those of its latest record at that instant). A hot account that
// takes thousands of transfers in a group costs no write beyond the records themselves.
type Batch struct {
	// NewAccounts are inserted (their immutable fields; balances come from the journal).
	NewAccounts []*Account
	// Transfers are new journal records in timestamp order.
	Transfers []*Transfer
	// Closed are pending transfers (written in an earlier batch) whose status changed.
	Closed []Closed
	// Events announce the new accounts and records, one each, in timestamp order. Commit
	// appends them to the outbox in this order, in the same transaction (the engine fills
	// them; every movement of money is announced).
	Events []Event
	// Timers are the expiry timers of the pending transfers with a timeout among Transfers
	// (ExpiryTimer). Commit schedules them in the same transaction, each unless a timer with
	// its ID exists (as timer.Store.ScheduleMany does), so that a pending transfer commits
	// if and only if its expiry timer does.
	Timers []timer.Timer
	// Records are new versions of other modules' records (Engine.Commit), written in the
	// same transaction: inserted, or replacing the previous version. The engine has checked
	// their versions; a store simply writes them.
	Records []*Record
	// Keep[i] says which indexed fields Records[i] keeps from the stored version it
	// replaces (KeepOwner, KeepStatus; Created is always kept), so that a store need not
	// rewrite their index entries: the end of day rewrites every open loan and changes only
	// its data. Written with Records.
	Keep []RecordKeep
}

// RecordKeep is a set of indexed record fields a write keeps from the stored version.
type RecordKeep uint8

// Fields a record write can keep.
const (
	KeepOwner RecordKeep = 1 << iota
	KeepStatus
)

// KeepAt returns Keep[i] (nothing kept where Keep is not filled in).
func (b *Batch) KeepAt(i int) RecordKeep {
	if i < len(b.Keep) {
		return b.Keep[i]
	}
	return 0
}

// Closed records the new status of a pending transfer.
type Closed struct {
	ID     string
	Status Status
}

// Head is where the journal stands: the last timestamp used (by an account or transfer) and
// the hash of the last journal record.
type Head struct {
	Timestamp Timestamp
	Hash      []byte
}

// Store is the ledger's storage. The engine is its only writer; reads may come from anywhere.
// Every adapter must pass store/storetest.
type Store interface {
	// AcquireWriter makes the caller the ledger's writer and returns its writer token, which
	// is strictly greater than every token handed out before; from then on a Commit with an
	// older token fails with ErrFenced. lease is the fencing token of the lock lease the
	// caller holds (platform/lock), or 0 for a writer alone on its storage (embedded mode).
	// In the same statement the store records the highest lease token it has seen and
	// refuses, with ErrFenced (FencedLease), a lease token not above it, so a writer whose
	// lease was taken over can never start again, and each lease starts one writer at most;
	// once any lease token is recorded, 0 is refused too.
	AcquireWriter(ctx context.Context, lease uint64) (token int64, err error)
	// Head returns the journal's head.
	Head(ctx context.Context) (Head, error)
	// LoadAccounts returns the accounts among ids that exist (in any order).
	LoadAccounts(ctx context.Context, ids []string) ([]*Account, error)
	// LoadTransfers returns the transfers among ids that exist (in any order).
	LoadTransfers(ctx context.Context, ids []string) ([]*Transfer, error)
	// Commit writes b atomically and durably, after checking the fencing token.
	Commit(ctx context.Context, token int64, b *Batch) error

	// GetAccount returns one account, with balances from its latest journal record, or
	// ErrNotFound. LoadAccounts and ScanAccounts fill balances the same way.
	GetAccount(ctx context.Context, id string) (*Account, error)
	// GetTransfer returns one transfer or ErrNotFound.
	GetTransfer(ctx context.Context, id string) (*Transfer, error)
	// AccountTransfers returns up to limit journal records that debit or credit the account,
	// with timestamps strictly below before (0: no bound), newest first.
	AccountTransfers(ctx context.Context, accountID string, before Timestamp, limit int) ([]*Transfer, error)
	// LastTransferAt returns the latest journal record touching the account with a timestamp
	// at or before at, or ErrNotFound.
	LastTransferAt(ctx context.Context, accountID string, at Timestamp) (*Transfer, error)
	// DuePending returns ids of pending transfers whose expiry is at or before now (for the
	// optional sweep, Config.ExpiryInterval).
	DuePending(ctx context.Context, now Timestamp, limit int) ([]string, error)
	// ScanTransfers returns up to limit journal records with timestamps after after, oldest first.
	ScanTransfers(ctx context.Context, after Timestamp, limit int) ([]*Transfer, error)
	// ScanAccounts returns up to limit accounts with ids greater than after, in id order.
	ScanAccounts(ctx context.Context, after string, limit int) ([]*Account, error)
	// LoadRecords returns the current versions of the records among keys that exist (in any
	// order).
	LoadRecords(ctx context.Context, keys []RecordKey) ([]*Record, error)
	// GetRecord returns one record or ErrNotFound.
	GetRecord(ctx context.Context, kind, id string) (*Record, error)
	// ListRecords returns up to q.Limit records matching q, newest first, and whether more
	// follow. A StartingAfter naming no record of the kind gives ErrNotFound.
	ListRecords(ctx context.Context, q RecordQuery) ([]*Record, bool, error)
	// Close releases the store.
	Close() error
}

// EncodeMetadata is the storage encoding of metadata: "" for none, else canonical JSON
// (keys sorted).
// It writes what encoding/json writes for the map, without reflection.
func EncodeMetadata(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	b := make([]byte, 0, 128)
	b = append(b, '{')
	if len(m) == 1 {
		for k, v := range m {
			b = jsonw.AppendString(b, k)
			b = append(b, ':')
			b = jsonw.AppendString(b, v)
		}
	} else {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonw.AppendString(b, k)
			b = append(b, ':')
			b = jsonw.AppendString(b, m[k])
		}
	}
	return string(append(b, '}'))
}

// DecodeMetadata is the inverse of EncodeMetadata.
func DecodeMetadata(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	return m, nil
}

// MergeNewestFirst merges two lists sorted newest first into one, keeping at most limit.
// Store adapters use it to combine an account's debit and credit records.
func MergeNewestFirst(a, b []*Transfer, limit int) []*Transfer {
	if limit <= 0 {
		return nil
	}
	out := make([]*Transfer, 0, min(limit, len(a)+len(b)))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].Timestamp > b[0].Timestamp) {
			out = append(out, a[0])
			a = a[1:]
		} else {
			out = append(out, b[0])
			b = b[1:]
		}
	}
	return out
}
