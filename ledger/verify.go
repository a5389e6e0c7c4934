package ledger

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
)

// VerifyReport is what Verify found.
type VerifyReport struct {
	Records  int64                     `json:"records"`
	Accounts int64                     `json:"accounts"`
	Totals   map[string]CurrencyTotals `json:"totals"`
	Head     string                    `json:"head_hash"`
	Problems []string                  `json:"problems"`
}

// CurrencyTotals sums every account's balances in one currency. The sums are arbitrary
// precision: many accounts may together hold more than an int64.
type CurrencyTotals struct {
	DebitsPending  *big.Int `json:"debits_pending"`
	DebitsPosted   *big.Int `json:"debits_posted"`
	CreditsPending *big.Int `json:"credits_pending"`
	CreditsPosted  *big.Int `json:"credits_posted"`
}

func (c *CurrencyTotals) add(b Balances) {
	if c.DebitsPending == nil {
		c.DebitsPending, c.DebitsPosted, c.CreditsPending, c.CreditsPosted = new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	}
	c.DebitsPending.Add(c.DebitsPending, big.NewInt(b.DebitsPending))
	c.DebitsPosted.Add(c.DebitsPosted, big.NewInt(b.DebitsPosted))
	c.CreditsPending.Add(c.CreditsPending, big.NewInt(b.CreditsPending))
	c.CreditsPosted.Add(c.CreditsPosted, big.NewInt(b.CreditsPosted))
}

// OK reports whether the ledger verified clean.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

const verifyProblemsMax = 100

func (r *VerifyReport) problem(format string, args ...any) {
	if len(r.Problems) < verifyProblemsMax {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Verify reads the whole journal and every account and checks: the hash chain; that
// timestamps strictly increase; that each record's balance snapshots follow from the records
// before it; that every account's stored balances equal the sum of its records; and, per
// currency, that total debits equal total credits (posted and pending).
func Verify(ctx context.Context, st Store) (*VerifyReport, error) {
	rep := &VerifyReport{Totals: map[string]CurrencyTotals{}}
	running := map[string]*Balances{}
	bal := func(id string) *Balances {
		b := running[id]
		if b == nil {
			b = &Balances{}
			running[id] = b
		}
		return b
	}
	prev := GenesisHash
	var last Timestamp
	const page = 10000
	for {
		ts, err := st.ScanTransfers(ctx, last, page)
		if err != nil {
			return nil, fmt.Errorf("scan journal: %w", err)
		}
		for _, t := range ts {
			rep.Records++
			if t.Timestamp <= last {
				rep.problem("record %q: timestamp %d does not follow %d", t.ID, t.Timestamp, last)
			}
			last = t.Timestamp
			if h := ChainHash(prev, t); !bytes.Equal(h, t.Hash) {
				rep.problem("record %q at %d: hash chain broken", t.ID, t.Timestamp)
			}
			prev = t.Hash
			d, c := bal(t.DebitAccountID), bal(t.CreditAccountID)
			d.DebitsPending += t.PendingDelta
			d.DebitsPosted += t.PostedDelta
			c.CreditsPending += t.PendingDelta
			c.CreditsPosted += t.PostedDelta
			if *d != t.DebitBalances {
				rep.problem("record %q: debit account %q snapshot %+v, journal sums to %+v", t.ID, t.DebitAccountID, t.DebitBalances, *d)
			}
			if *c != t.CreditBalances {
				rep.problem("record %q: credit account %q snapshot %+v, journal sums to %+v", t.ID, t.CreditAccountID, t.CreditBalances, *c)
			}
		}
		if len(ts) < page {
			break
		}
	}
	rep.Head = fmt.Sprintf("%x", prev)
	after := ""
	for {
		as, err := st.ScanAccounts(ctx, after, page)
		if err != nil {
			return nil, fmt.Errorf("scan accounts: %w", err)
		}
		for _, a := range as {
			rep.Accounts++
			after = a.ID
			want := Balances{}
			if b := running[a.ID]; b != nil {
				want = *b
				delete(running, a.ID)
			}
			if a.Balances != want {
				rep.problem("account %q: stored balances %+v, journal sums to %+v", a.ID, a.Balances, want)
			}
			tot := rep.Totals[a.Currency]
			tot.add(a.Balances)
			rep.Totals[a.Currency] = tot
		}
		if len(as) < page {
			break
		}
	}
	for id := range running {
		rep.problem("journal refers to account %q, which does not exist", id)
	}
	for cur, tot := range rep.Totals {
		if tot.DebitsPosted.Cmp(tot.CreditsPosted) != 0 {
			rep.problem("%s: posted debits %d != posted credits %d", cur, tot.DebitsPosted, tot.CreditsPosted)
		}
		if tot.DebitsPending.Cmp(tot.CreditsPending) != 0 {
			rep.problem("%s: pending debits %d != pending credits %d", cur, tot.DebitsPending, tot.CreditsPending)
		}
	}
	return rep, nil
}
