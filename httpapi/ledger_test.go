package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/sqlite"
	"github.com/fincore/fincore/store/storetest"
)

func TestAccountCreateReplayConflictGet(t *testing.T) {
	a := newTestAPI(t)
	body := `{"id":"acc_1","currency":"USD","code":"customer","flags":{"debits_must_not_exceed_credits":true},"metadata":{"owner":"u1"}}`
	first := a.do("POST", "/v1/accounts", body).wantStatus(t, 201)
	var acc account
	first.decode(t, &acc)
	if acc.ID != "acc_1" || acc.Currency != "USD" || acc.Code != "customer" || !acc.Flags.DebitsMustNotExceedCredits ||
		acc.Metadata["owner"] != "u1" || acc.Balances != (ledger.Balances{}) || acc.Timestamp == "" {
		t.Fatalf("account %+v", acc)
	}
	if !bytes.Contains(first.Body, []byte(`"balances":{"debits_pending":0,"debits_posted":0,"credits_pending":0,"credits_posted":0}`)) {
		t.Fatalf("account without balances: %s", first.Body)
	}

	replay := a.do("POST", "/v1/accounts", body).wantStatus(t, 200)
	if !bytes.Equal(replay.Body, first.Body) {
		t.Fatalf("replay body differs:\n%s\n%s", first.Body, replay.Body)
	}
	a.do("POST", "/v1/accounts", `{"id":"acc_1","currency":"EUR"}`).wantError(t, 409, "id_conflict", "id")

	got := a.do("GET", "/v1/accounts/acc_1", "").wantStatus(t, 200)
	if !bytes.Equal(got.Body, first.Body) {
		t.Fatalf("GET body differs:\n%s\n%s", first.Body, got.Body)
	}
	a.do("GET", "/v1/accounts/nope", "").wantError(t, 404, "account_not_found", "id")

	var gen account
	a.do("POST", "/v1/accounts", `{"currency":"CNY"}`).wantStatus(t, 201).decode(t, &gen)
	if !strings.HasPrefix(gen.ID, "acc_") || gen.Metadata == nil || len(gen.Metadata) != 0 {
		t.Fatalf("generated account %+v", gen)
	}
}

func TestTransferCreateReplayConflictGet(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	a.mustAccount("e", "EUR", ledger.Flags{})

	body := transferBody("t1", "a", "b", 1250, "code", "purchase", "metadata", map[string]string{"order": "o-1"})
	first := a.do("POST", "/v1/transfers", body).wantStatus(t, 201)
	var tr transfer
	first.decode(t, &tr)
	if tr.ID != "t1" || tr.DebitAccountID != "a" || tr.CreditAccountID != "b" || tr.Amount != 1250 || tr.Currency != "USD" ||
		tr.Code != "purchase" || tr.Pending || tr.Status != "posted" || tr.Metadata["order"] != "o-1" {
		t.Fatalf("transfer %+v", tr)
	}
	if ts, err := time.Parse(time.RFC3339Nano, tr.Timestamp); err != nil || len(tr.Timestamp) != len(ledger.TimeLayout)-5 {
		t.Fatalf("timestamp %q: %v", tr.Timestamp, err)
	} else if time.Since(ts) > time.Minute {
		t.Fatalf("timestamp %v is not recent", ts)
	}

	replay := a.do("POST", "/v1/transfers", body).wantStatus(t, 200)
	if !bytes.Equal(replay.Body, first.Body) {
		t.Fatalf("replay body differs:\n%s\n%s", first.Body, replay.Body)
	}
	a.do("POST", "/v1/transfers", transferBody("t1", "a", "b", 1251)).wantError(t, 409, "id_conflict", "id")
	got := a.do("GET", "/v1/transfers/t1", "").wantStatus(t, 200)
	if !bytes.Equal(got.Body, first.Body) {
		t.Fatalf("GET body differs:\n%s\n%s", first.Body, got.Body)
	}
	a.do("GET", "/v1/transfers/nope", "").wantError(t, 404, "transfer_not_found", "id")

	if b := a.balances("a"); b != (ledger.Balances{DebitsPosted: 1250}) {
		t.Fatalf("a balances %+v", b)
	}
	if b := a.balances("b"); b != (ledger.Balances{CreditsPosted: 1250}) {
		t.Fatalf("b balances %+v", b)
	}

	a.do("POST", "/v1/transfers", transferBody("t2", "x", "b", 1)).wantError(t, 404, "account_not_found", "debit_account_id")
	a.do("POST", "/v1/transfers", transferBody("t2", "a", "x", 1)).wantError(t, 404, "account_not_found", "credit_account_id")
	a.do("POST", "/v1/transfers", transferBody("t2", "a", "e", 1)).wantError(t, 422, "currency_mismatch", "currency")
	a.do("POST", "/v1/transfers", transferBody("t2", "a", "a", 1)).wantError(t, 422, "same_account", "credit_account_id")
	a.do("GET", "/v1/transfers/t2", "").wantError(t, 404, "transfer_not_found", "id")
}

func TestPendingPostVoid(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})

	p := a.mustTransfer("p1", "a", "b", 100, "pending", true)
	if p.Status != "pending" || !p.Pending {
		t.Fatalf("pending %+v", p)
	}
	if b := a.balances("a"); b != (ledger.Balances{DebitsPending: 100}) {
		t.Fatalf("a balances %+v", b)
	}

	// Partial post: 60 posted, 40 released.
	post := a.do("POST", "/v1/transfers/p1/post", `{"id":"p1-post","amount":60}`).wantStatus(t, 201)
	var pr transfer
	post.decode(t, &pr)
	if pr.PendingID != "p1" || pr.Amount != 60 || pr.Status != "posted" || pr.DebitAccountID != "a" || pr.CreditAccountID != "b" {
		t.Fatalf("post record %+v", pr)
	}
	if b := a.balances("a"); b != (ledger.Balances{DebitsPosted: 60}) {
		t.Fatalf("a balances after post %+v", b)
	}
	if b := a.balances("b"); b != (ledger.Balances{CreditsPosted: 60}) {
		t.Fatalf("b balances after post %+v", b)
	}
	var closed transfer
	a.do("GET", "/v1/transfers/p1", "").wantStatus(t, 200).decode(t, &closed)
	if closed.Status != "posted" {
		t.Fatalf("pending after post %+v", closed)
	}
	// Replay of the post is idempotent; a second post is refused.
	replay := a.do("POST", "/v1/transfers/p1/post", `{"id":"p1-post","amount":60}`).wantStatus(t, 200)
	if !bytes.Equal(replay.Body, post.Body) {
		t.Fatalf("post replay differs:\n%s\n%s", post.Body, replay.Body)
	}
	a.do("POST", "/v1/transfers/p1/post", `{"id":"p1-post2"}`).wantError(t, 422, "pending_already_closed", "pending_id")
	a.do("POST", "/v1/transfers/p1/void", `{"id":"p1-void"}`).wantError(t, 422, "pending_already_closed", "pending_id")

	// Void releases everything.
	a.mustTransfer("p2", "a", "b", 30, "pending", true)
	var vr transfer
	a.do("POST", "/v1/transfers/p2/void", `{"id":"p2-void"}`).wantStatus(t, 201).decode(t, &vr)
	if vr.Status != "voided" || vr.PendingID != "p2" || vr.Amount != 30 {
		t.Fatalf("void record %+v", vr)
	}
	if b := a.balances("a"); b != (ledger.Balances{DebitsPosted: 60}) {
		t.Fatalf("a balances after void %+v", b)
	}
	a.do("POST", "/v1/transfers/p2/void", `{"id":"p2-void2"}`).wantError(t, 422, "pending_already_closed", "pending_id")
	a.do("POST", "/v1/transfers/p2/post", `{"id":"p2-post"}`).wantError(t, 422, "pending_already_closed", "pending_id")

	// Posting more than pending; posting the whole amount by default.
	a.mustTransfer("p3", "a", "b", 50, "pending", true)
	a.do("POST", "/v1/transfers/p3/post", `{"id":"p3-post","amount":51}`).wantError(t, 422, "amount_exceeds_pending", "amount")
	var full transfer
	a.do("POST", "/v1/transfers/p3/post", `{"id":"p3-post"}`).wantStatus(t, 201).decode(t, &full)
	if full.Amount != 50 {
		t.Fatalf("full post %+v", full)
	}

	// Closing what is not pending.
	a.mustTransfer("t1", "a", "b", 5)
	a.do("POST", "/v1/transfers/t1/post", `{"id":"t1-post"}`).wantError(t, 404, "pending_not_found", "pending_id")
	a.do("POST", "/v1/transfers/nope/void", `{"id":"nope-void"}`).wantError(t, 404, "pending_not_found", "pending_id")
	if b := a.balances("a"); b != (ledger.Balances{DebitsPosted: 115}) {
		t.Fatalf("a balances at the end %+v", b)
	}
}

func TestBalanceRulesCountPending(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("ext", "USD", ledger.Flags{})
	a.mustAccount("wallet", "USD", ledger.Flags{DebitsMustNotExceedCredits: true})
	a.mustAccount("limit", "USD", ledger.Flags{CreditsMustNotExceedDebits: true})

	// wallet: credits 100, a hold of 60; only 40 is left.
	a.mustTransfer("fund", "ext", "wallet", 100)
	a.mustTransfer("hold", "wallet", "ext", 60, "pending", true)
	a.do("POST", "/v1/transfers", transferBody("spend1", "wallet", "ext", 41)).wantError(t, 422, "exceeds_credits", "amount")
	a.do("POST", "/v1/transfers", transferBody("hold2", "wallet", "ext", 41, "pending", true)).wantError(t, 422, "exceeds_credits", "amount")
	a.mustTransfer("spend1", "wallet", "ext", 40)
	a.do("POST", "/v1/transfers", transferBody("spend2", "wallet", "ext", 1)).wantError(t, 422, "exceeds_credits", "amount")
	a.do("POST", "/v1/transfers/hold/void", `{"id":"hold-void"}`).wantStatus(t, 201)
	a.mustTransfer("spend2", "wallet", "ext", 60)
	if b := a.balances("wallet"); b != (ledger.Balances{DebitsPosted: 100, CreditsPosted: 100}) {
		t.Fatalf("wallet %+v", b)
	}

	// limit: debits 100, a pending credit of 70; only 30 more may be credited.
	a.do("POST", "/v1/transfers", transferBody("l0", "ext", "limit", 1)).wantError(t, 422, "exceeds_debits", "amount")
	a.mustTransfer("l1", "limit", "ext", 100)
	a.mustTransfer("l2", "ext", "limit", 70, "pending", true)
	a.do("POST", "/v1/transfers", transferBody("l3", "ext", "limit", 31)).wantError(t, 422, "exceeds_debits", "amount")
	a.mustTransfer("l3", "ext", "limit", 30)
	if b := a.balances("limit"); b != (ledger.Balances{DebitsPosted: 100, CreditsPending: 70, CreditsPosted: 30}) {
		t.Fatalf("limit %+v", b)
	}
}

func TestPendingExpires(t *testing.T) {
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := storetest.NewClock()
	a := newTestAPIOn(t, st, ledger.Config{Now: clock.Now})
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	p := a.mustTransfer("p", "a", "b", 100, "pending", true, "timeout_seconds", 10)
	if p.TimeoutSeconds != 10 || p.ExpiresAt == "" {
		t.Fatalf("pending %+v", p)
	}
	clock.Advance(11 * time.Second)
	var got transfer
	a.do("GET", "/v1/transfers/p", "").wantStatus(t, 200).decode(t, &got)
	if got.Status != "expired" {
		t.Fatalf("status %q before the sweep, want expired", got.Status)
	}
	a.do("POST", "/v1/transfers/p/post", `{"id":"late"}`).wantError(t, 422, "pending_already_closed", "pending_id")
	if n, err := a.eng.ExpireDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v", n, err)
	}
	if b := a.balances("a"); b != (ledger.Balances{}) {
		t.Fatalf("a balances after expiry %+v", b)
	}
	var exp transfer
	a.do("GET", "/v1/transfers/"+url.PathEscape(ledger.ExpiryID("p")), "").wantStatus(t, 200).decode(t, &exp)
	if exp.Status != "expired" || exp.PendingID != "p" || exp.Amount != 100 {
		t.Fatalf("expiry record %+v", exp)
	}
}

// batchResult is a batch response.
type batchResult struct {
	Data []struct {
		Status   int          `json:"status"`
		Transfer *transfer    `json:"transfer"`
		Error    *errorObject `json:"error"`
	} `json:"data"`
}

func TestAtomicBatch(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	a.mustAccount("c", "USD", ledger.Flags{DebitsMustNotExceedCredits: true})
	a.mustTransfer("seed", "a", "c", 10)

	// A multi-leg batch that creates a pending transfer and posts it, plus a plain leg.
	ok := `{"atomic":true,"transfers":[
		{"id":"m1","debit_account_id":"a","credit_account_id":"b","amount":100,"currency":"USD","pending":true},
		{"action":"post","id":"m1-post","pending_id":"m1","amount":70},
		{"id":"m2","debit_account_id":"c","credit_account_id":"b","amount":10,"currency":"USD"}]}`
	first := a.do("POST", "/v1/transfer_batches", ok).wantStatus(t, 201)
	var res batchResult
	first.decode(t, &res)
	if len(res.Data) != 3 {
		t.Fatalf("batch result %s", first.Body)
	}
	for i, d := range res.Data {
		if d.Status != 201 || d.Transfer == nil || d.Error != nil {
			t.Fatalf("item %d: %s", i, first.Body)
		}
	}
	if res.Data[1].Transfer.PendingID != "m1" || res.Data[1].Transfer.Amount != 70 {
		t.Fatalf("post leg %+v", res.Data[1].Transfer)
	}
	if b := a.balances("b"); b != (ledger.Balances{CreditsPosted: 80}) {
		t.Fatalf("b %+v", b)
	}
	var replay batchResult
	a.do("POST", "/v1/transfer_batches", ok).wantStatus(t, 200).decode(t, &replay)
	for i, d := range replay.Data {
		if d.Status != 200 || d.Transfer == nil || d.Transfer.ID != res.Data[i].Transfer.ID {
			t.Fatalf("replay item %d: %+v", i, d)
		}
	}

	// Each batch fails at index k; nothing of it may remain.
	before := a.snapshot("a", "b", "c")
	leg := func(id, dr, cr string, amount int64) string { return transferBody(id, dr, cr, amount) }
	cases := []struct {
		name  string
		items []string
		k     int
		code  string
	}{
		{"exceeds credits at 2", []string{leg("f1", "a", "b", 1), leg("f2", "b", "c", 5), leg("f3", "c", "a", 16)}, 2, "exceeds_credits"},
		{"unknown account at 1", []string{leg("f1", "a", "b", 1), leg("f2", "a", "nope", 1)}, 1, "account_not_found"},
		{"same account at 0", []string{leg("f1", "a", "a", 1), leg("f2", "a", "b", 1)}, 0, "same_account"},
		{"duplicate id at 1", []string{leg("f1", "a", "b", 1), leg("f1", "a", "b", 2)}, 1, "id_conflict"},
		{"id of an earlier transfer at 1", []string{leg("f1", "a", "b", 1), leg("seed", "a", "b", 2)}, 1, "id_conflict"},
		{"post of a pending of the batch, twice, at 3", []string{
			transferBody("f1", "a", "b", 5, "pending", true),
			`{"action":"post","id":"f2","pending_id":"f1"}`,
			leg("f3", "a", "b", 1),
			`{"action":"void","id":"f4","pending_id":"f1"}`,
		}, 3, "pending_already_closed"},
		{"invalid currency at 1", []string{leg("f1", "a", "b", 1), `{"id":"f2","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"usd"}`}, 1, "invalid_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := `{"atomic":true,"transfers":[` + strings.Join(c.items, ",") + `]}`
			e := a.do("POST", "/v1/transfer_batches", body).wantError(t, 422, c.code, fmt.Sprint(c.k))
			if !strings.Contains(e.Message, fmt.Sprint(c.k)) || e.Type != "unprocessable_error" {
				t.Fatalf("error %+v", e)
			}
			for _, id := range []string{"f1", "f2", "f3", "f4"} {
				a.do("GET", "/v1/transfers/"+id, "").wantError(t, 404, "transfer_not_found", "id")
			}
			if after := a.snapshot("a", "b", "c"); !after.equal(before) {
				t.Fatalf("state changed:\n%+v\n%+v", before, after)
			}
		})
	}
}

func TestNonAtomicBatch(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	a.mustAccount("w", "USD", ledger.Flags{DebitsMustNotExceedCredits: true})
	a.mustAccount("e", "EUR", ledger.Flags{})
	first := a.mustTransfer("old", "a", "b", 7)

	body := `{"atomic":false,"transfers":[` + strings.Join([]string{
		transferBody("n0", "a", "b", 10),
		transferBody("n1", "a", "nope", 10),
		transferBody("n2", "w", "b", 10),
		transferBody("old", "a", "b", 7),
		transferBody("old", "a", "b", 8),
		transferBody("n5", "a", "e", 1),
		`{"action":"void","id":"n6","pending_id":"nope"}`,
		transferBody("n7", "b", "a", 3),
		`{"id":"n8","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"XX"}`,
	}, ",") + `]}`
	r := a.do("POST", "/v1/transfer_batches", body).wantStatus(t, 200)
	var res batchResult
	r.decode(t, &res)
	want := []struct {
		status int
		code   string
		param  string
	}{
		{201, "", ""},
		{404, "account_not_found", "credit_account_id"},
		{422, "exceeds_credits", "amount"},
		{200, "", ""},
		{409, "id_conflict", "id"},
		{422, "currency_mismatch", "currency"},
		{404, "pending_not_found", "pending_id"},
		{201, "", ""},
		{400, "invalid_request", "currency"},
	}
	if len(res.Data) != len(want) {
		t.Fatalf("results %s", r.Body)
	}
	for i, w := range want {
		d := res.Data[i]
		if d.Status != w.status {
			t.Fatalf("item %d status %d, want %d: %s", i, d.Status, w.status, r.Body)
		}
		if w.code == "" {
			if d.Transfer == nil || d.Error != nil {
				t.Fatalf("item %d: want a transfer: %s", i, r.Body)
			}
			continue
		}
		if d.Transfer != nil || d.Error == nil || d.Error.Code != w.code || d.Error.Param != w.param || d.Error.Message == "" || d.Error.Type == "" {
			t.Fatalf("item %d: want %s/%s: %s", i, w.code, w.param, r.Body)
		}
	}
	if res.Data[3].Transfer.Timestamp != first.Timestamp {
		t.Fatalf("replay in a batch returned a different transfer")
	}
	if b := a.balances("a"); b != (ledger.Balances{DebitsPosted: 17, CreditsPosted: 3}) {
		t.Fatalf("a %+v", b)
	}
}

func TestAccountTransfersPaging(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	a.mustAccount("c", "USD", ledger.Flags{})
	want := map[string]bool{}
	for i := range 23 {
		id := fmt.Sprintf("t%02d", i)
		switch i % 3 {
		case 0:
			a.mustTransfer(id, "a", "b", 1)
			want[id] = true
		case 1:
			a.mustTransfer(id, "c", "a", 1)
			want[id] = true
		default:
			a.mustTransfer(id, "b", "c", 1) // not a's
		}
	}
	// A batch puts several records in one group commit.
	var items []string
	for i := range 5 {
		id := fmt.Sprintf("batch%d", i)
		items = append(items, transferBody(id, "a", "b", 1))
		want[id] = true
	}
	a.do("POST", "/v1/transfer_batches", `{"atomic":true,"transfers":[`+strings.Join(items, ",")+`]}`).wantStatus(t, 201)

	for _, limit := range []int{1, 4, 7, 20, 1000} {
		got := a.history("a", limit)
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d records, want %d", limit, len(got), len(want))
		}
		seen := map[string]bool{}
		for i, tr := range got {
			if !want[tr.ID] || seen[tr.ID] {
				t.Fatalf("limit %d: unexpected or repeated %s", limit, tr.ID)
			}
			seen[tr.ID] = true
			if i > 0 && tr.Timestamp >= got[i-1].Timestamp {
				t.Fatalf("limit %d: not newest first at %d: %s after %s", limit, i, tr.Timestamp, got[i-1].Timestamp)
			}
		}
	}

	var page struct {
		Data    []transfer `json:"data"`
		HasMore bool       `json:"has_more"`
	}
	a.do("GET", "/v1/accounts/a/transfers", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 10 || !page.HasMore || page.Data[0].ID != "batch4" {
		t.Fatalf("default page: %d records, has_more %v, first %s", len(page.Data), page.HasMore, page.Data[0].ID)
	}
	empty := a.do("GET", "/v1/accounts/a/transfers?starting_after="+a.history("a", 1000)[len(want)-1].ID, "").wantStatus(t, 200)
	if !bytes.Equal(bytes.TrimSpace(empty.Body), []byte(`{"data":[],"has_more":false}`)) {
		t.Fatalf("last page %s", empty.Body)
	}

	for _, q := range []string{"limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=1.5", "limit=+5", "limit=1&limit=2"} {
		a.do("GET", "/v1/accounts/a/transfers?"+q, "").wantError(t, 400, "invalid_request", "limit")
	}
	a.do("GET", "/v1/accounts/a/transfers?starting_after=nope", "").wantError(t, 400, "invalid_request", "starting_after")
	a.do("GET", "/v1/accounts/a/transfers?starting_after=t02", "").wantError(t, 400, "invalid_request", "starting_after")
	a.do("GET", "/v1/accounts/a/transfers?cursor=x", "").wantError(t, 400, "invalid_request", "cursor")
	a.do("GET", "/v1/accounts/nope/transfers", "").wantError(t, 404, "account_not_found", "id")
}

func TestBalancesAt(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})

	type point struct {
		at   string
		want ledger.Balances
	}
	var points []point
	var bal ledger.Balances
	step := func(tr transfer, apply func(*ledger.Balances)) {
		apply(&bal)
		points = append(points, point{tr.Timestamp, bal})
	}
	step(a.mustTransfer("t1", "a", "b", 100), func(b *ledger.Balances) { b.DebitsPosted += 100 })
	step(a.mustTransfer("t2", "b", "a", 30), func(b *ledger.Balances) { b.CreditsPosted += 30 })
	step(a.mustTransfer("p", "a", "b", 50, "pending", true), func(b *ledger.Balances) { b.DebitsPending += 50 })
	var post transfer
	a.do("POST", "/v1/transfers/p/post", `{"id":"p-post","amount":20}`).wantStatus(t, 201).decode(t, &post)
	step(post, func(b *ledger.Balances) { b.DebitsPending -= 50; b.DebitsPosted += 20 })

	get := func(at string) (string, ledger.Balances) {
		t.Helper()
		var res struct {
			AccountID string          `json:"account_id"`
			At        string          `json:"at"`
			Balances  ledger.Balances `json:"balances"`
		}
		path := "/v1/accounts/a/balances"
		if at != "" {
			path += "?at=" + url.QueryEscape(at)
		}
		a.do("GET", path, "").wantStatus(t, 200).decode(t, &res)
		if res.AccountID != "a" {
			t.Fatalf("account_id %q", res.AccountID)
		}
		return res.At, res.Balances
	}
	first, _ := time.Parse(time.RFC3339Nano, points[0].at)
	if _, b := get(first.Add(-time.Nanosecond).Format(time.RFC3339Nano)); b != (ledger.Balances{}) {
		t.Fatalf("before the first transfer: %+v", b)
	}
	if _, b := get("2000-01-01T00:00:00Z"); b != (ledger.Balances{}) {
		t.Fatalf("in 2000: %+v", b)
	}
	for i, p := range points {
		at, b := get(p.at)
		if b != p.want || at != p.at {
			t.Fatalf("at point %d (%s): %s %+v, want %+v", i, p.at, at, b, p.want)
		}
		ts, _ := time.Parse(time.RFC3339Nano, p.at)
		// The same instant in another zone, and just before the next record.
		if _, b := get(ts.In(time.FixedZone("", 8*3600)).Format(time.RFC3339Nano)); b != p.want {
			t.Fatalf("at point %d in +08:00: %+v", i, b)
		}
		if i+1 < len(points) {
			next, _ := time.Parse(time.RFC3339Nano, points[i+1].at)
			if _, b := get(next.Add(-time.Nanosecond).Format(time.RFC3339Nano)); b != p.want {
				t.Fatalf("just before point %d: %+v", i+1, b)
			}
		}
	}
	if _, b := get(""); b != bal {
		t.Fatalf("now: %+v, want %+v", b, bal)
	}
	if _, b := get("2200-01-01T00:00:00Z"); b != bal {
		t.Fatalf("in 2200: %+v, want %+v", b, bal)
	}
	for _, at := range []string{"yesterday", "2026-01-02", "2026-01-02T03:04:05", "2026-01-02 03:04:05Z", "9999-01-01T00:00:00Z"} {
		a.do("GET", "/v1/accounts/a/balances?at="+url.QueryEscape(at), "").wantError(t, 400, "invalid_request", "at")
	}
	a.do("GET", "/v1/accounts/nope/balances", "").wantError(t, 404, "account_not_found", "id")
	a.do("GET", "/v1/accounts/nope/balances?at=2026-01-02T03:04:05Z", "").wantError(t, 404, "account_not_found", "id")
}

func TestBatchLimit(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	batch := func(n int, prefix string) string {
		var sb strings.Builder
		sb.WriteString(`{"atomic":true,"transfers":[`)
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"id":"%s%d","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD"}`, prefix, i)
		}
		sb.WriteString(`]}`)
		return sb.String()
	}
	before := a.snapshot("a", "b")
	a.do("POST", "/v1/transfer_batches", batch(ledger.BatchMax+1, "x")).wantError(t, 400, "batch_too_large", "transfers")
	if after := a.snapshot("a", "b"); !after.equal(before) {
		t.Fatal("a rejected batch changed state")
	}
	var res batchResult
	a.do("POST", "/v1/transfer_batches", batch(ledger.BatchMax, "y")).wantStatus(t, 201).decode(t, &res)
	if len(res.Data) != ledger.BatchMax {
		t.Fatalf("%d results", len(res.Data))
	}
	if b := a.balances("b"); b.CreditsPosted != ledger.BatchMax {
		t.Fatalf("b %+v", b)
	}
}
