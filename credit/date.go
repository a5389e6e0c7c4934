package credit

import (
	"fmt"
	"strconv"
	"time"
)

// Dates fincore accepts for credit: business dates between these years, so that every due
// date of a 360-period plan is still a four-digit year.
const (
	DateYearMin = 1900
	DateYearMax = 2999
)

// Date is a calendar date without a time or zone: a business date, a due date, a statement
// date. The zero value is "no date". It is written YYYY-MM-DD.
type Date struct {
	y int
	m time.Month
	d int
}

// NewDate returns the date y-m-d; ok is false if it is not a real calendar date or lies
// outside DateYearMin..DateYearMax.
func NewDate(y int, m time.Month, d int) (Date, bool) {
	if y < DateYearMin || y > DateYearMax || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return Date{}, false
	}
	return Date{y, m, d}, true
}

// MustDate is NewDate for tests and constants; it panics on an invalid date.
func MustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// ParseDate parses exactly YYYY-MM-DD (ISO 8601 calendar date, zero-padded).
func ParseDate(s string) (Date, error) {
	var n [3]int // year, month, day
	if len(s) != 10 {
		return Date{}, fmt.Errorf("date %q must be written YYYY-MM-DD", s)
	}
	part := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 4 || i == 7:
			if c != '-' {
				return Date{}, fmt.Errorf("date %q must be written YYYY-MM-DD", s)
			}
			part++
		case c >= '0' && c <= '9':
			n[part] = n[part]*10 + int(c-'0')
		default:
			return Date{}, fmt.Errorf("date %q must be written YYYY-MM-DD", s)
		}
	}
	out, ok := NewDate(n[0], time.Month(n[1]), n[2])
	if !ok {
		return Date{}, fmt.Errorf("date %q is not a calendar date between %d and %d", s, DateYearMin, DateYearMax)
	}
	return out, nil
}

// daysIn is the number of days in month m of year y (proleptic Gregorian).
func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// Year, Month and Day are the date's parts.
func (d Date) Year() int { return d.y }

// Month is the date's month.
func (d Date) Month() time.Month { return d.m }

// Day is the date's day of the month.
func (d Date) Day() int { return d.d }

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d.y == 0 }

// String writes YYYY-MM-DD.
func (d Date) String() string {
	if d.y < 0 || d.y > 9999 {
		return fmt.Sprintf("%04d-%02d-%02d", d.y, int(d.m), d.d)
	}
	return string(d.Append(make([]byte, 0, 10)))
}

// Append appends YYYY-MM-DD (String) to b, without allocating when b has room (the
// end-of-day batch writes a date into every event id and payload it makes).
func (d Date) Append(b []byte) []byte {
	if d.y < 0 || d.y > 9999 {
		return append(b, d.String()...)
	}
	b = appendDigits(b, d.y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(d.m), 2)
	b = append(b, '-')
	return appendDigits(b, d.d, 2)
}

// AddMonths returns the same day of the month k months later, clamped to the last day of that
// month: 2026-01-31 plus 1 month is 2026-02-28, plus 2 months 2026-03-31.
func (d Date) AddMonths(k int) Date {
	m0 := int(d.m) - 1 + k
	y := d.y + floorDiv(m0, 12)
	m := time.Month(m0 - floorDiv(m0, 12)*12 + 1)
	return Date{y, m, min(d.d, daysIn(y, m))}
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// AddDays returns the date n days later (earlier if n < 0).
func (d Date) AddDays(n int) Date {
	if !d.valid() {
		t := d.time().AddDate(0, 0, n)
		return Date{t.Year(), t.Month(), t.Day()}
	}
	return dateOfDays(d.days() + n)
}

// DaysSince returns the number of days from e to d (positive when d is after e).
func (d Date) DaysSince(e Date) int {
	if !d.valid() || !e.valid() {
		return int((d.time().Unix() - e.time().Unix()) / 86400)
	}
	return d.days() - e.days()
}

// valid reports whether d's month and day are in range (every Date but the zero one), for
// days: the end-of-day batch counts days a few dozen times per loan, and going through
// time.Time for each was a tenth of its work in memory.
func (d Date) valid() bool { return d.m >= 1 && d.m <= 12 && d.d >= 1 && d.d <= 31 }

// days is the number of days from 1970-01-01 to d in the proleptic Gregorian calendar (H.
// Hinnant's days_from_civil), for a valid d.
func (d Date) days() int {
	y, m := d.y, int(d.m)
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := m - 3
	if m <= 2 {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d.d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// dateOfDays is the date n days after 1970-01-01 (civil_from_days), the inverse of days.
func dateOfDays(n int) Date {
	n += 719468
	era := floorDiv(n, 146097)
	doe := n - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
		y++
	}
	return Date{y, time.Month(m), day}
}

func (d Date) time() time.Time { return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC) }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int {
	switch {
	case d.y != e.y:
		return cmpInt(d.y, e.y)
	case d.m != e.m:
		return cmpInt(int(d.m), int(e.m))
	}
	return cmpInt(d.d, e.d)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// MarshalJSON writes "YYYY-MM-DD", or null for the zero Date.
func (d Date) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return d.appendJSON(make([]byte, 0, 12)), nil
}

// appendJSON appends "YYYY-MM-DD" with its quotes to b.
func (d Date) appendJSON(b []byte) []byte {
	return append(d.Append(append(b, '"')), '"')
}

func appendDigits(b []byte, v, width int) []byte {
	var buf [8]byte
	i := len(buf)
	for ; width > 0 || v > 0; width-- {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[i:]...)
}

// UnmarshalJSON reads "YYYY-MM-DD"; null leaves the Date unchanged (the zero Date stays zero).
func (d *Date) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("date must be a string YYYY-MM-DD")
	}
	v, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
