package auth

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Store errors.
var (
	// ErrKeyExists: CreateKey was given an id that is taken.
	ErrKeyExists = errors.New("auth: key id exists")
	// ErrCursorNotFound: a list's starting_after names no key.
	ErrCursorNotFound = errors.New("auth: starting_after names no key")
)

// AuditEntry is one record of the audit log: who did what to which object, with the object
// before and after (JSON, nil when there was none), and the request that did it.
type AuditEntry struct {
	// Seq is assigned by the store when the entry is appended: strictly increasing.
	Seq       int64           `json:"-"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	RequestID string          `json:"request_id"`
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	// BeforeSeq, if positive, returns only entries older than the one with that Seq.
	BeforeSeq int64
	// Actor and Action, if set, must match exactly.
	Actor  string
	Action string
	// Limit is 1 to ListMax.
	Limit int
}

// ListMax is the largest page of keys or audit entries.
const ListMax = 100

// Store keeps keys and the audit log. Implementations: store/sqlite and store/postgres
// (migration 0004), held to the same behaviour by store/storetest.TestAuthStore. The audit
// log has no update or delete: entries are only appended, and the adapters' schemas refuse
// UPDATE and DELETE on it.
type Store interface {
	// CreateKey stores k and appends e to the audit log, in one transaction. A taken id
	// gives ErrKeyExists and writes nothing.
	CreateKey(ctx context.Context, k Key, e AuditEntry) error
	// CreateFirstKey is CreateKey if no key (active or revoked) exists yet; otherwise it
	// writes nothing. It reports whether it created the key. Of several processes calling it
	// at once on one database, exactly one creates.
	CreateFirstKey(ctx context.Context, k Key, e AuditEntry) (bool, error)
	// GetKey returns the key with this id, active or revoked.
	GetKey(ctx context.Context, id string) (Key, bool, error)
	// ListKeys returns up to limit keys, newest first (by creation time, then id), after the
	// key startingAfter if it is set (ErrCursorNotFound if it names no key), and whether
	// more follow.
	ListKeys(ctx context.Context, startingAfter string, limit int) ([]Key, bool, error)
	// CountActiveKeys counts the keys not revoked.
	CountActiveKeys(ctx context.Context) (int, error)
	// RevokeKey marks the active key id revoked at the given time and appends e, in one
	// transaction. It reports false, writing nothing, when no active key has that id.
	RevokeKey(ctx context.Context, id string, at time.Time, e AuditEntry) (bool, error)
	// AppendAudit appends e and returns its Seq.
	AppendAudit(ctx context.Context, e AuditEntry) (int64, error)
	// ListAudit returns the entries q selects, newest first, and whether more follow.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, bool, error)
}

// Provider is implemented by storage handles (such as a ledger store) whose database also
// holds the auth tables: it returns their Store.
type Provider interface {
	Auth() Store
}
