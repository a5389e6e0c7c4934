package service

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// The loan record's compact encoding. The end-of-day batch reads and rewrites every loan
// that changes on a date, and JSON decoding and encoding of the schedule and items was most
// of its time, so a loan is stored in a binary form (the API still shows it as JSON):
//
//	byte 0       loanCodecV4 (loanCodecV3: the terms as JSON; loanCodecV2: also without
//	             penalty pooled; loanCodecV1: also without recovered)
//	bytes 1–4    next date, big endian (year·512 + month·32 + day; 0 for none)
//	bytes 5–12   owed (int64, big endian)
//	bytes 13–20  owed principal (int64, big endian)
//	then         penalty pooled (a varint; V3 on), and the other fields as varints and
//	             length-prefixed strings, in the order of encodeLoan; the terms are
//	             length-prefixed too, in encodeTerms's form (V4; JSON before)
//
// The header, with the penalty pooled right after it, lets the batch skip a loan and the
// reconciler sum one without decoding the rest. Records written as JSON by earlier versions (starting with '{') are still read.
const (
	loanCodecV1     = 0xB1
	loanCodecV2     = 0xB2 // adds recovered after written_off_unearned
	loanCodecV3     = 0xB3 // adds penalty pooled after the header
	loanCodecV4     = 0xB4 // the terms in encodeTerms's form instead of JSON (a third of the record)
	loanHeaderBytes = 21
)

// compactLoan reports whether data is in the compact encoding (either version).
func compactLoan(data []byte) bool {
	return len(data) >= loanHeaderBytes && data[0] >= loanCodecV1 && data[0] <= loanCodecV4
}

func packDate(d credit.Date) uint32 {
	if d.IsZero() {
		return 0
	}
	return uint32(d.Year())<<9 | uint32(d.Month())<<5 | uint32(d.Day())
}

func unpackDate(v uint64) (credit.Date, bool) {
	if v == 0 {
		return credit.Date{}, true
	}
	return credit.NewDate(int(v>>9), time.Month(v>>5&15), int(v&31))
}

// encodeLoan is the loan's record data.
func encodeLoan(l *Loan) []byte { return encodeLoanAs(l, loanCodecV4) }

// encodeLoanAs encodes the loan in version 4, or in version 3 (the terms as JSON: for the
// tests of reading records written by earlier versions). A loan whose terms are kept encoded
// (termsRaw) is written in version 4 only: its raw terms are in that form.
func encodeLoanAs(l *Loan, version byte) []byte {
	b := make([]byte, loanHeaderBytes, 128+24*(len(l.Schedule)+len(l.Items)))
	b[0] = version
	binary.BigEndian.PutUint32(b[1:], packDate(l.Next))
	binary.BigEndian.PutUint64(b[5:], uint64(l.Outstanding))
	binary.BigEndian.PutUint64(b[13:], uint64(l.OutstandingPrincipal))
	str := func(s string) { b = binary.AppendUvarint(b, uint64(len(s))); b = append(b, s...) }
	num := func(v int64) { b = binary.AppendVarint(b, v) }
	num(l.PenaltyPooled)
	date := func(d credit.Date) { b = binary.AppendUvarint(b, uint64(packDate(d))) }
	for _, s := range []string{l.ID, l.Account, l.Merchant, l.Product, l.Currency, l.Plan, l.Status, l.Hash, string(l.Bucket)} {
		str(s)
	}
	for _, v := range []int64{l.Amount, l.Refunded, int64(l.Earned), l.PenaltyTotal, int64(l.DPD), l.WrittenOff, l.WrittenOffUnearned, l.Recovered} {
		num(v)
	}
	date(l.Date)
	date(l.LastEOD)
	date(l.WrittenOffOn)
	switch {
	case l.Terms == nil:
		str(l.termsRaw)
	case version == loanCodecV3:
		str(string(encode(l.Terms)))
	default:
		b = appendTerms(b, l.Terms)
	}
	num(int64(len(l.Schedule)))
	for _, in := range l.Schedule {
		num(int64(in.Period))
		date(in.DueDate)
		for _, v := range []int64{in.Principal, in.Interest, in.Fee, in.Total, in.RemainingPrincipal} {
			num(v)
		}
	}
	num(int64(len(l.Items)))
	for _, it := range l.Items {
		num(int64(it.Period))
		date(it.DueDate)
		for _, v := range []int64{it.Penalty, it.Fee, it.Interest, it.Principal} {
			num(v)
		}
	}
	for _, ss := range [][]credit.Split{l.Waived, l.RefundCuts} {
		num(int64(len(ss)))
		for _, s := range ss {
			num(int64(s.Period))
			str(string(s.Component))
			num(s.Amount)
		}
	}
	return b
}

// appendTerms appends the terms, length-prefixed: principal and periods as varints, the
// method and the two rates (as their decimal text, as in JSON) as length-prefixed strings,
// and the start date. About 20 bytes where their JSON took about 110.
func appendTerms(b []byte, t *credit.Terms) []byte {
	var tb []byte
	tb = binary.AppendVarint(tb, t.Principal)
	tb = binary.AppendVarint(tb, int64(t.Periods))
	for _, s := range []string{string(t.Method), t.AnnualRate.String(), t.FeeRate.String()} {
		tb = binary.AppendUvarint(tb, uint64(len(s)))
		tb = append(tb, s...)
	}
	tb = binary.AppendUvarint(tb, uint64(packDate(t.Start)))
	b = binary.AppendUvarint(b, uint64(len(tb)))
	return append(b, tb...)
}

// decodeTerms reads appendTerms's form (without its length).
func decodeTerms(s string) (*credit.Terms, error) {
	d := &loanDecoder{b: []byte(s)}
	t := &credit.Terms{Principal: d.num(), Periods: int(d.num()), Method: credit.Method(d.str())}
	for _, r := range []*money.Rate{&t.AnnualRate, &t.FeeRate} {
		if text := d.str(); d.err == nil {
			if *r, d.err = money.ParseRate(text); d.err != nil {
				return nil, d.err
			}
		}
	}
	t.Start = d.date()
	if d.err == nil && len(d.b) != 0 {
		d.err = errLoanData
	}
	return t, d.err
}

var errLoanData = errors.New("truncated or malformed")

// loanDecoder reads encodeLoan's fields in order; the first error sticks.
type loanDecoder struct {
	b   []byte
	err error
}

func (d *loanDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errLoanData
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *loanDecoder) num() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errLoanData
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a slice length, bounded by what the rest of the data could hold.
func (d *loanDecoder) count() int {
	n := d.num()
	if n < 0 || n > int64(len(d.b)) {
		d.err, n = errLoanData, 0
	}
	return int(n)
}

func (d *loanDecoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errLoanData
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *loanDecoder) date() credit.Date {
	v := d.uvarint()
	t, ok := unpackDate(v)
	if !ok && d.err == nil {
		d.err = errLoanData
	}
	return t
}

// decodeLoanData decodes a loan record's data (either encoding) into l.
func decodeLoanData(data []byte, l *Loan) error { return decodeLoanInto(data, l, false) }

// decodeLoanInto decodes a loan record's data into l. With rawTerms, the terms of a compact
// record are kept encoded (termsRaw) rather than decoded: the end-of-day batch never reads
// them, and decoding their JSON was a tenth of its work per loan.
func decodeLoanInto(data []byte, l *Loan, rawTerms bool) error {
	if len(data) > 0 && data[0] == '{' {
		return json.Unmarshal(data, l)
	}
	if !compactLoan(data) {
		return errLoanData
	}
	var ok bool
	if l.Next, ok = unpackDate(uint64(binary.BigEndian.Uint32(data[1:]))); !ok {
		return errLoanData
	}
	l.Outstanding = int64(binary.BigEndian.Uint64(data[5:]))
	l.OutstandingPrincipal = int64(binary.BigEndian.Uint64(data[13:]))
	d := &loanDecoder{b: data[loanHeaderBytes:]}
	if data[0] >= loanCodecV3 {
		l.PenaltyPooled = d.num()
	}
	for _, p := range []*string{&l.ID, &l.Account, &l.Merchant, &l.Product, &l.Currency, &l.Plan, &l.Status, &l.Hash} {
		*p = d.str()
	}
	l.Bucket = credit.Bucket(d.str())
	l.Amount, l.Refunded = d.num(), d.num()
	l.Earned = int(d.num())
	l.PenaltyTotal = d.num()
	l.DPD = int(d.num())
	l.WrittenOff, l.WrittenOffUnearned = d.num(), d.num()
	if data[0] != loanCodecV1 {
		l.Recovered = d.num()
	}
	l.Date, l.LastEOD, l.WrittenOffOn = d.date(), d.date(), d.date()
	if terms := d.str(); terms != "" && d.err == nil && rawTerms && data[0] == loanCodecV4 {
		l.termsRaw = terms
	} else if terms != "" && d.err == nil && data[0] == loanCodecV4 {
		if l.Terms, d.err = decodeTerms(terms); d.err != nil {
			return d.err
		}
	} else if terms != "" && d.err == nil {
		// JSON terms of an earlier version are decoded even for the batch, so that the
		// record is written back in version 4.
		l.Terms = new(credit.Terms)
		if err := json.Unmarshal([]byte(terms), l.Terms); err != nil {
			return err
		}
	}
	l.Schedule = make([]credit.Installment, d.count())
	for i := range l.Schedule {
		in := &l.Schedule[i]
		in.Period, in.DueDate = int(d.num()), d.date()
		in.Principal, in.Interest, in.Fee, in.Total, in.RemainingPrincipal = d.num(), d.num(), d.num(), d.num(), d.num()
	}
	l.Items = make([]credit.Item, d.count())
	for i := range l.Items {
		it := &l.Items[i]
		it.Period, it.DueDate = int(d.num()), d.date()
		it.Penalty, it.Fee, it.Interest, it.Principal = d.num(), d.num(), d.num(), d.num()
	}
	for _, p := range []*[]credit.Split{&l.Waived, &l.RefundCuts} {
		ss := make([]credit.Split, d.count())
		for i := range ss {
			ss[i] = credit.Split{Period: int(d.num()), Component: credit.Component(d.str()), Amount: d.num()}
		}
		*p = ss
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errLoanData
	}
	return d.err
}

// decodeLoan decodes a loan record.
func decodeLoan(r *ledger.Record) (*Loan, error) { return decodeLoanRecord(r, false) }

// decodeLoanRecord decodes a loan record, its terms kept encoded if rawTerms (see
// decodeLoanInto).
func decodeLoanRecord(r *ledger.Record, rawTerms bool) (*Loan, error) {
	var l Loan
	if err := decodeLoanInto(r.Data, &l, rawTerms); err != nil {
		return nil, fmt.Errorf("credit: decode %s %s: %w", r.Kind, r.ID, err)
	}
	l.Version = r.Version
	l.prevBucket = l.Bucket
	return &l, nil
}

// loanNext reads a loan record's Next without decoding the rest. ok is false when the data
// is not in the compact encoding (or is a JSON record not starting with "next"), and the
// caller decodes it.
func loanNext(data []byte) (credit.Date, bool) {
	if compactLoan(data) {
		return unpackDate(uint64(binary.BigEndian.Uint32(data[1:])))
	}
	return loanNextJSON(data)
}

// loanOwed reads what a loan record owes in all and of principal, and its penalty pooled,
// without decoding the rest. ok is false when the caller must decode the record.
func loanOwed(data []byte) (owed, principal, pooled int64, ok bool) {
	if !compactLoan(data) {
		owed, principal, ok = loanOwedJSON(data)
		return owed, principal, 0, ok // JSON records predate the penalty receivable
	}
	if data[0] >= loanCodecV3 {
		var n int
		if pooled, n = binary.Varint(data[loanHeaderBytes:]); n <= 0 {
			return 0, 0, 0, false
		}
	}
	return int64(binary.BigEndian.Uint64(data[5:])), int64(binary.BigEndian.Uint64(data[13:])), pooled, true
}
