package service

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
)

// TestRecovery repays written-off purchases: the money goes from repayment clearing to
// recovery income (the receivable, already empty of them, does not move), allocated in the
// product's order with everything due; the loans show what was recovered and stay written
// off until they owe nothing; the repayment is idempotent; a repayment of the whole account
// recovers the written-off purchases (the oldest due) before it prepays an open one; no
// minor unit is made or lost and the reconciler agrees throughout.
func TestRecovery(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		ctx := context.Background()
		e, line, _ := writeOffEnv(t, f, true)
		recv, clearing, recovery := ReceivableAccount(line.ID), RepaymentClearingAccount("CNY"), RecoveryIncomeAccount("CNY")
		later0, _ := e.svc.Loan(ctx, "later")
		inst0, _ := e.svc.Loan(ctx, "inst")
		line0, _ := e.svc.Line(ctx, line.ID)
		writtenOff := e.balance(WriteOffAccount("CNY"))
		owed0 := later0.Owed() + inst0.Owed()
		if later0.Status != LoanWrittenOff || inst0.Status != LoanWrittenOff || e.balance(recv) != 0 {
			t.Fatalf("not written off: %s %s, receivable %d", later0.Status, inst0.Status, e.balance(recv))
		}
		reconciled := func(what string) {
			t.Helper()
			if rep, err := e.svc.Reconcile(ctx); err != nil || !rep.OK() {
				t.Errorf("%s: reconcile %+v %v", what, rep, err)
			}
		}

		// A merchant refund of a written-off purchase is refused, naming the way to take it.
		_, _, err := e.svc.RefundPurchase(ctx, RefundRequest{ID: "f1", LoanID: "later", Amount: 100})
		wantCode(t, "refund of a written-off purchase", err, apierror.PurchaseNotRefundable)
		if err == nil || !strings.Contains(err.Error(), "recovery") {
			t.Errorf("refusal of a refund of a written-off purchase: %v", err)
		}
		if l, _ := e.svc.Loan(ctx, "later"); l.Version != later0.Version {
			t.Errorf("the refused refund changed the purchase: version %d -> %d", later0.Version, l.Version)
		}

		// A partial recovery of one purchase: its penalties first (580), then its principal.
		req := RepaymentRequest{ID: "r1", AccountID: line.ID, Amount: 1_000, Currency: "CNY", LoanID: "later"}
		r1, created, err := e.svc.Repay(ctx, req)
		if err != nil || !created {
			t.Fatalf("recovery: %v", err)
		}
		want := []RepaymentSplit{
			{Loan: "later", Period: 1, Component: credit.ComponentPenalty, Amount: 580, Recovery: true, Transfer: "credit.recover.r1.1"},
			{Loan: "later", Period: 1, Component: credit.ComponentPrincipal, Amount: 420, Recovery: true, Transfer: "credit.recover.r1.2"},
		}
		if r1.Paid != 1_000 || r1.Recovered != 1_000 || r1.Leftover != 0 || r1.PrincipalRestored != 420 || len(r1.Waived) != 0 ||
			len(r1.Splits) != 2 || r1.Splits[0] != want[0] || r1.Splits[1] != want[1] {
			t.Fatalf("recovery splits: %+v", r1)
		}
		later, _ := e.svc.Loan(ctx, "later")
		if later.Status != LoanWrittenOff || later.Recovered != 1_000 || later.Owed() != later0.Owed()-1_000 || later.Outstanding != later.Owed() ||
			later.OutstandingPrincipal != 10_000-420 || later.WrittenOff != later0.WrittenOff {
			t.Errorf("loan after a partial recovery: %+v", later)
		}
		if e.balance(recovery) != -1_000 || e.balance(clearing) != 1_000 || e.balance(recv) != 0 || e.balance(WriteOffAccount("CNY")) != writtenOff {
			t.Errorf("postings: recovery %d clearing %d receivable %d", e.balance(recovery), e.balance(clearing), e.balance(recv))
		}
		if l, _ := e.svc.Line(ctx, line.ID); l.Available != line0.Available+420 {
			t.Errorf("available %d, want %d", l.Available, line0.Available+420)
		}
		reconciled("after a partial recovery")

		// Idempotent: a replay posts nothing again; another body is id_conflict.
		if again, created, err := e.svc.Repay(ctx, req); err != nil || created || again.Splits[1].Transfer != "credit.recover.r1.2" {
			t.Errorf("replay: %v %v", created, err)
		}
		req.Amount = 999
		_, _, err = e.svc.Repay(ctx, req)
		wantCode(t, "replay with another amount", err, apierror.IDConflict)
		if e.balance(recovery) != -1_000 {
			t.Errorf("replays posted: recovery income %d", e.balance(recovery))
		}

		// An open purchase beside them (operations unfroze the line).
		if _, err := e.svc.SetFrozen(ctx, line.ID, false, "ops", "plan agreed"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.svc.Purchase(ctx, PurchaseRequest{ID: "new", AccountID: line.ID, MerchantID: "m2", Amount: 100_000, Currency: "CNY", Plan: PlanPayLater}); err != nil {
			t.Fatal(err)
		}
		// Repaying the account: the written-off purchases (due long ago) are recovered in
		// full, then 400.00 prepays the new one; the rest is the leftover.
		rest := owed0 - 1_000
		r2, _, err := e.svc.Repay(ctx, RepaymentRequest{ID: "r2", AccountID: line.ID, Amount: rest + 40_000 + 7, Currency: "CNY"})
		if err != nil {
			t.Fatal(err)
		}
		var recovered, repaid, prepaid int64
		for _, sp := range r2.Splits {
			switch {
			case sp.Recovery && (sp.Loan == "later" || sp.Loan == "inst"):
				recovered += sp.Amount
			case !sp.Recovery && sp.Loan == "new":
				prepaid += sp.Amount
				if sp.Transfer != "credit.repay.r2.1" || sp.Component != credit.ComponentPrincipal {
					t.Errorf("prepayment split %+v", sp)
				}
			default:
				t.Errorf("unexpected split %+v", sp)
			}
			repaid += sp.Amount
		}
		if recovered != rest || prepaid != 40_007 || r2.Recovered != rest || r2.Paid != repaid || r2.Leftover != 0 || r2.Paid != r2.Amount {
			t.Errorf("account repayment: recovered %d of %d, prepaid %d, %+v", recovered, rest, prepaid, r2)
		}
		if r2.Splits[0].Loan != "later" {
			t.Errorf("the oldest due is recovered first: %+v", r2.Splits[0])
		}
		for _, id := range []string{"later", "inst"} {
			l, _ := e.svc.Loan(ctx, id)
			if l.Status != LoanPaidOff || l.Owed() != 0 || l.WrittenOffOn.IsZero() {
				t.Errorf("%s after full recovery: %s owes %d", id, l.Status, l.Owed())
			}
		}
		if l, _ := e.svc.Loan(ctx, "later"); l.Recovered != later0.Owed() {
			t.Errorf("later recovered %d, want %d", l.Recovered, later0.Owed())
		}
		// Conservation: every minor unit received is in recovery income or off the receivable.
		if e.balance(recovery) != -owed0 || e.balance(clearing) != owed0+40_007 || e.balance(recv) != 100_000-40_007 ||
			e.balance(WriteOffAccount("CNY")) != writtenOff {
			t.Errorf("postings: recovery %d (want %d), clearing %d, receivable %d", e.balance(recovery), -owed0, e.balance(clearing), e.balance(recv))
		}
		l, _ := e.svc.Line(ctx, line.ID)
		if l.OpenLoans != 1 || l.Available != l.Limit-(100_000-40_007) {
			t.Errorf("line after recoveries: %+v", l)
		}
		reconciled("after full recovery")

		// Nothing left to recover on a paid-off written-off purchase.
		_, _, err = e.svc.Repay(ctx, RepaymentRequest{ID: "r3", AccountID: line.ID, Amount: 5, Currency: "CNY", LoanID: "inst"})
		wantCode(t, "repaying a recovered purchase", err, apierror.NothingOwed)
	})
}

// TestRepaymentsAndRecoveriesConserveMoney draws an account's purchases (pay later and
// installments), days passing with the batch (penalties, write-offs at 91 days past due),
// and repayments of any amount, of the account or of one purchase, open or written off.
// After each repayment: the splits and the leftover make the amount; the repayment
// clearing account grew by what was paid, recovery income by what was recovered, and the
// receivable fell by the rest and the waivers; each purchase owes exactly its splits and
// waivers less; a written-off purchase's recovered grew by its splits; the reconciler agrees.
func TestRepaymentsAndRecoveriesConserveMoney(t *testing.T) {
	ctx := context.Background()
	var recoveries, writeOffs, repayments int
	rapid.Check(t, func(rt *rapid.T) {
		products := credit.ExampleProducts()
		for i := range products {
			products[i].WriteOffDays = credit.WriteOffDaysMin
		}
		e := newEnv(t, sqliteFactory, Config{Products: products})
		defer e.stop()
		line := e.openLine("c1")
		var ids []string
		for i := range rapid.IntRange(1, 4).Draw(rt, "purchases") {
			req := PurchaseRequest{ID: fmt.Sprintf("p%d", i), AccountID: line.ID, MerchantID: "m1", Currency: "CNY",
				Amount: rapid.Int64Range(1, 100_000).Draw(rt, "amount"), Plan: PlanPayLater}
			if n := rapid.SampledFrom([]int{0, 3, 6, 12, 24}).Draw(rt, "periods"); n > 0 {
				req.Plan, req.Periods = PlanInstallments, n
			}
			if _, _, err := e.svc.Purchase(ctx, req); err != nil {
				rt.Fatal(err)
			}
			ids = append(ids, req.ID)
		}
		recv, clearing, recovery := ReceivableAccount(line.ID), RepaymentClearingAccount("CNY"), RecoveryIncomeAccount("CNY")
		pool := PenaltyReceivableAccount("CNY")
		day := credit.MustDate("2026-01-15")
		for step := range rapid.IntRange(1, 8).Draw(rt, "steps") {
			if days := rapid.IntRange(0, 120).Draw(rt, "days"); days > 0 {
				day = day.AddDays(days)
				e.day(day.String())
				run, err := e.svc.RunEOD(ctx, day.AddDays(-1), nil)
				if err != nil {
					rt.Fatal(err)
				}
				writeOffs += int(run.WrittenOff)
			}
			before := map[string]*Loan{}
			var owed int64
			for _, id := range ids {
				l, err := e.svc.Loan(ctx, id)
				if err != nil {
					rt.Fatal(err)
				}
				before[id] = l
				if l.Status != LoanPaidOff {
					owed += l.Owed()
				}
			}
			req := RepaymentRequest{ID: fmt.Sprintf("r%d", step), AccountID: line.ID, Currency: "CNY",
				Amount: rapid.OneOf(rapid.Int64Range(1, 10), rapid.Int64Range(1, owed/3+1), rapid.Just(max(owed, 1)), rapid.Int64Range(1, 2*owed+1)).Draw(rt, "repay")}
			if rapid.Bool().Draw(rt, "one_purchase") {
				req.LoanID = rapid.SampledFrom(ids).Draw(rt, "purchase")
			}
			b := map[string]int64{recv: e.balance(recv), pool: e.balance(pool), clearing: e.balance(clearing), recovery: e.balance(recovery)}
			rep, _, err := e.svc.Repay(ctx, req)
			if e := apierror.As(err); e != nil && e.Code == apierror.NothingOwed {
				if req.LoanID == "" && owed > 0 || req.LoanID != "" && before[req.LoanID].Status != LoanPaidOff && before[req.LoanID].Owed() > 0 {
					rt.Fatalf("nothing_owed while %d is owed", owed)
				}
				continue
			}
			if err != nil {
				rt.Fatal(err)
			}
			repayments++
			paid, recovered, waived := map[string]int64{}, map[string]int64{}, map[string]int64{}
			var sumPaid, sumRecovered, sumWaived int64
			for _, sp := range rep.Splits {
				paid[sp.Loan] += sp.Amount
				sumPaid += sp.Amount
				if sp.Recovery {
					recovered[sp.Loan] += sp.Amount
					sumRecovered += sp.Amount
					if before[sp.Loan].Status != LoanWrittenOff {
						rt.Fatalf("recovery split on a %s purchase: %+v", before[sp.Loan].Status, sp)
					}
				} else if before[sp.Loan].Status == LoanWrittenOff {
					rt.Fatalf("a written-off purchase repaid as an open one: %+v", sp)
				}
			}
			for _, w := range rep.Waived {
				waived[w.Loan] += w.Amount
				sumWaived += w.Amount
			}
			if sumRecovered > 0 {
				recoveries++
			}
			if sumPaid != rep.Paid || rep.Paid+rep.Leftover != req.Amount || rep.Recovered != sumRecovered || rep.Paid == 0 {
				rt.Fatalf("splits %d, paid %d, leftover %d, amount %d, recovered %d/%d", sumPaid, rep.Paid, rep.Leftover, req.Amount, rep.Recovered, sumRecovered)
			}
			if d := e.balance(clearing) - b[clearing]; d != rep.Paid {
				rt.Fatalf("clearing grew by %d, paid %d", d, rep.Paid)
			}
			if d := b[recovery] - e.balance(recovery); d != sumRecovered {
				rt.Fatalf("recovery income grew by %d, recovered %d", d, sumRecovered)
			}
			if d := b[recv] + b[pool] - e.balance(recv) - e.balance(pool); d != rep.Paid-sumRecovered+sumWaived {
				rt.Fatalf("receivables fell by %d; repaid %d, waived %d", d, rep.Paid-sumRecovered, sumWaived)
			}
			for _, id := range ids {
				l, _ := e.svc.Loan(ctx, id)
				if got := before[id].Owed() - l.Owed(); got != paid[id]+waived[id] {
					rt.Fatalf("%s owes %d less, paid %d and waived %d", id, got, paid[id], waived[id])
				}
				if l.Recovered-before[id].Recovered != recovered[id] {
					rt.Fatalf("%s recovered %d more, splits %d", id, l.Recovered-before[id].Recovered, recovered[id])
				}
				if before[id].Status == LoanWrittenOff && l.Status != LoanWrittenOff && (l.Status != LoanPaidOff || l.Owed() != 0) {
					rt.Fatalf("%s: written off, now %s owing %d", id, l.Status, l.Owed())
				}
				// Every penalty was charged on the penalty receivable: an open purchase's are
				// all pooled there, a written-off one's were written off from it.
				if want := l.OwedPenalty(); l.Status == LoanWrittenOff && l.PenaltyPooled != 0 || l.Status != LoanWrittenOff && l.PenaltyPooled != want {
					rt.Fatalf("%s (%s) penalty pooled %d, owes penalties %d", id, l.Status, l.PenaltyPooled, want)
				}
			}
			if r, err := e.svc.Reconcile(ctx); err != nil || !r.OK() {
				rt.Fatalf("reconcile: %+v %v", r, err)
			}
		}
	})
	t.Logf("%d repayments, %d with recoveries, %d write-offs", repayments, recoveries, writeOffs)
	if recoveries == 0 || writeOffs == 0 {
		t.Errorf("too little exercised: %d recoveries, %d write-offs", recoveries, writeOffs)
	}
}
