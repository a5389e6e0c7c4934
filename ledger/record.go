package ledger

import (
	"context"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/timer"
)

// A Record is a piece of another module's state — a payment, a refund, a loan — committed by
// the ledger's writer in the same storage transaction as the transfers that go with it, so
// that a state change and its postings are never seen one without the other (DESIGN.md
// principle 1 and P5). Records are versioned: every write names the version it replaces, and
// the writer refuses a write whose expected version is not the current one, so concurrent
// changes of one record cannot both apply.
//
// The ledger does not interpret Data; Owner (a parent: the merchant of a payment, the payment
// of a refund), Status and Created are indexed for listing.
type Record struct {
	Kind    string // "payment", "refund", ...: lower case letters, digits, '.' and '_'
	ID      string
	Version int64 // 1 for a new record, then +1 per write
	Owner   string
	Status  string
	Created time.Time
	Updated time.Time
	Data    []byte // the module's encoding (JSON), at most RecordDataMax bytes
}

// RecordDataMax bounds a record's data.
const RecordDataMax = 64 << 10

// RecordKey names a record.
type RecordKey struct{ Kind, ID string }

// Key returns the record's key.
func (r *Record) Key() RecordKey { return RecordKey{r.Kind, r.ID} }

// RecordQuery selects records of one kind, newest first (by Created, then ID).
type RecordQuery struct {
	Kind          string
	Owner         string    // if set, only records with this owner
	Status        string    // if set, only records with this status
	CreatedFrom   time.Time // if set, only records created at or after
	CreatedBefore time.Time // if set, only records created before
	StartingAfter string    // the ID of the last record of the previous page
	Limit         int
}

// ModuleEvent is an event of another module, published through the outbox in the same
// transaction as the unit that emits it. ID is its de-duplication id: make it deterministic
// (the same state change always gives the same id).
type ModuleEvent = Event

// Unit is what another module commits with the ledger in one storage transaction: transfers
// (applied atomically, all or none), record writes, events and timers. If any transfer fails
// or any record's expected version is stale, nothing of the unit is written.
type Unit struct {
	Transfers []TransferInput
	Records   []RecordWrite
	Events    []ModuleEvent
	Timers    []timer.Timer
}

// RecordWrite writes a record, replacing version Expect (0: the record must not exist). The
// written record gets version Expect+1; its Created is kept from the current version when
// there is one.
type RecordWrite struct {
	Record Record
	Expect int64
}

// UnitMax bounds the parts of a unit.
const UnitMax = 64

var recordKindPattern = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,31}$`)

func validateUnit(u *Unit) *apierror.Error {
	if len(u.Transfers) > UnitMax || len(u.Records) > UnitMax || len(u.Events) > UnitMax || len(u.Timers) > UnitMax {
		return apierror.Newf(apierror.BatchTooLarge, "", "a unit holds at most %d transfers, records, events and timers each", UnitMax)
	}
	if len(u.Transfers)+len(u.Records)+len(u.Events)+len(u.Timers) == 0 {
		return apierror.Newf(apierror.InvalidRequest, "", "an empty unit")
	}
	seen := make(map[RecordKey]bool, len(u.Records))
	for i := range u.Records {
		w := &u.Records[i]
		r := &w.Record
		switch {
		case !recordKindPattern.MatchString(r.Kind):
			return apierror.Newf(apierror.InvalidRequest, "records", "record kind %q: want %s", r.Kind, recordKindPattern)
		case r.ID == "" || len(r.ID) > 128 || !utf8.ValidString(r.ID):
			return apierror.Newf(apierror.InvalidRequest, "records", "record id must be 1 to 128 bytes of UTF-8")
		case len(r.Owner) > 128 || len(r.Status) > 64:
			return apierror.Newf(apierror.InvalidRequest, "records", "record owner or status too long")
		case len(r.Data) > RecordDataMax:
			return apierror.Newf(apierror.InvalidRequest, "records", "record data of %d bytes exceeds %d", len(r.Data), RecordDataMax)
		case w.Expect < 0:
			return apierror.Newf(apierror.InvalidRequest, "records", "negative expected version")
		case seen[r.Key()]:
			return apierror.Newf(apierror.InvalidRequest, "records", "record %s/%s written twice in one unit", r.Kind, r.ID)
		}
		seen[r.Key()] = true
	}
	for _, ev := range u.Events {
		if ev.Subject == "" || ev.ID == "" {
			return apierror.Newf(apierror.InvalidRequest, "events", "an event needs a subject and an id")
		}
	}
	for _, t := range u.Timers {
		if err := t.Validate(); err != nil {
			return apierror.Newf(apierror.InvalidRequest, "timers", "%v", err)
		}
	}
	return nil
}

// Commit applies a unit: its transfers atomically, its record writes after checking their
// expected versions, and its events and timers, all in one storage transaction. It returns
// the transfers' results. A failing transfer gives a *BatchError; a stale expected version
// gives apierror.RecordConflict naming the record. Like every engine write, a unit is
// idempotent only as far as its parts are: transfer ids, the records' expected versions,
// event and timer ids.
func (e *Engine) Commit(ctx context.Context, u Unit) ([]TransferResult, error) {
	if err := validateUnit(&u); err != nil {
		return nil, err
	}
	r := &request{transfers: u.Transfers, atomic: true, unit: &u}
	for i := range u.Transfers {
		if err := ValidateTransfer(&u.Transfers[i]); err != nil {
			return nil, &BatchError{Index: i, Err: err}
		}
	}
	if err := e.submit(ctx, r); err != nil {
		return nil, err
	}
	return r.tres, r.err
}

// checkRecords checks the unit's expected versions against the current records (in this
// group, the group in flight, or storage) and, if all match, appends the new versions to the
// batch.
func (e *Engine) checkRecords(u *Unit) *apierror.Error {
	g := e.g
	for i := range u.Records {
		w := &u.Records[i]
		var cur int64
		if r, ok := g.record(w.Record.Key()); ok {
			cur = r.Version
		}
		if cur != w.Expect {
			return apierror.Newf(apierror.RecordConflict, "records", "%s %s is at version %d, not %d", w.Record.Kind, w.Record.ID, cur, w.Expect)
		}
	}
	return nil
}

func (e *Engine) appendUnit(u *Unit) {
	g := e.g
	now := time.Unix(0, int64(g.now)).UTC()
	for i := range u.Records {
		w := &u.Records[i]
		rec := w.Record
		rec.Version = w.Expect + 1
		rec.Updated = now
		var keep RecordKeep
		if old, ok := g.record(rec.Key()); ok {
			rec.Created = old.Created
			if old.Owner == rec.Owner {
				keep |= KeepOwner
			}
			if old.Status == rec.Status {
				keep |= KeepStatus
			}
		} else if rec.Created.IsZero() {
			rec.Created = now
		}
		rec.Data = append([]byte(nil), rec.Data...)
		cp := rec
		if prev := g.records[rec.Key()]; prev != nil {
			// Written earlier in this group: the batch keeps only the latest version, which
			// keeps a field of storage's only if the earlier version did.
			for j, b := range g.batch.Records {
				if b == prev {
					g.batch.Records[j] = &cp
					g.batch.Keep[j] &= keep
				}
			}
		} else {
			g.batch.Records = append(g.batch.Records, &cp)
			g.batch.Keep = append(g.batch.Keep, keep)
		}
		g.records[rec.Key()] = &cp
		w.Record = cp // the caller sees what was written
		e.recCache[rec.Key()] = headOf(&cp)
	}
	g.moduleEvents = append(g.moduleEvents, u.Events...)
	g.batch.Timers = append(g.batch.Timers, u.Timers...)
}

// recordHead is what the writer needs of a record's latest version: its version (to check
// the next write's expected one), its creation time (which the next version keeps), its
// owner and status (a next version with the same ones leaves their index entries alone).
// The writer's cache holds heads by value rather than *Record copies: up to RecordCacheMax
// of them, and an object each was as much for the collector to mark (21 of 65 MB of live
// heap after 90,000 payments, BENCHMARKS.md "Payments (issue 4)").
type recordHead struct {
	Version       int64
	Created       time.Time
	Owner, Status string
}

func headOf(r *Record) recordHead {
	return recordHead{Version: r.Version, Created: r.Created, Owner: r.Owner, Status: r.Status}
}

// record returns the latest version of a record the group knows: written in this group,
// else loaded (from the group in flight or storage). ok is false for a record that does not
// exist.
func (g *group) record(k RecordKey) (h recordHead, ok bool) {
	if r := g.records[k]; r != nil {
		return headOf(r), true
	}
	h, ok = g.loadedRecords[k]
	return h, ok
}

// String names a record for logs.
func (k RecordKey) String() string { return fmt.Sprintf("%s/%s", k.Kind, k.ID) }

// loadRecords brings the current versions of the records the group's units write into
// g.loadedRecords: from the group in flight (not in storage yet) or from storage.
func (e *Engine) loadRecords(ctx context.Context) error {
	g := e.g
	if len(g.recKeys) == 0 {
		return nil
	}
	// The versions the writer wrote or loaded are cached (e.recCache, which is dropped when
	// a commit fails): only records it has not seen lately are read from storage.
	var keys []RecordKey
	p := e.prev
	for _, k := range g.recKeys {
		if p != nil {
			if r := p.records[k]; r != nil {
				g.loadedRecords[k] = headOf(r)
				continue
			}
		}
		if h, ok := e.recCache[k]; ok {
			g.loadedRecords[k] = h
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil
	}
	recs, err := e.store.LoadRecords(ctx, keys)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if _, ok := g.loadedRecords[r.Key()]; !ok {
			h := headOf(r)
			g.loadedRecords[r.Key()] = h
			e.recCache[r.Key()] = h
		}
	}
	return nil
}
