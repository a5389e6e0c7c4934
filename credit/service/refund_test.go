package service

import (
	"context"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
)

// TestMerchantRefund refunds most of a 3-installment purchase after its first installment's
// fee was earned: last installments first, charges cut in proportion (from unearned income,
// and from fee income for the installment already fallen due), the line restored; refused
// refunds change nothing; the rest of the refund pays the purchase off.
func TestMerchantRefund(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		e := newEnv(t, f, Config{})
		ctx := context.Background()
		line := e.openLine("c1")
		recv := ReceivableAccount(line.ID)
		if _, _, err := e.svc.Purchase(ctx, PurchaseRequest{ID: "p1", AccountID: line.ID, MerchantID: "m1", Amount: 299_900,
			Currency: "CNY", Plan: PlanInstallments, Periods: 3}); err != nil {
			t.Fatal(err)
		}
		e.day("2026-02-16")
		for d := credit.MustDate("2026-01-15"); !d.After(credit.MustDate("2026-02-15")); d = d.AddDays(1) {
			if _, err := e.svc.RunEOD(ctx, d, nil); err != nil {
				t.Fatalf("eod %s: %v", d, err)
			}
		}
		balances := func() map[string]int64 {
			out := map[string]int64{}
			for _, id := range []string{recv, MerchantAccount("m1"), UnearnedAccount("CNY"), FeeIncomeAccount("CNY")} {
				out[id] = e.balance(id)
			}
			return out
		}
		same := func(what string, before map[string]int64, version int64) {
			t.Helper()
			for id, v := range balances() {
				if before[id] != v {
					t.Errorf("%s changed %s: %d → %d", what, id, before[id], v)
				}
			}
			if l, _ := e.svc.Loan(ctx, "p1"); l.Version != version {
				t.Errorf("%s changed the loan (version %d → %d)", what, version, l.Version)
			}
		}
		before := balances()
		if before[FeeIncomeAccount("CNY")] != -1_500 || before[UnearnedAccount("CNY")] != -3_000 {
			t.Fatalf("before: %v", before)
		}
		l0, _ := e.svc.Loan(ctx, "p1")

		// Bad refunds: clear errors, nothing changed.
		_, _, err := e.svc.RefundPurchase(ctx, RefundRequest{ID: "f0", LoanID: "p1", Amount: 299_901})
		wantCode(t, "over-refund", err, apierror.RefundExceedsPrincipal)
		_, _, err = e.svc.RefundPurchase(ctx, RefundRequest{ID: "f0", LoanID: "nope", Amount: 1})
		wantCode(t, "unknown purchase", err, apierror.PurchaseNotFound)
		_, _, err = e.svc.RefundPurchase(ctx, RefundRequest{ID: "f0", LoanID: "p1", Amount: 0})
		wantCode(t, "zero", err, apierror.InvalidRequest)
		same("refused refunds", before, l0.Version)

		// 250,000: period 3 (99,968 + fee 1,500) and period 2 (99,966 + 1,500) not yet
		// earned, then 50,066 of period 1's 99,966, whose earned fee falls by
		// round(1,500 × 50,066 / 99,966) = round(751.25) = 751.
		ref, created, err := e.svc.RefundPurchase(ctx, RefundRequest{ID: "f1", LoanID: "p1", Amount: 250_000})
		if err != nil || !created {
			t.Fatalf("refund: %v", err)
		}
		if ref.ChargesCut != 3_751 || len(ref.Cuts) != 6 || !ref.Cuts[4].Earned || ref.Cuts[4].Amount != 751 || ref.Cuts[0].Earned {
			t.Errorf("refund: %+v", ref)
		}
		for _, c := range ref.Cuts {
			if tr, err := e.st.GetTransfer(ctx, c.Transfer); err != nil || tr.CreditAccountID != recv {
				t.Errorf("cut %+v: transfer: %v", c, err)
			}
		}
		after := balances()
		want := map[string]int64{recv: 299_900 + 4_500 - 250_000 - 3_751, MerchantAccount("m1"): -299_900 + 250_000,
			UnearnedAccount("CNY"): 0, FeeIncomeAccount("CNY"): -749}
		for id, v := range want {
			if after[id] != v {
				t.Errorf("after refund: %s = %d, want %d", id, after[id], v)
			}
		}
		l, _ := e.svc.Loan(ctx, "p1")
		if l.Owed() != after[recv] || l.OwedPrincipal() != 49_900 || l.Refunded != 250_000 || l.Items[0].Fee != 749 || l.Status != LoanActive {
			t.Errorf("loan after refund: %+v", l)
		}
		ln, _ := e.svc.Line(ctx, line.ID)
		if ln.Available != 500_000-49_900 {
			t.Errorf("line available %d", ln.Available)
		}
		// A replay answers the same refund; the same id with another amount is a conflict.
		if r, created, err := e.svc.RefundPurchase(ctx, RefundRequest{ID: "f1", LoanID: "p1", Amount: 250_000}); err != nil || created || r.ChargesCut != 3_751 {
			t.Errorf("replay: %v %v", created, err)
		}
		_, _, err = e.svc.RefundPurchase(ctx, RefundRequest{ID: "f1", LoanID: "p1", Amount: 1})
		wantCode(t, "id conflict", err, apierror.IDConflict)
		_, _, err = e.svc.RefundPurchase(ctx, RefundRequest{ID: "f2", LoanID: "p1", Amount: 49_901})
		wantCode(t, "over-refund of the rest", err, apierror.RefundExceedsPrincipal)
		same("refused refunds after", after, l.Version)

		// Nothing unearned is left to earn: the later due dates earn nothing.
		e.day("2026-04-20")
		for d := credit.MustDate("2026-02-16"); !d.After(credit.MustDate("2026-02-20")); d = d.AddDays(1) {
			if _, err := e.svc.RunEOD(ctx, d, nil); err != nil {
				t.Fatalf("eod %s: %v", d, err)
			}
		}
		// The rest of the principal: the penalties charged on 02-19 and 02-20 (after 3 grace
		// days, round(50,649 × 0.0005) = 25 a day) stay owed; repaying them pays it off.
		l, _ = e.svc.Loan(ctx, "p1")
		if _, _, err := e.svc.RefundPurchase(ctx, RefundRequest{ID: "f2", LoanID: "p1", Amount: l.OwedPrincipal()}); err != nil {
			t.Fatal(err)
		}
		l, _ = e.svc.Loan(ctx, "p1")
		ln, _ = e.svc.Line(ctx, line.ID)
		pool := PenaltyReceivableAccount("CNY")
		if l.Status != LoanActive || l.Owed() != 50 || l.Items[0].Penalty != 50 || ln.Available != ln.Limit || e.balance(recv) != 0 ||
			e.balance(pool) != 50 || l.PenaltyPooled != 50 {
			t.Errorf("after the last refund: loan %s owes %d, line %+v, receivable %d, penalty receivable %d", l.Status, l.Owed(), ln,
				e.balance(recv), e.balance(pool))
		}
		if _, _, err := e.svc.Repay(ctx, RepaymentRequest{ID: "r1", AccountID: line.ID, Amount: 50, Currency: "CNY"}); err != nil {
			t.Fatal(err)
		}
		l, _ = e.svc.Loan(ctx, "p1")
		ln, _ = e.svc.Line(ctx, line.ID)
		if l.Status != LoanPaidOff || ln.OpenLoans != 0 || e.balance(recv) != 0 || e.balance(pool) != 0 || l.PenaltyPooled != 0 {
			t.Errorf("after repaying the penalties: loan %s, line %+v, receivable %d, penalty receivable %d", l.Status, ln, e.balance(recv),
				e.balance(pool))
		}
		// A paid-off purchase takes no merchant refund, and the refusal writes nothing.
		paidOff := balances()
		_, _, err = e.svc.RefundPurchase(ctx, RefundRequest{ID: "f3", LoanID: "p1", Amount: 1})
		wantCode(t, "refund of a paid-off purchase", err, apierror.PurchaseNotRefundable)
		same("refund of a paid-off purchase", paidOff, l.Version)
		if e.balance(UnearnedAccount("CNY")) != 0 || e.balance(MerchantAccount("m1")) != 0 {
			t.Errorf("unearned %d, merchant %d", e.balance(UnearnedAccount("CNY")), e.balance(MerchantAccount("m1")))
		}
		rec, err := e.svc.Reconcile(ctx)
		if err != nil || !rec.OK() {
			t.Errorf("reconcile: %+v %v", rec, err)
		}
	})
}
