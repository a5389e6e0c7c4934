package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sort"
)

// fingerprinter writes a canonical, length-prefixed encoding of fields into a hash.
type fingerprinter struct {
	h   hash.Hash
	buf [8]byte
}

func newFingerprinter() *fingerprinter { return &fingerprinter{h: sha256.New()} }

func (f *fingerprinter) int(v int64) {
	binary.BigEndian.PutUint64(f.buf[:], uint64(v))
	f.h.Write(f.buf[:])
}

func (f *fingerprinter) str(s string) {
	f.int(int64(len(s)))
	f.h.Write([]byte(s))
}

func (f *fingerprinter) bytes(b []byte) {
	f.int(int64(len(b)))
	f.h.Write(b)
}

func (f *fingerprinter) meta(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f.int(int64(len(keys)))
	for _, k := range keys {
		f.str(k)
		f.str(m[k])
	}
}

func (f *fingerprinter) balances(b Balances) {
	f.int(b.DebitsPending)
	f.int(b.DebitsPosted)
	f.int(b.CreditsPending)
	f.int(b.CreditsPosted)
}

func (f *fingerprinter) sum() []byte { return f.h.Sum(nil) }

// accountFingerprint identifies the body of an account request: a replay with the same id
// and the same fingerprint returns the original.
func accountFingerprint(in *AccountInput) []byte {
	f := newFingerprinter()
	f.str("account/v1")
	f.str(in.Currency)
	f.str(in.Code)
	f.int(in.Flags.bits())
	f.meta(in.Metadata)
	return f.sum()
}

// transferFingerprint identifies the body of a transfer request.
func transferFingerprint(in *TransferInput) []byte {
	f := newFingerprinter()
	f.str("transfer/v1")
	f.str(string(in.Action))
	f.str(in.PendingID)
	f.str(in.DebitAccountID)
	f.str(in.CreditAccountID)
	f.int(in.Amount)
	f.str(in.Currency)
	f.str(in.Code)
	if in.Pending {
		f.int(1)
	} else {
		f.int(0)
	}
	f.int(in.TimeoutSeconds)
	f.meta(in.Metadata)
	return f.sum()
}

// GenesisHash is the hash that precedes the first journal record.
var GenesisHash = make([]byte, sha256.Size)

// ChainHash computes a journal record's hash from the previous record's hash and the
// record's immutable fields (everything but Status, which changes when a pending transfer
// closes; the closing is itself a record).
func ChainHash(prev []byte, t *Transfer) []byte {
	f := newFingerprinter()
	f.str("journal/v1")
	f.bytes(prev)
	f.int(int64(t.Timestamp))
	f.str(t.ID)
	f.str(t.DebitAccountID)
	f.str(t.CreditAccountID)
	f.int(t.Amount)
	f.str(t.Currency)
	f.str(t.Code)
	if t.Pending {
		f.int(1)
	} else {
		f.int(0)
	}
	f.str(t.PendingID)
	if !t.Pending {
		// Only a pending transfer's status changes after it is written.
		f.str(string(t.Status))
	}
	f.int(t.TimeoutSeconds)
	f.int(int64(t.ExpiresAt))
	f.meta(t.Metadata)
	f.int(t.PendingDelta)
	f.int(t.PostedDelta)
	f.balances(t.DebitBalances)
	f.balances(t.CreditBalances)
	f.bytes(t.ReqHash)
	return f.sum()
}
