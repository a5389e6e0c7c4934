package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/store/postgres/pgtest"
	"github.com/fincore/fincore/store/storetest"
)

var bg = context.Background()

func openDB(t testing.TB, url string) *DB {
	t.Helper()
	db, err := Open(bg, url)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func migratedStore(t testing.TB) (*DB, *LedgerStore) {
	t.Helper()
	db := openDB(t, pgtest.URL(t))
	if err := db.Migrate(bg); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ls, err := db.Ledger()
	if err != nil {
		t.Fatalf("ledger: %v", err)
	}
	return db, ls
}

// commitPaths runs f once with small commits sent in one pipeline (the default) and once with
// every commit sent by COPY.
func commitPaths(t *testing.T, f func(t *testing.T)) {
	for _, c := range []struct {
		name string
		max  int
	}{{"pipeline", smallCommitMax}, {"copy", 0}} {
		t.Run(c.name, func(t *testing.T) {
			defer func(old int) { smallCommitMax = old }(smallCommitMax)
			smallCommitMax = c.max
			f(t)
		})
	}
}

func TestMigrateIdempotent(t *testing.T) {
	db := openDB(t, pgtest.URL(t))
	if v, err := db.SchemaVersion(bg); err != nil || v != 0 {
		t.Fatalf("fresh schema version %d %v", v, err)
	}
	if _, err := db.Ledger(); err == nil {
		t.Fatal("Ledger on an unmigrated database succeeded")
	}
	for i := range 3 {
		if err := db.Migrate(bg); err != nil {
			t.Fatalf("migrate #%d: %v", i+1, err)
		}
	}
	ms, _ := Migrations()
	var n int
	if err := db.pool.QueryRow(bg, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
		t.Fatalf("schema_migrations rows %d (want %d): %v", n, len(ms), err)
	}
	if err := db.pool.QueryRow(bg, `SELECT count(*) FROM ledger_writer`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ledger_writer rows %d: %v", n, err)
	}
	if v, err := db.SchemaVersion(bg); err != nil || v != ms[len(ms)-1].Version {
		t.Fatalf("schema version %d %v", v, err)
	}
}

// Several processes migrating the same empty database at once: exactly one applies each
// migration, none fails.
func TestMigrateConcurrent(t *testing.T) {
	url := pgtest.URL(t)
	const n = 4
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = openDB(t, url)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range dbs {
		wg.Go(func() { errs[i] = dbs[i].Migrate(bg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrate %d: %v", i, err)
		}
	}
	var rows, writers int
	if err := dbs[0].pool.QueryRow(bg, `SELECT (SELECT count(*) FROM schema_migrations), (SELECT count(*) FROM ledger_writer)`).Scan(&rows, &writers); err != nil {
		t.Fatal(err)
	}
	if ms, _ := Migrations(); rows != len(ms) || writers != 1 {
		t.Fatalf("schema_migrations %d rows, ledger_writer %d rows", rows, writers)
	}
}

// The schema in the URL's search_path is the one used: two URLs, two independent ledgers.
func TestSearchPathIsolation(t *testing.T) {
	commitPaths(t, func(t *testing.T) {
		_, a := migratedStore(t)
		_, b := migratedStore(t)
		ta, err := a.AcquireWriter(bg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Commit(bg, ta, &ledger.Batch{NewAccounts: []*ledger.Account{{ID: "x", Currency: "CNY", Timestamp: 5, ReqHash: []byte{1}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.GetAccount(bg, "x"); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("account leaked across schemas: %v", err)
		}
		if tb, err := b.AcquireWriter(bg, 0); err != nil || tb != 1 {
			t.Fatalf("second schema token %d %v", tb, err)
		}
	})
}

func TestFencing(t *testing.T) {
	commitPaths(t, func(t *testing.T) {
		_, s := migratedStore(t)
		old, err := s.AcquireWriter(bg, 0)
		if err != nil {
			t.Fatal(err)
		}
		acct := &ledger.Account{ID: "a", Currency: "CNY", Timestamp: 10, ReqHash: []byte{1}}
		if err := s.Commit(bg, old, &ledger.Batch{NewAccounts: []*ledger.Account{acct}}); err != nil {
			t.Fatalf("commit with current token: %v", err)
		}
		cur, err := s.AcquireWriter(bg, 0)
		if err != nil || cur <= old {
			t.Fatalf("new token %d after %d: %v", cur, old, err)
		}
		b := &ledger.Batch{NewAccounts: []*ledger.Account{{ID: "b", Currency: "CNY", Timestamp: 20, ReqHash: []byte{2}}}}
		if err := s.Commit(bg, old, b); !errors.Is(err, ledger.ErrFenced) {
			t.Fatalf("commit with stale token = %v, want ErrFenced", err)
		}
		if _, err := s.GetAccount(bg, "b"); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("fenced commit wrote: %v", err)
		}
		if h, err := s.Head(bg); err != nil || h.Timestamp != 10 {
			t.Fatalf("head after fenced commit %+v %v", h, err)
		}
		if err := s.Commit(bg, cur, b); err != nil {
			t.Fatalf("commit with new token: %v", err)
		}
		if h, err := s.Head(bg); err != nil || h.Timestamp != 20 || !slices.Equal(h.Hash, ledger.GenesisHash) {
			t.Fatalf("head %+v %v", h, err)
		}
	})
}

// A failing statement inside Commit leaves nothing behind: a duplicate journal record aborts
// the whole transaction, new accounts and closed pendings included.
func TestCommitAtomic(t *testing.T) {
	commitPaths(t, func(t *testing.T) {
		_, s := migratedStore(t)
		tok, _ := s.AcquireWriter(bg, 0)
		a := &ledger.Account{ID: "a", Currency: "CNY", Timestamp: 1, ReqHash: []byte{1}}
		p := &ledger.Transfer{ID: "p", DebitAccountID: "a", CreditAccountID: "a", Amount: 1, Currency: "CNY", Pending: true,
			Status: ledger.StatusPending, Timestamp: 2, PendingDelta: 1, ReqHash: []byte{3}, Hash: []byte{4}}
		if err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: []*ledger.Account{a}, Transfers: []*ledger.Transfer{p}}); err != nil {
			t.Fatal(err)
		}
		b := &ledger.Account{ID: "b", Currency: "CNY", Timestamp: 3, ReqHash: []byte{1}}
		tr := &ledger.Transfer{ID: "t", DebitAccountID: "a", CreditAccountID: "b", Amount: 1, Currency: "CNY",
			Status: ledger.StatusPosted, Timestamp: 4, ReqHash: []byte{3}, Hash: []byte{4}}
		dup := *tr
		dup.Timestamp = 5
		err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: []*ledger.Account{b}, Transfers: []*ledger.Transfer{tr, &dup},
			Closed: []ledger.Closed{{ID: "p", Status: ledger.StatusVoided}}})
		if err == nil {
			t.Fatal("commit with a duplicate record id succeeded")
		}
		if _, err := s.GetAccount(bg, "b"); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("half-applied commit: account: %v", err)
		}
		if _, err := s.GetTransfer(bg, "t"); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("half-applied commit: record: %v", err)
		}
		if got, err := s.GetTransfer(bg, "p"); err != nil || got.Status != ledger.StatusPending {
			t.Fatalf("half-applied commit: pending %+v %v", got, err)
		}
		if h, err := s.Head(bg); err != nil || h.Timestamp != 2 {
			t.Fatalf("head after failed commit %+v %v", h, err)
		}
		// The store is still usable.
		if err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: []*ledger.Account{b}, Transfers: []*ledger.Transfer{tr}}); err != nil {
			t.Fatal(err)
		}
	})
}

// An account's balances are the snapshot of its latest record, on whichever side it was.
func TestAccountBalancesFromJournal(t *testing.T) {
	commitPaths(t, func(t *testing.T) {
		_, s := migratedStore(t)
		tok, _ := s.AcquireWriter(bg, 0)
		accts := []*ledger.Account{
			{ID: "a", Currency: "CNY", Timestamp: 1, ReqHash: []byte{1}},
			{ID: "b", Currency: "CNY", Timestamp: 2, ReqHash: []byte{1}},
			{ID: "c", Currency: "CNY", Timestamp: 3, ReqHash: []byte{1}},
		}
		rec := func(id string, ts ledger.Timestamp, dr, cr string, d, c ledger.Balances) *ledger.Transfer {
			return &ledger.Transfer{ID: id, DebitAccountID: dr, CreditAccountID: cr, Amount: 1, Currency: "CNY",
				Status: ledger.StatusPosted, Timestamp: ts, DebitBalances: d, CreditBalances: c, ReqHash: []byte{1}, Hash: []byte{2}}
		}
		trs := []*ledger.Transfer{
			rec("t1", 10, "a", "b", ledger.Balances{DebitsPosted: 1}, ledger.Balances{CreditsPosted: 1}),
			rec("t2", 11, "b", "a", ledger.Balances{DebitsPosted: 2, CreditsPosted: 1}, ledger.Balances{DebitsPosted: 1, CreditsPosted: 2}),
			rec("t3", 12, "a", "b", ledger.Balances{DebitsPosted: 4, CreditsPosted: 2}, ledger.Balances{DebitsPosted: 2, CreditsPosted: 4}),
		}
		if err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: accts, Transfers: trs}); err != nil {
			t.Fatal(err)
		}
		want := map[string]ledger.Balances{
			"a": {DebitsPosted: 4, CreditsPosted: 2},
			"b": {DebitsPosted: 2, CreditsPosted: 4},
			"c": {},
		}
		for id, w := range want {
			a, err := s.GetAccount(bg, id)
			if err != nil || a.Balances != w {
				t.Errorf("GetAccount(%s) balances %+v, want %+v (%v)", id, a, w, err)
			}
		}
		loaded, err := s.LoadAccounts(bg, []string{"a", "b", "c", "zz"})
		if err != nil || len(loaded) != 3 {
			t.Fatalf("LoadAccounts %v %v", loaded, err)
		}
		scanned, err := s.ScanAccounts(bg, "", 10)
		if err != nil || len(scanned) != 3 {
			t.Fatalf("ScanAccounts %v %v", scanned, err)
		}
		for _, a := range append(loaded, scanned...) {
			if a.Balances != want[a.ID] {
				t.Errorf("account %s balances %+v, want %+v", a.ID, a.Balances, want[a.ID])
			}
		}
	})
}

// Accounts page in bytewise id order, as in SQLite, whatever the database's collation.
func TestScanAccountsOrder(t *testing.T) {
	commitPaths(t, func(t *testing.T) {
		_, s := migratedStore(t)
		tok, _ := s.AcquireWriter(bg, 0)
		ids := []string{"b", "B", "a", "A", "_x", "-y", "a.b", "a:b", "Z9", "z-1", "10", "9"}
		var accts []*ledger.Account
		for i, id := range ids {
			accts = append(accts, &ledger.Account{ID: id, Currency: "CNY", Timestamp: ledger.Timestamp(i + 1), ReqHash: []byte{1}})
		}
		if err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: accts}); err != nil {
			t.Fatal(err)
		}
		var got []string
		after := ""
		for {
			page, err := s.ScanAccounts(bg, after, 5)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				got = append(got, a.ID)
				after = a.ID
			}
			if len(page) < 5 {
				break
			}
		}
		want := slices.Clone(ids)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("scan order %v, want %v", got, want)
		}
	})
}

// Everything a store writes reads back unchanged, metadata and hashes included.
func TestRoundTrip(t *testing.T) {
	commitPaths(t, func(t *testing.T) {
		_, s := migratedStore(t)
		tok, _ := s.AcquireWriter(bg, 0)
		a := &ledger.Account{ID: "acc_1", Currency: "USD", Code: "cash", Flags: ledger.Flags{DebitsMustNotExceedCredits: true},
			Metadata: map[string]string{"k": "v \u0000 é", "z": ""}, Timestamp: 100, ReqHash: []byte{9, 8, 7}}
		b := &ledger.Account{ID: "acc_2", Currency: "USD", Timestamp: 101, ReqHash: []byte{1}}
		tr := &ledger.Transfer{ID: "tr_1", DebitAccountID: "acc_1", CreditAccountID: "acc_2", Amount: 1<<53 - 1,
			Currency: "USD", Code: "c", Pending: true, TimeoutSeconds: 30, ExpiresAt: 130, Status: ledger.StatusPending,
			Timestamp: 102, Metadata: map[string]string{"order": "o-1"}, PendingDelta: 1<<53 - 1,
			DebitBalances:  ledger.Balances{DebitsPending: 1<<53 - 1, DebitsPosted: 2, CreditsPending: 3, CreditsPosted: 1 << 62},
			CreditBalances: ledger.Balances{CreditsPending: 1<<53 - 1},
			ReqHash:        []byte{1, 2}, Hash: []byte{3, 4}}
		if err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: []*ledger.Account{a, b}, Transfers: []*ledger.Transfer{tr}}); err != nil {
			t.Fatal(err)
		}
		a.Balances = tr.DebitBalances
		gotA, err := s.GetAccount(bg, "acc_1")
		if err != nil || fmt.Sprintf("%+v", *gotA) != fmt.Sprintf("%+v", *a) {
			t.Fatalf("account\n got %+v\nwant %+v (%v)", gotA, a, err)
		}
		gotT, err := s.GetTransfer(bg, "tr_1")
		if err != nil || fmt.Sprintf("%+v", *gotT) != fmt.Sprintf("%+v", *tr) {
			t.Fatalf("transfer\n got %+v\nwant %+v (%v)", gotT, tr, err)
		}
		if ids, err := s.DuePending(bg, 129, 10); err != nil || len(ids) != 0 {
			t.Fatalf("due early %v %v", ids, err)
		}
		if ids, err := s.DuePending(bg, 130, 10); err != nil || !slices.Equal(ids, []string{"tr_1"}) {
			t.Fatalf("due %v %v", ids, err)
		}
		// Closing the pending updates its status once; a second close of the same id is a no-op.
		if err := s.Commit(bg, tok, &ledger.Batch{Closed: []ledger.Closed{{ID: "tr_1", Status: ledger.StatusVoided}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(bg, tok, &ledger.Batch{Closed: []ledger.Closed{{ID: "tr_1", Status: ledger.StatusPosted}}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetTransfer(bg, "tr_1"); got.Status != ledger.StatusVoided {
			t.Fatalf("status %s", got.Status)
		}
		if ids, _ := s.DuePending(bg, 1000, 10); len(ids) != 0 {
			t.Fatalf("closed transfer still due: %v", ids)
		}
		if _, err := s.GetTransfer(bg, "nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("missing transfer: %v", err)
		}
		if _, err := s.LastTransferAt(bg, "acc_1", 101); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("last transfer before any: %v", err)
		}
		if got, err := s.LastTransferAt(bg, "acc_2", 102); err != nil || got.ID != "tr_1" {
			t.Fatalf("last transfer %+v %v", got, err)
		}
		if got, err := s.LoadAccounts(bg, []string{"acc_2", "nope", "acc_1"}); err != nil || len(got) != 2 {
			t.Fatalf("load accounts %v %v", got, err)
		}
		if got, err := s.LoadTransfers(bg, []string{"tr_1", "nope"}); err != nil || len(got) != 1 {
			t.Fatalf("load transfers %v %v", got, err)
		}
	})
}

func TestOpenRejectsAsyncCommit(t *testing.T) {
	url := pgtest.URL(t)
	if _, err := Open(bg, url+"&synchronous_commit=off"); err == nil || !strings.Contains(err.Error(), "synchronous_commit") {
		t.Fatalf("open with synchronous_commit=off: %v", err)
	}
	db := openDB(t, url)
	var v string
	if err := db.pool.QueryRow(bg, `SHOW synchronous_commit`).Scan(&v); err != nil || v == "off" {
		t.Fatalf("synchronous_commit %q %v", v, err)
	}
	// A default of off (here through the startup options, as a role or database setting
	// would) is turned back on for every connection.
	db = openDB(t, url+"&options=-c%20synchronous_commit%3Doff")
	if err := db.pool.QueryRow(bg, `SHOW synchronous_commit`).Scan(&v); err != nil || v != "on" {
		t.Fatalf("synchronous_commit with an off default: %q %v", v, err)
	}
}

// TestSmoke drives the adapter through the engine: accounts, transfers, two-phase, expiry,
// restart, history and verification.
func TestSmoke(t *testing.T) {
	open := Factory(t)
	clock := storetest.NewClock()
	st := open()
	e, err := ledger.Open(bg, st, ledger.Config{Now: clock.Now, ExpiryInterval: time.Hour, Logger: storetest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.CreateAccounts(bg, []ledger.AccountInput{
		{ID: "bank", Currency: "CNY"},
		{ID: "alice", Currency: "CNY", Flags: ledger.Flags{DebitsMustNotExceedCredits: true}},
		{ID: "bob", Currency: "CNY"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil || !r.Created {
			t.Fatalf("create account: %+v", r)
		}
	}
	x := func(id, dr, cr string, amt int64) ledger.TransferInput {
		return ledger.TransferInput{ID: id, DebitAccountID: dr, CreditAccountID: cr, Amount: amt, Currency: "CNY"}
	}
	must := func(in ledger.TransferInput) *ledger.Transfer {
		t.Helper()
		tr, _, err := e.CreateTransfer(bg, in)
		if err != nil {
			t.Fatalf("transfer %s: %v", in.ID, err)
		}
		return tr
	}
	must(x("fund", "bank", "alice", 1000))
	if _, _, err := e.CreateTransfer(bg, x("over", "alice", "bob", 1001)); err == nil {
		t.Fatal("overdraft accepted")
	}
	p1 := x("p1", "alice", "bob", 300)
	p1.Pending = true
	must(p1)
	p2 := x("p2", "alice", "bob", 200)
	p2.Pending = true
	must(p2)
	p3 := x("p3", "alice", "bob", 100)
	p3.Pending, p3.TimeoutSeconds = true, 60
	must(p3)
	must(ledger.TransferInput{Action: ledger.ActionPost, ID: "p1-post", PendingID: "p1", Amount: 250})
	must(ledger.TransferInput{Action: ledger.ActionVoid, ID: "p2-void", PendingID: "p2"})
	if _, _, err := e.CreateTransfer(bg, ledger.TransferInput{Action: ledger.ActionVoid, ID: "p2-void2", PendingID: "p2"}); err == nil {
		t.Fatal("second void accepted")
	}
	// Replays return the original.
	if tr, created, err := e.CreateTransfer(bg, x("fund", "bank", "alice", 1000)); err != nil || created || tr.Amount != 1000 {
		t.Fatalf("replay %+v %v %v", tr, created, err)
	}
	if a, _ := e.Account(bg, "alice"); a.Balances != (ledger.Balances{DebitsPending: 100, DebitsPosted: 250, CreditsPosted: 1000}) {
		t.Fatalf("alice %+v", a.Balances)
	}
	clock.Advance(2 * time.Minute)
	if n, err := e.ExpireDue(bg); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	e.Close()
	st.Close()

	// Restart on the same schema.
	st = open()
	e, err = ledger.Open(bg, st, ledger.Config{Now: clock.Now, ExpiryInterval: time.Hour, Logger: storetest.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close(); st.Close() }()
	must(x("after", "bob", "alice", 50))
	a, err := e.Account(bg, "alice")
	if err != nil || a.Balances != (ledger.Balances{DebitsPosted: 250, CreditsPosted: 1050}) {
		t.Fatalf("alice after restart %+v %v", a, err)
	}
	if got, _ := e.Transfer(bg, "p3"); got.Status != ledger.StatusExpired {
		t.Fatalf("p3 %s", got.Status)
	}
	page, more, err := e.AccountTransfers(bg, "alice", "", 3)
	if err != nil || !more || len(page) != 3 || page[0].ID != "after" || page[1].ID != ledger.ExpiryID("p3") || page[2].ID != "p2-void" {
		t.Fatalf("history page %v %v %v", ids(page), more, err)
	}
	page, more, err = e.AccountTransfers(bg, "alice", page[2].ID, 10)
	if err != nil || more || !slices.Equal(ids(page), []string{"p1-post", "p3", "p2", "p1", "fund"}) {
		t.Fatalf("history page 2 %v %v %v", ids(page), more, err)
	}
	fundTs := page[4].Timestamp
	if b, err := e.BalancesAt(bg, "alice", fundTs); err != nil || b != (ledger.Balances{CreditsPosted: 1000}) {
		t.Fatalf("balances at %+v %v", b, err)
	}
	if b, err := e.BalancesAt(bg, "alice", fundTs-1); err != nil || b != (ledger.Balances{}) {
		t.Fatalf("balances before %+v %v", b, err)
	}
	rep, err := ledger.Verify(bg, st)
	if err != nil || !rep.OK() || rep.Records != 8 || rep.Accounts != 3 {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

func ids(ts []*ledger.Transfer) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// TestPlanCacheMode: the pool's connections plan every execution, so a statement prepared
// while the journal was empty never keeps a sequential-scan plan as the journal grows.
func TestPlanCacheMode(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.Pool().QueryRow(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode = %q, want force_custom_plan", mode)
	}
}
