package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// fingerprinter builds a canonical, length-prefixed encoding of fields, hashed by sum. (The
// fields are gathered in a buffer and hashed at once: written one by one to a hash.Hash,
// each string was an allocation, some 30 per payment.)
type fingerprinter struct {
	b []byte
}

func newFingerprinter() fingerprinter { return fingerprinter{b: make([]byte, 0, 512)} }

func (f *fingerprinter) int(v int64) { f.b = binary.BigEndian.AppendUint64(f.b, uint64(v)) }

func (f *fingerprinter) str(s string) {
	f.int(int64(len(s)))
	f.b = append(f.b, s...)
}

func (f *fingerprinter) bytes(b []byte) {
	f.int(int64(len(b)))
	f.b = append(f.b, b...)
}

// meta writes metadata in key order.
func (f *fingerprinter) meta(m map[string]string) {
	f.int(int64(len(m)))
	if len(m) == 1 {
		for k, v := range m {
			f.str(k)
			f.str(v)
		}
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
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

func (f *fingerprinter) sum() []byte {
	h := sha256.Sum256(f.b)
	return h[:]
}

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
