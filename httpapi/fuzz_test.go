package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// The fuzz tests feed arbitrary bytes through the real handler and engine (on an in-memory
// store) and check that the API never answers 5xx, always answers a JSON object holding a
// transfer or an error, and succeeds only for a body that an independent reference decoder
// (refTransfer, below: standard library plus the ledger's validation) finds valid.
//
//	go test ./httpapi -run '^$' -fuzz FuzzCreateTransfer -fuzztime 30s

// newFuzzServer returns the API over an engine on a memory store with accounts a, b (USD),
// e (EUR), w (USD, debits must not exceed credits) and a pending transfer p from a to b.
func newFuzzServer(f testing.TB) *Server {
	f.Helper()
	st := newMemStore()
	eng, err := ledger.Open(context.Background(), st, ledger.Config{ExpiryInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { eng.Close() })
	ctx := context.Background()
	res, err := eng.CreateAccounts(ctx, []ledger.AccountInput{
		{ID: "a", Currency: "USD"}, {ID: "b", Currency: "USD"}, {ID: "e", Currency: "EUR"},
		{ID: "w", Currency: "USD", Flags: ledger.Flags{DebitsMustNotExceedCredits: true}},
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			f.Fatal(r.Err)
		}
	}
	if _, _, err := eng.CreateTransfer(ctx, ledger.TransferInput{ID: "p", DebitAccountID: "a", CreditAccountID: "b", Amount: 1000, Currency: "USD", Pending: true}); err != nil {
		f.Fatal(err)
	}
	return NewServer(eng, Options{Logger: slog.New(slog.DiscardHandler)})
}

// serveRecorder sends body to path through the handler.
func serveRecorder(s *Server, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// serve sends body to path through the handler. An answer that takes longer than 10s is a
// hang: the test fails with every goroutine's stack.
func serve(t *testing.T, s *Server, path string, body []byte) *httptest.ResponseRecorder {
	var rec *httptest.ResponseRecorder
	done := make(chan struct{})
	go func() {
		defer close(done)
		rec = serveRecorder(s, path, body)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("no answer after 10s to %q\n%s", body, buf)
	}
	return rec
}

// checkResponse checks what every answer must satisfy and returns the decoded body.
func checkResponse(t *testing.T, rec *httptest.ResponseRecorder, body []byte) map[string]json.RawMessage {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q for %q", ct, body)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out == nil {
		t.Fatalf("response to %q is not a JSON object: %s", body, rec.Body)
	}
	if rec.Code >= 400 {
		var e errorObject
		if err := json.Unmarshal(out["error"], &e); err != nil || e.Code == "" || e.Message == "" || e.Type != apierror.TypeOf(rec.Code) {
			t.Fatalf("status %d without a proper error object: %s", rec.Code, rec.Body)
		}
	}
	return out
}

var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// refTransfer is the reference decoder: it decides from the standard library's view of body
// whether it is a valid transfer request (batch: a valid batch item) and returns it.
func refTransfer(body []byte, batch bool) (ledger.TransferInput, bool) {
	in, ok := refTransferShape(body, batch)
	return in, ok && ledger.ValidateTransfer(&in) == nil
}

// refTransferShape is refTransfer without the ledger's validation of values: it accepts what
// the API's decoder must accept (except for repeated fields, which a map cannot see).
func refTransferShape(body []byte, batch bool) (ledger.TransferInput, bool) {
	var in ledger.TransferInput
	if !utf8.Valid(body) || !json.Valid(body) {
		return in, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return in, false
	}
	str := func(raw json.RawMessage, dst *string) bool {
		if string(raw) == "null" {
			return true
		}
		return raw[0] == '"' && json.Unmarshal(raw, dst) == nil
	}
	integer := func(raw json.RawMessage, lo, hi int64, dst *int64) bool {
		if !integerLiteral.Match(raw) {
			return false
		}
		v, err := strconv.ParseInt(string(raw), 10, 64)
		*dst = v
		return err == nil && v >= lo && v <= hi
	}
	var action string
	hasAmount := false
	for k, raw := range m {
		ok := false
		switch k {
		case "id":
			ok = str(raw, &in.ID)
		case "debit_account_id":
			ok = str(raw, &in.DebitAccountID)
		case "credit_account_id":
			ok = str(raw, &in.CreditAccountID)
		case "currency":
			ok = str(raw, &in.Currency)
		case "code":
			ok = str(raw, &in.Code)
		case "amount":
			hasAmount = string(raw) != "null"
			ok = !hasAmount || integer(raw, 1, money.MaxAmount, &in.Amount)
		case "timeout_seconds":
			ok = string(raw) == "null" || integer(raw, 0, ledger.TimeoutSecondsMax, &in.TimeoutSeconds)
		case "pending":
			ok = string(raw) == "null" || json.Unmarshal(raw, &in.Pending) == nil && (raw[0] == 't' || raw[0] == 'f')
		case "metadata":
			var md map[string]*string
			ok = string(raw) == "null" || raw[0] == '{' && json.Unmarshal(raw, &md) == nil
			for k, v := range md {
				if v == nil {
					ok = false
					break
				}
				if in.Metadata == nil {
					in.Metadata = map[string]string{}
				}
				in.Metadata[k] = *v
			}
		case "action":
			ok = batch && str(raw, &action)
		case "pending_id":
			ok = batch && str(raw, &in.PendingID)
		}
		if !ok {
			return in, false
		}
	}
	if in.ID == "" {
		return in, false
	}
	switch action {
	case "":
		return in, hasAmount && in.DebitAccountID != "" && in.CreditAccountID != "" && in.Currency != "" && in.PendingID == ""
	case "post", "void":
		in.Action = ledger.Action(action)
		return in, in.PendingID != "" && in.DebitAccountID == "" && in.CreditAccountID == "" && in.Currency == "" &&
			in.Code == "" && !in.Pending && in.TimeoutSeconds == 0 && (in.Action == ledger.ActionPost || !hasAmount)
	}
	return in, false
}

// sameTransfer reports whether a created transfer carries what was asked.
func sameTransfer(in ledger.TransferInput, tr ledger.Transfer) bool {
	if tr.ID != in.ID || tr.Timestamp == 0 {
		return false
	}
	if in.Action != ledger.ActionCreate {
		return tr.PendingID == in.PendingID
	}
	return tr.DebitAccountID == in.DebitAccountID && tr.CreditAccountID == in.CreditAccountID &&
		tr.Amount == in.Amount && tr.Currency == in.Currency && tr.Code == in.Code && tr.Pending == in.Pending
}

// decodeTransferJSON reads a transfer response (Timestamp parses RFC 3339).
func decodeTransferJSON(t *testing.T, raw []byte) ledger.Transfer {
	t.Helper()
	var tr ledger.Transfer
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatalf("transfer %s: %v", raw, err)
	}
	return tr
}

func FuzzCreateTransfer(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		`{"id":"t1","debit_account_id":"a","credit_account_id":"b","amount":100,"currency":"USD"}`,
		`{"id":"t2","debit_account_id":"a","credit_account_id":"b","amount":9007199254740991,"currency":"USD","code":"x","metadata":{"k":"v"}}`,
		`{"id":"t3","debit_account_id":"b","credit_account_id":"a","amount":5,"currency":"USD","pending":true,"timeout_seconds":60}`,
		`{"id":"t4","debit_account_id":"w","credit_account_id":"a","amount":5,"currency":"USD"}`,
		`{"id":"t5","debit_account_id":"a","credit_account_id":"e","amount":5,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1.5,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":"100","currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1e2,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":0,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":-1,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":9007199254740992,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD","Amount":1}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1,"amount":2,"currency":"USD"}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD"} x`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD","metadata":{"k":1}}`,
		`{"id":"t6","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD","pending":"true"}`,
		`{"id":"t\u0036","debit_account_id":null,"credit_account_id":"b","amount":1,"currency":"USD"}`,
		`[]`, `null`, `{}`, `{"id":`, "", "\xff",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(t, s, "/v1/transfers", body)
		out := checkResponse(t, rec, body)
		if rec.Code >= 400 {
			var e errorObject
			json.Unmarshal(out["error"], &e)
			if want := apierror.Lookup(apierror.Code(e.Code)).Status; want != rec.Code {
				t.Fatalf("status %d for code %s (registry: %d)", rec.Code, e.Code, want)
			}
			return
		}
		in, valid := refTransfer(body, false)
		if !valid {
			t.Fatalf("status %d for an invalid body %q: %s", rec.Code, body, rec.Body)
		}
		if tr := decodeTransferJSON(t, rec.Body.Bytes()); !sameTransfer(in, tr) {
			t.Fatalf("transfer %s does not match the request %q", rec.Body, body)
		}
	})
}

func FuzzBatch(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		`{"atomic":true,"transfers":[{"id":"b1","debit_account_id":"a","credit_account_id":"b","amount":100,"currency":"USD"}]}`,
		`{"atomic":false,"transfers":[{"id":"b2","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD"},{"id":"b3","debit_account_id":"a","credit_account_id":"nope","amount":1,"currency":"USD"}]}`,
		`{"atomic":true,"transfers":[{"id":"b4","debit_account_id":"a","credit_account_id":"b","amount":5,"currency":"USD","pending":true},{"action":"post","id":"b5","pending_id":"b4","amount":3}]}`,
		`{"atomic":false,"transfers":[{"action":"void","id":"b6","pending_id":"p"},{"action":"post","id":"b7","pending_id":"p"}]}`,
		`{"atomic":true,"transfers":[{"id":"b8","debit_account_id":"w","credit_account_id":"b","amount":1,"currency":"USD"}]}`,
		`{"atomic":true,"transfers":[{"id":"b9","debit_account_id":"a","credit_account_id":"b","amount":1.5,"currency":"USD"}]}`,
		`{"atomic":true,"transfers":[{"action":"void","id":"b10","pending_id":"p","amount":1}]}`,
		`{"atomic":"yes","transfers":[]}`,
		`{"transfers":[null]}`,
		`{"atomic":false,"transfers":[{}]}`,
		`{"atomic":false,"transfers":{}}`,
		`{"atomic":false}`,
		`{`, `[`, `null`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(t, s, "/v1/transfer_batches", body)
		out := checkResponse(t, rec, body)
		if rec.Code >= 400 {
			return
		}
		// A 2xx: the body must be a valid batch, by the reference decoder.
		var m map[string]json.RawMessage
		if !utf8.Valid(body) || !json.Valid(body) || json.Unmarshal(body, &m) != nil || m == nil {
			t.Fatalf("status %d for a body that is not a JSON object: %q", rec.Code, body)
		}
		var atomic bool
		var items []json.RawMessage
		for k := range m {
			if k != "atomic" && k != "transfers" {
				t.Fatalf("status %d with unknown field %q: %q", rec.Code, k, body)
			}
		}
		if a := string(m["atomic"]); a != "true" && a != "false" {
			t.Fatalf("status %d with atomic %q", rec.Code, a)
		}
		atomic = string(m["atomic"]) == "true"
		if err := json.Unmarshal(m["transfers"], &items); err != nil || len(items) == 0 || len(items) > ledger.BatchMax {
			t.Fatalf("status %d with transfers %q", rec.Code, m["transfers"])
		}
		var res struct {
			Data []struct {
				Status   int             `json:"status"`
				Transfer json.RawMessage `json:"transfer"`
				Error    *errorObject    `json:"error"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out["data"], &res.Data); err != nil || len(res.Data) != len(items) {
			t.Fatalf("%d results for %d items: %s", len(res.Data), len(items), rec.Body)
		}
		for i, raw := range items {
			in, valid := refTransfer(raw, true)
			d := res.Data[i]
			if d.Status >= 500 {
				t.Fatalf("item %d status %d: %s", i, d.Status, rec.Body)
			}
			if d.Status >= 400 {
				if atomic || d.Error == nil || d.Transfer != nil || apierror.Lookup(apierror.Code(d.Error.Code)).Status != d.Status {
					t.Fatalf("item %d: bad error result in %s", i, rec.Body)
				}
				// An item the reference finds invalid may only fail the ledger's own
				// validation (a shape error would have rejected the whole request).
				if !valid && d.Error.Code != string(apierror.InvalidRequest) && d.Error.Code != string(apierror.SameAccount) {
					t.Fatalf("item %d: an invalid item got %s: %q", i, d.Error.Code, raw)
				}
				continue
			}
			if !valid {
				t.Fatalf("item %d applied (status %d) though invalid: %q", i, d.Status, raw)
			}
			if tr := decodeTransferJSON(t, d.Transfer); !sameTransfer(in, tr) {
				t.Fatalf("item %d: transfer %s does not match %q", i, d.Transfer, raw)
			}
		}
	})
}

func FuzzCreateAccount(f *testing.F) {
	s := newFuzzServer(f)
	for _, seed := range []string{
		`{"currency":"USD"}`,
		`{"id":"x1","currency":"EUR","code":"c","flags":{"debits_must_not_exceed_credits":true},"metadata":{"k":"v"}}`,
		`{"id":"x1","currency":"EUR"}`,
		`{"id":"a","currency":"USD"}`,
		`{"currency":"USD","flags":{"debits_must_not_exceed_credits":true,"credits_must_not_exceed_debits":true}}`,
		`{"currency":"usd"}`, `{"currency":"FUNDUNITS"}`, `{"currency":1}`, `{"flags":null,"currency":"USD"}`,
		`{"currency":"USD","balance":1}`, `{}`, `null`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(t, s, "/v1/accounts", body)
		out := checkResponse(t, rec, body)
		if rec.Code >= 400 {
			return
		}
		var a ledger.Account
		if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.ID == "" || !money.ValidCode(a.Currency) {
			t.Fatalf("account %s: %v", rec.Body, err)
		}
		if _, ok := out["balances"]; !ok {
			t.Fatalf("account without balances: %s", rec.Body)
		}
		var m map[string]json.RawMessage
		if !utf8.Valid(body) || !json.Valid(body) || json.Unmarshal(body, &m) != nil {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		for k := range m {
			switch k {
			case "id", "currency", "code", "flags", "metadata":
			default:
				t.Fatalf("status %d with unknown field %q", rec.Code, k)
			}
		}
	})
}

// FuzzDecodeTransfer compares the API's decoder with the reference decoder in both
// directions, without the engine (so it runs fast): whatever one accepts the other accepts,
// with the same result.
func FuzzDecodeTransfer(f *testing.F) {
	for _, seed := range []string{
		`{"id":"t1","debit_account_id":"a","credit_account_id":"b","amount":100,"currency":"USD"}`,
		`{"id":"t\u0031","debit_account_id":"a","credit_account_id":"b","amount":1,"currency":"USD","code":null,"pending":true,"timeout_seconds":0,"metadata":{"k":"v\n"}}`,
		`{"id":"t1","amount":1,"amount":2}`,
		`{"id":"t1","debit_account_id":"a","credit_account_id":"b","amount":1.0,"currency":"USD"}`,
		` {"metadata":{"a":{"b":[1,"}"]}}} `,
		`{"action":"post","id":"x","pending_id":"p"}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, batch bool) {
		var in ledger.TransferInput
		var e *apierror.Error
		if batch {
			ins, _, be := decodeBatch([]byte(`{"atomic":true,"transfers":[` + string(body) + `]}`))
			if e = be; e == nil {
				if len(ins) != 1 {
					// body held several items: the reference decodes one object only.
					return
				}
				in = ins[0]
			}
		} else {
			in, e = decodeTransfer(body)
		}
		ref, ok := refTransferShape(body, batch)
		switch {
		case e == nil && !ok:
			t.Fatalf("accepted %q, which the reference refuses (decoded %+v)", body, in)
		case e == nil && fmt.Sprint(in) != fmt.Sprint(ref):
			t.Fatalf("%q decoded as %+v, the reference says %+v", body, in, ref)
		case e != nil && ok && !strings.Contains(e.Message, "more than once"):
			t.Fatalf("refused %q (%v), which the reference accepts as %+v", body, e, ref)
		case e != nil && (e.Status() != 400 || e.Message == ""):
			t.Fatalf("refused %q with %v", body, e)
		}
	})
}
