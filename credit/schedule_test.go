package credit

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// GoldenSchedules are the representative plans whose schedules are kept in
// testdata/schedules/<name>.json, byte for byte what `fincore credit schedule` prints.
var goldenSchedules = []struct {
	name  string
	terms Terms
}{
	// 10,000.00 CNY over 12 months at 12 % a year, starting on a month end (Jan 31).
	{"annuity_12m_12pct_jan31", Terms{Principal: 1_000_000, Periods: 12, Method: Annuity, AnnualRate: money.MustRate("0.12"), Start: MustDate("2026-01-31")}},
	// 24 periods from a leap day: Feb 29 2024 -> Feb 28 2025 -> Feb 28 2026.
	{"annuity_24m_18pct_leap", Terms{Principal: 500_000, Periods: 24, Method: Annuity, AnnualRate: money.MustRate("0.18"), Start: MustDate("2024-02-29")}},
	{"annuity_6m_zero_rate", Terms{Principal: 100_000, Periods: 6, Method: Annuity, Start: MustDate("2026-05-10")}},
	{"annuity_1m_15pct", Terms{Principal: 123_456, Periods: 1, Method: Annuity, AnnualRate: money.MustRate("0.15"), Start: MustDate("2026-12-31")}},
	{"annuity_12m_tiny_1", Terms{Principal: 1, Periods: 12, Method: Annuity, AnnualRate: money.MustRate("0.12"), Start: MustDate("2026-01-15")}},
	{"annuity_12m_tiny_7_zero_rate", Terms{Principal: 7, Periods: 12, Method: Annuity, Start: MustDate("2026-01-15")}},
	{"annuity_12m_tiny_18_zero_rate", Terms{Principal: 18, Periods: 12, Method: Annuity, Start: MustDate("2026-01-15")}},
	{"equal_principal_12m_12pct_aug31", Terms{Principal: 1_000_000, Periods: 12, Method: EqualPrincipal, AnnualRate: money.MustRate("0.12"), Start: MustDate("2026-08-31")}},
	// Crosses Feb 29 2024 from a 30th.
	{"equal_principal_24m_10pct_leap", Terms{Principal: 400_000, Periods: 24, Method: EqualPrincipal, AnnualRate: money.MustRate("0.10"), Start: MustDate("2023-11-30")}},
	{"equal_principal_12m_tiny_7", Terms{Principal: 7, Periods: 12, Method: EqualPrincipal, AnnualRate: money.MustRate("0.24"), Start: MustDate("2026-03-01")}},
	// Baitiao installments: fees of 0.5 % to 0.75 % of the purchase per month.
	{"flat_fee_3m_0.5pct", Terms{Principal: 299_900, Periods: 3, Method: FlatFee, FeeRate: money.MustRate("0.005"), Start: MustDate("2026-11-11")}},
	{"flat_fee_6m_0.6pct_jan31", Terms{Principal: 599_900, Periods: 6, Method: FlatFee, FeeRate: money.MustRate("0.006"), Start: MustDate("2026-01-31")}},
	{"flat_fee_12m_0.75pct", Terms{Principal: 1_299_900, Periods: 12, Method: FlatFee, FeeRate: money.MustRate("0.0075"), Start: MustDate("2026-06-18")}},
	{"flat_fee_12m_tiny_1", Terms{Principal: 1, Periods: 12, Method: FlatFee, FeeRate: money.MustRate("0.006"), Start: MustDate("2026-06-18")}},
	{"flat_fee_12m_tiny_7", Terms{Principal: 7, Periods: 12, Method: FlatFee, FeeRate: money.MustRate("0.1"), Start: MustDate("2026-06-18")}},
}

// EncodeSchedule is how schedules are written to golden files and by the CLI.
func encodeForTest(t testing.TB, s *Schedule) []byte {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGoldenSchedules(t *testing.T) {
	for _, g := range goldenSchedules {
		t.Run(g.name, func(t *testing.T) {
			s, err := NewSchedule(g.terms)
			if err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, g.terms, s)
			got := encodeForTest(t, s)
			path := filepath.Join("testdata", "schedules", g.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./credit -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("schedule differs from %s (go test ./credit -update rewrites it after review):\n%s", path, got)
			}
		})
	}
}

// TestHandComputed checks schedules against figures worked out by hand.
func TestHandComputed(t *testing.T) {
	// 10,000.00 at 12 % a year over 12 months: r = 0.01, (1.01)^12 = 1.12682503...,
	// A = 1,000,000 × 0.01 × 1.126825 / 0.126825 = 88,848.79 -> 88,849 (888.49 CNY).
	// Period 1: interest = 1,000,000 × 0.01 = 10,000; principal = 78,849; remaining 921,151.
	// Period 2: interest = round(9,211.51) = 9,212; principal = 79,637; remaining 841,514.
	// Period 12 takes what remains: the payments total 11 × 88,849 + the last one.
	s := mustSchedule(t, Terms{Principal: 1_000_000, Periods: 12, Method: Annuity, AnnualRate: money.MustRate("0.12"), Start: MustDate("2026-01-31")})
	want := []Installment{
		{1, MustDate("2026-02-28"), 78_849, 10_000, 0, 88_849, 921_151},
		{2, MustDate("2026-03-31"), 79_637, 9_212, 0, 88_849, 841_514},
		{3, MustDate("2026-04-30"), 80_434, 8_415, 0, 88_849, 761_080},
	}
	for i, w := range want {
		if s.Installments[i] != w {
			t.Errorf("annuity period %d = %+v, want %+v", i+1, s.Installments[i], w)
		}
	}
	for _, in := range s.Installments[:11] {
		if in.Total != 88_849 {
			t.Errorf("annuity period %d total %d, want 88,849", in.Period, in.Total)
		}
	}
	// Last: remaining before period 12 is what period 11 left; interest 1 % of it.
	last, prev := s.Installments[11], s.Installments[10]
	if last.Principal != prev.RemainingPrincipal || last.Interest != (prev.RemainingPrincipal+50)/100 {
		t.Errorf("annuity last period %+v after %+v", last, prev)
	}

	// Equal principal, 10,000.00 at 12 % over 12 months: floor(1,000,000/12) = 83,333; the last
	// period takes 83,337. Interest 1: 10,000; interest 2: round(916,667 × 0.01) = 9,167;
	// interest 12: round(83,337 × 0.01) = 833.
	s = mustSchedule(t, Terms{Principal: 1_000_000, Periods: 12, Method: EqualPrincipal, AnnualRate: money.MustRate("0.12"), Start: MustDate("2026-08-31")})
	if in := s.Installments[0]; in.Principal != 83_333 || in.Interest != 10_000 || in.DueDate != MustDate("2026-09-30") {
		t.Errorf("equal principal period 1 = %+v", in)
	}
	if in := s.Installments[1]; in.Interest != 9_167 || in.DueDate != MustDate("2026-10-31") {
		t.Errorf("equal principal period 2 = %+v", in)
	}
	if in := s.Installments[11]; in.Principal != 83_337 || in.Interest != 833 || in.DueDate != MustDate("2027-08-31") {
		t.Errorf("equal principal period 12 = %+v", in)
	}

	// Baitiao: 2,999.00 in 3 installments at 0.5 % a month: fee = round(299,900 × 0.005) =
	// round(1,499.5) = 1,500 (half up) each month; principal 99,966, 99,966, 99,968.
	s = mustSchedule(t, Terms{Principal: 299_900, Periods: 3, Method: FlatFee, FeeRate: money.MustRate("0.005"), Start: MustDate("2026-11-11")})
	if s.TotalFee != 4_500 || s.TotalInterest != 0 || s.Installments[0].Principal != 99_966 || s.Installments[2].Principal != 99_968 || s.Installments[0].Total != 101_466 {
		t.Errorf("flat fee = %+v", s)
	}

	// Zero rate annuity: 1,000.00 over 6 months: A = round(100,000/6) = round(16,666.67) = 16,667;
	// five payments of 16,667 and a last of 16,665.
	s = mustSchedule(t, Terms{Principal: 100_000, Periods: 6, Method: Annuity, Start: MustDate("2026-05-10")})
	if s.Installments[0].Total != 16_667 || s.Installments[5].Principal != 16_665 || s.TotalInterest != 0 {
		t.Errorf("zero-rate annuity = %+v", s)
	}

	// 0.07 over 12 months at 0 %: A = round(7/12) = 1, so periods 1-7 repay 1 each and the
	// rest are zero (the cap at the remaining principal).
	s = mustSchedule(t, Terms{Principal: 7, Periods: 12, Method: Annuity, Start: MustDate("2026-01-15")})
	for i, in := range s.Installments {
		want := int64(0)
		if i < 7 {
			want = 1
		}
		if in.Principal != want {
			t.Errorf("tiny annuity period %d principal %d, want %d", in.Period, in.Principal, want)
		}
	}
}

func mustSchedule(t testing.TB, terms Terms) *Schedule {
	t.Helper()
	s, err := NewSchedule(terms)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTermsValidation(t *testing.T) {
	ok := Terms{Principal: 100, Periods: 3, Method: Annuity, AnnualRate: money.MustRate("0.1"), Start: MustDate("2026-01-01")}
	for _, tc := range []struct {
		name  string
		edit  func(*Terms)
		param string
	}{
		{"zero principal", func(t *Terms) { t.Principal = 0 }, "principal"},
		{"negative principal", func(t *Terms) { t.Principal = -5 }, "principal"},
		{"principal over max", func(t *Terms) { t.Principal = money.MaxAmount + 1 }, "principal"},
		{"zero periods", func(t *Terms) { t.Periods = 0 }, "periods"},
		{"361 periods", func(t *Terms) { t.Periods = 361 }, "periods"},
		{"unknown method", func(t *Terms) { t.Method = "balloon" }, "method"},
		{"no start", func(t *Terms) { t.Start = Date{} }, "start"},
		{"fee rate on annuity", func(t *Terms) { t.FeeRate = money.MustRate("0.01") }, "fee_rate"},
		{"annual rate 12 meaning 12%", func(t *Terms) { t.AnnualRate = money.MustRate("12") }, "annual_rate"},
		{"annual rate on flat fee", func(t *Terms) { t.Method = FlatFee }, "annual_rate"},
		{"fee rate too high", func(t *Terms) { t.Method, t.AnnualRate, t.FeeRate = FlatFee, money.Rate{}, money.MustRate("0.11") }, "fee_rate"},
		// 30 years at 100 % on the largest principal repays far more than MaxAmount.
		{"total over max", func(t *Terms) { t.Principal, t.Periods, t.AnnualRate = money.MaxAmount, 360, money.MustRate("1") }, "principal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			terms := ok
			tc.edit(&terms)
			s, err := NewSchedule(terms)
			e := apierror.As(err)
			if s != nil || e == nil || e.Code != apierror.InvalidRequest || e.Param != tc.param {
				t.Fatalf("NewSchedule = %v, %v; want invalid_request on %s", s, err, tc.param)
			}
		})
	}
	if _, err := NewSchedule(ok); err != nil {
		t.Fatal(err)
	}
	// The bounds themselves are accepted.
	for _, terms := range []Terms{
		{Principal: money.MaxAmount, Periods: 1, Method: FlatFee, Start: MustDate("2999-11-30")},
		{Principal: 100_000_000, Periods: 1, Method: FlatFee, FeeRate: FeeRateMax, Start: MustDate("2026-01-01")},
		{Principal: 1, Periods: PeriodsMax, Method: Annuity, AnnualRate: AnnualRateMax, Start: MustDate("1900-01-01")},
	} {
		if _, err := NewSchedule(terms); err != nil {
			t.Errorf("NewSchedule(%+v): %v", terms, err)
		}
	}
}
