package sim

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
)

var cny = bank.Capabilities{Currencies: []string{"CNY"}, Refunds: true}

func newChannel(t *testing.T, p Profile, notify func(Notification)) *Channel {
	t.Helper()
	b, err := New(Options{Name: "T", Profile: p, Seed: 42, Notify: notify})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return NewChannel("sim-t", cny, b)
}

func pay(id string, amount int64) bank.PayRequest {
	return bank.PayRequest{PaymentID: id, Amount: amount, Currency: "CNY", Card: bank.Card{PAN: "6222020200112233445", BankCode: "ICBC"}}
}

func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestApprovedPaymentChargesOnce(t *testing.T) {
	ch := newChannel(t, Profile{}, nil)
	ctx := context.Background()
	for range 3 { // the same payment id three times: one charge
		res, err := ch.Pay(ctx, pay("p1", 1000))
		if err != nil || res.Status != bank.Succeeded || res.Code != bank.CodeApproved || res.ChannelRef == "" {
			t.Fatalf("Pay = %+v, %v", res, err)
		}
	}
	q, _ := ch.Query(ctx, "p1")
	if q.Status != bank.Succeeded || q.Amount != 1000 {
		t.Fatalf("Query = %+v", q)
	}
	if s := ch.Bank().Stats(); s.Charges != 1 || s.Charged != 1000 {
		t.Fatalf("stats %+v, want one charge of 1000", s)
	}
	// The same id with another amount is refused, and charges nothing.
	res, _ := ch.Pay(ctx, pay("p1", 999))
	if res.Status != bank.Failed || res.Code != bank.CodeDuplicate {
		t.Fatalf("conflicting repeat = %+v", res)
	}
	if _, err := ch.Pay(ctx, pay("", 1)); !errors.Is(err, bank.ErrInvalidRequest) {
		t.Fatalf("empty id: %v", err)
	}
}

func TestLostAnswerIsUnknownButCharged(t *testing.T) {
	ch := newChannel(t, Profile{LostAnswerRate: 1}, nil)
	res, err := ch.Pay(shortCtx(t), pay("p1", 500))
	if err != nil || res.Status != bank.Unknown || res.Code != bank.CodeTimeout {
		t.Fatalf("Pay = %+v, %v; want unknown/timeout", res, err)
	}
	if res.Code.Retriable() {
		t.Fatal("a lost answer must not be retriable on another channel")
	}
	ch.Bank().SetProfile(Profile{})
	q, _ := ch.Query(context.Background(), "p1")
	if q.Status != bank.Succeeded {
		t.Fatalf("the bank charged, Query says %+v", q)
	}
	if s := ch.Bank().Stats(); s.Charges != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDroppedRequestIsUnknownAndNeverCharged(t *testing.T) {
	ch := newChannel(t, Profile{DropRate: 1}, nil)
	res, _ := ch.Pay(shortCtx(t), pay("p1", 500))
	if res.Status != bank.Unknown {
		t.Fatalf("Pay = %+v", res)
	}
	ch.Bank().SetProfile(Profile{})
	q, _ := ch.Query(context.Background(), "p1")
	if q.Status != bank.Failed || q.Code != bank.CodeNotFound {
		t.Fatalf("Query = %+v, want failed/not_found", q)
	}
	if s := ch.Bank().Stats(); s.Charges != 0 || s.Requests != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFailuresMapToUnifiedCodes(t *testing.T) {
	for _, tc := range []struct {
		p         Profile
		code      bank.Code
		retriable bool
		queried   bank.Code
	}{
		{Profile{DeclineRate: 1}, bank.CodeDeclined, false, bank.CodeDeclined},
		{Profile{InsufficientRate: 1}, bank.CodeInsufficientFunds, false, bank.CodeInsufficientFunds},
		{Profile{SystemErrorRate: 1}, bank.CodeBankSystemError, true, bank.CodeNotFound},
	} {
		ch := newChannel(t, tc.p, nil)
		res, _ := ch.Pay(context.Background(), pay("p1", 100))
		if res.Status != bank.Failed || res.Code != tc.code || res.Code.Retriable() != tc.retriable {
			t.Errorf("%+v: Pay = %+v", tc.p, res)
		}
		if q, _ := ch.Query(context.Background(), "p1"); q.Code != tc.queried || q.Status != bank.Failed {
			t.Errorf("%+v: Query = %+v, want %s", tc.p, q, tc.queried)
		}
		if s := ch.Bank().Stats(); s.Charges != 0 {
			t.Errorf("%+v: charged %+v", tc.p, s)
		}
	}
}

func TestAsyncNotificationsDuplicatedAndSigned(t *testing.T) {
	var mu sync.Mutex
	var got []Notification
	done := make(chan struct{}, 4)
	ch := newChannel(t, Profile{AsyncRate: 1, DuplicateNotifyRate: 1, Median: time.Millisecond}, func(n Notification) {
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		done <- struct{}{}
	})
	res, _ := ch.Pay(context.Background(), pay("p1", 700))
	if res.Status != bank.Pending || res.Code != bank.CodeApproved {
		t.Fatalf("Pay = %+v, want pending", res)
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("no notification")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || got[0] != got[1] || got[0].Status != bank.Succeeded || got[0].ID != "p1" || got[0].Amount != 700 {
		t.Fatalf("notifications %+v, want the same success twice", got)
	}
	if q, _ := ch.Query(context.Background(), "p1"); q.Status != bank.Succeeded {
		t.Fatalf("Query after the decision = %+v", q)
	}
}

func TestRefundsNeverExceedThePayment(t *testing.T) {
	ch := newChannel(t, Profile{}, nil)
	ctx := context.Background()
	p, _ := ch.Pay(ctx, pay("p1", 1000))
	refund := func(id string, amount int64) bank.Result {
		r, err := ch.Refund(ctx, bank.RefundRequest{RefundID: id, PaymentID: "p1", ChannelRef: p.ChannelRef, Amount: amount, Currency: "CNY"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := refund("r1", 600); r.Status != bank.Succeeded {
		t.Fatalf("refund 600 = %+v", r)
	}
	if r := refund("r1", 600); r.Status != bank.Succeeded {
		t.Fatalf("repeated refund r1 = %+v", r)
	}
	if r := refund("r2", 401); r.Status != bank.Failed {
		t.Fatalf("refund over the rest = %+v", r)
	}
	if r := refund("r3", 400); r.Status != bank.Succeeded {
		t.Fatalf("refund of the rest = %+v", r)
	}
	if s := ch.Bank().Stats(); s.Refunded != 1000 {
		t.Fatalf("refunded %d", s.Refunded)
	}
	day := time.Now().UTC()
	lines := ch.Bank().Statement(day)
	if len(lines) != 3 || lines[0].Kind != "payment" || lines[1].Kind != "refund" || lines[1].Amount+lines[2].Amount != 1000 {
		t.Fatalf("statement %+v", lines)
	}
	if lines := ch.Bank().Statement(day.AddDate(0, 0, -1)); len(lines) != 0 {
		t.Fatalf("yesterday's statement %+v", lines)
	}
}

func TestRatesFollowTheProfile(t *testing.T) {
	ch := newChannel(t, Profile{DeclineRate: 0.2, SystemErrorRate: 0.1}, nil)
	counts := map[bank.Code]int{}
	const n = 5000
	for i := range n {
		res, _ := ch.Pay(context.Background(), pay("p"+strconv.Itoa(i), 100))
		counts[res.Code]++
	}
	for code, want := range map[bank.Code]float64{bank.CodeDeclined: 0.2, bank.CodeBankSystemError: 0.1, bank.CodeApproved: 0.7} {
		if got := float64(counts[code]) / n; got < want-0.03 || got > want+0.03 {
			t.Errorf("%s: %.3f of payments, want %.2f", code, got, want)
		}
	}
}

// TestIssuerDeclineRates: cards of an issuer with a rate of its own are declined at that
// rate; other cards at the profile's.
func TestIssuerDeclineRates(t *testing.T) {
	ch := newChannel(t, Profile{DeclineRate: 0.2, IssuerDeclineRates: map[string]float64{"AAA": 0, "BBB": 1, "CCC": 0.5}}, nil)
	const n = 2000
	for issuer, want := range map[string]float64{"AAA": 0, "BBB": 1, "CCC": 0.5, "ICBC": 0.2} {
		declined := 0
		for i := range n {
			req := pay(issuer+strconv.Itoa(i), 100)
			req.Card.BankCode = issuer
			if res, _ := ch.Pay(context.Background(), req); res.Code == bank.CodeDeclined {
				declined++
			}
		}
		if got := float64(declined) / n; got < want-0.04 || got > want+0.04 {
			t.Errorf("issuer %s: %.3f declined, want %.2f", issuer, got, want)
		}
	}
}

func TestProfileValidation(t *testing.T) {
	for _, p := range []Profile{{DeclineRate: -0.1}, {DropRate: 1.1}, {DeclineRate: 0.6, LostAnswerRate: 0.6}, {Median: -1},
		{IssuerDeclineRates: map[string]float64{"AAA": 1.5}}, {LostAnswerRate: 0.5, DeclineRate: 0.1, IssuerDeclineRates: map[string]float64{"AAA": 0.6}}} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
	if _, err := New(Options{Profile: Profile{AsyncRate: 2}}); err == nil {
		t.Error("New accepted a bad profile")
	}
}

func TestLatencyDistribution(t *testing.T) {
	b, _ := New(Options{Profile: Profile{Median: 20 * time.Millisecond, P99: 200 * time.Millisecond}, Seed: 1})
	var below, over int
	const n = 20000
	for range n {
		d := b.latency()
		if d <= 20*time.Millisecond {
			below++
		}
		if d > 200*time.Millisecond {
			over++
		}
	}
	if f := float64(below) / n; f < 0.47 || f > 0.53 {
		t.Errorf("%.3f at or below the median", f)
	}
	if f := float64(over) / n; f < 0.005 || f > 0.015 {
		t.Errorf("%.4f above p99", f)
	}
}

func TestReversalUndoesCharge(t *testing.T) {
	ch := newChannel(t, Profile{}, nil)
	b := ch.Bank()
	ctx := context.Background()
	ch.Pay(ctx, pay("p1", 900))
	res, ok := b.HandleReverse(ctx, "payment", "p1")
	if !ok || res.Status != bank.Failed || res.Code != bank.CodeReversed || !res.Code.Retriable() {
		t.Fatalf("reverse = %+v, %v", res, ok)
	}
	if again, _ := b.HandleReverse(ctx, "payment", "p1"); again.Code != bank.CodeReversed {
		t.Fatalf("second reversal = %+v", again)
	}
	if q, _ := ch.Query(ctx, "p1"); q.Status != bank.Failed || q.Code != bank.CodeReversed {
		t.Fatalf("Query after reversal = %+v", q)
	}
	if s := b.Stats(); s.Charges != 0 || s.Charged != 0 {
		t.Fatalf("stats after reversal %+v", s)
	}
	if res, _ := b.HandleReverse(ctx, "payment", "never"); res.Code != bank.CodeNotFound {
		t.Fatalf("reversing an unknown payment = %+v", res)
	}
	// A reversed refund gives its amount back to what may be refunded.
	ch.Pay(ctx, pay("p2", 100))
	ch.Refund(ctx, bank.RefundRequest{RefundID: "r1", PaymentID: "p2", Amount: 100, Currency: "CNY"})
	b.HandleReverse(ctx, "refund", "r1")
	if r, _ := ch.Refund(ctx, bank.RefundRequest{RefundID: "r2", PaymentID: "p2", Amount: 100, Currency: "CNY"}); r.Status != bank.Succeeded {
		t.Fatalf("refund after the reversal of the first = %+v", r)
	}
	if s := b.Stats(); s.Refunded != 100 {
		t.Fatalf("refunded %d, want 100", s.Refunded)
	}
}
