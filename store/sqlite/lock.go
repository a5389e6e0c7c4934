package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/fincore/fincore/platform/lock"
)

// LockStore is platform/lock's backend on SQLite (table locks, migration 0005).
//
// Embedded mode is one process: the data directory's lock keeps every other process out, so
// these locks arbitrate between the goroutines and components of that process, and across
// its restarts (tokens persist). Expiry is judged by the process's clock. When a process
// opens the database, every lease in it belongs to a process that has died, and Open
// releases them, so a restarted process never waits out its predecessor's TTL.
type LockStore struct {
	db *DB
}

var _ lock.Backend = (*LockStore)(nil)

// Locks returns the lock backend of d.
func (d *DB) Locks() *LockStore { return &LockStore{db: d} }

// Locks returns the lock backend of the ledger store's database (lock.Provider).
func (o ownedLedger) Locks() lock.Backend { return o.db.Locks() }

// releaseDeadLeases frees the leases of earlier processes; Open calls it once it holds the
// data directory's lock.
func (d *DB) releaseDeadLeases(ctx context.Context) error {
	_, err := d.write.ExecContext(ctx, `UPDATE locks SET holder = '', expires_at = 0 WHERE holder <> ''`)
	return err
}

// TryAcquire implements lock.Backend.
func (s *LockStore) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (lock.Grant, error) {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return lock.Grant{}, err
	}
	defer tx.Rollback()
	now := time.Now().UnixNano()
	var cur string
	var token, expires int64
	err = tx.QueryRowContext(ctx, `SELECT holder, token, expires_at FROM locks WHERE name = ?`, name).Scan(&cur, &token, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO locks (name, holder, token, expires_at, acquired_at) VALUES (?, ?, 1, ?, ?)`,
			name, holder, now+ttl.Nanoseconds(), now)
		token = 0
	case err != nil:
		return lock.Grant{}, err
	case cur != "" && cur != holder && now < expires:
		return lock.Grant{}, lock.ErrHeld
	default:
		_, err = tx.ExecContext(ctx, `UPDATE locks SET holder = ?, token = ?, expires_at = ?, acquired_at = ? WHERE name = ?`,
			holder, token+1, now+ttl.Nanoseconds(), now, name)
	}
	if err != nil {
		return lock.Grant{}, err
	}
	if err := tx.Commit(); err != nil {
		return lock.Grant{}, err
	}
	return lock.Grant{Token: uint64(token + 1), Previous: cur}, nil
}

// Renew implements lock.Backend.
func (s *LockStore) Renew(ctx context.Context, name, holder string, token uint64, ttl time.Duration) error {
	if token > math.MaxInt64 {
		return lock.ErrNotHeld // never granted
	}
	return s.update(ctx, `UPDATE locks SET expires_at = ? WHERE name = ? AND holder = ? AND token = ?`,
		time.Now().UnixNano()+ttl.Nanoseconds(), name, holder, int64(token))
}

// Release implements lock.Backend.
func (s *LockStore) Release(ctx context.Context, name, holder string, token uint64) error {
	if token > math.MaxInt64 {
		return lock.ErrNotHeld
	}
	return s.update(ctx, `UPDATE locks SET holder = '', expires_at = 0 WHERE name = ? AND holder = ? AND token = ?`,
		name, holder, int64(token))
}

// update runs a statement that changes the lease it names, or nothing if that lease is not
// current.
func (s *LockStore) update(ctx context.Context, q string, args ...any) error {
	res, err := s.db.write.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return lock.ErrNotHeld
	}
	return nil
}
