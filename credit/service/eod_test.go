package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/fincore/fincore/credit"
)

// seedOverdue opens n lines with a pay-later purchase and a 3-installment purchase each, on
// 2026-01-15, and moves the clock to 2026-03-01, when both are past due.
func seedOverdue(t *testing.T, e *env, n int) {
	ctx := context.Background()
	for i := range n {
		line := e.openLine(fmt.Sprintf("c%03d", i))
		for j, req := range []PurchaseRequest{
			{Plan: PlanPayLater, Amount: int64(10_000 + i)},
			{Plan: PlanInstallments, Periods: 3, Amount: int64(300_000 + 7*i)},
		} {
			req.ID, req.AccountID, req.MerchantID, req.Currency = fmt.Sprintf("p%03d_%d", i, j), line.ID, "m1", "CNY"
			if _, _, err := e.svc.Purchase(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.day("2026-03-01")
}

// ledgerFigures are the balances the batch moves.
func ledgerFigures(e *env) [5]int64 {
	return [5]int64{e.balance(PenaltyIncomeAccount("CNY")), e.balance(FeeIncomeAccount("CNY")), e.balance(UnearnedAccount("CNY")),
		e.balance(ReceivableAccount("ca_c000")), e.balance(PenaltyReceivableAccount("CNY"))}
}

// TestEODCrashAndResume stops the batch in the middle (the process's storage goes away
// after the second page) and runs it again in a new process: it resumes from the
// checkpoint, charges every loan exactly once, and ends exactly where an uninterrupted run
// of the same data ends.
func TestEODCrashAndResume(t *testing.T) {
	defer func(p int) { eodPage = p }(eodPage)
	eodPage = 7
	onBackends(t, func(t *testing.T, f factory) {
		ctx := context.Background()
		const lines = 20
		d := credit.MustDate("2026-02-28")

		clean := newEnv(t, f, Config{})
		seedOverdue(t, clean, lines)
		run, err := clean.svc.RunEOD(ctx, d, nil)
		if err != nil || run.Stage != StageDone || run.Loans != 2*lines || run.Changed != 2*lines || !run.Reconcile.OK() {
			t.Fatalf("clean run: %+v %v", run, err)
		}
		want := ledgerFigures(clean)
		if want[0] >= 0 || want[1] >= 0 {
			t.Fatalf("the batch charged nothing: %v", want)
		}

		e := newEnv(t, f, Config{})
		seedOverdue(t, e, lines)
		pages := 0
		cctx, cancel := context.WithCancel(ctx)
		_, err = e.svc.RunEOD(cctx, d, func(p Progress) {
			if p.Stage == StageLoans && p.Loans > 0 {
				if pages++; pages == 2 {
					cancel() // the crash: nothing more is committed
				}
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		half, _ := e.svc.GetEOD(ctx, d)
		if half.Stage != StageLoans || half.Loans != 2*7 || half.Cursor == "" {
			t.Fatalf("checkpoint after the crash: %+v", half)
		}
		e.restart()
		run, err = e.svc.RunEOD(ctx, d, nil)
		if err != nil || run.Stage != StageDone || run.Resumed != 1 || run.Loans != 2*lines || !run.Reconcile.OK() {
			t.Fatalf("resumed run: %+v %v", run, err)
		}
		if got := ledgerFigures(e); got != want {
			t.Errorf("after resuming: %v, uninterrupted: %v", got, want)
		}
		// Every loan was charged for the date exactly once: the penalty postings on the
		// penalty receivable (summed per unit of the batch, whatever the loans' lines) add up
		// to what the loans were charged, and name each loan once; each loan's penalties are
		// all pooled there, and the lines' receivables hold none.
		var charged, loans int64
		for i := range lines {
			for j := range 2 {
				id := fmt.Sprintf("p%03d_%d", i, j)
				l, err := e.svc.Loan(ctx, id)
				if err != nil || l.LastEOD != d || l.PenaltyPooled != l.PenaltyTotal {
					t.Fatalf("%s: %+v %v", id, l, err)
				}
				charged += l.PenaltyTotal
				if l.PenaltyTotal > 0 {
					loans++
				}
			}
			ts, err := e.st.AccountTransfers(ctx, ReceivableAccount(fmt.Sprintf("ca_c%03d", i)), 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range ts {
				if tr.Code == "credit.penalty" {
					t.Errorf("a penalty posted on a line's receivable: %+v", tr)
				}
			}
		}
		ts, err := e.st.AccountTransfers(ctx, PenaltyReceivableAccount("CNY"), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var posted, named, postings int64
		for _, tr := range ts {
			if tr.Code == "credit.penalty" {
				posted += tr.Amount
				n, _ := strconv.ParseInt(tr.Metadata["loans"], 10, 64)
				named += n
				postings++
			}
		}
		if posted != charged || named != loans || charged == 0 || posted != e.balance(PenaltyReceivableAccount("CNY")) {
			t.Errorf("penalties posted %d for %d loans, charged %d to %d loans", posted, named, charged, loans)
		}
		// A unit's penalties are one posting, and a page of 7 loans is one unit.
		if pages := (2*lines + 6) / 7; postings > int64(pages) {
			t.Errorf("%d penalty postings for %d pages", postings, pages)
		}
		// Running the date again changes nothing.
		again, err := e.svc.RunEOD(ctx, d, nil)
		if err != nil || again.Version != run.Version || ledgerFigures(e) != want {
			t.Errorf("repeat: %+v %v", again, err)
		}
	})
}

// TestStageChangeJSON: the stage-change payload written without reflection is exactly what
// encoding/json writes, for the service's values and for values it would escape.
func TestStageChangeJSON(t *testing.T) {
	for _, c := range []stageChange{
		{Loan: "p1", Account: "ca_c1", Date: credit.MustDate("2026-02-20"), From: credit.BucketCurrent, To: credit.BucketM1, DPD: 5, Cause: "end_of_day"},
		{Loan: "x-Y_9", Account: "ca_z", Date: credit.MustDate("1900-01-01"), From: credit.BucketM3, To: credit.BucketM3Plus, DPD: 91, Cause: "repayment"},
		{Loan: "p1", Account: "ca_c1", Date: credit.MustDate("2999-12-31"), From: credit.BucketM1, To: credit.BucketCurrent, DPD: 0, Cause: "refund"},
		{Loan: `a"b\c<d>&é` + "\x01\x7f", Account: "ca", Date: credit.MustDate("2026-02-20"), From: "current", To: "M1", DPD: -1, Cause: "x"},
		{Loan: "p1", Account: "ca", From: "current", To: "M1", Cause: "zero date"},
	} {
		if got, want := stageChangeJSON(&c), encode(c); string(got) != string(want) {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

// TestAccountsOf: the cached account ids of a currency are those of the chart's functions,
// for currencies added from several goroutines at once.
func TestAccountsOf(t *testing.T) {
	var wg sync.WaitGroup
	for _, cur := range []string{"CNY", "USD", "EUR", "JPY", "CNY", "USD"} {
		wg.Go(func() {
			a := accountsOf(cur)
			if *a != (currencyAccounts{UnearnedAccount(cur), InterestIncomeAccount(cur), FeeIncomeAccount(cur),
				PenaltyReceivableAccount(cur), PenaltyIncomeAccount(cur)}) || accountsOf(cur) != a {
				t.Errorf("%s: %+v", cur, *a)
			}
		})
	}
	wg.Wait()
}
