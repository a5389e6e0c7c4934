package postgres

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fincore/fincore/platform/lock"
)

// LockStore is platform/lock's backend on PostgreSQL (table locks, migration 0005). Expiry is
// judged by the server's clock, which every contender shares.
type LockStore struct {
	db *DB
}

var _ lock.Backend = (*LockStore)(nil)

// Locks returns the lock backend of d.
func (d *DB) Locks() *LockStore { return &LockStore{db: d} }

// Locks returns the lock backend of the ledger store's database (lock.Provider).
func (o ownedLedger) Locks() lock.Backend { return o.db.Locks() }

// nowNs is the server's clock in Unix nanoseconds (at microsecond precision).
const nowNs = `(extract(epoch FROM clock_timestamp()) * 1000000000)::bigint`

const (
	sqlLockEnsure = `INSERT INTO locks (name, holder, token, expires_at, acquired_at) VALUES ($1, '', 0, 0, 0)
	ON CONFLICT (name) DO NOTHING`
	// The row lock of FOR UPDATE serialises contenders; one that waited re-checks the
	// condition against the winner's row and finds the lock held.
	sqlLockAcquire = `WITH cur AS (
		SELECT name, holder, token FROM locks
		WHERE name = $1 AND (holder = '' OR holder = $2 OR expires_at <= ` + nowNs + `)
		FOR UPDATE)
	UPDATE locks AS l SET holder = $2, token = cur.token + 1,
		expires_at = ` + nowNs + ` + $3, acquired_at = ` + nowNs + `
	FROM cur WHERE l.name = cur.name
	RETURNING l.token, cur.holder`
	sqlLockRenew   = `UPDATE locks SET expires_at = ` + nowNs + ` + $4 WHERE name = $1 AND holder = $2 AND token = $3`
	sqlLockRelease = `UPDATE locks SET holder = '', expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3`
)

// TryAcquire implements lock.Backend: one round trip.
func (s *LockStore) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (lock.Grant, error) {
	var batch pgx.Batch
	batch.Queue(sqlLockEnsure, name)
	batch.Queue(sqlLockAcquire, name, holder, ttl.Nanoseconds())
	br := s.db.pool.SendBatch(ctx, &batch)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return lock.Grant{}, err
	}
	var token int64
	var g lock.Grant
	err := br.QueryRow().Scan(&token, &g.Previous)
	if errors.Is(err, pgx.ErrNoRows) {
		return lock.Grant{}, lock.ErrHeld
	}
	if err != nil {
		return lock.Grant{}, err
	}
	g.Token = uint64(token)
	return g, br.Close()
}

// Renew implements lock.Backend.
func (s *LockStore) Renew(ctx context.Context, name, holder string, token uint64, ttl time.Duration) error {
	return s.update(ctx, sqlLockRenew, name, holder, token, ttl.Nanoseconds())
}

// Release implements lock.Backend.
func (s *LockStore) Release(ctx context.Context, name, holder string, token uint64) error {
	return s.update(ctx, sqlLockRelease, name, holder, token)
}

func (s *LockStore) update(ctx context.Context, sql, name, holder string, token uint64, more ...any) error {
	if token > math.MaxInt64 {
		return lock.ErrNotHeld // never granted: tokens are BIGINT
	}
	tag, err := s.db.pool.Exec(ctx, sql, append([]any{name, holder, int64(token)}, more...)...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return lock.ErrNotHeld
	}
	return nil
}
