package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fincore/fincore/credit/service"
)

// progressEvery is how often the end-of-day progress is written as a plain line when the
// output is not a terminal.
const progressEvery = 5 * time.Second

// progress shows the end-of-day batch's progress (reported after every page of loans). On
// a terminal it redraws one bar in place ('\r'); elsewhere (a log file, a pipe) a bar per
// page would flood the log, so it writes a plain line at the first report, at each change of
// stage, at the end, and otherwise at most every progressEvery.
type progress struct {
	w     io.Writer
	tty   bool
	every time.Duration
	now   func() time.Time

	drawn   bool              // tty: a bar is on the current line
	printed time.Time         // plain: when the last line was written
	stage   string            // plain: the stage of the last line written
	pending *service.Progress // plain: the last report not written yet
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), every: progressEvery, now: time.Now}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (pr *progress) report(p service.Progress) {
	if pr.tty {
		fmt.Fprint(pr.w, progressBar(p))
		pr.drawn = true
		return
	}
	now := pr.now()
	if pr.printed.IsZero() || p.Stage != pr.stage || p.Done || now.Sub(pr.printed) >= pr.every {
		fmt.Fprint(pr.w, progressLine(p))
		pr.printed, pr.stage, pr.pending = now, p.Stage, nil
		return
	}
	pr.pending = &p
}

// end finishes the output after the run: the bar's line on a terminal; elsewhere the last
// report if it was not written (a run that failed shows where it stopped).
func (pr *progress) end() {
	if pr.drawn {
		fmt.Fprintln(pr.w)
		pr.drawn = false
	}
	if pr.pending != nil {
		fmt.Fprint(pr.w, progressLine(*pr.pending))
		pr.pending = nil
	}
}

// progressBar renders one line of progress for a terminal (starting with a carriage return).
func progressBar(p service.Progress) string {
	const width = 30
	bar := strings.Repeat("·", width)
	f, known := progressShare(p)
	pct := ""
	if known {
		n := int(f * width)
		bar = strings.Repeat("█", n) + strings.Repeat("·", width-n)
		pct = fmt.Sprintf(" %3.0f%%", f*100)
	}
	return fmt.Sprintf("\r%s [%s]%s %s ", p.Date, bar, pct, progressText(p))
}

// progressLine renders progress as a plain line for a log: no bar, no carriage return.
func progressLine(p service.Progress) string {
	pct := ""
	if f, known := progressShare(p); known {
		pct = fmt.Sprintf(" %3.0f%%", f*100)
	}
	return fmt.Sprintf("%s%s %s\n", p.Date, pct, progressText(p))
}

// progressShare is the share of the expected loans done (known only with an estimate).
func progressShare(p service.Progress) (float64, bool) {
	if p.Estimate <= 0 {
		return 0, false
	}
	if p.Done || p.Stage != service.StageLoans {
		return 1, true
	}
	return min(1, float64(p.Loans)/float64(p.Estimate)), true
}

// progressText is the stage, the counts, the rate and the time so far.
func progressText(p service.Progress) string {
	rate := 0.0
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Loans) / s
	}
	return fmt.Sprintf("%-10s %d loans, %d changed, %.0f loans/s, %s", p.Stage, p.Loans, p.Changed, rate, p.Elapsed.Round(time.Millisecond))
}
