package payment_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/store/postgres"
	"github.com/fincore/fincore/store/postgres/pgtest"
)

func today() time.Time {
	n := time.Now().UTC()
	return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC)
}

// refundFinal waits for a refund to reach a final state.
func (f *fixture) refundFinal(id string) payment.Refund {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := f.svc.GetRefund(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		if r.Status.Final() {
			return r
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("refund %s still %s", id, r.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) payFinal(id, merchant, card string, amount int64, want payment.Status) {
	f.t.Helper()
	f.pay(id, merchant, card, amount)
	if p := f.final(id); p.Status != want {
		f.t.Fatalf("payment %s is %s, want %s", id, p.Status, want)
	}
}

func (f *fixture) refund(paymentID, id string, amount int64) {
	f.t.Helper()
	if _, _, err := f.svc.CreateRefund(context.Background(), paymentID, payment.RefundInput{ID: id, Amount: amount}); err != nil {
		f.t.Fatal(err)
	}
	if r := f.refundFinal(id); r.Status != payment.StatusSucceeded {
		f.t.Fatalf("refund %s is %s", id, r.Status)
	}
}

// net is an account's debits minus credits, or 0 if it does not exist.
func (f *fixture) net(account string) int64 {
	a, err := f.st.GetAccount(context.Background(), account)
	if err != nil {
		return 0
	}
	return a.Balances.DebitsPosted - a.Balances.CreditsPosted
}

type want struct {
	typ   string
	delta int64
}

func checkDiscrepancies(t *testing.T, r payment.Report, wants map[string]want) {
	t.Helper()
	got := map[string]want{}
	for _, d := range r.Discrepancies {
		got[d.ID] = want{d.Type, d.Delta}
	}
	if len(got) != len(wants) {
		t.Errorf("%d discrepancies, want %d: %+v", len(got), len(wants), r.Discrepancies)
	}
	for id, w := range wants {
		if got[id] != w {
			t.Errorf("discrepancy %s = %+v, want %+v", id, got[id], w)
		}
	}
}

func discrepancy(r payment.Report, id string) payment.Discrepancy {
	for _, d := range r.Discrepancies {
		if d.ID == id {
			return d
		}
	}
	return payment.Discrepancy{}
}

func edit(lines []bank.StatementLine, id string, change func(*bank.StatementLine)) []bank.StatementLine {
	out := slices.Clone(lines)
	for i := range out {
		if out[i].ID == id {
			change(&out[i])
			return out
		}
	}
	panic("no line " + id)
}

func without(lines []bank.StatementLine, id string) []bank.StatementLine {
	return slices.DeleteFunc(slices.Clone(lines), func(l bank.StatementLine) bool { return l.ID == id })
}

// TestReconDiscrepancyClasses reconciles a real simulated bank's statement — honest, then
// tampered with every kind of disagreement — and resolves the discrepancies: each adjustment
// moves the ledger by exactly its amount, each discrepancy resolves once, and a later honest
// statement turns the adjustments into stale ones whose reversal restores the balances.
func TestReconDiscrepancyClasses(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	ctx := context.Background()
	f.merchant("m1", 0)
	f.merchant("m2", 0)
	card := f.card().ID
	for i, amount := range []int64{1000, 2000, 3000, 4000} {
		f.payFinal(fmt.Sprintf("p%d", i+1), "m1", card, amount, payment.StatusSucceeded)
	}
	f.refund("p1", "r1", 500)
	f.payFinal("p7", "m2", card, 1000, payment.StatusSucceeded)
	f.refund("p7", "r7", 1000) // m2's payable is back to zero
	bk := f.banks["bank-a"]
	bk.SetProfile(sim.Profile{DeclineRate: 1})
	f.payFinal("p5", "m1", card, 5000, payment.StatusFailed)
	// p6 stays in flight: the bank answers after the call has timed out.
	bk.SetProfile(sim.Profile{Median: time.Minute})
	f.pay("p6", "m1", card, 6000)
	for {
		p, _ := f.svc.GetPayment(ctx, "p6")
		if len(p.Attempts) == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}

	day := today()
	honest := bk.Statement(day)
	if len(honest) != 8 { // p1..p5, p7, r1, r7
		t.Fatalf("the bank's statement has %d lines: %+v", len(honest), honest)
	}
	rep, created, err := f.svc.ReconcileAs(ctx, "ops", "bank-a", day, honest)
	if err != nil || !created {
		t.Fatalf("import: %v %v", created, err)
	}
	if rep.ID != "bank-a:"+day.Format(time.DateOnly) || rep.Status != payment.ReportReconciled || rep.Revision != 1 ||
		len(rep.Discrepancies) != 0 || rep.Statement.Summary.Matched != 8 || rep.Statement.ImportedBy != "ops" {
		t.Fatalf("honest report %+v", rep)
	}
	tot := rep.Statement.Summary.Totals
	if len(tot) != 1 || tot[0] != (payment.ReconTotal{Currency: "CNY", BankPayments: 11000, BankRefunds: 1500, OurPayments: 11000, OurRefunds: 1500}) {
		t.Errorf("totals %+v", tot)
	}
	// The same statement again: the same report, nothing written.
	again, created, err := f.svc.ReconcileAs(ctx, "ops", "bank-a", day, honest)
	if err != nil || created || again.Revision != 1 || again.Statement.ImportedAt != rep.Statement.ImportedAt {
		t.Fatalf("re-import: %+v %v %v", again, created, err)
	}
	if r, _ := f.st.GetRecord(ctx, payment.KindRecon, rep.ID); r.Version != 1 {
		t.Fatalf("re-import wrote version %d", r.Version)
	}

	// Tamper with the statement.
	at := honest[0].At
	tampered := without(honest, "p2.1")                                                          // short
	tampered = without(tampered, "p7.1")                                                         // short, merchant m2 holds nothing
	tampered = edit(tampered, "p3.1", func(l *bank.StatementLine) { l.Amount = 3001 })           // amount
	tampered = edit(tampered, "p5.1", func(l *bank.StatementLine) { l.Status = bank.Succeeded }) // status: bank charged, we failed
	tampered = edit(tampered, "p4.1", func(l *bank.StatementLine) { l.Status = bank.Failed })    // status: we succeeded, bank failed
	tampered = edit(tampered, "r1", func(l *bank.StatementLine) { l.Amount = 400 })              // refund amount
	tampered = append(tampered,
		bank.StatementLine{Kind: "payment", ID: "ghost.1", Amount: 700, Currency: "CNY", Status: bank.Succeeded, At: at}, // long
		bank.StatementLine{Kind: "payment", ID: "p6.1", Amount: 6000, Currency: "CNY", Status: bank.Succeeded, At: at},   // status: ours in flight
		bank.StatementLine{Kind: "payment", ID: "nobody.1", Amount: 50, Currency: "CNY", Status: bank.Failed, At: at},    // ignored
		bank.StatementLine{Kind: "refund", ID: "rx", Amount: 300, Currency: "CNY", Status: bank.Succeeded, At: at})       // long refund
	rep, created, err = f.svc.ReconcileAs(ctx, "ops", "bank-a", day, tampered)
	if err != nil || !created {
		t.Fatalf("tampered import: %v %v", created, err)
	}
	checkDiscrepancies(t, rep, map[string]want{
		"payment:p2.1":    {payment.DiscrepancyShort, -2000},
		"payment:p7.1":    {payment.DiscrepancyShort, -1000},
		"payment:p3.1":    {payment.DiscrepancyAmount, 1},
		"payment:p5.1":    {payment.DiscrepancyStatus, 5000},
		"payment:p4.1":    {payment.DiscrepancyStatus, -4000},
		"refund:r1":       {payment.DiscrepancyAmount, 100},
		"payment:ghost.1": {payment.DiscrepancyLong, 700},
		"payment:p6.1":    {payment.DiscrepancyStatus, 6000},
		"refund:rx":       {payment.DiscrepancyLong, -300},
	})
	s := rep.Statement.Summary
	if rep.Revision != 2 || len(rep.History) != 1 || rep.History[0].SHA256 == rep.Statement.SHA256 || rep.Status != payment.ReportOpen ||
		s.Long != 2 || s.Short != 2 || s.AmountMismatch != 2 || s.StatusMismatch != 3 || s.Ignored != 1 || s.Matched != 2 {
		t.Fatalf("tampered report: revision %d, history %d, status %s, summary %+v", rep.Revision, len(rep.History), rep.Status, s)
	}
	if d := discrepancy(rep, "payment:p5.1"); d.PaymentID != "p5" || d.MerchantID != "m1" || d.Ours.Status != "failed" || d.Bank.Status != "succeeded" {
		t.Errorf("p5.1 %+v", d)
	}
	if d := discrepancy(rep, "refund:r1"); d.PaymentID != "p1" || d.MerchantID != "m1" {
		t.Errorf("r1 %+v", d)
	}

	clearing, m1, m2, suspense := payment.ClearingAccount("bank-a", "CNY"), payment.MerchantAccount("m1", "CNY"), payment.MerchantAccount("m2", "CNY"), payment.SuspenseAccount("CNY")
	accounts := []string{clearing, m1, m2, suspense}
	balances := func() map[string]int64 {
		out := map[string]int64{}
		for _, a := range accounts {
			out[a] = f.net(a)
		}
		return out
	}
	start := balances()
	moved := func(before map[string]int64, want map[string]int64) {
		t.Helper()
		now := balances()
		for _, a := range accounts {
			if now[a]-before[a] != want[a] {
				t.Errorf("%s moved by %d, want %d", a, now[a]-before[a], want[a])
			}
		}
	}
	id := rep.ID
	resolve := func(disc, action string, wantErr apierror.Code, wantMove map[string]int64) payment.Report {
		t.Helper()
		before := balances()
		r, err := f.svc.ResolveDiscrepancy(ctx, id, disc, action, "checked with the bank", "alice")
		if code(err) != wantErr || (wantErr == "" && err != nil) {
			t.Fatalf("resolve %s by %s: %v, want %q", disc, action, err, wantErr)
		}
		moved(before, wantMove)
		return r
	}
	// Short: we credited the merchant for a payment the bank does not have.
	r := resolve("payment:p2.1", payment.ResolveAdjust, "", map[string]int64{clearing: -2000, m1: 2000})
	d := discrepancy(r, "payment:p2.1")
	if d.Status != payment.DiscrepancyResolved || d.Adjusted != -2000 || len(d.Resolutions) != 1 {
		t.Fatalf("p2.1 after adjust %+v", d)
	}
	if res := d.Resolutions[0]; res.Actor != "alice" || res.Note != "checked with the bank" || res.TransferID == "" ||
		res.Debit != m1 || res.Credit != clearing || res.Amount != 2000 || res.At.IsZero() {
		t.Errorf("audit trail %+v", res)
	}
	if tr, err := f.st.GetTransfer(ctx, d.Resolutions[0].TransferID); err != nil || tr.Amount != 2000 || tr.Code != "recon_adjustment" {
		t.Errorf("adjustment transfer %+v %v", tr, err)
	}
	// Once resolved, a discrepancy resolves once; the same request again is a replay.
	resolve("payment:p2.1", payment.ResolveAdjust, "", nil)
	resolve("payment:p2.1", payment.ResolveAccept, apierror.ReconAlreadyResolved, nil)
	// Long: the bank charged something we have no record of — clearing against suspense.
	resolve("payment:ghost.1", payment.ResolveAdjust, "", map[string]int64{clearing: 700, suspense: -700})
	// Bank charged, we failed: the merchant is credited.
	resolve("payment:p5.1", payment.ResolveAdjust, "", map[string]int64{clearing: 5000, m1: -5000})
	// Parked in suspense.
	resolve("payment:p3.1", payment.ResolveSuspense, "", map[string]int64{clearing: 1, suspense: -1})
	// m2 holds nothing: taking 1,000 back breaks its balance rule and changes nothing...
	resolve("payment:p7.1", payment.ResolveAdjust, apierror.ExceedsCredits, nil)
	if d := discrepancy(r, "payment:p7.1"); d.Status != payment.DiscrepancyOpen {
		t.Fatalf("p7.1 after a failed adjustment %+v", d)
	}
	// ... so it goes to suspense.
	resolve("payment:p7.1", payment.ResolveSuspense, "", map[string]int64{clearing: -1000, suspense: 1000})
	// In flight: no adjustment until it settles; accepting posts nothing.
	resolve("payment:p6.1", payment.ResolveAdjust, apierror.ReconNotAdjustable, nil)
	resolve("payment:p6.1", payment.ResolveAccept, "", nil)
	// Bad requests.
	if _, err := f.svc.ResolveDiscrepancy(ctx, id, "payment:nope.1", payment.ResolveAccept, "x", "alice"); code(err) != apierror.ReconDiscrepancyNotFound {
		t.Errorf("unknown discrepancy: %v", err)
	}
	if _, err := f.svc.ResolveDiscrepancy(ctx, "bank-a:2001-01-01", "payment:p4.1", payment.ResolveAccept, "x", "alice"); code(err) != apierror.ReconReportNotFound {
		t.Errorf("unknown report: %v", err)
	}
	if _, err := f.svc.ResolveDiscrepancy(ctx, id, "payment:p4.1", "refund_customer", "x", "alice"); code(err) != apierror.InvalidRequest {
		t.Errorf("bad action: %v", err)
	}
	if _, err := f.svc.ResolveDiscrepancy(ctx, id, "payment:p4.1", payment.ResolveAccept, "  ", "alice"); code(err) != apierror.InvalidRequest {
		t.Errorf("no note: %v", err)
	}
	moved(start, map[string]int64{clearing: -2000 + 700 + 5000 + 1 - 1000, m1: 2000 - 5000, suspense: -700 - 1 + 1000})
	rep, err = f.svc.GetReconReport(ctx, "bank-a", day)
	if err != nil || rep.Status != payment.ReportOpen || rep.Revision != 2 {
		t.Fatalf("report %+v %v", rep, err)
	}
	open := 0
	for _, d := range rep.Discrepancies {
		if d.Status == payment.DiscrepancyOpen {
			open++
		}
	}
	if open != 3 { // p4.1, r1, rx
		t.Errorf("%d open discrepancies, want 3", open)
	}
	// The tampered file again changes nothing.
	if again, created, err := f.svc.ReconcileAs(ctx, "ops", "bank-a", day, tampered); err != nil || created || again.Revision != 2 {
		t.Fatalf("tampered re-import %v %v", created, err)
	}

	// The honest statement again: a new revision; the adjustments made for the tampered one
	// are now stale, the accepted in-flight item is kept for its audit trail, the rest is gone.
	rep, created, err = f.svc.ReconcileAs(ctx, "ops", "bank-a", day, honest)
	if err != nil || !created || rep.Revision != 3 || len(rep.History) != 2 {
		t.Fatalf("honest re-import: %+v %v %v", rep, created, err)
	}
	checkDiscrepancies(t, rep, map[string]want{
		"payment:p2.1":    {payment.DiscrepancyStale, 0},
		"payment:p7.1":    {payment.DiscrepancyStale, 0},
		"payment:ghost.1": {payment.DiscrepancyStale, 0},
		"payment:p5.1":    {payment.DiscrepancyStale, 0},
		"payment:p3.1":    {payment.DiscrepancyStale, 0},
		"payment:p6.1":    {payment.DiscrepancyStatus, 6000},
	})
	if d := discrepancy(rep, "payment:p6.1"); !d.Superseded || d.Status != payment.DiscrepancyResolved {
		t.Errorf("p6.1 %+v", d)
	}
	for _, disc := range []string{"payment:p2.1", "payment:p7.1", "payment:ghost.1", "payment:p5.1", "payment:p3.1"} {
		if _, err := f.svc.ResolveDiscrepancy(ctx, id, disc, payment.ResolveAdjust, "reverse the adjustment", "bob"); err != nil {
			t.Fatalf("reverse %s: %v", disc, err)
		}
	}
	moved(start, map[string]int64{})
	rep, _ = f.svc.GetReconReport(ctx, "bank-a", day)
	if rep.Status != payment.ReportReconciled {
		t.Errorf("report after reversals: %s %+v", rep.Status, rep.Discrepancies)
	}
	if d := discrepancy(rep, "payment:p2.1"); d.Adjusted != 0 || len(d.Resolutions) != 2 || d.Resolutions[1].Debit != clearing || d.Resolutions[1].Credit != m1 {
		t.Errorf("p2.1 after reversal %+v", d)
	}
}

// TestReconCrossDay: an item the bank put on the statement of another day than the one we
// recorded its success on is not short on either day, in whichever order the statements come.
func TestReconCrossDay(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	ctx := context.Background()
	f.merchant("m1", 0)
	card := f.card().ID
	for _, id := range []string{"p1", "p2", "p3"} {
		f.payFinal(id, "m1", card, 1000, payment.StatusSucceeded)
	}
	day := today()
	yesterday := day.AddDate(0, 0, -1)
	lines := f.banks["bank-a"].Statement(day)
	moved := func(ls []bank.StatementLine, ids ...string) (on, off []bank.StatementLine) {
		for _, l := range ls {
			if slices.Contains(ids, l.ID) {
				l.At = yesterday.Add(23*time.Hour + 59*time.Minute)
				off = append(off, l)
			} else {
				on = append(on, l)
			}
		}
		return on, off
	}
	// Today's statement first: p1 is short; then yesterday's carries it, and clears it.
	todays, yesterdays := moved(lines, "p1.1")
	rep, err := f.svc.Reconcile(ctx, "bank-a", day, todays)
	if err != nil {
		t.Fatal(err)
	}
	checkDiscrepancies(t, rep, map[string]want{"payment:p1.1": {payment.DiscrepancyShort, -1000}})
	prev, err := f.svc.Reconcile(ctx, "bank-a", yesterday, yesterdays)
	if err != nil {
		t.Fatal(err)
	}
	if len(prev.Discrepancies) != 0 || prev.Statement.Summary.Matched != 1 || len(prev.CrossDay) != 1 ||
		prev.CrossDay[0] != (payment.CrossDayMatch{Kind: "payment", BankID: "p1.1", OurDate: day.Format(time.DateOnly)}) {
		t.Fatalf("yesterday's report %+v", prev)
	}
	rep, _ = f.svc.GetReconReport(ctx, "bank-a", day)
	d := discrepancy(rep, "payment:p1.1")
	if rep.Status != payment.ReportReconciled || d.Status != payment.DiscrepancyResolved || len(d.Resolutions) != 1 ||
		d.Resolutions[0].Action != "matched" || d.Resolutions[0].Actor != "system" {
		t.Fatalf("today's report after yesterday's: %s %+v", rep.Status, rep.Discrepancies)
	}
	// The other order: yesterday's statement (now with p3 as well) before today's.
	todays, yesterdays = moved(lines, "p1.1", "p3.1")
	if _, err := f.svc.Reconcile(ctx, "bank-a", yesterday, yesterdays); err != nil {
		t.Fatal(err)
	}
	rep, err = f.svc.Reconcile(ctx, "bank-a", day, todays)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Revision != 2 || rep.Status != payment.ReportReconciled || rep.Statement.Summary.MatchedOtherDay != 2 || rep.Statement.Summary.Short != 0 {
		t.Fatalf("today's second report %+v", rep)
	}
}

// TestReconBadInputChangesNothing: unknown channels, days to come, malformed statements and
// statements beyond the limits are refused before anything is written.
func TestReconBadInputChangesNothing(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	ctx := context.Background()
	day := today()
	ok := bank.StatementLine{Kind: "payment", ID: "x.1", Amount: 100, Currency: "CNY", Status: bank.Succeeded, At: day}
	with := func(change func(*bank.StatementLine)) []bank.StatementLine {
		l := ok
		change(&l)
		return []bank.StatementLine{l}
	}
	for name, tc := range map[string]struct {
		channel string
		day     time.Time
		lines   []bank.StatementLine
		want    apierror.Code
	}{
		"unknown channel": {"bank-z", day, []bank.StatementLine{ok}, apierror.ChannelNotFound},
		"tomorrow":        {"bank-a", day.AddDate(0, 0, 1), []bank.StatementLine{ok}, apierror.InvalidRequest},
		"kind":            {"bank-a", day, with(func(l *bank.StatementLine) { l.Kind = "chargeback" }), apierror.ReconStatementInvalid},
		"status":          {"bank-a", day, with(func(l *bank.StatementLine) { l.Status = bank.Pending }), apierror.ReconStatementInvalid},
		"amount":          {"bank-a", day, with(func(l *bank.StatementLine) { l.Amount = 0 }), apierror.ReconStatementInvalid},
		"currency":        {"bank-a", day, with(func(l *bank.StatementLine) { l.Currency = "XYZ" }), apierror.ReconStatementInvalid},
		"id":              {"bank-a", day, with(func(l *bank.StatementLine) { l.ID = "a\nb" }), apierror.ReconStatementInvalid},
		"duplicate":       {"bank-a", day, []bank.StatementLine{ok, ok}, apierror.ReconStatementInvalid},
	} {
		if _, err := f.svc.Reconcile(ctx, tc.channel, tc.day, tc.lines); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	// More discrepancies than a report holds.
	var many []bank.StatementLine
	for i := range payment.ReconDiscrepanciesMax + 1 {
		l := ok
		l.ID = fmt.Sprintf("ghost%d.1", i)
		many = append(many, l)
	}
	if _, err := f.svc.Reconcile(ctx, "bank-a", day, many); code(err) != apierror.ReconLimitExceeded {
		t.Errorf("too many discrepancies: %v", err)
	}
	for _, d := range []time.Time{day, day.AddDate(0, 0, 1)} {
		if _, err := f.svc.GetReconReport(ctx, "bank-a", d); code(err) != apierror.ReconReportNotFound {
			t.Errorf("a report of %s was stored: %v", d.Format(time.DateOnly), err)
		}
	}
	for _, kind := range []string{payment.KindRecon, payment.KindReconPage} {
		recs, _, err := f.st.ListRecords(ctx, ledger.RecordQuery{Kind: kind, Limit: 10})
		if err != nil || len(recs) != 0 {
			t.Errorf("%s records stored: %d %v", kind, len(recs), err)
		}
	}
}

// TestReconOnPostgres imports and resolves on PostgreSQL (skipped without
// FINCORE_TEST_POSTGRES).
func TestReconOnPostgres(t *testing.T) {
	st, err := postgres.OpenLedger(context.Background(), pgtest.URL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	f := startFixture(t, st, map[string]sim.Profile{"bank-a": {}}, nil)
	ctx := context.Background()
	f.merchant("m1", 0)
	card := f.card().ID
	f.payFinal("p1", "m1", card, 1000, payment.StatusSucceeded)
	f.payFinal("p2", "m1", card, 2000, payment.StatusSucceeded)
	day := today()
	lines := without(f.banks["bank-a"].Statement(day), "p2.1")
	rep, err := f.svc.Reconcile(ctx, "bank-a", day, lines)
	if err != nil {
		t.Fatal(err)
	}
	checkDiscrepancies(t, rep, map[string]want{"payment:p2.1": {payment.DiscrepancyShort, -2000}})
	before := f.net(payment.ClearingAccount("bank-a", "CNY"))
	if _, err := f.svc.ResolveDiscrepancy(ctx, rep.ID, "payment:p2.1", payment.ResolveAdjust, "bank confirms no charge", "alice"); err != nil {
		t.Fatal(err)
	}
	if after := f.net(payment.ClearingAccount("bank-a", "CNY")); after-before != -2000 {
		t.Errorf("clearing moved by %d", after-before)
	}
	if again, err := f.svc.Reconcile(ctx, "bank-a", day, lines); err != nil || again.Revision != 1 || again.Status != payment.ReportReconciled {
		t.Errorf("re-import %+v %v", again, err)
	}
}

// TestReconManyDiscrepancies: a report holds more discrepancies than one record: they are
// stored in pages, all of them are listed in id order through the cursor, by status too; a
// resolution rewrites only the page holding its discrepancy; a later revision with fewer
// discrepancies and one with more again reuse the page records; a report stored before pages
// (its discrepancies inline) still reads, lists and resolves.
func TestReconManyDiscrepancies(t *testing.T) {
	reconMany(t, newFixture(t, map[string]sim.Profile{"bank-a": {}}))
}

// TestReconManyDiscrepanciesOnPostgres is TestReconManyDiscrepancies on PostgreSQL (skipped
// without FINCORE_TEST_POSTGRES).
func TestReconManyDiscrepanciesOnPostgres(t *testing.T) {
	st, err := postgres.OpenLedger(context.Background(), pgtest.URL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	reconMany(t, startFixture(t, st, map[string]sim.Profile{"bank-a": {}}, nil))
}

func reconMany(t *testing.T, f *fixture) {
	ctx := context.Background()
	day := today()
	const n = 300
	var lines []bank.StatementLine
	var ids []string
	for i := range n {
		id := fmt.Sprintf("ghost%03d.1", i)
		lines = append(lines, bank.StatementLine{Kind: "payment", ID: id, Amount: int64(100 + i), Currency: "CNY", Status: bank.Succeeded, At: day})
		ids = append(ids, "payment:"+id)
	}
	rep, err := f.svc.Reconcile(ctx, "bank-a", day, lines)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DiscrepancyCount != n || rep.OpenCount != n || len(rep.Discrepancies) != n || rep.Status != payment.ReportOpen {
		t.Fatalf("report: %d discrepancies (%d open), %d listed", rep.DiscrepancyCount, rep.OpenCount, len(rep.Discrepancies))
	}
	if b := rep.Brief(); len(b.Discrepancies) != payment.ReconInlineDiscrepancies || !b.MoreDiscrepancies || b.DiscrepancyCount != n ||
		b.Discrepancies[0].ID != ids[0] {
		t.Fatalf("brief: %d discrepancies, more %v", len(b.Discrepancies), b.MoreDiscrepancies)
	}
	pages := func() map[string]int64 {
		t.Helper()
		recs, _, err := f.st.ListRecords(ctx, ledger.RecordQuery{Kind: payment.KindReconPage, Owner: rep.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int64{}
		for _, r := range recs {
			if len(r.Data) > 48<<10 {
				t.Errorf("page %s holds %d bytes", r.ID, len(r.Data))
			}
			out[r.ID] = r.Version
		}
		return out
	}
	first := pages()
	if len(first) < 2 {
		t.Fatalf("%d discrepancies in %d pages", n, len(first))
	}
	list := func(q payment.DiscrepancyQuery) []string {
		t.Helper()
		var got []string
		for {
			ds, more, err := f.svc.ListDiscrepancies(ctx, "bank-a", day, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) > q.Limit || (more && len(ds) != q.Limit) {
				t.Fatalf("a page of %d (limit %d), more %v", len(ds), q.Limit, more)
			}
			for _, d := range ds {
				got = append(got, d.ID)
			}
			if !more {
				return got
			}
			q.StartingAfter = ds[len(ds)-1].ID
		}
	}
	if got := list(payment.DiscrepancyQuery{Limit: 7}); !slices.Equal(got, ids) {
		t.Fatalf("listed %d discrepancies, want %d in id order", len(got), n)
	}

	// Resolve one far down the list: only its page and the report change.
	target := ids[250]
	r, err := f.svc.ResolveDiscrepancy(ctx, rep.ID, target, payment.ResolveAccept, "the bank's test item", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.OpenCount != n-1 || r.DiscrepancyCount != n || r.Status != payment.ReportOpen {
		t.Fatalf("after resolving: %d of %d open", r.OpenCount, r.DiscrepancyCount)
	}
	changed := 0
	for id, v := range pages() {
		if v != first[id] {
			changed++
		}
	}
	if changed != 1 {
		t.Fatalf("resolving one discrepancy rewrote %d pages", changed)
	}
	if got := list(payment.DiscrepancyQuery{Status: payment.DiscrepancyResolved, Limit: 100}); !slices.Equal(got, []string{target}) {
		t.Fatalf("resolved: %v", got)
	}
	if got := list(payment.DiscrepancyQuery{Status: payment.DiscrepancyOpen, Limit: 100}); len(got) != n-1 || slices.Contains(got, target) {
		t.Fatalf("open: %d", len(got))
	}
	if got, err := f.svc.GetReconReport(ctx, "bank-a", day); err != nil || discrepancy(got, target).Status != payment.DiscrepancyResolved || len(got.Discrepancies) != n {
		t.Fatalf("report read back: %v", err)
	}
	if _, _, err := f.svc.ListDiscrepancies(ctx, "bank-a", day, payment.DiscrepancyQuery{Status: "settled", Limit: 10}); code(err) != apierror.InvalidRequest {
		t.Errorf("an unknown status: %v", err)
	}
	for _, q := range []payment.DiscrepancyQuery{{StartingAfter: "payment:nope", Limit: 10}, {StartingAfter: "payment:ghost9999.1", Limit: 10}} {
		if _, _, err := f.svc.ListDiscrepancies(ctx, "bank-a", day, q); code(err) != apierror.ReconDiscrepancyNotFound {
			t.Errorf("starting after %s: %v", q.StartingAfter, err)
		}
	}
	if _, _, err := f.svc.ListDiscrepancies(ctx, "bank-a", day.AddDate(0, 0, -1), payment.DiscrepancyQuery{}); code(err) != apierror.ReconReportNotFound {
		t.Errorf("a day without a report: %v", err)
	}

	// Fewer discrepancies: one page in use (the resolved one stays, superseded, for its audit
	// trail); then all of them again.
	rep, err = f.svc.Reconcile(ctx, "bank-a", day, lines[:40])
	if err != nil {
		t.Fatal(err)
	}
	if got := list(payment.DiscrepancyQuery{Limit: 500}); !slices.Equal(got, append(slices.Clone(ids[:40]), target)) || rep.DiscrepancyCount != 41 || rep.OpenCount != 40 {
		t.Fatalf("revision 2: %d discrepancies (%d open), listed %d", rep.DiscrepancyCount, rep.OpenCount, len(got))
	}
	rep, err = f.svc.Reconcile(ctx, "bank-a", day, lines)
	if err != nil {
		t.Fatal(err)
	}
	if got := list(payment.DiscrepancyQuery{Limit: 500}); !slices.Equal(got, ids) || rep.DiscrepancyCount != n || rep.OpenCount != n-1 || rep.Revision != 3 {
		t.Fatalf("revision 3: %d discrepancies (%d open), listed %d", rep.DiscrepancyCount, rep.OpenCount, len(got))
	}
	if len(pages()) != len(first) {
		t.Errorf("%d page records, then %d", len(first), len(pages()))
	}

	// As many as a report holds.
	var most []bank.StatementLine
	for i := range payment.ReconDiscrepanciesMax {
		most = append(most, bank.StatementLine{Kind: "payment", ID: fmt.Sprintf("max%04d.1", i), Amount: 100, Currency: "CNY", Status: bank.Succeeded, At: day})
	}
	if r, err := f.svc.Reconcile(ctx, "bank-a", day.AddDate(0, 0, -10), most); err != nil || r.DiscrepancyCount != payment.ReconDiscrepanciesMax {
		t.Fatalf("%d discrepancies: %v", payment.ReconDiscrepanciesMax, err)
	}

	// A report stored before pages, its discrepancies inline.
	old := day.AddDate(0, 0, -5)
	legacy := fmt.Sprintf(`{"id":%q,"channel":"bank-a","date":%q,"status":"open","revision":1,"statement":{"revision":1},"discrepancies":[
		{"id":"payment:a.1","type":"long","kind":"payment","bank_id":"a.1","currency":"CNY","delta":5,"adjusted":0,"status":"open"},
		{"id":"payment:b.1","type":"long","kind":"payment","bank_id":"b.1","currency":"CNY","delta":6,"adjusted":0,"status":"open"}],
		"cross_day":[],"history":[]}`, payment.ReconID("bank-a", old), old.Format(time.DateOnly))
	if _, err := f.eng.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: payment.KindRecon,
		ID: payment.ReconID("bank-a", old), Owner: "bank-a", Status: "open", Data: []byte(legacy)}}}}); err != nil {
		t.Fatal(err)
	}
	lr, err := f.svc.GetReconReport(ctx, "bank-a", old)
	if err != nil || lr.DiscrepancyCount != 2 || lr.OpenCount != 2 {
		t.Fatalf("legacy report %+v, %v", lr, err)
	}
	ds, more, err := f.svc.ListDiscrepancies(ctx, "bank-a", old, payment.DiscrepancyQuery{StartingAfter: "payment:a.1", Limit: 5})
	if err != nil || more || len(ds) != 1 || ds[0].ID != "payment:b.1" {
		t.Fatalf("legacy list %+v %v %v", ds, more, err)
	}
	if lr, err = f.svc.ResolveDiscrepancy(ctx, lr.ID, "payment:a.1", payment.ResolveAccept, "checked", "bob"); err != nil || lr.OpenCount != 1 {
		t.Fatalf("legacy resolve: %+v, %v", lr, err)
	}
	if got, err := f.svc.GetReconReport(ctx, "bank-a", old); err != nil || got.OpenCount != 1 || discrepancy(got, "payment:a.1").Status != payment.DiscrepancyResolved {
		t.Fatalf("legacy report after resolving: %+v, %v", got, err)
	}
}
