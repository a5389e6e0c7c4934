package payment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// awkward are pieces of strings that JSON escapes or replaces.
var awkward = []string{"a", "Z9", "<", ">", "&", `"`, `\`, "\n", "\r", "\t", "\b", "\f", "\x01", "\x1f", "\x7f",
	"\u2028", "\u2029", "é", "日本", "\xff", "\xe2\x82", "💳", " ", "_-."}

func randString(r *rand.Rand, max int) string {
	var sb strings.Builder
	for range r.IntN(max + 1) {
		sb.WriteString(awkward[r.IntN(len(awkward))])
	}
	return sb.String()
}

func randTime(r *rand.Rand) time.Time {
	switch r.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	default:
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
	}
}

// randPayment makes payments with every field set or not, awkward strings, and nil and empty
// metadata and attempts.
func randPayment(r *rand.Rand) Payment {
	p := Payment{ID: randString(r, 4), MerchantID: randString(r, 3), Amount: r.Int64N(1 << 53), Currency: randString(r, 2),
		CardID: randString(r, 6), Description: randString(r, 5), Status: Status(randString(r, 2)), FailureCode: randString(r, 2),
		Fee: r.Int64N(1 << 40), Refunded: r.Int64N(1 << 40), RefundPending: r.Int64N(3) - 1, Created: randTime(r), Updated: randTime(r),
		ReqHash: randString(r, 2)}
	if r.IntN(4) > 0 {
		p.Metadata = map[string]string{}
		for range r.IntN(5) {
			p.Metadata[randString(r, 3)] = randString(r, 4)
		}
	}
	if r.IntN(4) > 0 {
		p.Attempts = []Attempt{}
		for i := range r.IntN(4) {
			p.Attempts = append(p.Attempts, Attempt{N: i + 1, Channel: randString(r, 2), Bank: randString(r, 1), BankID: randString(r, 3),
				Status: randString(r, 2), Code: randString(r, 2), RawCode: randString(r, 1), ChannelRef: randString(r, 3), At: randTime(r)})
		}
	}
	return p
}

func TestPaymentJSONIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		p := randPayment(r)
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendPaymentJSON(nil, &p); !bytes.Equal(got, want) {
			t.Fatalf("payment %d:\n got %s\nwant %s", i, got, want)
		}
		at := randTime(r)
		if got, want := appendPaymentEventJSON(nil, p.ID, "payment.succeeded", at, &p), eventPayload(p.ID, "payment.succeeded", at, p); !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
		in := PaymentInput{ID: p.ID, MerchantID: p.MerchantID, Amount: p.Amount, Currency: p.Currency, CardID: p.CardID,
			Description: p.Description, Metadata: p.Metadata}
		b, _ := json.Marshal(&in)
		h := sha256.Sum256(b)
		if got, want := in.hash(), hex.EncodeToString(h[:16]); got != want {
			t.Fatalf("request hash %d: %s, want %s (the fingerprint of stored payments)", i, got, want)
		}
	}
}

// normalized is p as a round trip through the stored form gives it back.
func normalized(p Payment) Payment {
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	if p.Attempts == nil {
		p.Attempts = []Attempt{}
	}
	return p
}

func TestPaymentStoredFormRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 3000 {
		p := randPayment(r)
		b := encodePayment(&p)
		if b[0] != paymentFormat1 {
			t.Fatalf("format byte %d", b[0])
		}
		var got Payment
		if err := decodePayment(b, &got); err != nil {
			t.Fatalf("payment %d: %v", i, err)
		}
		if want := normalized(p); !reflect.DeepEqual(got, want) {
			t.Fatalf("payment %d:\n got %+v\nwant %+v", i, got, want)
		}
		// Every truncation and a trailing byte are refused, never read as another payment.
		for n := range len(b) {
			if err := decodePayment(b[:n], &got); err == nil {
				t.Fatalf("payment %d cut to %d of %d bytes was read", i, n, len(b))
			}
		}
		if err := decodePayment(append(b, 0), &got); err == nil {
			t.Fatalf("payment %d with a trailing byte was read", i)
		}
	}
}

// oldPaymentJSON is a payment record as stored before the binary form.
const oldPaymentJSON = `{"id":"p1","merchant_id":"m1","amount":1000,"currency":"CNY","card_id":"card_0123","metadata":{"order":"A<1>"},` +
	`"status":"succeeded","fee":6,"amount_refunded":100,"amount_refund_pending":0,"attempts":[{"n":1,"channel":"bank-a","bank":"ICBC",` +
	`"bank_id":"p1.1","status":"succeeded","code":"approved","raw_code":"00","channel_ref":"ref9","at":"2026-12-05T10:00:00.123456789Z"}],` +
	`"created":"2026-12-05T09:59:59.5Z","updated":"2026-12-05T10:00:00.123456789Z","req_hash":"00112233445566778899aabbccddeeff"}`

func TestOldJSONPaymentRecordsAreRead(t *testing.T) {
	var p Payment
	if err := decodePayment([]byte(oldPaymentJSON), &p); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	want := Payment{ID: "p1", MerchantID: "m1", Amount: 1000, Currency: "CNY", CardID: "card_0123", Metadata: map[string]string{"order": "A<1>"},
		Status: StatusSucceeded, Fee: 6, Refunded: 100, Attempts: []Attempt{{N: 1, Channel: "bank-a", Bank: "ICBC", BankID: "p1.1",
			Status: "succeeded", Code: "approved", RawCode: "00", ChannelRef: "ref9", At: at}},
		Created: time.Date(2026, 12, 5, 9, 59, 59, 5e8, time.UTC), Updated: at, ReqHash: "00112233445566778899aabbccddeeff"}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
	// Written again, it takes the binary form and reads back the same.
	var again Payment
	if err := decodePayment(encodePayment(&p), &again); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("rewritten: %+v, %v", again, err)
	}
	for _, bad := range []string{"", "\x02", "[]", "{"} {
		if err := decodePayment([]byte(bad), &p); err == nil {
			t.Errorf("%q was read as a payment", bad)
		}
	}
}

func FuzzDecodePayment(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 8 {
		p := randPayment(r)
		f.Add(encodePayment(&p))
	}
	f.Add([]byte(oldPaymentJSON))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Payment
		if decodePayment(b, &p) != nil || len(b) == 0 || b[0] != paymentFormat1 {
			return
		}
		// What is read writes back to the same bytes, but for the order of the metadata.
		var again Payment
		if err := decodePayment(encodePayment(&p), &again); err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%+v rewritten: %+v, %v", p, again, err)
		}
	})
}

func TestOpenedCardIsEncodingJSONs(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 3000 {
		sc := sealedCard{PAN: randString(r, 3), Holder: randString(r, 6)}
		if i%3 == 0 {
			sc = sealedCard{PAN: "6222020200112233446", Holder: "Zhang San 张三"}
		}
		plain, _ := json.Marshal(sc)
		var want sealedCard
		if err := json.Unmarshal(plain, &want); err != nil {
			t.Fatal(err)
		}
		if got, err := openedCard(plain); err != nil || got != want {
			t.Fatalf("%s: %+v %v, want %+v", plain, got, err, want)
		}
	}
	if _, err := openedCard([]byte(`{"pan":"1`)); err == nil {
		t.Error("a cut card was read")
	}
}

// TestDecodedKeysOwnTheirStrings: the id, merchant id and status of a decoded payment do not
// keep the whole record's string alive (the ledger's record cache holds them long after).
func TestDecodedKeysOwnTheirStrings(t *testing.T) {
	in := Payment{ID: "p1", MerchantID: "m1", CardID: "card_1", Currency: "CNY", Status: StatusSucceeded, Description: "x"}
	var p Payment
	if err := decodePayment(encodePayment(&in), &p); err != nil {
		t.Fatal(err)
	}
	// The other fields are slices of one string: that string's bytes run from the id's (if
	// it were a slice too) through the card id's.
	start := uintptr(unsafe.Pointer(unsafe.StringData(p.Currency))) - 64
	end := uintptr(unsafe.Pointer(unsafe.StringData(p.Description))) + 64
	for _, s := range []string{p.ID, p.MerchantID, string(p.Status)} {
		if a := uintptr(unsafe.Pointer(unsafe.StringData(s))); a >= start && a < end {
			t.Errorf("%q shares the record's string", s)
		}
	}
	if unsafe.StringData(string(p.Status)) != unsafe.StringData(string(StatusSucceeded)) {
		t.Error("a known status is not the constant")
	}
}
