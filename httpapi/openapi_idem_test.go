package httpapi

import (
	"encoding/json"
	"testing"
)

// TestOpenAPIPostsTakeIdempotencyKey checks that every POST operation in openapi.json lists
// the Idempotency-Key header, which the server honours on every POST route.
func TestOpenAPIPostsTakeIdempotencyKey(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	posts := 0
	for path, ops := range doc.Paths {
		raw, ok := ops["post"]
		if !ok {
			continue
		}
		posts++
		var op struct {
			Parameters []struct {
				Ref string `json:"$ref"`
			} `json:"parameters"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		found := false
		for _, p := range op.Parameters {
			found = found || p.Ref == "#/components/parameters/IdempotencyKey"
		}
		if !found {
			t.Errorf(`POST %s does not list the Idempotency-Key header, which every POST honours: add { "$ref": "#/components/parameters/IdempotencyKey" } to its parameters`, path)
		}
	}
	if posts == 0 {
		t.Fatal("no POST operation found")
	}
}
