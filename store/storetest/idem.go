package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/platform/idem"
)

// TestIdemStore runs the idempotency store's behaviours against a backend whose ledger store
// is also an idem.Provider.
func TestIdemStore(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st idem.Store)
	}{
		{"ClaimOnce", testIdemClaimOnce},
		{"Scopes", testIdemScopes},
		{"CompleteAndReplay", testIdemComplete},
		{"Release", testIdemRelease},
		{"LeaseTakeover", testIdemLease},
		{"Expiry", testIdemExpiry},
		{"Purge", testIdemPurge},
		{"ConcurrentClaims", testIdemConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, OpenIdem(t, f)) })
	}
}

// OpenIdem opens fresh storage and returns its idempotency store.
func OpenIdem(t testing.TB, f Factory) idem.Store {
	t.Helper()
	st := f(t)()
	t.Cleanup(func() { st.Close() })
	p, ok := st.(idem.Provider)
	if !ok {
		t.Fatalf("%T does not provide idempotency storage", st)
	}
	return p.Idempotency()
}

// idemT0 is the tests' reference instant; stores keep nanoseconds.
var idemT0 = time.Date(2026, 12, 4, 10, 0, 0, 123456789, time.UTC)

// idemRec is an in-flight record of key made at t0 + at with a 1-minute lease and a 24-hour
// life.
func idemRec(scope, key, owner string, fp byte, at time.Duration) idem.Record {
	now := idemT0.Add(at)
	return idem.Record{
		Scope: scope, Key: key, Owner: owner, Fingerprint: bytes.Repeat([]byte{fp}, 32),
		CreatedAt: now, LockedUntil: now.Add(time.Minute), ExpiresAt: now.Add(24 * time.Hour),
	}
}

// claim claims rec at t0 + at and checks whether it was claimed.
func claim(t *testing.T, st idem.Store, rec idem.Record, at time.Duration, want bool) idem.Record {
	t.Helper()
	got, ok, err := st.Claim(ctx, rec, idemT0.Add(at))
	if err != nil {
		t.Fatalf("claim %s/%s: %v", rec.Scope, rec.Key, err)
	}
	if ok != want {
		t.Fatalf("claim %s/%s by %s at +%v: claimed %v, want %v (existing %+v)", rec.Scope, rec.Key, rec.Owner, at, ok, want, got)
	}
	return got
}

func sameRecord(t *testing.T, got, want idem.Record) {
	t.Helper()
	eqTime := func(a, b time.Time) bool { return a.UnixNano() == b.UnixNano() }
	if got.Scope != want.Scope || got.Key != want.Key || got.Owner != want.Owner || !bytes.Equal(got.Fingerprint, want.Fingerprint) ||
		!eqTime(got.CreatedAt, want.CreatedAt) || !eqTime(got.LockedUntil, want.LockedUntil) || !eqTime(got.ExpiresAt, want.ExpiresAt) ||
		!reflect.DeepEqual(got.Response, want.Response) {
		t.Fatalf("record\n got %+v (response %+v)\nwant %+v (response %+v)", got, got.Response, want, want.Response)
	}
}

func testIdemClaimOnce(t *testing.T, st idem.Store) {
	first := idemRec("", "k1", "owner-a", 1, 0)
	if got := claim(t, st, first, 0, true); !reflect.DeepEqual(got, first) {
		t.Fatalf("claimed record %+v, want %+v", got, first)
	}
	// A second claim, same request or not, sees the first in flight.
	got := claim(t, st, idemRec("", "k1", "owner-b", 1, time.Second), time.Second, false)
	sameRecord(t, got, first)
	if !got.InFlight() {
		t.Fatal("first claim is not in flight")
	}
	sameRecord(t, claim(t, st, idemRec("", "k1", "owner-c", 2, time.Second), time.Second, false), first)
}

func testIdemScopes(t *testing.T, st idem.Store) {
	for _, scope := range []string{"", "key_a", "key_b"} {
		claim(t, st, idemRec(scope, "same", "owner-"+scope, 1, 0), 0, true)
	}
	claim(t, st, idemRec("key_a", "same", "other", 1, 0), 0, false)
}

func testIdemComplete(t *testing.T, st idem.Store) {
	rec := idemRec("s", "k", "owner-a", 1, 0)
	claim(t, st, rec, 0, true)
	resp := idem.Response{Status: 201, Header: map[string]string{"Content-Type": "application/json", "Location": "/v1/x/1"}, Body: []byte(`{"id":"x"}` + "\n")}
	if ok, err := st.Complete(ctx, "s", "k", "owner-b", resp); err != nil || ok {
		t.Fatalf("complete by a stranger: %v, %v; want false", ok, err)
	}
	if ok, err := st.Complete(ctx, "s", "k", "owner-a", resp); err != nil || !ok {
		t.Fatalf("complete: %v, %v", ok, err)
	}
	if ok, err := st.Complete(ctx, "s", "k", "owner-a", resp); err != nil || ok {
		t.Fatalf("complete twice: %v, %v; want false (the claim ended)", ok, err)
	}
	want := rec
	want.Owner, want.Response = "", &resp
	// Replays see the response, whatever their fingerprint, even after the lease.
	sameRecord(t, claim(t, st, idemRec("s", "k", "owner-c", 1, time.Hour), time.Hour, false), want)
	sameRecord(t, claim(t, st, idemRec("s", "k", "owner-c", 2, time.Hour), time.Hour, false), want)

	// An empty body and no headers round-trip too.
	claim(t, st, idemRec("s", "empty", "o", 1, 0), 0, true)
	empty := idem.Response{Status: 204, Header: map[string]string{}, Body: []byte{}}
	if ok, err := st.Complete(ctx, "s", "empty", "o", idem.Response{Status: 204}); err != nil || !ok {
		t.Fatalf("complete: %v, %v", ok, err)
	}
	if got := claim(t, st, idemRec("s", "empty", "o2", 1, 0), 0, false); !reflect.DeepEqual(got.Response, &empty) {
		t.Fatalf("empty response %+v, want %+v", got.Response, empty)
	}
}

func testIdemRelease(t *testing.T, st idem.Store) {
	claim(t, st, idemRec("", "k", "owner-a", 1, 0), 0, true)
	if err := st.Release(ctx, "", "k", "owner-b"); err != nil {
		t.Fatal(err)
	}
	claim(t, st, idemRec("", "k", "owner-c", 1, 0), 0, false) // a stranger released nothing
	if err := st.Release(ctx, "", "k", "owner-a"); err != nil {
		t.Fatal(err)
	}
	// Free again, for any request.
	claim(t, st, idemRec("", "k", "owner-d", 2, time.Second), time.Second, true)
	// A completed record is not released.
	if ok, err := st.Complete(ctx, "", "k", "owner-d", idem.Response{Status: 200}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := st.Release(ctx, "", "k", "owner-d"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, st, idemRec("", "k", "owner-e", 2, time.Second), time.Second, false); got.Response == nil {
		t.Fatal("release removed a completed record")
	}
}

func testIdemLease(t *testing.T, st idem.Store) {
	first := idemRec("", "k", "owner-a", 1, 0)
	claim(t, st, first, 0, true)
	// Before the lease ends the key is held; after, the same request takes it over and a
	// different one still may not.
	claim(t, st, idemRec("", "k", "owner-b", 1, 59*time.Second), 59*time.Second, false)
	sameRecord(t, claim(t, st, idemRec("", "k", "owner-b", 2, 2*time.Minute), 2*time.Minute, false), first)
	takeover := idemRec("", "k", "owner-b", 1, time.Minute)
	claim(t, st, takeover, time.Minute, true)
	sameRecord(t, claim(t, st, idemRec("", "k", "owner-c", 1, time.Minute), time.Minute, false), takeover)
	// The lost request cannot store its response over the new one's claim.
	if ok, err := st.Complete(ctx, "", "k", "owner-a", idem.Response{Status: 201}); err != nil || ok {
		t.Fatalf("complete by the lost owner: %v, %v; want false", ok, err)
	}
	if ok, err := st.Complete(ctx, "", "k", "owner-b", idem.Response{Status: 201}); err != nil || !ok {
		t.Fatalf("complete by the new owner: %v, %v", ok, err)
	}
	// A completed record outlives its lease.
	if got := claim(t, st, idemRec("", "k", "owner-d", 1, time.Hour), time.Hour, false); got.Response == nil || got.Owner != "" {
		t.Fatalf("completed record after the lease: %+v", got)
	}
}

func testIdemExpiry(t *testing.T, st idem.Store) {
	claim(t, st, idemRec("", "done", "o1", 1, 0), 0, true)
	if ok, err := st.Complete(ctx, "", "done", "o1", idem.Response{Status: 201}); err != nil || !ok {
		t.Fatal(ok, err)
	}
	claim(t, st, idemRec("", "done", "o2", 2, 24*time.Hour-time.Nanosecond), 24*time.Hour-time.Nanosecond, false)
	// At its expiry the key is free, for any request.
	fresh := idemRec("", "done", "o3", 2, 24*time.Hour)
	sameRecord(t, claim(t, st, fresh, 24*time.Hour, true), fresh)
	claim(t, st, idemRec("", "done", "o4", 2, 24*time.Hour), 24*time.Hour, false)
}

func testIdemPurge(t *testing.T, st idem.Store) {
	// Five records made an hour apart: each expires 24 hours after it was made.
	for i := range 5 {
		claim(t, st, idemRec("", fmt.Sprint("k", i), "o", 1, time.Duration(i)*time.Hour), time.Duration(i)*time.Hour, true)
	}
	now := idemT0.Add(26 * time.Hour) // k0, k1 and k2 have expired
	if n, err := st.Purge(ctx, now, 2); err != nil || n != 2 {
		t.Fatalf("purge (limit 2) = %d, %v; want 2", n, err)
	}
	if n, err := st.Purge(ctx, now, 10); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v; want 1", n, err)
	}
	if n, err := st.Purge(ctx, now, 10); err != nil || n != 0 {
		t.Fatalf("purge again = %d, %v; want 0", n, err)
	}
	// Live records are still there; the purged keys are free (even with the old clock).
	claim(t, st, idemRec("", "k3", "x", 1, 0), 0, false)
	claim(t, st, idemRec("", "k4", "x", 1, 0), 0, false)
	claim(t, st, idemRec("", "k0", "x", 1, 0), 0, true)
}

func testIdemConcurrent(t *testing.T, st idem.Store) {
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var winners []string
	seen := map[string]int{}
	for i := range n {
		wg.Go(func() {
			rec := idemRec("", "race", fmt.Sprint("owner-", i), 1, 0)
			got, ok, err := st.Claim(ctx, rec, idemT0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				winners = append(winners, rec.Owner)
			} else {
				seen[got.Owner]++
			}
		})
	}
	wg.Wait()
	if len(winners) != 1 {
		t.Fatalf("%d claims won, want 1: %v", len(winners), winners)
	}
	for owner, k := range seen {
		if owner != winners[0] {
			t.Errorf("%d losers saw owner %q, not the winner %q", k, owner, winners[0])
		}
	}
}
