package postgres

import (
	"encoding/binary"
	"io"
	"time"

	"github.com/fincore/fincore/ledger"
)

// binaryCopy is an io.Reader of rows in PostgreSQL's binary COPY format, encoding them as the
// connection reads, so that a large group streams to the server while it is being encoded.
// It writes big-endian integers and raw text and bytea bytes straight into one buffer, which
// costs a fraction of encoding through pgx's generic, per-value path.
type binaryCopy struct {
	rows   int
	encode func(b []byte, i int) []byte // appends row i: its field count, then its fields
	next   int                          // the next row to encode
	buf    []byte                       // encoded, not yet read
	off    int
	state  uint8 // 0: header not written; 1: writing rows; 2: trailer written
}

// copySignature starts a binary COPY stream; flags and header extension length follow.
const copySignature = "PGCOPY\n\xff\r\n\x00"

func newBinaryCopy(rows int, encode func(b []byte, i int) []byte) *binaryCopy {
	return &binaryCopy{rows: rows, encode: encode, buf: make([]byte, 0, 64<<10)}
}

// Read fills p with the next part of the stream.
func (c *binaryCopy) Read(p []byte) (int, error) {
	for len(c.buf)-c.off < len(p) && c.state < 2 {
		if c.off > 0 {
			c.buf = c.buf[:copy(c.buf, c.buf[c.off:])]
			c.off = 0
		}
		switch {
		case c.state == 0:
			c.buf = append(c.buf, copySignature...)
			c.buf = binary.BigEndian.AppendUint32(c.buf, 0) // flags
			c.buf = binary.BigEndian.AppendUint32(c.buf, 0) // header extension length
			c.state = 1
		case c.next < c.rows:
			c.buf = c.encode(c.buf, c.next)
			c.next++
		default:
			c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff) // trailer: field count -1
			c.state = 2
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	if n == 0 && c.state == 2 {
		return 0, io.EOF
	}
	return n, nil
}

func appendInt8(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendBytea(b []byte, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// sqlCopyAccounts and sqlCopyTransfers name the columns in the order the encoders write them.
const (
	sqlCopyAccounts  = `COPY accounts (id, currency, code, flags, metadata, timestamp, req_hash) FROM STDIN (FORMAT binary)`
	sqlCopyTransfers = `COPY transfers (` + transferCols + `) FROM STDIN (FORMAT binary)`
)

// copyAccounts streams new accounts for sqlCopyAccounts.
func copyAccounts(as []*ledger.Account) *binaryCopy {
	return newBinaryCopy(len(as), func(b []byte, i int) []byte {
		a := as[i]
		b = binary.BigEndian.AppendUint16(b, 7)
		b = appendText(b, a.ID)
		b = appendText(b, a.Currency)
		b = appendText(b, a.Code)
		b = appendInt8(b, a.Flags.Bits())
		b = appendText(b, ledger.EncodeMetadata(a.Metadata))
		b = appendInt8(b, int64(a.Timestamp))
		return appendBytea(b, a.ReqHash)
	})
}

// copyTransfers streams journal records for sqlCopyTransfers.
func copyTransfers(ts []*ledger.Transfer) *binaryCopy {
	return newBinaryCopy(len(ts), func(b []byte, i int) []byte {
		t := ts[i]
		d, c := &t.DebitBalances, &t.CreditBalances
		b = binary.BigEndian.AppendUint16(b, 25)
		b = appendInt8(b, int64(t.Timestamp))
		b = appendText(b, t.ID)
		b = appendText(b, t.DebitAccountID)
		b = appendText(b, t.CreditAccountID)
		b = appendInt8(b, t.Amount)
		b = appendText(b, t.Currency)
		b = appendText(b, t.Code)
		b = appendInt8(b, pendingBit(t))
		b = appendText(b, t.PendingID)
		b = appendInt8(b, t.TimeoutSeconds)
		b = appendInt8(b, int64(t.ExpiresAt))
		b = appendText(b, string(t.Status))
		b = appendText(b, ledger.EncodeMetadata(t.Metadata))
		b = appendInt8(b, t.PendingDelta)
		b = appendInt8(b, t.PostedDelta)
		b = appendInt8(b, d.DebitsPending)
		b = appendInt8(b, d.DebitsPosted)
		b = appendInt8(b, d.CreditsPending)
		b = appendInt8(b, d.CreditsPosted)
		b = appendInt8(b, c.DebitsPending)
		b = appendInt8(b, c.DebitsPosted)
		b = appendInt8(b, c.CreditsPending)
		b = appendInt8(b, c.CreditsPosted)
		b = appendBytea(b, t.ReqHash)
		return appendBytea(b, t.Hash)
	})
}

// sqlCopyEvents names the outbox columns in the order copyEvents writes them; seq comes from
// the identity, in row order.
const sqlCopyEvents = `COPY outbox (subject, msg_id, payload, created_at) FROM STDIN (FORMAT binary)`

// copyEvents streams a batch's events for sqlCopyEvents, created at the commit's wall-clock
// time.
func copyEvents(evs []ledger.Event) *binaryCopy {
	now := time.Now().UnixNano()
	return newBinaryCopy(len(evs), func(b []byte, i int) []byte {
		e := &evs[i]
		b = binary.BigEndian.AppendUint16(b, 4)
		b = appendText(b, e.Subject)
		b = appendText(b, e.ID)
		b = appendBytea(b, e.Payload)
		return appendInt8(b, now)
	})
}

// eventArrays are the parameters of sqlInsertEvents.
func eventArrays(evs []ledger.Event) []any {
	n := len(evs)
	subj, ids, payloads, created := make([]string, n), make([]string, n), make([][]byte, n), make([]int64, n)
	now := time.Now().UnixNano()
	for i := range evs {
		subj[i], ids[i], payloads[i], created[i] = evs[i].Subject, evs[i].ID, evs[i].Payload, now
	}
	return []any{subj, ids, payloads, created}
}
