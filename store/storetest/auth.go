package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/auth"
	"github.com/fincore/fincore/platform/clock"
)

// AuthFactory opens fresh, empty auth storage for one test. exec runs a raw SQL statement on
// the same database, so that the suite can check what the schema itself refuses.
type AuthFactory func(t testing.TB) (st auth.Store, exec func(ctx context.Context, sql string) error)

// TestAuthStore holds an auth.Store to the behaviour platform/auth relies on.
func TestAuthStore(t *testing.T, open AuthFactory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open AuthFactory)
	}{
		{"KeyRoundTrip", testKeyRoundTrip},
		{"KeyIDTaken", testKeyIDTaken},
		{"FirstKey", testFirstKey},
		{"FirstKeyConcurrent", testFirstKeyConcurrent},
		{"ListKeys", testListKeys},
		{"Revoke", testRevoke},
		{"AuditQuery", testAuditQuery},
		{"AuditAppendOnly", testAuditAppendOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

var authBase = time.Date(2026, 12, 4, 1, 2, 3, 123456789, time.UTC)

func testKey(id string, at time.Duration) auth.Key {
	h := make([]byte, 32)
	copy(h, id)
	return auth.Key{ID: id, Name: "key " + id, Scopes: []string{"ledger:read", "risk:write"},
		CreatedAt: authBase.Add(at), CreatedBy: "tester", Hash: h}
}

func testEntry(action, target string) auth.AuditEntry {
	return auth.AuditEntry{Time: authBase, Actor: "tester", Action: action, Target: target,
		After: []byte(`{"b":1,"a":[true,null]}`), RequestID: "req_1"}
}

func mustT(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// allAudit returns the whole audit log, newest first.
func allAudit(t testing.TB, st auth.Store) []auth.AuditEntry {
	t.Helper()
	es, more, err := st.ListAudit(ctx, auth.AuditQuery{Limit: auth.ListMax})
	mustT(t, err)
	if more {
		t.Fatal("more than one page of audit entries")
	}
	return es
}

func testKeyRoundTrip(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	k := testKey("fk_0000000000000001", 0)
	k.TenantID = "tenant-7"
	k.Hash = bytes.Repeat([]byte{0xff, 0x00}, 16)
	mustT(t, st.CreateKey(ctx, k, testEntry(auth.ActionKeyCreate, k.ID)))
	got, ok, err := st.GetKey(ctx, k.ID)
	mustT(t, err)
	if !ok || got.ID != k.ID || got.Name != k.Name || !slices.Equal(got.Scopes, k.Scopes) || got.TenantID != k.TenantID ||
		!got.CreatedAt.Equal(k.CreatedAt) || got.CreatedBy != k.CreatedBy || !bytes.Equal(got.Hash, k.Hash) || !got.Active() {
		t.Fatalf("stored %+v\n got %+v", k, got)
	}
	if _, ok, err := st.GetKey(ctx, "fk_0000000000000002"); ok || err != nil {
		t.Fatalf("missing key: %v %v", ok, err)
	}
	es := allAudit(t, st)
	if len(es) != 1 {
		t.Fatalf("%d audit entries, want 1", len(es))
	}
	e := es[0]
	if e.Seq <= 0 || !e.Time.Equal(authBase) || e.Actor != "tester" || e.Action != auth.ActionKeyCreate || e.Target != k.ID ||
		e.Before != nil || string(e.After) != `{"b":1,"a":[true,null]}` || e.RequestID != "req_1" {
		t.Fatalf("audit entry %+v (after %s)", e, e.After)
	}
	if n, err := st.CountActiveKeys(ctx); n != 1 || err != nil {
		t.Fatalf("CountActiveKeys = %d %v", n, err)
	}
}

func testKeyIDTaken(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	k := testKey("fk_0000000000000001", 0)
	mustT(t, st.CreateKey(ctx, k, testEntry(auth.ActionKeyCreate, k.ID)))
	other := testKey("fk_0000000000000001", time.Second)
	other.Name = "impostor"
	if err := st.CreateKey(ctx, other, testEntry(auth.ActionKeyCreate, k.ID)); !errors.Is(err, auth.ErrKeyExists) {
		t.Fatalf("taken id: %v", err)
	}
	if got, _, _ := st.GetKey(ctx, k.ID); got.Name != k.Name {
		t.Fatalf("the first key was overwritten: %+v", got)
	}
	if n := len(allAudit(t, st)); n != 1 {
		t.Fatalf("a refused creation left an audit entry (%d entries)", n)
	}
}

func testFirstKey(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	created, err := st.CreateFirstKey(ctx, testKey("fk_0000000000000001", 0), testEntry(auth.ActionKeyCreate, "fk_0000000000000001"))
	if err != nil || !created {
		t.Fatalf("first key: %v %v", created, err)
	}
	created, err = st.CreateFirstKey(ctx, testKey("fk_0000000000000002", 0), testEntry(auth.ActionKeyCreate, "fk_0000000000000002"))
	if err != nil || created {
		t.Fatalf("second first key: %v %v", created, err)
	}
	// A revoked key still counts: bootstrapping happens once per database.
	if ok, err := st.RevokeKey(ctx, "fk_0000000000000001", authBase, testEntry(auth.ActionKeyRevoke, "fk_0000000000000001")); !ok || err != nil {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	created, err = st.CreateFirstKey(ctx, testKey("fk_0000000000000003", 0), testEntry(auth.ActionKeyCreate, "fk_0000000000000003"))
	if err != nil || created {
		t.Fatalf("first key after a revoked one: %v %v", created, err)
	}
	if _, ok, _ := st.GetKey(ctx, "fk_0000000000000002"); ok {
		t.Fatal("a refused first key was stored")
	}
	if n := len(allAudit(t, st)); n != 2 {
		t.Fatalf("%d audit entries, want 2 (create, revoke)", n)
	}
}

func testFirstKeyConcurrent(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	const n = 8
	var wg sync.WaitGroup
	results := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("fk_%016x", i+1)
			results[i], errs[i] = st.CreateFirstKey(ctx, testKey(id, 0), testEntry(auth.ActionKeyCreate, id))
		}()
	}
	wg.Wait()
	winners := 0
	for i := range n {
		mustT(t, errs[i])
		if results[i] {
			winners++
		}
	}
	keys, _, err := st.ListKeys(ctx, "", auth.ListMax)
	mustT(t, err)
	if winners != 1 || len(keys) != 1 || len(allAudit(t, st)) != 1 {
		t.Fatalf("%d winners, %d keys, want exactly one", winners, len(keys))
	}
}

func testListKeys(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	// Keys 1..7 created a second apart, except 4 and 5, created at the same instant.
	var want []string
	for i := 1; i <= 7; i++ {
		at := time.Duration(i) * time.Second
		if i == 5 {
			at = 4 * time.Second
		}
		k := testKey(fmt.Sprintf("fk_%016x", i), at)
		mustT(t, st.CreateKey(ctx, k, testEntry(auth.ActionKeyCreate, k.ID)))
		want = append([]string{k.ID}, want...) // newest first; 5 before 4 by id
	}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		ks, more, err := st.ListKeys(ctx, after, 3)
		mustT(t, err)
		if len(ks) > 3 || pages > 3 {
			t.Fatalf("page of %d keys, page %d", len(ks), pages)
		}
		for _, k := range ks {
			got = append(got, k.ID)
		}
		if !more {
			break
		}
		after = ks[len(ks)-1].ID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged keys %v, want %v", got, want)
	}
	if ks, more, err := st.ListKeys(ctx, want[len(want)-1], 3); len(ks) != 0 || more || err != nil {
		t.Fatalf("after the last key: %d %v %v", len(ks), more, err)
	}
	if ks, more, err := st.ListKeys(ctx, "", 7); len(ks) != 7 || more || err != nil {
		t.Fatalf("exact page: %d %v %v", len(ks), more, err)
	}
	if _, _, err := st.ListKeys(ctx, "fk_ffffffffffffffff", 3); !errors.Is(err, auth.ErrCursorNotFound) {
		t.Fatalf("unknown cursor: %v", err)
	}
}

func testRevoke(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	for _, id := range []string{"fk_0000000000000001", "fk_0000000000000002"} {
		mustT(t, st.CreateKey(ctx, testKey(id, 0), testEntry(auth.ActionKeyCreate, id)))
	}
	at := authBase.Add(time.Hour + time.Nanosecond)
	ok, err := st.RevokeKey(ctx, "fk_0000000000000001", at, testEntry(auth.ActionKeyRevoke, "fk_0000000000000001"))
	if !ok || err != nil {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	for _, id := range []string{"fk_0000000000000001", "fk_0000000000000009"} { // again; unknown
		if ok, err := st.RevokeKey(ctx, id, at.Add(time.Hour), testEntry(auth.ActionKeyRevoke, id)); ok || err != nil {
			t.Fatalf("revoke %s: %v %v", id, ok, err)
		}
	}
	k, _, err := st.GetKey(ctx, "fk_0000000000000001")
	mustT(t, err)
	if k.Active() || !k.RevokedAt.Equal(at) {
		t.Fatalf("revoked at %v, want %v", k.RevokedAt, at)
	}
	if k2, _, _ := st.GetKey(ctx, "fk_0000000000000002"); !k2.Active() {
		t.Fatal("the other key was revoked")
	}
	if n, err := st.CountActiveKeys(ctx); n != 1 || err != nil {
		t.Fatalf("CountActiveKeys = %d %v", n, err)
	}
	es := allAudit(t, st)
	if len(es) != 3 || es[0].Action != auth.ActionKeyRevoke {
		t.Fatalf("audit: %d entries, newest %q; want 3 with one revocation", len(es), es[0].Action)
	}
}

func testAuditQuery(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	var seqs []int64
	for i := range 12 {
		e := auth.AuditEntry{Time: authBase.Add(time.Duration(i) * time.Millisecond), Actor: []string{"alice", "bob", "carol"}[i%3],
			Action: []string{"config.set", "key.create"}[i%2], Target: fmt.Sprintf("t%d", i), RequestID: fmt.Sprintf("req_%d", i)}
		if i%4 == 0 {
			e.Before = []byte(fmt.Sprintf(`{"v":%d}`, i))
		}
		seq, err := st.AppendAudit(ctx, e)
		mustT(t, err)
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			t.Fatalf("seq %d after %d", seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, seq)
	}
	targets := func(es []auth.AuditEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Target)
		}
		return out
	}
	es, more, err := st.ListAudit(ctx, auth.AuditQuery{Limit: 5})
	mustT(t, err)
	if !more || fmt.Sprint(targets(es)) != "[t11 t10 t9 t8 t7]" {
		t.Fatalf("first page %v more %v", targets(es), more)
	}
	if es[3].Seq != seqs[8] || string(es[3].Before) != `{"v":8}` || es[3].After != nil || es[3].RequestID != "req_8" ||
		!es[3].Time.Equal(authBase.Add(8*time.Millisecond)) {
		t.Fatalf("entry t8: %+v", es[3])
	}
	es, more, err = st.ListAudit(ctx, auth.AuditQuery{BeforeSeq: es[4].Seq, Limit: 100})
	mustT(t, err)
	if more || fmt.Sprint(targets(es)) != "[t6 t5 t4 t3 t2 t1 t0]" {
		t.Fatalf("rest %v more %v", targets(es), more)
	}
	es, _, err = st.ListAudit(ctx, auth.AuditQuery{Actor: "bob", Limit: 100})
	mustT(t, err)
	if fmt.Sprint(targets(es)) != "[t10 t7 t4 t1]" {
		t.Fatalf("bob: %v", targets(es))
	}
	es, _, err = st.ListAudit(ctx, auth.AuditQuery{Actor: "bob", Action: "key.create", Limit: 100})
	mustT(t, err)
	if fmt.Sprint(targets(es)) != "[t7 t1]" {
		t.Fatalf("bob key.create: %v", targets(es))
	}
	es, more, err = st.ListAudit(ctx, auth.AuditQuery{Action: "config.set", BeforeSeq: seqs[6], Limit: 2})
	mustT(t, err)
	if !more || fmt.Sprint(targets(es)) != "[t4 t2]" {
		t.Fatalf("config.set before t6: %v %v", targets(es), more)
	}
	if es, _, _ := st.ListAudit(ctx, auth.AuditQuery{Actor: "nobody", Limit: 10}); len(es) != 0 {
		t.Fatalf("nobody: %v", targets(es))
	}
}

// testAuditAppendOnly checks that the schema itself refuses to change or remove audit
// entries, whatever code (or operator at a SQL prompt) tries.
func testAuditAppendOnly(t *testing.T, open AuthFactory) {
	st, exec := open(t)
	_, err := st.AppendAudit(ctx, testEntry("config.set", "x"))
	mustT(t, err)
	for _, q := range []string{
		`UPDATE audit_log SET actor = 'mallory'`,
		`UPDATE audit_log SET after_json = NULL`,
		`DELETE FROM audit_log`,
	} {
		if err := exec(ctx, q); err == nil {
			t.Errorf("%s: succeeded, want it refused", q)
		}
	}
	es := allAudit(t, st)
	if len(es) != 1 || es[0].Actor != "tester" || es[0].After == nil {
		t.Fatalf("audit log changed: %+v", es)
	}
}

// TestAuthService runs platform/auth's Service over a store: bootstrapping, operator keys,
// authentication with its cache across two instances, revocation, and the audit trail.
func TestAuthService(t *testing.T, open AuthFactory) {
	st, _ := open(t)
	clk := clock.NewFake(authBase)
	a := auth.NewService(st, auth.Config{Now: clk.Now, CacheTTL: 5 * time.Second})
	b := auth.NewService(st, auth.Config{Now: clk.Now, CacheTTL: 5 * time.Second}) // another instance
	sys := auth.Origin{Actor: "system"}
	code := func(err error) apierror.Code {
		if e := apierror.As(err); e != nil {
			return e.Code
		}
		return ""
	}

	// Bootstrap creates one admin key, once.
	boot, created, err := a.Bootstrap(ctx, sys, "bootstrap")
	if err != nil || !created || boot == "" {
		t.Fatalf("bootstrap: %v %v", created, err)
	}
	if tok, created, err := b.Bootstrap(ctx, sys, "bootstrap"); err != nil || created || tok != "" {
		t.Fatalf("second bootstrap: %q %v %v", tok, created, err)
	}
	k, err := b.Authenticate(ctx, boot)
	if err != nil || !k.Allows("admin") {
		t.Fatalf("bootstrap key: %+v %v", k, err)
	}

	// An operator's key is stored once, whatever its shape, and works.
	op := "operator-chosen-secret-0123456789abcdef"
	for range 2 {
		if _, err := a.EnsureOperatorKey(ctx, sys, op, "env"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Authenticate(ctx, op); err != nil {
		t.Fatalf("operator key: %v", err)
	}
	if _, err := a.EnsureOperatorKey(ctx, sys, "short", "env"); err == nil {
		t.Fatal("a short operator key was accepted")
	}

	// Keys created through the service: validation, then authentication.
	if _, _, err := a.CreateKey(ctx, auth.Origin{Actor: k.ID}, auth.KeySpec{Name: "x", Scopes: []string{"ledger:delete"}}); code(err) != apierror.InvalidRequest {
		t.Fatalf("bad scope: %v", err)
	}
	if _, _, err := a.CreateKey(ctx, auth.Origin{Actor: k.ID}, auth.KeySpec{Name: "", Scopes: []string{"ledger:read"}}); code(err) != apierror.InvalidRequest {
		t.Fatalf("no name: %v", err)
	}
	rk, token, err := a.CreateKey(ctx, auth.Origin{Actor: k.ID, RequestID: "req_create"},
		auth.KeySpec{Name: "reader", Scopes: []string{"ledger:read"}, TenantID: "t1"})
	mustT(t, err)
	for _, svc := range []*auth.Service{a, b} {
		got, err := svc.Authenticate(ctx, token)
		if err != nil || got.ID != rk.ID || got.TenantID != "t1" || !got.Allows("ledger:read") || got.Allows("ledger:write") {
			t.Fatalf("authenticate: %+v %v", got, err)
		}
	}
	for _, bad := range []string{"", token[:len(token)-1] + "x", token + "x", "fk_0000000000000000_" + token[len(rk.ID)+1:]} {
		if _, err := a.Authenticate(ctx, bad); code(err) != apierror.Unauthenticated {
			t.Fatalf("token %q: %v", bad, err)
		}
	}

	// Revocation: at once on the instance that revokes, within the cache TTL on the other.
	rev, err := a.RevokeKey(ctx, auth.Origin{Actor: k.ID, RequestID: "req_revoke"}, rk.ID)
	if err != nil || rev.Active() {
		t.Fatalf("revoke: %+v %v", rev, err)
	}
	if _, err := a.Authenticate(ctx, token); code(err) != apierror.Unauthenticated {
		t.Fatalf("revoked key on the revoking instance: %v", err)
	}
	if _, err := b.Authenticate(ctx, token); err != nil {
		t.Fatalf("the other instance's cache should still hold the key: %v", err)
	}
	clk.Advance(5 * time.Second)
	if _, err := b.Authenticate(ctx, token); code(err) != apierror.Unauthenticated {
		t.Fatalf("revoked key on the other instance after the TTL: %v", err)
	}
	if again, err := a.RevokeKey(ctx, auth.Origin{Actor: k.ID}, rk.ID); err != nil || !again.RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("revoking twice: %+v %v", again, err)
	}
	if _, err := a.RevokeKey(ctx, auth.Origin{Actor: k.ID}, "fk_0123456789abcdef"); code(err) != apierror.KeyNotFound {
		t.Fatalf("revoke unknown: %v", err)
	}
	// An operator key that was revoked is refused at start rather than silently unusable.
	opKey, err := a.Authenticate(ctx, op)
	mustT(t, err)
	_, err = a.RevokeKey(ctx, sys, opKey.ID)
	mustT(t, err)
	if _, err := a.EnsureOperatorKey(ctx, sys, op, "env"); err == nil {
		t.Fatal("a revoked operator key was accepted")
	}

	// Configuration changes, as the config center reports them.
	mustT(t, a.RecordConfigChange(ctx, auth.Origin{Actor: k.ID, RequestID: "req_cfg"}, "switch.ledger", nil, []byte(`"degraded"`)))
	mustT(t, a.RecordConfigChange(ctx, auth.Origin{Actor: k.ID}, "switch.ledger", []byte(`"degraded"`), nil))
	if err := a.RecordConfigChange(ctx, sys, "big", nil, bytes.Repeat([]byte("1"), auth.AuditValueMax+1)); err == nil {
		t.Fatal("an oversized audit value was accepted")
	}
	cfg, _, err := a.ListAudit(ctx, "", k.ID, "", 10)
	mustT(t, err)
	if len(cfg) < 2 || cfg[0].Action != auth.ActionConfigDelete || cfg[0].Target != "config:switch.ledger" || string(cfg[0].Before) != `"degraded"` || cfg[0].After != nil ||
		cfg[1].Action != auth.ActionConfigSet || cfg[1].Before != nil || string(cfg[1].After) != `"degraded"` || cfg[1].RequestID != "req_cfg" {
		t.Fatalf("config audit entries %+v", cfg[:min(2, len(cfg))])
	}

	// The key trail: bootstrap, operator key, reader created and revoked, operator revoked.
	es, _, err := a.ListAudit(ctx, "", "", "", 100)
	mustT(t, err)
	es = slices.DeleteFunc(es, func(e auth.AuditEntry) bool { return strings.HasPrefix(e.Action, "config.") })
	var got []string
	for _, e := range es {
		got = append(got, e.Action+" by "+e.Actor)
	}
	want := []string{"key.revoke by system", "key.revoke by " + k.ID, "key.create by " + k.ID, "key.create by system", "key.create by system"}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail %q, want %q", got, want)
	}
	if es[1].RequestID != "req_revoke" || !bytes.Contains(es[1].Before, []byte(`"revoked_at":null`)) ||
		!bytes.Contains(es[1].After, []byte(`"revoked_at":"2026-12-04T01:02:03.123456789Z"`)) ||
		bytes.Contains(es[2].After, []byte("hash")) || bytes.Contains(es[2].After, []byte(token[len(rk.ID)+1:])) {
		t.Fatalf("revocation entry before %s after %s; creation after %s", es[1].Before, es[1].After, es[2].After)
	}
	es, more, err := a.ListAudit(ctx, auth.AuditID(es[1].Seq), "", "key.create", 1)
	mustT(t, err)
	if len(es) != 1 || !more || es[0].Target != rk.ID {
		t.Fatalf("filtered page: %+v %v", es, more)
	}
	if _, _, err := a.ListAudit(ctx, "bogus", "", "", 10); code(err) != apierror.InvalidRequest {
		t.Fatalf("bad cursor: %v", err)
	}
}
