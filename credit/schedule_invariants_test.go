package credit

import (
	"math/big"
	"testing"
	"time"

	"github.com/fincore/fincore/money"
	"pgregory.net/rapid"
)

// fataler is what testing.TB and rapid.T have in common.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// checkInvariants holds every schedule to the rules that do not depend on the figures:
// principals sum to P, the remaining principal falls by each principal and ends at 0,
// totals are sums, nothing is negative, due dates follow the month rule.
func checkInvariants(t fataler, terms Terms, s *Schedule) {
	t.Helper()
	if len(s.Installments) != terms.Periods {
		t.Fatalf("%d installments for %d periods", len(s.Installments), terms.Periods)
	}
	remaining := terms.Principal
	var sp, si, sf int64
	for i, in := range s.Installments {
		k := i + 1
		if in.Period != k {
			t.Fatalf("installment %d has period %d", k, in.Period)
		}
		if in.Principal < 0 || in.Interest < 0 || in.Fee < 0 {
			t.Fatalf("period %d has a negative amount: %+v", k, in)
		}
		if in.Total != in.Principal+in.Interest+in.Fee {
			t.Fatalf("period %d total %d != %d+%d+%d", k, in.Total, in.Principal, in.Interest, in.Fee)
		}
		remaining -= in.Principal
		if in.RemainingPrincipal != remaining || remaining < 0 {
			t.Fatalf("period %d remaining %d, want %d", k, in.RemainingPrincipal, remaining)
		}
		// Due date: the start's day of month, clamped to the month's last day.
		due := in.DueDate
		months := (due.Year()-terms.Start.Year())*12 + int(due.Month()) - int(terms.Start.Month())
		if months != k || due.Day() != min(terms.Start.Day(), daysIn(due.Year(), due.Month())) {
			t.Fatalf("period %d due %s from start %s", k, due, terms.Start)
		}
		if terms.Method != FlatFee && in.Fee != 0 || terms.Method == FlatFee && in.Interest != 0 {
			t.Fatalf("period %d charges the wrong kind: %+v", k, in)
		}
		sp += in.Principal
		si += in.Interest
		sf += in.Fee
	}
	if remaining != 0 || sp != terms.Principal {
		t.Fatalf("principals sum to %d, want %d", sp, terms.Principal)
	}
	if s.TotalPrincipal != sp || s.TotalInterest != si || s.TotalFee != sf {
		t.Fatalf("totals %d/%d/%d, sums %d/%d/%d", s.TotalPrincipal, s.TotalInterest, s.TotalFee, sp, si, sf)
	}
}

// refPayment is the annuity payment computed the slow, obvious way in big.Rat: a second
// implementation to hold the integer one to.
func refPayment(p int64, n int, annual money.Rate) int64 {
	r := new(big.Rat).Quo(annual.Rat(), big.NewRat(12, 1))
	if r.Sign() == 0 {
		v, _ := money.RoundRat(big.NewRat(p, int64(n)), money.HalfUp)
		return v
	}
	pow := big.NewRat(1, 1)
	onePlusR := new(big.Rat).Add(big.NewRat(1, 1), r)
	for range n {
		pow.Mul(pow, onePlusR)
	}
	x := new(big.Rat).Mul(new(big.Rat).SetInt64(p), r)
	x.Mul(x, pow)
	x.Quo(x, new(big.Rat).Sub(pow, big.NewRat(1, 1)))
	v, _ := money.RoundRat(x, money.HalfUp)
	return v
}

func drawTerms(t *rapid.T) Terms {
	terms := Terms{
		// Mostly everyday amounts, sometimes tiny or huge ones.
		Principal: rapid.OneOf(
			rapid.Int64Range(1, 100),
			rapid.Int64Range(1, 100_000_000),
			rapid.Int64Range(1, money.MaxAmount),
		).Draw(t, "principal"),
		Periods: rapid.OneOf(rapid.SampledFrom([]int{1, 3, 6, 12, 24}), rapid.IntRange(1, PeriodsMax)).Draw(t, "periods"),
		Method:  rapid.SampledFrom([]Method{Annuity, EqualPrincipal, FlatFee}).Draw(t, "method"),
		Start: func() Date {
			d, _ := NewDate(rapid.IntRange(1990, 2600).Draw(t, "year"), time.Month(rapid.IntRange(1, 12).Draw(t, "month")), 1)
			return d.AddDays(rapid.IntRange(0, 30).Draw(t, "day")) // any day, including month ends
		}(),
	}
	if terms.Method == FlatFee {
		terms.FeeRate = money.MustRate(big.NewRat(rapid.Int64Range(0, 100_000).Draw(t, "fee_ppm"), 1_000_000).FloatString(6))
	} else {
		terms.AnnualRate = money.MustRate(big.NewRat(rapid.Int64Range(0, 1_000_000).Draw(t, "rate_ppm"), 1_000_000).FloatString(6))
	}
	return terms
}

// TestScheduleInvariants draws terms at random (principals from 1 minor unit to MaxAmount,
// 1 to 360 periods, any start day, rates from 0 to the bounds) and checks every schedule.
func TestScheduleInvariants(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		terms := drawTerms(rt)
		s, err := NewSchedule(terms)
		if err != nil {
			// Only the overall bound may refuse valid-looking terms.
			if terms.Principal < money.MaxAmount/40 {
				rt.Fatalf("NewSchedule(%+v): %v", terms, err)
			}
			return
		}
		checkInvariants(rt, terms, s)
		switch terms.Method {
		case Annuity:
			a := refPayment(terms.Principal, terms.Periods, terms.AnnualRate)
			for _, in := range s.Installments[:terms.Periods-1] {
				// Every payment but the last is A, unless the loan is already repaid (tiny principals).
				if in.Total != a && !(in.RemainingPrincipal == 0 && in.Total < a) {
					rt.Fatalf("period %d total %d, payment %d", in.Period, in.Total, a)
				}
			}
		case EqualPrincipal, FlatFee:
			fee, _ := money.MulRate(terms.Principal, terms.FeeRate, money.HalfUp)
			for _, in := range s.Installments[:terms.Periods-1] {
				if in.Principal != terms.Principal/int64(terms.Periods) || in.Fee != fee {
					rt.Fatalf("period %d = %+v", in.Period, in)
				}
			}
		}
	})
}
