package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/fincore/fincore/payment/route"
)

// cmdBenchRouting runs the routing scenario of the payments issue in simulated time: three
// channels at 95%, 90% and 80% success; after --drop-at the best drops to 40%. It reports the
// router's success rate against an oracle that always picks the best channel, and how long the
// traffic took to leave the degraded channel, then one JSON line.
func cmdBenchRouting(args []string) error {
	fs := flag.NewFlagSet("bench routing", flag.ContinueOnError)
	rate := fs.Int("rate", 200, "payments per second (simulated)")
	duration := fs.Duration("duration", 5*time.Minute, "simulated run length")
	dropAt := fs.Duration("drop-at", time.Minute, "when the best channel drops from 95% to 40%")
	halfLife := fs.Duration("half-life", 10*time.Second, "half-life of the router's observations")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 1_000_000 || *duration <= 0 || *dropAt <= 0 || *dropAt >= *duration {
		return fmt.Errorf("want 0 < --rate ≤ 1000000 and 0 < --drop-at < --duration")
	}
	sc := route.DropScenario(*rate, *duration, *dropAt, *seed)
	sc.Options.HalfLife = *halfLife
	start := time.Now()
	res, err := route.Simulate(sc)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "routing: %d payments at %d/s over %s (simulated, %s of CPU); best channel drops 95%%→40%% at %s\n",
		res.Payments, *rate, *duration, time.Since(start).Round(time.Millisecond), *dropAt)
	fmt.Fprintf(os.Stderr, "  router %.2f%% (expected %.2f%%), oracle %.2f%%: %.2f points below the oracle\n",
		res.Rate*100, res.Expected*100, res.Oracle*100, res.GapPP)
	fmt.Fprintf(os.Stderr, "  traffic left the degraded channel (under 10%% of a second's payments) %.0f s after the drop\n", res.ShiftSeconds)
	for _, c := range []string{"bank-a", "bank-b", "bank-c"} {
		fmt.Fprintf(os.Stderr, "  %s: %d payments\n", c, res.Shares[c])
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
