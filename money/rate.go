package money

import (
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
)

// Rate limits. A rate is written as a plain decimal fraction ("0.12" is 12 %), with at most
// RateDigitsMax digits after the point and a value of at most RateMax, so that its numerator
// and denominator always fit an int64 and products with amounts fit 128 bits.
const (
	RateDigitsMax = 10
	RateMax       = 1000
)

// Rate is an exact, non-negative rational rate such as an annual interest rate (0.12), a
// per-period fee rate (0.006) or a daily penalty rate (0.0005). It is parsed from decimal text
// and never passes through a float; dividing it (R/12) keeps it exact. The zero value is 0.
type Rate struct {
	num, den int64 // reduced; den == 0 means the zero value (0/1)
}

// ErrRate is wrapped by every rate parsing error.
var ErrRate = errors.New("invalid rate")

// ParseRate parses a decimal fraction: digits, optionally a point and 1 to RateDigitsMax
// digits. No sign, exponent, percent sign or spaces.
func ParseRate(s string) (Rate, error) {
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if intPart == "" || (hasPoint && frac == "") || !allDigits(intPart) || !allDigits(frac) {
		return Rate{}, fmt.Errorf("%w %q: write a decimal fraction such as 0.12", ErrRate, s)
	}
	if len(frac) > RateDigitsMax {
		return Rate{}, fmt.Errorf("%w %q: at most %d digits after the point", ErrRate, s, RateDigitsMax)
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 4 {
		return Rate{}, fmt.Errorf("%w %q: at most %d", ErrRate, s, RateMax)
	}
	n, _ := strconv.ParseInt(intPart+frac, 10, 64) // at most 14 digits
	if intPart == "" && frac == "" {
		n = 0
	}
	den := int64(1)
	for range len(frac) {
		den *= 10
	}
	r := newRate(n, den)
	if r.Cmp(Rate{RateMax, 1}) > 0 {
		return Rate{}, fmt.Errorf("%w %q: at most %d", ErrRate, s, RateMax)
	}
	return r, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MustRate is ParseRate for constants; it panics on a malformed rate.
func MustRate(s string) Rate {
	r, err := ParseRate(s)
	if err != nil {
		panic(err)
	}
	return r
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func newRate(num, den int64) Rate {
	if num == 0 {
		return Rate{}
	}
	g := gcd(num, den)
	return Rate{num / g, den / g}
}

// Num and Den are the reduced numerator and denominator (0/1 for zero).
func (r Rate) Num() int64 { return r.num }

// Den is the reduced denominator, at least 1.
func (r Rate) Den() int64 {
	if r.den == 0 {
		return 1
	}
	return r.den
}

// IsZero reports whether the rate is 0.
func (r Rate) IsZero() bool { return r.num == 0 }

// Div returns r/n exactly (an annual rate divided by 12 gives the monthly rate). n must be
// positive and small enough that the denominator stays within int64 (n <= 10^6 always is).
func (r Rate) Div(n int64) Rate {
	if n <= 0 || n > 1_000_000 {
		panic("money: Rate.Div by a divisor outside 1..1e6")
	}
	return newRate(r.num, r.Den()*n)
}

// Cmp compares r and o: -1, 0 or +1.
func (r Rate) Cmp(o Rate) int {
	// num/den vs onum/oden  <=>  num*oden vs onum*den, in 128 bits.
	ah, al := bits.Mul64(uint64(r.num), uint64(o.Den()))
	bh, bl := bits.Mul64(uint64(o.num), uint64(r.Den()))
	switch {
	case ah < bh || ah == bh && al < bl:
		return -1
	case ah == bh && al == bl:
		return 0
	}
	return 1
}

// Rat returns the rate as a new big.Rat.
func (r Rate) Rat() *big.Rat { return big.NewRat(r.num, r.Den()) }

// String writes the rate as a decimal fraction when it has one of at most 18 digits after the
// point (every parsed rate does), otherwise as "num/den".
func (r Rate) String() string {
	den := r.Den()
	d, digits := den, 0
	for d%10 == 0 {
		d /= 10
	}
	for d%2 == 0 {
		d /= 2
	}
	for d%5 == 0 {
		d /= 5
	}
	if d != 1 {
		return fmt.Sprintf("%d/%d", r.num, den)
	}
	// den = 2^a 5^b: scale to 10^max(a,b).
	scale := int64(1)
	for scale%den != 0 {
		if digits == 18 {
			return fmt.Sprintf("%d/%d", r.num, den)
		}
		scale *= 10
		digits++
	}
	n := new(big.Int).Mul(big.NewInt(r.num), big.NewInt(scale/den))
	s := n.String()
	if digits == 0 {
		return s
	}
	if len(s) <= digits {
		s = strings.Repeat("0", digits-len(s)+1) + s
	}
	return s[:len(s)-digits] + "." + s[len(s)-digits:]
}

// MarshalJSON writes the rate as a JSON string ("0.0005"), which no client reads as a float.
func (r Rate) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(r.String())), nil }

// UnmarshalJSON accepts a JSON string or a JSON number written as a decimal fraction; the
// number's text is parsed exactly, never through a float.
func (r *Rate) UnmarshalJSON(b []byte) error {
	s := string(b)
	if strings.HasPrefix(s, `"`) {
		var err error
		if s, err = strconv.Unquote(s); err != nil {
			return fmt.Errorf("%w: %v", ErrRate, err)
		}
	}
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Rounding is a rule for rounding a non-negative exact amount to a whole minor unit.
type Rounding uint8

// Rounding rules.
const (
	// HalfEven rounds halves to the even neighbour (DESIGN.md's default).
	HalfEven Rounding = iota
	// HalfUp rounds halves up (四舍五入): the credit schedule convention.
	HalfUp
	// Down truncates.
	Down
)

// round finishes a division with quotient q and remainder rem < den.
func (m Rounding) round(q, rem, den uint64) uint64 {
	// Compare 2*rem with den without overflow: rem >= den-rem.
	switch m {
	case HalfUp:
		if rem >= den-rem && rem != 0 {
			q++
		}
	case HalfEven:
		if rem > den-rem || rem == den-rem && rem != 0 && q%2 == 1 {
			q++
		}
	}
	return q
}

// MulRate returns amount × r rounded to a whole minor unit with rule m. amount must not be
// negative; ok is false when it is or when the result does not fit in int64.
func MulRate(amount int64, r Rate, m Rounding) (result int64, ok bool) {
	return MulFrac(amount, r.num, r.Den(), m)
}

// MulFrac returns amount × num / den rounded with rule m, computed in 128 bits. All three must
// be non-negative (den positive); ok is false otherwise or when the result overflows int64.
func MulFrac(amount, num, den int64, m Rounding) (result int64, ok bool) {
	if amount < 0 || num < 0 || den <= 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(amount), uint64(num))
	if hi >= uint64(den) {
		return 0, false
	}
	q, rem := bits.Div64(hi, lo, uint64(den))
	q = m.round(q, rem, uint64(den))
	if q > 1<<63-1 {
		return 0, false
	}
	return int64(q), true
}

// RoundRat rounds a non-negative big.Rat to an int64 with rule m; ok is false when x is
// negative or does not fit.
func RoundRat(x *big.Rat, m Rounding) (int64, bool) { return RoundQuo(x.Num(), x.Denom(), m) }

// RoundQuo rounds num/den (num >= 0, den > 0) to an int64 with rule m without reducing the
// fraction first; ok is false when the arguments are out of range or the result does not fit.
func RoundQuo(num, den *big.Int, m Rounding) (int64, bool) {
	if num.Sign() < 0 || den.Sign() <= 0 {
		return 0, false
	}
	q, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	twice := rem.Lsh(rem, 1)
	switch c := twice.Cmp(den); {
	case c > 0, c == 0 && m == HalfUp, c == 0 && m == HalfEven && q.Bit(0) == 1:
		if m != Down {
			q.Add(q, big.NewInt(1))
		}
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}
