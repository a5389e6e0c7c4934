package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fincore/fincore/platform/auth"
)

// AuthStore is platform/auth's storage on SQLite (tables api_keys and audit_log, migration
// 0004).
type AuthStore struct {
	db *DB
}

var _ auth.Store = (*AuthStore)(nil)

// Auth returns the auth store of d.
func (d *DB) Auth() *AuthStore { return &AuthStore{db: d} }

// Auth returns the auth store of the database the ledger store lives in.
func (o ownedLedger) Auth() auth.Store { return o.db.Auth() }

const keyCols = `id, hash, name, scopes, tenant_id, created_at, created_by, revoked_at`

// CreateKey stores k and appends e, in one transaction.
func (s *AuthStore) CreateKey(ctx context.Context, k auth.Key, e auth.AuditEntry) error {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := insertKey(ctx, tx, k); err != nil {
		return err
	}
	if _, err := appendAudit(ctx, tx, e); err != nil {
		return err
	}
	return tx.Commit()
}

// CreateFirstKey creates k only if the table holds no key. The single write connection
// takes SQLite's write lock at BEGIN, so the count and the insert see the same table.
func (s *AuthStore) CreateFirstKey(ctx context.Context, k auth.Key, e auth.AuditEntry) (bool, error) {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM api_keys LIMIT 1`).Scan(&one)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if err := insertKey(ctx, tx, k); err != nil {
		return false, err
	}
	if _, err := appendAudit(ctx, tx, e); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

func insertKey(ctx context.Context, tx *sql.Tx, k auth.Key) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO api_keys (`+keyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT (id) DO NOTHING`,
		k.ID, k.Hash, k.Name, strings.Join(k.Scopes, " "), k.TenantID, k.CreatedAt.UnixNano(), k.CreatedBy)
	if err != nil {
		return fmt.Errorf("insert key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return auth.ErrKeyExists
	}
	return nil
}

// GetKey returns the key id.
func (s *AuthStore) GetKey(ctx context.Context, id string) (auth.Key, bool, error) {
	k, err := scanKey(s.db.read.QueryRowContext(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Key{}, false, nil
	}
	return k, err == nil, err
}

// ListKeys returns keys newest first, after startingAfter.
func (s *AuthStore) ListKeys(ctx context.Context, startingAfter string, limit int) ([]auth.Key, bool, error) {
	q := `SELECT ` + keyCols + ` FROM api_keys ORDER BY created_at DESC, id DESC LIMIT ?`
	args := []any{limit + 1}
	if startingAfter != "" {
		var at int64
		err := s.db.read.QueryRowContext(ctx, `SELECT created_at FROM api_keys WHERE id = ?`, startingAfter).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, auth.ErrCursorNotFound
		}
		if err != nil {
			return nil, false, err
		}
		q = `SELECT ` + keyCols + ` FROM api_keys WHERE (created_at, id) < (?, ?)
			ORDER BY created_at DESC, id DESC LIMIT ?`
		args = []any{at, startingAfter, limit + 1}
	}
	rows, err := s.db.read.QueryContext(ctx, q, args...)
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
	err := s.db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL`).Scan(&n)
	return n, err
}

// RevokeKey revokes the active key id and appends e, in one transaction.
func (s *AuthStore) RevokeKey(ctx context.Context, id string, at time.Time, e auth.AuditEntry) (bool, error) {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, at.UnixNano(), id)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if _, err := appendAudit(ctx, tx, e); err != nil {
		return false, err
	}
	return true, tx.Commit()
}

// AppendAudit appends e.
func (s *AuthStore) AppendAudit(ctx context.Context, e auth.AuditEntry) (int64, error) {
	return appendAudit(ctx, s.db.write, e)
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func appendAudit(ctx context.Context, x execer, e auth.AuditEntry) (int64, error) {
	res, err := x.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, target, before_json, after_json, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, e.Time.UnixNano(), e.Actor, e.Action, e.Target, nullJSON(e.Before), nullJSON(e.After), e.RequestID)
	if err != nil {
		return 0, fmt.Errorf("append audit entry: %w", err)
	}
	return res.LastInsertId()
}

func nullJSON(b []byte) sql.NullString {
	return sql.NullString{String: string(b), Valid: b != nil}
}

// ListAudit returns the entries q selects, newest first.
func (s *AuthStore) ListAudit(ctx context.Context, q auth.AuditQuery) ([]auth.AuditEntry, bool, error) {
	var where []string
	var args []any
	if q.BeforeSeq > 0 {
		where, args = append(where, "seq < ?"), append(args, q.BeforeSeq)
	}
	if q.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, q.Actor)
	}
	if q.Action != "" {
		where, args = append(where, "action = ?"), append(args, q.Action)
	}
	sqlq := `SELECT seq, at, actor, action, target, before_json, after_json, request_id FROM audit_log`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY seq DESC LIMIT ?"
	rows, err := s.db.read.QueryContext(ctx, sqlq, append(args, q.Limit+1)...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []auth.AuditEntry
	for rows.Next() {
		var e auth.AuditEntry
		var at int64
		var before, after sql.NullString
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Target, &before, &after, &e.RequestID); err != nil {
			return nil, false, err
		}
		e.Time = time.Unix(0, at).UTC()
		if before.Valid {
			e.Before = []byte(before.String)
		}
		if after.Valid {
			e.After = []byte(after.String)
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

func scanKey(r scanner) (auth.Key, error) {
	var k auth.Key
	var scopes string
	var created int64
	var revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.Hash, &k.Name, &scopes, &k.TenantID, &created, &k.CreatedBy, &revoked); err != nil {
		return k, err
	}
	k.Scopes = strings.Fields(scopes)
	k.CreatedAt = time.Unix(0, created).UTC()
	if revoked.Valid {
		k.RevokedAt = time.Unix(0, revoked.Int64).UTC()
	}
	return k, nil
}
