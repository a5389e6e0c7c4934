package payment

import (
	"reflect"
	"testing"
	"time"

	"github.com/fincore/fincore/bank"
)

var (
	approved = bank.Result{Status: bank.Succeeded, Code: bank.CodeApproved}
	declined = bank.Result{Status: bank.Failed, Code: bank.CodeDeclined}
	timedOut = bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout}
	pending  = bank.Result{Status: bank.Pending, Code: bank.CodeApproved}
)

// TestStatsBankLabels: configured bank codes always have a label of their own; past them the
// first MaxBankLabels others do and later ones count as "other"; a missing bank code counts
// as "unknown".
func TestStatsBankLabels(t *testing.T) {
	b := newStatsBook([]string{"CFG1", "CFG2"}, 2)
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct{ code, want string }{
		{"AAA", "AAA"}, {"CFG1", "CFG1"}, {"BBB", "BBB"}, {"CCC", BankOther}, {"AAA", "AAA"}, {"CFG2", "CFG2"},
		{"DDD", BankOther}, {"", BankUnknown}, {"BBB", "BBB"},
	} {
		if got := b.observe("ch", tc.code, approved, time.Millisecond, now); got != tc.want {
			t.Errorf("bank %q labelled %q, want %q", tc.code, got, tc.want)
		}
	}
	var got []string
	for _, bs := range b.snapshot(now).Banks {
		got = append(got, bs.Bank)
	}
	if want := []string{"AAA", "BBB", "CFG1", "CFG2", BankOther, BankUnknown}; !reflect.DeepEqual(got, want) {
		t.Fatalf("banks %v, want %v", got, want)
	}
}

// TestStatsCounts: counts per channel and bank, their sums per channel and per bank across
// channels, success rates over final answers only, the latency histogram, and the recent
// window, which forgets calls older than it.
func TestStatsCounts(t *testing.T) {
	b := newStatsBook(nil, 64)
	t0 := time.Unix(1_000_000, 0)
	obs := func(ch, bk string, res bank.Result, ms int, at time.Time) {
		b.observe(ch, bk, res, time.Duration(ms)*time.Millisecond, at)
	}
	old := t0.Add(-10 * time.Minute)
	obs("x", "AAA", declined, 3, old) // outside the window
	obs("x", "AAA", approved, 30, t0)
	obs("x", "AAA", approved, 30, t0)
	obs("x", "AAA", declined, 60, t0)
	obs("x", "AAA", timedOut, 40000, t0)
	obs("x", "BBB", declined, 10, t0)
	obs("y", "AAA", pending, 5, t0)
	obs("y", "BBB", approved, 1, t0.Add(-4*time.Minute))
	st := b.snapshot(t0)

	x := st.Channels["x"]
	if x.Calls != 6 || x.Codes["approved"] != 2 || x.Codes["declined"] != 3 || x.Codes["timeout"] != 1 || len(x.Codes) != 3 {
		t.Fatalf("channel x %+v", x.CallStats)
	}
	if x.SuccessRate != 2.0/5 || x.Recent.Calls != 5 || x.Recent.Final != 4 || x.Recent.Succeeded != 2 || x.Recent.SuccessRate != 0.5 || x.Recent.WindowS != 300 {
		t.Fatalf("channel x rates %v %+v", x.SuccessRate, x.Recent)
	}
	if len(x.Banks) != 2 || x.Banks[0].Bank != "AAA" || x.Banks[1].Bank != "BBB" || x.Banks[0].Channels != nil {
		t.Fatalf("channel x banks %+v", x.Banks)
	}
	xa := x.Banks[0]
	if xa.Calls != 5 || xa.Codes["declined"] != 2 || xa.SuccessRate != 0.5 || xa.Recent.Calls != 4 || xa.Recent.SuccessRate != 2.0/3 {
		t.Fatalf("x/AAA %+v", xa.CallStats)
	}
	// 3 ms → (2, 5]; 30 ms twice → (20, 50]; 60 ms → (50, 100]; 40 s → above 30 s.
	want := make([]int64, len(latencyBounds)+1)
	want[2], want[5], want[6], want[len(latencyBounds)] = 1, 2, 1, 1
	if !reflect.DeepEqual(xa.Latency.Counts, want) || len(xa.Latency.BoundsMs) != len(latencyBounds) {
		t.Fatalf("x/AAA latency %+v, want counts %v", xa.Latency, want)
	}
	if xa.LatencyP50Ms != 50 || xa.LatencyP99Ms != 30000 {
		t.Fatalf("x/AAA quantiles %v %v", xa.LatencyP50Ms, xa.LatencyP99Ms)
	}
	// The pending answer is neither a success nor a failure.
	if ya := st.Channels["y"].Banks[0]; ya.Bank != "AAA" || ya.Calls != 1 || ya.Codes["approved"] != 1 || ya.SuccessRate != 0 || ya.Recent.Final != 0 {
		t.Fatalf("y/AAA %+v", ya)
	}
	if len(st.Banks) != 2 {
		t.Fatalf("banks %+v", st.Banks)
	}
	aaa, bbb := st.Banks[0], st.Banks[1]
	if aaa.Bank != "AAA" || aaa.Calls != 6 || aaa.Codes["approved"] != 3 || !reflect.DeepEqual(aaa.Channels, []string{"x", "y"}) || aaa.SuccessRate != 0.5 {
		t.Fatalf("bank AAA %+v", aaa)
	}
	if bbb.Bank != "BBB" || bbb.Calls != 2 || bbb.SuccessRate != 0.5 || bbb.Recent.Calls != 2 || !reflect.DeepEqual(bbb.Channels, []string{"x", "y"}) {
		t.Fatalf("bank BBB %+v", bbb)
	}
	// Six minutes on, the window holds none of the calls; the totals stay.
	later := b.snapshot(t0.Add(6 * time.Minute))
	if r := later.Channels["x"].Recent; r.Calls != 0 || r.SuccessRate != 0 || later.Channels["x"].Calls != 6 {
		t.Fatalf("recent after the window %+v", later.Channels["x"])
	}
}

// BenchmarkStatsObserve is the cost one bank call adds to the payment path for statistics.
func BenchmarkStatsObserve(b *testing.B) {
	book := newStatsBook(nil, 64)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		book.observe("sim-a", "ICBC", approved, time.Duration(i%200)*time.Millisecond, now)
	}
}
