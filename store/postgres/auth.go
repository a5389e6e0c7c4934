package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fincore/fincore/platform/auth"
)

// AuthStore is platform/auth's storage on PostgreSQL (tables api_keys and audit_log,
// migration 0004).
type AuthStore struct {
	pool *pgxpool.Pool
}

var _ auth.Store = (*AuthStore)(nil)

// Auth returns the auth store of d.
func (d *DB) Auth() *AuthStore { return &AuthStore{pool: d.pool} }

// Auth returns the auth store of the database the ledger store lives in.
func (o ownedLedger) Auth() auth.Store { return o.db.Auth() }

const keyCols = `id, hash, name, scopes, tenant_id, created_at, created_by, revoked_at`

// CreateKey stores k and appends e, in one transaction.
func (s *AuthStore) CreateKey(ctx context.Context, k auth.Key, e auth.AuditEntry) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := insertKey(ctx, tx, k); err != nil {
			return err
		}
		_, err := appendAudit(ctx, tx, e)
		return err
	})
}

// CreateFirstKey creates k only if the table holds no key. It runs serializable, so of two
// transactions that both find the table empty one fails with a serialization error; it is
// retried and then finds the other's key.
func (s *AuthStore) CreateFirstKey(ctx context.Context, k auth.Key, e auth.AuditEntry) (bool, error) {
	var created bool
	var err error
	// Serializable transactions racing for the first key fail with 40001 but one; the
	// others retry after a short random pause (up to 20 times: many first starts at once
	// on a loaded machine can take several rounds).
	for attempt := range 20 {
		if attempt > 0 {
			time.Sleep(time.Duration(1+rand.IntN(20*attempt)) * time.Millisecond)
		}
		created = false
		err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys)`).Scan(&exists); err != nil || exists {
				return err
			}
			if err := insertKey(ctx, tx, k); err != nil {
				return err
			}
			if _, err := appendAudit(ctx, tx, e); err != nil {
				return err
			}
			created = true
			return nil
		})
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
			break
		}
	}
	if err != nil {
		return false, err
	}
	return created, nil
}

func insertKey(ctx context.Context, tx pgx.Tx, k auth.Key) error {
	tag, err := tx.Exec(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
		ON CONFLICT (id) DO NOTHING`,
		k.ID, k.Hash, k.Name, strings.Join(k.Scopes, " "), k.TenantID, k.CreatedAt.UnixNano(), k.CreatedBy)
	if err != nil {
		return fmt.Errorf("insert key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrKeyExists
	}
	return nil
}

// GetKey returns the key id.
func (s *AuthStore) GetKey(ctx context.Context, id string) (auth.Key, bool, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.Key{}, false, nil
	}
	return k, err == nil, err
}

// ListKeys returns keys newest first, after startingAfter.
func (s *AuthStore) ListKeys(ctx context.Context, startingAfter string, limit int) ([]auth.Key, bool, error) {
	q := `SELECT ` + keyCols + ` FROM api_keys ORDER BY created_at DESC, id DESC LIMIT $1`
	args := []any{limit + 1}
	if startingAfter != "" {
		var at int64
		err := s.pool.QueryRow(ctx, `SELECT created_at FROM api_keys WHERE id = $1`, startingAfter).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, auth.ErrCursorNotFound
		}
		if err != nil {
			return nil, false, err
		}
		q = `SELECT ` + keyCols + ` FROM api_keys WHERE (created_at, id) < ($1, $2)
			ORDER BY created_at DESC, id DESC LIMIT $3`
		args = []any{at, startingAfter, limit + 1}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []auth.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// CountActiveKeys counts keys not revoked.
func (s *AuthStore) CountActiveKeys(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL`).Scan(&n)
	return n, err
}

// RevokeKey revokes the active key id and appends e, in one transaction.
func (s *AuthStore) RevokeKey(ctx context.Context, id string, at time.Time, e auth.AuditEntry) (bool, error) {
	var revoked bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, at.UnixNano(), id)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := appendAudit(ctx, tx, e); err != nil {
			return err
		}
		revoked = true
		return nil
	})
	return revoked && err == nil, err
}

// AppendAudit appends e.
func (s *AuthStore) AppendAudit(ctx context.Context, e auth.AuditEntry) (int64, error) {
	return appendAudit(ctx, s.pool, e)
}

type queryRower interface {
	QueryRow(ctx context.Context, q string, args ...any) pgx.Row
}

func appendAudit(ctx context.Context, x queryRower, e auth.AuditEntry) (int64, error) {
	var seq int64
	err := x.QueryRow(ctx, `INSERT INTO audit_log (at, actor, action, target, before_json, after_json, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
		e.Time.UnixNano(), e.Actor, e.Action, e.Target, nullJSON(e.Before), nullJSON(e.After), e.RequestID).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("append audit entry: %w", err)
	}
	return seq, nil
}

func nullJSON(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

// ListAudit returns the entries q selects, newest first.
func (s *AuthStore) ListAudit(ctx context.Context, q auth.AuditQuery) ([]auth.AuditEntry, bool, error) {
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	if q.BeforeSeq > 0 {
		arg("seq <", q.BeforeSeq)
	}
	if q.Actor != "" {
		arg("actor =", q.Actor)
	}
	if q.Action != "" {
		arg("action =", q.Action)
	}
	sqlq := `SELECT seq, at, actor, action, target, before_json, after_json, request_id FROM audit_log`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit+1)
	sqlq += " ORDER BY seq DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, sqlq, args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []auth.AuditEntry
	for rows.Next() {
		var e auth.AuditEntry
		var at int64
		var before, after *string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &before, &after, &e.RequestID); err != nil {
			return nil, false, err
		}
		e.Time = time.Unix(0, at).UTC()
		if before != nil {
			e.Before = []byte(*before)
		}
		if after != nil {
			e.After = []byte(*after)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	if len(out) > q.Limit {
		return out[:q.Limit], true, nil
	}
	return out, false, nil
}

func scanKey(r pgx.Row) (auth.Key, error) {
	var k auth.Key
	var scopes string
	var created int64
	var revoked *int64
	if err := r.Scan(&k.ID, &k.Hash, &k.Name, &scopes, &k.TenantID, &created, &k.CreatedBy, &revoked); err != nil {
		return k, err
	}
	k.Scopes = strings.Fields(scopes)
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked != nil {
		k.RevokedAt = time.Unix(0, *revoked).UTC()
	}
	return k, nil
}
