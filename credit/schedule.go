// Package credit is the consumer-credit (Baitiao) domain: exact installment schedules,
// products as configuration, repayment allocation and overdue penalties. It is pure: no
// storage, no HTTP.
package credit

import (
	"math/big"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
)

// Method is how a schedule spreads principal and charges over its periods.
type Method string

// Methods.
const (
	// Annuity (等额本息): equal payments; interest on the remaining principal.
	Annuity Method = "annuity"
	// EqualPrincipal (等额本金): equal principal; interest on the remaining principal.
	EqualPrincipal Method = "equal_principal"
	// FlatFee (Baitiao 分期手续费): equal principal plus a fee of the original principal
	// times the fee rate in every period; no interest.
	FlatFee Method = "flat_fee"
)

// Valid reports whether m is a known method.
func (m Method) Valid() bool { return m == Annuity || m == EqualPrincipal || m == FlatFee }

// ChargesInterest reports whether the method charges interest at an annual rate (rather
// than a per-period fee).
func (m Method) ChargesInterest() bool { return m == Annuity || m == EqualPrincipal }

// Schedule limits.
const (
	// PeriodsMax is the longest plan: 30 years of monthly periods.
	PeriodsMax = 360
)

// Rate bounds. Consumer credit in China is capped far below these (24 % a year is the
// usual ceiling); the bounds only refuse values that are surely typing mistakes, such as 12
// for 12 %.
var (
	// AnnualRateMax is 100 % a year.
	AnnualRateMax = money.MustRate("1")
	// FeeRateMax is 10 % of the principal per period.
	FeeRateMax = money.MustRate("0.1")
)

// Rounding is the rounding rule of every amount a schedule computes: half up (四舍五入) to
// the minor unit, as the credit conventions state (DESIGN.md's half-even default gives way to
// the product convention).
const Rounding = money.HalfUp

// Terms are what fixes a schedule.
type Terms struct {
	// Principal in minor units, 1..money.MaxAmount.
	Principal int64 `json:"principal"`
	// Periods is the number of monthly installments, 1..PeriodsMax.
	Periods int    `json:"periods"`
	Method  Method `json:"method"`
	// AnnualRate is the nominal annual interest rate of annuity and equal_principal plans
	// (0.12 for 12 %); the monthly rate is exactly AnnualRate/12. Zero for flat_fee.
	AnnualRate money.Rate `json:"annual_rate"`
	// FeeRate is flat_fee's fee per period as a fraction of the principal (0.006 for
	// 0.6 % a month). Zero for the other methods.
	FeeRate money.Rate `json:"fee_rate"`
	// Start is the date the plan starts (the purchase or the drawdown); installment k falls
	// due k months later.
	Start Date `json:"start"`
}

// Installment is one period of a schedule. Total = Principal + Interest + Fee;
// RemainingPrincipal is what is still owed after this installment's principal is paid.
type Installment struct {
	Period             int   `json:"period"`
	DueDate            Date  `json:"due_date"`
	Principal          int64 `json:"principal"`
	Interest           int64 `json:"interest"`
	Fee                int64 `json:"fee"`
	Total              int64 `json:"total"`
	RemainingPrincipal int64 `json:"remaining_principal"`
}

// Schedule is a complete installment plan and its totals.
type Schedule struct {
	Installments   []Installment `json:"installments"`
	TotalPrincipal int64         `json:"total_principal"`
	TotalInterest  int64         `json:"total_interest"`
	TotalFee       int64         `json:"total_fee"`
}

func invalid(param, format string, args ...any) *apierror.Error {
	return apierror.Newf(apierror.InvalidRequest, param, format, args...)
}

// Validate checks the terms without computing anything. Every error is an invalid_request
// naming the parameter.
func (t *Terms) Validate() *apierror.Error {
	switch {
	case !money.ValidAmount(t.Principal):
		return invalid("principal", "principal must be between 1 and %d minor units", money.MaxAmount)
	case t.Periods < 1 || t.Periods > PeriodsMax:
		return invalid("periods", "periods must be between 1 and %d", PeriodsMax)
	case !t.Method.Valid():
		return invalid("method", "method must be annuity, equal_principal or flat_fee")
	case t.Start.IsZero():
		return invalid("start", "start date is required (YYYY-MM-DD)")
	case t.Start.AddMonths(t.Periods).Year() > DateYearMax:
		return invalid("start", "the last installment would fall due after %d", DateYearMax)
	}
	if t.Method.ChargesInterest() {
		if !t.FeeRate.IsZero() {
			return invalid("fee_rate", "%s charges interest at annual_rate; fee_rate applies to flat_fee only", t.Method)
		}
		if t.AnnualRate.Cmp(AnnualRateMax) > 0 {
			return invalid("annual_rate", "annual_rate must be between 0 and %s (a fraction: 0.12 is 12%%)", AnnualRateMax)
		}
	} else {
		if !t.AnnualRate.IsZero() {
			return invalid("annual_rate", "flat_fee charges a fee at fee_rate; annual_rate applies to annuity and equal_principal only")
		}
		if t.FeeRate.Cmp(FeeRateMax) > 0 {
			return invalid("fee_rate", "fee_rate must be between 0 and %s per period (a fraction: 0.006 is 0.6%%)", FeeRateMax)
		}
	}
	return nil
}

// NewSchedule computes the schedule of t exactly (docs/credit.md gives the conventions with
// worked examples):
//
//   - installment k falls due on Start plus k months, the same day of the month clamped to
//     the month's last day;
//   - the monthly rate is r = AnnualRate/12, exact; every amount is rounded half up to the
//     minor unit;
//   - annuity: payment A = round(P·r·(1+r)^n / ((1+r)^n − 1)), or round(P/n) when r = 0;
//     interest = round(remaining·r), principal = A − interest, capped at the remaining
//     principal (which only binds for principals of a few minor units, where rounding A up
//     repays everything before the last period); the last period's principal is whatever
//     remains;
//   - equal_principal: principal = floor(P/n) in every period but the last, which takes the
//     rest; interest = round(remaining·r) on the principal outstanding before the period;
//   - flat_fee: principal as in equal_principal; fee = round(P·F) in every period; no interest.
//
// The totals may not exceed money.MaxAmount.
func NewSchedule(t Terms) (*Schedule, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	r := t.AnnualRate.Div(12) // zero for flat_fee
	n, p := t.Periods, t.Principal
	var payment, fee int64
	switch t.Method {
	case Annuity:
		payment = annuityPayment(p, n, r)
	case FlatFee:
		fee, _ = money.MulRate(p, t.FeeRate, Rounding) // p <= 2^53, F <= 0.1: cannot overflow
	}
	s := &Schedule{Installments: make([]Installment, n)}
	remaining := p
	for k := 1; k <= n; k++ {
		interest, _ := money.MulRate(remaining, r, Rounding) // r < 1: cannot overflow
		var principal int64
		switch {
		case k == n:
			principal = remaining
		case t.Method == Annuity:
			principal = min(payment-interest, remaining)
		default:
			principal = p / int64(n)
		}
		remaining -= principal
		s.Installments[k-1] = Installment{
			Period:             k,
			DueDate:            t.Start.AddMonths(k),
			Principal:          principal,
			Interest:           interest,
			Fee:                fee,
			Total:              principal + interest + fee,
			RemainingPrincipal: remaining,
		}
		s.TotalPrincipal += principal
		s.TotalInterest += interest
		s.TotalFee += fee
	}
	if s.TotalInterest+s.TotalFee > money.MaxAmount-s.TotalPrincipal {
		return nil, invalid("principal", "the plan's total repayment would exceed %d minor units", money.MaxAmount)
	}
	return s, nil
}

// annuityPayment is round(P·r·(1+r)^n / ((1+r)^n − 1)) for r = a/b, computed in integers:
// P·a·(a+b)^n / (b·((a+b)^n − b^n)); round(P/n) when r = 0.
func annuityPayment(p int64, n int, r money.Rate) int64 {
	if r.IsZero() {
		a, _ := money.MulFrac(p, 1, int64(n), Rounding)
		return a
	}
	a, b := big.NewInt(r.Num()), big.NewInt(r.Den())
	bn := new(big.Int).Exp(b, big.NewInt(int64(n)), nil)
	abn := new(big.Int).Exp(new(big.Int).Add(a, b), big.NewInt(int64(n)), nil)
	num := new(big.Int).Mul(big.NewInt(p), a)
	num.Mul(num, abn)
	den := new(big.Int).Sub(abn, bn)
	den.Mul(den, b)
	v, _ := money.RoundQuo(num, den, Rounding) // A < P·(1+r): fits
	return v
}
