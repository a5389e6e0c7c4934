package service

import (
	"fmt"
	"testing"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// BenchmarkEODPastDue is the end-of-day batch's work in memory for one page of 1,000 loans
// on the past-due day of `fincore bench eod` (2026-02-20, 5 days caught up): decoding each
// record, advance (penalties, ageing, the stage-change event) and the units' ledger writes
// with their records, without storage. Per op: one page.
func BenchmarkEODPastDue(b *testing.B) {
	p := &credit.ExampleProducts()[0]
	recs := make([]*ledger.Record, 1000)
	for i := range recs {
		terms := credit.Terms{Principal: int64(300_000 + i), Periods: 3, Method: credit.FlatFee, FeeRate: money.MustRate("0.005"),
			Start: credit.MustDate("2026-01-15")}
		s, err := credit.NewSchedule(terms)
		if err != nil {
			b.Fatal(err)
		}
		l := &Loan{ID: fmt.Sprintf("bp%d", i), Account: fmt.Sprintf("ca_bc%d", i), Merchant: "bm1", Product: p.ID, Currency: "CNY",
			Plan: PlanInstallments, Amount: terms.Principal, Date: terms.Start, Terms: &terms, Schedule: s.Installments,
			Items: credit.ItemsFromSchedule(s), Earned: 1, Bucket: credit.BucketCurrent, LastEOD: credit.MustDate("2026-02-15"), Hash: "h"}
		l.refresh()
		recs[i] = &ledger.Record{Kind: KindLoan, ID: l.ID, Owner: l.Account, Status: l.Status, Version: 3, Data: encodeLoan(l)}
	}
	d := credit.MustDate("2026-02-20")
	b.ReportAllocs()
	for b.Loop() {
		u := newEODUnit(d)
		for _, r := range recs {
			l, err := decodeLoanRecord(r, true)
			if err != nil {
				b.Fatal(err)
			}
			res, changed := advance(l, p, d)
			if !changed || res.event == nil || res.penalty == 0 {
				b.Fatalf("%s: not charged and aged: %+v", l.ID, res)
			}
			if !u.fits(&res) {
				u.unit()
				u = newEODUnit(d)
			}
			u.add(l, res)
		}
		u.unit()
	}
}
