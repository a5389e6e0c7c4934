package service

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// RepaymentRequest is POST /v1/credit/repayments.
type RepaymentRequest struct {
	ID        string
	AccountID string
	Amount    int64
	Currency  string
	LoanID    string // optional: repay this purchase only
}

func validateRepayment(r *RepaymentRequest) *apierror.Error {
	switch {
	case !ValidID(r.ID):
		return apierror.Newf(apierror.InvalidRequest, "id", "id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !ValidID(r.AccountID):
		return apierror.Newf(apierror.InvalidRequest, "account_id", "account_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case r.LoanID != "" && !ValidID(r.LoanID):
		return apierror.Newf(apierror.InvalidRequest, "purchase_id", "purchase_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !money.ValidAmount(r.Amount):
		return apierror.Newf(apierror.InvalidRequest, "amount", "amount must be between 1 and %d minor units", money.MaxAmount)
	case !money.ValidCode(r.Currency):
		return apierror.Newf(apierror.InvalidRequest, "currency", "currency %q is not a known ISO 4217 code", r.Currency)
	}
	return nil
}

// Repay applies a repayment (DESIGN.md C5). It pays what is due on the account's open
// purchases (or the one named), oldest due first across purchases, each installment in the
// product's allocation order; what is left prepays principal not yet due, purchase by
// purchase, waiving the interest and fees of installments paid off early. Every split is in
// the repayment's record with the ledger transfer it was posted in: the repayment clearing
// account pays the line's receivable, and waivers move from the receivable back to unearned
// income. Paid principal is available credit again. What the account does not owe is the
// leftover, which is not taken. A written-off loan still owing is repaid as a recovery:
// everything it owes is due, and what it is paid goes from repayment clearing to recovery
// income. Idempotent by id.
func (s *Service) Repay(ctx context.Context, req RepaymentRequest) (*Repayment, bool, error) {
	if e := validateRepayment(&req); e != nil {
		return nil, false, e
	}
	hash := fingerprint("repayment", req.ID, req.AccountID, req.Amount, req.Currency, req.LoanID)
	if r, err := s.existingRepayment(ctx, req.ID, hash); r != nil || err != nil {
		return r, false, err
	}
	if line, err := s.Line(ctx, req.AccountID); err != nil {
		if e := apierror.As(err); e != nil {
			e.Param = "account_id"
		}
		return nil, false, err
	} else if line.Currency != req.Currency {
		return nil, false, apierror.Newf(apierror.CurrencyMismatch, "currency", "credit account %s is in %s, not %s", line.ID, line.Currency, req.Currency)
	}
	if err := s.ensureAccounts(ctx, globalAccounts(req.Currency)...); err != nil {
		return nil, false, err
	}
	var out, replay *Repayment
	err := s.commit(ctx, func() (*ledger.Unit, error) {
		if err := replayed(s.existingRepayment(ctx, req.ID, hash))(&replay); err != nil {
			return nil, err
		}
		line, err := s.Line(ctx, req.AccountID)
		if err != nil {
			return nil, err
		}
		loans, err := s.repayableLoans(ctx, &req)
		if err != nil {
			return nil, err
		}
		rep := &Repayment{ID: req.ID, Account: line.ID, Amount: req.Amount, Currency: req.Currency, Loan: req.LoanID,
			Date: s.Today(), Hash: hash, Created: s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z"),
			Splits: []RepaymentSplit{}, Waived: []RepaymentSplit{}}
		legacy := legacyPenalties(loans)
		changed, err := s.allocate(rep, loans)
		if err != nil {
			return nil, err
		}
		if rep.Paid == 0 {
			return nil, apierror.Newf(apierror.NothingOwed, "amount", "credit account %s owes nothing to repay", line.ID)
		}
		u := &ledger.Unit{Transfers: poolPenalties(rep, changed, legacy, line)}
		u.Transfers = append(u.Transfers, repaymentPostings(rep, line)...)
		u.Transfers = append(u.Transfers, earnPostings("credit.earn.repay."+rep.ID, rep.Currency, rep.EarnedInterest, rep.EarnedFee,
			map[string]string{"repayment": rep.ID})...)
		for _, l := range changed {
			u.Records = append(u.Records, loanRecord(l))
			if l.Status == LoanPaidOff {
				line.OpenLoans--
				u.Events = append(u.Events, ledger.ModuleEvent{Subject: "credit.purchase.paid_off", ID: "credit.paid_off." + l.ID, Payload: encode(l)})
			}
		}
		for _, l := range changed {
			if ev, ok := bucketEvent(l, rep.Date, "repayment"); ok {
				u.Events = append(u.Events, ev)
			}
		}
		line.Available += rep.PrincipalRestored
		rec := ledger.RecordWrite{Record: ledger.Record{Kind: KindRepayment, ID: rep.ID, Owner: line.ID, Status: "applied", Data: encode(rep)}}
		u.Records = append(u.Records, lineRecord(line), rec)
		u.Events = append(u.Events, ledger.ModuleEvent{Subject: "credit.repayment.applied", ID: "credit.repayment." + rep.ID, Payload: rec.Record.Data})
		out = rep
		return u, nil
	})
	if err != nil {
		return nil, false, err
	}
	if replay != nil {
		return replay, false, nil
	}
	return out, true, nil
}

// repayableLoans are the loans a repayment may pay: open ones, and written-off ones still
// owing (a repayment of those is a recovery).
func (s *Service) repayableLoans(ctx context.Context, req *RepaymentRequest) ([]*Loan, error) {
	if req.LoanID == "" {
		return s.loansOf(ctx, req.AccountID, LoanActive, LoanWrittenOff)
	}
	l, err := s.Loan(ctx, req.LoanID)
	if err != nil {
		if e := apierror.As(err); e != nil {
			e.Param = "purchase_id"
		}
		return nil, err
	}
	if l.Account != req.AccountID {
		return nil, apierror.Newf(apierror.PurchaseNotFound, "purchase_id", "purchase %q is not on credit account %s", req.LoanID, req.AccountID)
	}
	if l.Status != LoanActive && l.Status != LoanWrittenOff {
		return nil, nil
	}
	return []*Loan{l}, nil
}

// loansOf returns an account's loans of the statuses given (at most OpenLoansMax of each
// matter: a line has no more open loans).
func (s *Service) loansOf(ctx context.Context, account string, statuses ...string) ([]*Loan, error) {
	var out []*Loan
	for _, status := range statuses {
		recs, _, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLoan, Owner: account, Status: status, Limit: OpenLoansMax + 10})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			l, err := decodeLoan(r)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// oldestOwing is the due date of a loan's oldest installment that owes anything.
func oldestOwing(l *Loan) credit.Date {
	var d credit.Date
	for _, it := range l.Items {
		if it.Total() > 0 && (d.IsZero() || it.DueDate.Before(d)) {
			d = it.DueDate
		}
	}
	return d
}

// How a loan is offered to a repayment.
type allocation int

const (
	allocDue      allocation = iota // installments due by the repayment's date
	allocPrepay                     // then principal not yet due, with waivers
	allocRecovery                   // a written-off loan: everything it owes is due
)

// allocate splits rep.Amount across loans: first what is due, oldest due first across the
// loans (a written-off loan owes everything as due, and what it is paid is a recovery); then
// prepayment, loan by loan in the same order. It changes the loans and returns those it
// changed.
func (s *Service) allocate(rep *Repayment, loans []*Loan) ([]*Loan, error) {
	slices.SortFunc(loans, func(a, b *Loan) int {
		if c := oldestOwing(a).Compare(oldestOwing(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	left := rep.Amount
	changed := map[string]int64{} // what each changed loan was paid
	apply := func(l *Loan, items []credit.Item, how allocation) error {
		p, e := s.Product(l.Product)
		if e != nil {
			return e
		}
		var a credit.Allocation
		var err error
		if how == allocRecovery {
			a, err = credit.AllocateRecovery(items, left, p.AllocationRule())
		} else {
			a, err = credit.Allocate(items, left, rep.Date, p.AllocationRule())
		}
		if err != nil {
			return err
		}
		if len(a.Splits) == 0 {
			return nil
		}
		if how == allocDue {
			a.Waived = nil // only due items were offered: nothing to waive
		}
		if l.Items, err = credit.Apply(l.Items, a); err != nil {
			return err
		}
		for _, sp := range a.Splits {
			rep.Splits = append(rep.Splits, RepaymentSplit{Loan: l.ID, Period: sp.Period, Component: sp.Component, Amount: sp.Amount,
				Recovery: how == allocRecovery})
			if sp.Component == credit.ComponentPrincipal {
				rep.PrincipalRestored += sp.Amount
			}
		}
		for _, w := range a.Waived {
			rep.Waived = append(rep.Waived, RepaymentSplit{Loan: l.ID, Period: w.Period, Component: w.Component, Amount: w.Amount})
			l.Waived = append(l.Waived, w)
		}
		left -= a.Paid()
		changed[l.ID] += a.Paid()
		if how == allocRecovery {
			rep.Recovered += a.Paid()
		}
		return nil
	}
	// Pass 1: what is due.
	for _, l := range loans {
		if left == 0 {
			break
		}
		if l.Status == LoanWrittenOff {
			if l.Owed() > 0 {
				if err := apply(l, l.Items, allocRecovery); err != nil {
					return nil, err
				}
			}
			continue
		}
		var due []credit.Item
		for _, it := range l.Items {
			if !it.DueDate.After(rep.Date) && it.Total() > 0 {
				due = append(due, it)
			}
		}
		if len(due) == 0 {
			continue
		}
		if err := apply(l, due, allocDue); err != nil {
			return nil, err
		}
	}
	// Pass 2: prepayment of principal not yet due.
	for _, l := range loans {
		if left == 0 || l.Owed() == 0 || l.Status == LoanWrittenOff {
			continue
		}
		if err := apply(l, l.Items, allocPrepay); err != nil {
			return nil, err
		}
	}
	rep.Paid, rep.Leftover = rep.Amount-left, left
	var out []*Loan
	for _, l := range loans {
		paid, ok := changed[l.ID]
		if !ok {
			continue
		}
		if l.Status == LoanWrittenOff {
			// A recovery: the loan stays written off (and out of the batch) until it owes
			// nothing, when it is paid off.
			l.Recovered += paid
			l.Outstanding, l.OutstandingPrincipal = l.Owed(), l.OwedPrincipal()
			if l.Outstanding == 0 {
				l.Status = LoanPaidOff
			}
			out = append(out, l)
			continue
		}
		// Charges falling due today are earned now (the batch would earn them tonight),
		// so that a plan paid off today leaves nothing unearned.
		i, f := earnThrough(l, rep.Date)
		rep.EarnedInterest += i
		rep.EarnedFee += f
		if credit.DaysPastDue(l.Items, rep.Date) == 0 && l.DPD > 0 {
			l.DPD, l.Bucket = 0, credit.BucketCurrent
		}
		l.refresh()
		out = append(out, l)
	}
	return out, nil
}

// legacyPenalties are the penalties each open loan owes on its line's receivable (charged
// before the penalty receivable existed: owed penalties less the penalty pooled), for the
// loans that owe some.
func legacyPenalties(loans []*Loan) map[string]int64 {
	var out map[string]int64
	for _, l := range loans {
		if n := l.OwedPenalty() - l.PenaltyPooled; l.Status == LoanActive && n > 0 {
			if out == nil {
				out = map[string]int64{}
			}
			out[l.ID] = n
		}
	}
	return out
}

// poolPenalties keeps the penalty pooled of the open loans a repayment paid penalties of:
// their penalties are paid from the currency's penalty receivable, so one that still owed
// penalties on its line's receivable (legacy, from legacyPenalties before the allocation)
// has them moved there first — one transfer for all such loans of the repayment, returned —
// and its penalty pooled is then all the penalties it still owes.
func poolPenalties(rep *Repayment, changed []*Loan, legacy map[string]int64, line *Line) []ledger.TransferInput {
	paid := map[string]bool{}
	for _, sp := range rep.Splits {
		if sp.Component == credit.ComponentPenalty && !sp.Recovery {
			paid[sp.Loan] = true
		}
	}
	var moved int64
	var loans int
	for _, l := range changed {
		if !paid[l.ID] || l.Status == LoanWrittenOff {
			continue
		}
		if n := legacy[l.ID]; n > 0 {
			moved += n
			loans++
		}
		l.PenaltyPooled = l.OwedPenalty()
	}
	if moved == 0 {
		return nil
	}
	return []ledger.TransferInput{{ID: "credit.penalty.pool." + rep.ID, DebitAccountID: PenaltyReceivableAccount(rep.Currency),
		CreditAccountID: line.Receivable, Amount: moved, Currency: rep.Currency, Code: "credit.penalty.pool",
		Metadata: map[string]string{"repayment": rep.ID, "loans": strconv.Itoa(loans)}}}
}

// postingGroup is the key splits are posted under.
type postingGroup struct {
	loan      string
	component credit.Component
	recovery  bool
}

// repaymentPostings posts the splits: one transfer per purchase and component (or, when
// that would not fit in one unit, per component), and likewise for waivers. Repaid amounts
// go from the repayment clearing account to the line's receivable — penalties to the
// currency's penalty receivable (see poolPenalties) —, recoveries to recovery income (a
// written-off loan is no longer in the receivable), waivers from unearned income to the
// receivable. Each split records the transfer it went into. The unit also holds up to two
// earn postings and poolPenalties' transfer.
func repaymentPostings(rep *Repayment, line *Line) []ledger.TransferInput {
	byLoan := len(groupsOf(rep.Splits, true))+len(groupsOf(rep.Waived, true)) <= ledger.UnitMax-3
	var out []ledger.TransferInput
	post := func(splits []RepaymentSplit, waivers bool) {
		ids := map[postingGroup]string{}
		n := map[string]int{} // transfers of each kind so far
		for _, g := range groupsOf(splits, byLoan) {
			kind, debit, creditTo, code := "repay", RepaymentClearingAccount(rep.Currency), line.Receivable, "credit.repayment."
			switch {
			case waivers:
				kind, debit, code = "waive", UnearnedAccount(rep.Currency), "credit.waiver."
			case g.recovery:
				kind, creditTo, code = "recover", RecoveryIncomeAccount(rep.Currency), "credit.recovery."
			case g.component == credit.ComponentPenalty:
				creditTo = PenaltyReceivableAccount(rep.Currency)
			}
			n[kind]++
			id := fmt.Sprintf("credit.%s.%s.%d", kind, rep.ID, n[kind])
			ids[g] = id
			var amount int64
			var periods []string
			for _, sp := range splits {
				if key(sp, byLoan) == g {
					amount += sp.Amount
					periods = append(periods, strconv.Itoa(sp.Period))
				}
			}
			meta := map[string]string{"repayment": rep.ID, "component": string(g.component)}
			if byLoan {
				meta["loan"], meta["periods"] = g.loan, strings.Join(periods, ",")
			}
			out = append(out, ledger.TransferInput{ID: id, DebitAccountID: debit, CreditAccountID: creditTo,
				Amount: amount, Currency: rep.Currency, Code: code + string(g.component), Metadata: meta})
		}
		for i := range splits {
			splits[i].Transfer = ids[key(splits[i], byLoan)]
		}
	}
	post(rep.Splits, false)
	post(rep.Waived, true)
	return out
}

func key(sp RepaymentSplit, byLoan bool) postingGroup {
	if byLoan {
		return postingGroup{sp.Loan, sp.Component, sp.Recovery}
	}
	return postingGroup{component: sp.Component, recovery: sp.Recovery}
}

// groupsOf lists the posting groups of splits in first-seen order.
func groupsOf(splits []RepaymentSplit, byLoan bool) []postingGroup {
	var out []postingGroup
	for _, sp := range splits {
		if k := key(sp, byLoan); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

func (s *Service) existingRepayment(ctx context.Context, id, hash string) (*Repayment, error) {
	return existing(ctx, s, KindRepayment, id, hash, func(r *Repayment) string { return r.Hash })
}

// GetRepayment returns a repayment.
func (s *Service) GetRepayment(ctx context.Context, id string) (*Repayment, error) {
	return lookup[Repayment](ctx, s, KindRepayment, id, apierror.RepaymentNotFound, "repayment")
}

// stageChange is the payload of credit.loan.stage_changed.
type stageChange struct {
	Loan    string        `json:"loan_id"`
	Account string        `json:"account_id"`
	Date    credit.Date   `json:"date"`
	From    credit.Bucket `json:"from"`
	To      credit.Bucket `json:"to"`
	DPD     int           `json:"days_past_due"`
	Cause   string        `json:"cause"`
}

// bucketEvent is the event of a loan's change of delinquency bucket, if it changed from
// what the record held (prevBucket is carried in the loan until written).
func bucketEvent(l *Loan, d credit.Date, cause string) (ledger.ModuleEvent, bool) {
	if l.prevBucket == "" || l.prevBucket == l.Bucket {
		return ledger.ModuleEvent{}, false
	}
	payload := stageChangeJSON(&stageChange{Loan: l.ID, Account: l.Account, Date: d, From: l.prevBucket, To: l.Bucket, DPD: l.DPD, Cause: cause})
	id := make([]byte, 0, len("credit.stage...")+len(l.ID)+10+len(l.Bucket))
	id = append(append(append(id, "credit.stage."...), l.ID...), '.')
	id = append(append(d.Append(id), '.'), l.Bucket...)
	return ledger.ModuleEvent{Subject: "credit.loan.stage_changed", ID: string(id), Payload: payload}, true
}

// stageChangeJSON is encode(c), written without reflection: the end-of-day batch makes one
// for every loan that changes bucket (every loan on the first day past due). Values that
// JSON would escape (none of the service's ids and buckets) take encode.
func stageChangeJSON(c *stageChange) []byte {
	if c.Date.IsZero() || !plainJSON(c.Loan) || !plainJSON(c.Account) || !plainJSON(string(c.From)) || !plainJSON(string(c.To)) || !plainJSON(c.Cause) {
		return encode(c)
	}
	b := make([]byte, 0, 128+len(c.Loan)+len(c.Account))
	b = append(append(b, `{"loan_id":"`...), c.Loan...)
	b = append(append(b, `","account_id":"`...), c.Account...)
	b = c.Date.Append(append(b, `","date":"`...))
	b = append(append(b, `","from":"`...), c.From...)
	b = append(append(b, `","to":"`...), c.To...)
	b = strconv.AppendInt(append(b, `","days_past_due":`...), int64(c.DPD), 10)
	b = append(append(b, `,"cause":"`...), c.Cause...)
	return append(b, `"}`...)
}

// plainJSON reports whether encoding/json writes s as it is between quotes (printable ASCII
// other than the characters it escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
