package payment_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/platform/outbox"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/postgres"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/sqlite"
)

// fixture is a payment service on real storage, a real ledger engine and timer service, and
// simulated banks in process.
type fixture struct {
	t     *testing.T
	st    ledger.Store
	eng   *ledger.Engine
	svc   *payment.Service
	banks map[string]*sim.Bank
}

const validPAN = "6222020200112233446" // passes Luhn (TestLuhn)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newFixture(t *testing.T, profiles map[string]sim.Profile) *fixture {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return startFixture(t, st, profiles, nil)
}

// newFixtureWith is newFixture with a change to the service's configuration.
func newFixtureWith(t *testing.T, profiles map[string]sim.Profile, configure func(*payment.Config)) *fixture {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return startFixture(t, st, profiles, configure)
}

func startFixture(t *testing.T, st ledger.Store, profiles map[string]sim.Profile, configure func(*payment.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	ts, err := timer.New(timer.Config{Store: st.(timer.Provider).Timers(), BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet(), TimersCommitted: ts.Committed})
	if err != nil {
		t.Fatal(err)
	}
	reg := bank.NewRegistry()
	f := &fixture{t: t, st: st, eng: eng, banks: map[string]*sim.Bank{}}
	for code, p := range profiles {
		b, err := sim.New(sim.Options{Name: code, Profile: p, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		f.banks[code] = b
		if err := reg.Add(sim.NewChannel(code, bank.Capabilities{Currencies: []string{"CNY"}, Refunds: true}, b)); err != nil {
			t.Fatal(err)
		}
	}
	sealer, _ := payment.NewSealer(payment.NewKey())
	cfg := payment.Config{Ledger: eng, Store: st, Channels: reg, Router: route.New(route.Options{Seed: 1}),
		Sealer: sealer, Logger: quiet(), QueryDelay: 20 * time.Millisecond, CallTimeout: 2 * time.Second}
	if configure != nil {
		configure(&cfg)
	}
	f.svc, err = payment.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, h := range f.svc.Handlers() {
		ts.Register(name, h)
	}
	if err := f.svc.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ts.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ts.Stop()
		eng.Close()
		for _, b := range f.banks {
			b.Close()
		}
		checkEventSubjects(t, st)
		st.Close()
	})
	return f
}

// checkEventSubjects fails t if the service emitted an event whose subject is not in
// EventSubjects (serve makes sure a stream captures each of those, and only those).
func checkEventSubjects(t *testing.T, st ledger.Store) {
	subjects, err := outbox.Subjects(context.Background(), st.(outbox.Provider).Outbox())
	if err != nil {
		t.Error(err)
	}
	for s := range subjects {
		if !slices.Contains(payment.EventSubjects, s) && !slices.Contains(ledger.EventSubjects, s) {
			t.Errorf("an event on %s, which is not in payment.EventSubjects", s)
		}
	}
}

func (f *fixture) merchant(id string, feeBps int) payment.Merchant {
	f.t.Helper()
	m, err := f.svc.CreateMerchant(context.Background(), payment.MerchantInput{ID: id, Name: "Shop " + id, Currency: "CNY", FeeBps: feeBps})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) card() payment.Card {
	f.t.Helper()
	c, err := f.svc.CreateCard(context.Background(), payment.CardInput{PAN: validPAN, Holder: "Zhang San", ExpiryMonth: 12, ExpiryYear: 2035, BankCode: "ICBC"})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// final waits for a payment to reach a final state.
func (f *fixture) final(id string) payment.Payment {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := f.svc.GetPayment(context.Background(), id)
		if err != nil {
			f.t.Fatal(err)
		}
		if p.Status.Final() {
			return p
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("payment %s still %s: %+v", id, p.Status, p.Attempts)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) balance(account string) (debits, credits int64) {
	f.t.Helper()
	a, err := f.st.GetAccount(context.Background(), account)
	if err != nil {
		f.t.Fatalf("account %s: %v", account, err)
	}
	return a.Balances.DebitsPosted, a.Balances.CreditsPosted
}

func (f *fixture) pay(id, merchant, card string, amount int64) payment.Payment {
	f.t.Helper()
	p, created, err := f.svc.CreatePayment(context.Background(), payment.PaymentInput{ID: id, MerchantID: merchant, Amount: amount, Currency: "CNY", CardID: card})
	if err != nil || !created || p.Status != payment.StatusProcessing {
		f.t.Fatalf("CreatePayment = %+v, %v, %v", p, created, err)
	}
	return p
}

func code(err error) apierror.Code {
	var ae *apierror.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestLuhn(t *testing.T) {
	if !payment.Luhn(validPAN) || !payment.Luhn("4242424242424242") {
		t.Fatal("valid numbers refused")
	}
	for _, pan := range []string{"4242424242424241", "42424242", "4242x24242424242", ""} {
		if payment.Luhn(pan) {
			t.Errorf("Luhn(%q) accepted", pan)
		}
	}
}

func TestPaymentSucceedsWithPostings(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	f.merchant("m1", 60) // 0.6%
	c := f.card()
	if c.Last4 != "3446" || c.Sealed != "" {
		t.Fatalf("card view %+v", c)
	}
	f.pay("p1", "m1", c.ID, 10000)
	p := f.final("p1")
	if p.Status != payment.StatusSucceeded || p.Fee != 60 || len(p.Attempts) != 1 || p.Attempts[0].ChannelRef == "" {
		t.Fatalf("payment %+v", p)
	}
	if d, _ := f.balance(payment.ClearingAccount("bank-a", "CNY")); d != 10000 {
		t.Errorf("clearing debited %d", d)
	}
	if d, c := f.balance(payment.MerchantAccount("m1", "CNY")); c-d != 9940 {
		t.Errorf("merchant payable %d", c-d)
	}
	if _, c := f.balance(payment.FeeAccount("CNY")); c != 60 {
		t.Errorf("fees %d", c)
	}
	// The payment.succeeded event went through the outbox.
	recs, err := f.st.(outbox.Provider).Outbox().Unpublished(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		if r.Subject == payment.EventPaymentSucceeded && r.MsgID == "evt_p1_succeeded" {
			found = true
		}
	}
	if !found {
		t.Error("no payment.succeeded event in the outbox")
	}
	if s := f.banks["bank-a"].Stats(); s.Charges != 1 || s.Charged != 10000 {
		t.Errorf("bank %+v", s)
	}
}

func TestCreatePaymentValidationAndIdempotency(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	f.merchant("m1", 0)
	c := f.card()
	ctx := context.Background()
	in := payment.PaymentInput{ID: "p1", MerchantID: "m1", Amount: 500, Currency: "CNY", CardID: c.ID}
	if _, created, err := f.svc.CreatePayment(ctx, in); err != nil || !created {
		t.Fatalf("first create: %v %v", created, err)
	}
	if _, created, err := f.svc.CreatePayment(ctx, in); err != nil || created {
		t.Fatalf("replay: %v %v", created, err)
	}
	other := in
	other.Amount = 501
	if _, _, err := f.svc.CreatePayment(ctx, other); code(err) != apierror.IDConflict {
		t.Fatalf("different body: %v", err)
	}
	for name, tc := range map[string]struct {
		in   payment.PaymentInput
		want apierror.Code
	}{
		"unknown merchant": {payment.PaymentInput{ID: "x1", MerchantID: "nope", Amount: 1, Currency: "CNY", CardID: c.ID}, apierror.MerchantNotFound},
		"unknown card":     {payment.PaymentInput{ID: "x2", MerchantID: "m1", Amount: 1, Currency: "CNY", CardID: "card_nope"}, apierror.CardNotFound},
		"zero amount":      {payment.PaymentInput{ID: "x3", MerchantID: "m1", Amount: 0, Currency: "CNY", CardID: c.ID}, apierror.InvalidRequest},
		"currency":         {payment.PaymentInput{ID: "x4", MerchantID: "m1", Amount: 1, Currency: "USD", CardID: c.ID}, apierror.CurrencyMismatch},
		"bad id":           {payment.PaymentInput{ID: "a:b", MerchantID: "m1", Amount: 1, Currency: "CNY", CardID: c.ID}, apierror.InvalidRequest},
	} {
		if _, _, err := f.svc.CreatePayment(ctx, tc.in); code(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
		if _, err := f.svc.GetPayment(ctx, tc.in.ID); code(err) != apierror.PaymentNotFound {
			t.Errorf("%s: the payment was stored (%v)", name, err)
		}
	}
	if _, err := f.svc.CreateCard(ctx, payment.CardInput{PAN: "4242424242424241", Holder: "x", ExpiryMonth: 1, ExpiryYear: 2035, BankCode: "ICBC"}); code(err) != apierror.CardInvalid {
		t.Errorf("bad Luhn: %v", err)
	}
	if _, err := f.svc.CreateCard(ctx, payment.CardInput{PAN: validPAN, Holder: "x", ExpiryMonth: 1, ExpiryYear: 2020, BankCode: "ICBC"}); code(err) != apierror.CardInvalid {
		t.Errorf("expired card: %v", err)
	}
	if _, err := f.svc.CreateMerchant(ctx, payment.MerchantInput{ID: "m1", Name: "again", Currency: "CNY"}); code(err) != apierror.IDConflict {
		t.Errorf("duplicate merchant: %v", err)
	}
}

func TestDeclineIsFinalWithoutPostings(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {DeclineRate: 1}, "bank-b": {DeclineRate: 1}})
	f.merchant("m1", 0)
	f.pay("p1", "m1", f.card().ID, 100)
	p := f.final("p1")
	if p.Status != payment.StatusFailed || p.FailureCode != string(bank.CodeDeclined) || len(p.Attempts) != 1 {
		t.Fatalf("a declined payment must fail at once, without trying another channel: %+v", p)
	}
	if _, err := f.st.GetTransfer(context.Background(), "pay:p1:capture"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatal("a failed payment was captured")
	}
}

func TestRetriableFailureMovesToAnotherChannel(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {SystemErrorRate: 1}, "bank-b": {SystemErrorRate: 1}, "bank-c": {SystemErrorRate: 1}})
	f.merchant("m1", 0)
	cardID := f.card().ID
	// Make exactly one channel work; whichever the router tries first, it ends there.
	f.banks["bank-b"].SetProfile(sim.Profile{})
	f.pay("p1", "m1", cardID, 100)
	p := f.final("p1")
	if p.Status != payment.StatusSucceeded || p.Attempts[len(p.Attempts)-1].Channel != "bank-b" {
		t.Fatalf("payment %+v", p)
	}
	for _, a := range p.Attempts[:len(p.Attempts)-1] {
		if a.Code != string(bank.CodeBankSystemError) {
			t.Errorf("earlier attempt %+v", a)
		}
	}
	if d, _ := f.balance(payment.ClearingAccount("bank-b", "CNY")); d != 100 {
		t.Errorf("bank-b clearing %d", d)
	}
}

func TestLostAnswerResolvedByQueryNeverChargedTwice(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {LostAnswerRate: 1}})
	f.merchant("m1", 0)
	cardID := f.card().ID
	f.pay("p1", "m1", cardID, 777)
	// The answer is lost: the payment waits on a query. Heal the network; the query finds
	// the charge.
	time.Sleep(100 * time.Millisecond)
	f.banks["bank-a"].SetProfile(sim.Profile{})
	p := f.final("p1")
	if p.Status != payment.StatusSucceeded || len(p.Attempts) != 1 {
		t.Fatalf("payment %+v", p)
	}
	if s := f.banks["bank-a"].Stats(); s.Charges != 1 || s.Charged != 777 {
		t.Fatalf("bank %+v: charged other than once", s)
	}
}

func TestNotificationsApplyOnceInAnyOrder(t *testing.T) {
	// The bank answers (and decides) only after an hour: the payment waits, and the
	// notifications decide it.
	f := newFixture(t, map[string]sim.Profile{"bank-a": {AsyncRate: 1, Median: time.Hour}})
	f.merchant("m1", 0)
	f.pay("p1", "m1", f.card().ID, 300)
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _ := f.svc.GetPayment(context.Background(), "p1")
		if len(p.Attempts) == 1 && (p.Attempts[0].Status == "pending" || p.Attempts[0].Status == "unknown") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment never pending: %+v", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx := context.Background()
	ok := payment.Notification{Kind: "payment", BankID: "p1.1", Result: bank.Result{Status: bank.Succeeded, Code: bank.CodeApproved, ChannelRef: "R1"}}
	fail := payment.Notification{Kind: "payment", BankID: "p1.1", Result: bank.Result{Status: bank.Failed, Code: bank.CodeDeclined}}
	for _, n := range []payment.Notification{ok, ok, fail} { // duplicated, then a contradicting late one
		if err := f.svc.ApplyNotification(ctx, "bank-a", n); err != nil {
			t.Fatal(err)
		}
	}
	// From another channel: ignored.
	if err := f.svc.ApplyNotification(ctx, "bank-z", fail); err != nil {
		t.Fatal(err)
	}
	p, _ := f.svc.GetPayment(ctx, "p1")
	if p.Status != payment.StatusSucceeded {
		t.Fatalf("payment %+v", p)
	}
	if d, _ := f.balance(payment.ClearingAccount("bank-a", "CNY")); d != 300 {
		t.Fatalf("captured %d, want 300 exactly once", d)
	}
}

func TestRefundsNeverExceedThePaymentUnderConcurrency(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	f.merchant("m1", 0)
	f.pay("p1", "m1", f.card().ID, 1000)
	f.final("p1")
	ctx := context.Background()
	if _, _, err := f.svc.CreateRefund(ctx, "p1", payment.RefundInput{ID: "r0", Amount: 1001}); code(err) != apierror.RefundExceedsPayment {
		t.Fatalf("refund over the amount: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := int64(0)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, created, err := f.svc.CreateRefund(ctx, "p1", payment.RefundInput{ID: fmt.Sprintf("r%d", i+1), Amount: 150})
			if err == nil && created {
				mu.Lock()
				accepted += r.Amount
				mu.Unlock()
			} else if code(err) != apierror.RefundExceedsPayment {
				t.Errorf("refund %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if accepted != 900 { // six of 150 fit in 1000
		t.Fatalf("accepted %d of refunds, want 900", accepted)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, _ := f.svc.GetPayment(ctx, "p1")
		if p.Refunded == 900 && p.RefundPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			rs, _, _ := f.svc.ListRefunds(ctx, "p1", 100)
			t.Fatalf("refunds not settled: %+v\nrefunds: %+v", p, rs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d, c := f.balance(payment.MerchantAccount("m1", "CNY")); c-d != 100 {
		t.Fatalf("merchant holds %d after refunds, want 100", c-d)
	}
	if s := f.banks["bank-a"].Stats(); s.Refunded != 900 {
		t.Fatalf("bank refunded %d", s.Refunded)
	}
	refunds, _, err := f.svc.ListRefunds(ctx, "p1", 100)
	if err != nil || len(refunds) != 6 {
		t.Fatalf("ListRefunds = %d, %v", len(refunds), err)
	}
	// Replaying a refund returns it; a failed payment cannot be refunded.
	if _, created, err := f.svc.CreateRefund(ctx, "p1", payment.RefundInput{ID: refunds[0].ID, Amount: 150}); err != nil || created {
		t.Fatalf("refund replay: %v %v", created, err)
	}
	if _, err := f.svc.ClosePayment(ctx, "p1"); code(err) != apierror.PaymentNotClosable {
		t.Fatalf("closing a succeeded payment: %v", err)
	}
}

func TestListPayments(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	f.merchant("m1", 0)
	f.merchant("m2", 0)
	c := f.card().ID
	for i := range 5 {
		m := "m1"
		if i%2 == 1 {
			m = "m2"
		}
		f.pay(fmt.Sprintf("p%d", i), m, c, 100)
		f.final(fmt.Sprintf("p%d", i))
	}
	ctx := context.Background()
	ps, more, err := f.svc.ListPayments(ctx, payment.ListQuery{MerchantID: "m1", Limit: 2})
	if err != nil || len(ps) != 2 || !more || ps[0].ID != "p4" || ps[1].ID != "p2" {
		t.Fatalf("page 1: %v %v %v", ids(ps), more, err)
	}
	ps, more, err = f.svc.ListPayments(ctx, payment.ListQuery{MerchantID: "m1", Limit: 2, StartingAfter: "p2"})
	if err != nil || len(ps) != 1 || more || ps[0].ID != "p0" {
		t.Fatalf("page 2: %v %v %v", ids(ps), more, err)
	}
	if ps, _, _ := f.svc.ListPayments(ctx, payment.ListQuery{Status: payment.StatusSucceeded, Limit: 10}); len(ps) != 5 {
		t.Fatalf("succeeded: %v", ids(ps))
	}
}

func ids(ps []payment.Payment) (out []string) {
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

// TestPaymentOnPostgres runs a payment and a refund through PostgreSQL (skipped without
// FINCORE_TEST_POSTGRES).
func TestPaymentOnPostgres(t *testing.T) {
	st, err := postgres.OpenLedger(context.Background(), pgtest.URL(t), true)
	if err != nil {
		t.Fatal(err)
	}
	f := startFixture(t, st, map[string]sim.Profile{"bank-a": {}}, nil)
	f.merchant("m1", 100)
	f.pay("p1", "m1", f.card().ID, 5000)
	if p := f.final("p1"); p.Status != payment.StatusSucceeded || p.Fee != 50 {
		t.Fatalf("payment %+v", p)
	}
	if _, _, err := f.svc.CreateRefund(context.Background(), "p1", payment.RefundInput{ID: "r1", Amount: 2000}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, _ := f.svc.GetRefund(context.Background(), "r1"); r.Status == payment.StatusSucceeded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("refund not settled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d, c := f.balance(payment.MerchantAccount("m1", "CNY")); c-d != 5000-50-2000 {
		t.Fatalf("merchant holds %d", c-d)
	}
}

func TestRiskScreenRejectsBeforeTheBank(t *testing.T) {
	f := newFixtureWith(t, map[string]sim.Profile{"bank-a": {}}, func(c *payment.Config) {
		c.Screen = func(_ context.Context, p payment.Payment, card payment.Card) (payment.Screening, error) {
			if p.Amount >= 100000 {
				return payment.Screening{Reject: true, Reasons: []string{"too_large"}}, nil
			}
			if p.Amount == 13 {
				return payment.Screening{}, errors.New("risk engine down")
			}
			return payment.Screening{}, nil
		}
	})
	f.merchant("m1", 0)
	c := f.card().ID
	p, created, err := f.svc.CreatePayment(context.Background(), payment.PaymentInput{ID: "big", MerchantID: "m1", Amount: 100000, Currency: "CNY", CardID: c})
	if err != nil || !created || p.Status != payment.StatusFailed || p.FailureCode != payment.FailureRiskRejected {
		t.Fatalf("rejected payment = %+v, %v, %v", p, created, err)
	}
	// A failing screen does not stop payments.
	f.pay("small", "m1", c, 13)
	if p := f.final("small"); p.Status != payment.StatusSucceeded {
		t.Fatalf("payment with a failing screen %+v", p)
	}
	if s := f.banks["bank-a"].Stats(); s.Requests != 1 {
		t.Fatalf("the bank saw %d requests, want only the accepted payment's", s.Requests)
	}
}

// TestAttemptsAndRefundsKeepTheBank: attempts record the card's issuing bank, refunds take it
// from the payment's attempt, and the calls count under it; an attempt recorded before
// attempts kept the bank still reads, and its calls count under "unknown".
func TestAttemptsAndRefundsKeepTheBank(t *testing.T) {
	var mu sync.Mutex
	observed := map[string]int{}
	f := newFixtureWith(t, map[string]sim.Profile{"bank-a": {}}, func(c *payment.Config) {
		c.Observe = func(channel, bankLabel string, code bank.Code, _ time.Duration) {
			mu.Lock()
			observed[channel+"/"+bankLabel+"/"+string(code)]++
			mu.Unlock()
		}
	})
	ctx := context.Background()
	f.merchant("m1", 0)
	c := f.card()
	f.pay("p1", "m1", c.ID, 1000)
	p := f.final("p1")
	if p.Status != payment.StatusSucceeded || len(p.Attempts) != 1 || p.Attempts[0].Bank != "ICBC" {
		t.Fatalf("payment %+v", p)
	}
	r, _, err := f.svc.CreateRefund(ctx, "p1", payment.RefundInput{ID: "r1", Amount: 400})
	if err != nil || r.Bank != "ICBC" {
		t.Fatalf("refund %+v, %v", r, err)
	}

	// A payment as stored before attempts kept the bank: sent, outcome unknown, no "bank".
	now := time.Now().UTC().Format(time.RFC3339Nano)
	old := fmt.Sprintf(`{"id":"old","merchant_id":"m1","amount":500,"currency":"CNY","card_id":%q,"metadata":{},"status":"processing",`+
		`"fee":0,"amount_refunded":0,"amount_refund_pending":0,"attempts":[{"n":1,"channel":"bank-a","bank_id":"old.1","status":"sending","at":%q}],`+
		`"created":%q,"updated":%q}`, c.ID, now, now, now)
	if _, err := f.eng.Commit(ctx, ledger.Unit{
		Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: payment.KindPayment, ID: "old", Owner: "m1", Status: "processing", Data: []byte(old)}}},
		Timers:  []timer.Timer{{ID: "payment.query:old.1", Handler: payment.HandlerQuery, FireAt: time.Now(), Payload: []byte("old")}},
	}); err != nil {
		t.Fatal(err)
	}
	// The bank never got it (not found: not charged), and no other channel is left.
	if p := f.final("old"); p.Status != payment.StatusFailed || p.FailureCode != "not_found" || p.Attempts[0].Bank != "" {
		t.Fatalf("old payment %+v", p)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, _ := f.svc.GetRefund(ctx, "r1"); r.Status.Final() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refund does not settle")
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := f.svc.Stats()
	a := st.Channels["bank-a"]
	if a.Calls != 3 || len(a.Banks) != 2 || a.Banks[0].Bank != "ICBC" || a.Banks[0].Calls != 2 || a.Banks[0].Codes["approved"] != 2 ||
		a.Banks[1].Bank != payment.BankUnknown || a.Banks[1].Calls != 1 || a.Banks[1].Codes["not_found"] != 1 {
		t.Fatalf("stats %+v", a)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := map[string]int{"bank-a/ICBC/approved": 2, "bank-a/unknown/not_found": 1}; !reflect.DeepEqual(observed, want) {
		t.Fatalf("observed %v, want %v", observed, want)
	}
}

// TestMerchantStatsEveryFinalPath: a merchant's statistics count each payment once when it
// reaches its final state, whichever way: approved or declined by the bank, rejected by the
// risk screen, failed for want of a channel, closed; an unknown merchant is
// merchant_not_found.
func TestMerchantStatsEveryFinalPath(t *testing.T) {
	f := newFixtureWith(t, map[string]sim.Profile{"bank-a": {IssuerDeclineRates: map[string]float64{"BBB": 1}}}, func(c *payment.Config) {
		c.Screen = func(_ context.Context, p payment.Payment, _ payment.Card) (payment.Screening, error) {
			return payment.Screening{Reject: p.Amount >= 100000}, nil
		}
	})
	ctx := context.Background()
	f.merchant("m1", 0)
	if _, err := f.svc.CreateMerchant(ctx, payment.MerchantInput{ID: "m2", Name: "Dollar shop", Currency: "USD"}); err != nil {
		t.Fatal(err)
	}
	good := f.card().ID
	bad, err := f.svc.CreateCard(ctx, payment.CardInput{PAN: validPAN, Holder: "Li Si", ExpiryMonth: 12, ExpiryYear: 2035, BankCode: "BBB"})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []string{good, good, bad.ID} {
		id := fmt.Sprint("p", i)
		f.pay(id, "m1", c, 100)
		f.final(id)
	}
	if p, _, err := f.svc.CreatePayment(ctx, payment.PaymentInput{ID: "big", MerchantID: "m1", Amount: 100000, Currency: "CNY", CardID: good}); err != nil || p.Status != payment.StatusFailed {
		t.Fatalf("rejected payment %+v, %v", p, err)
	}
	// No channel takes USD.
	if _, _, err := f.svc.CreatePayment(ctx, payment.PaymentInput{ID: "usd", MerchantID: "m2", Amount: 100, Currency: "USD", CardID: good}); err != nil {
		t.Fatal(err)
	}
	if p := f.final("usd"); p.FailureCode != "no_channel_available" {
		t.Fatalf("usd payment %+v", p)
	}
	// Closing races with processing: whichever wins, the payment counts once.
	f.pay("c", "m1", good, 100)
	_, closeErr := f.svc.ClosePayment(ctx, "c")
	closed := f.final("c").Status == payment.StatusClosed
	if closed != (closeErr == nil) {
		t.Fatalf("close: %v, payment closed %v", closeErr, closed)
	}
	if _, err := f.svc.ClosePayment(ctx, "c"); closed && err != nil {
		t.Fatal(err)
	}
	// Replays change nothing.
	if _, created, err := f.svc.CreatePayment(ctx, payment.PaymentInput{ID: "big", MerchantID: "m1", Amount: 100000, Currency: "CNY", CardID: good}); err != nil || created {
		t.Fatalf("replay: created %v, %v", created, err)
	}
	st, err := f.svc.MerchantStats(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	want := payment.MerchantStats{Payments: 5, Succeeded: 3, Failed: 2, SuccessRate: 0.6}
	if closed {
		want = payment.MerchantStats{Payments: 5, Succeeded: 2, Failed: 2, Closed: 1, SuccessRate: 0.5}
	}
	if st.Payments != want.Payments || st.Succeeded != want.Succeeded || st.Failed != want.Failed || st.Closed != want.Closed ||
		st.SuccessRate != want.SuccessRate || st.Recent.Payments != 5 ||
		!reflect.DeepEqual(st.FailureCodes, map[string]int64{"declined": 1, payment.FailureRiskRejected: 1}) {
		t.Errorf("m1 %+v (closed %v)", st, closed)
	}
	st, err = f.svc.MerchantStats(ctx, "m2")
	if err != nil {
		t.Fatal(err)
	}
	if st.Payments != 1 || st.Failed != 1 || !reflect.DeepEqual(st.FailureCodes, map[string]int64{"no_channel_available": 1}) {
		t.Errorf("m2 %+v", st)
	}
	if _, err := f.svc.MerchantStats(ctx, "nobody"); code(err) != apierror.MerchantNotFound {
		t.Errorf("unknown merchant: %v", err)
	}
}

// TestOldJSONPaymentRecords: payments stored as JSON, before the binary stored form, are
// read, listed, processed to a final state (written back in the new form) and refunded, and a
// replay of their request is still recognized by its fingerprint.
func TestOldJSONPaymentRecords(t *testing.T) {
	f := newFixture(t, map[string]sim.Profile{"bank-a": {}})
	f.merchant("m1", 60)
	c := f.card()
	ctx := context.Background()
	in := payment.PaymentInput{ID: "old1", MerchantID: "m1", Amount: 10000, Currency: "CNY", CardID: c.ID, Metadata: map[string]string{"order": "A&B"}}
	b, _ := json.Marshal(&in)
	h := sha256.Sum256(b)
	now := time.Now().UTC()
	old := payment.Payment{ID: in.ID, MerchantID: in.MerchantID, Amount: in.Amount, Currency: in.Currency, CardID: in.CardID,
		Metadata: in.Metadata, Status: payment.StatusProcessing, Fee: 60, Attempts: []payment.Attempt{}, Created: now, Updated: now,
		ReqHash: hex.EncodeToString(h[:16])}
	data, _ := json.Marshal(old) // the old stored form
	if _, err := f.eng.Commit(ctx, ledger.Unit{
		Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: payment.KindPayment, ID: old.ID, Owner: old.MerchantID, Status: string(old.Status), Data: data}}},
		Timers:  []timer.Timer{{ID: "payment.process:" + old.ID, Handler: payment.HandlerProcess, FireAt: now, Payload: []byte(old.ID)}},
	}); err != nil {
		t.Fatal(err)
	}
	p := f.final("old1")
	if p.Status != payment.StatusSucceeded || p.Metadata["order"] != "A&B" || len(p.Attempts) != 1 || !p.Created.Equal(now) {
		t.Fatalf("payment %+v", p)
	}
	if rec, err := f.st.GetRecord(ctx, payment.KindPayment, "old1"); err != nil || len(rec.Data) == 0 || rec.Data[0] == '{' {
		t.Fatalf("the final state was not written in the binary form: %v %q", err, rec.Data)
	}
	if got, created, err := f.svc.CreatePayment(ctx, in); err != nil || created || got.Status != payment.StatusSucceeded {
		t.Fatalf("replay of the old request: %+v %v %v", got, created, err)
	}
	other := in
	other.Amount++
	if _, _, err := f.svc.CreatePayment(ctx, other); code(err) != apierror.IDConflict {
		t.Fatalf("a different request with the old payment's id: %v", err)
	}
	list, _, err := f.svc.ListPayments(ctx, payment.ListQuery{MerchantID: "m1"})
	if err != nil || len(list) != 1 || list[0].ID != "old1" || list[0].Status != payment.StatusSucceeded {
		t.Fatalf("list: %+v %v", list, err)
	}
	if r, _, err := f.svc.CreateRefund(ctx, "old1", payment.RefundInput{ID: "r1", Amount: 400}); err != nil || r.Amount != 400 {
		t.Fatalf("refund: %+v %v", r, err)
	}
}
