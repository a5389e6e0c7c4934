package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/fincore/fincore/platform/idem"
)

// IdemStore is platform/idem's storage on SQLite (table idempotency_keys, migration 0006).
type IdemStore struct {
	db *DB
}

var _ idem.Store = (*IdemStore)(nil)

// Idempotency returns the idempotency store of d.
func (d *DB) Idempotency() *IdemStore { return &IdemStore{db: d} }

// Idempotency returns the idempotency store of the database the ledger store lives in.
func (o ownedLedger) Idempotency() idem.Store { return o.db.Idempotency() }

// Claim inserts rec, or replaces a dead record of its key; see idem.Store.
func (s *IdemStore) Claim(ctx context.Context, rec idem.Record, now time.Time) (idem.Record, bool, error) {
	res, err := s.db.write.ExecContext(ctx, `INSERT INTO idempotency_keys
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
	row := s.db.read.QueryRowContext(ctx, `SELECT scope, idem_key, fingerprint, owner, status, header, body,
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
func (s *IdemStore) Complete(ctx context.Context, scope, key, owner string, resp idem.Response) (bool, error) {
	res, err := s.db.write.ExecContext(ctx, `UPDATE idempotency_keys SET owner = '', status = ?, header = ?, body = ?
		WHERE scope = ? AND idem_key = ? AND owner = ?`,
		resp.Status, idem.EncodeHeader(resp.Header), nonNil(resp.Body), scope, key, owner)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Release deletes the record owner holds.
func (s *IdemStore) Release(ctx context.Context, scope, key, owner string) error {
	_, err := s.db.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE scope = ? AND idem_key = ? AND owner = ?`,
		scope, key, owner)
	return err
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
