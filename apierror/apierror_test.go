package apierror

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/errors.md from the registry")

func renderDoc() []byte {
	var b bytes.Buffer
	b.WriteString("# API error codes\n\n")
	b.WriteString("Generated from `apierror/registry.go` by `go test ./apierror -update`; do not edit.\n\n")
	b.WriteString("Errors are returned as `{\"error\": {\"type\", \"code\", \"message\", \"param\"}}`.\n")
	b.WriteString("Clients should depend on `code`, never on `message`.\n\n")
	b.WriteString("| code | HTTP status | type | meaning |\n|---|---|---|---|\n")
	for _, d := range Registry() {
		fmt.Fprintf(&b, "| `%s` | %d | `%s` | %s |\n", d.Code, d.Status, TypeOf(d.Status), d.Message)
	}
	return b.Bytes()
}

func TestDocInSync(t *testing.T) {
	const path = "../docs/errors.md"
	want := renderDoc()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v (run go test ./apierror -update)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run go test ./apierror -update", path)
	}
}

func TestLookupAndTypes(t *testing.T) {
	e := New(AccountNotFound, "debit_account_id")
	if e.Status() != 404 || e.Type() != "not_found_error" {
		t.Fatalf("status %d type %s", e.Status(), e.Type())
	}
	if Lookup("nope").Status != 500 {
		t.Fatal("unknown code should map to 500")
	}
	wrapped := fmt.Errorf("ctx: %w", Newf(IDConflict, "id", "id %q taken", "x"))
	if got := As(wrapped); got == nil || got.Code != IDConflict || got.Status() != 409 {
		t.Fatalf("As = %v", got)
	}
	for _, d := range Registry() {
		if d.Status < 400 || d.Status > 599 || d.Message == "" {
			t.Errorf("bad registry entry %+v", d)
		}
	}
}
