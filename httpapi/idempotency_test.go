package httpapi

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/idem"
	"github.com/fincore/fincore/store/sqlite"
)

// TestIdempotencyBehindAuth checks that keys are checked after authentication and scoped to
// the authenticated key: a request without a valid key never gets another caller's stored
// response, and two callers' uses of one key are separate. (store/storetest/apitest holds the
// idempotency behaviours themselves, on every backend.)
func TestIdempotencyBehindAuth(t *testing.T) {
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	eng, err := ledger.Open(context.Background(), st, ledger.Config{Logger: log, ExpiryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	api := NewServer(eng, Options{Logger: log, Idempotency: idem.New(st.(idem.Provider).Idempotency(), idem.Config{Logger: log})})
	keys := auth.NewService(st.(auth.Provider).Auth(), auth.Config{})
	api.UseAuth(Guard{Keys: keys})
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		srv.Close()
		eng.Close()
		st.Close()
	})
	a := &authAPI{testAPI: &testAPI{t: t, eng: eng, srv: srv, api: api}}
	ctx := context.Background()
	_, alice, err := keys.CreateKey(ctx, auth.Origin{Actor: "test"}, auth.KeySpec{Name: "alice", Scopes: []string{ScopeLedgerWrite}})
	if err != nil {
		t.Fatal(err)
	}
	_, bob, err := keys.CreateKey(ctx, auth.Origin{Actor: "test"}, auth.KeySpec{Name: "bob", Scopes: []string{ScopeLedgerWrite}})
	if err != nil {
		t.Fatal(err)
	}
	post := func(token string) response {
		t.Helper()
		req := a.newReq(token, "POST", "/v1/accounts", `{"id":"a","currency":"USD"}`)
		req.Header.Set(IdempotencyKeyHeader, "shared-key")
		return a.send(req)
	}
	if r := post(alice); r.Status != 201 || r.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("alice: %s", r)
	}
	if r := post(""); r.Status != 401 || r.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("no key: %s, replayed %q", r, r.Header.Get(ReplayedHeader))
	}
	if r := post("fk_bogus_secret"); r.Status != 401 {
		t.Fatalf("bad key: %s", r)
	}
	// Bob's first use of the key executes (the ledger's id replay answers 200).
	if r := post(bob); r.Status != 200 || r.Header.Get(ReplayedHeader) != "" {
		t.Fatalf("bob: %s, replayed %q", r, r.Header.Get(ReplayedHeader))
	}
	if r := post(alice); r.Status != 201 || r.Header.Get(ReplayedHeader) != "true" {
		t.Fatalf("alice again: %s, replayed %q", r, r.Header.Get(ReplayedHeader))
	}
	if r := post(bob); r.Status != 200 || r.Header.Get(ReplayedHeader) != "true" {
		t.Fatalf("bob again: %s, replayed %q", r, r.Header.Get(ReplayedHeader))
	}
}
