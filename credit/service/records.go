package service

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// Record kinds: the credit module's state, committed by the ledger's writer together with
// the postings that go with it (docs/adr/0013-module-records-in-ledger-units.md).
const (
	KindApplication = "credit.application"
	KindLine        = "credit.line"
	KindLoan        = "credit.loan"
	KindRepayment   = "credit.repayment"
	KindStatement   = "credit.statement"
	KindEOD         = "credit.eod"
	KindRefund      = "credit.refund"
)

// Line statuses.
const (
	LineActive = "active"
	LineFrozen = "frozen"
)

// Loan statuses.
const (
	LoanActive  = "active"
	LoanPaidOff = "paid_off"
	// LoanWrittenOff is a loan written off after the product's write_off_days past due: its
	// receivable was charged to write-off expense and the batch no longer touches it.
	LoanWrittenOff = "written_off"
)

// Plans of a purchase.
const (
	PlanPayLater     = "pay_later"
	PlanInstallments = "installments"
)

// Line is a customer's credit line (DESIGN.md C2): its limit, what is available to draw and
// whether operations froze it. Limit − Available is the principal the customer owes; the
// reconciler checks it against the loans.
type Line struct {
	ID          string      `json:"id"`
	Customer    string      `json:"customer_id"`
	Product     string      `json:"product"`
	Currency    string      `json:"currency"`
	Limit       int64       `json:"limit"`
	Available   int64       `json:"available"`
	Frozen      bool        `json:"frozen"`
	FrozenBy    string      `json:"frozen_by,omitempty"`
	FrozenNote  string      `json:"frozen_reason,omitempty"`
	AnnualRate  money.Rate  `json:"annual_rate"`
	Tier        string      `json:"tier"`
	Channel     string      `json:"funding_channel"`
	Application string      `json:"application_id"`
	Opened      credit.Date `json:"opened"`
	OpenLoans   int         `json:"open_loans"`
	Receivable  string      `json:"receivable_account"`
	// FreezeLog is the line's last FreezeLogMax freezes and unfreezes, oldest first: who
	// (an operator, or the write-off of a purchase), when and why.
	FreezeLog []FreezeEntry `json:"freeze_log,omitempty"`
	Version   int64         `json:"version"`
}

// FreezeLogMax bounds a line's freeze log (the events keep the whole history).
const FreezeLogMax = 20

// FreezeEntry is one freeze or unfreeze of a line.
type FreezeEntry struct {
	At     time.Time `json:"at"`
	Frozen bool      `json:"frozen"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	// Loan is the written-off purchase that froze the line automatically.
	Loan string `json:"purchase_id,omitempty"`
}

// Loan is one purchase on credit and its plan: the schedule fixed at purchase and what each
// installment still owes.
type Loan struct {
	// Next is the first business date on which the end-of-day batch has something to do
	// for the loan (an installment falls due, or one is past due). It is the record's first
	// field so that the batch can skip a loan without decoding it (loanNext).
	Next credit.Date `json:"next"`
	// Outstanding and OutstandingPrincipal are what the loan owes in all and of principal
	// (kept by refresh; read by the reconciler without decoding, see loanOwed).
	Outstanding          int64       `json:"owed"`
	OutstandingPrincipal int64       `json:"owed_principal"`
	ID                   string      `json:"id"`
	Account              string      `json:"account_id"`
	Merchant             string      `json:"merchant_id"`
	Product              string      `json:"product"`
	Currency             string      `json:"currency"`
	Plan                 string      `json:"plan"`
	Amount               int64       `json:"amount"`
	Date                 credit.Date `json:"date"`
	// Terms are the schedule's terms (installments only).
	Terms    *credit.Terms        `json:"terms,omitempty"`
	Schedule []credit.Installment `json:"schedule"`
	// Items are what each installment still owes, penalties included.
	Items []credit.Item `json:"items"`
	// Waived are the interest and fees waived by early repayment, per installment.
	Waived []credit.Split `json:"waived"`
	// Refunded is the principal merchant refunds took off the plan; RefundCuts are the
	// interest and fees they took off installments not yet earned (so never earned).
	Refunded   int64          `json:"refunded,omitempty"`
	RefundCuts []credit.Split `json:"refund_cuts,omitempty"`
	// Earned is the number of installments whose interest and fee have been recognised as
	// income (on their due dates, in period order).
	Earned int `json:"earned"`
	// Penalties is every penalty charged, by day.
	PenaltyTotal int64 `json:"penalty_total"`
	// PenaltyPooled is the part of the penalties the loan still owes that is booked on the
	// currency's penalty receivable (PenaltyReceivableAccount) rather than on its line's
	// receivable: the batch charges penalties there (one posting per unit, whatever the
	// lines of its loans), and a repayment that pays a loan's penalties first moves any it
	// owes on the line's receivable (charged before the penalty receivable existed) there.
	// The reconciler checks the line's receivable against what its loans owe less this,
	// and each penalty receivable against the sum of this over its currency's loans. 0 once
	// the loan is written off (the write-off charges it from the penalty receivable).
	PenaltyPooled int64         `json:"penalty_pooled,omitempty"`
	DPD           int           `json:"days_past_due"`
	Bucket        credit.Bucket `json:"bucket"`
	// WrittenOff is what the write-off charged to expense (principal, earned charges and
	// penalties), WrittenOffUnearned the charges not yet earned it reversed, and
	// WrittenOffOn its business date.
	WrittenOff         int64       `json:"written_off,omitempty"`
	WrittenOffUnearned int64       `json:"written_off_unearned,omitempty"`
	WrittenOffOn       credit.Date `json:"written_off_on,omitzero"`
	// Recovered is what repayments recovered after the write-off (docs/credit.md, recoveries).
	Recovered int64 `json:"recovered,omitempty"`
	// LastEOD is the last business date the end-of-day batch applied to the loan.
	LastEOD credit.Date `json:"last_eod"`
	Status  string      `json:"status"`
	Hash    string      `json:"request_hash"`
	Version int64       `json:"version"`

	prevBucket credit.Bucket // the bucket the stored version holds
	// termsRaw are the encoded terms of a loan decoded without them (decodeLoanRecord), so
	// that writing it keeps them. Terms is nil then.
	termsRaw string
}

// Owed is everything the loan still owes.
func (l *Loan) Owed() int64 {
	var n int64
	for i := range l.Items {
		n += l.Items[i].Total()
	}
	return n
}

// OwedPenalty is the penalties the loan still owes.
func (l *Loan) OwedPenalty() int64 {
	var n int64
	for i := range l.Items {
		n += l.Items[i].Penalty
	}
	return n
}

// OwedPrincipal is the principal the loan still owes.
func (l *Loan) OwedPrincipal() int64 {
	var n int64
	for i := range l.Items {
		n += l.Items[i].Principal
	}
	return n
}

// waived returns what was waived of component c on period k, by early repayment or by a
// merchant refund: charges that are never earned.
func (l *Loan) waived(k int, c credit.Component) int64 {
	var n int64
	for _, s := range slices.Concat(l.Waived, l.RefundCuts) {
		if s.Period == k && s.Component == c {
			n += s.Amount
		}
	}
	return n
}

// refresh recomputes Next and Status after a change.
func (l *Loan) refresh() {
	l.Outstanding, l.OutstandingPrincipal = l.Owed(), l.OwedPrincipal()
	if l.Outstanding == 0 {
		// Nothing owed: every charge not yet earned was waived, so nothing is left to earn.
		l.Status, l.Earned, l.Next = LoanPaidOff, len(l.Schedule), credit.Date{}
		return
	}
	l.Status = LoanActive
	var next credit.Date
	if l.Earned < len(l.Schedule) {
		next = l.Schedule[l.Earned].DueDate
	}
	for i := range l.Items {
		it := &l.Items[i]
		if it.Total() > 0 && !it.DueDate.After(l.LastEOD) {
			// Past due at the end of LastEOD: the next day ages and charges it.
			next = l.LastEOD.AddDays(1)
			break
		}
	}
	if next.IsZero() {
		// Everything earned and nothing past due: the next due date with something owed.
		for i := range l.Items {
			if l.Items[i].Total() > 0 && (next.IsZero() || l.Items[i].DueDate.Before(next)) {
				next = l.Items[i].DueDate
			}
		}
	}
	l.Next = next
}

// Repayment is one repayment and how it was split.
type Repayment struct {
	ID       string      `json:"id"`
	Account  string      `json:"account_id"`
	Amount   int64       `json:"amount"`
	Currency string      `json:"currency"`
	Date     credit.Date `json:"date"`
	// Loan restricts the repayment to one loan ("" for every loan of the account).
	Loan string `json:"loan_id,omitempty"`
	// Splits are what it paid, per loan, installment and component, in the order paid;
	// Waived are interest and fees it waived; Leftover is what it could not use (not taken).
	Splits   []RepaymentSplit `json:"splits"`
	Waived   []RepaymentSplit `json:"waived"`
	Paid     int64            `json:"paid"`
	Leftover int64            `json:"leftover"`
	// PrincipalRestored is what the repayment gave back to the line's available credit.
	PrincipalRestored int64 `json:"principal_restored"`
	// Recovered is the part of Paid that repaid written-off loans (recoveries).
	Recovered int64 `json:"recovered,omitempty"`
	// EarnedInterest and EarnedFee are charges falling due on the repayment's date that it
	// recognised as income before paying them.
	EarnedInterest int64  `json:"earned_interest"`
	EarnedFee      int64  `json:"earned_fee"`
	Hash           string `json:"request_hash"`
	Created        string `json:"created"`
}

// RepaymentSplit is a split of a repayment on one loan, with the ledger transfer it was
// posted in.
type RepaymentSplit struct {
	Loan      string           `json:"loan_id"`
	Period    int              `json:"period"`
	Component credit.Component `json:"component"`
	Amount    int64            `json:"amount"`
	// Recovery marks a split of a written-off loan, posted to recovery income.
	Recovery bool   `json:"recovery,omitempty"`
	Transfer string `json:"transfer_id"`
}

// Statement is what an account owes as of a statement date: every installment that falls
// due by the payment due date, and every one past due.
type Statement struct {
	ID       string          `json:"id"`
	Account  string          `json:"account_id"`
	Date     credit.Date     `json:"statement_date"`
	DueDate  credit.Date     `json:"due_date"`
	Currency string          `json:"currency"`
	Lines    []StatementLine `json:"lines"`
	Total    int64           `json:"total_due"`
	PastDue  int64           `json:"past_due"`
}

// StatementLine is one installment on a statement.
type StatementLine struct {
	Loan      string      `json:"loan_id"`
	Merchant  string      `json:"merchant_id"`
	Period    int         `json:"period"`
	Periods   int         `json:"periods"`
	DueDate   credit.Date `json:"due_date"`
	Principal int64       `json:"principal"`
	Interest  int64       `json:"interest"`
	Fee       int64       `json:"fee"`
	Penalty   int64       `json:"penalty"`
	Total     int64       `json:"total"`
	PastDue   bool        `json:"past_due"`
}

// encode marshals a record's data.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("credit: encode %T: %v", v, err)) // every record type marshals
	}
	return b
}

// decode unmarshals a record's data and sets the version from the record.
func decode[T any](r *ledger.Record, v *T, version *int64) error {
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("credit: decode %s %s: %w", r.Kind, r.ID, err)
	}
	*version = r.Version
	return nil
}

// loanNext reads a loan record's Next without decoding the rest: the data starts with
// {"next":"YYYY-MM-DD" (or {"next":null for a paid-off loan). ok is false when the data does
// not start so, and the caller decodes it.
func loanNextJSON(data []byte) (credit.Date, bool) {
	if bytes.HasPrefix(data, []byte(`{"next":null`)) {
		return credit.Date{}, true
	}
	const prefix = `{"next":"`
	if !bytes.HasPrefix(data, []byte(prefix)) || len(data) < len(prefix)+11 || data[len(prefix)+10] != '"' {
		return credit.Date{}, false
	}
	d, err := credit.ParseDate(string(data[len(prefix) : len(prefix)+10]))
	return d, err == nil
}

// fingerprint is a request's hash, for idempotent replays (same id, same body).
func fingerprint(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// dateOf is the calendar date of t in loc.
func dateOf(t time.Time, loc *time.Location) credit.Date {
	t = t.In(loc)
	d, _ := credit.NewDate(t.Year(), t.Month(), t.Day())
	return d
}
