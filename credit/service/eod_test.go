package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
func ledgerFigures(e *env) [4]int64 {
	return [4]int64{e.balance(PenaltyIncomeAccount("CNY")), e.balance(FeeIncomeAccount("CNY")), e.balance(UnearnedAccount("CNY")),
		e.balance(ReceivableAccount("ca_c000"))}
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
		// Every loan was charged for the date exactly once: the penalty postings on each
		// account (summed per unit of the batch) add up to what its loans were charged, and
		// name each loan once.
		for i := range lines {
			var charged, loans int64
			var account string
			for j := range 2 {
				id := fmt.Sprintf("p%03d_%d", i, j)
				l, err := e.svc.Loan(ctx, id)
				if err != nil || l.LastEOD != d {
					t.Fatalf("%s: %+v %v", id, l, err)
				}
				charged += l.PenaltyTotal
				if l.PenaltyTotal > 0 {
					loans++
				}
				account = l.Account
			}
			ts, err := e.st.AccountTransfers(ctx, ReceivableAccount(account), 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var posted, named int64
			for _, tr := range ts {
				if tr.Code == "credit.penalty" {
					posted += tr.Amount
					n, _ := strconv.ParseInt(tr.Metadata["loans"], 10, 64)
					named += n
				}
			}
			if posted != charged || named != loans || charged == 0 {
				t.Errorf("%s: penalties posted %d for %d loans, charged %d to %d loans", account, posted, named, charged, loans)
			}
		}
		// Running the date again changes nothing.
		again, err := e.svc.RunEOD(ctx, d, nil)
		if err != nil || again.Version != run.Version || ledgerFigures(e) != want {
			t.Errorf("repeat: %+v %v", again, err)
		}
	})
}
