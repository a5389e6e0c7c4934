package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/migration"
)

// TestLedgerExpiryTimers runs the behaviours of pending-transfer expiry on durable timers
// (docs/adr/0012-ledger-expiry-on-timers.md) against a backend whose ledger store also holds
// the timers (timer.Provider), as every store fincore serve runs on must.
func TestLedgerExpiryTimers(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"Committed", testExpiryTimerCommitted},
		{"Fire", testExpiryOnTimers},
		{"AcrossRestart", testExpiryTimersAcrossRestart},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func newTimedFixture(t *testing.T, f Factory) *fixture {
	fx := &fixture{t: t, open: f(t), clock: NewClock(), timed: true}
	fx.start()
	return fx
}

func (fx *fixture) timerStore() timer.Store {
	fx.t.Helper()
	p, ok := fx.st.(timer.Provider)
	if !ok {
		fx.t.Skipf("storage %T has no timers", fx.st)
	}
	return p.Timers()
}

// expiryTimer returns the expiry timer of pending transfer id as stored, and whether it exists.
func (fx *fixture) expiryTimer(id string) (timer.Record, bool) {
	fx.t.Helper()
	r, ok, err := fx.timerStore().Get(ctx, ledger.ExpiryTimerID(id))
	if err != nil {
		fx.t.Fatalf("get expiry timer of %s: %v", id, err)
	}
	return r, ok
}

// waitStatus polls storage until transfer id has the status, for at most 10 seconds.
func (fx *fixture) waitStatus(id string, want ledger.Status) {
	fx.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		got, err := fx.st.GetTransfer(ctx, id)
		if err != nil {
			fx.t.Fatal(err)
		}
		if got.Status == want {
			return
		}
		if time.Now().After(deadline) {
			fx.t.Fatalf("transfer %s is %s, want %s", id, got.Status, want)
		}
	}
}

// waitTimerDone polls storage until the expiry timer of id is done, for at most 10 seconds.
func (fx *fixture) waitTimerDone(id string) timer.Record {
	fx.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if r, ok := fx.expiryTimer(id); ok && !r.Pending() {
			return r
		}
		if time.Now().After(deadline) {
			fx.t.Fatalf("expiry timer of %s not done", id)
		}
	}
}

func pendingXfer(id string, amount int64, timeoutSeconds int64) ledger.TransferInput {
	in := xfer(id, "a", "b", amount)
	in.Pending, in.TimeoutSeconds = true, timeoutSeconds
	return in
}

// testExpiryTimerCommitted: the expiry timer of a pending transfer is written if and only if
// the transfer commits: with it, never for a batch that failed or a commit that was fenced,
// never for a transfer without a timeout.
func testExpiryTimerCommitted(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{DebitsMustNotExceedCredits: true})
	fx.account("b", "CNY", ledger.Flags{})
	fx.mustTransfer(xfer("fund", "b", "a", 1000))

	p := fx.mustTransfer(pendingXfer("p1", 10, 60))
	r, ok := fx.expiryTimer("p1")
	want := ledger.ExpiryTimer(p)
	if !ok || !r.Pending() || r.Handler != ledger.ExpiryHandler || !r.FireAt.Equal(want.FireAt) ||
		int64(p.ExpiresAt) != r.FireAt.UnixNano() || string(r.Payload) != "p1" || r.ID != "ledger.expire:p1" {
		t.Fatalf("expiry timer %+v %v, want %+v", r, ok, want)
	}
	fx.mustTransfer(pendingXfer("p0", 10, 0))
	fx.mustTransfer(xfer("plain", "a", "b", 1))
	for _, id := range []string{"p0", "plain", "fund"} {
		if _, ok := fx.expiryTimer(id); ok {
			t.Fatalf("%s has an expiry timer", id)
		}
	}
	// An atomic batch that fails writes neither its pending transfer nor its timer.
	_, err := fx.eng.CreateTransfers(ctx, []ledger.TransferInput{pendingXfer("p2", 10, 60), xfer("over", "a", "b", 10_000)}, true)
	var be *ledger.BatchError
	if !errors.As(err, &be) || be.Index != 1 {
		t.Fatalf("atomic batch = %v", err)
	}
	if _, ok := fx.expiryTimer("p2"); ok {
		t.Fatal("failed batch left an expiry timer")
	}
	// Many pending transfers in one group commit each get theirs.
	var many []ledger.TransferInput
	for i := range 100 {
		many = append(many, pendingXfer("m"+string(rune('A'+i/26))+string(rune('a'+i%26)), 1, int64(i+1)))
	}
	res, err := fx.eng.CreateTransfers(ctx, many, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		tm, ok := fx.expiryTimer(r.Transfer.ID)
		if !ok || tm.FireAt.UnixNano() != int64(r.Transfer.ExpiresAt) {
			t.Fatalf("timer of %s: %+v %v", r.Transfer.ID, tm, ok)
		}
	}
	// A commit refused by fencing writes no timer.
	if _, err := fx.st.AcquireWriter(ctx, 0); err != nil {
		t.Fatal(err)
	}
	_, err = fx.transfer(pendingXfer("p3", 10, 60))
	wantCode(t, err, apierror.NotLeader)
	if _, ok := fx.expiryTimer("p3"); ok {
		t.Fatal("fenced commit left an expiry timer")
	}
	if _, err := fx.st.GetTransfer(ctx, "p3"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("fenced transfer: %v", err)
	}
}

// testExpiryOnTimers: with a timer service and no sweep, a pending transfer expires when its
// timer fires and its reserved amounts are released; expiring is idempotent, and the timer of
// a pending transfer posted or voided before its timeout is a no-op.
func testExpiryOnTimers(t *testing.T, f Factory) {
	fx := newTimedFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	p := fx.mustTransfer(pendingXfer("p", 10, 10))
	fx.mustTransfer(pendingXfer("posted", 3, 10))
	fx.mustTransfer(pendingXfer("voided", 4, 10))
	fx.wantBalances("a", ledger.Balances{DebitsPending: 17})
	if ok, err := fx.eng.Expire(ctx, "p"); ok || !errors.Is(err, ledger.ErrNotDue) {
		t.Fatalf("expire before the timeout: %v %v", ok, err)
	}
	if err := fx.eng.ExpireTimer(ctx, ledger.ExpiryTimer(p)); !errors.Is(err, ledger.ErrNotDue) {
		t.Fatalf("expiry handler before the timeout: %v", err)
	}
	fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "post", PendingID: "posted"})
	fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "void", PendingID: "voided"})
	// The timeout counts from the transfer's timestamp, a few nanoseconds past the clock.
	fx.clock.Advance(time.Unix(0, int64(p.ExpiresAt)).Sub(fx.clock.Now()) - time.Second)
	got, _ := fx.st.GetTransfer(ctx, "p")
	if got.Status != ledger.StatusPending {
		t.Fatalf("status before the timeout: %s", got.Status)
	}
	fx.clock.Advance(2 * time.Second)
	fx.waitStatus("p", ledger.StatusExpired)
	for _, id := range []string{"p", "posted", "voided"} {
		if r := fx.waitTimerDone(id); r.Attempts != 0 {
			t.Fatalf("timer of %s failed %d times: %s", id, r.Attempts, r.LastError)
		}
	}
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 3})
	fx.wantBalances("b", ledger.Balances{CreditsPosted: 3})
	rec, err := fx.eng.Transfer(ctx, ledger.ExpiryID("p"))
	if err != nil || rec.Status != ledger.StatusExpired || rec.Amount != 10 {
		t.Fatalf("expiry record %+v %v", rec, err)
	}
	for _, id := range []string{"posted", "voided"} {
		if _, err := fx.st.GetTransfer(ctx, ledger.ExpiryID(id)); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("%s closed before its timeout got an expiry record: %v", id, err)
		}
	}
	// A repeated delivery (at-least-once) changes nothing.
	if err := fx.eng.ExpireTimer(ctx, ledger.ExpiryTimer(p)); err != nil {
		t.Fatalf("expiry handler again: %v", err)
	}
	if ok, err := fx.eng.Expire(ctx, "p"); ok || err != nil {
		t.Fatalf("expire again: %v %v", ok, err)
	}
	fx.wantBalances("a", ledger.Balances{DebitsPosted: 3})
	if _, err := fx.eng.Expire(ctx, "nope"); apierror.As(err) == nil || apierror.As(err).Code != apierror.PendingNotFound {
		t.Fatalf("expire unknown: %v", err)
	}
	fx.verify()
}

// testExpiryTimersAcrossRestart: a pending transfer that comes due while the process is down
// expires through its timer promptly after the restart (no sweep runs).
func testExpiryTimersAcrossRestart(t *testing.T, f Factory) {
	fx := newTimedFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	fx.mustTransfer(pendingXfer("p", 10, 5))
	fx.stop(fx.timers, fx.eng, fx.st)
	fx.clock.Advance(time.Minute) // the process was down when it came due
	fx.start()
	fx.waitStatus("p", ledger.StatusExpired)
	fx.waitTimerDone("p")
	fx.wantBalances("a", ledger.Balances{})
	fx.wantBalances("b", ledger.Balances{})
	fx.verify()
}

// TestExpiryTimerBackfill checks a backend's migration 0008 (found in migrations), which
// gives the pending transfers written before expiry timers existed the timers the ledger now
// commits with them: run by exec on the database of a store whose expiry timers were removed,
// it recreates exactly ledger.ExpiryTimer for every transfer still pending with a timeout,
// and running it again changes nothing.
func TestExpiryTimerBackfill(t *testing.T, f Factory, migrations func() ([]migration.Migration, error), exec func(st ledger.Store, sql string) error) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m migration.Migration) bool { return m.Version == 8 })
	if i < 0 {
		t.Fatal("no migration 0008")
	}
	backfill := ms[i].SQL
	fx := newFixture(t, f)
	fx.account("a", "CNY", ledger.Flags{})
	fx.account("b", "CNY", ledger.Flags{})
	p := fx.mustTransfer(pendingXfer("p", 10, 60))
	fx.mustTransfer(pendingXfer("posted", 10, 60))
	fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "post", PendingID: "posted"})
	fx.mustTransfer(pendingXfer("forever", 10, 0))
	ts := fx.timerStore()
	for _, id := range []string{"p", "posted"} {
		if ok, err := ts.Cancel(ctx, ledger.ExpiryTimerID(id)); err != nil || !ok {
			t.Fatalf("remove timer of %s: %v %v", id, ok, err)
		}
	}
	for range 2 {
		if err := exec(fx.st, backfill); err != nil {
			t.Fatalf("backfill: %v", err)
		}
	}
	want := ledger.ExpiryTimer(p)
	r, ok := fx.expiryTimer("p")
	if !ok || !r.Pending() || r.ID != want.ID || r.Handler != want.Handler || !r.FireAt.Equal(want.FireAt) ||
		!r.NextAt.Equal(want.FireAt) || string(r.Payload) != string(want.Payload) || r.Attempts != 0 {
		t.Fatalf("backfilled %+v %v, want %+v", r, ok, want)
	}
	for _, id := range []string{"posted", "forever", "post"} {
		if _, ok := fx.expiryTimer(id); ok {
			t.Fatalf("backfill gave %s a timer", id)
		}
	}
}
