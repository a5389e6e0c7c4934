package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCreditScheduleGolden: the command prints, byte for byte, the golden schedules the credit
// package keeps (credit/testdata/schedules), so the CLI and the API share one output.
func TestCreditScheduleGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   string
	}{
		{"annuity_12m_12pct_jan31", "--principal 1000000 --periods 12 --method annuity --annual-rate 0.12 --start 2026-01-31"},
		{"annuity_6m_zero_rate", "--principal 100000 --periods 6 --method annuity --annual-rate 0 --start 2026-05-10"},
		{"equal_principal_24m_10pct_leap", "--principal 400000 --periods 24 --method equal_principal --annual-rate 0.10 --start 2023-11-30"},
		{"flat_fee_6m_0.6pct_jan31", "--start=2026-01-31 --method=flat_fee --fee-rate=0.006 --periods=6 --principal=599900"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var out bytes.Buffer
			if err := cmdCreditSchedule(strings.Fields(tc.args), &out); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("..", "..", "credit", "testdata", "schedules", tc.golden+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("fincore credit schedule %s printed\n%s\nwant\n%s", tc.args, out.Bytes(), want)
			}
		})
	}
}

// TestCreditScheduleErrors: bad input is refused with a message naming the problem, and
// nothing is printed on stdout.
func TestCreditScheduleErrors(t *testing.T) {
	base := "--principal 1000 --periods 3 --start 2026-01-31 "
	for _, tc := range []struct {
		args, want string
	}{
		{base + "--method annuity", "needs --annual-rate"},
		{base + "--method flat_fee --annual-rate 0.1", "needs --fee-rate"},
		{base + "--method annuity --annual-rate 0.1 --fee-rate 0.01", "not both"},
		{base + "--method annuity --annual-rate 12%", "decimal fraction"},
		{base + "--method annuity --annual-rate 12", "annual_rate must be between 0 and 1"},
		{base + "--method balloon --annual-rate 0.1", "method must be"},
		{"--principal 1000 --periods 3 --method annuity --annual-rate 0.1", "--start"},
		{"--principal 1000 --periods 3 --method annuity --annual-rate 0.1 --start 2026-02-30", "not a calendar date"},
		{"--principal 1000 --periods 3 --method annuity --annual-rate 0.1 --start 2026/01/31", "YYYY-MM-DD"},
		{"--principal 0 --periods 3 --method annuity --annual-rate 0.1 --start 2026-01-31", "principal must be"},
		{"--principal 1000 --periods 361 --method annuity --annual-rate 0.1 --start 2026-01-31", "periods must be"},
		{base + "--method annuity --annual-rate 0.1 extra", "unexpected arguments"},
	} {
		var out bytes.Buffer
		err := cmdCreditSchedule(strings.Fields(tc.args), &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) || out.Len() != 0 {
			t.Errorf("fincore credit schedule %s: err %v, stdout %q; want an error containing %q", tc.args, err, out.String(), tc.want)
		}
	}
	if code := run([]string{"credit", "schedule", "--principal", "0"}); code != 1 {
		t.Errorf("exit code %d for bad input, want 1", code)
	}
	if code := run([]string{"credit"}); code != 2 {
		t.Errorf("exit code %d for no subcommand, want 2", code)
	}
}

// TestCreditEOD runs the batch from the command line twice on one database: the second run
// finds the date done; a bad or future date is refused.
func TestCreditEOD(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		var out, errb bytes.Buffer
		if err := cmdCreditEOD([]string{"--data", dir, "--date", "2026-01-02"}, &out, &errb); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		// Not a terminal: plain progress lines, no bar redrawn with carriage returns.
		if !strings.Contains(out.String(), `"stage": "done"`) || i == 0 && !strings.Contains(errb.String(), "2026-01-02 done ") ||
			strings.Contains(errb.String(), "\r") {
			t.Fatalf("run %d: %s / %s", i, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if err := cmdCreditEOD([]string{"--data", dir, "--date", "2026-02-30"}, &out, &errb); err == nil {
		t.Error("2026-02-30 accepted")
	}
	if err := cmdCreditEOD([]string{"--data", dir, "--date", "2999-01-01"}, &out, &errb); err == nil {
		t.Error("a future date accepted")
	}
}

// TestServeDemoShowsCredit starts serve --demo and finds the credit demo: an approved
// line with three purchases, a repayment and a refund.
func TestServeDemoShowsCredit(t *testing.T) {
	srv := startServer(t, "--data", t.TempDir(), "--demo")
	defer srv.kill()
	var line struct {
		Limit     int64 `json:"limit"`
		Available int64 `json:"available"`
		OpenLoans int   `json:"open_loans"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, b, err := doJSON("GET", srv.url("/v1/credit/accounts/ca_demo-alice"), nil)
		if err == nil && st == 200 {
			if err := json.Unmarshal(b, &line); err != nil {
				t.Fatal(err)
			}
			// The demo is seeded in steps (purchases, a repayment that pays the pay-later
			// purchase off, then a refund): wait for the last.
			if line.OpenLoans == 2 && line.Limit-line.Available == 439_800-50_000-20_000 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no credit demo: %d %s %v\n%s", st, b, err, srv.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// 299,900 + 19,900 + 120,000 drawn; the repayment restored 50,000 of principal, the refund 20,000.
	if drawn := line.Limit - line.Available; line.Limit != 500_000 || drawn != 439_800-50_000-20_000 {
		t.Errorf("demo line: %+v", line)
	}
	for _, path := range []string{"/v1/credit/repayments/demo-repayment-1", "/v1/credit/purchases/demo-purchase-3"} {
		st, b, err := doJSON("GET", srv.url(path), nil)
		if err != nil || st != 200 {
			t.Errorf("GET %s: %d %s %v", path, st, b, err)
		}
		if path == "/v1/credit/purchases/demo-purchase-3" && !strings.Contains(string(b), `"refunded":20000`) {
			t.Errorf("the demo refund is not on the purchase: %s", b)
		}
	}
}
