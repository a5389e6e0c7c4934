package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/credit/service"
)

// TestProgressNotATerminal: written to a log, the end-of-day progress is plain lines — the
// first report, one every progressEvery, one at each change of stage and one at the end —
// never a carriage return or a bar, however many pages are reported.
func TestProgressNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Date(2026, 2, 16, 0, 30, 0, 0, time.UTC)
	pr := newProgress(&buf)
	pr.now = func() time.Time { return clock }
	if pr.tty {
		t.Fatal("a buffer taken for a terminal")
	}
	d := credit.MustDate("2026-02-15")
	report := func(stage string, loans int64, done bool) {
		pr.report(service.Progress{Date: d, Stage: stage, Loans: loans, Changed: loans / 2, Estimate: 1_000_000,
			Elapsed: clock.Sub(time.Date(2026, 2, 16, 0, 30, 0, 0, time.UTC)), Done: done})
	}
	// 1,000 pages of 1,000 loans at 10 ms a page: 10 s of loans, 3 lines.
	for page := int64(1); page <= 1000; page++ {
		clock = clock.Add(10 * time.Millisecond)
		report(service.StageLoans, page*1000, false)
	}
	report(service.StageStatements, 1_000_000, false)
	clock = clock.Add(time.Second)
	report(service.StageReconcile, 1_000_000, false)
	report(service.StageDone, 1_000_000, true)
	pr.end()

	out := buf.String()
	if strings.ContainsAny(out, "\r█·") {
		t.Fatalf("terminal output in a log:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []string{
		"2026-02-15   0% loans      1000 loans, 500 changed, 100000 loans/s, 10ms",
		"2026-02-15  50% loans      501000 loans, 250500 changed, 100000 loans/s, 5.01s", // 5 s after the first
		"2026-02-15 100% statements 1000000 loans, 500000 changed, 100000 loans/s, 10s",
		"2026-02-15 100% reconcile  1000000 loans, 500000 changed, 90909 loans/s, 11s",
		"2026-02-15 100% done       1000000 loans, 500000 changed, 90909 loans/s, 11s",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}

	// A run that fails between lines: end writes where it stopped.
	buf.Reset()
	pr = newProgress(&buf)
	pr.now = func() time.Time { return clock }
	report(service.StageLoans, 1000, false)
	clock = clock.Add(time.Second)
	report(service.StageLoans, 2000, false)
	if strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("second report within 5 s written: %q", buf.String())
	}
	pr.end()
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); len(got) != 2 || !strings.Contains(got[1], " 2000 loans") {
		t.Fatalf("end after a failure: %q", buf.String())
	}
}

// TestProgressTerminal: on a terminal the bar is redrawn in place and end finishes its line.
func TestProgressTerminal(t *testing.T) {
	var buf bytes.Buffer
	pr := newProgress(&buf)
	pr.tty = true
	p := service.Progress{Date: credit.MustDate("2026-02-15"), Stage: service.StageLoans, Loans: 250, Estimate: 1000, Elapsed: time.Second}
	pr.report(p)
	pr.report(p)
	pr.end()
	want := "\r2026-02-15 [███████·······················]  25% loans      250 loans, 0 changed, 250 loans/s, 1s "
	if buf.String() != want+want+"\n" {
		t.Fatalf("terminal output %q", buf.String())
	}
	if f, err := os.CreateTemp(t.TempDir(), "log"); err != nil || isTerminal(f) {
		t.Errorf("a file taken for a terminal: %v", err)
	}
}
