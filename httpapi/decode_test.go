package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fincore/fincore/ledger"
)

// TestDecodeTransferSyntax feeds the decoder JSON that a lenient tokenizer might let
// through, and checks what it makes of valid bodies.
func TestDecodeTransferSyntax(t *testing.T) {
	const ok = `{"id":"t1","debit_account_id":"a","credit_account_id":"b","amount":5,"currency":"USD"}`
	for _, body := range []string{
		`{"id":"t1" "debit_account_id":"a"}`,
		`{"id":"t1",,"debit_account_id":"a"}`,
		`{"id"}`,
		`{"id":}`,
		`{,"id":"t1"}`,
		`{"id":"t1"]`,
		`{"id":"t1",}`,
		`{'id':'t1'}`,
		`{id:"t1"}`,
		`{"id":"t1"`,
		"\ufeff" + ok,
		ok + ok,
		ok + `]`,
		ok + `,`,
		`{"amount":05}`,
		`{"amount":+5}`,
		`{"amount":0x10}`,
		`{"amount":Infinity}`,
		`{"amount":NaN}`,
		`{"id":"t\x01"}`,
	} {
		if _, e := decodeTransfer([]byte(body)); e == nil {
			t.Errorf("accepted %q", body)
		}
	}

	in, e := decodeTransfer([]byte(" \n" + strings.Replace(ok, `"t1"`, `"t\u0031"`, 1) + "\n\t "))
	if e != nil {
		t.Fatalf("valid body refused: %v", e)
	}
	want := ledger.TransferInput{ID: "t1", DebitAccountID: "a", CreditAccountID: "b", Amount: 5, Currency: "USD"}
	if fmt.Sprint(in) != fmt.Sprint(want) {
		t.Fatalf("decoded %+v, want %+v", in, want)
	}
	in, e = decodeTransfer([]byte(`{"id":"t1","debit_account_id":"a","credit_account_id":"b","amount":9007199254740991,"currency":"USD",
		"code":null,"pending":true,"timeout_seconds":60,"metadata":{"k":"v","k2":""}}`))
	if e != nil || in.Amount != 9007199254740991 || !in.Pending || in.TimeoutSeconds != 60 || in.Metadata["k"] != "v" || len(in.Metadata) != 2 {
		t.Fatalf("decoded %+v, %v", in, e)
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	cases := []struct{ body, param string }{
		{`{"metadata":{"k":"v","k":"w"}}`, "metadata.k"},
		{`{"metadata":{"a":{"b":1}}}`, "metadata.a"},
		{`{"metadata":[]}`, "metadata"},
		{`{"id":"t1","id":"t1"}`, "id"},
		{`{"ID":"t1"}`, "ID"},
		{`{"` + strings.Repeat("k", 1000) + `":1}`, strings.Repeat("k", paramMax) + "..."},
	}
	for _, c := range cases {
		_, e := decodeTransfer([]byte(c.body))
		if e == nil || e.Param != c.param {
			t.Errorf("%.60q: got %v, want param %q", c.body, e, c.param)
		}
	}
}

func BenchmarkDecodeTransfer(b *testing.B) {
	body := []byte(`{"id":"t_0123456789","debit_account_id":"acc_debit_1","credit_account_id":"acc_credit_1","amount":12345,"currency":"USD","code":"purchase","metadata":{"order":"o-1"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, e := decodeTransfer(body); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkDecodeBatch100(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"atomic":true,"transfers":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":"t_%010d","debit_account_id":"acc_debit_1","credit_account_id":"acc_credit_1","amount":12345,"currency":"USD"}`, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, e := decodeBatch(body); e != nil {
			b.Fatal(e)
		}
	}
}

func BenchmarkHandlerBatch100(b *testing.B) {
	s := newFuzzServer(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var sb strings.Builder
		sb.WriteString(`{"atomic":true,"transfers":[`)
		for j := range 100 {
			if j > 0 {
				sb.WriteByte(',')
			}
			i++
			fmt.Fprintf(&sb, `{"id":"t_%010d","debit_account_id":"a","credit_account_id":"b","amount":12345,"currency":"USD"}`, i)
		}
		sb.WriteString(`]}`)
		rec := serveRecorder(s, "/v1/transfer_batches", []byte(sb.String()))
		if rec.Code != 201 {
			b.Fatal(rec.Code, rec.Body)
		}
	}
}
