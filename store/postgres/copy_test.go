package postgres

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/fincore/fincore/ledger"
)

func testRecords(n int) []*ledger.Transfer {
	ts := make([]*ledger.Transfer, n)
	for i := range ts {
		var meta map[string]string
		if i%3 == 0 {
			meta = map[string]string{"i": strconv.Itoa(i), "note": "ünïcode \u0000 " + strconv.Itoa(i*i)}
		}
		ts[i] = &ledger.Transfer{ID: fmt.Sprintf("tr-%05d", i), DebitAccountID: "a", CreditAccountID: "b",
			Amount: int64(i + 1), Currency: "CNY", Code: "c" + strconv.Itoa(i%7), Pending: i%2 == 0, PendingID: "",
			TimeoutSeconds: int64(i % 5), ExpiresAt: ledger.Timestamp(i % 5 * 1000), Status: ledger.StatusPosted,
			Timestamp: ledger.Timestamp(1000 + i), Metadata: meta, PendingDelta: int64(-i), PostedDelta: int64(i) << 40,
			DebitBalances:  ledger.Balances{DebitsPending: 1, DebitsPosted: int64(i), CreditsPending: -3, CreditsPosted: 1<<63 - 1},
			CreditBalances: ledger.Balances{DebitsPending: -1 << 63, DebitsPosted: 6, CreditsPending: 7, CreditsPosted: int64(i)},
			ReqHash:        []byte{byte(i), 0, 255}, Hash: bytes.Repeat([]byte{byte(i)}, 32)}
		if i%2 == 0 {
			ts[i].Status = ledger.StatusPending
		}
	}
	return ts
}

// The encoder's stream does not depend on how the connection reads it.
func TestBinaryCopyChunking(t *testing.T) {
	recs := testRecords(500)
	want, err := io.ReadAll(copyTransfers(recs))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(want, []byte(copySignature)) || !bytes.HasSuffix(want, []byte{0xff, 0xff}) {
		t.Fatal("stream lacks its signature or trailer")
	}
	for _, size := range []int{1, 2, 7, 100, 333, 4096, 65531} {
		var got []byte
		r := copyTransfers(recs)
		p := make([]byte, size)
		for {
			n, err := r.Read(p)
			got = append(got, p[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("read size %d: no progress", size)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("read size %d: stream differs", size)
		}
	}
	empty, _ := io.ReadAll(copyAccounts(nil))
	if len(empty) != len(copySignature)+8+2 {
		t.Fatalf("empty stream is %d bytes", len(empty))
	}
}

// A large group, sent in many COPY messages, reads back exactly.
func TestCopyRoundTrip(t *testing.T) {
	_, s := migratedStore(t)
	tok, _ := s.AcquireWriter(bg, 0)
	recs := testRecords(3000)
	accts := []*ledger.Account{{ID: "a", Currency: "CNY", Timestamp: 1, ReqHash: []byte{1}}, {ID: "b", Currency: "CNY", Timestamp: 2}}
	if err := s.Commit(bg, tok, &ledger.Batch{NewAccounts: accts, Transfers: recs}); err != nil {
		t.Fatal(err)
	}
	var got []*ledger.Transfer
	for after := ledger.Timestamp(0); ; {
		page, err := s.ScanTransfers(bg, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].Timestamp
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, wrote %d", len(got), len(recs))
	}
	for i := range recs {
		if g, w := fmt.Sprintf("%+v", *got[i]), fmt.Sprintf("%+v", *recs[i]); g != w {
			t.Fatalf("record %d\n got %s\nwant %s", i, g, w)
		}
	}
	b, err := s.GetAccount(bg, "b")
	if err != nil || b.ReqHash == nil || len(b.ReqHash) != 0 {
		t.Fatalf("account b: %+v %v", b, err)
	}
}
