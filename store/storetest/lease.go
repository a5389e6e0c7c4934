package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
)

// testLeaseFencing: AcquireWriter records the highest lease token and refuses any lease token
// not above it, in the same statement that fences older writers' commits.
func testLeaseFencing(t *testing.T, f Factory) {
	st := f(t)()
	defer st.Close()
	t1, err := st.AcquireWriter(ctx, 5)
	if err != nil {
		t.Fatalf("AcquireWriter(5): %v", err)
	}
	if err := st.Commit(ctx, t1, &ledger.Batch{}); err != nil {
		t.Fatalf("commit under lease 5: %v", err)
	}
	t2, err := st.AcquireWriter(ctx, 7)
	if err != nil || t2 <= t1 {
		t.Fatalf("AcquireWriter(7) = %d, %v; want a token above %d", t2, err, t1)
	}
	if err := st.Commit(ctx, t1, &ledger.Batch{}); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("commit under the taken-over lease = %v, want ErrFenced", err)
	}
	// A stale lease, the same lease again, and no lease at all are refused, and refusing
	// them does not disturb the current writer.
	for _, lease := range []uint64{6, 7, 0} {
		if tok, err := st.AcquireWriter(ctx, lease); !errors.Is(err, ledger.ErrFenced) {
			t.Fatalf("AcquireWriter(%d) after lease 7 = %d, %v; want ErrFenced", lease, tok, err)
		}
	}
	if err := st.Commit(ctx, t2, &ledger.Batch{}); err != nil {
		t.Fatalf("commit under lease 7 after refused attempts: %v", err)
	}
}

// fakeLease is a writer lease the test controls. Until told otherwise it believes itself
// valid, as the lease of a process paused past its TTL does.
type fakeLease struct {
	token    uint64
	lost     chan struct{}
	lostOnce sync.Once
	mu       sync.Mutex
	invalid  bool
	released bool
}

func newFakeLease(token uint64) *fakeLease {
	return &fakeLease{token: token, lost: make(chan struct{})}
}

func (l *fakeLease) Token() uint64         { return l.token }
func (l *fakeLease) Lost() <-chan struct{} { return l.lost }
func (l *fakeLease) lose()                 { l.lostOnce.Do(func() { close(l.lost) }) }

func (l *fakeLease) Valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.invalid
}

func (l *fakeLease) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.invalid = true
}

func (l *fakeLease) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	return nil
}

func (l *fakeLease) wasReleased() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released
}

// fakeLessor hands out the leases the test gives it.
type fakeLessor struct{ next chan *fakeLease }

func newFakeLessor() *fakeLessor { return &fakeLessor{next: make(chan *fakeLease, 1)} }

func (f *fakeLessor) TryAcquire(context.Context) (ledger.WriterLease, error) {
	select {
	case l := <-f.next:
		return l, nil
	default:
		return nil, nil
	}
}

func (f *fakeLessor) Acquire(ctx context.Context) (ledger.WriterLease, error) {
	select {
	case l := <-f.next:
		return l, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitFor polls cond until it holds, failing the test after half a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLeaseTakeover runs two engines on one store, as two processes would: the leader's lease
// is taken over while it still believes it valid (a paused process), and storage refuses its
// writes; a standby serves reads, refuses writes, and takes over when it gets the lease.
func testLeaseTakeover(t *testing.T, f Factory) {
	st := f(t)()
	defer st.Close()
	clock := NewClock()
	open := func(l ledger.Lessor) *ledger.Engine {
		e, err := ledger.Open(ctx, st, ledger.Config{Now: clock.Now, Logger: QuietLogger(), Lessor: l})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	write := func(e *ledger.Engine, id string) error {
		_, _, err := e.CreateTransfer(ctx, xfer(id, "a", "b", 10))
		return err
	}
	absent := func(id string) {
		t.Helper()
		if _, err := st.GetTransfer(ctx, id); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("refused transfer %s is in storage: %v", id, err)
		}
	}

	la, lb := newFakeLessor(), newFakeLessor()
	leaseA := newFakeLease(1)
	la.next <- leaseA
	a := open(la)
	if !a.Writable() {
		t.Fatalf("engine with a free lease is not the writer: %v", a.WriteErr())
	}
	if _, err := a.CreateAccounts(ctx, []ledger.AccountInput{{ID: "a", Currency: "CNY"}, {ID: "b", Currency: "CNY"}}); err != nil {
		t.Fatal(err)
	}
	if err := write(a, "t1"); err != nil {
		t.Fatal(err)
	}

	b := open(lb)
	if b.Writable() || b.Token() != 0 {
		t.Fatalf("engine without the lease can write (token %d)", b.Token())
	}
	wantCode(t, write(b, "tb"), apierror.NotLeader)
	absent("tb")
	if acct, err := b.Account(ctx, "a"); err != nil || acct.Balances.DebitsPosted != 10 {
		t.Fatalf("standby read = %+v, %v", acct, err)
	}

	// A is paused past its TTL: its lease expires without A noticing, and B takes over.
	leaseB := newFakeLease(2)
	lb.next <- leaseB
	waitFor(t, "the standby takes over", b.Writable)
	if b.Token() <= 0 {
		t.Fatalf("new writer's token %d", b.Token())
	}
	if err := write(b, "t2"); err != nil {
		t.Fatalf("write on the new writer: %v", err)
	}
	// A resumes and writes: storage refuses the commit, A steps down and gives its lease up.
	if !a.Writable() {
		t.Fatal("the paused writer noticed the takeover before writing; the test cannot show storage refusing it")
	}
	wantCode(t, write(a, "t3"), apierror.NotLeader)
	absent("t3")
	waitFor(t, "the fenced writer steps down", func() bool { return !a.Writable() && leaseA.wasReleased() })
	wantCode(t, a.WriteErr(), apierror.NotLeader)
	wantCode(t, write(a, "t4"), apierror.NotLeader)
	absent("t4")
	// Given its old lease again, A cannot start a writer under it.
	stale := newFakeLease(1)
	la.next <- stale
	waitFor(t, "the stale lease is refused", stale.wasReleased)
	if a.Writable() {
		t.Fatal("a writer started under a superseded lease")
	}

	// B's lease runs out by its own clock before it commits: nothing is sent to storage.
	leaseB.expire()
	wantCode(t, write(b, "t5"), apierror.NotLeader)
	absent("t5")
	waitFor(t, "the expired writer steps down", func() bool { return !b.Writable() && leaseB.wasReleased() })

	// A gets a new lease and writes again, after B's records.
	leaseA3 := newFakeLease(3)
	la.next <- leaseA3
	waitFor(t, "the old writer takes over again", a.Writable)
	if err := write(a, "t6"); err != nil {
		t.Fatalf("write after taking over again: %v", err)
	}
	// A's lease is lost the ordinary way (not renewed in time): A steps down, and B, waiting
	// for the lease, takes over.
	leaseA3.lose()
	waitFor(t, "the writer whose lease was lost steps down", func() bool { return !a.Writable() && leaseA3.wasReleased() })
	wantCode(t, write(a, "t7"), apierror.NotLeader)
	absent("t7")
	lb.next <- newFakeLease(4)
	waitFor(t, "the standby takes over again", b.Writable)
	if err := write(b, "t8"); err != nil {
		t.Fatalf("write on the new writer: %v", err)
	}
	acct, err := a.Account(ctx, "a")
	if err != nil || acct.Balances.DebitsPosted != 40 {
		t.Fatalf("balances after t1, t2, t6 and t8 = %+v, %v; want debits posted 40", acct, err)
	}
	rep, err := ledger.Verify(ctx, st)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
}
