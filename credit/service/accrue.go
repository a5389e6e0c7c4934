package service

import (
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
)

// Accrual, ageing and penalties of one loan: the end-of-day batch's work, also used by
// repayments (which earn what falls due on the day they are made before paying it).

// maxCatchUpDays bounds the days one batch run applies to one loan (a loan the batch has not
// seen for longer catches up over several runs).
const maxCatchUpDays = 3660

// earnThrough recognises as income the interest and fees of the installments due on or
// before d that are not yet earned (less what early repayment waived), and returns them.
func earnThrough(l *Loan, d credit.Date) (interest, fee int64) {
	for l.Earned < len(l.Schedule) && !l.Schedule[l.Earned].DueDate.After(d) {
		in := &l.Schedule[l.Earned]
		interest += in.Interest - l.waived(in.Period, credit.ComponentInterest)
		fee += in.Fee - l.waived(in.Period, credit.ComponentFee)
		l.Earned++
	}
	return interest, fee
}

// earnPostings move earned charges from unearned to income.
func earnPostings(id, currency string, interest, fee int64, meta map[string]string) []ledger.TransferInput {
	var out []ledger.TransferInput
	a := accountsOf(currency)
	if interest > 0 {
		out = append(out, ledger.TransferInput{ID: id + ".interest", DebitAccountID: a.unearned,
			CreditAccountID: a.interest, Amount: interest, Currency: currency, Code: "credit.earn.interest", Metadata: meta})
	}
	if fee > 0 {
		out = append(out, ledger.TransferInput{ID: id + ".fee", DebitAccountID: a.unearned,
			CreditAccountID: a.fee, Amount: fee, Currency: currency, Code: "credit.earn.fee", Metadata: meta})
	}
	return out
}

// dayResult is what applying business dates to a loan did.
type dayResult struct {
	transfers []ledger.TransferInput
	event     *ledger.ModuleEvent
	writeOff  *ledger.ModuleEvent
	earned    int64
	penalty   int64
}

// advance applies the business dates after the loan's LastEOD through d: interest and fees
// falling due are earned, each day past due charges the product's daily penalty on the
// unpaid principal, interest and fee of each past-due installment (after the grace days),
// and the loan is aged (days past due and bucket; a change of bucket is an event). It
// reports false when the loan had nothing to do (and leaves it unchanged).
func advance(l *Loan, p *credit.Product, d credit.Date) (dayResult, bool) {
	var r dayResult
	if l.Status != LoanActive || !l.LastEOD.Before(d) || l.Next.IsZero() || l.Next.After(d) {
		return r, false
	}
	start := l.LastEOD.AddDays(1)
	if l.Next.After(start) {
		start = l.Next
	}
	if d.DaysSince(start) > maxCatchUpDays {
		d = start.AddDays(maxCatchUpDays)
	}
	var interest, fee int64
	var writeOff bool
	var buf [4]credit.Split // a day's penalties, one per installment past due
	for day := start; !day.After(d); day = day.AddDays(1) {
		i, f := earnThrough(l, day)
		interest, fee = interest+i, fee+f
		if p.WriteOffDays > 0 && credit.DaysPastDue(l.Items, day) >= p.WriteOffDays {
			// Written off at the end of this day, without its penalty; no day after it
			// is applied.
			d, writeOff = day, true
			break
		}
		for _, sp := range credit.AppendDailyPenalties(buf[:0], l.Items, day, p.DailyPenaltyRate, p.GraceDays) {
			for k := range l.Items {
				if l.Items[k].Period == sp.Period {
					l.Items[k].Penalty += sp.Amount
				}
			}
			r.penalty += sp.Amount
		}
	}
	// The batch sums these over a unit and gives the sums their ids and metadata
	// (eodUnit.unit), so none is made here.
	r.transfers = earnPostings("", l.Currency, interest, fee, nil)
	r.earned = interest + fee
	if r.penalty > 0 {
		// On the currency's penalty receivable, not the line's: a unit's loans are of many
		// lines (a page in creation order), and their penalties sum into one posting.
		l.PenaltyTotal += r.penalty
		l.PenaltyPooled += r.penalty
		a := accountsOf(l.Currency)
		r.transfers = append(r.transfers, ledger.TransferInput{DebitAccountID: a.penaltyRecv,
			CreditAccountID: a.penaltyIncome, Amount: r.penalty, Currency: l.Currency, Code: "credit.penalty"})
	}
	l.DPD = credit.DaysPastDue(l.Items, d)
	l.Bucket = credit.BucketOf(l.DPD)
	l.LastEOD = d
	l.refresh()
	if ev, ok := bucketEvent(l, d, "end_of_day"); ok {
		r.event = &ev
	}
	if writeOff {
		writeOffLoan(l, d, &r)
	}
	return r, true
}

// writeOffLoan writes a loan off at the end of d (DESIGN.md C6): the charges of
// installments not yet fallen due go back from the receivable to unearned income (they
// will never be earned), and everything else it owes (principal, earned interest and fees,
// penalties) is charged to write-off expense, from the line's receivable and, for its
// penalty pooled, from the currency's penalty receivable. What the customer owes
// stays in the loan's items for collection; the loan leaves the batch (status
// written_off, so no more penalties) and a credit.loan.written_off event is emitted.
func writeOffLoan(l *Loan, d credit.Date, r *dayResult) {
	var unearned int64
	for i := range l.Items {
		if l.Items[i].Period > l.Earned {
			unearned += l.Items[i].Interest + l.Items[i].Fee
		}
	}
	owed := l.Owed()
	expense := owed - unearned
	pooled := l.PenaltyPooled
	meta := map[string]string{"loan": l.ID, "date": d.String()}
	id := "credit.writeoff." + l.ID
	if unearned > 0 {
		r.transfers = append(r.transfers, ledger.TransferInput{ID: id + ".unearned", DebitAccountID: UnearnedAccount(l.Currency),
			CreditAccountID: ReceivableAccount(l.Account), Amount: unearned, Currency: l.Currency, Code: "credit.write_off.unearned", Metadata: meta})
	}
	if expense > pooled {
		r.transfers = append(r.transfers, ledger.TransferInput{ID: id, DebitAccountID: WriteOffAccount(l.Currency),
			CreditAccountID: ReceivableAccount(l.Account), Amount: expense - pooled, Currency: l.Currency, Code: "credit.write_off", Metadata: meta})
	}
	if pooled > 0 {
		r.transfers = append(r.transfers, ledger.TransferInput{ID: id + ".penalty", DebitAccountID: WriteOffAccount(l.Currency),
			CreditAccountID: PenaltyReceivableAccount(l.Currency), Amount: pooled, Currency: l.Currency, Code: "credit.write_off", Metadata: meta})
	}
	l.PenaltyPooled = 0
	l.Status, l.Next = LoanWrittenOff, credit.Date{}
	l.WrittenOff, l.WrittenOffUnearned, l.WrittenOffOn = expense, unearned, d
	payload := encode(map[string]any{"loan_id": l.ID, "account_id": l.Account, "date": d, "days_past_due": l.DPD,
		"written_off": expense, "unearned_reversed": unearned, "principal": l.OutstandingPrincipal, "owed": owed})
	r.writeOff = &ledger.ModuleEvent{Subject: "credit.loan.written_off", ID: id, Payload: payload}
}
