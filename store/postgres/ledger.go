package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
const ledgerSchemaVersion = 10 // 0002 adds the outbox, 0003 the timers, 0005 the lease token, 0008 expiry timers for older pendings, 0010 module records

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

// Statements of Commit. The fencing update must match the writer row with the caller's token:
// when it matches none, count(*) is 0 and the division fails, aborting the transaction.
// Inserting rows (in a small commit) and closing pendings are one statement each per commit,
// whatever their number.
const (
	sqlFence = `WITH w AS (
		UPDATE ledger_writer SET last_timestamp = GREATEST(last_timestamp, $1) WHERE id = 1 AND token = $2 RETURNING 1)
	SELECT 1 / count(*) FROM w`

	sqlInsertAccounts = `INSERT INTO accounts (id, currency, code, flags, metadata, timestamp, req_hash)
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::bytea[])`

	sqlInsertTransfers = `INSERT INTO transfers (` + transferCols + `)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[],
		$8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::bigint[], $15::bigint[],
		$16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[],
		$23::bigint[], $24::bytea[], $25::bytea[])`

	sqlInsertEvents = `INSERT INTO outbox (subject, msg_id, payload, created_at)
	SELECT s, m, p, c FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) WITH ORDINALITY AS v(s, m, p, c, o) ORDER BY o`

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

// AcquireWriter increments the writer token and records the lease token, refusing a lease
// token the store has seen superseded; see ledger.Store. The row lock taken by the update
// waits for a commit in progress under an older token, so once AcquireWriter has returned no
// older writer can commit.
func (s *LedgerStore) AcquireWriter(ctx context.Context, lease uint64) (int64, error) {
	if lease > math.MaxInt64 {
		return 0, fmt.Errorf("postgres: lease token %d is out of range", lease)
	}
	var token int64
	err := s.pool.QueryRow(ctx, `UPDATE ledger_writer SET token = token + 1, lease_token = $1
		WHERE id = 1 AND (lease_token < $1 OR ($1 = 0 AND lease_token = 0)) RETURNING token`, int64(lease)).Scan(&token)
	if !errors.Is(err, pgx.ErrNoRows) {
		return token, err
	}
	var seen int64
	if err := s.pool.QueryRow(ctx, `SELECT lease_token FROM ledger_writer WHERE id = 1`).Scan(&seen); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, errors.New("postgres: ledger_writer row is missing")
		}
		return 0, err
	}
	return 0, ledger.FencedLease(lease, uint64(seen))
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

// LoadAccounts returns the existing accounts among ids. The writer's look-ups are written as
// IN (SELECT unnest(...)) rather than = ANY(...): with per-execution planning (see Open) the
// planner then knows how many ids there are without estimating each one's selectivity, which
// costs milliseconds for a group of thousands.
func (s *LedgerStore) LoadAccounts(ctx context.Context, ids []string) ([]*ledger.Account, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, accountSelect+`WHERE a.id IN (SELECT unnest($1::text[]))`, ids)
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
	rows, err := s.pool.Query(ctx, `SELECT `+transferCols+` FROM transfers WHERE id IN (SELECT unnest($1::text[]))`, ids)
	if err != nil {
		return nil, err
	}
	return collectTransfers(rows)
}

// smallCommitMax is the most rows (new accounts plus records) that Commit sends as INSERT
// statements in the same pipeline as the rest of the transaction: one round trip in all.
// Larger commits send their rows by COPY, which costs two more round trips but much less
// server time per row.
var smallCommitMax = 32

// Commit writes a group in one transaction, after checking the fencing token.
//
// BEGIN, the fencing check and the closing of pendings travel in one pipeline. A small group
// adds its rows (INSERT ... SELECT FROM unnest) and COMMIT to that pipeline, so the whole
// commit is one round trip; a larger one sends its rows by COPY, then COMMIT: three round
// trips whatever its size. The fencing check fails with a division by zero when the token is
// stale, so that nothing after it in the pipeline runs.
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

	small := len(b.NewAccounts)+len(b.Transfers) <= smallCommitMax
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
	if small {
		if len(b.NewAccounts) > 0 {
			batch.Queue(sqlInsertAccounts, accountArrays(b.NewAccounts)...)
		}
		if len(b.Transfers) > 0 {
			batch.Queue(sqlInsertTransfers, transferArrays(b.Transfers)...)
		}
		if len(b.Events) > 0 {
			batch.Queue(sqlInsertEvents, eventArrays(b.Events)...)
		}
		if len(b.Timers) > 0 {
			batch.Queue(sqlInsertTimers, timerArrays(b.Timers)...)
		}
		if len(b.Records) > 0 {
			batch.Queue(sqlUpsertRecords, recordArrays(b.Records)...)
		}
		batch.Queue("commit")
	}
	if err := runCommitBatch(ctx, conn, &batch); err != nil {
		return err
	}
	if small {
		return nil
	}
	if len(b.NewAccounts) > 0 {
		if _, err := conn.PgConn().CopyFrom(ctx, copyAccounts(b.NewAccounts), sqlCopyAccounts); err != nil {
			return fmt.Errorf("insert accounts: %w", err)
		}
	}
	if len(b.Transfers) > 0 {
		if _, err := conn.PgConn().CopyFrom(ctx, copyTransfers(b.Transfers), sqlCopyTransfers); err != nil {
			return fmt.Errorf("insert transfers: %w", err)
		}
	}
	if len(b.Events) > 0 {
		if _, err := conn.PgConn().CopyFrom(ctx, copyEvents(b.Events), sqlCopyEvents); err != nil {
			return fmt.Errorf("insert outbox rows: %w", err)
		}
	}
	if len(b.Timers) > 0 {
		if _, err := conn.Exec(ctx, sqlInsertTimers, timerArrays(b.Timers)...); err != nil {
			return fmt.Errorf("insert timers: %w", err)
		}
	}
	if len(b.Records) > 0 {
		if _, err := conn.Exec(ctx, sqlUpsertRecords, recordArrays(b.Records)...); err != nil {
			return fmt.Errorf("write records: %w", err)
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

// runCommitBatch sends a commit's pipeline and checks every result: a failed fencing check is
// ErrFenced, and a COMMIT must have committed.
func runCommitBatch(ctx context.Context, conn *pgx.Conn, batch *pgx.Batch) error {
	br := conn.SendBatch(ctx, batch)
	defer br.Close()
	for i, q := range batch.QueuedQueries {
		tag, err := br.Exec()
		if err != nil {
			var pgErr *pgconn.PgError
			if i == 1 && errors.As(err, &pgErr) && pgErr.Code == "22012" {
				return ledger.ErrFenced
			}
			return fmt.Errorf("commit: %s: %w", strings.Fields(q.SQL)[0], err)
		}
		if q.SQL == "commit" && tag.String() != "COMMIT" {
			return fmt.Errorf("commit: the server answered %q", tag.String())
		}
	}
	return br.Close()
}

// accountArrays is sqlInsertAccounts' arguments: one array per column.
func accountArrays(as []*ledger.Account) []any {
	n := len(as)
	ids, curs, codes, metas := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	flags, ts := make([]int64, n), make([]int64, n)
	hashes := make([][]byte, n)
	for i, a := range as {
		ids[i], curs[i], codes[i], metas[i] = a.ID, a.Currency, a.Code, ledger.EncodeMetadata(a.Metadata)
		flags[i], ts[i], hashes[i] = a.Flags.Bits(), int64(a.Timestamp), nonNil(a.ReqHash)
	}
	return []any{ids, curs, codes, flags, metas, ts, hashes}
}

// transferArrays is sqlInsertTransfers' arguments: one array per column, in transferCols
// order.
func transferArrays(ts []*ledger.Transfer) []any {
	n := len(ts)
	cols := make([]any, 25)
	ints := func(f func(*ledger.Transfer) int64) []int64 {
		v := make([]int64, n)
		for i, t := range ts {
			v[i] = f(t)
		}
		return v
	}
	strs := func(f func(*ledger.Transfer) string) []string {
		v := make([]string, n)
		for i, t := range ts {
			v[i] = f(t)
		}
		return v
	}
	byts := func(f func(*ledger.Transfer) []byte) [][]byte {
		v := make([][]byte, n)
		for i, t := range ts {
			v[i] = nonNil(f(t))
		}
		return v
	}
	cols[0] = ints(func(t *ledger.Transfer) int64 { return int64(t.Timestamp) })
	cols[1] = strs(func(t *ledger.Transfer) string { return t.ID })
	cols[2] = strs(func(t *ledger.Transfer) string { return t.DebitAccountID })
	cols[3] = strs(func(t *ledger.Transfer) string { return t.CreditAccountID })
	cols[4] = ints(func(t *ledger.Transfer) int64 { return t.Amount })
	cols[5] = strs(func(t *ledger.Transfer) string { return t.Currency })
	cols[6] = strs(func(t *ledger.Transfer) string { return t.Code })
	cols[7] = ints(func(t *ledger.Transfer) int64 { return pendingBit(t) })
	cols[8] = strs(func(t *ledger.Transfer) string { return t.PendingID })
	cols[9] = ints(func(t *ledger.Transfer) int64 { return t.TimeoutSeconds })
	cols[10] = ints(func(t *ledger.Transfer) int64 { return int64(t.ExpiresAt) })
	cols[11] = strs(func(t *ledger.Transfer) string { return string(t.Status) })
	cols[12] = strs(func(t *ledger.Transfer) string { return ledger.EncodeMetadata(t.Metadata) })
	cols[13] = ints(func(t *ledger.Transfer) int64 { return t.PendingDelta })
	cols[14] = ints(func(t *ledger.Transfer) int64 { return t.PostedDelta })
	cols[15] = ints(func(t *ledger.Transfer) int64 { return t.DebitBalances.DebitsPending })
	cols[16] = ints(func(t *ledger.Transfer) int64 { return t.DebitBalances.DebitsPosted })
	cols[17] = ints(func(t *ledger.Transfer) int64 { return t.DebitBalances.CreditsPending })
	cols[18] = ints(func(t *ledger.Transfer) int64 { return t.DebitBalances.CreditsPosted })
	cols[19] = ints(func(t *ledger.Transfer) int64 { return t.CreditBalances.DebitsPending })
	cols[20] = ints(func(t *ledger.Transfer) int64 { return t.CreditBalances.DebitsPosted })
	cols[21] = ints(func(t *ledger.Transfer) int64 { return t.CreditBalances.CreditsPending })
	cols[22] = ints(func(t *ledger.Transfer) int64 { return t.CreditBalances.CreditsPosted })
	cols[23] = byts(func(t *ledger.Transfer) []byte { return t.ReqHash })
	cols[24] = byts(func(t *ledger.Transfer) []byte { return t.Hash })
	return cols
}

func pendingBit(t *ledger.Transfer) int64 {
	if t.Pending {
		return 1
	}
	return 0
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
