package ledger

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEmptyMetadataRendersAsObject(t *testing.T) {
	for _, v := range []any{Account{ID: "a"}, Transfer{ID: "t", Metadata: Metadata{}}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"metadata":{}`) {
			t.Errorf("%T renders %s, want metadata {}", v, b)
		}
	}
	b, _ := json.Marshal(Account{Metadata: Metadata{"k": "v"}})
	if !strings.Contains(string(b), `"metadata":{"k":"v"}`) {
		t.Errorf("metadata with a value renders %s", b)
	}
}
