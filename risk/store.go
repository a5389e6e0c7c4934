package risk

import (
	"context"
	"encoding/json"
	"time"
)

// Store keeps the engine's durable data: rule set versions, lists, the event stream and the
// decision log, and snapshots of the feature state. Implementations: store/sqlite and
// store/postgres, held to the same behaviour by store/storetest.TestRiskStore.
type Store interface {
	// PutRuleSet stores source as the next version of the rule set name (1 for a new name)
	// and returns the version. If source is byte for byte the newest version's, nothing is
	// stored and that version is returned with created false.
	PutRuleSet(ctx context.Context, name string, source []byte, at time.Time) (version int, created bool, err error)
	// RuleSetSource returns one stored version.
	RuleSetSource(ctx context.Context, name string, version int) ([]byte, bool, error)
	// SetHead records which versions of name are active and shadow (0: none).
	SetHead(ctx context.Context, h Head) error
	// Heads returns every rule set with its newest, active and shadow versions, by name.
	Heads(ctx context.Context) ([]Head, error)

	// AddListItems adds items to list (present ones are left alone); RemoveListItems
	// removes them. Both report how many rows changed.
	AddListItems(ctx context.Context, list string, items []string, at time.Time) (int, error)
	RemoveListItems(ctx context.Context, list string, items []string) (int, error)
	// ListItems returns every item of every list.
	ListItems(ctx context.Context) (map[string][]string, error)

	// AppendLog writes events and decisions in one transaction, events in the order given.
	// An event whose id is already logged is skipped. The slices (bodies included) are
	// the caller's again once it returns: the store must not keep them.
	AppendLog(ctx context.Context, events []LoggedEvent, decisions []LoggedDecision) error
	// Events returns up to limit logged events with Seq > afterSeq and Time >= from, by
	// Seq.
	Events(ctx context.Context, afterSeq int64, from time.Time, limit int) ([]LoggedEvent, error)
	// LastEvent returns the logged event with the highest Seq (ok false when none).
	LastEvent(ctx context.Context) (LoggedEvent, bool, error)
	// Decisions returns the logged decisions of event ids (active and shadow), bodies as
	// stored.
	Decisions(ctx context.Context, eventIDs []string) ([]LoggedDecision, error)

	// SaveSnapshot replaces the stored snapshot of the feature state, which covers the
	// logged events up to seq. LoadSnapshot returns it (ok false when none).
	SaveSnapshot(ctx context.Context, seq int64, data []byte, at time.Time) error
	LoadSnapshot(ctx context.Context) (seq int64, data []byte, ok bool, err error)
}

// Head is a rule set's versions: the newest stored, the active one (decisions use it) and
// the shadow one (its decisions are logged, never returned). 0 means none.
type Head struct {
	Name    string
	Latest  int
	Active  int
	Shadow  int
	Updated time.Time
}

// LoggedEvent is an event in the event log, in arrival order (Seq, assigned by the store).
type LoggedEvent struct {
	Seq  int64
	ID   string
	Type string
	Time time.Time
	Body json.RawMessage
	// Label is the event's "label" field when it carries one ("fraud", "legit"), for
	// backtests.
	Label    string
	Received time.Time
}

// LoggedDecision is one decision as logged for audit: the event, the rule set version, the
// outcome and the body (reasons, features, models). Stores keep the body as bytes they do not
// read: the engine writes it in a compact binary form (see logbody.go) that LogReader and
// Engine.LoggedDecisions turn back into JSON with the names of the rule set version.
type LoggedDecision struct {
	EventID  string
	RuleSet  string
	Version  int
	Shadow   bool
	Decision string
	Score    int
	Body     json.RawMessage
	At       time.Time
}

// Provider is storage that holds a risk Store (the adapters' combined stores).
type Provider interface {
	Risk() Store
}
