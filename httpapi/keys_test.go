package httpapi

import (
	"fmt"
	"strings"
	"testing"
)

type keyResp struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Scopes    []string `json:"scopes"`
	TenantID  *string  `json:"tenant_id"`
	CreatedAt string   `json:"created_at"`
	CreatedBy string   `json:"created_by"`
	RevokedAt *string  `json:"revoked_at"`
	Secret    string   `json:"secret"`
}

type auditResp struct {
	ID        string         `json:"id"`
	Time      string         `json:"time"`
	Actor     string         `json:"actor"`
	Action    string         `json:"action"`
	Target    string         `json:"target"`
	Before    map[string]any `json:"before"`
	After     map[string]any `json:"after"`
	RequestID string         `json:"request_id"`
}

func TestKeysAPI(t *testing.T) {
	a := newAuthAPI(t)
	adminKey, err := a.keys.Authenticate(t.Context(), a.admin)
	if err != nil {
		t.Fatal(err)
	}

	r := a.as(a.admin, "POST", "/v1/keys", `{"name":"payments service","scopes":["payments:write","ledger:read"],"tenant_id":"acme"}`)
	var k keyResp
	r.wantStatus(t, 201).decode(t, &k)
	if !strings.HasPrefix(k.Secret, k.ID+"_") || k.Name != "payments service" || strings.Join(k.Scopes, ",") != "ledger:read,payments:write" ||
		k.TenantID == nil || *k.TenantID != "acme" || k.RevokedAt != nil || k.CreatedBy != adminKey.ID || k.CreatedAt == "" {
		t.Fatalf("created %+v", k)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
	}
	a.as(k.Secret, "GET", "/v1/accounts/nope", "").wantStatus(t, 404) // the new key works
	a.as(k.Secret, "GET", "/v1/keys", "").wantError(t, 403, "forbidden", "")

	// The secret is never shown again.
	var got keyResp
	r = a.as(a.admin, "GET", "/v1/keys/"+k.ID, "").wantStatus(t, 200)
	r.decode(t, &got)
	if got.ID != k.ID || got.Secret != "" || strings.Contains(string(r.Body), k.Secret[len(k.ID)+1:]) || strings.Contains(string(r.Body), "hash") {
		t.Fatalf("GET key: %s", r.Body)
	}
	a.as(a.admin, "GET", "/v1/keys/fk_0123456789abcdef", "").wantError(t, 404, "key_not_found", "id")
	a.as(a.admin, "GET", "/v1/keys/bogus", "").wantError(t, 404, "key_not_found", "id")

	// Validation: nothing is created.
	for _, tc := range []struct{ body, param string }{
		{`{"scopes":["ledger:read"]}`, "name"},
		{`{"name":"x"}`, "scopes"},
		{`{"name":"x","scopes":[]}`, "scopes"},
		{`{"name":"x","scopes":["ledger:delete"]}`, "scopes"},
		{`{"name":"x","scopes":["ledger:read","ledger:read"]}`, "scopes"},
		{`{"name":"x","scopes":[1]}`, "scopes[0]"},
		{`{"name":"x","scopes":["admin"],"tenant_id":"a b"}`, "tenant_id"},
		{`{"name":"x","scopes":["admin"],"secret":"mine"}`, "secret"},
		{`{"name":"` + strings.Repeat("n", 101) + `","scopes":["admin"]}`, "name"},
		{`{"name":"x","scopes":[` + strings.Repeat(`"a:read",`, 40) + `"b:read"]}`, "scopes"},
	} {
		a.as(a.admin, "POST", "/v1/keys", tc.body).wantError(t, 400, "invalid_request", tc.param)
	}

	// Paging, newest first.
	var ids []string
	for i := range 4 {
		_, id := a.key(fmt.Sprintf("k%d", i), "ledger:read")
		ids = append([]string{id}, ids...)
	}
	var page struct {
		Data    []keyResp `json:"data"`
		HasMore bool      `json:"has_more"`
	}
	a.as(a.admin, "GET", "/v1/keys?limit=2", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 2 || !page.HasMore || page.Data[0].ID != ids[0] || page.Data[1].ID != ids[1] {
		t.Fatalf("first page %+v", page)
	}
	a.as(a.admin, "GET", "/v1/keys?limit=100&starting_after="+ids[1], "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 4 || page.HasMore || page.Data[0].ID != ids[2] || page.Data[2].ID != k.ID {
		t.Fatalf("second page %+v", page)
	}
	a.as(a.admin, "GET", "/v1/keys?limit=101", "").wantError(t, 400, "invalid_request", "limit")
	a.as(a.admin, "GET", "/v1/keys?starting_after=fk_0123456789abcdef", "").wantError(t, 400, "invalid_request", "starting_after")
	a.as(a.admin, "GET", "/v1/keys?color=red", "").wantError(t, 400, "invalid_request", "color")

	// Revocation: idempotent; a body must be empty or {}.
	a.as(a.admin, "POST", "/v1/keys/"+k.ID+"/revoke", `{"now":true}`).wantError(t, 400, "invalid_request", "")
	a.as(k.Secret, "GET", "/v1/accounts/nope", "").wantStatus(t, 404)
	var rev, rev2 keyResp
	a.as(a.admin, "POST", "/v1/keys/"+k.ID+"/revoke", `{}`).wantStatus(t, 200).decode(t, &rev)
	a.as(a.admin, "POST", "/v1/keys/"+k.ID+"/revoke", "").wantStatus(t, 200).decode(t, &rev2)
	if rev.RevokedAt == nil || rev2.RevokedAt == nil || *rev.RevokedAt != *rev2.RevokedAt {
		t.Fatalf("revoked %+v then %+v", rev, rev2)
	}
	a.as(k.Secret, "GET", "/v1/accounts/nope", "").wantError(t, 401, "unauthenticated", "")
	a.as(a.admin, "POST", "/v1/keys/fk_0123456789abcdef/revoke", "").wantError(t, 404, "key_not_found", "id")
}

func TestAuditAPI(t *testing.T) {
	a := newAuthAPI(t)
	adminKey, _ := a.keys.Authenticate(t.Context(), a.admin)
	_, id := a.key("audited", "risk:write")
	a.as(a.admin, "POST", "/v1/keys/"+id+"/revoke", "").wantStatus(t, 200)
	// A request id from the client is recorded.
	var created keyResp
	httpReq := a.newReq(a.admin, "POST", "/v1/keys", `{"name":"traced","scopes":["ledger:read"]}`)
	httpReq.Header.Set("X-Request-Id", "req-from-client-42")
	a.send(httpReq).wantStatus(t, 201).decode(t, &created)

	var page struct {
		Data    []auditResp `json:"data"`
		HasMore bool        `json:"has_more"`
	}
	a.as(a.admin, "GET", "/v1/audit", "").wantStatus(t, 200).decode(t, &page)
	// Newest first: traced created, audited revoked, audited created, the bootstrap key.
	if len(page.Data) != 4 || page.HasMore {
		t.Fatalf("audit %+v", page)
	}
	e := page.Data[0]
	if e.Action != "key.create" || e.Target != created.ID || e.Actor != adminKey.ID || e.RequestID != "req-from-client-42" ||
		e.Before != nil || e.After["name"] != "traced" || e.After["revoked_at"] != nil || !strings.HasPrefix(e.ID, "aud_") {
		t.Fatalf("newest entry %+v", e)
	}
	rv := page.Data[1]
	if rv.Action != "key.revoke" || rv.Target != id || rv.Before["revoked_at"] != nil || rv.After["revoked_at"] == nil {
		t.Fatalf("revocation entry %+v", rv)
	}
	if last := page.Data[3]; last.Actor != "test" || last.Target != adminKey.ID {
		t.Fatalf("bootstrap entry %+v", last)
	}
	for _, e := range page.Data {
		if _, has := e.After["secret"]; has {
			t.Fatalf("an audit entry holds a secret: %+v", e)
		}
	}

	a.as(a.admin, "GET", "/v1/audit?action=key.revoke", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 1 || page.Data[0].Target != id {
		t.Fatalf("action filter %+v", page)
	}
	a.as(a.admin, "GET", "/v1/audit?actor=test", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 1 {
		t.Fatalf("actor filter %+v", page)
	}
	a.as(a.admin, "GET", "/v1/audit?limit=2", "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 2 || !page.HasMore {
		t.Fatalf("limit 2: %+v", page)
	}
	a.as(a.admin, "GET", "/v1/audit?starting_after="+page.Data[1].ID, "").wantStatus(t, 200).decode(t, &page)
	if len(page.Data) != 2 || page.HasMore || page.Data[1].Actor != "test" {
		t.Fatalf("second page %+v", page)
	}
	a.as(a.admin, "GET", "/v1/audit?starting_after=42", "").wantError(t, 400, "invalid_request", "starting_after")
	a.as(a.admin, "GET", "/v1/audit?limit=0", "").wantError(t, 400, "invalid_request", "limit")
	a.as(a.admin, "GET", "/v1/audit?target=x", "").wantError(t, 400, "invalid_request", "target")
	reader, _ := a.key("reader", "ledger:read")
	a.as(reader, "GET", "/v1/audit", "").wantError(t, 403, "forbidden", "")
}
