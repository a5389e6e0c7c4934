// Package outbox is fincore's transactional outbox (DESIGN.md principle 3, requirement F1).
//
// A domain write and the events it emits commit in one storage transaction: the ledger's
// Store.Commit appends a batch's events (ledger.Batch.Events) to an outbox table. The Relay
// then publishes them to the event bus in the order they were committed, each with its event
// id as the bus's de-duplication id, and marks them published. A crash between publishing and
// marking publishes the same events again on restart, and the bus drops the repeats (within
// its duplicate window), so consumers see every committed event once and never one that was
// not committed.
//
// Limits: the relay reads at most [Config.PageMax] rows at a time (default [DefaultPageMax]);
// published rows are kept for [Config.Retention] (default [DefaultRetention]) and then
// deleted, at most [PruneMax] rows per statement.
package outbox

import (
	"context"
	"time"
)

// Record is one row of the outbox.
type Record struct {
	// Seq is the row's position: strictly increasing in commit order (there may be gaps).
	Seq     int64
	Subject string
	// MsgID is the event id, unique in the outbox; the bus de-duplicates on it.
	MsgID   string
	Payload []byte
	// CreatedAt is when the event occurred (for a ledger event, its record's timestamp).
	CreatedAt time.Time
}

// Lag is how far the relay is behind: the unpublished rows and the age of the oldest.
type Lag struct {
	Unpublished int64
	OldestAge   time.Duration
}

// PruneMax bounds the rows one Prune call deletes, so that pruning a large backlog of
// published rows never holds the writer's lock for long.
const PruneMax = 10000

// Store is the outbox's storage. Rows are written by the domain's own commits (the ledger's
// Store.Commit); the relay is the only caller of MarkPublished and Prune. Every adapter must
// pass store/storetest.TestOutbox.
type Store interface {
	// Unpublished returns up to limit unpublished rows with Seq > afterSeq, in Seq order.
	Unpublished(ctx context.Context, afterSeq int64, limit int) ([]Record, error)
	// MarkPublished marks every unpublished row with Seq <= upToSeq as published now.
	MarkPublished(ctx context.Context, upToSeq int64) error
	// Prune deletes up to PruneMax rows published before before, and returns how many.
	Prune(ctx context.Context, before time.Time) (int64, error)
	// Backlog counts the unpublished rows and returns the CreatedAt of the oldest (zero if
	// none).
	Backlog(ctx context.Context) (count int64, oldest time.Time, err error)
}

// Provider is implemented by storage handles (such as a ledger store) that also hold an
// outbox: it returns the outbox of the same database.
type Provider interface {
	Outbox() Store
}

// Subjects counts the unpublished rows of s by subject: which subjects a module has emitted,
// for tests that check each has a stream, and for operators looking at a stuck relay.
func Subjects(ctx context.Context, s Store) (map[string]int, error) {
	out := map[string]int{}
	var after int64
	for {
		recs, err := s.Unpublished(ctx, after, DefaultPageMax)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out[r.Subject]++
		}
		if len(recs) < DefaultPageMax {
			return out, nil
		}
		after = recs[len(recs)-1].Seq
	}
}
