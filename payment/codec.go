package payment

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/jsonw"
)

// The stored form of a payment record. A payment is written three times on its way to a
// final state (accepted; the attempt written ahead of the bank call; the outcome), so its
// record is a compact binary form written without reflection rather than JSON: a format byte
// (paymentFormat1), then the fields in a fixed order — strings as a uvarint length and their
// bytes, integers as varints, times as varint Unix seconds and uvarint nanoseconds (read back
// in UTC), the metadata as a count and sorted key/value pairs, the attempts as a count and
// their fields. Records written before it are JSON objects; they start with '{', which no
// format byte is, and are still read (decodePayment).
//
// The bus and webhook payload of a payment event stays JSON: appendPaymentJSON writes the
// bytes encoding/json would, without reflection.

// paymentFormat1 is the first byte of the binary stored form of a payment.
const paymentFormat1 = 1

// paymentRecord is the ledger record of p in its stored form.
func paymentRecord(p *Payment) ledger.Record {
	return ledger.Record{Kind: KindPayment, ID: p.ID, Owner: p.MerchantID, Status: string(p.Status), Data: encodePayment(p)}
}

// encodePayment returns p's stored form.
func encodePayment(p *Payment) []byte {
	n := 64 + len(p.ID) + len(p.MerchantID) + len(p.Currency) + len(p.CardID) + len(p.Description) + len(p.Status) +
		len(p.FailureCode) + len(p.ReqHash)
	for k, v := range p.Metadata {
		n += 4 + len(k) + len(v)
	}
	for i := range p.Attempts {
		a := &p.Attempts[i]
		n += 32 + len(a.Channel) + len(a.Bank) + len(a.BankID) + len(a.Status) + len(a.Code) + len(a.RawCode) + len(a.ChannelRef)
	}
	b := make([]byte, 0, n)
	b = append(b, paymentFormat1)
	b = appendStr(b, p.ID)
	b = appendStr(b, p.MerchantID)
	b = binary.AppendVarint(b, p.Amount)
	b = appendStr(b, p.Currency)
	b = appendStr(b, p.CardID)
	b = appendStr(b, p.Description)
	b = binary.AppendUvarint(b, uint64(len(p.Metadata)))
	if len(p.Metadata) > 0 {
		for _, k := range sortedKeys(p.Metadata) {
			b = appendStr(b, k)
			b = appendStr(b, p.Metadata[k])
		}
	}
	b = appendStr(b, string(p.Status))
	b = appendStr(b, p.FailureCode)
	b = binary.AppendVarint(b, p.Fee)
	b = binary.AppendVarint(b, p.Refunded)
	b = binary.AppendVarint(b, p.RefundPending)
	b = binary.AppendUvarint(b, uint64(len(p.Attempts)))
	for i := range p.Attempts {
		a := &p.Attempts[i]
		b = binary.AppendVarint(b, int64(a.N))
		b = appendStr(b, a.Channel)
		b = appendStr(b, a.Bank)
		b = appendStr(b, a.BankID)
		b = appendStr(b, a.Status)
		b = appendStr(b, a.Code)
		b = appendStr(b, a.RawCode)
		b = appendStr(b, a.ChannelRef)
		b = appendTime(b, a.At)
	}
	b = appendTime(b, p.Created)
	b = appendTime(b, p.Updated)
	b = appendStr(b, p.ReqHash)
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

var errBadPayment = errors.New("malformed payment record")

// decodePayment reads a stored payment, in the binary form or the JSON of older records. The
// metadata and attempts of a binary record are never nil (as from the JSON of a payment
// CreatePayment wrote).
func decodePayment(data []byte, p *Payment) error {
	if len(data) > 0 && data[0] == '{' {
		*p = Payment{}
		return json.Unmarshal(data, p)
	}
	if len(data) == 0 || data[0] != paymentFormat1 {
		return errBadPayment
	}
	// One string for the whole record: the fields are slices of it, not an allocation each.
	// The id, merchant id and status outlive the payment (the ledger's record cache keeps
	// them with the record's key): they get strings of their own, so as not to keep the
	// whole record's alive.
	r := reader{s: string(data[1:])}
	*p = Payment{}
	p.ID = strings.Clone(r.str())
	p.MerchantID = strings.Clone(r.str())
	p.Amount = r.varint()
	p.Currency = r.str()
	p.CardID = r.str()
	p.Description = r.str()
	n := r.count(2)
	p.Metadata = make(map[string]string, n)
	for range n {
		k := r.str()
		p.Metadata[k] = r.str()
	}
	p.Status = status(r.str())
	p.FailureCode = r.str()
	p.Fee = r.varint()
	p.Refunded = r.varint()
	p.RefundPending = r.varint()
	n = r.count(10)
	p.Attempts = make([]Attempt, n)
	for i := range p.Attempts {
		a := &p.Attempts[i]
		a.N = int(r.varint())
		a.Channel = r.str()
		a.Bank = r.str()
		a.BankID = r.str()
		a.Status = r.str()
		a.Code = r.str()
		a.RawCode = r.str()
		a.ChannelRef = r.str()
		a.At = r.time()
	}
	p.Created = r.time()
	p.Updated = r.time()
	p.ReqHash = r.str()
	if r.bad || r.i != len(r.s) {
		*p = Payment{}
		return errBadPayment
	}
	return nil
}

// status returns st as one of the Status constants when it is one (no string of its own).
func status(st string) Status {
	for _, c := range []Status{StatusProcessing, StatusSucceeded, StatusFailed, StatusClosed} {
		if st == string(c) {
			return c
		}
	}
	return Status(strings.Clone(st))
}

// reader reads the binary form; past the first malformed field every read gives zero and
// bad is set.
type reader struct {
	s   string
	i   int
	bad bool
}

func (r *reader) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.i >= len(r.s) {
			break
		}
		c := r.s[r.i]
		r.i++
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.bad = true
	r.i = len(r.s)
	return 0
}

func (r *reader) varint() int64 {
	u := r.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (r *reader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.s)-r.i) {
		r.bad = true
		r.i = len(r.s)
		return ""
	}
	s := r.s[r.i : r.i+int(n)]
	r.i += int(n)
	return s
}

// count reads a count of items of at least min bytes each, bounded by what is left.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64((len(r.s)-r.i)/min) {
		r.bad = true
		r.i = len(r.s)
		return 0
	}
	return int(n)
}

func (r *reader) time() time.Time {
	sec := r.varint()
	ns := r.uvarint()
	if ns >= 1e9 {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

// --- JSON without reflection ------------------------------------------------------------------

// appendPaymentJSON appends the JSON of p, byte for byte as encoding/json writes it.
func appendPaymentJSON(b []byte, p *Payment) []byte {
	b = append(b, `{"id":`...)
	b = jsonw.AppendString(b, p.ID)
	b = append(b, `,"merchant_id":`...)
	b = jsonw.AppendString(b, p.MerchantID)
	b = append(b, `,"amount":`...)
	b = strconv.AppendInt(b, p.Amount, 10)
	b = append(b, `,"currency":`...)
	b = jsonw.AppendString(b, p.Currency)
	b = append(b, `,"card_id":`...)
	b = jsonw.AppendString(b, p.CardID)
	if p.Description != "" {
		b = append(b, `,"description":`...)
		b = jsonw.AppendString(b, p.Description)
	}
	b = append(b, `,"metadata":`...)
	b = appendJSONStringMap(b, p.Metadata)
	b = append(b, `,"status":`...)
	b = jsonw.AppendString(b, string(p.Status))
	if p.FailureCode != "" {
		b = append(b, `,"failure_code":`...)
		b = jsonw.AppendString(b, p.FailureCode)
	}
	b = append(b, `,"fee":`...)
	b = strconv.AppendInt(b, p.Fee, 10)
	b = append(b, `,"amount_refunded":`...)
	b = strconv.AppendInt(b, p.Refunded, 10)
	b = append(b, `,"amount_refund_pending":`...)
	b = strconv.AppendInt(b, p.RefundPending, 10)
	b = append(b, `,"attempts":`...)
	if p.Attempts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range p.Attempts {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAttemptJSON(b, &p.Attempts[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"created":`...)
	b = appendJSONTime(b, p.Created)
	b = append(b, `,"updated":`...)
	b = appendJSONTime(b, p.Updated)
	if p.ReqHash != "" {
		b = append(b, `,"req_hash":`...)
		b = jsonw.AppendString(b, p.ReqHash)
	}
	return append(b, '}')
}

func appendAttemptJSON(b []byte, a *Attempt) []byte {
	b = append(b, `{"n":`...)
	b = strconv.AppendInt(b, int64(a.N), 10)
	b = append(b, `,"channel":`...)
	b = jsonw.AppendString(b, a.Channel)
	if a.Bank != "" {
		b = append(b, `,"bank":`...)
		b = jsonw.AppendString(b, a.Bank)
	}
	b = append(b, `,"bank_id":`...)
	b = jsonw.AppendString(b, a.BankID)
	b = append(b, `,"status":`...)
	b = jsonw.AppendString(b, a.Status)
	if a.Code != "" {
		b = append(b, `,"code":`...)
		b = jsonw.AppendString(b, a.Code)
	}
	if a.RawCode != "" {
		b = append(b, `,"raw_code":`...)
		b = jsonw.AppendString(b, a.RawCode)
	}
	if a.ChannelRef != "" {
		b = append(b, `,"channel_ref":`...)
		b = jsonw.AppendString(b, a.ChannelRef)
	}
	b = append(b, `,"at":`...)
	b = appendJSONTime(b, a.At)
	return append(b, '}')
}

// appendPaymentEventJSON appends the JSON of the event of payment p (as eventPayload with p
// as its data).
func appendPaymentEventJSON(b []byte, id, typ string, at time.Time, p *Payment) []byte {
	b = append(b, `{"id":`...)
	b = jsonw.AppendString(b, id)
	b = append(b, `,"type":`...)
	b = jsonw.AppendString(b, typ)
	b = append(b, `,"created":`...)
	b = appendJSONTime(b, at)
	b = append(b, `,"data":`...)
	b = appendPaymentJSON(b, p)
	return append(b, '}')
}

// appendJSONStringMap appends m as encoding/json does: keys sorted, null for a nil map.
func appendJSONStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	if len(m) > 0 {
		for i, k := range sortedKeys(m) {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonw.AppendString(b, k)
			b = append(b, ':')
			b = jsonw.AppendString(b, m[k])
		}
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds). A
// year outside 0–9999, which MarshalJSON refuses, cannot occur in a payment.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
