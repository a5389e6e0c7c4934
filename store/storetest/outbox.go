package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/outbox"
)

// TestOutbox runs the outbox behaviours against a backend whose ledger store is also an
// outbox.Provider: events commit with the ledger's batches, atomically, and the relay's
// queries see them in commit order.
func TestOutbox(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"OrderAndPaging", testOutboxOrder},
		{"Atomic", testOutboxAtomic},
		{"MarkAndPrune", testOutboxMarkPrune},
		{"EngineEvents", testOutboxEngineEvents},
		{"EngineFenced", testOutboxEngineFenced},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// openOutbox opens fresh storage and returns its ledger store, outbox and a writer token.
func openOutbox(t *testing.T, f Factory) (ledger.Store, outbox.Store, int64) {
	t.Helper()
	st := f(t)()
	t.Cleanup(func() { st.Close() })
	p, ok := st.(outbox.Provider)
	if !ok {
		t.Fatalf("%T does not provide an outbox", st)
	}
	token, err := st.AcquireWriter(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st, p.Outbox(), token
}

// eventBatch is a batch of one new account (timestamp ts) and n events named by prefix.
func eventBatch(ts ledger.Timestamp, prefix string, n int) *ledger.Batch {
	b := &ledger.Batch{NewAccounts: []*ledger.Account{{
		ID: fmt.Sprintf("acc_%s", prefix), Currency: "USD", Code: "test", Timestamp: ts, ReqHash: []byte{1},
	}}}
	for i := range n {
		b.Events = append(b.Events, ledger.Event{
			Subject: fmt.Sprintf("test.%s", prefix), ID: fmt.Sprintf("%s-%d", prefix, i),
			Payload: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		})
	}
	return b
}

func unpublished(t *testing.T, ob outbox.Store, after int64, limit int) []outbox.Record {
	t.Helper()
	recs, err := ob.Unpublished(ctx, after, limit)
	if err != nil {
		t.Fatalf("unpublished: %v", err)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Seq <= recs[i-1].Seq {
			t.Fatalf("seq not increasing: %d then %d", recs[i-1].Seq, recs[i].Seq)
		}
	}
	return recs
}

func testOutboxOrder(t *testing.T, f Factory) {
	st, ob, token := openOutbox(t, f)
	if recs := unpublished(t, ob, 0, 10); len(recs) != 0 {
		t.Fatalf("fresh outbox holds %d rows", len(recs))
	}
	before := time.Now().Add(-time.Second)
	// 700 rows exercise the multi-statement and COPY paths.
	for i, n := range []int{3, 700, 1} {
		if err := st.Commit(ctx, token, eventBatch(ledger.Timestamp(i+1), fmt.Sprint("b", i), n)); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	all := unpublished(t, ob, 0, 1000)
	if len(all) != 704 {
		t.Fatalf("got %d rows, want 704", len(all))
	}
	want := 0
	for b, n := range []int{3, 700, 1} {
		for i := range n {
			r := all[want]
			if r.Subject != fmt.Sprint("test.b", b) || r.MsgID != fmt.Sprintf("b%d-%d", b, i) || string(r.Payload) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("row %d is %s %s %s", want, r.Subject, r.MsgID, r.Payload)
			}
			if r.CreatedAt.Before(before) || r.CreatedAt.After(time.Now().Add(time.Second)) {
				t.Fatalf("row %d created at %v", want, r.CreatedAt)
			}
			want++
		}
	}
	page := unpublished(t, ob, 0, 10)
	if len(page) != 10 || page[9].Seq != all[9].Seq {
		t.Fatalf("first page of 10: %d rows", len(page))
	}
	page = unpublished(t, ob, all[9].Seq, 10)
	if len(page) != 10 || page[0].Seq != all[10].Seq {
		t.Fatalf("second page does not follow the first")
	}
	if n, oldest, err := ob.Backlog(ctx); err != nil || n != 704 || oldest.IsZero() {
		t.Fatalf("backlog = %d, %v, %v; want 704", n, oldest, err)
	}
}

func testOutboxAtomic(t *testing.T, f Factory) {
	st, ob, token := openOutbox(t, f)
	if err := st.Commit(ctx, token, eventBatch(1, "ok", 2)); err != nil {
		t.Fatal(err)
	}
	// A duplicate event id fails the whole commit: neither its account nor its events stay.
	dup := eventBatch(2, "dup", 2)
	dup.Events[1].ID = "ok-0"
	if err := st.Commit(ctx, token, dup); err == nil {
		t.Fatal("commit with a duplicate event id succeeded")
	}
	if _, err := st.GetAccount(ctx, "acc_dup"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("account of the failed commit: %v", err)
	}
	// A fenced commit writes nothing either.
	if _, err := st.AcquireWriter(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, token, eventBatch(3, "fenced", 2)); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("commit with an old token: %v, want ErrFenced", err)
	}
	recs := unpublished(t, ob, 0, 10)
	if len(recs) != 2 || recs[0].MsgID != "ok-0" || recs[1].MsgID != "ok-1" {
		t.Fatalf("outbox after failed commits: %+v", recs)
	}
}

func testOutboxMarkPrune(t *testing.T, f Factory) {
	st, ob, token := openOutbox(t, f)
	if err := st.Commit(ctx, token, eventBatch(1, "a", 5)); err != nil {
		t.Fatal(err)
	}
	all := unpublished(t, ob, 0, 10)
	if err := ob.MarkPublished(ctx, all[2].Seq); err != nil {
		t.Fatal(err)
	}
	rest := unpublished(t, ob, 0, 10)
	if len(rest) != 2 || rest[0].Seq != all[3].Seq {
		t.Fatalf("after marking 3 of 5: %d unpublished", len(rest))
	}
	if n, _, err := ob.Backlog(ctx); err != nil || n != 2 {
		t.Fatalf("backlog = %d, %v; want 2", n, err)
	}
	// Nothing was published before an hour ago; everything marked was published before now.
	if n, err := ob.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("prune old = %d, %v; want 0", n, err)
	}
	if n, err := ob.Prune(ctx, time.Now().Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("prune = %d, %v; want 3 (unpublished rows stay)", n, err)
	}
	if err := ob.MarkPublished(ctx, all[4].Seq); err != nil {
		t.Fatal(err)
	}
	if n, oldest, err := ob.Backlog(ctx); err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("backlog = %d, %v, %v; want 0", n, oldest, err)
	}
	if n, err := ob.Prune(ctx, time.Now().Add(time.Second)); err != nil || n != 2 {
		t.Fatalf("prune = %d, %v; want 2", n, err)
	}
	// With the table empty, new rows still get higher seqs than any before: a relay that
	// remembers the last seq it published must not miss them.
	if err := st.Commit(ctx, token, eventBatch(2, "b", 1)); err != nil {
		t.Fatal(err)
	}
	recs := unpublished(t, ob, all[4].Seq, 10)
	if len(recs) != 1 || recs[0].Seq <= all[4].Seq {
		t.Fatalf("after pruning everything, a new row got seq %v (last was %d)", recs, all[4].Seq)
	}
}

// envelope is an event's JSON shape (docs/events.md).
type envelope struct {
	SchemaVersion int             `json:"schema_version"`
	Type          string          `json:"type"`
	ID            string          `json:"id"`
	OccurredAt    string          `json:"occurred_at"`
	Data          json.RawMessage `json:"data"`
}

// testOutboxEngineEvents: every account and record the engine writes has its event in the
// outbox, in journal order, with the record as the API renders it.
func testOutboxEngineEvents(t *testing.T, f Factory) {
	fx := &fixture{t: t, open: f(t), clock: NewClock(), manual: true}
	fx.start()
	ob := fx.st.(outbox.Provider).Outbox()
	fx.account("a", "USD", ledger.Flags{})
	fx.account("b", "USD", ledger.Flags{})
	meta := map[string]string{"order": "o<1>&\"x\"", "note": "café"}
	fx.mustTransfer(ledger.TransferInput{ID: "t1", DebitAccountID: "a", CreditAccountID: "b", Amount: 100, Currency: "USD", Code: "c", Metadata: meta})
	fx.mustTransfer(ledger.TransferInput{ID: "p1", DebitAccountID: "a", CreditAccountID: "b", Amount: 50, Currency: "USD", Pending: true, TimeoutSeconds: 60})
	fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionPost, ID: "p1-post", PendingID: "p1", Amount: 20})
	fx.mustTransfer(ledger.TransferInput{ID: "p2", DebitAccountID: "a", CreditAccountID: "b", Amount: 5, Currency: "USD", Pending: true})
	fx.mustTransfer(ledger.TransferInput{Action: ledger.ActionVoid, ID: "p2-void", PendingID: "p2"})
	fx.mustTransfer(ledger.TransferInput{ID: "p3", DebitAccountID: "a", CreditAccountID: "b", Amount: 7, Currency: "USD", Pending: true, TimeoutSeconds: 1})
	fx.clock.Advance(2 * time.Second)
	if n, err := fx.eng.ExpireDue(ctx); err != nil || n != 1 {
		t.Fatalf("expire = %d, %v", n, err)
	}
	// An idempotent replay writes no record and no event.
	fx.mustTransfer(ledger.TransferInput{ID: "t1", DebitAccountID: "a", CreditAccountID: "b", Amount: 100, Currency: "USD", Code: "c", Metadata: meta})

	want := []struct{ subject, id string }{
		{ledger.SubjectAccountCreated, "a"}, {ledger.SubjectAccountCreated, "b"},
		{ledger.SubjectTransferCreated, "t1"}, {ledger.SubjectTransferCreated, "p1"},
		{ledger.SubjectTransferPosted, "p1-post"}, {ledger.SubjectTransferCreated, "p2"},
		{ledger.SubjectTransferVoided, "p2-void"}, {ledger.SubjectTransferCreated, "p3"},
		{ledger.SubjectTransferExpired, ledger.ExpiryID("p3")},
	}
	recs := unpublished(t, ob, 0, 100)
	if len(recs) != len(want) {
		t.Fatalf("outbox holds %d events, want %d", len(recs), len(want))
	}
	for i, w := range want {
		r := recs[i]
		var env envelope
		if err := json.Unmarshal(r.Payload, &env); err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, r.Payload)
		}
		if r.Subject != w.subject || env.Type != w.subject || env.SchemaVersion != 1 || env.ID != r.MsgID {
			t.Fatalf("event %d: subject %s type %s version %d id %s/%s; want %s", i, r.Subject, env.Type, env.SchemaVersion, env.ID, r.MsgID, w.subject)
		}
		if _, err := time.Parse(time.RFC3339Nano, env.OccurredAt); err != nil {
			t.Fatalf("event %d: occurred_at: %v", i, err)
		}
		// data is exactly what encoding/json makes of the stored object (as the API
		// renders it); an account is announced with the zero balances it was created with.
		var rendered []byte
		var err error
		if w.subject == ledger.SubjectAccountCreated {
			var a *ledger.Account
			if a, err = fx.st.GetAccount(ctx, w.id); err == nil {
				a.Balances = ledger.Balances{}
				rendered, err = json.Marshal(a)
			}
		} else {
			var tr *ledger.Transfer
			if tr, err = fx.st.GetTransfer(ctx, w.id); err == nil {
				if tr.Pending {
					tr.Status = ledger.StatusPending // as it was when created
				}
				rendered, err = json.Marshal(tr)
			}
		}
		if err != nil {
			t.Fatalf("event %d: read %s: %v", i, w.id, err)
		}
		if !bytes.Equal(env.Data, rendered) {
			t.Fatalf("event %d data:\n got %s\nwant %s", i, env.Data, rendered)
		}
		if i > 0 && env.ID <= recs[i-1].MsgID {
			t.Fatalf("event ids not in journal order: %s after %s", env.ID, recs[i-1].MsgID)
		}
	}
}

// testOutboxEngineFenced: a commit refused by fencing leaves no event.
func testOutboxEngineFenced(t *testing.T, f Factory) {
	fx := newFixture(t, f)
	ob := fx.st.(outbox.Provider).Outbox()
	fx.account("a", "USD", ledger.Flags{})
	fx.account("b", "USD", ledger.Flags{})
	fx.mustTransfer(ledger.TransferInput{ID: "t1", DebitAccountID: "a", CreditAccountID: "b", Amount: 1, Currency: "USD"})
	if _, err := fx.st.AcquireWriter(ctx, 0); err != nil { // a newer writer takes over
		t.Fatal(err)
	}
	if _, _, err := fx.eng.CreateTransfer(ctx, ledger.TransferInput{ID: "t2", DebitAccountID: "a", CreditAccountID: "b", Amount: 1, Currency: "USD"}); err == nil {
		t.Fatal("a fenced engine's transfer succeeded")
	}
	recs := unpublished(t, ob, 0, 100)
	if len(recs) != 3 {
		t.Fatalf("outbox holds %d events, want 3 (two accounts, t1)", len(recs))
	}
	for _, r := range recs {
		if bytes.Contains(r.Payload, []byte(`"id":"t2"`)) {
			t.Fatalf("the fenced transfer has an event: %s", r.Payload)
		}
	}
}
