package credit

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	for _, ok := range []string{"2026-01-31", "2024-02-29", "2000-02-29", "1900-01-01", "2999-12-31"} {
		d, err := ParseDate(ok)
		if err != nil || d.String() != ok {
			t.Errorf("ParseDate(%q) = %v, %v", ok, d, err)
		}
	}
	for _, bad := range []string{"", "2026-1-31", "2026-02-29", "2100-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-04-31",
		"2026-01-00", "1899-12-31", "3000-01-01", "2026/01/31", "+026-01-31", "2026-01-3a", "20260131", "2026-01-31T00:00:00Z", "-026-01-31"} {
		if d, err := ParseDate(bad); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", bad, d)
		}
	}
}

func TestAddMonths(t *testing.T) {
	for _, tc := range []struct {
		start string
		k     int
		want  string
	}{
		{"2026-01-31", 1, "2026-02-28"},
		{"2026-01-31", 2, "2026-03-31"}, // from the start, not from the clamped Feb 28
		{"2026-01-31", 3, "2026-04-30"},
		{"2023-01-31", 13, "2024-02-29"},
		{"2024-02-29", 12, "2025-02-28"},
		{"2024-02-29", 48, "2028-02-29"},
		{"2026-08-31", 6, "2027-02-28"},
		{"2026-12-15", 1, "2027-01-15"},
		{"2026-12-15", 0, "2026-12-15"},
		{"2026-03-31", -1, "2026-02-28"},
		{"2026-01-15", -13, "2024-12-15"},
		{"2026-05-10", 360, "2056-05-10"},
	} {
		if got := MustDate(tc.start).AddMonths(tc.k).String(); got != tc.want {
			t.Errorf("%s + %d months = %s, want %s", tc.start, tc.k, got, tc.want)
		}
	}
}

func TestDateArithmetic(t *testing.T) {
	a, b := MustDate("2024-02-28"), MustDate("2024-03-01")
	if a.DaysSince(b) != -2 || b.DaysSince(a) != 2 || a.AddDays(2) != b || b.AddDays(-2) != a {
		t.Errorf("leap-year day arithmetic: %d %d %s", a.DaysSince(b), b.DaysSince(a), a.AddDays(2))
	}
	if !a.Before(b) || !b.After(a) || a.Compare(a) != 0 || MustDate("2025-01-01").Compare(MustDate("2024-12-31")) != 1 {
		t.Error("Compare")
	}
	if MustDate("2027-01-01").DaysSince(MustDate("2026-01-01")) != 365 {
		t.Error("DaysSince over a year")
	}
	var v struct{ D Date }
	if err := json.Unmarshal([]byte(`{"D":"2024-02-29"}`), &v); err != nil || v.D != MustDate("2024-02-29") {
		t.Errorf("unmarshal: %v %v", v.D, err)
	}
	b2, _ := json.Marshal(v)
	if string(b2) != `{"D":"2024-02-29"}` {
		t.Errorf("marshal: %s", b2)
	}
	for _, bad := range []string{`{"D":"2023-02-29"}`, `{"D":20240229}`, `{"D":""}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("unmarshal %s: no error", bad)
		}
	}
	// The zero Date is null both ways.
	var z struct{ D Date }
	if b, _ := json.Marshal(z); string(b) != `{"D":null}` {
		t.Errorf("zero date marshals as %s", b)
	}
	if err := json.Unmarshal([]byte(`{"D":null}`), &z); err != nil || !z.D.IsZero() {
		t.Errorf("null: %v %v", z.D, err)
	}
	for _, s := range []string{"1900-01-01", "2026-12-04", "2999-12-31"} {
		if b, _ := json.Marshal(MustDate(s)); string(b) != `"`+s+`"` {
			t.Errorf("%s marshals as %s", s, b)
		}
	}
}

// FuzzParseDate: a date that parses writes back as the same text.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-01-31", "2024-02-29", "2023-02-29", "2026-1-31", "+026-01-31", "9999-99-99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			return
		}
		if d.String() != s || d.IsZero() {
			t.Fatalf("%q parsed as %v", s, d)
		}
	})
}

// TestDateString: String and Append write what fmt's %04d-%02d-%02d writes, for every day of
// a few years and for the zero Date.
func TestDateString(t *testing.T) {
	for _, d := range []Date{{}, MustDate("1900-01-01"), MustDate("2999-12-31")} {
		if got, want := d.String(), fmt.Sprintf("%04d-%02d-%02d", d.y, int(d.m), d.d); got != want || string(d.Append([]byte("x"))) != "x"+want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
	for d := MustDate("2025-01-01"); d.Before(MustDate("2028-01-01")); d = d.AddDays(1) {
		if got, want := d.String(), fmt.Sprintf("%04d-%02d-%02d", d.y, int(d.m), d.d); got != want {
			t.Fatalf("%q, want %q", got, want)
		}
	}
}

// TestDateDays: AddDays and DaysSince count days as time.Time does, across leap years,
// centuries and the whole range of valid years, and for the zero Date.
func TestDateDays(t *testing.T) {
	viaTime := func(d Date) time.Time { return time.Date(d.y, d.m, d.d, 0, 0, 0, 0, time.UTC) }
	base := MustDate("2026-02-20")
	for _, d := range []Date{{}, MustDate("1900-01-01"), MustDate("1900-02-28"), MustDate("1900-03-01"), MustDate("2000-02-29"),
		MustDate("2024-12-31"), MustDate("2026-01-31"), MustDate("2100-03-01"), MustDate("2999-12-31")} {
		for _, n := range []int{-800_000, -36_525, -366, -365, -59, -1, 0, 1, 28, 29, 59, 60, 365, 366, 3660, 36_524, 400_000} {
			tt := viaTime(d).AddDate(0, 0, n)
			if got, want := d.AddDays(n), (Date{tt.Year(), tt.Month(), tt.Day()}); got != want {
				t.Errorf("%v + %d = %v, want %v", d, n, got, want)
			}
		}
		if got, want := d.DaysSince(base), int((viaTime(d).Unix()-viaTime(base).Unix())/86400); got != want || base.DaysSince(d) != -want {
			t.Errorf("%v since %v: %d, want %d", d, base, got, want)
		}
	}
	for d, n := MustDate("1900-01-01"), 0; !d.After(MustDate("2999-12-31")); d, n = d.AddDays(1), n+1 {
		if tt := viaTime(MustDate("1900-01-01")).AddDate(0, 0, n); d != (Date{tt.Year(), tt.Month(), tt.Day()}) || d.DaysSince(MustDate("1900-01-01")) != n {
			t.Fatalf("day %d: %v, want %v", n, d, tt)
		}
	}
}
