package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/fincore/fincore/ledger"
)

const recordCols = `kind, id, version, owner, status, created_at, updated_at, data`

// insertRecordRows writes new versions of records (ledger.Batch.Records) in tx.
func insertRecordRows(ctx context.Context, tx *sql.Tx, recs []*ledger.Record) error {
	if len(recs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO module_records (`+recordCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, owner = excluded.owner,
		status = excluded.status, updated_at = excluded.updated_at, data = excluded.data`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, r := range recs {
		if _, err := st.ExecContext(ctx, r.Kind, r.ID, r.Version, r.Owner, r.Status, r.Created.UnixNano(), r.Updated.UnixNano(), nonNil(r.Data)); err != nil {
			return err
		}
	}
	return nil
}

func scanRecord(r scanner) (*ledger.Record, error) {
	var rec ledger.Record
	var created, updated int64
	if err := r.Scan(&rec.Kind, &rec.ID, &rec.Version, &rec.Owner, &rec.Status, &created, &updated, &rec.Data); err != nil {
		return nil, err
	}
	rec.Created, rec.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &rec, nil
}

func collectRecords(rows *sql.Rows, err error) ([]*ledger.Record, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ledger.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// LoadRecords implements ledger.Store. It reads through the writer's connection: the writer
// calls it between its own commits.
func (s *LedgerStore) LoadRecords(ctx context.Context, keys []ledger.RecordKey) ([]*ledger.Record, error) {
	var out []*ledger.Record
	for len(keys) > 0 {
		n := min(len(keys), 400)
		var q strings.Builder
		q.WriteString(`SELECT ` + recordCols + ` FROM module_records WHERE (kind, id) IN (VALUES `)
		args := make([]any, 0, 2*n)
		for i, k := range keys[:n] {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?)")
			args = append(args, k.Kind, k.ID)
		}
		q.WriteString(")")
		recs, err := collectRecords(s.db.read.QueryContext(ctx, q.String(), args...))
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
		keys = keys[n:]
	}
	return out, nil
}

// GetRecord implements ledger.Store.
func (s *LedgerStore) GetRecord(ctx context.Context, kind, id string) (*ledger.Record, error) {
	r, err := scanRecord(s.db.read.QueryRowContext(ctx, `SELECT `+recordCols+` FROM module_records WHERE kind = ? AND id = ?`, kind, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return r, err
}

// ListRecords implements ledger.Store.
func (s *LedgerStore) ListRecords(ctx context.Context, q ledger.RecordQuery) ([]*ledger.Record, bool, error) {
	where := []string{"kind = ?"}
	args := []any{q.Kind}
	if q.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, q.Owner)
	}
	if q.Status != "" {
		where, args = append(where, "status = ?"), append(args, q.Status)
	}
	if !q.CreatedFrom.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, q.CreatedFrom.UnixNano())
	}
	if !q.CreatedBefore.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, q.CreatedBefore.UnixNano())
	}
	if q.StartingAfter != "" {
		var at int64
		err := s.db.read.QueryRowContext(ctx, `SELECT created_at FROM module_records WHERE kind = ? AND id = ?`, q.Kind, q.StartingAfter).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, ledger.ErrNotFound
		}
		if err != nil {
			return nil, false, err
		}
		// A row value, which the index (kind, ..., created_at, id) serves as a range; the
		// equivalent OR made every page scan the pages before it.
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, at, q.StartingAfter)
	}
	limit := max(q.Limit, 1)
	args = append(args, limit+1)
	recs, err := collectRecords(s.db.read.QueryContext(ctx, `SELECT `+recordCols+` FROM module_records WHERE `+
		strings.Join(where, " AND ")+` ORDER BY created_at DESC, id DESC LIMIT ?`, args...))
	if err != nil {
		return nil, false, err
	}
	more := len(recs) > limit
	if more {
		recs = recs[:limit]
	}
	return recs, more, nil
}
