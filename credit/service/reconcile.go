package service

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/fincore/fincore/ledger"
)

// ReconcileReport is the outcome of the reconciler: for every credit account, what its
// open loans owe against its ledger receivable (less their penalty pooled), and the
// principal they owe against the credit its line has drawn; for every currency, the
// penalty pooled of its open loans against its penalty receivable.
type ReconcileReport struct {
	Accounts int   `json:"accounts"`
	Loans    int64 `json:"loans"`
	// LoansOwed is what the open loans owe in all; Receivables the ledger's receivable
	// balances in all (the lines' and the penalty receivables).
	LoansOwed   int64      `json:"loans_owed"`
	Receivables int64      `json:"receivables"`
	Mismatches  []Mismatch `json:"mismatches"`
}

// OK reports whether everything agreed.
func (r *ReconcileReport) OK() bool { return len(r.Mismatches) == 0 }

// Mismatch is an account whose figures disagree (twice in a row: a change committed
// between the reads is ruled out by reading the account again). For a penalty receivable,
// Account is its ledger account, LoansOwed the penalty pooled of the currency's open loans
// and Receivable its balance.
type Mismatch struct {
	Account        string `json:"account_id"`
	LoansOwed      int64  `json:"loans_owed"`
	Receivable     int64  `json:"ledger_receivable"`
	LoansPrincipal int64  `json:"loans_principal"`
	LineDrawn      int64  `json:"line_drawn"`
}

// acctSums are an account's figures: owed is what its open loans owe less their penalty
// pooled (what its receivable should hold), pooled their penalty pooled.
type acctSums struct{ owed, pooled, principal, drawn, receivable int64 }

// Reconcile checks that the sum of what each account's loans owe, less the penalties pooled
// on the currency's penalty receivable, equals the balance of its loan receivable in the
// ledger (principle 1: the ledger is the truth about money, and the module's state must
// agree with it), that the principal they owe equals what the line has drawn (limit −
// available), and that each currency's penalty receivable holds the penalty pooled of its
// open loans.
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
			owed, principal, pooled, err := recordOwed(r)
			if err != nil {
				return nil, err
			}
			a := get(r.Owner)
			a.owed += owed - pooled
			a.pooled += pooled
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
	currencyOf := map[string]string{} // of each line
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
			currencyOf[l.ID] = l.Currency
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
	pooled := map[string]int64{} // by currency
	for _, p := range s.cfg.Products {
		pooled[p.Currency] += 0
	}
	for id, a := range sums {
		pooled[currencyOf[id]] += a.pooled
	}
	for cur, n := range pooled {
		bal, err := s.penaltyReceivable(ctx, cur)
		if err != nil {
			return nil, err
		}
		rep.Receivables += bal
		if n == bal {
			continue
		}
		// Read them again, with the balance unchanged across the reads: a repayment or
		// the batch may have committed while the loans were read.
		if n, bal, err = s.pooledAgain(ctx, cur, currencyOf); err != nil {
			return nil, err
		}
		if n != bal {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Account: PenaltyReceivableAccount(cur), LoansOwed: n, Receivable: bal})
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
		a.owed += l.Owed() - l.PenaltyPooled
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

// recordOwed is what a loan record owes in all and of principal, and its penalty pooled
// (read from the record's header when it can be).
func recordOwed(r *ledger.Record) (owed, principal, pooled int64, err error) {
	owed, principal, pooled, ok := loanOwed(r.Data)
	if ok {
		return owed, principal, pooled, nil
	}
	l, err := decodeLoan(r)
	if err != nil {
		return 0, 0, 0, err
	}
	return l.Owed(), l.OwedPrincipal(), l.PenaltyPooled, nil
}

// penaltyReceivable is the balance of a currency's penalty receivable (0 before it exists).
func (s *Service) penaltyReceivable(ctx context.Context, cur string) (int64, error) {
	a, err := s.st.GetAccount(ctx, PenaltyReceivableAccount(cur))
	if errors.Is(err, ledger.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return a.Balances.DebitsPosted - a.Balances.CreditsPosted, nil
}

// pooledAgain sums the penalty pooled of the open loans of currency cur (of the lines in
// currencyOf) again, until the penalty receivable's balance is the same before and after
// the sum (at most RetriesMax times), and returns the sum and the balance.
func (s *Service) pooledAgain(ctx context.Context, cur string, currencyOf map[string]string) (sum, bal int64, err error) {
	for range RetriesMax {
		if bal, err = s.penaltyReceivable(ctx, cur); err != nil {
			return 0, 0, err
		}
		sum = 0
		after := ""
		for {
			recs, more, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLoan, Status: LoanActive, StartingAfter: after, Limit: eodPage})
			if err != nil {
				return 0, 0, err
			}
			for _, r := range recs {
				if currencyOf[r.Owner] != cur {
					continue
				}
				_, _, pooled, err := recordOwed(r)
				if err != nil {
					return 0, 0, err
				}
				sum += pooled
			}
			if !more || len(recs) == 0 {
				break
			}
			after = recs[len(recs)-1].ID
		}
		again, err := s.penaltyReceivable(ctx, cur)
		if err != nil {
			return 0, 0, err
		}
		if again == bal {
			break
		}
	}
	return sum, bal, nil
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
