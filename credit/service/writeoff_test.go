package service

import (
	"context"
	"strconv"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/platform/outbox"
)

// writeOffEnv opens a line on products that write off at 120 days past due (freezing the
// line or not), makes a pay-later purchase of 100.00 ("later", due 02-14) and one of
// 2,999.00 in 12 installments ("inst", first due 02-15) on 2026-01-15, and runs the batch
// of 2026-07-01, which writes both off.
func writeOffEnv(t *testing.T, f factory, freeze bool) (*env, *Line, *EODRun) {
	t.Helper()
	products := credit.ExampleProducts()
	for i := range products {
		products[i].WriteOffDays = 120
		products[i].FreezeLineOnWriteOff = freeze
	}
	e := newEnv(t, f, Config{Products: products})
	ctx := context.Background()
	line := e.openLine("c1")
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
	return e, line, run
}

// events returns the events of subject in the outbox.
func (e *env) events(subject string) []outbox.Record {
	e.t.Helper()
	recs, err := e.st.(outbox.Provider).Outbox().Unpublished(context.Background(), 0, 10_000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []outbox.Record
	for _, r := range recs {
		if r.Subject == subject {
			out = append(out, r)
		}
	}
	return out
}

// TestWriteOff writes off, at a configured 120 days past due, a pay-later purchase and a
// 12-installment purchase the batch catches up on in one run: the unearned fees of the
// installments not yet due go back to unearned income, everything else owed goes to
// write-off expense, the receivable is empty, penalties stop and the reconciler agrees.
func TestWriteOff(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		e, line, run := writeOffEnv(t, f, true)
		ctx := context.Background()
		recv := ReceivableAccount(line.ID)
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
		if later.PenaltyPooled != 0 || inst.PenaltyPooled != 0 {
			t.Errorf("penalty pooled after the write-off: %d, %d", later.PenaltyPooled, inst.PenaltyPooled)
		}
		// The penalties were charged on the penalty receivable and written off from it.
		want := map[string]int64{recv: 0, PenaltyReceivableAccount("CNY"): 0, UnearnedAccount("CNY"): 0, FeeIncomeAccount("CNY"): -5 * 2_249,
			PenaltyIncomeAccount("CNY"): -(later.PenaltyTotal + inst.PenaltyTotal), WriteOffAccount("CNY"): later.WrittenOff + inst.WrittenOff}
		for id, v := range want {
			if got := e.balance(id); got != v {
				t.Errorf("%s = %d, want %d", id, got, v)
			}
		}
		// Written-off loans stop accruing: the next day looks at no loan and charges nothing.
		e.day("2026-07-03")
		run, err := e.svc.RunEOD(ctx, credit.MustDate("2026-07-02"), nil)
		if err != nil || run.Loans != 0 || run.Penalties != 0 {
			t.Errorf("next day: %+v %v", run, err)
		}
		if l, _ := e.svc.Loan(ctx, "later"); l.PenaltyTotal != later.PenaltyTotal || l.Version != later.Version {
			t.Errorf("written-off loan changed: %+v", l)
		}
		if rep := run.Reconcile; rep == nil || !rep.OK() {
			t.Errorf("reconcile: %+v", rep)
		}
		// Written-off purchases are not billed: the statement day finds nothing to state.
		e.day("2026-08-02")
		if run, err = e.svc.RunEOD(ctx, credit.MustDate("2026-08-01"), nil); err != nil || run.Statements != 0 {
			t.Errorf("statement day after the write-off: %+v %v", run, err)
		}
	})
}

// TestWriteOffFreezesLine: the unit that writes a purchase off freezes its line (the
// product's default), once however many of its purchases are written off, with an event and
// an entry in the line's freeze log; the frozen line refuses purchases with line_frozen until
// operations unfreeze it, which is logged too. A product with freeze_line_on_write_off false
// leaves the line open.
func TestWriteOffFreezesLine(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		ctx := context.Background()
		e, line, run := writeOffEnv(t, f, true)
		l, err := e.svc.Line(ctx, line.ID)
		if err != nil {
			t.Fatal(err)
		}
		if run.WrittenOff != 2 || !l.Frozen || l.FrozenBy != WriteOffActor || len(l.FreezeLog) != 1 {
			t.Fatalf("line after the write-off of %d purchases: %+v", run.WrittenOff, l)
		}
		entry := l.FreezeLog[0]
		if !entry.Frozen || entry.By != WriteOffActor || (entry.Loan != "later" && entry.Loan != "inst") || entry.Reason == "" || l.FrozenNote != entry.Reason {
			t.Errorf("freeze log entry: %+v", entry)
		}
		if evs := e.events("credit.line.frozen"); len(evs) != 1 || evs[0].MsgID != "credit.line.frozen."+line.ID+"."+itoa(l.Version) {
			t.Errorf("credit.line.frozen events: %+v", evs)
		}
		wantCode(t, "purchase on the frozen line", purchaseErr(e, "x1", line.ID, 100, "CNY", PlanPayLater, 0), apierror.LineFrozen)
		if countRecords(t, e, KindLoan) != 2 {
			t.Error("a refused purchase was recorded")
		}
		// A later run changes nothing about the freeze.
		e.day("2026-07-03")
		if _, err := e.svc.RunEOD(ctx, credit.MustDate("2026-07-02"), nil); err != nil {
			t.Fatal(err)
		}
		if l2, _ := e.svc.Line(ctx, line.ID); l2.Version != l.Version {
			t.Errorf("the next run wrote the line: %+v", l2)
		}
		// Operations unfreeze it through the freeze API.
		l, err = e.svc.SetFrozen(ctx, line.ID, false, "ops-li", "repayment plan agreed")
		if err != nil || l.Frozen || len(l.FreezeLog) != 2 || l.FreezeLog[1].Frozen || l.FreezeLog[1].By != "ops-li" ||
			l.FreezeLog[1].Reason != "repayment plan agreed" {
			t.Fatalf("unfreeze: %+v %v", l, err)
		}
		if len(e.events("credit.line.unfrozen")) != 1 {
			t.Error("no credit.line.unfrozen event")
		}
		if _, _, err := e.svc.Purchase(ctx, PurchaseRequest{ID: "x2", AccountID: line.ID, MerchantID: "m1", Amount: 100, Currency: "CNY", Plan: PlanPayLater}); err != nil {
			t.Errorf("purchase after unfreezing: %v", err)
		}

		// Configured off: the line stays open.
		t.Run("off", func(t *testing.T) {
			e, line, run := writeOffEnv(t, f, false)
			l, _ := e.svc.Line(ctx, line.ID)
			if run.WrittenOff != 2 || l.Frozen || len(l.FreezeLog) != 0 || len(e.events("credit.line.frozen")) != 0 {
				t.Fatalf("line frozen although the product says not to: %+v", l)
			}
		})
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
