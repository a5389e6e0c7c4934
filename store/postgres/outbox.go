package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fincore/fincore/platform/outbox"
)

// OutboxStore is the outbox's storage on PostgreSQL. Rows are written by LedgerStore.Commit.
type OutboxStore struct {
	pool *pgxpool.Pool
}

var _ outbox.Store = (*OutboxStore)(nil)

// Outbox returns the outbox store of d.
func (d *DB) Outbox() *OutboxStore { return &OutboxStore{pool: d.pool} }

// Outbox returns the outbox store of the database the ledger store lives in.
func (o ownedLedger) Outbox() outbox.Store { return o.db.Outbox() }

// Unpublished returns up to limit unpublished rows after afterSeq, in seq order.
func (s *OutboxStore) Unpublished(ctx context.Context, afterSeq int64, limit int) ([]outbox.Record, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, subject, msg_id, payload, created_at FROM outbox
		WHERE published_at IS NULL AND seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	out := make([]outbox.Record, 0, min(limit, 64))
	for rows.Next() {
		var r outbox.Record
		var created int64
		if err := rows.Scan(&r.Seq, &r.Subject, &r.MsgID, &r.Payload, &created); err != nil {
			return nil, err
		}
		r.CreatedAt = time.Unix(0, created).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// MarkPublished marks unpublished rows up to upToSeq as published now.
func (s *OutboxStore) MarkPublished(ctx context.Context, upToSeq int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE outbox SET published_at = $1 WHERE published_at IS NULL AND seq <= $2`,
		time.Now().UnixNano(), upToSeq)
	return err
}

// Prune deletes up to outbox.PruneMax rows published before before.
func (s *OutboxStore) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
		WHERE published_at IS NOT NULL AND published_at < $1 LIMIT $2)`, before.UnixNano(), outbox.PruneMax)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// Backlog counts unpublished rows and returns the oldest one's creation time.
func (s *OutboxStore) Backlog(ctx context.Context) (int64, time.Time, error) {
	var n, oldest int64
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*), COALESCE((SELECT created_at FROM outbox
		WHERE published_at IS NULL ORDER BY seq LIMIT 1), 0) FROM outbox WHERE published_at IS NULL`).Scan(&n, &oldest)
	if err != nil || n == 0 {
		return n, time.Time{}, err
	}
	return n, time.Unix(0, oldest).UTC(), nil
}
