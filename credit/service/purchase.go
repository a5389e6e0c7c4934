package service

import (
	"context"
	"fmt"
	"strconv"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// PurchaseRequest is POST /v1/credit/purchases.
type PurchaseRequest struct {
	ID         string
	AccountID  string
	MerchantID string
	Amount     int64
	Currency   string
	Plan       string // pay_later or installments
	Periods    int    // installments only
}

func validatePurchase(r *PurchaseRequest) *apierror.Error {
	switch {
	case !ValidID(r.ID):
		return apierror.Newf(apierror.InvalidRequest, "id", "id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !ValidID(r.AccountID):
		return apierror.Newf(apierror.InvalidRequest, "account_id", "account_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !ValidID(r.MerchantID):
		return apierror.Newf(apierror.InvalidRequest, "merchant_id", "merchant_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !money.ValidAmount(r.Amount):
		return apierror.Newf(apierror.InvalidRequest, "amount", "amount must be between 1 and %d minor units", money.MaxAmount)
	case !money.ValidCode(r.Currency):
		return apierror.Newf(apierror.InvalidRequest, "currency", "currency %q is not a known ISO 4217 code", r.Currency)
	case r.Plan != PlanPayLater && r.Plan != PlanInstallments:
		return apierror.Newf(apierror.InvalidRequest, "plan", "plan must be pay_later or installments")
	case r.Plan == PlanPayLater && r.Periods != 0:
		return apierror.Newf(apierror.InvalidRequest, "periods", "a pay_later purchase takes no periods")
	case r.Plan == PlanInstallments && (r.Periods < 2 || r.Periods > credit.PeriodsMax):
		return apierror.Newf(apierror.InvalidRequest, "periods", "installments need periods between 2 and %d", credit.PeriodsMax)
	}
	return nil
}

// Purchase buys on credit (DESIGN.md C3): it checks the line (not frozen, enough available
// credit, fewer than OpenLoansMax open purchases), fixes the schedule, asks the Decider,
// and commits in one unit the loan, the line's drawn credit and the postings: the
// principal from the line's receivable to the merchant's payable, and the plan's interest
// and fees from the receivable to unearned income. It is idempotent by id.
func (s *Service) Purchase(ctx context.Context, req PurchaseRequest) (*Loan, bool, error) {
	if e := validatePurchase(&req); e != nil {
		return nil, false, e
	}
	hash := fingerprint("purchase", req.ID, req.AccountID, req.MerchantID, req.Amount, req.Currency, req.Plan, req.Periods)
	if l, err := s.existingLoan(ctx, req.ID, hash); l != nil || err != nil {
		return l, false, err
	}
	line, err := s.Line(ctx, req.AccountID)
	if err != nil {
		if e := apierror.As(err); e != nil {
			e.Param = "account_id"
		}
		return nil, false, err
	}
	p, e := s.Product(line.Product)
	if e != nil {
		return nil, false, e
	}
	today := s.Today()
	loan, e := s.newLoan(&req, line, p, today)
	if e != nil {
		return nil, false, e
	}
	loan.Hash = hash
	if e := checkDraw(line, &req); e != nil {
		return nil, false, e
	}
	d, err := s.cfg.Decider.Decide(ctx, RiskEvent{Type: EventPurchase, Customer: line.Customer, Fields: map[string]any{
		"purchase_id": req.ID, "account_id": line.ID, "merchant_id": req.MerchantID, "amount": req.Amount,
		"currency": req.Currency, "plan": req.Plan, "periods": req.Periods, "available": line.Available, "limit": line.Limit,
	}})
	if err != nil {
		return nil, false, fmt.Errorf("credit: risk decision: %w", err)
	}
	if d.Outcome != Accept {
		return nil, false, apierror.Newf(apierror.PurchaseDeclined, "", "the purchase was declined by %s (%s): %s", d.Decider, d.Outcome, joinReasons(d.Reasons))
	}
	if err := s.ensureAccounts(ctx, append(globalAccounts(line.Currency), receivableInput(line.ID, line.Currency), merchantInput(req.MerchantID, line.Currency))...); err != nil {
		return nil, false, err
	}
	var replay, made *Loan
	err = s.commit(ctx, func() (*ledger.Unit, error) {
		if err := replayed(s.existingLoan(ctx, req.ID, hash))(&replay); err != nil {
			return nil, err
		}
		line, err := s.Line(ctx, req.AccountID)
		if err != nil {
			return nil, err
		}
		if e := checkDraw(line, &req); e != nil {
			return nil, e
		}
		line.Available -= req.Amount
		line.OpenLoans++
		l := *loan // the template stays at version 0 for a retry
		u := &ledger.Unit{
			Transfers: purchasePostings(&l, line),
			Records:   []ledger.RecordWrite{loanRecord(&l), lineRecord(line)},
		}
		u.Events = []ledger.ModuleEvent{{Subject: "credit.purchase.created", ID: "credit.purchase." + l.ID, Payload: encode(&l)}}
		made = &l
		return u, nil
	})
	if err != nil {
		return nil, false, err
	}
	if replay != nil {
		return replay, false, nil
	}
	return made, true, nil
}

// checkDraw checks that line can fund the purchase now.
func checkDraw(line *Line, req *PurchaseRequest) *apierror.Error {
	switch {
	case line.Currency != req.Currency:
		return apierror.Newf(apierror.CurrencyMismatch, "currency", "credit account %s is in %s, not %s", line.ID, line.Currency, req.Currency)
	case line.Frozen:
		return apierror.Newf(apierror.LineFrozen, "account_id", "credit account %s is frozen", line.ID)
	case req.Amount > line.Available:
		return apierror.Newf(apierror.ExceedsAvailableCredit, "amount", "amount %d exceeds the available credit %d of account %s", req.Amount, line.Available, line.ID)
	case line.OpenLoans >= OpenLoansMax:
		return apierror.Newf(apierror.TooManyOpenLoans, "account_id", "credit account %s has %d open purchases, the most it may have", line.ID, line.OpenLoans)
	}
	return nil
}

// newLoan fixes the loan's schedule. Interest-bearing installment options are charged at
// the line's rate tier (risk-based pricing); flat-fee options at the product's fee rate.
func (s *Service) newLoan(req *PurchaseRequest, line *Line, p *credit.Product, today credit.Date) (*Loan, *apierror.Error) {
	l := &Loan{ID: req.ID, Account: line.ID, Merchant: req.MerchantID, Product: p.ID, Currency: line.Currency,
		Plan: req.Plan, Amount: req.Amount, Date: today, LastEOD: today, Bucket: credit.BucketCurrent, Waived: []credit.Split{}}
	var sched *credit.Schedule
	if req.Plan == PlanPayLater {
		var e *apierror.Error
		if sched, e = p.PayLater(req.Amount, today); e != nil {
			e.Param = "plan"
			return nil, e
		}
	} else {
		t, e := p.Terms(req.Amount, req.Periods, today)
		if e != nil {
			return nil, e
		}
		if t.Method.ChargesInterest() {
			t.AnnualRate = line.AnnualRate
		}
		sc, err := credit.NewSchedule(t)
		if err != nil {
			if e := apierror.As(err); e != nil {
				return nil, e
			}
			return nil, apierror.Newf(apierror.InvalidRequest, "amount", "%v", err)
		}
		sched, l.Terms = sc, &t
	}
	l.Schedule = sched.Installments
	l.Items = credit.ItemsFromSchedule(sched)
	l.refresh()
	return l, nil
}

// purchasePostings are a purchase's transfers: principal to the merchant, charges to
// unearned income.
func purchasePostings(l *Loan, line *Line) []ledger.TransferInput {
	out := []ledger.TransferInput{{ID: "credit.purchase." + l.ID, DebitAccountID: line.Receivable, CreditAccountID: MerchantAccount(l.Merchant),
		Amount: l.Amount, Currency: l.Currency, Code: "credit.purchase", Metadata: map[string]string{"loan": l.ID}}}
	var charges int64
	for _, in := range l.Schedule {
		charges += in.Interest + in.Fee
	}
	if charges > 0 {
		out = append(out, ledger.TransferInput{ID: "credit.purchase." + l.ID + ".charges", DebitAccountID: line.Receivable,
			CreditAccountID: UnearnedAccount(l.Currency), Amount: charges, Currency: l.Currency, Code: "credit.charges",
			Metadata: map[string]string{"loan": l.ID, "periods": strconv.Itoa(len(l.Schedule))}})
	}
	return out
}

func (s *Service) existingLoan(ctx context.Context, id, hash string) (*Loan, error) {
	r, err := s.getRecord(ctx, KindLoan, id)
	if err != nil || r == nil {
		return nil, err
	}
	l, err := decodeLoan(r)
	if err != nil {
		return nil, err
	}
	if l.Hash != hash {
		return nil, apierror.Newf(apierror.IDConflict, "id", "purchase %s exists with a different request", id)
	}
	return l, nil
}
