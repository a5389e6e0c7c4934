package credit

import (
	"math/rand/v2"
	"testing"

	"github.com/fincore/fincore/money"
)

func TestRefundLastInstallmentFirst(t *testing.T) {
	// Baitiao 3 × (principal 99,966/99,966/99,968, fee 1,500).
	s, err := NewSchedule(Terms{Principal: 299_900, Periods: 3, Method: FlatFee, FeeRate: money.MustRate("0.005"), Start: MustDate("2026-11-11")})
	if err != nil {
		t.Fatal(err)
	}
	items := ItemsFromSchedule(s)
	// 150,000: all of period 3 (99,968 and its fee 1,500), then 50,032 of period 2's 99,966:
	// its fee falls by round(1,500 × 50,032 / 99,966) = round(750.73) = 751.
	out, cuts, ok := Refund(items, 150_000)
	if !ok {
		t.Fatal("refused")
	}
	want := []Split{{3, ComponentFee, 1500}, {3, ComponentPrincipal, 99_968}, {2, ComponentFee, 751}, {2, ComponentPrincipal, 50_032}}
	if len(cuts) != len(want) {
		t.Fatalf("cuts %+v, want %+v", cuts, want)
	}
	for i := range want {
		if cuts[i] != want[i] {
			t.Fatalf("cut %d: %+v, want %+v", i, cuts[i], want[i])
		}
	}
	if out[2].Total() != 0 || out[1].Principal != 49_934 || out[1].Fee != 749 || out[0] != items[0] {
		t.Errorf("items after: %+v", out)
	}
	if items[2].Principal != 99_968 {
		t.Error("Refund changed its input")
	}
	// Over-refund and non-positive amounts are refused.
	for _, a := range []int64{0, -1, 299_901} {
		if _, _, ok := Refund(items, a); ok {
			t.Errorf("Refund(%d) accepted", a)
		}
	}
}

// TestRefundNeverLosesAMinorUnit draws plans of every method, partly paid, and refunds of
// any size: the cuts are exactly what the plan owes less, principal falls by the refund,
// nothing goes negative, and penalties are untouched.
func TestRefundNeverLosesAMinorUnit(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for n := range 2000 {
		terms := Terms{Principal: 1 + rng.Int64N(10_000_000), Periods: 1 + rng.IntN(24), Start: MustDate("2026-01-31")}
		switch rng.IntN(3) {
		case 0:
			terms.Method, terms.AnnualRate = Annuity, money.MustRate("0.18")
		case 1:
			terms.Method, terms.AnnualRate = EqualPrincipal, money.MustRate("0.1")
		default:
			terms.Method, terms.FeeRate = FlatFee, money.MustRate("0.0075")
		}
		s, err := NewSchedule(terms)
		if err != nil {
			t.Fatal(err)
		}
		items := ItemsFromSchedule(s)
		for i := range items { // some paid, some with penalties
			if rng.IntN(4) == 0 {
				items[i].Principal /= 2
				items[i].Interest /= 3
			}
			items[i].Penalty = rng.Int64N(100)
		}
		var owedP, owed int64
		for _, it := range items {
			owedP += it.Principal
			owed += it.Total()
		}
		if owedP == 0 {
			continue
		}
		amount := 1 + rng.Int64N(owedP)
		out, cuts, ok := Refund(items, amount)
		if !ok {
			t.Fatalf("plan %d: refund %d of %d refused", n, amount, owedP)
		}
		var after, afterP, cutSum, cutP int64
		for i, it := range out {
			if it.Principal < 0 || it.Interest < 0 || it.Fee < 0 || it.Penalty != items[i].Penalty {
				t.Fatalf("plan %d: item %+v from %+v", n, it, items[i])
			}
			after += it.Total()
			afterP += it.Principal
		}
		for _, c := range cuts {
			cutSum += c.Amount
			if c.Component == ComponentPrincipal {
				cutP += c.Amount
			}
		}
		if cutP != amount || afterP != owedP-amount || after != owed-cutSum {
			t.Fatalf("plan %d: refund %d: principal cut %d, owed %d→%d, cuts %d", n, amount, cutP, owed, after, cutSum)
		}
	}
}
