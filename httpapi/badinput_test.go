package httpapi

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fincore/fincore/ledger"
)

// TestBadInputChangesNothing sends malformed and invalid requests and checks the status,
// code and param of each answer, and that nothing changed: balances, histories and the
// number of journal records are the same before and after, and the ids used do not exist.
func TestBadInputChangesNothing(t *testing.T) {
	a := newTestAPI(t)
	a.mustAccount("a", "USD", ledger.Flags{})
	a.mustAccount("b", "USD", ledger.Flags{})
	a.mustTransfer("seed", "a", "b", 10)
	a.mustTransfer("p", "a", "b", 10, "pending", true)

	// tr is a valid transfer body with field k replaced by the raw JSON v (or removed if v
	// is "").
	tr := func(k, v string) string {
		fields := [][2]string{
			{"id", `"bad1"`}, {"debit_account_id", `"a"`}, {"credit_account_id", `"b"`},
			{"amount", `100`}, {"currency", `"USD"`},
		}
		var parts []string
		found := false
		for _, f := range fields {
			if f[0] == k {
				found = true
				if v == "" {
					continue
				}
				f[1] = v
			}
			parts = append(parts, fmt.Sprintf("%q:%s", f[0], f[1]))
		}
		if !found {
			parts = append(parts, fmt.Sprintf("%q:%s", k, v))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	item := `{"id":"bad1","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD"}`
	batch := func(atomic string, items ...string) string {
		return `{"atomic":` + atomic + `,"transfers":[` + strings.Join(items, ",") + `]}`
	}
	huge := `{"id":"bad1","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD","metadata":{"k":"` +
		strings.Repeat("x", 1<<20) + `"}}`
	var tooMany strings.Builder
	tooMany.WriteString(`{"atomic":false,"transfers":[`)
	for i := range ledger.BatchMax + 1 {
		if i > 0 {
			tooMany.WriteByte(',')
		}
		fmt.Fprintf(&tooMany, `{"id":"bad%d","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD"}`, i)
	}
	tooMany.WriteString(`]}`)

	const (
		T = "/v1/transfers"
		A = "/v1/accounts"
		B = "/v1/transfer_batches"
		P = "/v1/transfers/p/post"
		V = "/v1/transfers/p/void"
	)
	cases := []struct {
		name, path, body string
		contentType      string // "" means application/json; "-" sends none
		chunked          bool   // send without Content-Length
		status           int
		code, param      string
	}{
		// Syntax and framing.
		{name: "malformed JSON", path: T, body: `{"id":`, status: 400, code: "invalid_request"},
		{name: "not JSON", path: T, body: `id=bad1&amount=1`, status: 400, code: "invalid_request"},
		{name: "array body", path: T, body: `[]`, status: 400, code: "invalid_request"},
		{name: "string body", path: T, body: `"x"`, status: 400, code: "invalid_request"},
		{name: "null body", path: T, body: `null`, status: 400, code: "invalid_request"},
		{name: "empty body", path: T, body: ``, status: 400, code: "invalid_request"},
		{name: "blank body", path: T, body: "  \n", status: 400, code: "invalid_request"},
		{name: "trailing garbage", path: T, body: tr("amount", "100") + ` x`, status: 400, code: "invalid_request"},
		{name: "trailing object", path: T, body: tr("amount", "100") + `{}`, status: 400, code: "invalid_request"},
		{name: "trailing comma", path: T, body: `{"id":"bad1",}`, status: 400, code: "invalid_request"},
		{name: "invalid UTF-8", path: T, body: tr("code", "\"\xff\""), status: 400, code: "invalid_request"},
		{name: "unknown field", path: T, body: tr("foo", `1`), status: 400, code: "invalid_request", param: "foo"},
		{name: "field in other case", path: T, body: tr("Amount", `100`), status: 400, code: "invalid_request", param: "Amount"},
		{name: "duplicate field", path: T, body: tr("amount", `1`)[:len(tr("amount", `1`))-1] + `,"amount":1000000}`, status: 400, code: "invalid_request", param: "amount"},
		{name: "pending_id on create", path: T, body: tr("pending_id", `"p"`), status: 400, code: "invalid_request", param: "pending_id"},
		{name: "query on POST", path: T + "?dry_run=1", body: tr("amount", "100"), status: 400, code: "invalid_request", param: "dry_run"},

		// Media type and size.
		{name: "text/plain", path: T, body: tr("amount", "100"), contentType: "text/plain", status: 415, code: "unsupported_media_type"},
		{name: "form", path: T, body: tr("amount", "100"), contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type"},
		{name: "latin-1", path: T, body: tr("amount", "100"), contentType: "application/json; charset=latin1", status: 415, code: "unsupported_media_type"},
		{name: "bad content type", path: T, body: tr("amount", "100"), contentType: "json;;", status: 415, code: "unsupported_media_type"},
		{name: "body over 1 MiB", path: T, body: huge, status: 413, code: "request_too_large"},
		{name: "body over 1 MiB chunked", path: T, body: huge, chunked: true, status: 413, code: "request_too_large"},
		{name: "body over 1 MiB of spaces", path: T, body: tr("amount", "100") + strings.Repeat(" ", 1<<20), chunked: true, status: 413, code: "request_too_large"},

		// Amounts.
		{name: "amount zero", path: T, body: tr("amount", `0`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount minus zero", path: T, body: tr("amount", `-0`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount negative", path: T, body: tr("amount", `-5`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount 2^53", path: T, body: tr("amount", `9007199254740992`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount over int64", path: T, body: tr("amount", `99999999999999999999`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount 1.5", path: T, body: tr("amount", `1.5`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount 1.0", path: T, body: tr("amount", `1.0`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount 1e2", path: T, body: tr("amount", `1e2`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount string", path: T, body: tr("amount", `"100"`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount bool", path: T, body: tr("amount", `true`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount null", path: T, body: tr("amount", `null`), status: 400, code: "invalid_request", param: "amount"},
		{name: "amount missing", path: T, body: tr("amount", ``), status: 400, code: "invalid_request", param: "amount"},

		// Other fields.
		{name: "id missing", path: T, body: tr("id", ``), status: 400, code: "invalid_request", param: "id"},
		{name: "id number", path: T, body: tr("id", `5`), status: 400, code: "invalid_request", param: "id"},
		{name: "id with a slash", path: T, body: tr("id", `"a/b"`), status: 400, code: "invalid_request", param: "id"},
		{name: "debit account bool", path: T, body: tr("debit_account_id", `true`), status: 400, code: "invalid_request", param: "debit_account_id"},
		{name: "credit account missing", path: T, body: tr("credit_account_id", ``), status: 400, code: "invalid_request", param: "credit_account_id"},
		{name: "currency array", path: T, body: tr("currency", `["USD"]`), status: 400, code: "invalid_request", param: "currency"},
		{name: "currency unknown", path: T, body: tr("currency", `"XYZ"`), status: 400, code: "invalid_request", param: "currency"},
		{name: "pending as string", path: T, body: tr("pending", `"true"`), status: 400, code: "invalid_request", param: "pending"},
		{name: "pending as number", path: T, body: tr("pending", `1`), status: 400, code: "invalid_request", param: "pending"},
		{name: "timeout 1.5", path: T, body: tr("timeout_seconds", `1.5`), status: 400, code: "invalid_request", param: "timeout_seconds"},
		{name: "timeout negative", path: T, body: tr("timeout_seconds", `-1`), status: 400, code: "invalid_request", param: "timeout_seconds"},
		{name: "timeout without pending", path: T, body: tr("timeout_seconds", `5`), status: 400, code: "invalid_request", param: "timeout_seconds"},
		{name: "metadata string", path: T, body: tr("metadata", `"x"`), status: 400, code: "invalid_request", param: "metadata"},
		{name: "metadata number value", path: T, body: tr("metadata", `{"k":1}`), status: 400, code: "invalid_request", param: "metadata.k"},
		{name: "metadata null value", path: T, body: tr("metadata", `{"k":null}`), status: 400, code: "invalid_request", param: "metadata.k"},
		{name: "metadata value too long", path: T, body: tr("metadata", `{"k":"`+strings.Repeat("v", 501)+`"}`), status: 400, code: "invalid_request", param: "metadata.k"},
		{name: "code too long", path: T, body: tr("code", `"`+strings.Repeat("c", 65)+`"`), status: 400, code: "invalid_request", param: "code"},

		// Rules (valid shape, refused by the ledger).
		{name: "unknown debit account", path: T, body: tr("debit_account_id", `"nope"`), status: 404, code: "account_not_found", param: "debit_account_id"},
		{name: "unknown credit account", path: T, body: tr("credit_account_id", `"nope"`), status: 404, code: "account_not_found", param: "credit_account_id"},
		{name: "same account", path: T, body: tr("credit_account_id", `"a"`), status: 422, code: "same_account", param: "credit_account_id"},
		{name: "currency mismatch", path: T, body: tr("currency", `"EUR"`), status: 422, code: "currency_mismatch", param: "currency"},
		{name: "id conflict", path: T, body: strings.Replace(tr("amount", "11"), "bad1", "seed", 1), status: 409, code: "id_conflict", param: "id"},

		// Accounts.
		{name: "account currency missing", path: A, body: `{"id":"newacc"}`, status: 400, code: "invalid_request", param: "currency"},
		{name: "account currency invalid", path: A, body: `{"id":"newacc","currency":"US"}`, status: 400, code: "invalid_request", param: "currency"},
		{name: "account flags string", path: A, body: `{"id":"newacc","currency":"USD","flags":"yes"}`, status: 400, code: "invalid_request", param: "flags"},
		{name: "account flag as string", path: A, body: `{"id":"newacc","currency":"USD","flags":{"debits_must_not_exceed_credits":"true"}}`, status: 400, code: "invalid_request", param: "flags.debits_must_not_exceed_credits"},
		{name: "account unknown flag", path: A, body: `{"id":"newacc","currency":"USD","flags":{"overdraft":true}}`, status: 400, code: "invalid_request", param: "flags.overdraft"},
		{name: "account both flags", path: A, body: `{"id":"newacc","currency":"USD","flags":{"debits_must_not_exceed_credits":true,"credits_must_not_exceed_debits":true}}`, status: 400, code: "invalid_request", param: "flags"},
		{name: "account unknown field", path: A, body: `{"id":"newacc","currency":"USD","balance":100}`, status: 400, code: "invalid_request", param: "balance"},
		{name: "account id conflict", path: A, body: `{"id":"a","currency":"EUR"}`, status: 409, code: "id_conflict", param: "id"},

		// Post and void.
		{name: "post amount zero", path: P, body: `{"id":"bad1","amount":0}`, status: 400, code: "invalid_request", param: "amount"},
		{name: "post amount string", path: P, body: `{"id":"bad1","amount":"5"}`, status: 400, code: "invalid_request", param: "amount"},
		{name: "post amount fraction", path: P, body: `{"id":"bad1","amount":2.5}`, status: 400, code: "invalid_request", param: "amount"},
		{name: "post id missing", path: P, body: `{"amount":5}`, status: 400, code: "invalid_request", param: "id"},
		{name: "post with accounts", path: P, body: `{"id":"bad1","debit_account_id":"a"}`, status: 400, code: "invalid_request", param: "debit_account_id"},
		{name: "post over pending", path: P, body: `{"id":"bad1","amount":11}`, status: 422, code: "amount_exceeds_pending", param: "amount"},
		{name: "post unknown pending", path: "/v1/transfers/nope/post", body: `{"id":"bad1"}`, status: 404, code: "pending_not_found", param: "pending_id"},
		{name: "post a posted transfer", path: "/v1/transfers/seed/post", body: `{"id":"bad1"}`, status: 404, code: "pending_not_found", param: "pending_id"},
		{name: "void with amount", path: V, body: `{"id":"bad1","amount":5}`, status: 400, code: "invalid_request", param: "amount"},
		{name: "void empty object", path: V, body: `{}`, status: 400, code: "invalid_request", param: "id"},

		// Batches.
		{name: "batch of 8191", path: B, body: tooMany.String(), status: 400, code: "batch_too_large", param: "transfers"},
		{name: "batch empty", path: B, body: batch("true"), status: 400, code: "invalid_request", param: "transfers"},
		{name: "batch without transfers", path: B, body: `{"atomic":true}`, status: 400, code: "invalid_request", param: "transfers"},
		{name: "batch transfers object", path: B, body: `{"atomic":true,"transfers":{}}`, status: 400, code: "invalid_request", param: "transfers"},
		{name: "batch without atomic", path: B, body: `{"transfers":[` + item + `]}`, status: 400, code: "invalid_request", param: "atomic"},
		{name: "batch atomic string", path: B, body: `{"atomic":"true","transfers":[` + item + `]}`, status: 400, code: "invalid_request", param: "atomic"},
		{name: "batch unknown field", path: B, body: `{"atomic":true,"linked":true,"transfers":[` + item + `]}`, status: 400, code: "invalid_request", param: "linked"},
		{name: "batch item amount 1.5", path: B, body: batch("true", item, item, item, strings.Replace(item, `"amount":1`, `"amount":1.5`, 1)), status: 400, code: "invalid_request", param: "transfers[3].amount"},
		{name: "non-atomic batch item amount string", path: B, body: batch("false", item, strings.Replace(item, `"amount":1`, `"amount":"1"`, 1)), status: 400, code: "invalid_request", param: "transfers[1].amount"},
		{name: "batch item amount missing", path: B, body: batch("false", strings.Replace(item, `"amount":1,`, ``, 1)), status: 400, code: "invalid_request", param: "transfers[0].amount"},
		{name: "batch item null", path: B, body: batch("false", item, `null`), status: 400, code: "invalid_request", param: "transfers[1]"},
		{name: "batch item array", path: B, body: batch("false", `[]`), status: 400, code: "invalid_request", param: "transfers[0]"},
		{name: "batch item unknown field", path: B, body: batch("false", strings.Replace(item, `{`, `{"flags":1,`, 1)), status: 400, code: "invalid_request", param: "transfers[0].flags"},
		{name: "batch item bad action", path: B, body: batch("false", `{"action":"create","id":"bad1","pending_id":"p"}`), status: 400, code: "invalid_request", param: "transfers[0].action"},
		{name: "batch post without pending_id", path: B, body: batch("false", `{"action":"post","id":"bad1"}`), status: 400, code: "invalid_request", param: "transfers[0].pending_id"},
		{name: "batch post with accounts", path: B, body: batch("false", item, `{"action":"post","id":"bad2","pending_id":"p","debit_account_id":"a"}`), status: 400, code: "invalid_request", param: "transfers[1].debit_account_id"},
		{name: "batch post amount zero", path: B, body: batch("false", `{"action":"post","id":"bad2","pending_id":"p","amount":0}`), status: 400, code: "invalid_request", param: "transfers[0].amount"},
		{name: "batch void with amount", path: B, body: batch("false", `{"action":"void","id":"bad2","pending_id":"p","amount":5}`), status: 400, code: "invalid_request", param: "transfers[0].amount"},
		{name: "batch create with pending_id", path: B, body: batch("false", strings.Replace(item, `{`, `{"pending_id":"p",`, 1)), status: 400, code: "invalid_request", param: "transfers[0].pending_id"},
		{name: "batch truncated", path: B, body: batch("false", item)[:60], status: 400, code: "invalid_request"},
		{name: "atomic batch unknown account at 1", path: B, body: batch("true", item, strings.NewReplacer(`"b"`, `"nope"`, "bad1", "bad2").Replace(item)), status: 422, code: "account_not_found", param: "1"},
	}
	before := a.snapshot("a", "b")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(c.body)
			if c.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest("POST", a.srv.URL+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			switch c.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", c.contentType)
			}
			a.send(req).wantError(t, c.status, c.code, c.param)
			for _, id := range []string{"bad1", "bad2"} {
				a.do("GET", "/v1/transfers/"+id, "").wantError(t, 404, "transfer_not_found", "id")
			}
			a.do("GET", "/v1/accounts/newacc", "").wantError(t, 404, "account_not_found", "id")
			if after := a.snapshot("a", "b"); !after.equal(before) {
				t.Fatalf("state changed:\n%+v\n%+v", before, after)
			}
		})
	}

	// A body without a Content-Type is accepted: only a Content-Type that says the body is
	// something other than JSON is refused.
	req, _ := http.NewRequest("POST", a.srv.URL+T, strings.NewReader(tr("id", `"ok1"`)))
	a.send(req).wantStatus(t, 201)
}
