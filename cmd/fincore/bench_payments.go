package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
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
	// Where acceptance latency goes (what an accepted payment waits for is the ledger's group
	// commit in flight and then its own): the group commits' time in storage (p99 and the
	// longest); the Go runtime's garbage collection — its cycles, its share of the process's
	// CPU, the share of that done by allocating goroutines (assists, which delay them), the
	// longest stop-the-world pause (upper bound of its histogram bucket) — and the 99th
	// percentile of the time goroutines waited, ready to run, for a CPU.
	CommitP99Ms     float64 `json:"commit_p99_ms"`
	CommitMaxMs     float64 `json:"commit_max_ms"`
	GCCycles        uint64  `json:"gc_cycles"`
	GCCPUPct        float64 `json:"gc_cpu_pct"`
	GCAssistPct     float64 `json:"gc_assist_cpu_pct"`
	GCPauseMaxMs    float64 `json:"gc_pause_max_ms"`
	SchedLatP99Ms   float64 `json:"sched_latency_p99_ms"`
	HeapLiveAfterMB float64 `json:"heap_live_after_mb"`
	// Heap allocations per payment (objects and bytes) of the whole process, as CPU.
	AllocsPerPayment     float64 `json:"allocs_per_payment"`
	AllocBytesPerPayment float64 `json:"alloc_bytes_per_payment"`
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
	memProfile := fs.String("memprofile", "", "write a heap profile to this file once every payment is final (what the process holds then, after a collection)")
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
	tuneGC()
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
				// Only payments in flight are kept: a map of every payment of the run would
				// grow the heap the collector marks (7 MB in 30 s at 3,000/s), which a
				// server's does not.
				delete(created, p.ID)
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
	rt0 := readPaymentsRuntime()
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
	rt := readPaymentsRuntime().since(rt0)
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
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
		res.AllocsPerPayment = float64(int64(rt.allocs)*10/total) / 10
		res.AllocBytesPerPayment = float64(int64(rt.allocBytes) / total)
	}
	res.CommitP99Ms, res.CommitMaxMs = gobs.quantile(0.99), gobs.quantile(1)
	res.GCCycles, res.GCCPUPct, res.GCAssistPct, res.GCPauseMaxMs, res.SchedLatP99Ms, res.HeapLiveAfterMB =
		rt.cycles, rt.gcPct, rt.assistPct, rt.pauseMaxMs, rt.schedP99Ms, rt.heapLiveMB
	if n := gobs.groups.Load(); n > 0 {
		res.Groups = n
		res.AvgGroup = float64(gobs.inputs.Load()*10/n) / 10
		res.AvgCommitMs = float64(gobs.nanos.Load()/n/1000) / 1000
	}
	res.BankLatencyP50 = svc.Stats().Channels["bench-a"].LatencyP50Ms
	fmt.Fprintf(os.Stderr, "payments: %d accepted in %s (%.0f/s, p50 %.2f ms, p99 %.2f ms); all final after %s (%.0f/s); %d succeeded, %d failed\n",
		total, acceptEnd.Sub(start).Round(time.Millisecond), res.AcceptedPerS, res.AcceptP50Ms, res.AcceptP99Ms,
		completeSpan.Round(time.Millisecond), res.CompletedPerS, res.Succeeded, res.Failed)
	fmt.Fprintf(os.Stderr, "payments: group commits p99 %.2f ms, longest %.2f ms; GC %d cycles, %.1f%% of the CPU (assists %.1f%%), longest pause %.2f ms; scheduling wait p99 %.2f ms; %.0f µs CPU, %.0f allocations, %.0f bytes allocated per payment\n",
		res.CommitP99Ms, res.CommitMaxMs, res.GCCycles, res.GCCPUPct, res.GCAssistPct, res.GCPauseMaxMs, res.SchedLatP99Ms,
		res.CPUPerPaymentUs, res.AllocsPerPayment, res.AllocBytesPerPayment)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	return nil
}

// groupTally sums the ledger's group commits and keeps their durations.
type groupTally struct {
	groups, inputs, nanos atomic.Int64
	mu                    sync.Mutex
	durations             []time.Duration
}

func (t *groupTally) GroupCommitted(c ledger.GroupCommit) {
	t.groups.Add(1)
	t.inputs.Add(int64(c.Inputs))
	t.nanos.Add(int64(c.Duration))
	t.mu.Lock()
	t.durations = append(t.durations, c.Duration)
	t.mu.Unlock()
}

// quantile is the q-quantile of the group commits' durations in milliseconds (1: the longest).
func (t *groupTally) quantile(q float64) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.durations) == 0 {
		return 0
	}
	d := slices.Clone(t.durations)
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
}

// paymentsRuntime is what the Go runtime has counted since the process started: CPU time of
// the collector and of its assists, cycles, the stop-the-world pause and scheduling latency
// histograms.
type paymentsRuntime struct {
	gcCPU, assistCPU, totalCPU float64
	cycles                     uint64
	pauses, sched              *metrics.Float64Histogram
	heapLive                   uint64
	allocs, allocBytes         uint64
}

// paymentsRuntimeDelta is what the runtime counted between two readings.
type paymentsRuntimeDelta struct {
	cycles, allocs, allocBytes                           uint64
	gcPct, assistPct, pauseMaxMs, schedP99Ms, heapLiveMB float64
}

func readPaymentsRuntime() paymentsRuntime {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/assist:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}, {Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/sched/latencies:seconds"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:objects"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	var r paymentsRuntime
	f := func(i int) float64 {
		if s[i].Value.Kind() == metrics.KindFloat64 {
			return s[i].Value.Float64()
		}
		return 0
	}
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	h := func(i int) *metrics.Float64Histogram {
		if s[i].Value.Kind() == metrics.KindFloat64Histogram {
			return s[i].Value.Float64Histogram()
		}
		return nil
	}
	r.gcCPU, r.assistCPU, r.totalCPU, r.cycles, r.pauses, r.sched, r.heapLive = f(0), f(1), f(2), u(3), h(4), h(5), u(6)
	r.allocs, r.allocBytes = u(7), u(8)
	return r
}

func (r paymentsRuntime) since(before paymentsRuntime) paymentsRuntimeDelta {
	d := paymentsRuntimeDelta{cycles: r.cycles - before.cycles, heapLiveMB: math.Round(float64(r.heapLive)/(1<<20)*10) / 10,
		allocs: r.allocs - before.allocs, allocBytes: r.allocBytes - before.allocBytes}
	if cpu := r.totalCPU - before.totalCPU; cpu > 0 {
		d.gcPct = math.Round((r.gcCPU-before.gcCPU)/cpu*1000) / 10
		d.assistPct = math.Round((r.assistCPU-before.assistCPU)/cpu*1000) / 10
	}
	d.pauseMaxMs = histogramMs(r.pauses, before.pauses, 1)
	d.schedP99Ms = histogramMs(r.sched, before.sched, 0.99)
	return d
}

// histogramMs is the q-quantile, in milliseconds, of what a runtime histogram counted
// between before and h: the upper bound of the bucket it falls in (1: of the highest bucket
// counted).
func histogramMs(h, before *metrics.Float64Histogram, q float64) float64 {
	if h == nil || before == nil || len(h.Counts) != len(before.Counts) {
		return 0
	}
	var total uint64
	for i := range h.Counts {
		total += h.Counts[i] - before.Counts[i]
	}
	if total == 0 {
		return 0
	}
	var cum uint64
	for i := range h.Counts {
		cum += h.Counts[i] - before.Counts[i]
		if float64(cum) >= q*float64(total) {
			ub := h.Buckets[i+1]
			if math.IsInf(ub, 1) {
				ub = h.Buckets[i]
			}
			return math.Round(ub*1e6) / 1000
		}
	}
	return 0
}

// writeHeapProfile writes the heap profile, after a collection, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
