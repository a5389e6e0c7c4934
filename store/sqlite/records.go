package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fincore/fincore/ledger"
)

const recordCols = `kind, id, version, owner, status, created_at, updated_at, data`

// recordStmts are the prepared statements of module_records.
type recordStmts struct {
	// upsert holds multi-row inserts that replace existing versions, by the fields the
	// versions keep from the stored ones (ledger.Batch.Keep) and rows per statement
	// (insertChunks), on the writer's connection. A kept owner or status is not set, so
	// SQLite leaves the index entries of the row that hold it alone instead of deleting and
	// reinserting them.
	upsert [4]map[int]*sql.Stmt
	// get and load read through the read pool.
	get, load *sql.Stmt
}

func (d *DB) prepareRecordStmts() (*recordStmts, error) {
	rs := &recordStmts{}
	var err error
	for keep := range rs.upsert {
		rs.upsert[keep] = map[int]*sql.Stmt{}
		set := `version = excluded.version, updated_at = excluded.updated_at, data = excluded.data`
		if ledger.RecordKeep(keep)&ledger.KeepOwner == 0 {
			set += `, owner = excluded.owner`
		}
		if ledger.RecordKeep(keep)&ledger.KeepStatus == 0 {
			set += `, status = excluded.status`
		}
		for _, n := range insertChunks {
			q := `INSERT INTO module_records (` + recordCols + `) VALUES ` + strings.Repeat("(?,?,?,?,?,?,?,?),", n-1) +
				`(?,?,?,?,?,?,?,?) ON CONFLICT (kind, id) DO UPDATE SET ` + set
			if rs.upsert[keep][n], err = d.write.Prepare(q); err != nil {
				return nil, fmt.Errorf("prepare record upsert: %w", err)
			}
		}
	}
	if rs.get, err = d.read.Prepare(`SELECT ` + recordCols + ` FROM module_records WHERE kind = ? AND id = ?`); err != nil {
		return nil, fmt.Errorf("prepare record read: %w", err)
	}
	// One kind and a JSON array of ids: a fixed statement (prepared once) whatever the count.
	if rs.load, err = d.read.Prepare(`SELECT ` + recordCols + ` FROM module_records
		WHERE kind = ? AND id IN (SELECT value FROM json_each(?))`); err != nil {
		return nil, fmt.Errorf("prepare record load: %w", err)
	}
	return rs, nil
}

// insertRecordRows writes new versions of records (ledger.Batch.Records) in tx, in multi-row
// statements. A batch holds at most one version of a record.
func (s *LedgerStore) insertRecordRows(ctx context.Context, tx *sql.Tx, b *ledger.Batch) error {
	var byKeep [len(s.records.upsert)][]*ledger.Record
	for i, r := range b.Records {
		k := b.KeepAt(i) & (ledger.KeepOwner | ledger.KeepStatus)
		byKeep[k] = append(byKeep[k], r)
	}
	args := make([]any, 0, min(len(b.Records), insertChunks[0])*8)
	for keep, recs := range byKeep {
		for len(recs) > 0 {
			n := chunkRows(len(recs))
			args = args[:0]
			for _, r := range recs[:n] {
				args = append(args, r.Kind, r.ID, r.Version, r.Owner, r.Status, r.Created.UnixNano(), r.Updated.UnixNano(), nonNil(r.Data))
			}
			if _, err := tx.Stmt(s.records.upsert[keep][n]).ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("write records: %w", err)
			}
			recs = recs[n:]
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

// LoadRecords implements ledger.Store: one query per kind among keys (a group's keys are
// mostly of one or two kinds).
func (s *LedgerStore) LoadRecords(ctx context.Context, keys []ledger.RecordKey) ([]*ledger.Record, error) {
	byKind := map[string][]string{}
	var kinds []string
	for _, k := range keys {
		if _, ok := byKind[k.Kind]; !ok {
			kinds = append(kinds, k.Kind)
		}
		byKind[k.Kind] = append(byKind[k.Kind], k.ID)
	}
	var out []*ledger.Record
	for _, kind := range kinds {
		recs, err := collectRecords(s.records.load.QueryContext(ctx, kind, idsJSON(byKind[kind])))
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// GetRecord implements ledger.Store.
func (s *LedgerStore) GetRecord(ctx context.Context, kind, id string) (*ledger.Record, error) {
	r, err := scanRecord(s.records.get.QueryRowContext(ctx, kind, id))
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
