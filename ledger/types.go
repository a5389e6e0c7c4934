// Package ledger is fincore's double-entry ledger: accounts, transfers, two-phase
// (pending/post/void) transfers, atomic batches, a hash-chained journal, and the
// single-writer group-commit engine that applies them. Storage is behind Store.
package ledger

import (
	"encoding/json"
	"time"
)

// Status is the state of a transfer record.
type Status string

// Transfer statuses. A plain transfer is posted. A pending transfer starts pending and ends
// posted, voided or expired. Post, void and expiry records carry the status they applied.
const (
	StatusPosted  Status = "posted"
	StatusPending Status = "pending"
	StatusVoided  Status = "voided"
	StatusExpired Status = "expired"
)

// Action says what a transfer input does.
type Action string

// Actions of a transfer input.
const (
	ActionCreate Action = ""     // a new posted or pending transfer
	ActionPost   Action = "post" // post all or part of a pending transfer
	ActionVoid   Action = "void" // release a pending transfer
)

// Flags are an account's balance rules.
type Flags struct {
	DebitsMustNotExceedCredits bool `json:"debits_must_not_exceed_credits"`
	CreditsMustNotExceedDebits bool `json:"credits_must_not_exceed_debits"`
}

func (f Flags) bits() int64 {
	var b int64
	if f.DebitsMustNotExceedCredits {
		b |= 1
	}
	if f.CreditsMustNotExceedDebits {
		b |= 2
	}
	return b
}

// FlagsFromBits is the inverse of the storage encoding of Flags.
func FlagsFromBits(b int64) Flags {
	return Flags{DebitsMustNotExceedCredits: b&1 != 0, CreditsMustNotExceedDebits: b&2 != 0}
}

// Bits is the storage encoding of Flags.
func (f Flags) Bits() int64 { return f.bits() }

// Balances are an account's four running totals in minor units.
type Balances struct {
	DebitsPending  int64 `json:"debits_pending"`
	DebitsPosted   int64 `json:"debits_posted"`
	CreditsPending int64 `json:"credits_pending"`
	CreditsPosted  int64 `json:"credits_posted"`
}

// Timestamp is a ledger timestamp: nanoseconds since the Unix epoch, UTC. The ledger assigns
// them strictly increasing. JSON renders them as RFC 3339 with nine fractional digits, so
// that string order is time order.
type Timestamp int64

// TimeLayout is the JSON layout of a Timestamp.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Time converts t to a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.Unix(0, int64(t)).UTC() }

// MarshalJSON renders the timestamp as RFC 3339 with nanoseconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(t.Time().Format(TimeLayout))
}

// UnmarshalJSON parses an RFC 3339 timestamp.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Timestamp(v.UnixNano())
	return nil
}

// Metadata is the string map a client attaches to an account or transfer. It renders as a
// JSON object even when empty, so clients never meet null.
type Metadata map[string]string

// MarshalJSON writes {} for empty metadata.
func (m Metadata) MarshalJSON() ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string(m))
}

// Account is a ledger account with its current balances.
type Account struct {
	ID        string    `json:"id"`
	Currency  string    `json:"currency"`
	Code      string    `json:"code"`
	Flags     Flags     `json:"flags"`
	Metadata  Metadata  `json:"metadata"`
	Timestamp Timestamp `json:"timestamp"`
	Balances  Balances  `json:"balances"`
	// ReqHash fingerprints the creating request, for idempotent replays.
	ReqHash []byte `json:"-"`
}

// Transfer is one record of the journal: a posted or pending transfer, or the post, void or
// expiry of a pending one (those carry PendingID).
type Transfer struct {
	ID              string    `json:"id"`
	DebitAccountID  string    `json:"debit_account_id"`
	CreditAccountID string    `json:"credit_account_id"`
	Amount          int64     `json:"amount"`
	Currency        string    `json:"currency"`
	Code            string    `json:"code"`
	Pending         bool      `json:"pending"`
	PendingID       string    `json:"pending_id,omitempty"`
	TimeoutSeconds  int64     `json:"timeout_seconds,omitempty"`
	ExpiresAt       Timestamp `json:"expires_at,omitempty"`
	Status          Status    `json:"status"`
	Timestamp       Timestamp `json:"timestamp"`
	Metadata        Metadata  `json:"metadata"`

	// Journal fields. PendingDelta and PostedDelta are what the record added to the debit
	// account's debits and the credit account's credits (pending and posted); the balance
	// snapshots are both accounts' balances just after the record; Hash chains the record to
	// the previous one.
	PendingDelta   int64    `json:"-"`
	PostedDelta    int64    `json:"-"`
	DebitBalances  Balances `json:"-"`
	CreditBalances Balances `json:"-"`
	ReqHash        []byte   `json:"-"`
	Hash           []byte   `json:"-"`
}

// AccountInput is a request to create an account.
type AccountInput struct {
	ID       string
	Currency string
	Code     string
	Flags    Flags
	Metadata map[string]string
}

// TransferInput is a request to create a transfer, or to post or void a pending one.
type TransferInput struct {
	Action          Action
	ID              string
	PendingID       string // for ActionPost and ActionVoid
	DebitAccountID  string
	CreditAccountID string
	Amount          int64 // for ActionPost, 0 means the full pending amount
	Currency        string
	Code            string
	Pending         bool
	TimeoutSeconds  int64
	Metadata        map[string]string
}

// AccountResult is the outcome of one AccountInput.
type AccountResult struct {
	Account *Account
	Created bool // false for an idempotent replay
	Err     error
}

// TransferResult is the outcome of one TransferInput.
type TransferResult struct {
	Transfer *Transfer
	Created  bool // false for an idempotent replay
	Err      error
}
