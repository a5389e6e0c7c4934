package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/fincore/fincore/platform/idem"
)

// IdemStore is platform/idem's storage on SQLite (table idempotency_keys, migration 0006).
//
// Claims, completions and releases are group-committed: those that arrive while a
// transaction is being written queue up and go into the next one, applied in arrival order.
// Each would otherwise be an fsync'd transaction of its own on the database's single write
// connection, which the ledger's commits use too.
type IdemStore struct {
	db *DB

	mu      sync.Mutex
	pending []*idemOp
	running bool // a goroutine is writing batches
}

// idemBatchMax bounds the operations written in one transaction.
const idemBatchMax = 1024

// idemOp is one queued operation and, once done is closed, its result.
type idemOp struct {
	apply func(ctx context.Context, tx *sql.Tx) error
	err   error
	done  chan struct{}
}

// submit queues apply and waits for the transaction that runs it to commit. The caller that
// finds no writer running becomes the writer for one batch, and hands on to a new goroutine
// if more work queued meanwhile, so that no caller waits for others' batches after its own.
func (s *IdemStore) submit(apply func(ctx context.Context, tx *sql.Tx) error) error {
	op := &idemOp{apply: apply, done: make(chan struct{})}
	s.mu.Lock()
	s.pending = append(s.pending, op)
	lead := !s.running
	s.running = true
	s.mu.Unlock()
	if lead {
		s.drain()
	}
	<-op.done
	return op.err
}

// drain writes one batch of the queue and, if more queued, continues on a new goroutine.
func (s *IdemStore) drain() {
	s.mu.Lock()
	n := min(len(s.pending), idemBatchMax)
	batch := s.pending[:n:n]
	s.pending = s.pending[n:]
	s.mu.Unlock()
	err := s.write(batch)
	for _, op := range batch {
		if op.err == nil {
			op.err = err
		}
		close(op.done)
	}
	s.mu.Lock()
	more := len(s.pending) > 0
	s.running = more
	s.mu.Unlock()
	if more {
		go s.drain()
	}
}

// write applies batch in one transaction. An operation whose statement fails gets its error;
// the others commit (SQLite undoes a failed statement alone).
func (s *IdemStore) write(batch []*idemOp) error {
	ctx := context.Background() // a caller that gives up must not abort the others' writes
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	for _, op := range batch {
		op.err = op.apply(ctx, tx)
	}
	if err := tx.Commit(); err != nil {
		for _, op := range batch {
			op.err = nil // reported as the batch's error
		}
		return err
	}
	return nil
}

var _ idem.Store = (*IdemStore)(nil)

// Idempotency returns the idempotency store of d.
func (d *DB) Idempotency() *IdemStore { return &IdemStore{db: d} }

// Idempotency returns the idempotency store of the database the ledger store lives in.
func (o ownedLedger) Idempotency() idem.Store { return o.db.Idempotency() }

// Claim inserts rec, or replaces a dead record of its key; see idem.Store.
func (s *IdemStore) Claim(ctx context.Context, rec idem.Record, now time.Time) (existing idem.Record, claimed bool, err error) {
	err = s.submit(func(ctx context.Context, tx *sql.Tx) error {
		var err error
		existing, claimed, err = claimIn(ctx, tx, rec, now)
		return err
	})
	if err != nil {
		return idem.Record{}, false, err
	}
	return existing, claimed, nil
}

func claimIn(ctx context.Context, tx *sql.Tx, rec idem.Record, now time.Time) (idem.Record, bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys
		(scope, idem_key, fingerprint, owner, status, header, body, created_at, locked_until, expires_at)
		VALUES (?, ?, ?, ?, 0, '{}', x'', ?, ?, ?)
		ON CONFLICT (scope, idem_key) DO UPDATE SET
			fingerprint = excluded.fingerprint, owner = excluded.owner, status = 0, header = '{}', body = x'',
			created_at = excluded.created_at, locked_until = excluded.locked_until, expires_at = excluded.expires_at
		WHERE idempotency_keys.expires_at <= ?
			OR (idempotency_keys.owner <> '' AND idempotency_keys.locked_until <= ?
				AND idempotency_keys.fingerprint = excluded.fingerprint)`,
		rec.Scope, rec.Key, rec.Fingerprint, rec.Owner,
		rec.CreatedAt.UnixNano(), rec.LockedUntil.UnixNano(), rec.ExpiresAt.UnixNano(), now.UnixNano(), now.UnixNano())
	if err != nil {
		return idem.Record{}, false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return idem.Record{}, false, err
	} else if n == 1 {
		return rec, true, nil
	}
	row := tx.QueryRowContext(ctx, `SELECT scope, idem_key, fingerprint, owner, status, header, body,
		created_at, locked_until, expires_at FROM idempotency_keys WHERE scope = ? AND idem_key = ?`, rec.Scope, rec.Key)
	var st idem.Stored
	err = row.Scan(&st.Scope, &st.Key, &st.Fingerprint, &st.Owner, &st.Status, &st.Header, &st.Body,
		&st.CreatedAt, &st.LockedUntil, &st.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return idem.Record{}, false, nil
	}
	if err != nil {
		return idem.Record{}, false, err
	}
	r, err := st.Record()
	return r, false, err
}

// Complete stores resp for the key owner holds.
func (s *IdemStore) Complete(ctx context.Context, scope, key, owner string, resp idem.Response) (done bool, err error) {
	err = s.submit(func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET owner = '', status = ?, header = ?, body = ?
			WHERE scope = ? AND idem_key = ? AND owner = ?`,
			resp.Status, idem.EncodeHeader(resp.Header), nonNil(resp.Body), scope, key, owner)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		done = n == 1
		return err
	})
	return done && err == nil, err
}

// Release deletes the record owner holds.
func (s *IdemStore) Release(ctx context.Context, scope, key, owner string) error {
	return s.submit(func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND owner = ?`,
			scope, key, owner)
		return err
	})
}

// Purge deletes up to limit expired records.
func (s *IdemStore) Purge(ctx context.Context, now time.Time, limit int) (int, error) {
	res, err := s.db.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE rowid IN
		(SELECT rowid FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`, now.UnixNano(), limit)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
