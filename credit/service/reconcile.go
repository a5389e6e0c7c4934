package service

import (
	"context"
	"strconv"
	"strings"

	"github.com/fincore/fincore/ledger"
)

// ReconcileReport is the outcome of the reconciler: for every credit account, what its
// open loans owe against its ledger receivable, and the principal they owe against the
// credit its line has drawn.
type ReconcileReport struct {
	Accounts int   `json:"accounts"`
	Loans    int64 `json:"loans"`
	// LoansOwed is what the open loans owe in all; Receivables the ledger's receivable
	// balances in all.
	LoansOwed   int64      `json:"loans_owed"`
	Receivables int64      `json:"receivables"`
	Mismatches  []Mismatch `json:"mismatches"`
}

// OK reports whether everything agreed.
func (r *ReconcileReport) OK() bool { return len(r.Mismatches) == 0 }

// Mismatch is an account whose figures disagree (twice in a row: a change committed
// between the reads is ruled out by reading the account again).
type Mismatch struct {
	Account        string `json:"account_id"`
	LoansOwed      int64  `json:"loans_owed"`
	Receivable     int64  `json:"ledger_receivable"`
	LoansPrincipal int64  `json:"loans_principal"`
	LineDrawn      int64  `json:"line_drawn"`
}

type acctSums struct{ owed, principal, drawn, receivable int64 }

// Reconcile checks that the sum of what each account's loans owe equals the balance of its
// loan receivable in the ledger (principle 1: the ledger is the truth about money, and the
// module's state must agree with it), and that the principal they owe equals what the line
// has drawn (limit − available).
func (s *Service) Reconcile(ctx context.Context) (*ReconcileReport, error) {
	sums := map[string]*acctSums{}
	get := func(id string) *acctSums {
		a := sums[id]
		if a == nil {
			a = &acctSums{}
			sums[id] = a
		}
		return a
	}
	rep := &ReconcileReport{Mismatches: []Mismatch{}}
	after := ""
	for {
		recs, more, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLoan, Status: LoanActive, StartingAfter: after, Limit: eodPage})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			owed, principal, ok := loanOwed(r.Data)
			if !ok {
				l, err := decodeLoan(r)
				if err != nil {
					return nil, err
				}
				owed, principal = l.Owed(), l.OwedPrincipal()
			}
			a := get(r.Owner)
			a.owed += owed
			a.principal += principal
			rep.Loans++
			rep.LoansOwed += owed
		}
		if !more || len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].ID
	}
	if err := s.writtenOffPrincipal(ctx, "", func(owner string, p int64) { get(owner).principal += p }); err != nil {
		return nil, err
	}
	after = ""
	for {
		recs, more, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLine, StartingAfter: after, Limit: eodPage})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var l Line
			if err := decode(r, &l, &l.Version); err != nil {
				return nil, err
			}
			get(l.ID).drawn = l.Limit - l.Available
		}
		if !more || len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].ID
	}
	prefix := ReceivableAccount("")
	after = prefix
	for {
		accts, err := s.st.ScanAccounts(ctx, after, eodPage)
		if err != nil {
			return nil, err
		}
		for _, a := range accts {
			if !strings.HasPrefix(a.ID, prefix) {
				accts = nil
				break
			}
			bal := a.Balances.DebitsPosted - a.Balances.CreditsPosted
			get(strings.TrimPrefix(a.ID, prefix)).receivable = bal
			rep.Receivables += bal
			after = a.ID
		}
		if len(accts) < eodPage {
			break
		}
	}
	rep.Accounts = len(sums)
	for id, a := range sums {
		if a.owed == a.receivable && a.principal == a.drawn {
			continue
		}
		// Read the account again on its own: a repayment may have committed between the
		// scans.
		again, err := s.accountSums(ctx, id)
		if err != nil {
			return nil, err
		}
		if again.owed != again.receivable || again.principal != again.drawn {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Account: id, LoansOwed: again.owed, Receivable: again.receivable,
				LoansPrincipal: again.principal, LineDrawn: again.drawn})
		}
	}
	return rep, nil
}

// accountSums reads one account's figures.
func (s *Service) accountSums(ctx context.Context, id string) (acctSums, error) {
	var a acctSums
	line, err := s.Line(ctx, id)
	if err == nil {
		a.drawn = line.Limit - line.Available
	}
	loans, err := s.loansOf(ctx, id, LoanActive)
	if err != nil {
		return a, err
	}
	for _, l := range loans {
		a.owed += l.Owed()
		a.principal += l.OwedPrincipal()
	}
	if err := s.writtenOffPrincipal(ctx, id, func(_ string, p int64) { a.principal += p }); err != nil {
		return a, err
	}
	acct, err := s.st.GetAccount(ctx, ReceivableAccount(id))
	if err == nil {
		a.receivable = acct.Balances.DebitsPosted - acct.Balances.CreditsPosted
	}
	return a, nil
}

// writtenOffPrincipal calls add with the owner and owed principal of every written-off loan
// (of owner, or of every account for ""). A written-off loan's principal still counts as
// drawn on its line: the line does not get it back (docs/credit.md, write-off).
func (s *Service) writtenOffPrincipal(ctx context.Context, owner string, add func(owner string, principal int64)) error {
	after := ""
	for {
		recs, more, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLoan, Owner: owner, Status: LoanWrittenOff, StartingAfter: after, Limit: eodPage})
		if err != nil {
			return err
		}
		for _, r := range recs {
			l, err := decodeLoan(r)
			if err != nil {
				return err
			}
			add(l.Account, l.OutstandingPrincipal)
		}
		if !more || len(recs) == 0 {
			return nil
		}
		after = recs[len(recs)-1].ID
	}
}

// loanOwed reads the owed and owed_principal fields that follow next at the start of a
// loan record ({"next":...,"owed":N,"owed_principal":M,...}) without decoding the rest.
func loanOwedJSON(data []byte) (owed, principal int64, ok bool) {
	s := string(data[:min(len(data), 120)])
	i := strings.Index(s, `,"owed":`)
	if i < 0 {
		return 0, 0, false
	}
	s = s[i+len(`,"owed":`):]
	j := strings.IndexByte(s, ',')
	if j < 0 {
		return 0, 0, false
	}
	owed, err := strconv.ParseInt(s[:j], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	s, ok = strings.CutPrefix(s[j:], `,"owed_principal":`)
	if !ok {
		return 0, 0, false
	}
	j = strings.IndexByte(s, ',')
	if j < 0 {
		return 0, 0, false
	}
	principal, err = strconv.ParseInt(s[:j], 10, 64)
	return owed, principal, err == nil
}
