package ledger

import (
	"strconv"

	"github.com/fincore/fincore/platform/jsonw"
)

// Event is one message for the transactional outbox: Store.Commit writes a Batch's events in
// the same storage transaction as its records, and the outbox relay publishes them to the bus
// in commit order, with ID as the de-duplication id. Payload may share memory with other
// events of the batch; a store must copy it if it keeps it after Commit returns.
type Event struct {
	Subject string
	ID      string
	Payload []byte
}

// Event subjects. A plain or pending transfer is "created"; the record that posts, voids or
// expires a pending transfer is "posted", "voided" or "expired" (docs/events.md).
const (
	SubjectAccountCreated  = "ledger.account.created"
	SubjectTransferCreated = "ledger.transfer.created"
	SubjectTransferPosted  = "ledger.transfer.posted"
	SubjectTransferVoided  = "ledger.transfer.voided"
	SubjectTransferExpired = "ledger.transfer.expired"
)

// EventSubjects are the subjects of the ledger's own events, for checking that the bus has a
// stream for each (the outbox relay cannot publish past an event no stream captures).
var EventSubjects = []string{SubjectAccountCreated, SubjectTransferCreated, SubjectTransferPosted, SubjectTransferVoided,
	SubjectTransferExpired}

// EventSchemaVersion is the version of the events' JSON shape; it changes only when a field
// changes meaning or goes away (new fields may appear without a new version).
const EventSchemaVersion = 1

// EventID is the id of the event announcing the journal record or account created at ts.
// Ledger timestamps are unique across accounts and records, so the id is unique, and it is
// stable: the same record always yields the same id, which makes re-publishing harmless.
func EventID(ts Timestamp) string {
	var b [24]byte
	return string(appendEventID(b[:0], ts))
}

func appendEventID(b []byte, ts Timestamp) []byte {
	b = append(b, "evt_"...)
	// Zero-padded to 19 digits, so that string order is time order.
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(ts), 10)
	for i := len(s); i < 19; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// TransferSubject is the subject of the event announcing record t.
func TransferSubject(t *Transfer) string {
	if t.PendingID == "" {
		return SubjectTransferCreated
	}
	switch t.Status {
	case StatusPosted:
		return SubjectTransferPosted
	case StatusVoided:
		return SubjectTransferVoided
	default:
		return SubjectTransferExpired
	}
}

// eventBytesEstimate sizes the encoding buffer of a batch's events: a typical transfer event
// without metadata is about 450 bytes.
const eventBytesEstimate = 512

// encodeEvents fills b.Events with one event per new account and journal record, in
// timestamp order (the order they were applied), encoding the payloads into buf, which it
// returns for reuse. The encoding is hand-written (the same JSON as encoding/json gives for
// Account and Transfer, which is how the API renders them) because it runs for every record
// on the commit path.
func encodeEvents(b *Batch, buf []byte) []byte {
	n := len(b.NewAccounts) + len(b.Transfers)
	b.Events = b.Events[:0]
	if n == 0 {
		return buf
	}
	if cap(buf) < n*eventBytesEstimate {
		buf = make([]byte, 0, n*eventBytesEstimate)
	}
	buf = buf[:0]
	if cap(b.Events) < n {
		b.Events = make([]Event, 0, n)
	}
	ends := make([]int, 0, n) // payload i is buf[ends[i-1]:ends[i]]; slices are cut once buf stops growing
	as, ts := b.NewAccounts, b.Transfers
	for len(as) > 0 || len(ts) > 0 {
		if len(ts) == 0 || (len(as) > 0 && as[0].Timestamp < ts[0].Timestamp) {
			a := as[0]
			as = as[1:]
			var at int
			buf, at = appendEventHead(buf, SubjectAccountCreated, a.Timestamp)
			buf = appendAccountJSON(buf, a, at)
			b.Events = append(b.Events, Event{Subject: SubjectAccountCreated, ID: EventID(a.Timestamp)})
		} else {
			t := ts[0]
			ts = ts[1:]
			subj := TransferSubject(t)
			var at int
			buf, at = appendEventHead(buf, subj, t.Timestamp)
			buf = appendTransferJSON(buf, t, at)
			b.Events = append(b.Events, Event{Subject: subj, ID: EventID(t.Timestamp)})
		}
		buf = append(buf, '}')
		ends = append(ends, len(buf))
	}
	start := 0
	for i := range b.Events {
		b.Events[i].Payload = buf[start:ends[i]:ends[i]]
		start = ends[i]
	}
	return buf
}

// appendEventHead appends the envelope up to "data" and returns where occurred_at's quoted
// value starts: the record's own timestamp is the same, and is copied from there rather than
// formatted twice.
func appendEventHead(b []byte, subj string, ts Timestamp) ([]byte, int) {
	b = append(b, `{"schema_version":1,"type":"`...)
	b = append(b, subj...)
	b = append(b, `","id":"`...)
	b = appendEventID(b, ts)
	b = append(b, `","occurred_at":`...)
	at := len(b)
	b = appendTimestamp(b, ts)
	return append(b, `,"data":`...), at
}

// timestampJSONLen is the length of a quoted Timestamp (int64 nanoseconds span the years 1677
// to 2262, all of four digits).
const timestampJSONLen = len(`"2006-01-02T15:04:05.000000000Z"`)

// appendSameTimestamp appends the quoted timestamp that starts at b[at:].
func appendSameTimestamp(b []byte, at int) []byte {
	return append(b, b[at:at+timestampJSONLen]...)
}

func appendTimestamp(b []byte, ts Timestamp) []byte {
	b = append(b, '"')
	b = ts.Time().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

// appendString appends s as a JSON string exactly as encoding/json writes it: the common case
// (printable ASCII with nothing to escape) directly, anything else through encoding/json.

func appendMetadata(b []byte, m map[string]string) []byte {
	if len(m) == 0 { // as Metadata.MarshalJSON
		return append(b, "{}"...)
	}
	return append(b, EncodeMetadata(m)...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

func appendAccountJSON(b []byte, a *Account, at int) []byte {
	b = append(b, `{"id":`...)
	b = jsonw.AppendString(b, a.ID)
	b = append(b, `,"currency":`...)
	b = jsonw.AppendString(b, a.Currency)
	b = append(b, `,"code":`...)
	b = jsonw.AppendString(b, a.Code)
	b = append(b, `,"flags":{"debits_must_not_exceed_credits":`...)
	b = appendBool(b, a.Flags.DebitsMustNotExceedCredits)
	b = append(b, `,"credits_must_not_exceed_debits":`...)
	b = appendBool(b, a.Flags.CreditsMustNotExceedDebits)
	b = append(b, `},"metadata":`...)
	b = appendMetadata(b, a.Metadata)
	b = append(b, `,"timestamp":`...)
	b = appendSameTimestamp(b, at)
	bal := &a.Balances
	b = append(b, `,"balances":{"debits_pending":`...)
	b = strconv.AppendInt(b, bal.DebitsPending, 10)
	b = append(b, `,"debits_posted":`...)
	b = strconv.AppendInt(b, bal.DebitsPosted, 10)
	b = append(b, `,"credits_pending":`...)
	b = strconv.AppendInt(b, bal.CreditsPending, 10)
	b = append(b, `,"credits_posted":`...)
	b = strconv.AppendInt(b, bal.CreditsPosted, 10)
	return append(b, "}}"...)
}

func appendTransferJSON(b []byte, t *Transfer, at int) []byte {
	b = append(b, `{"id":`...)
	b = jsonw.AppendString(b, t.ID)
	b = append(b, `,"debit_account_id":`...)
	b = jsonw.AppendString(b, t.DebitAccountID)
	b = append(b, `,"credit_account_id":`...)
	b = jsonw.AppendString(b, t.CreditAccountID)
	b = append(b, `,"amount":`...)
	b = strconv.AppendInt(b, t.Amount, 10)
	b = append(b, `,"currency":`...)
	b = jsonw.AppendString(b, t.Currency)
	b = append(b, `,"code":`...)
	b = jsonw.AppendString(b, t.Code)
	b = append(b, `,"pending":`...)
	b = appendBool(b, t.Pending)
	if t.PendingID != "" {
		b = append(b, `,"pending_id":`...)
		b = jsonw.AppendString(b, t.PendingID)
	}
	if t.TimeoutSeconds != 0 {
		b = append(b, `,"timeout_seconds":`...)
		b = strconv.AppendInt(b, t.TimeoutSeconds, 10)
	}
	if t.ExpiresAt != 0 {
		b = append(b, `,"expires_at":`...)
		b = appendTimestamp(b, t.ExpiresAt)
	}
	b = append(b, `,"status":`...)
	b = jsonw.AppendString(b, string(t.Status))
	b = append(b, `,"timestamp":`...)
	b = appendSameTimestamp(b, at)
	b = append(b, `,"metadata":`...)
	b = appendMetadata(b, t.Metadata)
	return append(b, '}')
}
