package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/timer"
)

// TestLedger runs every ledger behaviour against a backend.
func TestLedger(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"Accounts", testAccounts},
		{"Transfers", testTransfers},
		{"BalanceRules", testBalanceRules},
		{"TwoPhase", testTwoPhase},
		{"Expiry", testExpiry},
		{"ExpiryAcrossRestart", testExpiryAcrossRestart},
		{"AtomicBatch", testAtomicBatch},
		{"NonAtomicBatch", testNonAtomicBatch},
		{"HotAccount", testHotAccount},
		{"History", testHistory},
		{"BalancesAt", testBalancesAt},
		{"Restart", testRestart},
		{"Fencing", testFencing},
		{"LeaseFencing", testLeaseFencing},
		{"LeaseTakeover", testLeaseTakeover},
		{"ClosedEngine", testClosedEngine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

var ctx = context.Background()

// fixture is an engine over fresh storage with a settable clock.
type fixture struct {
	t     *testing.T
	open  func() ledger.Store
	st    ledger.Store
	eng   *ledger.Engine
	clock *Clock
	// With timed set, the engine runs without the expiry sweep and a timer service on the
	// same storage and clock (timers) expires pending transfers, as in fincore serve.
	timed  bool
	timers *timer.Service
	// With manual set, the engine runs without the expiry sweep: only the test's ExpireDue
	// calls expire, so their counts are exact (the sweep's first pass runs in the background
	// at start and, late on a loaded machine, could expire a transfer first).
	manual bool
}

func newFixture(t *testing.T, f Factory) *fixture {
	fx := &fixture{t: t, open: f(t), clock: NewClock()}
	fx.start()
	return fx
}

func (fx *fixture) start() {
	fx.st = fx.open()
	cfg := ledger.Config{Now: fx.clock.Now, ExpiryInterval: time.Hour, Logger: QuietLogger()}
	if fx.manual {
		cfg.ExpiryInterval = 0
	}
	var svc *timer.Service
	if fx.timed {
		p, ok := fx.st.(timer.Provider)
		if !ok {
			// A storage without timers (the API tests' in-memory fake) runs the ledger with
			// the polling sweep; these behaviours do not apply to it.
			fx.t.Skipf("storage %T has no timers", fx.st)
		}
		var err error
		svc, err = timer.New(timer.Config{Store: p.Timers(), Clock: fx.clock, Logger: QuietLogger()})
		if err != nil {
			fx.t.Fatal(err)
		}
		cfg.ExpiryInterval, cfg.TimersCommitted = 0, svc.Committed
	}
	e, err := ledger.Open(ctx, fx.st, cfg)
	if err != nil {
		fx.t.Fatalf("open engine: %v", err)
	}
	if svc != nil {
		svc.Register(ledger.ExpiryHandler, e.ExpireTimer)
		if err := svc.Start(ctx); err != nil {
			fx.t.Fatal(err)
		}
	}
	fx.eng, fx.timers = e, svc
	st := fx.st
	fx.t.Cleanup(func() { fx.stop(svc, e, st) })
}

// stop stops what start started: the timer service first, since its handler uses the engine.
func (fx *fixture) stop(svc *timer.Service, e *ledger.Engine, st ledger.Store) {
	if svc != nil {
		svc.Stop()
	}
	e.Close()
	st.Close()
}

// restart closes the engine and store and opens them again, as a restarted process would.
func (fx *fixture) restart() {
	fx.stop(fx.timers, fx.eng, fx.st)
	fx.start()
}

func (fx *fixture) account(id, cur string, flags ledger.Flags) *ledger.Account {
	fx.t.Helper()
	res, err := fx.eng.CreateAccounts(ctx, []ledger.AccountInput{{ID: id, Currency: cur, Flags: flags}})
	if err != nil || res[0].Err != nil {
		fx.t.Fatalf("create account %s: %v %v", id, err, res)
	}
	return res[0].Account
}

func (fx *fixture) transfer(in ledger.TransferInput) (*ledger.Transfer, error) {
	t, _, err := fx.eng.CreateTransfer(ctx, in)
	return t, err
}

func (fx *fixture) mustTransfer(in ledger.TransferInput) *ledger.Transfer {
	fx.t.Helper()
	t, err := fx.transfer(in)
	if err != nil {
		fx.t.Fatalf("transfer %s: %v", in.ID, err)
	}
	return t
}

func (fx *fixture) balances(id string) ledger.Balances {
	fx.t.Helper()
	a, err := fx.eng.Account(ctx, id)
	if err != nil {
		fx.t.Fatalf("get account %s: %v", id, err)
	}
	return a.Balances
}

func (fx *fixture) wantBalances(id string, want ledger.Balances) {
	fx.t.Helper()
	if got := fx.balances(id); got != want {
		fx.t.Fatalf("account %s balances = %+v, want %+v", id, got, want)
	}
}

func (fx *fixture) verify() {
	fx.t.Helper()
	rep, err := ledger.Verify(ctx, fx.st)
	if err != nil {
		fx.t.Fatalf("verify: %v", err)
	}
	if !rep.OK() {
		fx.t.Fatalf("verify found problems: %v", rep.Problems)
	}
}

func wantCode(t *testing.T, err error, code apierror.Code) {
	t.Helper()
	e := apierror.As(err)
	if e == nil || e.Code != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
}

func xfer(id, dr, cr string, amount int64) ledger.TransferInput {
	return ledger.TransferInput{ID: id, DebitAccountID: dr, CreditAccountID: cr, Amount: amount, Currency: "CNY"}
}

func testAccounts(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	in := ledger.AccountInput{ID: "a1", Currency: "CNY", Code: "1122", Metadata: map[string]string{"k": "v"},
		Flags: ledger.Flags{DebitsMustNotExceedCredits: true}}
	res, err := fx.eng.CreateAccounts(ctx, []ledger.AccountInput{in, in, {ID: "a1", Currency: "USD"}, {Currency: "CNY"}, {ID: "bad id", Currency: "CNY"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Created || res[0].Err != nil {
		t.Fatalf("first create: %+v", res[0])
	}
	if res[1].Created || res[1].Err != nil || res[1].Account.Timestamp != res[0].Account.Timestamp {
		t.Fatalf("replay: %+v", res[1])
	}
	wantCode(t, res[2].Err, apierror.IDConflict)
	if !res[3].Created || len(res[3].Account.ID) < 5 || res[3].Account.ID[:4] != "acc_" {
		t.Fatalf("generated id: %+v", res[3])
	}
	wantCode(t, res[4].Err, apierror.InvalidRequest)
	a, err := fx.eng.Account(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Currency != "CNY" || a.Code != "1122" || !a.Flags.DebitsMustNotExceedCredits || a.Metadata["k"] != "v" {
		t.Fatalf("stored account %+v", a)
	}
	_, err = fx.eng.Account(ctx, "nope")
	wantCode(t, err, apierror.AccountNotFound)
	// A replay after a restart still returns the original.
	fx.restart()
	res, err = fx.eng.CreateAccounts(ctx, []ledger.AccountInput{in})
	if err != nil || res[0].Created || res[0].Err != nil {
		t.Fatalf("replay after restart: %+v %v", res, err)
	}
}

func testTransfers(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	fx.account("u", "USD", ledger.Flags{})
	in := xfer("t1", "a", "b", 150)
	in.Code = "purchase"
	in.Metadata = map[string]string{"order": "o-1"}
	t1, created, err := fx.eng.CreateTransfer(ctx, in)
	if err != nil || !created || t1.Status != ledger.StatusPosted {
		t.Fatalf("t1: %+v %v %v", t1, created, err)
	}
	again, created, err := fx.eng.CreateTransfer(ctx, in)
	if err != nil || created || again.Timestamp != t1.Timestamp {
		t.Fatalf("replay: %+v %v %v", again, created, err)
	}
	diff := in
	diff.Amount = 151
	_, _, err = fx.eng.CreateTransfer(ctx, diff)
	wantCode(t, err, apierror.IDConflict)
	_, err = fx.transfer(xfer("t2", "a", "missing", 1))
	wantCode(t, err, apierror.AccountNotFound)
	_, err = fx.transfer(xfer("t3", "a", "u", 1))
	wantCode(t, err, apierror.CurrencyMismatch)
	_, err = fx.transfer(xfer("t4", "a", "a", 1))
	wantCode(t, err, apierror.SameAccount)
	_, err = fx.transfer(xfer("t5", "a", "b", 0))
	wantCode(t, err, apierror.InvalidRequest)
	t6 := fx.mustTransfer(xfer("t6", "b", "a", 50))
	if t6.Timestamp <= t1.Timestamp {
		t.Fatalf("timestamps not increasing: %d then %d", t1.Timestamp, t6.Timestamp)
	}
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 150, CreditsPosted: 50})
	fx.wantBalances("b", ledger.Balances{DebitsPosted: 50, CreditsPosted: 150})
	got, err := fx.eng.Transfer(ctx, "t1")
	if err != nil || got.Amount != 150 || got.Code != "purchase" || got.Metadata["order"] != "o-1" || got.Timestamp != t1.Timestamp {
		t.Fatalf("get t1: %+v %v", got, err)
	}
	_, err = fx.eng.Transfer(ctx, "t2")
	wantCode(t, err, apierror.TransferNotFound)
	fx.verify()
}

func testBalanceRules(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("wallet", "CNY", ledger.Flags{DebitsMustNotExceedCredits: true})
	fx.account("bank", "CNY", ledger.Flags{})
	fx.account("limit", "CNY", ledger.Flags{CreditsMustNotExceedDebits: true})
	fx.mustTransfer(xfer("fund", "bank", "wallet", 100))
	p := xfer("hold", "wallet", "bank", 60)
	p.Pending = true
	fx.mustTransfer(p)
	// 60 pending + 41 > 100 credits: the pending amount counts.
	_, err := fx.transfer(xfer("over", "wallet", "bank", 41))
	wantCode(t, err, apierror.ExceedsCredits)
	fx.mustTransfer(xfer("exact", "wallet", "bank", 40))
	fx.wantBalances("wallet", ledger.Balances{DebitsPending: 60, DebitsPosted: 40, CreditsPosted: 100})
	_, err = fx.transfer(xfer("over2", "wallet", "bank", 1))
	wantCode(t, err, apierror.ExceedsCredits)

	fx.mustTransfer(xfer("d", "limit", "bank", 30))
	_, err = fx.transfer(xfer("c1", "bank", "limit", 31))
	wantCode(t, err, apierror.ExceedsDebits)
	fx.mustTransfer(xfer("c2", "bank", "limit", 30))

	// Overflow of a running balance is refused, not wrapped.
	fx.account("x", "CNY", ledger.Flags{})
	fx.account("y", "CNY", ledger.Flags{})
	const big = int64(1<<53 - 1)
	var err2 error
	for i := 0; i < 1100 && err2 == nil; i++ {
		_, err2 = fx.transfer(xfer(fmt.Sprintf("big%d", i), "x", "y", big))
	}
	wantCode(t, err2, apierror.BalanceOverflow)
	fx.verify()
}

func testTwoPhase(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	p := xfer("p1", "a", "b", 100)
	p.Pending = true
	pt := fx.mustTransfer(p)
	if pt.Status != ledger.StatusPending {
		t.Fatalf("status %s", pt.Status)
	}
	fx.wantBalances("a", ledger.Balances{DebitsPending: 100})
	_, err := fx.transfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "post1", PendingID: "p1", Amount: 101})
	wantCode(t, err, apierror.AmountExceedsPending)
	post := fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "post1", PendingID: "p1", Amount: 70})
	if post.PendingID != "p1" || post.Amount != 70 || post.Status != ledger.StatusPosted || post.DebitAccountID != "a" {
		t.Fatalf("post record %+v", post)
	}
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 70})
	fx.wantBalances("b", ledger.Balances{CreditsPosted: 70})
	if got, _ := fx.eng.Transfer(ctx, "p1"); got.Status != ledger.StatusPosted {
		t.Fatalf("pending status after post: %s", got.Status)
	}
	// Replaying the post is harmless; a second post or a void is refused.
	if _, created, err := fx.eng.CreateTransfer(ctx, ledger.TransferInput{Action: ledger.ActionPost, ID: "post1", PendingID: "p1", Amount: 70}); err != nil || created {
		t.Fatalf("replayed post: %v %v", created, err)
	}
	_, err = fx.transfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "post2", PendingID: "p1"})
	wantCode(t, err, apierror.PendingAlreadyClosed)
	_, err = fx.transfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "void1", PendingID: "p1"})
	wantCode(t, err, apierror.PendingAlreadyClosed)
	_, err = fx.transfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "void2", PendingID: "post1"})
	wantCode(t, err, apierror.PendingNotFound)
	_, err = fx.transfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "void3", PendingID: "nope"})
	wantCode(t, err, apierror.PendingNotFound)

	p2 := xfer("p2", "a", "b", 40)
	p2.Pending = true
	fx.mustTransfer(p2)
	v := fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "void4", PendingID: "p2"})
	if v.Status != ledger.StatusVoided || v.Amount != 40 {
		t.Fatalf("void record %+v", v)
	}
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 70})
	// Full post without amount, then a pending posted within the same atomic batch.
	p3 := xfer("p3", "a", "b", 5)
	p3.Pending = true
	res, err := fx.eng.CreateTransfers(ctx, []ledger.TransferInput{p3, {Action: ledger.ActionPost, ID: "post3", PendingID: "p3"}}, true)
	if err != nil || res[1].Transfer.Amount != 5 {
		t.Fatalf("pending+post batch: %v %+v", err, res)
	}
	if got, _ := fx.eng.Transfer(ctx, "p3"); got.Status != ledger.StatusPosted {
		t.Fatalf("p3 status %s", got.Status)
	}
	fx.wantBalances("b", ledger.Balances{CreditsPosted: 75})
	fx.verify()
}

func testExpiry(t *testing.T, f Factory) {
	fx := &fixture{t: t, open: f(t), clock: NewClock(), manual: true}
	fx.start()
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	p := xfer("p", "a", "b", 10)
	p.Pending, p.TimeoutSeconds = true, 60
	pt := fx.mustTransfer(p)
	if pt.ExpiresAt != pt.Timestamp+60*ledger.Timestamp(time.Second) {
		t.Fatalf("expires_at %d, timestamp %d", pt.ExpiresAt, pt.Timestamp)
	}
	if n, err := fx.eng.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("early expiry: %d %v", n, err)
	}
	fx.clock.Advance(61 * time.Second)
	// Past its timeout it can no longer be posted, even before the expiry record exists.
	_, err := fx.transfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "late", PendingID: "p"})
	wantCode(t, err, apierror.PendingAlreadyClosed)
	if got, _ := fx.eng.Transfer(ctx, "p"); got.Status != ledger.StatusExpired {
		t.Fatalf("status past timeout %s", got.Status)
	}
	if rep, created, err := fx.eng.CreateTransfer(ctx, p); err != nil || created || rep.Status != ledger.StatusExpired {
		t.Fatalf("replay past timeout: %+v %v %v", rep, created, err)
	}
	if n, err := fx.eng.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if n, _ := fx.eng.ExpireDue(ctx); n != 0 {
		t.Fatalf("expired twice: %d", n)
	}
	fx.wantBalances("a", ledger.Balances{})
	rec, err := fx.eng.Transfer(ctx, ledger.ExpiryID("p"))
	if err != nil || rec.Status != ledger.StatusExpired || rec.PendingID != "p" || rec.Amount != 10 {
		t.Fatalf("expiry record %+v %v", rec, err)
	}
	fx.verify()
}

func testExpiryAcrossRestart(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	p := xfer("p", "a", "b", 10)
	p.Pending, p.TimeoutSeconds = true, 5
	fx.mustTransfer(p)
	fx.eng.Close()
	fx.st.Close()
	fx.clock.Advance(time.Minute) // the process was down when it came due
	fx.start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := fx.st.GetTransfer(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == ledger.StatusExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending transfer not expired after restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fx.wantBalances("a", ledger.Balances{})
	fx.verify()
}

func testAtomicBatch(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{DebitsMustNotExceedCredits: true})
	fx.account("b", "CNY", ledger.Flags{})
	fx.account("c", "CNY", ledger.Flags{})
	fx.mustTransfer(xfer("fund", "b", "a", 100))
	before := []ledger.Balances{fx.balances("a"), fx.balances("b"), fx.balances("c")}
	batch := []ledger.TransferInput{xfer("x1", "a", "c", 60), xfer("x2", "b", "c", 5), xfer("x3", "a", "c", 41), xfer("x4", "b", "c", 1)}
	_, err := fx.eng.CreateTransfers(ctx, batch, true)
	var be *ledger.BatchError
	if !errors.As(err, &be) || be.Index != 2 || be.Err.Code != apierror.ExceedsCredits {
		t.Fatalf("atomic failure = %v", err)
	}
	for i, id := range []string{"a", "b", "c"} {
		fx.wantBalances(id, before[i])
	}
	for _, in := range batch {
		if _, err := fx.eng.Transfer(ctx, in.ID); apierror.As(err) == nil || apierror.As(err).Code != apierror.TransferNotFound {
			t.Fatalf("transfer %s of a failed batch exists: %v", in.ID, err)
		}
	}
	// Invalid input is reported with its index before anything is queued.
	bad := []ledger.TransferInput{xfer("y1", "a", "c", 1), xfer("y2", "a", "c", -1)}
	_, err = fx.eng.CreateTransfers(ctx, bad, true)
	if !errors.As(err, &be) || be.Index != 1 || be.Err.Code != apierror.InvalidRequest {
		t.Fatalf("invalid item = %v", err)
	}
	// A multi-leg batch that fits applies whole.
	batch[2].Amount = 40
	res, err := fx.eng.CreateTransfers(ctx, batch, true)
	if err != nil || len(res) != 4 || !res[3].Created {
		t.Fatalf("atomic success: %v %+v", err, res)
	}
	fx.wantBalances("c", ledger.Balances{CreditsPosted: 106})
	// Too large a batch is refused as a whole.
	big := make([]ledger.TransferInput, ledger.BatchMax+1)
	_, err = fx.eng.CreateTransfers(ctx, big, true)
	wantCode(t, err, apierror.BatchTooLarge)
	fx.verify()
}

func testNonAtomicBatch(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	res, err := fx.eng.CreateTransfers(ctx, []ledger.TransferInput{
		xfer("n1", "a", "b", 1), xfer("n2", "a", "zz", 1), xfer("n3", "a", "b", 0), xfer("n1", "a", "b", 1), xfer("n4", "b", "a", 3),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Created || res[3].Created || res[3].Err != nil || !res[4].Created {
		t.Fatalf("results %+v", res)
	}
	wantCode(t, res[1].Err, apierror.AccountNotFound)
	wantCode(t, res[2].Err, apierror.InvalidRequest)
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 1, CreditsPosted: 3})
	fx.verify()
}

func testHotAccount(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("merchant", "CNY", ledger.Flags{})
	const payers, n = 20, 2000
	for i := 0; i < payers; i++ {
		fx.account(fmt.Sprintf("payer%d", i), "CNY", ledger.Flags{})
	}
	batch := make([]ledger.TransferInput, n)
	for i := range batch {
		batch[i] = xfer(fmt.Sprintf("h%d", i), fmt.Sprintf("payer%d", i%payers), "merchant", int64(i+1))
	}
	if _, err := fx.eng.CreateTransfers(ctx, batch, true); err != nil {
		t.Fatal(err)
	}
	fx.wantBalances("merchant", ledger.Balances{CreditsPosted: n * (n + 1) / 2})
	fx.verify()
}

func testHistory(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	fx.account("c", "CNY", ledger.Flags{})
	var want []string
	for i := 0; i < 25; i++ {
		in := xfer(fmt.Sprintf("h%02d", i), "a", "b", 1)
		if i%3 == 0 {
			in.DebitAccountID, in.CreditAccountID = "b", "a"
		}
		fx.mustTransfer(in)
		fx.mustTransfer(xfer(fmt.Sprintf("o%02d", i), "b", "c", 1)) // not a's
		want = append([]string{in.ID}, want...)
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		ts, more, err := fx.eng.AccountTransfers(ctx, "a", after, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range ts {
			got = append(got, tr.ID)
		}
		if !more {
			break
		}
		after = ts[len(ts)-1].ID
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history\n got %v\nwant %v", got, want)
	}
	_, _, err := fx.eng.AccountTransfers(ctx, "a", "o01", 10)
	wantCode(t, err, apierror.InvalidRequest)
	_, _, err = fx.eng.AccountTransfers(ctx, "zz", "", 10)
	wantCode(t, err, apierror.AccountNotFound)
	_, _, err = fx.eng.AccountTransfers(ctx, "a", "", 0)
	wantCode(t, err, apierror.InvalidRequest)
}

func testBalancesAt(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	var stamps []ledger.Timestamp
	var want []ledger.Balances
	for i := 1; i <= 6; i++ {
		fx.clock.Advance(time.Second)
		var tr *ledger.Transfer
		switch i {
		case 3:
			p := xfer("p", "a", "b", 7)
			p.Pending = true
			tr = fx.mustTransfer(p)
		case 5:
			tr = fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "post", PendingID: "p", Amount: 4})
		default:
			tr = fx.mustTransfer(xfer(fmt.Sprintf("t%d", i), "a", "b", int64(i)))
		}
		stamps = append(stamps, tr.Timestamp)
		want = append(want, fx.balances("a"))
	}
	check := func(at ledger.Timestamp, w ledger.Balances) {
		t.Helper()
		got, err := fx.eng.BalancesAt(ctx, "a", at)
		if err != nil || got != w {
			t.Fatalf("balances at %d = %+v %v, want %+v", at, got, err, w)
		}
	}
	check(stamps[0]-1, ledger.Balances{})
	for i, ts := range stamps {
		check(ts, want[i])
		check(ts+ledger.Timestamp(time.Millisecond), want[i])
	}
	if got, _ := fx.eng.BalancesAt(ctx, "b", stamps[4]); got.CreditsPosted != 1+2+4+4 || got.CreditsPending != 0 {
		t.Fatalf("b at post: %+v", got)
	}
	_, err := fx.eng.BalancesAt(ctx, "zz", stamps[0])
	wantCode(t, err, apierror.AccountNotFound)
}

func testRestart(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	t1 := fx.mustTransfer(xfer("t1", "a", "b", 5))
	p := xfer("p", "a", "b", 3)
	p.Pending = true
	fx.mustTransfer(p)
	fx.restart()
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 5, DebitsPending: 3})
	// The clock goes backwards across the restart: timestamps must still increase.
	fx.clock.Advance(-time.Hour)
	t2 := fx.mustTransfer(xfer("t2", "b", "a", 1))
	if t2.Timestamp <= t1.Timestamp {
		t.Fatalf("timestamp after restart %d <= %d", t2.Timestamp, t1.Timestamp)
	}
	fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "v", PendingID: "p"})
	if _, created, err := fx.eng.CreateTransfer(ctx, xfer("t1", "a", "b", 5)); err != nil || created {
		t.Fatalf("replay after restart: %v %v", created, err)
	}
	fx.verify()
}

func testFencing(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	fx.mustTransfer(xfer("t1", "a", "b", 5))
	// Another writer takes over: this engine's token is now stale.
	tok, err := fx.st.AcquireWriter(ctx, 0)
	if err != nil || tok <= fx.eng.Token() {
		t.Fatalf("new token %d (old %d): %v", tok, fx.eng.Token(), err)
	}
	_, err = fx.transfer(xfer("t2", "a", "b", 5))
	wantCode(t, err, apierror.NotLeader)
	_, err = fx.transfer(xfer("t3", "a", "b", 5))
	wantCode(t, err, apierror.NotLeader)
	if err := fx.st.Commit(ctx, fx.eng.Token(), &ledger.Batch{}); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("commit with stale token = %v", err)
	}
	if _, err := fx.st.GetTransfer(ctx, "t2"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("fenced write landed: %v", err)
	}
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 5})
}

// testClosedEngine: once an engine is closed, writes fail at once with unavailable.
func testClosedEngine(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.eng.Close()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, _, err := fx.eng.CreateTransfer(c, xfer("t", "a", "b", 1))
	wantCode(t, err, apierror.Unavailable)
	if time.Since(start) > time.Second {
		t.Fatalf("write after close took %s", time.Since(start))
	}
}
