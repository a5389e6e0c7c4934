package credit

import "github.com/fincore/fincore/money"

// Bucket is a delinquency bucket by days past due.
type Bucket string

// Buckets.
const (
	BucketCurrent Bucket = "current" // nothing past due
	BucketM1      Bucket = "M1"      // 1 to 30 days past due
	BucketM2      Bucket = "M2"      // 31 to 60
	BucketM3      Bucket = "M3"      // 61 to 90
	BucketM3Plus  Bucket = "M3+"     // 91 and more
)

// BucketOf returns the bucket of a plan dpd days past due.
func BucketOf(dpd int) Bucket {
	switch {
	case dpd <= 0:
		return BucketCurrent
	case dpd <= 30:
		return BucketM1
	case dpd <= 60:
		return BucketM2
	case dpd <= 90:
		return BucketM3
	}
	return BucketM3Plus
}

// DaysPastDue is how many days the oldest installment that still owes anything has been
// past due at the end of asOf: an installment due on D and unpaid is 1 day past due on D+1.
// It is 0 when nothing is past due.
func DaysPastDue(items []Item, asOf Date) int {
	dpd := 0
	for i := range items {
		it := &items[i]
		if it.Total() > 0 && it.DueDate.Before(asOf) {
			dpd = max(dpd, asOf.DaysSince(it.DueDate))
		}
	}
	return dpd
}

// DailyPenalties returns the penalty each past-due installment accrues for the day asOf:
// round((unpaid principal + interest + fee) × rate), half up, per installment. Penalties do
// not accrue on penalties, and not during the first graceDays days past due (nor later for
// them: grace is not charged back). Installments with nothing to charge are left out.
func DailyPenalties(items []Item, asOf Date, rate money.Rate, graceDays int) []Split {
	return AppendDailyPenalties(nil, items, asOf, rate, graceDays)
}

// AppendDailyPenalties is DailyPenalties appending to out (the end-of-day batch reuses one
// buffer for every day of every loan).
func AppendDailyPenalties(out []Split, items []Item, asOf Date, rate money.Rate, graceDays int) []Split {
	for i := range items {
		it := &items[i]
		if !it.DueDate.Before(asOf) || asOf.DaysSince(it.DueDate) <= graceDays {
			continue
		}
		p, ok := money.MulRate(it.Principal+it.Interest+it.Fee, rate, Rounding)
		if ok && p > 0 {
			out = append(out, Split{Period: it.Period, Component: ComponentPenalty, Amount: p})
		}
	}
	return out
}
