package iso8583

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
)

var caps = bank.Capabilities{Currencies: []string{"CNY"}, Refunds: true}

type fixture struct {
	bank *sim.Bank
	host *Host
	ch   *Channel
	addr string
}

func newFixture(t *testing.T, p sim.Profile, opts Options) *fixture {
	t.Helper()
	b, err := sim.New(sim.Options{Name: "ISO", Profile: p, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHost(b, nil)
	go h.Serve(ln)
	opts.Code, opts.Caps, opts.Addr = "iso-t", caps, ln.Addr().String()
	if opts.ReversalTimeout == 0 {
		opts.ReversalTimeout = 300 * time.Millisecond
	}
	if opts.Statement == nil {
		opts.Statement = func(_ context.Context, day time.Time) ([]bank.StatementLine, error) { return b.Statement(day), nil }
	}
	ch, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); h.Close(); b.Close() })
	return &fixture{bank: b, host: h, ch: ch, addr: ln.Addr().String()}
}

func payReq(id string, amount int64) bank.PayRequest {
	return bank.PayRequest{PaymentID: id, Amount: amount, Currency: "CNY",
		Card: bank.Card{PAN: "6222020200112233445", ExpiryMonth: 12, ExpiryYear: 2030, BankCode: "ICBC"}}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPayRefundEchoStatement(t *testing.T) {
	f := newFixture(t, sim.Profile{}, Options{})
	ctx := context.Background()
	res, err := f.ch.Pay(ctx, payReq("pay_1", 12345))
	if err != nil || res.Status != bank.Succeeded || res.Code != bank.CodeApproved || res.RawCode != "00" || res.ChannelRef == "" || res.Amount != 12345 {
		t.Fatalf("Pay = %+v, %v", res, err)
	}
	r, err := f.ch.Refund(ctx, bank.RefundRequest{RefundID: "re_1", PaymentID: "pay_1", Amount: 345, Currency: "CNY"})
	if err != nil || r.Status != bank.Succeeded {
		t.Fatalf("Refund = %+v, %v", r, err)
	}
	if r, _ := f.ch.Refund(ctx, bank.RefundRequest{RefundID: "re_2", PaymentID: "pay_1", Amount: 12001, Currency: "CNY"}); r.Status != bank.Failed {
		t.Fatalf("refund over the payment = %+v", r)
	}
	if err := f.ch.Echo(ctx); err != nil {
		t.Fatalf("Echo: %v", err)
	}
	lines, err := f.ch.Statement(ctx, time.Now().UTC())
	if err != nil || len(lines) != 2 {
		t.Fatalf("Statement = %+v, %v", lines, err)
	}
	if s := f.bank.Stats(); s.Charges != 1 || s.Charged != 12345 || s.Refunded != 345 {
		t.Fatalf("bank stats %+v", s)
	}
	if _, err := f.ch.Pay(ctx, bank.PayRequest{PaymentID: "p", Amount: 1, Currency: "XXX"}); err == nil {
		t.Fatal("a currency without numeric code was sent")
	}
}

func TestDeclinesMapToUnifiedCodes(t *testing.T) {
	for _, tc := range []struct {
		p    sim.Profile
		code bank.Code
	}{
		{sim.Profile{DeclineRate: 1}, bank.CodeDeclined},
		{sim.Profile{InsufficientRate: 1}, bank.CodeInsufficientFunds},
		{sim.Profile{SystemErrorRate: 1}, bank.CodeBankSystemError},
	} {
		f := newFixture(t, tc.p, Options{})
		res, _ := f.ch.Pay(context.Background(), payReq("pay_1", 100))
		if res.Status != bank.Failed || res.Code != tc.code {
			t.Errorf("%+v: Pay = %+v, want failed %s", tc.p, res, tc.code)
		}
	}
}

func TestLostAnswerIsReversed(t *testing.T) {
	f := newFixture(t, sim.Profile{}, Options{})
	// Charge, lose the answer; the reversal then gets through.
	f.bank.SetProfile(sim.Profile{LostAnswerRate: 1})
	done := make(chan bank.Result)
	go func() {
		res, _ := f.ch.Pay(ctxFor(t, 300*time.Millisecond), payReq("pay_lost", 500))
		done <- res
	}()
	// Let the payment reach the bank, then heal the network for the reversal.
	waitFor(t, func() bool { return f.bank.Stats().Charges == 1 })
	f.bank.SetProfile(sim.Profile{})
	res := <-done
	if res.Status != bank.Failed || res.Code != bank.CodeReversed || !res.Code.Retriable() {
		t.Fatalf("Pay with a lost answer = %+v, want failed/reversed", res)
	}
	if s := f.bank.Stats(); s.Charges != 0 {
		t.Fatalf("the reversal left a charge: %+v", s)
	}
}

func TestDroppedRequestReversalFindsNothing(t *testing.T) {
	f := newFixture(t, sim.Profile{}, Options{})
	f.bank.SetProfile(sim.Profile{DropRate: 1})
	done := make(chan bank.Result)
	go func() {
		res, _ := f.ch.Pay(ctxFor(t, 300*time.Millisecond), payReq("pay_drop", 500))
		done <- res
	}()
	waitFor(t, func() bool { return f.bank.Stats().Requests == 1 })
	f.bank.SetProfile(sim.Profile{})
	if res := <-done; res.Status != bank.Failed || res.Code != bank.CodeNotFound {
		t.Fatalf("Pay of a dropped request = %+v, want failed/not_found", res)
	}
}

func TestUnconfirmedReversalLeavesUnknownUntilQuery(t *testing.T) {
	f := newFixture(t, sim.Profile{LostAnswerRate: 1}, Options{ReversalAttempts: 2, ReversalTimeout: 100 * time.Millisecond})
	res, _ := f.ch.Pay(ctxFor(t, 200*time.Millisecond), payReq("pay_u", 700))
	if res.Status != bank.Unknown || res.Code != bank.CodeTimeout {
		t.Fatalf("Pay = %+v, want unknown", res)
	}
	// The reversals were lost too, but each was applied at the bank: nothing is charged.
	if s := f.bank.Stats(); s.Charges != 0 {
		t.Fatalf("charged after reversals: %+v", s)
	}
	f.bank.SetProfile(sim.Profile{})
	q, _ := f.ch.Query(context.Background(), "pay_u")
	if q.Status != bank.Failed || q.Code != bank.CodeReversed {
		t.Fatalf("Query = %+v, want failed/reversed", q)
	}
}

func TestUnreachableHost(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	ch, err := New(Options{Code: "down", Caps: caps, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	res, err := ch.Pay(context.Background(), payReq("p", 1))
	if err != nil || res.Status != bank.Failed || res.Code != bank.CodeChannelUnavailable {
		t.Fatalf("Pay = %+v, %v", res, err)
	}
}

func TestConcurrentRequestsOnOneConnection(t *testing.T) {
	f := newFixture(t, sim.Profile{Median: 2 * time.Millisecond, P99: 20 * time.Millisecond}, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 1; i <= 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "pay_" + strconv.Itoa(i)
			res, err := f.ch.Pay(context.Background(), payReq(id, int64(i)))
			if err != nil || res.Status != bank.Succeeded || res.Amount != int64(i) {
				errs <- fmt.Errorf("%s: %+v, %v", id, res, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := f.bank.Stats(); s.Charges != 200 || s.Charged != 200*201/2 {
		t.Fatalf("bank stats %+v", s)
	}
}

func TestEchoKeepsConnectionHealthy(t *testing.T) {
	f := newFixture(t, sim.Profile{}, Options{EchoInterval: 20 * time.Millisecond})
	f.ch.Pay(context.Background(), payReq("p1", 1)) // opens the connection
	time.Sleep(100 * time.Millisecond)              // several echoes
	f.ch.mu.Lock()
	alive := f.ch.conn != nil
	f.ch.mu.Unlock()
	if !alive {
		t.Fatal("echo closed a healthy connection")
	}
	// The host goes away: the echo notices and drops the connection; a later request
	// finds the host unreachable, certainly unsent.
	f.host.Close()
	waitFor(t, func() bool { f.ch.mu.Lock(); defer f.ch.mu.Unlock(); return f.ch.conn == nil })
	if res, _ := f.ch.Pay(context.Background(), payReq("p2", 1)); res.Code != bank.CodeChannelUnavailable {
		t.Fatalf("Pay with the host gone = %+v", res)
	}
}

func TestHostSurvivesGarbage(t *testing.T) {
	f := newFixture(t, sim.Profile{}, Options{})
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.BigEndian, uint16(5))
	buf.WriteString("junk!")
	nc.Write(buf.Bytes())
	nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Error("the host answered garbage instead of closing")
	}
	nc.Close()
	// Other clients are unaffected.
	if res, _ := f.ch.Pay(context.Background(), payReq("p", 10)); res.Status != bank.Succeeded {
		t.Fatalf("Pay after garbage = %+v", res)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	msg := moov.NewMessage(Spec)
	msg.MTI(MTINetwork)
	msg.Field(7, "1204103000")
	msg.Field(11, "000042")
	msg.Field(70, NetEcho)
	var buf bytes.Buffer
	if err := WriteFrame(&buf, msg); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFrame(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if mti, _ := got.GetMTI(); mti != MTINetwork || field(got, 11) != "000042" || field(got, 70) != NetEcho {
		t.Fatalf("round trip lost fields: %s %s %s", mti, field(got, 11), field(got, 70))
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0xff, 0xff})); err == nil {
		t.Fatal("an oversized frame was accepted")
	}
}

func FuzzReadFrame(f *testing.F) {
	msg := moov.NewMessage(Spec)
	msg.MTI(MTIFinancial)
	msg.Field(11, "000001")
	msg.Field(4, "100")
	var buf bytes.Buffer
	WriteFrame(&buf, msg)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ReadFrame(bytes.NewReader(data)) // must not panic
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
