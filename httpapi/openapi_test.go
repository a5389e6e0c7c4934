package httpapi

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/fincore/fincore/platform/auth"
)

// TestOpenAPIDescribesEveryRoute checks that openapi.json describes exactly the routes the
// server registers, and that every $ref in it resolves.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
			default:
				continue // parameters, summary...
			}
			documented[strings.ToUpper(method)+" "+path] = true
			if _, ok := op["responses"]; !ok {
				t.Errorf("%s %s has no responses", method, path)
			}
		}
	}
	// The ledger engine and the key store are not used while registering routes.
	s := NewServer(nil, Options{Logger: slog.New(slog.DiscardHandler)})
	s.RegisterConfig(nil)
	s.UseAuth(Guard{Keys: auth.NewService(nil, auth.Config{})})
	s.RegisterRisk(nil)
	s.RegisterPayments(nil, PaymentsOptions{})
	s.RegisterRecon(nil, ReconOptions{})
	s.RegisterCredit(nil)
	registered := map[string]bool{}
	for _, r := range s.Routes() {
		registered[r] = true
		if !documented[r] {
			t.Errorf("route %q is not in openapi.json", r)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("openapi.json describes %q, which is not a route", r)
		}
	}

	var all any
	if err := json.Unmarshal(OpenAPI, &all); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if s, ok := c.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(all)
	if len(refs) == 0 {
		t.Fatal("no $ref found")
	}
	slices.Sort(refs)
	for _, ref := range slices.Compact(refs) {
		if !strings.HasPrefix(ref, "#/") {
			t.Errorf("external $ref %q", ref)
			continue
		}
		var cur any = all
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[part]
		}
		if cur == nil {
			t.Errorf("$ref %q does not resolve", ref)
		}
	}
}
