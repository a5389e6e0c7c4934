package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fincore/fincore/ledger"
)

// LedgerStore is the ledger's storage on PostgreSQL. The engine is its only writer; reads go
// through the pool from anywhere.
type LedgerStore struct {
	pool *pgxpool.Pool
}

var _ ledger.Store = (*LedgerStore)(nil)

// ledgerSchemaVersion is the migration that creates the ledger's tables.
const ledgerSchemaVersion = 1

var transferColumns = []string{"timestamp", "id", "debit_account_id", "credit_account_id", "amount", "currency",
	"code", "pending", "pending_id", "timeout_seconds", "expires_at", "status", "metadata", "pending_delta",
	"posted_delta", "dr_debits_pending", "dr_debits_posted", "dr_credits_pending", "dr_credits_posted",
	"cr_debits_pending", "cr_debits_posted", "cr_credits_pending", "cr_credits_posted", "req_hash", "hash"}

var accountColumns = []string{"id", "currency", "code", "flags", "metadata", "timestamp", "req_hash"}

const transferCols = `timestamp, id, debit_account_id, credit_account_id, amount, currency, code, pending,
	pending_id, timeout_seconds, expires_at, status, metadata, pending_delta, posted_delta,
	dr_debits_pending, dr_debits_posted, dr_credits_pending, dr_credits_posted,
	cr_debits_pending, cr_debits_posted, cr_credits_pending, cr_credits_posted, req_hash, hash`

// accountSelect reads accounts with their balances: the snapshots of the account's latest
// record on each side, the later of the two being current. Each side is one backward scan of
// its index, stopped at the first row.
const accountSelect = `SELECT a.id, a.currency, a.code, a.flags, a.metadata, a.timestamp, a.req_hash,
	d.timestamp, d.dr_debits_pending, d.dr_debits_posted, d.dr_credits_pending, d.dr_credits_posted,
	c.timestamp, c.cr_debits_pending, c.cr_debits_posted, c.cr_credits_pending, c.cr_credits_posted
FROM accounts AS a
LEFT JOIN LATERAL (SELECT timestamp, dr_debits_pending, dr_debits_posted, dr_credits_pending, dr_credits_posted
	FROM transfers WHERE debit_account_id = a.id ORDER BY timestamp DESC LIMIT 1) AS d ON true
LEFT JOIN LATERAL (SELECT timestamp, cr_debits_pending, cr_debits_posted, cr_credits_pending, cr_credits_posted
	FROM transfers WHERE credit_account_id = a.id ORDER BY timestamp DESC LIMIT 1) AS c ON true
`

// Statements of Commit. The fencing update must match the writer row with the caller's token;
// closing pendings is one statement per commit, whatever their number.
const (
	sqlFence = `UPDATE ledger_writer SET last_timestamp = GREATEST(last_timestamp, $1) WHERE id = 1 AND token = $2`

	sqlClosePending = `UPDATE transfers AS t SET status = v.status
	FROM unnest($1::text[], $2::text[]) AS v(id, status)
	WHERE t.id = v.id COLLATE "C" AND t.status = 'pending'`
)

// Ledger returns the ledger store of d. It fails if the database lacks the ledger's schema
// (run Migrate, or `fincore migrate`).
func (d *DB) Ledger() (*LedgerStore, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := d.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if v < ledgerSchemaVersion {
		return nil, fmt.Errorf("postgres: the database schema is at version %d, the ledger needs %d: run the migrations first", v, ledgerSchemaVersion)
	}
	return &LedgerStore{pool: d.pool}, nil
}

// Close is a no-op: the DB owns the pool.
func (s *LedgerStore) Close() error { return nil }

// AcquireWriter increments the fencing token and returns it. The row lock taken by the
// increment waits for a commit in progress under an older token, so once AcquireWriter has
// returned no older writer can commit.
func (s *LedgerStore) AcquireWriter(ctx context.Context) (int64, error) {
	var token int64
	err := s.pool.QueryRow(ctx, `UPDATE ledger_writer SET token = token + 1 WHERE id = 1 RETURNING token`).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errors.New("postgres: ledger_writer row is missing")
	}
	return token, err
}

// Head returns the last timestamp used and the last record's hash.
func (s *LedgerStore) Head(ctx context.Context) (ledger.Head, error) {
	h := ledger.Head{Hash: ledger.GenesisHash}
	var last int64
	var ts *int64
	var hash []byte
	err := s.pool.QueryRow(ctx, `SELECT w.last_timestamp, t.timestamp, t.hash
		FROM ledger_writer AS w
		LEFT JOIN (SELECT timestamp, hash FROM transfers ORDER BY timestamp DESC LIMIT 1) AS t ON true
		WHERE w.id = 1`).Scan(&last, &ts, &hash)
	if err != nil {
		return h, err
	}
	if ts != nil {
		h.Hash = hash
		last = max(last, *ts)
	}
	h.Timestamp = ledger.Timestamp(last)
	return h, nil
}

// LoadAccounts returns the existing accounts among ids.
func (s *LedgerStore) LoadAccounts(ctx context.Context, ids []string) ([]*ledger.Account, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, accountSelect+`WHERE a.id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	return collectAccounts(rows)
}

// LoadTransfers returns the existing transfers among ids.
func (s *LedgerStore) LoadTransfers(ctx context.Context, ids []string) ([]*ledger.Transfer, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+transferCols+` FROM transfers WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	return collectTransfers(rows)
}

// Commit writes a group in one transaction, after checking the fencing token. The fencing
// update and the closing of pendings travel in one pipeline with the BEGIN; new accounts and
// journal records follow by COPY; then COMMIT. That is three or four round trips whatever
// the size of the group.
func (s *LedgerStore) Commit(ctx context.Context, token int64, b *ledger.Batch) (err error) {
	var last ledger.Timestamp
	if n := len(b.Transfers); n > 0 {
		last = b.Transfers[n-1].Timestamp
	}
	for _, a := range b.NewAccounts {
		last = max(last, a.Timestamp)
	}

	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer pc.Release()
	conn := pc.Conn()
	defer func() {
		if err != nil && conn.PgConn().TxStatus() != 'I' && !conn.IsClosed() {
			// Best effort; a connection still in a transaction is closed by the pool on
			// release rather than reused.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Exec(rctx, "rollback")
			cancel()
		}
	}()

	var batch pgx.Batch
	batch.Queue("begin")
	batch.Queue(sqlFence, int64(last), token)
	if n := len(b.Closed); n > 0 {
		ids, sts := make([]string, n), make([]string, n)
		for i, c := range b.Closed {
			ids[i], sts[i] = c.ID, string(c.Status)
		}
		batch.Queue(sqlClosePending, ids, sts)
	}
	if err := s.runCommitBatch(ctx, conn, &batch, b); err != nil {
		return err
	}
	if len(b.NewAccounts) > 0 {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"accounts"}, accountColumns, &accountRows{as: b.NewAccounts}); err != nil {
			return fmt.Errorf("insert accounts: %w", err)
		}
	}
	if len(b.Transfers) > 0 {
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{"transfers"}, transferColumns, &transferRows{ts: b.Transfers}); err != nil {
			return fmt.Errorf("insert transfers: %w", err)
		}
	}
	tag, err := conn.Exec(ctx, "commit")
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit: the server answered %q", tag.String())
	}
	return nil
}

// runCommitBatch sends the first part of a commit and checks its results: the fencing
// update must have matched the writer row.
func (s *LedgerStore) runCommitBatch(ctx context.Context, conn *pgx.Conn, batch *pgx.Batch, b *ledger.Batch) error {
	br := conn.SendBatch(ctx, batch)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tag, err := br.Exec()
	if err != nil {
		return fmt.Errorf("check writer token: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return ledger.ErrFenced
	}
	if len(b.Closed) > 0 {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("close pending transfers: %w", err)
		}
	}
	return br.Close()
}

// accountRows feeds new accounts to COPY, reusing one row buffer.
type accountRows struct {
	as  []*ledger.Account
	i   int
	row [7]any
}

func (r *accountRows) Next() bool { r.i++; return r.i <= len(r.as) }
func (r *accountRows) Err() error { return nil }
func (r *accountRows) Values() ([]any, error) {
	a := r.as[r.i-1]
	r.row = [7]any{a.ID, a.Currency, a.Code, a.Flags.Bits(), ledger.EncodeMetadata(a.Metadata), int64(a.Timestamp),
		nonNil(a.ReqHash)}
	return r.row[:], nil
}

// transferRows feeds journal records to COPY, reusing one row buffer.
type transferRows struct {
	ts  []*ledger.Transfer
	i   int
	row [25]any
}

func (r *transferRows) Next() bool { r.i++; return r.i <= len(r.ts) }
func (r *transferRows) Err() error { return nil }
func (r *transferRows) Values() ([]any, error) {
	t := r.ts[r.i-1]
	var pending int64
	if t.Pending {
		pending = 1
	}
	d, c := &t.DebitBalances, &t.CreditBalances
	r.row = [25]any{int64(t.Timestamp), t.ID, t.DebitAccountID, t.CreditAccountID, t.Amount, t.Currency,
		t.Code, pending, t.PendingID, t.TimeoutSeconds, int64(t.ExpiresAt), string(t.Status),
		ledger.EncodeMetadata(t.Metadata), t.PendingDelta, t.PostedDelta,
		d.DebitsPending, d.DebitsPosted, d.CreditsPending, d.CreditsPosted,
		c.DebitsPending, c.DebitsPosted, c.CreditsPending, c.CreditsPosted, nonNil(t.ReqHash), nonNil(t.Hash)}
	return r.row[:], nil
}

// nonNil maps a nil byte slice to an empty one: the columns are NOT NULL, and pgx writes a
// nil slice as NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// scanAccount reads a row of accountSelect. A side with no record reads as NULLs, which
// scan as zeros.
func scanAccount(r pgx.Row) (*ledger.Account, error) {
	var a ledger.Account
	var flags, ts int64
	var meta string
	var dts, cts nullInt
	var d, c [4]nullInt
	if err := r.Scan(&a.ID, &a.Currency, &a.Code, &flags, &meta, &ts, &a.ReqHash,
		&dts, &d[0], &d[1], &d[2], &d[3], &cts, &c[0], &c[1], &c[2], &c[3]); err != nil {
		return nil, err
	}
	side := d
	if cts > dts {
		side = c
	}
	a.Balances = ledger.Balances{DebitsPending: int64(side[0]), DebitsPosted: int64(side[1]),
		CreditsPending: int64(side[2]), CreditsPosted: int64(side[3])}
	a.Flags = ledger.FlagsFromBits(flags)
	a.Timestamp = ledger.Timestamp(ts)
	var err error
	a.Metadata, err = ledger.DecodeMetadata(meta)
	return &a, err
}

func scanTransfer(r pgx.Row) (*ledger.Transfer, error) {
	var t ledger.Transfer
	var ts, exp, pending int64
	var status, meta string
	d, c := &t.DebitBalances, &t.CreditBalances
	if err := r.Scan(&ts, &t.ID, &t.DebitAccountID, &t.CreditAccountID, &t.Amount, &t.Currency, &t.Code, &pending,
		&t.PendingID, &t.TimeoutSeconds, &exp, &status, &meta, &t.PendingDelta, &t.PostedDelta,
		&d.DebitsPending, &d.DebitsPosted, &d.CreditsPending, &d.CreditsPosted,
		&c.DebitsPending, &c.DebitsPosted, &c.CreditsPending, &c.CreditsPosted, &t.ReqHash, &t.Hash); err != nil {
		return nil, err
	}
	t.Timestamp, t.ExpiresAt, t.Pending, t.Status = ledger.Timestamp(ts), ledger.Timestamp(exp), pending != 0, ledger.Status(status)
	var err error
	t.Metadata, err = ledger.DecodeMetadata(meta)
	return &t, err
}

func collectAccounts(rows pgx.Rows) ([]*ledger.Account, error) {
	defer rows.Close()
	var out []*ledger.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func collectTransfers(rows pgx.Rows) ([]*ledger.Transfer, error) {
	defer rows.Close()
	var out []*ledger.Transfer
	for rows.Next() {
		t, err := scanTransfer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetAccount returns one account.
func (s *LedgerStore) GetAccount(ctx context.Context, id string) (*ledger.Account, error) {
	a, err := scanAccount(s.pool.QueryRow(ctx, accountSelect+`WHERE a.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return a, err
}

// GetTransfer returns one transfer.
func (s *LedgerStore) GetTransfer(ctx context.Context, id string) (*ledger.Transfer, error) {
	t, err := scanTransfer(s.pool.QueryRow(ctx, `SELECT `+transferCols+` FROM transfers WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return t, err
}

// Each side of an account's history is read through its own index, newest first.
const (
	sqlDebitSide = `SELECT ` + transferCols + ` FROM transfers WHERE debit_account_id = $1 AND timestamp < $2
		ORDER BY timestamp DESC LIMIT $3`
	sqlCreditSide = `SELECT ` + transferCols + ` FROM transfers WHERE credit_account_id = $1 AND timestamp < $2
		ORDER BY timestamp DESC LIMIT $3`
)

// AccountTransfers lists an account's records newest first. Each side is read through its own
// index (both queries in one round trip) and the two are merged, so the cost is O(limit)
// whatever the account's history.
func (s *LedgerStore) AccountTransfers(ctx context.Context, accountID string, before ledger.Timestamp, limit int) ([]*ledger.Transfer, error) {
	if limit <= 0 {
		return nil, nil
	}
	if before == 0 {
		before = ledger.Timestamp(math.MaxInt64)
	}
	sides, err := s.bothSides(ctx, sqlDebitSide, sqlCreditSide, accountID, int64(before), int64(limit))
	if err != nil {
		return nil, err
	}
	return ledger.MergeNewestFirst(sides[0], sides[1], limit), nil
}

// bothSides runs a debit-side and a credit-side query with the same arguments in one batch.
func (s *LedgerStore) bothSides(ctx context.Context, debitSQL, creditSQL string, args ...any) ([2][]*ledger.Transfer, error) {
	var sides [2][]*ledger.Transfer
	var batch pgx.Batch
	batch.Queue(debitSQL, args...)
	batch.Queue(creditSQL, args...)
	br := s.pool.SendBatch(ctx, &batch)
	defer br.Close()
	for i := range sides {
		rows, err := br.Query()
		if err != nil {
			return sides, err
		}
		if sides[i], err = collectTransfers(rows); err != nil {
			return sides, err
		}
	}
	return sides, br.Close()
}

const (
	sqlLastDebit = `SELECT ` + transferCols + ` FROM transfers WHERE debit_account_id = $1 AND timestamp <= $2
		ORDER BY timestamp DESC LIMIT 1`
	sqlLastCredit = `SELECT ` + transferCols + ` FROM transfers WHERE credit_account_id = $1 AND timestamp <= $2
		ORDER BY timestamp DESC LIMIT 1`
)

// LastTransferAt returns the latest record of the account at or before at: one index look-up
// per side, both in one round trip.
func (s *LedgerStore) LastTransferAt(ctx context.Context, accountID string, at ledger.Timestamp) (*ledger.Transfer, error) {
	sides, err := s.bothSides(ctx, sqlLastDebit, sqlLastCredit, accountID, int64(at))
	if err != nil {
		return nil, err
	}
	var best *ledger.Transfer
	for _, side := range sides {
		if len(side) > 0 && (best == nil || side[0].Timestamp > best.Timestamp) {
			best = side[0]
		}
	}
	if best == nil {
		return nil, ledger.ErrNotFound
	}
	return best, nil
}

// DuePending returns pending transfers whose expiry has come, through the partial index.
func (s *LedgerStore) DuePending(ctx context.Context, now ledger.Timestamp, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM transfers WHERE status = 'pending' AND expires_at > 0 AND expires_at <= $1
		ORDER BY expires_at LIMIT $2`, int64(now), int64(limit))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// ScanTransfers pages through the journal oldest first.
func (s *LedgerStore) ScanTransfers(ctx context.Context, after ledger.Timestamp, limit int) ([]*ledger.Transfer, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+transferCols+` FROM transfers WHERE timestamp > $1 ORDER BY timestamp LIMIT $2`, int64(after), int64(limit))
	if err != nil {
		return nil, err
	}
	return collectTransfers(rows)
}

// ScanAccounts pages through accounts in id order (bytewise, as the ids' collation is "C").
func (s *LedgerStore) ScanAccounts(ctx context.Context, after string, limit int) ([]*ledger.Account, error) {
	rows, err := s.pool.Query(ctx, accountSelect+`WHERE a.id > $1 ORDER BY a.id LIMIT $2`, after, int64(limit))
	if err != nil {
		return nil, err
	}
	return collectAccounts(rows)
}

// nullInt scans a BIGINT that may be NULL, as zero.
type nullInt int64

// ScanInt64 implements pgtype.Int64Scanner.
func (n *nullInt) ScanInt64(v pgtype.Int8) error {
	*n = nullInt(v.Int64) // zero when !v.Valid
	return nil
}
