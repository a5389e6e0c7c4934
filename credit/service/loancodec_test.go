package service

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// TestLoanCodec round-trips a loan with every field set through the compact encoding, reads
// its header without decoding, still reads the JSON records of earlier versions, and refuses
// every truncation of the data.
func TestLoanCodec(t *testing.T) {
	terms := credit.Terms{Principal: 299_900, Periods: 3, Method: credit.FlatFee, FeeRate: money.MustRate("0.005"), Start: credit.MustDate("2026-01-31")}
	s, err := credit.NewSchedule(terms)
	if err != nil {
		t.Fatal(err)
	}
	l := &Loan{ID: "p1", Account: "ca_c1", Merchant: "m1", Product: "baitiao", Currency: "CNY", Plan: PlanInstallments,
		Amount: 299_900, Date: terms.Start, Terms: &terms, Schedule: s.Installments, Items: credit.ItemsFromSchedule(s),
		Waived: []credit.Split{{Period: 3, Component: credit.ComponentFee, Amount: 1_500}}, RefundCuts: []credit.Split{{Period: 2, Component: credit.ComponentInterest, Amount: 7}},
		Refunded: 12, Earned: 1, PenaltyTotal: 51, DPD: 5, Bucket: credit.BucketM1, LastEOD: credit.MustDate("2026-03-05"),
		WrittenOff: 3, WrittenOffUnearned: 4, WrittenOffOn: credit.MustDate("2999-12-31"), Recovered: 5, PenaltyPooled: 40, Hash: "abc", Version: 7}
	l.Items[0].Penalty = 51
	l.refresh()
	data := encodeLoan(l)
	got, err := decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	l.prevBucket = l.Bucket
	if !reflect.DeepEqual(got, l) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, l)
	}
	// Decoded for the end-of-day batch, the terms stay encoded, and are written back as
	// they were.
	raw, err := decodeLoanRecord(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: data}, true)
	if err != nil || raw.Terms != nil || raw.termsRaw == "" {
		t.Fatalf("terms kept encoded: %+v %v", raw, err)
	}
	if again := encodeLoan(raw); string(again) != string(data) {
		t.Fatalf("written back with its terms kept encoded: %x, want %x", again, data)
	}
	if next, ok := loanNext(data); !ok || next != l.Next {
		t.Errorf("loanNext %s %v, want %s", next, ok, l.Next)
	}
	if owed, p, pooled, ok := loanOwed(data); !ok || owed != l.Owed() || p != l.OwedPrincipal() || pooled != 40 {
		t.Errorf("loanOwed %d %d %d %v", owed, p, pooled, ok)
	}
	// JSON records of earlier versions.
	old, err := decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: encode(l)})
	if err != nil || !reflect.DeepEqual(old, l) {
		t.Fatalf("JSON record: %v\n got %+v", err, old)
	}
	if next, ok := loanNext(encode(l)); !ok || next != l.Next {
		t.Errorf("loanNext of JSON: %s %v", next, ok)
	}
	for n := range len(data) {
		if _, err := decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Data: data[:n]}); err == nil {
			t.Fatalf("decoded %d of %d bytes", n, len(data))
		}
	}
	if _, err := decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Data: append(data, 0)}); err == nil {
		t.Error("decoded trailing data")
	}
	// Terms of every method and rate round-trip.
	for _, tt := range []credit.Terms{terms, {Principal: 1, Periods: 24, Method: credit.Annuity, AnnualRate: money.MustRate("0.1234"), Start: credit.MustDate("1900-02-28")},
		{Principal: 9_999_999, Periods: 6, Method: credit.EqualPrincipal, AnnualRate: money.MustRate("36"), Start: credit.MustDate("2999-12-31")}} {
		b := appendTerms(nil, &tt)
		n, k := binary.Uvarint(b)
		if got, err := decodeTerms(string(b[k:])); err != nil || int(n) != len(b)-k || !reflect.DeepEqual(*got, tt) {
			t.Errorf("terms %+v: %+v %v", tt, got, err)
		}
	}
	// Records of the third compact version, with the terms as JSON, are still read; the
	// batch (terms kept encoded) decodes their terms, to write the record in version 4.
	v3 := encodeLoanAs(l, loanCodecV3)
	if len(v3) < len(data)+60 {
		t.Errorf("version 4 takes %d bytes, version 3 %d", len(data), len(v3))
	}
	got, err = decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: v3})
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("version 3 record: %v\n got %+v\nwant %+v", err, got, l)
	}
	raw, err = decodeLoanRecord(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: v3}, true)
	if err != nil || raw.Terms == nil || string(encodeLoan(raw)) != string(data) {
		t.Fatalf("version 3 record read by the batch: %+v %v", raw, err)
	}
	for n := range len(v3) {
		if _, err := decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Data: v3[:n]}); err == nil {
			t.Fatalf("decoded %d of %d bytes of version 3", n, len(v3))
		}
	}
	// Records of the second compact version, without penalty pooled, are still read.
	l.PenaltyPooled = 0
	v2 := v2Loan(t, encodeLoanAs(l, loanCodecV3))
	got, err = decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: v2})
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("version 2 record: %v\n got %+v\nwant %+v", err, got, l)
	}
	if owed, p, pooled, ok := loanOwed(v2); !ok || owed != l.Owed() || p != l.OwedPrincipal() || pooled != 0 {
		t.Errorf("loanOwed of version 2: %d %d %d %v", owed, p, pooled, ok)
	}
	// Records of the first compact version, without recovered either, are still read.
	l.Recovered = 0
	v1 := v1Loan(t, v2Loan(t, encodeLoanAs(l, loanCodecV3)))
	got, err = decodeLoan(&ledger.Record{Kind: KindLoan, ID: "p1", Version: 7, Data: v1})
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("version 1 record: %v\n got %+v\nwant %+v", err, got, l)
	}
	if next, ok := loanNext(v1); !ok || next != l.Next {
		t.Errorf("loanNext of version 1: %s %v", next, ok)
	}
	if owed, p, pooled, ok := loanOwed(v1); !ok || owed != l.Owed() || p != l.OwedPrincipal() || pooled != 0 {
		t.Errorf("loanOwed of version 1: %d %d %d %v", owed, p, pooled, ok)
	}
}

// v2Loan rewrites a version 3 record with penalty pooled = 0 as version 2 wrote it: the same
// without that varint (one zero byte after the header).
func v2Loan(t *testing.T, v3 []byte) []byte {
	t.Helper()
	if v3[0] != loanCodecV3 || v3[loanHeaderBytes] != 0 {
		t.Fatal("penalty pooled is not a zero varint after the header")
	}
	return append(append([]byte{loanCodecV2}, v3[1:loanHeaderBytes]...), v3[loanHeaderBytes+1:]...)
}

// v1Loan rewrites a version 2 record with recovered = 0 as version 1 wrote it: the same
// without that varint (one zero byte after written_off_unearned).
func v1Loan(t *testing.T, v2 []byte) []byte {
	t.Helper()
	d := &loanDecoder{b: v2[loanHeaderBytes:]}
	for range 9 { // id … bucket
		d.str()
	}
	for range 7 { // amount … written_off_unearned
		d.num()
	}
	at := len(v2) - len(d.b)
	if d.err != nil || v2[at] != 0 {
		t.Fatalf("recovered is not a zero varint at %d", at)
	}
	v1 := append(append([]byte{loanCodecV1}, v2[1:at]...), v2[at+1:]...)
	return v1
}
