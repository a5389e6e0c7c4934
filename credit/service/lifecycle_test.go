package service

import (
	"context"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
)

func wantCode(t *testing.T, what string, err error, code apierror.Code) {
	t.Helper()
	if e := apierror.As(err); e == nil || e.Code != code {
		t.Errorf("%s: got %v, want %s", what, err, code)
	}
}

// TestLifecycle follows one account through purchases, refused purchases, the end-of-day
// batch with penalties and ageing, a partial repayment and an early payoff, checking the
// line, the loans and the ledger's chart of accounts at each step.
func TestLifecycle(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		e := newEnv(t, f, Config{})
		ctx := context.Background()
		line := e.openLine("c1")
		recv := ReceivableAccount(line.ID)

		p1, created, err := e.svc.Purchase(ctx, PurchaseRequest{ID: "p1", AccountID: line.ID, MerchantID: "m1", Amount: 299_900,
			Currency: "CNY", Plan: PlanInstallments, Periods: 3})
		if err != nil || !created {
			t.Fatalf("purchase: %v", err)
		}
		if len(p1.Schedule) != 3 || p1.Schedule[0].Fee != 1500 || p1.Schedule[0].DueDate != credit.MustDate("2026-02-15") || p1.Next != credit.MustDate("2026-02-15") {
			t.Fatalf("schedule: %+v next %s", p1.Schedule, p1.Next)
		}
		if _, _, err := e.svc.Purchase(ctx, PurchaseRequest{ID: "p2", AccountID: line.ID, MerchantID: "m2", Amount: 10_000,
			Currency: "CNY", Plan: PlanPayLater}); err != nil {
			t.Fatal(err)
		}
		check := func(what string, want map[string]int64) {
			t.Helper()
			for id, v := range want {
				if got := e.balance(id); got != v {
					t.Errorf("%s: %s balance %d, want %d", what, id, got, v)
				}
			}
		}
		check("after purchases", map[string]int64{recv: 299_900 + 4_500 + 10_000, MerchantAccount("m1"): -299_900,
			MerchantAccount("m2"): -10_000, UnearnedAccount("CNY"): -4_500})
		l, _ := e.svc.Line(ctx, line.ID)
		if l.Available != 500_000-309_900 || l.OpenLoans != 2 {
			t.Errorf("line after purchases: %+v", l)
		}

		// Refusals change nothing.
		e.svc.SetFrozen(ctx, line.ID, true, "ops", "")
		wantCode(t, "frozen", purchaseErr(e, "x1", line.ID, 100, "CNY", PlanPayLater, 0), apierror.LineFrozen)
		e.svc.SetFrozen(ctx, line.ID, false, "ops", "")
		wantCode(t, "over available", purchaseErr(e, "x2", line.ID, 190_101, "CNY", PlanPayLater, 0), apierror.ExceedsAvailableCredit)
		wantCode(t, "periods", purchaseErr(e, "x3", line.ID, 100, "CNY", PlanInstallments, 5), apierror.PeriodsNotOffered)
		wantCode(t, "currency", purchaseErr(e, "x4", line.ID, 100, "USD", PlanPayLater, 0), apierror.CurrencyMismatch)
		wantCode(t, "account", purchaseErr(e, "x5", "ca_nobody", 100, "CNY", PlanPayLater, 0), apierror.CreditAccountNotFound)
		wantCode(t, "amount", purchaseErr(e, "x6", line.ID, 0, "CNY", PlanPayLater, 0), apierror.InvalidRequest)
		wantCode(t, "replay with another body", purchaseErr(e, "p1", line.ID, 299_901, "CNY", PlanInstallments, 3), apierror.IDConflict)
		if r, created, err := e.svc.Purchase(ctx, PurchaseRequest{ID: "p1", AccountID: line.ID, MerchantID: "m1", Amount: 299_900,
			Currency: "CNY", Plan: PlanInstallments, Periods: 3}); err != nil || created || r.ID != "p1" {
			t.Errorf("replay: %v %v", created, err)
		}
		l2, _ := e.svc.Line(ctx, line.ID)
		if l2.Available != l.Available || l2.OpenLoans != 2 || countRecords(t, e, KindLoan) != 2 {
			t.Errorf("refused purchases changed the line: %+v", l2)
		}
		check("after refusals", map[string]int64{recv: 314_400})

		// End of day through 2026-02-20: p2 (due 02-14) and p1's first installment (due
		// 02-15, 101,466) go past due; penalties start after 3 grace days.
		e.day("2026-02-21")
		for d := credit.MustDate("2026-01-15"); !d.After(credit.MustDate("2026-02-20")); d = d.AddDays(1) {
			if _, err := e.svc.RunEOD(ctx, d, nil); err != nil {
				t.Fatalf("eod %s: %v", d, err)
			}
		}
		pen2 := int64(3 * 5)  // 10,000 × 0.0005 on 02-18, 02-19, 02-20
		pen1 := int64(2 * 51) // round(101,466 × 0.0005) = 51 on 02-19, 02-20
		// Penalties are on the currency's penalty receivable, not on the line's.
		pool := PenaltyReceivableAccount("CNY")
		check("after eod", map[string]int64{recv: 314_400, pool: pen1 + pen2, PenaltyIncomeAccount("CNY"): -(pen1 + pen2),
			FeeIncomeAccount("CNY"): -1_500, UnearnedAccount("CNY"): -3_000})
		g1, _ := e.svc.Loan(ctx, "p1")
		g2, _ := e.svc.Loan(ctx, "p2")
		if g1.DPD != 5 || g1.Bucket != credit.BucketM1 || g2.DPD != 6 || g2.PenaltyTotal != pen2 || g1.Items[0].Penalty != pen1 ||
			g1.PenaltyPooled != pen1 || g2.PenaltyPooled != pen2 {
			t.Errorf("ageing: p1 %d %s %+v; p2 %d %d", g1.DPD, g1.Bucket, g1.Items[0], g2.DPD, g2.PenaltyTotal)
		}
		// Running a date again does nothing.
		if _, err := e.svc.RunEOD(ctx, credit.MustDate("2026-02-20"), nil); err != nil {
			t.Fatal(err)
		}
		check("eod again", map[string]int64{recv: 314_400, pool: pen1 + pen2})

		// A repayment of 120,000.00 on 02-21: p2 first (oldest due), then p1's first
		// installment, then prepays p1's last installment.
		rep, created, err := e.svc.Repay(ctx, RepaymentRequest{ID: "r1", AccountID: line.ID, Amount: 120_000, Currency: "CNY"})
		if err != nil || !created {
			t.Fatalf("repay: %v", err)
		}
		want := []RepaymentSplit{
			{Loan: "p2", Period: 1, Component: credit.ComponentPenalty, Amount: pen2},
			{Loan: "p2", Period: 1, Component: credit.ComponentPrincipal, Amount: 10_000},
			{Loan: "p1", Period: 1, Component: credit.ComponentPenalty, Amount: pen1},
			{Loan: "p1", Period: 1, Component: credit.ComponentFee, Amount: 1_500},
			{Loan: "p1", Period: 1, Component: credit.ComponentPrincipal, Amount: 99_966},
			{Loan: "p1", Period: 3, Component: credit.ComponentPrincipal, Amount: 120_000 - 10_000 - pen2 - pen1 - 1_500 - 99_966},
		}
		if len(rep.Splits) != len(want) {
			t.Fatalf("splits %+v", rep.Splits)
		}
		for i, w := range want {
			g := rep.Splits[i]
			if g.Loan != w.Loan || g.Period != w.Period || g.Component != w.Component || g.Amount != w.Amount || g.Transfer == "" {
				t.Errorf("split %d: %+v, want %+v", i, g, w)
			}
			to := recv
			if g.Component == credit.ComponentPenalty {
				to = pool
			}
			if tr, err := e.st.GetTransfer(ctx, g.Transfer); err != nil || tr.CreditAccountID != to {
				t.Errorf("split %d: transfer %s: %v", i, g.Transfer, err)
			}
		}
		if rep.Leftover != 0 || rep.Paid != 120_000 || rep.PrincipalRestored != 10_000+99_966+want[5].Amount {
			t.Errorf("repayment: %+v", rep)
		}
		check("after repayment", map[string]int64{recv: 314_400 + pen1 + pen2 - 120_000, pool: 0, RepaymentClearingAccount("CNY"): 120_000})
		g1, _ = e.svc.Loan(ctx, "p1")
		g2, _ = e.svc.Loan(ctx, "p2")
		l, _ = e.svc.Line(ctx, line.ID)
		if g2.Status != LoanPaidOff || g1.Bucket != credit.BucketCurrent || g1.DPD != 0 || l.OpenLoans != 1 || l.Available != 500_000-299_900+99_966+want[5].Amount {
			t.Errorf("after repayment: p1 %s %d, p2 %s, line %+v", g1.Bucket, g1.DPD, g2.Status, l)
		}
		if r, created, err := e.svc.Repay(ctx, RepaymentRequest{ID: "r1", AccountID: line.ID, Amount: 120_000, Currency: "CNY"}); err != nil || created || r.Paid != 120_000 {
			t.Errorf("repayment replay: %v %v", created, err)
		}

		// Paying everything off early: the fees of the installments not yet due are waived.
		rep, _, err = e.svc.Repay(ctx, RepaymentRequest{ID: "r2", AccountID: line.ID, Amount: 300_000, Currency: "CNY"})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Waived) != 2 || rep.Waived[0].Amount != 1_500 || rep.Leftover != 300_000-rep.Paid {
			t.Errorf("payoff: %+v", rep)
		}
		check("after payoff", map[string]int64{recv: 0, UnearnedAccount("CNY"): 0, FeeIncomeAccount("CNY"): -1_500,
			RepaymentClearingAccount("CNY"): 120_000 + rep.Paid})
		l, _ = e.svc.Line(ctx, line.ID)
		if l.Available != l.Limit || l.OpenLoans != 0 {
			t.Errorf("line after payoff: %+v", l)
		}
		_, _, err = e.svc.Repay(ctx, RepaymentRequest{ID: "r3", AccountID: line.ID, Amount: 1, Currency: "CNY"})
		wantCode(t, "nothing owed", err, apierror.NothingOwed)
		if _, err := e.svc.GetRepayment(ctx, "r3"); apierror.As(err) == nil {
			t.Error("refused repayment was recorded")
		}
		rec, err := e.svc.Reconcile(ctx)
		if err != nil || !rec.OK() {
			t.Errorf("reconcile: %+v %v", rec, err)
		}
	})
}

func purchaseErr(e *env, id, account string, amount int64, cur, plan string, periods int) error {
	_, _, err := e.svc.Purchase(context.Background(), PurchaseRequest{ID: id, AccountID: account, MerchantID: "m9", Amount: amount,
		Currency: cur, Plan: plan, Periods: periods})
	return err
}
