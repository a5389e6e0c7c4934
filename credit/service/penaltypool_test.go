package service

import (
	"context"
	"testing"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
)

// TestPenaltyReceivable: the batch charges penalties on the currency's penalty receivable
// (each loan's PenaltyPooled); the reconciler checks it against the loans and reports a
// difference under its account; a loan that still owes penalties on its line's receivable
// (charged by an earlier version) reconciles, and a repayment of its penalties first moves
// them to the penalty receivable in one transfer; writing such a loan off charges them from
// the line's receivable and the rest of its penalties from the penalty receivable.
func TestPenaltyReceivable(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		products := credit.ExampleProducts()
		for i := range products {
			products[i].WriteOffDays = credit.WriteOffDaysMin
		}
		e := newEnv(t, f, Config{Products: products})
		ctx := context.Background()
		line := e.openLine("c1")
		recv, pool := ReceivableAccount(line.ID), PenaltyReceivableAccount("CNY")
		for _, p := range []PurchaseRequest{{ID: "p1", Amount: 10_000}, {ID: "p2", Amount: 20_000}} {
			p.AccountID, p.MerchantID, p.Currency, p.Plan = line.ID, "m1", "CNY", PlanPayLater
			if _, _, err := e.svc.Purchase(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		// Due 02-14; penalties after 3 grace days: 5 and 10 a day on 02-18, 02-19, 02-20.
		e.day("2026-02-21")
		for d := credit.MustDate("2026-01-15"); !d.After(credit.MustDate("2026-02-20")); d = d.AddDays(1) {
			if _, err := e.svc.RunEOD(ctx, d, nil); err != nil {
				t.Fatalf("eod %s: %v", d, err)
			}
		}
		p1, _ := e.svc.Loan(ctx, "p1")
		p2, _ := e.svc.Loan(ctx, "p2")
		if p1.PenaltyPooled != 15 || p2.PenaltyPooled != 30 || e.balance(pool) != 45 || e.balance(recv) != 30_000 {
			t.Fatalf("after the batch: pooled %d and %d, penalty receivable %d, receivable %d", p1.PenaltyPooled, p2.PenaltyPooled,
				e.balance(pool), e.balance(recv))
		}
		reconciled := func(what string) {
			t.Helper()
			if r, err := e.svc.Reconcile(ctx); err != nil || !r.OK() || r.LoansOwed != r.Receivables {
				t.Errorf("%s: reconcile %+v %v", what, r, err)
			}
		}
		reconciled("after the batch")

		// A stray posting on the penalty receivable is a mismatch of that account.
		stray := func(id string, debit, credit string) {
			t.Helper()
			_, err := e.eng.Commit(ctx, ledger.Unit{Transfers: []ledger.TransferInput{{ID: id, DebitAccountID: debit, CreditAccountID: credit,
				Amount: 1, Currency: "CNY", Code: "test"}}})
			if err != nil {
				t.Fatal(err)
			}
		}
		stray("stray", pool, PenaltyIncomeAccount("CNY"))
		r, err := e.svc.Reconcile(ctx)
		if err != nil || len(r.Mismatches) != 1 || r.Mismatches[0] != (Mismatch{Account: pool, LoansOwed: 45, Receivable: 46}) {
			t.Errorf("reconcile with a stray posting: %+v %v", r, err)
		}
		stray("stray.back", PenaltyIncomeAccount("CNY"), pool)
		reconciled("stray posting reversed")

		// p1 as an earlier version left it: its penalties on the line's receivable.
		p1.PenaltyPooled = 0
		if _, err := e.eng.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{loanRecord(p1)},
			Transfers: []ledger.TransferInput{{ID: "legacy", DebitAccountID: recv, CreditAccountID: pool, Amount: 15, Currency: "CNY", Code: "test"}}}); err != nil {
			t.Fatal(err)
		}
		reconciled("a loan with its penalties on the line's receivable")

		// Repaying p1: its penalties move to the penalty receivable, then are paid from it.
		rep, _, err := e.svc.Repay(ctx, RepaymentRequest{ID: "r1", AccountID: line.ID, LoanID: "p1", Amount: 5_015, Currency: "CNY"})
		if err != nil {
			t.Fatal(err)
		}
		moved, err := e.st.GetTransfer(ctx, "credit.penalty.pool.r1")
		if err != nil || moved.DebitAccountID != pool || moved.CreditAccountID != recv || moved.Amount != 15 || moved.Metadata["loans"] != "1" {
			t.Errorf("penalties moved: %+v %v", moved, err)
		}
		for _, sp := range rep.Splits {
			tr, err := e.st.GetTransfer(ctx, sp.Transfer)
			if want := map[bool]string{true: pool, false: recv}[sp.Component == credit.ComponentPenalty]; err != nil || tr.CreditAccountID != want {
				t.Errorf("split %+v: transfer %+v %v", sp, tr, err)
			}
		}
		p1, _ = e.svc.Loan(ctx, "p1")
		if p1.OwedPenalty() != 0 || p1.PenaltyPooled != 0 || p1.Owed() != 5_000 || e.balance(pool) != 30 || e.balance(recv) != 25_000 {
			t.Errorf("after repaying p1: owes %d (penalties %d, pooled %d), penalty receivable %d, receivable %d", p1.Owed(),
				p1.OwedPenalty(), p1.PenaltyPooled, e.balance(pool), e.balance(recv))
		}
		reconciled("after the repayment")

		// p2 as an earlier version left it, then written off 91 days past due (05-16): the
		// penalties on the line's receivable are written off from it, those charged since
		// from the penalty receivable.
		p2, _ = e.svc.Loan(ctx, "p2")
		p2.PenaltyPooled = 0
		if _, err := e.eng.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{loanRecord(p2)},
			Transfers: []ledger.TransferInput{{ID: "legacy2", DebitAccountID: recv, CreditAccountID: pool, Amount: 30, Currency: "CNY", Code: "test"}}}); err != nil {
			t.Fatal(err)
		}
		e.day("2026-05-21")
		run, err := e.svc.RunEOD(ctx, credit.MustDate("2026-05-20"), nil)
		if err != nil || run.WrittenOff != 2 || !run.Reconcile.OK() {
			t.Fatalf("write-off run: %+v %v", run, err)
		}
		p2, _ = e.svc.Loan(ctx, "p2")
		fromLine, err1 := e.st.GetTransfer(ctx, "credit.writeoff.p2")
		fromPool, err2 := e.st.GetTransfer(ctx, "credit.writeoff.p2.penalty")
		if err1 != nil || err2 != nil || p2.Status != LoanWrittenOff || p2.PenaltyPooled != 0 || fromLine.CreditAccountID != recv ||
			fromLine.Amount != 20_000+30 || fromPool.CreditAccountID != pool || fromPool.Amount != p2.PenaltyTotal-30 || fromPool.Amount <= 0 {
			t.Errorf("write-off of p2 (%s, pooled %d, penalties %d): %+v %v; %+v %v", p2.Status, p2.PenaltyPooled, p2.PenaltyTotal,
				fromLine, err1, fromPool, err2)
		}
		if e.balance(recv) != 0 || e.balance(pool) != 0 {
			t.Errorf("after writing everything off: receivable %d, penalty receivable %d", e.balance(recv), e.balance(pool))
		}
	})
}
