package payment

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// finalPayment is a payment of merchant m that reached status st (with failure code code)
// ms milliseconds after it was accepted, at t.
func finalPayment(m string, st Status, code string, ms int, t time.Time) Payment {
	return Payment{MerchantID: m, Status: st, FailureCode: code, Created: t.Add(-time.Duration(ms) * time.Millisecond), Updated: t}
}

// TestMerchantStatsCounts: final payments by outcome and failure code, the success rate
// without closed payments, the completion latency histogram, the recent window (which forgets
// payments older than it), merchants apart, and payments not final not counted.
func TestMerchantStatsCounts(t *testing.T) {
	b := newMerchantBook(100, time.Hour)
	t0 := time.Unix(1_000_000, 0)
	old := t0.Add(-10 * time.Minute)
	for _, p := range []Payment{
		finalPayment("m1", StatusFailed, "declined", 40, old), // outside the window
		finalPayment("m1", StatusSucceeded, "", 80, t0),
		finalPayment("m1", StatusSucceeded, "", 150, t0),
		finalPayment("m1", StatusSucceeded, "", 150, t0),
		finalPayment("m1", StatusFailed, "declined", 3, t0),
		finalPayment("m1", StatusFailed, FailureRiskRejected, 1, t0),
		finalPayment("m1", StatusClosed, "", 2500, t0),
		finalPayment("m1", StatusProcessing, "", 5, t0), // not final: not counted
		finalPayment("m2", StatusFailed, "insufficient_funds", 60000, t0),
	} {
		b.observe(p, p.Updated)
	}
	st := b.snapshot("m1", t0)
	if st.MerchantID != "m1" || st.Since == nil || !st.Since.Equal(old) {
		t.Fatalf("merchant %q since %v", st.MerchantID, st.Since)
	}
	if st.Payments != 7 || st.Succeeded != 3 || st.Failed != 3 || st.Closed != 1 || st.SuccessRate != 0.5 {
		t.Errorf("counts %+v", st)
	}
	if want := map[string]int64{"declined": 2, FailureRiskRejected: 1}; !reflect.DeepEqual(st.FailureCodes, want) {
		t.Errorf("failure codes %v, want %v", st.FailureCodes, want)
	}
	if want := (MerchantRecent{WindowS: 300, Payments: 6, Succeeded: 3, Failed: 2, SuccessRate: 0.6}); st.Recent != want {
		t.Errorf("recent %+v, want %+v", st.Recent, want)
	}
	// 1, 3, 40, 80, 150, 150 and 2,500 ms: buckets ≤1, ≤5, ≤50, ≤100, ≤200 (2), ≤5000.
	want := make([]int64, len(latencyBounds)+1)
	for _, ms := range []float64{1, 5, 50, 100, 200, 200, 5000} {
		want[slices.Index(latencyBounds[:], ms)]++
	}
	if !reflect.DeepEqual(st.Latency.Counts, want) || st.LatencyP50Ms != 100 || st.LatencyP99Ms != 5000 {
		t.Errorf("latency p50 %v p99 %v histogram %v, want %v", st.LatencyP50Ms, st.LatencyP99Ms, st.Latency.Counts, want)
	}
	m2 := b.snapshot("m2", t0)
	if m2.Payments != 1 || m2.Failed != 1 || m2.SuccessRate != 0 || m2.FailureCodes["insufficient_funds"] != 1 ||
		m2.Latency.Counts[len(latencyBounds)] != 1 || m2.LatencyP99Ms != 30000 {
		t.Errorf("m2 %+v", m2)
	}
	// Later, the window has forgotten everything; the totals stay.
	later := b.snapshot("m1", t0.Add(time.Hour))
	if later.Recent != (MerchantRecent{WindowS: 300}) || later.Payments != 7 {
		t.Errorf("an hour later %+v", later)
	}
	none := b.snapshot("m3", t0)
	if none.Since != nil || none.Payments != 0 || none.FailureCodes == nil || len(none.Latency.Counts) != len(latencyBounds)+1 {
		t.Errorf("a merchant without payments %+v", none)
	}
}

// TestMerchantStatsBounds: merchants idle for longer than the idle bound are dropped by the
// sweep; a new merchant past the cap drops the least recently active ones first; a dropped
// merchant that comes back starts again.
func TestMerchantStatsBounds(t *testing.T) {
	b := newMerchantBook(16, 2*time.Hour)
	t0 := time.Unix(1_000_000, 0)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	for i := range 16 {
		b.observe(finalPayment(string(rune('a'+i)), StatusSucceeded, "", 1, at(i)), at(i))
	}
	b.observe(finalPayment("a", StatusSucceeded, "", 1, at(20)), at(20)) // a is active again
	if b.len() != 16 {
		t.Fatalf("%d merchants", b.len())
	}
	// A 17th: the two idle the longest (an eighth of 16), b and c, make room.
	b.observe(finalPayment("q", StatusSucceeded, "", 1, at(21)), at(21))
	if n := b.len(); n != 15 || b.snapshot("b", at(21)).Payments != 0 || b.snapshot("c", at(21)).Payments != 0 ||
		b.snapshot("a", at(21)).Payments != 2 || b.snapshot("d", at(21)).Payments != 1 {
		t.Fatalf("after the cap: %d merchants", n)
	}
	// The next sweep (an hour after the last) drops those idle for more than two hours:
	// all but a (last at 20 min) and q (21).
	b.observe(finalPayment("q", StatusSucceeded, "", 1, at(138)), at(138))
	if n := b.len(); n != 2 || b.snapshot("a", at(138)).Payments != 2 || b.snapshot("q", at(138)).Payments != 2 {
		t.Fatalf("after the sweep: %d merchants", n)
	}
	b.observe(finalPayment("d", StatusFailed, "declined", 1, at(139)), at(139))
	if st := b.snapshot("d", at(139)); st.Payments != 1 || st.Failed != 1 || !st.Since.Equal(at(139)) {
		t.Fatalf("a merchant dropped and back %+v", st)
	}
}

// BenchmarkMerchantStatsObserve: the cost of counting a final payment, over 1,000 merchants.
func BenchmarkMerchantStatsObserve(b *testing.B) {
	book := newMerchantBook(DefaultMerchantStatsMax, DefaultMerchantStatsIdle)
	now := time.Now()
	ps := make([]Payment, 1000)
	for i := range ps {
		ps[i] = finalPayment(fmt.Sprint("mch_", i), StatusSucceeded, "", i%300, now)
		if i%10 == 0 {
			ps[i].Status, ps[i].FailureCode = StatusFailed, "declined"
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		book.observe(ps[i%len(ps)], now)
	}
}
