package service

import (
	"context"
	"testing"

	"github.com/fincore/fincore/credit"
)

// TestWriteOff writes off, at a configured 120 days past due, a pay-later purchase and a
// 12-installment purchase the batch catches up on in one run: the unearned fees of the
// installments not yet due go back to unearned income, everything else owed goes to
// write-off expense, the receivable is empty, penalties stop and the reconciler agrees.
func TestWriteOff(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		products := credit.ExampleProducts()
		for i := range products {
			products[i].WriteOffDays = 120
		}
		e := newEnv(t, f, Config{Products: products})
		ctx := context.Background()
		line := e.openLine("c1")
		recv := ReceivableAccount(line.ID)
		for _, req := range []PurchaseRequest{
			{ID: "later", AccountID: line.ID, MerchantID: "m1", Amount: 10_000, Currency: "CNY", Plan: PlanPayLater},
			{ID: "inst", AccountID: line.ID, MerchantID: "m1", Amount: 299_900, Currency: "CNY", Plan: PlanInstallments, Periods: 12},
		} {
			if _, _, err := e.svc.Purchase(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		e.day("2026-07-02")
		run, err := e.svc.RunEOD(ctx, credit.MustDate("2026-07-01"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if run.WrittenOff != 2 {
			t.Errorf("run wrote off %d loans", run.WrittenOff)
		}
		later, _ := e.svc.Loan(ctx, "later")
		inst, _ := e.svc.Loan(ctx, "inst")
		// later: due 02-14, 120 days past due on 06-14; penalties of 5 a day on days 4 to
		// 119 past due (3 grace days; none on the day of the write-off).
		if later.Status != LoanWrittenOff || later.WrittenOffOn != credit.MustDate("2026-06-14") || later.PenaltyTotal != 116*5 ||
			later.WrittenOff != 10_000+116*5 || later.WrittenOffUnearned != 0 {
			t.Errorf("pay later: %s on %s, penalties %d, written off %d/%d", later.Status, later.WrittenOffOn, later.PenaltyTotal, later.WrittenOff, later.WrittenOffUnearned)
		}
		// inst: first due 02-15, written off on 06-15 with periods 1–5 earned (due through
		// 06-15) and the fees of periods 6–12 (round(299,900 × 0.0075) = 2,249 each) unearned.
		if inst.Status != LoanWrittenOff || inst.WrittenOffOn != credit.MustDate("2026-06-15") || inst.Earned != 5 ||
			inst.WrittenOffUnearned != 7*2_249 || inst.WrittenOff != 299_900+5*2_249+inst.PenaltyTotal {
			t.Errorf("installments: %s on %s, earned %d, written off %d/%d, penalties %d", inst.Status, inst.WrittenOffOn, inst.Earned,
				inst.WrittenOff, inst.WrittenOffUnearned, inst.PenaltyTotal)
		}
		want := map[string]int64{recv: 0, UnearnedAccount("CNY"): 0, FeeIncomeAccount("CNY"): -5 * 2_249,
			PenaltyIncomeAccount("CNY"): -(later.PenaltyTotal + inst.PenaltyTotal), WriteOffAccount("CNY"): later.WrittenOff + inst.WrittenOff}
		for id, v := range want {
			if got := e.balance(id); got != v {
				t.Errorf("%s = %d, want %d", id, got, v)
			}
		}
		// Written-off loans stop accruing: the next day looks at no loan and charges nothing.
		e.day("2026-07-03")
		run, err = e.svc.RunEOD(ctx, credit.MustDate("2026-07-02"), nil)
		if err != nil || run.Loans != 0 || run.Penalties != 0 {
			t.Errorf("next day: %+v %v", run, err)
		}
		if l, _ := e.svc.Loan(ctx, "later"); l.PenaltyTotal != later.PenaltyTotal || l.Version != later.Version {
			t.Errorf("written-off loan changed: %+v", l)
		}
		if rep := run.Reconcile; rep == nil || !rep.OK() {
			t.Errorf("reconcile: %+v", rep)
		}
	})
}
