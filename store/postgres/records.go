package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fincore/fincore/ledger"
)

const recordCols = `kind, id, version, owner, status, created_at, updated_at, data`

// sqlUpsertRecords writes new versions of records (ledger.Batch.Records; one per key).
const sqlUpsertRecords = `INSERT INTO module_records (` + recordCols + `)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bytea[])
	ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, owner = excluded.owner,
	status = excluded.status, updated_at = excluded.updated_at, data = excluded.data`

// recordArrays is sqlUpsertRecords' arguments.
func recordArrays(rs []*ledger.Record) []any {
	n := len(rs)
	kinds, ids, owners, statuses := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	versions, created, updated := make([]int64, n), make([]int64, n), make([]int64, n)
	data := make([][]byte, n)
	for i, r := range rs {
		kinds[i], ids[i], owners[i], statuses[i] = r.Kind, r.ID, r.Owner, r.Status
		versions[i], created[i], updated[i] = r.Version, r.Created.UnixNano(), r.Updated.UnixNano()
		data[i] = nonNil(r.Data)
	}
	return []any{kinds, ids, versions, owners, statuses, created, updated, data}
}

func scanRecord(row pgx.Row) (*ledger.Record, error) {
	var r ledger.Record
	var created, updated int64
	if err := row.Scan(&r.Kind, &r.ID, &r.Version, &r.Owner, &r.Status, &created, &updated, &r.Data); err != nil {
		return nil, err
	}
	r.Created, r.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &r, nil
}

func (s *LedgerStore) queryRecords(ctx context.Context, q string, args ...any) ([]*ledger.Record, error) {
	rows, err := s.pool.Query(ctx, q, args...)
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

// LoadRecords implements ledger.Store.
func (s *LedgerStore) LoadRecords(ctx context.Context, keys []ledger.RecordKey) ([]*ledger.Record, error) {
	kinds, ids := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		kinds[i], ids[i] = k.Kind, k.ID
	}
	return s.queryRecords(ctx, `SELECT `+recordCols+` FROM module_records
		WHERE (kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, kinds, ids)
}

// GetRecord implements ledger.Store.
func (s *LedgerStore) GetRecord(ctx context.Context, kind, id string) (*ledger.Record, error) {
	r, err := scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordCols+` FROM module_records WHERE kind = $1 AND id = $2`, kind, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return r, err
}

// ListRecords implements ledger.Store.
func (s *LedgerStore) ListRecords(ctx context.Context, q ledger.RecordQuery) ([]*ledger.Record, bool, error) {
	args := []any{q.Kind}
	where := []string{"kind = $1"}
	add := func(cond string, v ...any) {
		for _, x := range v {
			args = append(args, x)
			cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(args)), 1)
		}
		where = append(where, cond)
	}
	if q.Owner != "" {
		add("owner = ?", q.Owner)
	}
	if q.Status != "" {
		add("status = ?", q.Status)
	}
	if !q.CreatedFrom.IsZero() {
		add("created_at >= ?", q.CreatedFrom.UnixNano())
	}
	if !q.CreatedBefore.IsZero() {
		add("created_at < ?", q.CreatedBefore.UnixNano())
	}
	if q.StartingAfter != "" {
		var at int64
		err := s.pool.QueryRow(ctx, `SELECT created_at FROM module_records WHERE kind = $1 AND id = $2`, q.Kind, q.StartingAfter).Scan(&at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, ledger.ErrNotFound
		}
		if err != nil {
			return nil, false, err
		}
		add("(created_at, id) < (?, ?)", at, q.StartingAfter) // a row value: an index range
	}
	limit := max(q.Limit, 1)
	args = append(args, limit+1)
	recs, err := s.queryRecords(ctx, `SELECT `+recordCols+` FROM module_records WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, false, err
	}
	more := len(recs) > limit
	if more {
		recs = recs[:limit]
	}
	return recs, more, nil
}
