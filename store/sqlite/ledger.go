package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/fincore/fincore/ledger"
)

// LedgerStore is the ledger's storage on SQLite.
type LedgerStore struct {
	db *DB
	// insert statements for chunks of transfer rows, by rows per statement
	insertTransfers map[int]*sql.Stmt
	insertAccount   *sql.Stmt
	closeStatus     *sql.Stmt
	// advance moves the journal head and checks the fencing token (writer connection);
	// loadTransfers and loadAccounts read what a group refers to (read pool). Prepared once:
	// the writer runs them for every group.
	advance, loadTransfers, loadAccounts *sql.Stmt
	// insert statements for chunks of outbox rows, by rows per statement
	insertEvents map[int]*sql.Stmt
	// timers is the timer store of the same database.
	timers *TimerStore
	// records are the statements of other modules' records.
	records *recordStmts
}

var _ ledger.Store = (*LedgerStore)(nil)

const transferCols = `timestamp, id, debit_account_id, credit_account_id, amount, currency, code, pending,
	pending_id, timeout_seconds, expires_at, status, metadata, pending_delta, posted_delta,
	dr_debits_pending, dr_debits_posted, dr_credits_pending, dr_credits_posted,
	cr_debits_pending, cr_debits_posted, cr_credits_pending, cr_credits_posted, req_hash, hash`

const transferColCount = 25

const accountCols = `id, currency, code, flags, metadata, timestamp, req_hash`

// accountSelect reads accounts with their balances: the snapshots of the account's latest
// record on each side; the later of the two is current. Each side is one index look-up.
const accountSelect = `SELECT a.id, a.currency, a.code, a.flags, a.metadata, a.timestamp, a.req_hash,
	COALESCE(d.timestamp, 0), COALESCE(d.dr_debits_pending, 0), COALESCE(d.dr_debits_posted, 0),
	COALESCE(d.dr_credits_pending, 0), COALESCE(d.dr_credits_posted, 0),
	COALESCE(c.timestamp, 0), COALESCE(c.cr_debits_pending, 0), COALESCE(c.cr_debits_posted, 0),
	COALESCE(c.cr_credits_pending, 0), COALESCE(c.cr_credits_posted, 0)
FROM accounts a
LEFT JOIN transfers d ON d.timestamp = (SELECT MAX(timestamp) FROM transfers WHERE debit_account_id = a.id)
LEFT JOIN transfers c ON c.timestamp = (SELECT MAX(timestamp) FROM transfers WHERE credit_account_id = a.id)
`

// insertChunks are the rows per INSERT statement, largest first; SQLite allows 32766
// parameters per statement.
var insertChunks = []int{512, 64, 8, 1}

// chunkRows is the rows of the next multi-row insert when left rows remain: the largest of
// insertChunks that fits.
func chunkRows(left int) int {
	for _, c := range insertChunks {
		if left >= c {
			return c
		}
	}
	return 1
}

// Ledger returns the ledger store of d.
func (d *DB) Ledger() (*LedgerStore, error) {
	s := &LedgerStore{db: d, insertTransfers: map[int]*sql.Stmt{}, insertEvents: map[int]*sql.Stmt{}}
	var err error
	for _, n := range insertChunks {
		oq := "INSERT INTO outbox (subject, msg_id, payload, created_at) VALUES " + strings.Repeat("(?,?,?,?),", n-1) + "(?,?,?,?)"
		if s.insertEvents[n], err = d.write.Prepare(oq); err != nil {
			return nil, fmt.Errorf("prepare outbox insert: %w", err)
		}
		row := "(" + strings.Repeat("?,", transferColCount-1) + "?)"
		q := "INSERT INTO transfers (" + transferCols + ") VALUES " + strings.Repeat(row+",", n-1) + row
		if s.insertTransfers[n], err = d.write.Prepare(q); err != nil {
			return nil, fmt.Errorf("prepare transfer insert: %w", err)
		}
	}
	if s.insertAccount, err = d.write.Prepare(`INSERT INTO accounts (` + accountCols + `) VALUES (?,?,?,?,?,?,?)`); err != nil {
		return nil, err
	}
	if s.closeStatus, err = d.write.Prepare(`UPDATE transfers SET status = ? WHERE id = ? AND status = 'pending'`); err != nil {
		return nil, err
	}
	if s.advance, err = d.write.Prepare(`UPDATE ledger_writer SET last_timestamp = MAX(last_timestamp, ?) WHERE id = 1 AND token = ?`); err != nil {
		return nil, err
	}
	if s.loadTransfers, err = d.read.Prepare(`SELECT ` + transferCols + ` FROM transfers WHERE id IN (SELECT value FROM json_each(?))`); err != nil {
		return nil, err
	}
	if s.loadAccounts, err = d.read.Prepare(accountSelect + `WHERE a.id IN (SELECT value FROM json_each(?))`); err != nil {
		return nil, err
	}
	if s.timers, err = d.Timers(); err != nil {
		return nil, err
	}
	if s.records, err = d.prepareRecordStmts(); err != nil {
		return nil, err
	}
	return s, nil
}

// Close is a no-op: the DB owns the connections.
func (s *LedgerStore) Close() error { return nil }

// AcquireWriter increments the writer token and records the lease token, refusing a lease
// token the store has seen superseded; see ledger.Store.
func (s *LedgerStore) AcquireWriter(ctx context.Context, lease uint64) (int64, error) {
	if lease > math.MaxInt64 {
		return 0, fmt.Errorf("sqlite: lease token %d is out of range", lease)
	}
	l := int64(lease)
	var token int64
	err := s.db.write.QueryRowContext(ctx, `UPDATE ledger_writer SET token = token + 1, lease_token = ?
		WHERE id = 1 AND (lease_token < ? OR (? = 0 AND lease_token = 0)) RETURNING token`, l, l, l).Scan(&token)
	if !errors.Is(err, sql.ErrNoRows) {
		return token, err
	}
	var seen int64
	if err := s.db.write.QueryRowContext(ctx, `SELECT lease_token FROM ledger_writer WHERE id = 1`).Scan(&seen); err != nil {
		return 0, err
	}
	return 0, ledger.FencedLease(lease, uint64(seen))
}

// Head returns the last timestamp used and the last record's hash.
func (s *LedgerStore) Head(ctx context.Context) (ledger.Head, error) {
	h := ledger.Head{Hash: ledger.GenesisHash}
	var last int64
	if err := s.db.write.QueryRowContext(ctx, `SELECT last_timestamp FROM ledger_writer WHERE id = 1`).Scan(&last); err != nil {
		return h, err
	}
	var ts int64
	var hash []byte
	err := s.db.write.QueryRowContext(ctx, `SELECT timestamp, hash FROM transfers ORDER BY timestamp DESC LIMIT 1`).Scan(&ts, &hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return h, err
	}
	if err == nil {
		h.Hash = hash
	}
	h.Timestamp = ledger.Timestamp(max(last, ts))
	return h, nil
}

func idsJSON(ids []string) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// LoadAccounts returns the existing accounts among ids.
func (s *LedgerStore) LoadAccounts(ctx context.Context, ids []string) ([]*ledger.Account, error) {
	rows, err := s.loadAccounts.QueryContext(ctx, idsJSON(ids))
	if err != nil {
		return nil, err
	}
	return collectAccounts(rows)
}

// LoadTransfers returns the existing transfers among ids.
func (s *LedgerStore) LoadTransfers(ctx context.Context, ids []string) ([]*ledger.Transfer, error) {
	rows, err := s.loadTransfers.QueryContext(ctx, idsJSON(ids))
	if err != nil {
		return nil, err
	}
	return collectTransfers(rows)
}

// Commit writes a group in one transaction, after checking the fencing token.
func (s *LedgerStore) Commit(ctx context.Context, token int64, b *ledger.Batch) error {
	tx, err := s.db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var last ledger.Timestamp
	if n := len(b.Transfers); n > 0 {
		last = b.Transfers[n-1].Timestamp
	}
	for _, a := range b.NewAccounts {
		last = max(last, a.Timestamp)
	}
	res, err := tx.Stmt(s.advance).ExecContext(ctx, int64(last), token)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return ledger.ErrFenced
	}
	ins := tx.Stmt(s.insertAccount)
	for _, a := range b.NewAccounts {
		if _, err := ins.ExecContext(ctx, a.ID, a.Currency, a.Code, a.Flags.Bits(), ledger.EncodeMetadata(a.Metadata),
			int64(a.Timestamp), a.ReqHash); err != nil {
			return fmt.Errorf("insert account %q: %w", a.ID, err)
		}
	}
	if err := s.insertRecords(ctx, tx, b.Transfers); err != nil {
		return err
	}
	if err := s.insertEventRows(ctx, tx, b.Events); err != nil {
		return err
	}
	if _, err := s.timers.insertRows(ctx, tx, b.Timers); err != nil {
		return err
	}
	if err := s.insertRecordRows(ctx, tx, b); err != nil {
		return err
	}
	cl := tx.Stmt(s.closeStatus)
	for _, c := range b.Closed {
		if _, err := cl.ExecContext(ctx, string(c.Status), c.ID); err != nil {
			return fmt.Errorf("close pending %q: %w", c.ID, err)
		}
	}
	return tx.Commit()
}

func (s *LedgerStore) insertRecords(ctx context.Context, tx *sql.Tx, ts []*ledger.Transfer) error {
	args := make([]any, 0, min(len(ts), insertChunks[0])*transferColCount)
	for len(ts) > 0 {
		n := chunkRows(len(ts))
		args = args[:0]
		for _, t := range ts[:n] {
			args = appendTransferArgs(args, t)
		}
		if _, err := tx.Stmt(s.insertTransfers[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert transfers: %w", err)
		}
		ts = ts[n:]
	}
	return nil
}

// insertEventRows appends a batch's events to the outbox, in order (seq follows insertion
// order), in multi-row statements. created_at is the commit's wall-clock time.
func (s *LedgerStore) insertEventRows(ctx context.Context, tx *sql.Tx, evs []ledger.Event) error {
	args := make([]any, 0, min(len(evs), insertChunks[0])*4)
	now := time.Now().UnixNano()
	for len(evs) > 0 {
		n := chunkRows(len(evs))
		args = args[:0]
		for i := range evs[:n] {
			e := &evs[i]
			args = append(args, e.Subject, e.ID, e.Payload, now)
		}
		if _, err := tx.Stmt(s.insertEvents[n]).ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("insert outbox rows: %w", err)
		}
		evs = evs[n:]
	}
	return nil
}

func appendTransferArgs(args []any, t *ledger.Transfer) []any {
	pending := 0
	if t.Pending {
		pending = 1
	}
	d, c := t.DebitBalances, t.CreditBalances
	return append(args, int64(t.Timestamp), t.ID, t.DebitAccountID, t.CreditAccountID, t.Amount, t.Currency,
		t.Code, pending, t.PendingID, t.TimeoutSeconds, int64(t.ExpiresAt), string(t.Status),
		ledger.EncodeMetadata(t.Metadata), t.PendingDelta, t.PostedDelta,
		d.DebitsPending, d.DebitsPosted, d.CreditsPending, d.CreditsPosted,
		c.DebitsPending, c.DebitsPosted, c.CreditsPending, c.CreditsPosted, t.ReqHash, t.Hash)
}

type scanner interface{ Scan(dest ...any) error }

func scanAccount(r scanner) (*ledger.Account, error) {
	var a ledger.Account
	var flags, ts, dts, cts int64
	var meta string
	var d, c ledger.Balances
	if err := r.Scan(&a.ID, &a.Currency, &a.Code, &flags, &meta, &ts, &a.ReqHash,
		&dts, &d.DebitsPending, &d.DebitsPosted, &d.CreditsPending, &d.CreditsPosted,
		&cts, &c.DebitsPending, &c.DebitsPosted, &c.CreditsPending, &c.CreditsPosted); err != nil {
		return nil, err
	}
	a.Balances = d
	if cts > dts {
		a.Balances = c
	}
	a.Flags = ledger.FlagsFromBits(flags)
	a.Timestamp = ledger.Timestamp(ts)
	var err error
	a.Metadata, err = ledger.DecodeMetadata(meta)
	return &a, err
}

func scanTransfer(r scanner) (*ledger.Transfer, error) {
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

func collectAccounts(rows *sql.Rows) ([]*ledger.Account, error) {
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

func collectTransfers(rows *sql.Rows) ([]*ledger.Transfer, error) {
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
	a, err := scanAccount(s.db.read.QueryRowContext(ctx, accountSelect+`WHERE a.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return a, err
}

// GetTransfer returns one transfer.
func (s *LedgerStore) GetTransfer(ctx context.Context, id string) (*ledger.Transfer, error) {
	t, err := scanTransfer(s.db.read.QueryRowContext(ctx, `SELECT `+transferCols+` FROM transfers WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ledger.ErrNotFound
	}
	return t, err
}

// AccountTransfers lists an account's records newest first. Each side is read through its own
// index and the two are merged, so the cost is O(limit) whatever the account's history.
func (s *LedgerStore) AccountTransfers(ctx context.Context, accountID string, before ledger.Timestamp, limit int) ([]*ledger.Transfer, error) {
	if before == 0 {
		before = ledger.Timestamp(1<<63 - 1)
	}
	var sides [2][]*ledger.Transfer
	for i, col := range []string{"debit_account_id", "credit_account_id"} {
		rows, err := s.db.read.QueryContext(ctx, `SELECT `+transferCols+` FROM transfers WHERE `+col+` = ? AND timestamp < ?
			ORDER BY timestamp DESC LIMIT ?`, accountID, int64(before), limit)
		if err != nil {
			return nil, err
		}
		if sides[i], err = collectTransfers(rows); err != nil {
			return nil, err
		}
	}
	return ledger.MergeNewestFirst(sides[0], sides[1], limit), nil
}

// LastTransferAt returns the latest record of the account at or before at.
func (s *LedgerStore) LastTransferAt(ctx context.Context, accountID string, at ledger.Timestamp) (*ledger.Transfer, error) {
	var best *ledger.Transfer
	for _, col := range []string{"debit_account_id", "credit_account_id"} {
		t, err := scanTransfer(s.db.read.QueryRowContext(ctx, `SELECT `+transferCols+` FROM transfers WHERE `+col+` = ? AND timestamp <= ?
			ORDER BY timestamp DESC LIMIT 1`, accountID, int64(at)))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if best == nil || t.Timestamp > best.Timestamp {
			best = t
		}
	}
	if best == nil {
		return nil, ledger.ErrNotFound
	}
	return best, nil
}

// DuePending returns pending transfers whose expiry has come.
func (s *LedgerStore) DuePending(ctx context.Context, now ledger.Timestamp, limit int) ([]string, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT id FROM transfers WHERE status = 'pending' AND expires_at > 0 AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`, int64(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ScanTransfers pages through the journal oldest first.
func (s *LedgerStore) ScanTransfers(ctx context.Context, after ledger.Timestamp, limit int) ([]*ledger.Transfer, error) {
	rows, err := s.db.read.QueryContext(ctx, `SELECT `+transferCols+` FROM transfers WHERE timestamp > ? ORDER BY timestamp LIMIT ?`, int64(after), limit)
	if err != nil {
		return nil, err
	}
	return collectTransfers(rows)
}

// ScanAccounts pages through accounts in id order.
func (s *LedgerStore) ScanAccounts(ctx context.Context, after string, limit int) ([]*ledger.Account, error) {
	rows, err := s.db.read.QueryContext(ctx, accountSelect+`WHERE a.id > ? ORDER BY a.id LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	return collectAccounts(rows)
}
