package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/outbox"
	"github.com/fincore/fincore/platform/timer"
)

// TestRecords runs the behaviours of units (Engine.Commit): records committed with their
// transfers, events and timers in one transaction, version checks, and listing.
func TestRecords(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"CommitTogether", testUnitCommitTogether},
		{"FailingTransferWritesNothing", testUnitFailingTransfer},
		{"VersionConflict", testUnitVersionConflict},
		{"ConcurrentWritersOneWins", testUnitConcurrent},
		{"ListAndPage", testRecordsList},
		{"SurviveRestart", testRecordsRestart},
		{"VersionsBeyondTheWriterCache", testRecordsBeyondCache},
		{"IndexesFollowOwnerAndStatus", testRecordsIndexes},
		{"FailedCommitForgetsVersions", testRecordsFailedCommit},
		{"CommitIntervalHoldsTheNextGroup", testCommitInterval},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func unitAccounts(t *testing.T, e *ledger.Engine) {
	t.Helper()
	res, err := e.CreateAccounts(context.Background(), []ledger.AccountInput{
		{ID: "clearing", Currency: "CNY"},
		{ID: "merchant", Currency: "CNY", Flags: ledger.Flags{DebitsMustNotExceedCredits: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

func payment(id, status string, data string) ledger.Record {
	return ledger.Record{Kind: "payment", ID: id, Owner: "m1", Status: status, Data: []byte(data)}
}

func testUnitCommitTogether(t *testing.T, f Factory) {
	open := f(t)
	st := open()
	clock := NewClock()
	e := OpenEngine(t, st, clock.Now)
	unitAccounts(t, e)
	ctx := context.Background()
	u := ledger.Unit{
		Transfers: []ledger.TransferInput{{ID: "pay_1.capture", DebitAccountID: "clearing", CreditAccountID: "merchant", Amount: 500, Currency: "CNY"}},
		Records:   []ledger.RecordWrite{{Record: payment("pay_1", "succeeded", `{"amount":500}`)}},
		Events:    []ledger.ModuleEvent{{Subject: "payment.succeeded", ID: "evt_pay_1_succeeded", Payload: []byte(`{"id":"pay_1"}`)}},
		Timers:    []timer.Timer{{ID: "payment.query:pay_1", Handler: "payment.query", FireAt: clock.Now().Add(time.Minute)}},
	}
	res, err := e.Commit(ctx, u)
	if err != nil || len(res) != 1 || !res[0].Created {
		t.Fatalf("Commit = %+v, %v", res, err)
	}
	rec, err := st.GetRecord(ctx, "payment", "pay_1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != 1 || rec.Status != "succeeded" || rec.Owner != "m1" || string(rec.Data) != `{"amount":500}` || rec.Created.IsZero() {
		t.Fatalf("record %+v", rec)
	}
	if acc, _ := st.GetAccount(ctx, "merchant"); acc.Balances.CreditsPosted != 500 {
		t.Fatalf("merchant balances %+v", acc.Balances)
	}
	// The module's event went into the outbox after the ledger's own.
	if p, ok := st.(outbox.Provider); ok {
		recs, err := p.Outbox().Unpublished(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1]
		if last.Subject != "payment.succeeded" || last.MsgID != "evt_pay_1_succeeded" || string(last.Payload) != `{"id":"pay_1"}` {
			t.Fatalf("last outbox record %+v", last)
		}
	}
	if p, ok := st.(interface{ Timers() timer.Store }); ok {
		if _, ok, err := p.Timers().Get(ctx, "payment.query:pay_1"); err != nil || !ok {
			t.Fatalf("the unit's timer: %v, %v", ok, err)
		}
	}
	// A second version replaces the first and keeps its creation time.
	time.Sleep(time.Millisecond)
	clock.Advance(time.Second)
	w := ledger.RecordWrite{Record: payment("pay_1", "refunded", `{"amount":500,"refunded":500}`), Expect: 1}
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{w}}); err != nil {
		t.Fatal(err)
	}
	rec2, _ := st.GetRecord(ctx, "payment", "pay_1")
	if rec2.Version != 2 || rec2.Status != "refunded" || !rec2.Created.Equal(rec.Created) || !rec2.Updated.After(rec.Updated) {
		t.Fatalf("second version %+v (first %+v)", rec2, rec)
	}
	if _, err := st.GetRecord(ctx, "payment", "nope"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("GetRecord(nope) = %v", err)
	}
}

func testUnitFailingTransfer(t *testing.T, f Factory) {
	st := f(t)()
	e := OpenEngine(t, st, NewClock().Now)
	unitAccounts(t, e)
	ctx := context.Background()
	// The merchant cannot be debited below zero: the refund transfer fails, and with it the
	// record write.
	_, err := e.Commit(ctx, ledger.Unit{
		Transfers: []ledger.TransferInput{{ID: "re_1", DebitAccountID: "merchant", CreditAccountID: "clearing", Amount: 1, Currency: "CNY"}},
		Records:   []ledger.RecordWrite{{Record: ledger.Record{Kind: "refund", ID: "re_1", Status: "succeeded", Data: []byte("{}")}}},
	})
	var be *ledger.BatchError
	if !errors.As(err, &be) || be.Err.Code != apierror.ExceedsCredits {
		t.Fatalf("Commit = %v, want a batch error exceeds_credits", err)
	}
	if _, err := st.GetRecord(ctx, "refund", "re_1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the record of a failed unit was written: %v", err)
	}
	if _, err := st.GetTransfer(ctx, "re_1"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the transfer of a failed unit was written: %v", err)
	}
}

func testUnitVersionConflict(t *testing.T, f Factory) {
	st := f(t)()
	e := OpenEngine(t, st, NewClock().Now)
	unitAccounts(t, e)
	ctx := context.Background()
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "processing", "{}")}}}); err != nil {
		t.Fatal(err)
	}
	// Creating it again, or writing over a stale version, is refused — and the unit's
	// transfer does not apply.
	for _, expect := range []int64{0, 2} {
		_, err := e.Commit(ctx, ledger.Unit{
			Transfers: []ledger.TransferInput{{ID: fmt.Sprintf("t%d", expect), DebitAccountID: "clearing", CreditAccountID: "merchant", Amount: 1, Currency: "CNY"}},
			Records:   []ledger.RecordWrite{{Record: payment("p", "succeeded", "{}"), Expect: expect}},
		})
		var ae *apierror.Error
		if !errors.As(err, &ae) || ae.Code != apierror.RecordConflict {
			t.Fatalf("expect %d: Commit = %v, want record_conflict", expect, err)
		}
		if _, err := st.GetTransfer(ctx, fmt.Sprintf("t%d", expect)); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("expect %d: the transfer applied", expect)
		}
	}
	// Invalid units are refused before the writer.
	for _, u := range []ledger.Unit{
		{},
		{Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: "Bad Kind", ID: "x"}}}},
		{Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: "payment", ID: ""}}}},
		{Records: []ledger.RecordWrite{{Record: payment("a", "", "")}, {Record: payment("a", "", "")}}},
		{Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: "payment", ID: "big", Data: make([]byte, ledger.RecordDataMax+1)}}}},
		{Events: []ledger.ModuleEvent{{Subject: "x"}}},
	} {
		if _, err := e.Commit(ctx, u); err == nil {
			t.Errorf("invalid unit %+v accepted", u)
		}
	}
}

func testUnitConcurrent(t *testing.T, f Factory) {
	st := f(t)()
	e := OpenEngine(t, st, NewClock().Now)
	unitAccounts(t, e)
	ctx := context.Background()
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "processing", "{}")}}}); err != nil {
		t.Fatal(err)
	}
	// 20 writers all read version 1 and try to move the payment on, each with its own
	// capture: exactly one wins, and exactly one capture is posted.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Commit(ctx, ledger.Unit{
				Transfers: []ledger.TransferInput{{ID: fmt.Sprintf("cap_%d", i), DebitAccountID: "clearing", CreditAccountID: "merchant", Amount: 10, Currency: "CNY"}},
				Records:   []ledger.RecordWrite{{Record: payment("p", "succeeded", "{}"), Expect: 1}},
			})
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d writers won, want 1", wins)
	}
	if acc, _ := st.GetAccount(ctx, "merchant"); acc.Balances.CreditsPosted != 10 {
		t.Fatalf("merchant credited %d, want 10", acc.Balances.CreditsPosted)
	}
	// Two units in one group writing one record in turn (versions 2 then 3) leave version 3.
	errs := make(chan error, 2)
	go func() {
		_, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "a", "{}"), Expect: 2}}})
		errs <- err
	}()
	_, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "b", "{}"), Expect: 2}}})
	err2 := <-errs
	if (err == nil) == (err2 == nil) {
		t.Fatalf("two writes of version 2: %v and %v, want exactly one to succeed", err, err2)
	}
	rec, _ := st.GetRecord(ctx, "payment", "p")
	if rec.Version != 3 {
		t.Fatalf("version %d, want 3", rec.Version)
	}
}

func testRecordsList(t *testing.T, f Factory) {
	st := f(t)()
	clock := NewClock()
	e := OpenEngine(t, st, clock.Now)
	ctx := context.Background()
	t0 := clock.Now()
	for i := range 25 {
		clock.Advance(time.Second)
		owner, status := "m1", "succeeded"
		if i%2 == 1 {
			owner = "m2"
		}
		if i%5 == 0 {
			status = "failed"
		}
		r := ledger.Record{Kind: "payment", ID: fmt.Sprintf("p%02d", i), Owner: owner, Status: status, Data: []byte("{}")}
		if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: r}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: "refund", ID: "r1", Owner: "p01"}}}}); err != nil {
		t.Fatal(err)
	}
	ids := func(q ledger.RecordQuery) (out []string) {
		t.Helper()
		for {
			recs, more, err := st.ListRecords(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out = append(out, r.ID)
			}
			if !more {
				return out
			}
			q.StartingAfter = recs[len(recs)-1].ID
		}
	}
	all := ids(ledger.RecordQuery{Kind: "payment", Limit: 4})
	if len(all) != 25 || all[0] != "p24" || all[24] != "p00" {
		t.Fatalf("all payments newest first: %v", all)
	}
	if got := ids(ledger.RecordQuery{Kind: "payment", Owner: "m2", Status: "failed", Limit: 10}); fmt.Sprint(got) != "[p15 p05]" {
		t.Fatalf("m2 failed: %v", got)
	}
	from, before := t0.Add(3*time.Second), t0.Add(6*time.Second) // p02..p04
	if got := ids(ledger.RecordQuery{Kind: "payment", CreatedFrom: from, CreatedBefore: before, Limit: 2}); fmt.Sprint(got) != "[p04 p03 p02]" {
		t.Fatalf("time window: %v", got)
	}
	if got := ids(ledger.RecordQuery{Kind: "refund", Owner: "p01", Limit: 10}); fmt.Sprint(got) != "[r1]" {
		t.Fatalf("refunds of p01: %v", got)
	}
	if _, _, err := st.ListRecords(ctx, ledger.RecordQuery{Kind: "payment", StartingAfter: "nope", Limit: 1}); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
}

func testRecordsRestart(t *testing.T, f Factory) {
	open := f(t)
	st := open()
	e, err := ledger.Open(context.Background(), st, ledger.Config{Logger: QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "processing", "{}")}}}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	st.Close()
	// A new writer on the same storage sees version 1 (from storage, not memory).
	st = open()
	e = OpenEngine(t, st, time.Now)
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "x", "{}")}}}); err == nil {
		t.Fatal("re-creating a stored record after a restart was accepted")
	}
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "succeeded", "{}"), Expect: 1}}}); err != nil {
		t.Fatal(err)
	}
}

// testRecordsBeyondCache writes more records than the writer keeps versions of: versions it
// has forgotten are read from storage, so stale writes are still refused and current ones
// accepted, for records of several kinds in one unit.
func testRecordsBeyondCache(t *testing.T, f Factory) {
	st := f(t)()
	e, err := ledger.Open(context.Background(), st, ledger.Config{Logger: QuietLogger(), RecordCacheMax: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx := context.Background()
	const n = 40
	for i := range n {
		if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{
			{Record: payment(fmt.Sprintf("p%d", i), "processing", "{}")},
			{Record: ledger.Record{Kind: "refund", ID: fmt.Sprintf("r%d", i), Status: "processing", Data: []byte("{}")}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		stale := ledger.Unit{Records: []ledger.RecordWrite{
			{Record: payment(fmt.Sprintf("p%d", i), "succeeded", "{}"), Expect: 1},
			{Record: ledger.Record{Kind: "refund", ID: fmt.Sprintf("r%d", i), Status: "succeeded", Data: []byte("{}")}, Expect: 0},
		}}
		if _, err := e.Commit(ctx, stale); !isRecordConflict(err) {
			t.Fatalf("record %d: a write over a stale version gave %v, want record_conflict", i, err)
		}
		stale.Records[1].Expect = 1
		if _, err := e.Commit(ctx, stale); err != nil {
			t.Fatalf("record %d: a write over the current versions: %v", i, err)
		}
	}
	for i := range n {
		rec, err := st.GetRecord(ctx, "refund", fmt.Sprintf("r%d", i))
		if err != nil || rec.Version != 2 || rec.Status != "succeeded" {
			t.Fatalf("refund %d: %+v, %v; want version 2, succeeded", i, rec, err)
		}
	}
}

// testRecordsIndexes rewrites records with the same owner and status (data only: a store
// may leave those indexes alone), with a new status, and with a new owner, some several
// times concurrently (so within one group), past a small version cache: listings by owner
// and status must see every record where its latest version puts it, with its latest data.
func testRecordsIndexes(t *testing.T, f Factory) {
	st := f(t)()
	e, err := ledger.Open(context.Background(), st, ledger.Config{Logger: QuietLogger(), RecordCacheMax: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx := context.Background()
	const n = 30
	type state struct {
		owner, status, data string
		version             int64
	}
	want := make([]state, n)
	write := func(i int, s state) {
		t.Helper()
		r := ledger.Record{Kind: "loan", ID: fmt.Sprintf("l%02d", i), Owner: s.owner, Status: s.status, Data: []byte(s.data)}
		if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: r, Expect: want[i].version}}}); err != nil {
			t.Error(err)
			return
		}
		s.version = want[i].version + 1
		want[i] = s
	}
	for i := range n {
		write(i, state{owner: fmt.Sprintf("a%d", i%3), status: "active", data: "v1"})
	}
	// Three rounds per record, each record's rounds in order but records concurrently.
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := want[i]
			for round := range 3 {
				s.data = fmt.Sprintf("v%d-%d", round+2, i)
				switch (i + round) % 4 {
				case 1:
					s.status = "paid_off"
				case 2:
					s.owner = fmt.Sprintf("a%d", (i+round)%3+3)
				case 3:
					s.status = "active"
				}
				write(i, s)
			}
		})
	}
	wg.Wait()
	list := func(q ledger.RecordQuery) map[string]string {
		t.Helper()
		out := map[string]string{}
		for {
			recs, more, err := st.ListRecords(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				out[r.ID] = string(r.Data)
			}
			if !more {
				return out
			}
			q.StartingAfter = recs[len(recs)-1].ID
		}
	}
	for _, status := range []string{"active", "paid_off"} {
		for o := range 6 {
			owner := fmt.Sprintf("a%d", o)
			exp := map[string]string{}
			for i, s := range want {
				if s.owner == owner && s.status == status {
					exp[fmt.Sprintf("l%02d", i)] = s.data
				}
			}
			if got := list(ledger.RecordQuery{Kind: "loan", Owner: owner, Status: status, Limit: 3}); fmt.Sprint(got) != fmt.Sprint(exp) {
				t.Fatalf("%s %s: listed %v, want %v", owner, status, got, exp)
			}
		}
		exp := map[string]string{}
		for i, s := range want {
			if s.status == status {
				exp[fmt.Sprintf("l%02d", i)] = s.data
			}
		}
		if got := list(ledger.RecordQuery{Kind: "loan", Status: status, Limit: 7}); fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Fatalf("%s: listed %v, want %v", status, got, exp)
		}
	}
	for i, s := range want {
		r, err := st.GetRecord(ctx, "loan", fmt.Sprintf("l%02d", i))
		if err != nil || r.Version != s.version || r.Owner != s.owner || r.Status != s.status || string(r.Data) != s.data {
			t.Fatalf("record %d: %+v, %v; want %+v", i, r, err, s)
		}
	}
}

// failingCommits fails every storage commit while fail is set.
type failingCommits struct {
	ledger.Store
	fail atomic.Bool
}

func (s *failingCommits) Commit(ctx context.Context, token int64, b *ledger.Batch) error {
	if s.fail.Load() {
		return errors.New("injected commit failure")
	}
	return s.Store.Commit(ctx, token, b)
}

// testRecordsFailedCommit: a record version the writer applied in memory but could not
// commit is forgotten, so the next write is checked against storage.
func testRecordsFailedCommit(t *testing.T, f Factory) {
	st := &failingCommits{Store: f(t)()}
	e, err := ledger.Open(context.Background(), st, ledger.Config{Logger: QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx := context.Background()
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "processing", "{}")}}}); err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "sending", "{}"), Expect: 1}}}); err == nil {
		t.Fatal("a commit that failed in storage reported success")
	}
	st.fail.Store(false)
	// The writer fails what it prepared on top of the failed group, then reloads: the first
	// writes after a failure may be refused as unavailable and are retried.
	commit := func(u ledger.Unit) error {
		for range 10 {
			_, err := e.Commit(ctx, u)
			var ae *apierror.Error
			if !errors.As(err, &ae) || ae.Code != apierror.Unavailable {
				return err
			}
		}
		return errors.New("still unavailable after 10 tries")
	}
	// Storage still has version 1: writing over version 2 is refused, over version 1 accepted.
	if err := commit(ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "succeeded", "{}"), Expect: 2}}}); !isRecordConflict(err) {
		t.Fatalf("a write over the uncommitted version gave %v, want record_conflict", err)
	}
	if err := commit(ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("p", "succeeded", "{}"), Expect: 1}}}); err != nil {
		t.Fatalf("a write over the committed version: %v", err)
	}
	if rec, err := st.GetRecord(ctx, "payment", "p"); err != nil || rec.Version != 2 || rec.Status != "succeeded" {
		t.Fatalf("record %+v, %v; want version 2, succeeded", rec, err)
	}
}

func isRecordConflict(err error) bool {
	var ae *apierror.Error
	return errors.As(err, &ae) && ae.Code == apierror.RecordConflict
}

// testCommitInterval: with Config.CommitInterval, a group that follows another commits no
// sooner than the interval after that one started; what arrives meanwhile joins it.
func testCommitInterval(t *testing.T, f Factory) {
	const interval = 300 * time.Millisecond
	st := f(t)()
	var groups atomic.Int64
	e, err := ledger.Open(context.Background(), st, ledger.Config{Logger: QuietLogger(), CommitInterval: interval,
		Observer: groupCounter{&groups}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx := context.Background()
	t0 := time.Now()
	if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment("a", "processing", "{}")}}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, id := range []string{"b", "c"} {
		wg.Go(func() {
			if _, err := e.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: payment(id, "processing", "{}")}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(t0); d < interval {
		t.Fatalf("the next group committed %s after the first began, want at least %s", d, interval)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, err := st.GetRecord(ctx, "payment", id); err != nil {
			t.Fatalf("record %s: %v", id, err)
		}
	}
	if n := groups.Load(); n < 2 || n > 3 {
		t.Fatalf("%d group commits, want 2 or 3", n)
	}
}

type groupCounter struct{ n *atomic.Int64 }

func (g groupCounter) GroupCommitted(ledger.GroupCommit) { g.n.Add(1) }
