package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzDecodeKeySpec feeds arbitrary bodies to the POST /v1/keys decoder and checks it against
// encoding/json: a body it accepts is a JSON object whose name and scopes are exactly what
// the standard library reads, with no other field but tenant_id.
//
//	go test ./httpapi -run '^$' -fuzz FuzzDecodeKeySpec -fuzztime 30s
func FuzzDecodeKeySpec(f *testing.F) {
	for _, s := range []string{
		`{"name":"x","scopes":["ledger:read"]}`,
		`{"name":"x","scopes":["admin"],"tenant_id":"acme"}`,
		`{"name":"x","scopes":[],"tenant_id":null}`,
		`{"name":"\u00e9","scopes":["a:read","b:write"]}`,
		`{"name":"x","name":"y","scopes":["admin"]}`,
		`{"name":1}`, `[]`, `null`, `{"scopes":["x"]} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, e := decodeKeySpec(body)
		if e != nil {
			if e.Code != "invalid_request" || e.Message == "" {
				t.Fatalf("error %+v", e)
			}
			return
		}
		var ref struct {
			Name     string   `json:"name"`
			Scopes   []string `json:"scopes"`
			TenantID *string  `json:"tenant_id"`
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("accepted %q, which is not a JSON object: %v", body, err)
		}
		for k := range fields {
			if k != "name" && k != "scopes" && k != "tenant_id" {
				t.Fatalf("accepted unknown field %q in %q", k, body)
			}
		}
		if err := json.Unmarshal(body, &ref); err != nil {
			t.Fatalf("accepted %q: %v", body, err)
		}
		tenant := ""
		if ref.TenantID != nil {
			tenant = *ref.TenantID
		}
		if spec.Name == "" || spec.Name != ref.Name || !slices.Equal(spec.Scopes, ref.Scopes) || spec.TenantID != tenant {
			t.Fatalf("%q decoded as %+v, encoding/json reads %+v", body, spec, ref)
		}
	})
}

// FuzzBearer checks the Authorization header parser: it never panics, reports a header as
// present exactly when there is one, and returns a token only for the Bearer scheme.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer fk_0123456789abcdef_x", "bearer  x ", "Basic abc", "Bearer", "Bearer ", "Bearer\tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := &http.Request{Header: http.Header{}}
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		token, present := bearer(r)
		if present != (h != "") {
			t.Fatalf("%q: present %v", h, present)
		}
		if token == "" || token == "\x00" {
			return
		}
		h = r.Header.Get("Authorization") // as net/http stores it
		if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") || token != strings.TrimSpace(h[7:]) {
			t.Fatalf("%q gave token %q", h, token)
		}
	})
}
