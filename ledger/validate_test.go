package ledger

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/fincore/fincore/apierror"
)

func TestValidateTransfer(t *testing.T) {
	ok := TransferInput{ID: "t1", DebitAccountID: "a", CreditAccountID: "b", Amount: 1, Currency: "CNY"}
	tests := []struct {
		name  string
		edit  func(*TransferInput)
		code  apierror.Code
		param string
	}{
		{"valid", func(*TransferInput) {}, "", ""},
		{"missing id", func(in *TransferInput) { in.ID = "" }, apierror.InvalidRequest, "id"},
		{"reserved id char", func(in *TransferInput) { in.ID = "a#expire" }, apierror.InvalidRequest, "id"},
		{"long id", func(in *TransferInput) { in.ID = strings.Repeat("x", 129) }, apierror.InvalidRequest, "id"},
		{"zero amount", func(in *TransferInput) { in.Amount = 0 }, apierror.InvalidRequest, "amount"},
		{"negative amount", func(in *TransferInput) { in.Amount = -5 }, apierror.InvalidRequest, "amount"},
		{"amount over 2^53-1", func(in *TransferInput) { in.Amount = 1 << 53 }, apierror.InvalidRequest, "amount"},
		{"bad currency", func(in *TransferInput) { in.Currency = "cny" }, apierror.InvalidRequest, "currency"},
		{"same account", func(in *TransferInput) { in.CreditAccountID = "a" }, apierror.SameAccount, "credit_account_id"},
		{"timeout without pending", func(in *TransferInput) { in.TimeoutSeconds = 5 }, apierror.InvalidRequest, "timeout_seconds"},
		{"negative timeout", func(in *TransferInput) { in.Pending, in.TimeoutSeconds = true, -1 }, apierror.InvalidRequest, "timeout_seconds"},
		{"pending_id on create", func(in *TransferInput) { in.PendingID = "p" }, apierror.InvalidRequest, "pending_id"},
		{"bad action", func(in *TransferInput) { in.Action = "refund" }, apierror.InvalidRequest, "action"},
		{"too much metadata", func(in *TransferInput) {
			in.Metadata = map[string]string{}
			for i := 0; i <= MetadataKeysMax; i++ {
				in.Metadata[strings.Repeat("k", i+1)[:1+i%40]+string(rune('a'+i%26))] = "v"
			}
		}, apierror.InvalidRequest, "metadata"},
		{"long metadata value", func(in *TransferInput) { in.Metadata = map[string]string{"k": strings.Repeat("v", 501)} }, apierror.InvalidRequest, "metadata.k"},
		{"post with accounts", func(in *TransferInput) { in.Action, in.PendingID = ActionPost, "p" }, apierror.InvalidRequest, "pending_id"},
		{"void with amount", func(in *TransferInput) {
			*in = TransferInput{Action: ActionVoid, ID: "v", PendingID: "p", Amount: 3}
		}, apierror.InvalidRequest, "amount"},
		{"post full", func(in *TransferInput) { *in = TransferInput{Action: ActionPost, ID: "v", PendingID: "p"} }, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			err := ValidateTransfer(&in)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || err.Code != tc.code || err.Param != tc.param {
				t.Fatalf("error = %v, want %s on %s", err, tc.code, tc.param)
			}
		})
	}
}

func TestValidateAccount(t *testing.T) {
	for _, tc := range []struct {
		in    AccountInput
		param string
	}{
		{AccountInput{Currency: "CNY"}, ""},
		{AccountInput{ID: "x y", Currency: "CNY"}, "id"},
		{AccountInput{Currency: "RMB"}, "currency"},
		{AccountInput{Currency: "CNY", Code: "has space"}, "code"},
		{AccountInput{Currency: "CNY", Flags: Flags{true, true}}, "flags"},
	} {
		err := ValidateAccount(&tc.in)
		if (err == nil) != (tc.param == "") || (err != nil && err.Param != tc.param) {
			t.Errorf("ValidateAccount(%+v) = %v, want param %q", tc.in, err, tc.param)
		}
	}
}

func TestFingerprints(t *testing.T) {
	a := TransferInput{ID: "t", DebitAccountID: "a", CreditAccountID: "b", Amount: 1, Currency: "CNY", Metadata: map[string]string{"x": "1", "y": "2"}}
	b := a
	b.Metadata = map[string]string{"y": "2", "x": "1"}
	if !bytes.Equal(transferFingerprint(&a), transferFingerprint(&b)) {
		t.Fatal("fingerprint depends on map order")
	}
	// Length prefixes keep field boundaries: "ab"+"c" differs from "a"+"bc".
	c, d := a, a
	c.DebitAccountID, c.CreditAccountID = "ab", "c"
	d.DebitAccountID, d.CreditAccountID = "a", "bc"
	if bytes.Equal(transferFingerprint(&c), transferFingerprint(&d)) {
		t.Fatal("fingerprint confuses field boundaries")
	}
	for _, edit := range []func(*TransferInput){
		func(in *TransferInput) { in.Amount++ },
		func(in *TransferInput) { in.Code = "x" },
		func(in *TransferInput) { in.Pending = true },
		func(in *TransferInput) { in.Metadata = nil },
	} {
		e := a
		edit(&e)
		if bytes.Equal(transferFingerprint(&a), transferFingerprint(&e)) {
			t.Fatalf("fingerprint ignores a change: %+v", e)
		}
	}
}

func TestChainHash(t *testing.T) {
	tr := &Transfer{ID: "t", DebitAccountID: "a", CreditAccountID: "b", Amount: 5, Currency: "CNY", Status: StatusPosted, Timestamp: 7, PostedDelta: 5}
	h := ChainHash(GenesisHash, tr)
	if bytes.Equal(h, ChainHash(h, tr)) {
		t.Fatal("hash ignores the previous hash")
	}
	p := *tr
	p.Pending, p.Status = true, StatusPending
	hp := ChainHash(GenesisHash, &p)
	p.Status = StatusPosted
	if !bytes.Equal(hp, ChainHash(GenesisHash, &p)) {
		t.Fatal("a pending transfer's hash must not cover its (mutable) status")
	}
	s := *tr
	s.CreditBalances.CreditsPosted++
	if bytes.Equal(h, ChainHash(GenesisHash, &s)) {
		t.Fatal("hash ignores the balance snapshot")
	}
}

func TestMergeNewestFirst(t *testing.T) {
	mk := func(ts ...Timestamp) []*Transfer {
		var out []*Transfer
		for _, x := range ts {
			out = append(out, &Transfer{Timestamp: x})
		}
		return out
	}
	if MergeNewestFirst(mk(1), mk(2), -1) != nil {
		t.Fatal("negative limit")
	}
	got := MergeNewestFirst(mk(9, 5, 2), mk(8, 7, 1), 4)
	var stamps []Timestamp
	for _, t := range got {
		stamps = append(stamps, t.Timestamp)
	}
	if len(stamps) != 4 || stamps[0] != 9 || stamps[1] != 8 || stamps[2] != 7 || stamps[3] != 5 {
		t.Fatalf("merged %v", stamps)
	}
}

// TestIDAndCodeShapes: ids and codes are checked as the regular expressions below say.
func TestIDAndCodeShapes(t *testing.T) {
	idPattern := regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,128}$`)
	codePattern := regexp.MustCompile(`^[A-Za-z0-9_.:\-]{0,64}$`)
	chars := "aZz09_.:-#/ \x00é"
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var sb strings.Builder
		for range r.IntN(140) {
			if i%2 == 0 {
				sb.WriteByte("azAZ09_.:-"[r.IntN(10)]) // mostly valid, lengths around the bounds
			} else {
				sb.WriteByte(chars[r.IntN(len(chars))])
			}
		}
		s := sb.String()
		if got, want := ValidID(s), idPattern.MatchString(s); got != want {
			t.Fatalf("ValidID(%q) = %v, want %v", s, got, want)
		}
		if got, want := validCode(s), codePattern.MatchString(s); got != want {
			t.Fatalf("validCode(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestFingerprintsAndMetadataAreStable: request fingerprints and journal hashes are stored
// and compared with later ones, and stored metadata is compared as text: their encodings
// must never change (these values were computed by the first implementations).
func TestFingerprintsAndMetadataAreStable(t *testing.T) {
	in := TransferInput{ID: "t", DebitAccountID: "a", CreditAccountID: "b", Amount: 1000, Currency: "CNY", Code: "payment_capture",
		TimeoutSeconds: 60, Pending: true, Metadata: map[string]string{"y": "2", "x": "<1>", "payment_id": "p1"}}
	ac := AccountInput{ID: "acc", Currency: "CNY", Code: "merchant_payable", Flags: Flags{DebitsMustNotExceedCredits: true},
		Metadata: map[string]string{"k": "v"}}
	tr := &Transfer{ID: "t", DebitAccountID: "a", CreditAccountID: "b", Amount: 5, Currency: "CNY", Code: "c", Status: StatusPosted,
		Timestamp: 7, PostedDelta: 5, Metadata: map[string]string{"payment_id": "p1"}, DebitBalances: Balances{DebitsPosted: 5},
		CreditBalances: Balances{CreditsPosted: 5, CreditsPending: 2}, ReqHash: []byte("0123456789abcdef0123456789abcdef"), ExpiresAt: 99}
	check := func(name string, got []byte, want string) {
		t.Helper()
		if hex.EncodeToString(got) != want {
			t.Errorf("%s: %x, want %s", name, got, want)
		}
	}
	check("transfer", transferFingerprint(&in), "a2dcf77030694a1d173e4cbb501c01e5e16aa189538376d8cd05cac44e87f7b2")
	check("account", accountFingerprint(&ac), "33a5ace2d09e9e214b21350d50e3562b339efa3fdb0f204ccef94b574eb616cd")
	check("journal", ChainHash(GenesisHash, tr), "cc81acbf161a3882c42b6be1097ba6fb0c23aedd48c7624b9d692c44083edb01")
	in.Metadata = nil
	check("transfer without metadata", transferFingerprint(&in), "a0b54c924b06d250bca732303d8694fdc01d4f7feea9dc36c049fc0c5c520825")
	m := map[string]string{"y": "2", "x": "<1>&é\u2028\xff", "payment_id": "p1"}
	if got, want := EncodeMetadata(m), `{"payment_id":"p1","x":"\u003c1\u003e\u0026é\u2028\ufffd","y":"2"}`; got != want {
		t.Errorf("metadata %s, want %s", got, want)
	}
	for _, m := range []map[string]string{{"payment_id": "p1"}, {"a": "1", "b": "\n"}, {"": ""}} {
		want, _ := json.Marshal(m)
		if got := EncodeMetadata(m); got != string(want) {
			t.Errorf("metadata %s, want %s", got, want)
		}
	}
	if EncodeMetadata(nil) != "" || EncodeMetadata(map[string]string{}) != "" {
		t.Error("empty metadata is not stored")
	}
}
