package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fincore/fincore/platform/idem"
)

// IdemStore is platform/idem's storage on PostgreSQL (table idempotency_keys, migration 0006).
type IdemStore struct {
	db *DB
}

var _ idem.Store = (*IdemStore)(nil)

// Idempotency returns the idempotency store of d.
func (d *DB) Idempotency() *IdemStore { return &IdemStore{db: d} }

// Idempotency returns the idempotency store of the database the ledger store lives in.
func (o ownedLedger) Idempotency() idem.Store { return o.db.Idempotency() }

// Claim inserts rec, or replaces a dead record of its key; see idem.Store. The upsert locks
// the key's row, so concurrent claims are serialised.
func (s *IdemStore) Claim(ctx context.Context, rec idem.Record, now time.Time) (idem.Record, bool, error) {
	tag, err := s.db.pool.Exec(ctx, `INSERT INTO idempotency_keys AS k
		(scope, idem_key, fingerprint, owner, status, header, body, created_at, locked_until, expires_at)
		VALUES ($1, $2, $3, $4, 0, '{}', '', $5, $6, $7)
		ON CONFLICT (scope, idem_key) DO UPDATE SET
			fingerprint = excluded.fingerprint, owner = excluded.owner, status = 0, header = '{}', body = '',
			created_at = excluded.created_at, locked_until = excluded.locked_until, expires_at = excluded.expires_at
		WHERE k.expires_at <= $8
			OR (k.owner <> '' AND k.locked_until <= $8 AND k.fingerprint = excluded.fingerprint)`,
		rec.Scope, rec.Key, rec.Fingerprint, rec.Owner,
		rec.CreatedAt.UnixNano(), rec.LockedUntil.UnixNano(), rec.ExpiresAt.UnixNano(), now.UnixNano())
	if err != nil {
		return idem.Record{}, false, err
	}
	if tag.RowsAffected() == 1 {
		return rec, true, nil
	}
	var st idem.Stored
	err = s.db.pool.QueryRow(ctx, `SELECT scope, idem_key, fingerprint, owner, status, header, body,
		created_at, locked_until, expires_at FROM idempotency_keys WHERE scope = $1 AND idem_key = $2`, rec.Scope, rec.Key).
		Scan(&st.Scope, &st.Key, &st.Fingerprint, &st.Owner, &st.Status, &st.Header, &st.Body,
			&st.CreatedAt, &st.LockedUntil, &st.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
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
	body := resp.Body
	if body == nil {
		body = []byte{}
	}
	tag, err := s.db.pool.Exec(ctx, `UPDATE idempotency_keys SET owner = '', status = $1, header = $2, body = $3
		WHERE scope = $4 AND idem_key = $5 AND owner = $6`,
		resp.Status, idem.EncodeHeader(resp.Header), body, scope, key, owner)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// Release deletes the record owner holds.
func (s *IdemStore) Release(ctx context.Context, scope, key, owner string) error {
	_, err := s.db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND owner = $3`,
		scope, key, owner)
	return err
}

// Purge deletes up to limit expired records.
func (s *IdemStore) Purge(ctx context.Context, now time.Time, limit int) (int, error) {
	tag, err := s.db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE (scope, idem_key) IN
		(SELECT scope, idem_key FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)`, now.UnixNano(), limit)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
