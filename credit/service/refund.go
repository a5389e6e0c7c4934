package service

import (
	"context"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// RefundRequest is POST /v1/credit/purchases/{id}/refunds: a merchant's refund of (part
// of) a purchase.
type RefundRequest struct {
	ID     string
	LoanID string
	Amount int64
}

// Refund is a merchant refund applied to a purchase's plan.
type Refund struct {
	ID       string      `json:"id"`
	Loan     string      `json:"purchase_id"`
	Account  string      `json:"account_id"`
	Merchant string      `json:"merchant_id"`
	Amount   int64       `json:"amount"`
	Currency string      `json:"currency"`
	Date     credit.Date `json:"date"`
	// Cuts are what the refund took off the plan, per installment and component: the
	// principal (Amount in all) and the interest and fees of that principal.
	Cuts []RefundCut `json:"cuts"`
	// ChargesCut is the interest and fee taken off in all.
	ChargesCut int64  `json:"charges_cut"`
	Hash       string `json:"request_hash"`
	Created    string `json:"created"`
}

// RefundCut is one cut with the ledger transfer it was posted in.
type RefundCut struct {
	Period    int              `json:"period"`
	Component credit.Component `json:"component"`
	Amount    int64            `json:"amount"`
	// Earned is true for a charge already recognised as income (its installment fell due):
	// the cut reverses income instead of unearned income.
	Earned   bool   `json:"earned,omitempty"`
	Transfer string `json:"transfer_id"`
}

func validateRefund(r *RefundRequest) *apierror.Error {
	switch {
	case !ValidID(r.ID):
		return apierror.Newf(apierror.InvalidRequest, "id", "id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !ValidID(r.LoanID):
		return apierror.Newf(apierror.InvalidRequest, "purchase_id", "purchase_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !money.ValidAmount(r.Amount):
		return apierror.Newf(apierror.InvalidRequest, "amount", "amount must be between 1 and %d minor units", money.MaxAmount)
	}
	return nil
}

// RefundPurchase applies a merchant refund to a purchase (DESIGN.md C5, docs/credit.md):
// it takes the amount off the principal the purchase still owes, last installment first,
// with the interest and fees of that principal (credit.Refund), and commits in one unit
// the loan, the line's restored credit, the refund's record and its postings: the
// merchant's payable pays the receivable back the principal; the charges cut go from
// unearned income (or from income, for installments already fallen due) back against the
// receivable. A refund more than the principal owed is refund_exceeds_principal, one of a
// purchase paid off or written off purchase_not_refundable; both change nothing.
// Idempotent by id.
func (s *Service) RefundPurchase(ctx context.Context, req RefundRequest) (*Refund, bool, error) {
	if e := validateRefund(&req); e != nil {
		return nil, false, e
	}
	hash := fingerprint("refund", req.ID, req.LoanID, req.Amount)
	if r, err := s.existingRefund(ctx, req.ID, hash); r != nil || err != nil {
		return r, false, err
	}
	l0, err := s.Loan(ctx, req.LoanID)
	if err != nil {
		return nil, false, err
	}
	if err := s.ensureAccounts(ctx, globalAccounts(l0.Currency)...); err != nil {
		return nil, false, err
	}
	var out, replay *Refund
	err = s.commit(ctx, func() (*ledger.Unit, error) {
		if err := replayed(s.existingRefund(ctx, req.ID, hash))(&replay); err != nil {
			return nil, err
		}
		l, err := s.Loan(ctx, req.LoanID)
		if err != nil {
			return nil, err
		}
		line, err := s.Line(ctx, l.Account)
		if err != nil {
			return nil, err
		}
		if l.Status != LoanActive {
			hint := ""
			if l.Status == LoanWrittenOff {
				hint = "; take the merchant's money as a repayment, which counts as a recovery"
			}
			return nil, apierror.Newf(apierror.PurchaseNotRefundable, "", "purchase %s is %s: a merchant refund reduces only an open purchase%s",
				l.ID, l.Status, hint)
		}
		items, cuts, ok := credit.Refund(l.Items, req.Amount)
		if !ok {
			return nil, apierror.Newf(apierror.RefundExceedsPrincipal, "amount", "refund %d is more than the principal %d purchase %s still owes",
				req.Amount, l.OwedPrincipal(), l.ID)
		}
		today := s.Today()
		ref := &Refund{ID: req.ID, Loan: l.ID, Account: l.Account, Merchant: l.Merchant, Amount: req.Amount, Currency: l.Currency,
			Date: today, Hash: hash, Created: s.cfg.Now().UTC().Format("2006-01-02T15:04:05Z"), Cuts: []RefundCut{}}
		meta := map[string]string{"refund": ref.ID, "loan": l.ID}
		base := "credit.refund." + ref.ID
		ids := map[string]string{ // transfer of each kind of cut
			"principal": base, "unearned": base + ".unearned", "interest": base + ".interest", "fee": base + ".fee",
		}
		sums := map[string]int64{}
		for _, c := range cuts {
			kind := string(c.Component)
			earned := c.Component != credit.ComponentPrincipal && c.Period <= l.Earned
			if c.Component != credit.ComponentPrincipal {
				ref.ChargesCut += c.Amount
				if !earned {
					kind = "unearned"
					l.RefundCuts = append(l.RefundCuts, c)
				}
			}
			sums[kind] += c.Amount
			ref.Cuts = append(ref.Cuts, RefundCut{Period: c.Period, Component: c.Component, Amount: c.Amount, Earned: earned, Transfer: ids[kind]})
		}
		debit := map[string]string{"principal": MerchantAccount(l.Merchant), "unearned": UnearnedAccount(l.Currency),
			"interest": InterestIncomeAccount(l.Currency), "fee": FeeIncomeAccount(l.Currency)}
		u := &ledger.Unit{}
		for _, kind := range []string{"principal", "unearned", "interest", "fee"} {
			if sums[kind] > 0 {
				u.Transfers = append(u.Transfers, ledger.TransferInput{ID: ids[kind], DebitAccountID: debit[kind], CreditAccountID: line.Receivable,
					Amount: sums[kind], Currency: l.Currency, Code: "credit.refund." + kind, Metadata: meta})
			}
		}
		l.Items, l.Refunded = items, l.Refunded+req.Amount
		if credit.DaysPastDue(l.Items, today) == 0 && l.DPD > 0 {
			l.DPD, l.Bucket = 0, credit.BucketCurrent
		}
		l.refresh()
		u.Records = append(u.Records, loanRecord(l))
		if l.Status == LoanPaidOff {
			line.OpenLoans--
			u.Events = append(u.Events, ledger.ModuleEvent{Subject: "credit.purchase.paid_off", ID: "credit.paid_off." + l.ID, Payload: encode(l)})
		}
		if ev, ok := bucketEvent(l, today, "refund"); ok {
			u.Events = append(u.Events, ev)
		}
		line.Available += req.Amount
		rec := ledger.RecordWrite{Record: ledger.Record{Kind: KindRefund, ID: ref.ID, Owner: l.ID, Status: "applied", Data: encode(ref)}}
		u.Records = append(u.Records, lineRecord(line), rec)
		u.Events = append(u.Events, ledger.ModuleEvent{Subject: "credit.purchase.refunded", ID: base, Payload: rec.Record.Data})
		out = ref
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

func (s *Service) existingRefund(ctx context.Context, id, hash string) (*Refund, error) {
	return existing(ctx, s, KindRefund, id, hash, func(r *Refund) string { return r.Hash })
}

// GetRefund returns a merchant refund.
func (s *Service) GetRefund(ctx context.Context, id string) (*Refund, error) {
	return lookup[Refund](ctx, s, KindRefund, id, apierror.RefundNotFound, "refund")
}

// Refunds returns the merchant refunds of a purchase, newest first, a page at a time.
func (s *Service) Refunds(ctx context.Context, loan, startingAfter string, limit int) ([]*Refund, bool, error) {
	if _, err := s.Loan(ctx, loan); err != nil {
		return nil, false, err
	}
	return listOwned[Refund](ctx, s, KindRefund, loan, startingAfter, limit, "a refund of purchase")
}
