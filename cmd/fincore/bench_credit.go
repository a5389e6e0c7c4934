package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/credit/service"
	"github.com/fincore/fincore/ledger"
)

// cmdBenchEOD measures the credit end-of-day batch: it opens credit lines and makes --loans
// three-installment purchases on 2026-01-15 through the service (not timed), then times
// the batch on three business dates: a quiet day (nothing due: every loan is skipped
// unread), the first due date (every loan earns its fee) and five days later (every loan
// past due: penalties after the grace days, ageing). It prints one JSON line.
func cmdBenchEOD(args []string) error {
	fs := flag.NewFlagSet("bench eod", flag.ContinueOnError)
	loans := fs.Int("loans", 100_000, "purchases to make (40 per credit line)")
	clients := fs.Int("clients", 16, "concurrent clients while seeding")
	workers := fs.Int("workers", 0, "units the batch commits at once (service.Config.EODWorkers; 0 for its default)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the three batch runs (not the seeding) to this file")
	profileRun := fs.String("cpuprofile-run", "", "profile only this run: quiet, due or past_due")
	seedOnly := fs.Bool("seed-only", false, "seed the storage named by --data or --postgres and exit (to time runs on copies of it with --seeded)")
	seeded := fs.Bool("seeded", false, "the storage already holds the seed of the same --loans (from --seed-only): do not seed")
	var sf storeFlags
	sf.register(fs, false)
	fs.Lookup("data").DefValue = ""
	sf.data = ""
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *loans < 1 || *clients < 1 {
		return fmt.Errorf("--loans and --clients must be positive")
	}
	if (*seedOnly || *seeded) && sf.data == "" && sf.postgres == "" {
		return fmt.Errorf("--seed-only and --seeded need --data or --postgres")
	}
	if *seedOnly && *seeded {
		return fmt.Errorf("--seed-only and --seeded exclude each other")
	}
	ctx := context.Background()
	st, closeStore, err := openBenchStore(ctx, &sf, "fincore-bench-eod-")
	if err != nil {
		return err
	}
	defer closeStore()
	quiet := benchLogger()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet, Now: clock})
	if err != nil {
		return err
	}
	defer eng.Close()
	svc, err := service.New(eng, st, service.Config{Logger: quiet, Now: clock, EODWorkers: *workers})
	if err != nil {
		return err
	}

	const perLine = 40
	lines := (*loans + perLine - 1) / perLine
	var seed time.Duration
	if !*seeded {
		if seed, err = seedEOD(ctx, svc, *loans, lines, *clients); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "seeded %d purchases on %d lines in %s\n", *loans, lines, seed.Round(time.Millisecond))
		if *seedOnly {
			return nil
		}
	}

	type result struct {
		Date         string  `json:"date"`
		Kind         string  `json:"kind"`
		Loans        int64   `json:"loans"`
		Changed      int64   `json:"changed"`
		LoansSeconds float64 `json:"loans_stage_seconds"`
		LoansPerSec  float64 `json:"loans_per_second"`
		CPUPerLoanUs float64 `json:"cpu_us_per_loan"`
		TotalSeconds float64 `json:"total_seconds"`
		Reconciled   bool    `json:"reconciled"`
	}
	var results []result
	runs := []struct{ name, date, kind string }{
		{"quiet", "2026-01-16", "quiet (nothing due)"},
		{"due", "2026-02-15", "due date (every loan earns)"},
		{"past_due", "2026-02-20", "past due (every loan charged, 5 days caught up)"},
	}
	if *profileRun != "" && !slices.ContainsFunc(runs, func(r struct{ name, date, kind string }) bool { return r.name == *profileRun }) {
		return fmt.Errorf("--cpuprofile-run: want quiet, due or past_due")
	}
	stopProfile := func() {}
	defer func() { stopProfile() }()
	for i, c := range runs {
		if *profileRun == "" && i == 0 || *profileRun == c.name {
			if stopProfile, err = startCPUProfile(*cpuProfile); err != nil {
				return err
			}
		}
		d := credit.MustDate(c.date)
		now.Store(time.Date(d.Year(), d.Month(), d.Day(), 23, 0, 0, 0, time.UTC).UnixNano())
		start, cpu0 := time.Now(), cpuTime()
		var loansDone, loansCPU time.Duration
		prog := newProgress(os.Stderr)
		r, err := svc.RunEOD(ctx, d, func(p service.Progress) {
			if p.Stage != service.StageLoans && loansDone == 0 {
				loansDone, loansCPU = time.Since(start), cpuTime()-cpu0
			}
			prog.report(p)
		})
		prog.end()
		if err != nil {
			return fmt.Errorf("eod %s: %w", c.date, err)
		}
		res := result{Date: c.date, Kind: c.kind, Loans: r.Loans, Changed: r.Changed, LoansSeconds: loansDone.Seconds(),
			TotalSeconds: time.Since(start).Seconds(), Reconciled: r.Reconcile != nil && r.Reconcile.OK()}
		if loansDone > 0 && r.Loans > 0 {
			res.LoansPerSec = float64(r.Loans) / loansDone.Seconds()
			res.CPUPerLoanUs = float64(loansCPU.Microseconds()) / float64(r.Loans)
		}
		results = append(results, res)
		if *profileRun == c.name {
			stopProfile()
			stopProfile = func() {}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"loans": *loans, "lines": lines, "seed_seconds": seed.Seconds(), "runs": results})
}

// seedEOD opens lines credit lines and makes loans three-installment purchases on them,
// clients at a time.
func seedEOD(ctx context.Context, svc *service.Service, loans, lines, clients int) (time.Duration, error) {
	t0 := time.Now()
	run := func(n int, f func(i int) error) error {
		var next atomic.Int64
		var first error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n {
						return
					}
					if err := f(i); err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return first
	}
	err := run(lines, func(i int) error {
		_, _, err := svc.Apply(ctx, service.ApplicationRequest{ID: fmt.Sprintf("bapp%d", i), CustomerID: fmt.Sprintf("bc%d", i),
			Name: "Bench", IDNumber: "110105199003071239", MonthlyIncome: 2_500_000})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("seed applications: %w", err)
	}
	err = run(loans, func(i int) error {
		_, _, err := svc.Purchase(ctx, service.PurchaseRequest{ID: fmt.Sprintf("bp%d", i), AccountID: service.LineID(fmt.Sprintf("bc%d", i%lines)),
			MerchantID: fmt.Sprintf("bm%d", i%100), Amount: int64(1_000 + i%9_000), Currency: "CNY", Plan: service.PlanInstallments, Periods: 3})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("seed purchases: %w", err)
	}
	return time.Since(t0), nil
}
