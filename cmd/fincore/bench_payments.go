package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/platform/timer"
)

// paymentsBenchResult is the final JSON line of `fincore bench payments`.
type paymentsBenchResult struct {
	Backend        string  `json:"backend"`
	Clients        int     `json:"clients"`
	Rate           int     `json:"rate,omitempty"` // the offered rate, if paced
	Payments       int64   `json:"payments"`
	Succeeded      int64   `json:"succeeded"`
	Failed         int64   `json:"failed"`
	AcceptedPerS   float64 `json:"accepted_per_s"`
	CompletedPerS  float64 `json:"completed_per_s"`
	AcceptP50Ms    float64 `json:"accept_p50_ms"`
	AcceptP99Ms    float64 `json:"accept_p99_ms"`
	CompleteP50Ms  float64 `json:"complete_p50_ms"`
	CompleteP99Ms  float64 `json:"complete_p99_ms"`
	BankLatencyP50 float64 `json:"bank_latency_p50_ms"`
	Groups         int64   `json:"groups"`
	AvgGroup       float64 `json:"avg_group"`
	AvgCommitMs    float64 `json:"avg_commit_ms"`
	// CPUPerPayment is the process's CPU time (user and system: fincore, the simulated banks
	// and the load generator) per payment, from the first submission to the last completion.
	// Unlike the rates it hardly depends on what else the machine runs.
	CPUPerPaymentUs float64 `json:"cpu_us_per_payment"`
}

// cmdBenchPayments accepts payments for --duration from --clients concurrent clients through
// the payment service (in process) on fresh embedded or PostgreSQL storage, with three
// simulated banks answering in 20–200 ms, and measures acceptance latency and how many
// payments per second are accepted and completed (reach a final state).
func cmdBenchPayments(args []string) error {
	fs := flag.NewFlagSet("bench payments", flag.ContinueOnError)
	clients := fs.Int("clients", 64, "concurrent clients")
	rate := fs.Int("rate", 0, "offer this many payments per second, evenly spaced (latency counts from each payment's slot, so a backlog shows); 0: each client submits as fast as it can")
	duration := fs.Duration("duration", 10*time.Second, "how long payments are submitted")
	workers := fs.Int("workers", timerWorkers, "timer workers (concurrent bank calls)")
	doneWait := fs.Duration("done-wait", timerDoneWait, "how long the timer service gathers completions before writing them")
	commitInterval := fs.Duration("commit-interval", ledgerCommitInterval, "the ledger's least time between group commits (ledger.Config.CommitInterval)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (submission and completion) to this file")
	var sf storeFlags
	sf.register(fs, false)
	fs.Lookup("data").DefValue = ""
	sf.data = ""
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *clients < 1 || *clients > 4096 || *duration <= 0 || *workers < 1 || *rate < 0 || *rate > 1_000_000 {
		return fmt.Errorf("want 1 ≤ --clients ≤ 4096, a positive --duration and --workers, 0 ≤ --rate ≤ 1,000,000")
	}
	ctx := context.Background()
	st, closeStore, err := openBenchStore(ctx, &sf, "fincore-bench-")
	if err != nil {
		return err
	}
	defer closeStore()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ts, err := timer.New(timer.Config{Store: st.(timer.Provider).Timers(), Workers: *workers, DoneWait: *doneWait, Logger: quiet})
	if err != nil {
		return err
	}
	var gobs groupTally
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet, TimersCommitted: ts.Committed, Observer: &gobs, CommitInterval: *commitInterval})
	if err != nil {
		return err
	}
	defer eng.Close()
	reg := bank.NewRegistry()
	for i, code := range []string{"bench-a", "bench-b", "bench-c"} {
		b, err := sim.New(sim.Options{Name: code, Seed: uint64(i + 1),
			Profile: sim.Profile{Median: 60 * time.Millisecond, P99: 200 * time.Millisecond, DeclineRate: 0.02}})
		if err != nil {
			return err
		}
		defer b.Close()
		if err := reg.Add(sim.NewChannel(code, bank.Capabilities{Currencies: []string{"CNY"}, Refunds: true}, b)); err != nil {
			return err
		}
	}
	var succeeded, failed atomic.Int64
	var mu sync.Mutex
	created := map[string]time.Time{}
	var completeLat []time.Duration
	var lastFinal atomic.Int64
	sealer, _ := payment.NewSealer(payment.NewKey())
	svc, err := payment.New(payment.Config{Ledger: eng, Store: st, Channels: reg, Router: route.New(route.Options{}), Sealer: sealer, Logger: quiet,
		Finalized: func(p payment.Payment) {
			now := time.Now()
			if p.Status == payment.StatusSucceeded {
				succeeded.Add(1)
			} else {
				failed.Add(1)
			}
			mu.Lock()
			if t0, ok := created[p.ID]; ok {
				completeLat = append(completeLat, now.Sub(t0))
			}
			mu.Unlock()
			lastFinal.Store(now.UnixNano())
		}})
	if err != nil {
		return err
	}
	for name, h := range svc.Handlers() {
		ts.Register(name, h)
	}
	if err := svc.Setup(ctx); err != nil {
		return err
	}
	if err := ts.Start(ctx); err != nil {
		return err
	}
	defer ts.Stop()
	if _, err := svc.CreateMerchant(ctx, payment.MerchantInput{ID: "bench", Name: "Bench", Currency: "CNY", FeeBps: 60}); err != nil {
		return err
	}
	card, err := svc.CreateCard(ctx, payment.CardInput{PAN: "6222020200112233446", Holder: "Bench", ExpiryMonth: 12, ExpiryYear: 2035, BankCode: "ICBC"})
	if err != nil {
		return err
	}

	stopCPU, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	stopProfile := sync.OnceFunc(stopCPU)
	defer stopProfile()
	cpu0 := cpuTime()
	var seq atomic.Int64
	lats := make([][]time.Duration, *clients)
	start := time.Now()
	end := start.Add(*duration)
	// next gives a client the time its next payment is due: now, unpaced; with --rate, the
	// next slot of the schedule (a backlog makes the slot older than now, and that wait
	// counts in the latency).
	next := func() (time.Time, bool) {
		now := time.Now()
		return now, now.Before(end)
	}
	if *rate > 0 {
		slots := make(chan time.Time, *rate)
		go pace(slots, start, end, *rate)
		next = func() (time.Time, bool) {
			t, ok := <-slots
			return t, ok
		}
	}
	var wg sync.WaitGroup
	for c := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t0, ok := next()
				if !ok {
					return
				}
				id := fmt.Sprintf("bp%08d", seq.Add(1))
				mu.Lock()
				created[id] = t0
				mu.Unlock()
				if _, _, err := svc.CreatePayment(ctx, payment.PaymentInput{ID: id, MerchantID: "bench", Amount: 1000, Currency: "CNY", CardID: card.ID}); err != nil {
					fmt.Fprintln(os.Stderr, "create payment:", err)
					return
				}
				lats[c] = append(lats[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	acceptEnd := time.Now()
	total := seq.Load()
	// Wait for every accepted payment to finish.
	deadline := time.Now().Add(5 * time.Minute)
	for succeeded.Load()+failed.Load() < total {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d payments completed in 5 minutes", succeeded.Load()+failed.Load(), total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopProfile()
	cpuUsed := cpuTime() - cpu0
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	slices.Sort(completeLat)
	ms := func(d []time.Duration, q float64) float64 {
		if len(d) == 0 {
			return 0
		}
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	completeSpan := time.Unix(0, lastFinal.Load()).Sub(start)
	res := paymentsBenchResult{Backend: sf.backend(), Clients: *clients, Rate: *rate, Payments: total, Succeeded: succeeded.Load(), Failed: failed.Load(),
		AcceptedPerS:  float64(int64(float64(total)/acceptEnd.Sub(start).Seconds()*10)) / 10,
		CompletedPerS: float64(int64(float64(total)/completeSpan.Seconds()*10)) / 10,
		AcceptP50Ms:   ms(all, 0.5), AcceptP99Ms: ms(all, 0.99), CompleteP50Ms: ms(completeLat, 0.5), CompleteP99Ms: ms(completeLat, 0.99)}
	if total > 0 {
		res.CPUPerPaymentUs = float64(cpuUsed.Microseconds()*10/total) / 10
	}
	if n := gobs.groups.Load(); n > 0 {
		res.Groups = n
		res.AvgGroup = float64(gobs.inputs.Load()*10/n) / 10
		res.AvgCommitMs = float64(gobs.nanos.Load()/n/1000) / 1000
	}
	res.BankLatencyP50 = svc.Stats().Channels["bench-a"].LatencyP50Ms
	fmt.Fprintf(os.Stderr, "payments: %d accepted in %s (%.0f/s, p50 %.2f ms, p99 %.2f ms); all final after %s (%.0f/s); %d succeeded, %d failed\n",
		total, acceptEnd.Sub(start).Round(time.Millisecond), res.AcceptedPerS, res.AcceptP50Ms, res.AcceptP99Ms,
		completeSpan.Round(time.Millisecond), res.CompletedPerS, res.Succeeded, res.Failed)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}

// groupTally sums the ledger's group commits.
type groupTally struct{ groups, inputs, nanos atomic.Int64 }

func (t *groupTally) GroupCommitted(c ledger.GroupCommit) {
	t.groups.Add(1)
	t.inputs.Add(int64(c.Inputs))
	t.nanos.Add(int64(c.Duration))
}

// pace sends the due times of rate evenly spaced slots per second from start until end, then
// closes slots. It sends late rather than skip when the clients fall behind.
func pace(slots chan<- time.Time, start, end time.Time, rate int) {
	defer close(slots)
	interval := time.Second / time.Duration(rate)
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if !due.Before(end) {
			return
		}
		if d := time.Until(due); d > time.Millisecond {
			time.Sleep(d)
		}
		slots <- due
	}
}
