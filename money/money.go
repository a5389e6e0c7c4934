// Package money holds the rules for amounts and currencies that every module shares:
// amounts are int64 minor units, currencies are ISO 4217 codes or asset codes with their
// own scale (fund units, points).
package money

import "regexp"

// MaxAmount is the largest amount a single transfer may carry: 2^53-1, the largest integer
// that every JSON client (including JavaScript) represents exactly.
const MaxAmount int64 = 1<<53 - 1

// Currency describes a currency or asset: its code and the number of minor-unit digits.
type Currency struct {
	Code     string
	Exponent int
}

// iso4217 lists the currencies fincore knows with their minor-unit exponent.
var iso4217 = map[string]int{
	"AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2,
	"DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
	"JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MOP": 2, "MXN": 2, "MYR": 2, "NOK": 2,
	"NZD": 2, "OMR": 3, "PHP": 2, "PLN": 2, "RUB": 2, "SAR": 2, "SEK": 2, "SGD": 2,
	"THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
}

// iso4217Numeric holds the numeric codes of the currencies above (as card networks and ISO
// 8583 field 49 carry them).
var iso4217Numeric = map[string]string{
	"AED": "784", "AUD": "036", "BHD": "048", "BRL": "986", "CAD": "124", "CHF": "756", "CNY": "156", "CZK": "203",
	"DKK": "208", "EUR": "978", "GBP": "826", "HKD": "344", "HUF": "348", "IDR": "360", "ILS": "376", "INR": "356",
	"JOD": "400", "JPY": "392", "KRW": "410", "KWD": "414", "MOP": "446", "MXN": "484", "MYR": "458", "NOK": "578",
	"NZD": "554", "OMR": "512", "PHP": "608", "PLN": "985", "RUB": "643", "SAR": "682", "SEK": "752", "SGD": "702",
	"THB": "764", "TND": "788", "TRY": "949", "TWD": "901", "USD": "840", "VND": "704", "ZAR": "710",
}

// NumericCode returns the ISO 4217 numeric code ("156") of an alphabetic one ("CNY").
func NumericCode(code string) (string, bool) {
	n, ok := iso4217Numeric[code]
	return n, ok
}

// AlphaCode returns the alphabetic ISO 4217 code of a numeric one.
func AlphaCode(numeric string) (string, bool) {
	for a, n := range iso4217Numeric {
		if n == numeric {
			return a, true
		}
	}
	return "", false
}

// assetCode is the shape of a non-ISO asset code (fund units, points): 4 to 16 characters,
// so it can never be mistaken for a three-letter ISO code.
var assetCode = regexp.MustCompile(`^[A-Z][A-Z0-9_]{3,15}$`)

// Lookup returns the currency for an ISO 4217 code.
func Lookup(code string) (Currency, bool) {
	e, ok := iso4217[code]
	return Currency{Code: code, Exponent: e}, ok
}

// ValidCode reports whether code names a known ISO 4217 currency or is a well-formed asset code.
func ValidCode(code string) bool {
	if _, ok := iso4217[code]; ok {
		return true
	}
	return assetCode.MatchString(code)
}

// ValidAmount reports whether a is a valid transfer amount: 0 < a <= MaxAmount.
func ValidAmount(a int64) bool { return a > 0 && a <= MaxAmount }
