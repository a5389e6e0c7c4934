package credit

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
	"pgregory.net/rapid"
)

// threeMonths is a 3.00 flat-fee plan from 2025-12-10 with a 0.05 penalty on period 1.
func threeMonths() []Item {
	return []Item{
		{Period: 1, DueDate: MustDate("2026-01-10"), Penalty: 5, Fee: 10, Principal: 100},
		{Period: 2, DueDate: MustDate("2026-02-10"), Fee: 10, Principal: 100},
		{Period: 3, DueDate: MustDate("2026-03-10"), Fee: 10, Principal: 100},
	}
}

func TestAllocateExamples(t *testing.T) {
	for _, tc := range []struct {
		name     string
		amount   int64
		asOf     string
		rule     AllocationRule
		splits   []Split
		waived   []Split
		leftover int64
	}{
		{"partial: oldest first, penalty fee interest principal", 120, "2026-02-15", AllocationRule{},
			[]Split{{1, "penalty", 5}, {1, "fee", 10}, {1, "principal", 100}, {2, "fee", 5}}, nil, 0},
		{"due on the repayment date counts as due", 120, "2026-02-10", AllocationRule{},
			[]Split{{1, "penalty", 5}, {1, "fee", 10}, {1, "principal", 100}, {2, "fee", 5}}, nil, 0},
		{"principal first order", 120, "2026-02-15", AllocationRule{Order: []Component{"principal", "interest", "fee", "penalty"}},
			[]Split{{1, "principal", 100}, {1, "fee", 10}, {1, "penalty", 5}, {2, "principal", 5}}, nil, 0},
		{"pay off early: the last fee is waived, the rest comes back", 1000, "2026-02-15", AllocationRule{},
			[]Split{{1, "penalty", 5}, {1, "fee", 10}, {1, "principal", 100}, {2, "fee", 10}, {2, "principal", 100}, {3, "principal", 100}},
			[]Split{{3, "fee", 10}}, 675},
		{"prepay last first", 150, "2025-12-20", AllocationRule{},
			[]Split{{3, "principal", 100}, {2, "principal", 50}}, []Split{{3, "fee", 10}}, 0},
		{"prepay next first", 150, "2025-12-20", AllocationRule{Prepayment: PrepayNextFirst},
			[]Split{{1, "principal", 100}, {2, "principal", 50}}, []Split{{1, "fee", 10}}, 0},
		{"one minor unit", 1, "2026-01-11", AllocationRule{}, []Split{{1, "penalty", 1}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Allocate(threeMonths(), tc.amount, MustDate(tc.asOf), tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(a.Splits, tc.splits) || !reflect.DeepEqual(a.Waived, tc.waived) || a.Leftover != tc.leftover {
				t.Errorf("Allocate = %+v\nwant splits %+v waived %+v leftover %d", a, tc.splits, tc.waived, tc.leftover)
			}
		})
	}
}

func TestAllocateRefusesBadInput(t *testing.T) {
	day := MustDate("2026-02-15")
	dup := threeMonths()
	dup[1].Period = 1
	neg := threeMonths()
	neg[2].Fee = -1
	for _, tc := range []struct {
		name   string
		items  []Item
		amount int64
		date   Date
		rule   AllocationRule
		param  string
	}{
		{"zero amount", threeMonths(), 0, day, AllocationRule{}, "amount"},
		{"amount over max", threeMonths(), money.MaxAmount + 1, day, AllocationRule{}, "amount"},
		{"no date", threeMonths(), 10, Date{}, AllocationRule{}, "date"},
		{"no items", nil, 10, day, AllocationRule{}, "items"},
		{"duplicate period", dup, 10, day, AllocationRule{}, "items[1].period"},
		{"negative fee", neg, 10, day, AllocationRule{}, "items[2].fee"},
		{"bad order", threeMonths(), 10, day, AllocationRule{Order: []Component{"fee"}}, "allocation_order"},
		{"bad prepayment", threeMonths(), 10, day, AllocationRule{Prepayment: "x"}, "prepayment"},
	} {
		_, err := Allocate(tc.items, tc.amount, tc.date, tc.rule)
		if e := apierror.As(err); e == nil || e.Param != tc.param {
			t.Errorf("%s: %v, want invalid_request on %s", tc.name, err, tc.param)
		}
	}
	if _, err := Apply(threeMonths(), Allocation{Splits: []Split{{1, "fee", 11}}}); err == nil {
		t.Error("Apply took more than owed")
	}
	if _, err := Apply(threeMonths(), Allocation{Splits: []Split{{9, "fee", 1}}}); err == nil {
		t.Error("Apply took from an unknown period")
	}
}

func owedTotal(items []Item) int64 {
	var n int64
	for i := range items {
		n += items[i].Total()
	}
	return n
}

// slots lists the (period, component) places a repayment may pay, in the order it must pay
// them: the model Allocate is held to.
func slots(items []Item, asOf Date, rule AllocationRule) [][2]any {
	order := rule.Order
	if order == nil {
		order = DefaultAllocationOrder
	}
	var due, future []Item
	for _, it := range items { // items are kept in period order, which is due-date order
		if it.DueDate.After(asOf) {
			future = append(future, it)
		} else {
			due = append(due, it)
		}
	}
	var out [][2]any
	for _, it := range due {
		for _, c := range order {
			out = append(out, [2]any{it.Period, c})
		}
	}
	if rule.Prepayment != PrepayNextFirst {
		for i, j := 0, len(future)-1; i < j; i, j = i+1, j-1 {
			future[i], future[j] = future[j], future[i]
		}
	}
	for _, it := range future {
		out = append(out, [2]any{it.Period, ComponentPrincipal})
	}
	return out
}

func byPeriod(items []Item, p int) *Item {
	for i := range items {
		if items[i].Period == p {
			return &items[i]
		}
	}
	return nil
}

// checkAllocation holds one repayment to the rules: nothing lost or created, nothing
// negative, the configured order followed, waivers only where principal was prepaid.
func checkAllocation(t *rapid.T, before []Item, amount int64, asOf Date, rule AllocationRule, a Allocation) []Item {
	if a.Paid()+a.Leftover != amount || a.Leftover < 0 {
		t.Fatalf("paid %d + leftover %d != %d", a.Paid(), a.Leftover, amount)
	}
	for _, s := range append(a.Splits, a.Waived...) {
		if s.Amount <= 0 {
			t.Fatalf("empty split %+v", s)
		}
	}
	after, err := Apply(before, a)
	if err != nil {
		t.Fatal(err)
	}
	if owedTotal(before)-owedTotal(after) != a.Paid()+sumSplits(a.Waived) {
		t.Fatalf("owed went from %d to %d with %d paid and %d waived", owedTotal(before), owedTotal(after), a.Paid(), sumSplits(a.Waived))
	}
	for _, it := range after {
		for _, c := range DefaultAllocationOrder {
			if it.Owed(c) < 0 {
				t.Fatalf("period %d owes %d of %s", it.Period, it.Owed(c), c)
			}
		}
	}
	// Splits follow the slot order, and every slot before the last one paid is now clear.
	sl := slots(before, asOf, rule)
	pos := 0
	for _, s := range a.Splits {
		for pos < len(sl) && sl[pos] != [2]any{s.Period, s.Component} {
			if byPeriod(after, sl[pos][0].(int)).Owed(sl[pos][1].(Component)) != 0 {
				t.Fatalf("split %+v paid while %v still owes", s, sl[pos])
			}
			pos++
		}
		if pos == len(sl) {
			t.Fatalf("split %+v out of order or not payable (slots %v)", s, sl)
		}
	}
	if a.Leftover > 0 {
		for _, s := range sl {
			if byPeriod(after, s[0].(int)).Owed(s[1].(Component)) != 0 {
				t.Fatalf("leftover %d while %v still owes", a.Leftover, s)
			}
		}
	}
	// Waivers: exactly the interest and fee of future items whose principal was paid off now.
	var wantWaived int64
	for i := range before {
		b, af := &before[i], byPeriod(after, before[i].Period)
		prepaidOff := b.DueDate.After(asOf) && b.Principal > 0 && af.Principal == 0
		if prepaidOff {
			wantWaived += b.Fee + b.Interest
			if af.Fee != 0 || af.Interest != 0 {
				t.Fatalf("period %d prepaid but still owes %+v", b.Period, af)
			}
		}
	}
	if sumSplits(a.Waived) != wantWaived {
		t.Fatalf("waived %d, want %d", sumSplits(a.Waived), wantWaived)
	}
	return after
}

// boundaryAmount draws amounts that end exactly on, one short of or one past the end of a
// payable slot, where off-by-one mistakes in the order live.
func boundaryAmount(items []Item, asOf Date, rule AllocationRule) *rapid.Generator[int64] {
	var ends []int64
	var sum int64
	for _, s := range slots(items, asOf, rule) {
		if v := byPeriod(items, s[0].(int)).Owed(s[1].(Component)); v > 0 {
			sum += v
			ends = append(ends, sum)
		}
	}
	if len(ends) == 0 {
		return rapid.Just(int64(1))
	}
	return rapid.Custom(func(t *rapid.T) int64 {
		end := rapid.SampledFrom(ends).Draw(t, "slot_end")
		return max(1, end+rapid.Int64Range(-1, 1).Draw(t, "delta"))
	})
}

// TestRepaymentsNeverLoseAMinorUnit draws a plan, then days passing (with penalties) and
// repayments of any amount, in any order, under any allocation rule, and checks each one;
// the plan may be written off at any step, after which repayments are recoveries
// (AllocateRecovery) and penalties stop.
// It also checks that paying x then y on one day ends where paying x+y does. Four rounds of
// rapid's default 100 plans: off-by-one mistakes need an amount that ends right on a slot.
func TestRepaymentsNeverLoseAMinorUnit(t *testing.T) {
	stats = repaymentStats{}
	for round := range 4 {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { rapid.Check(t, repaymentMachine) })
	}
	t.Logf("%+v", stats)
	// The runs must have exercised what they claim to check.
	if stats.repayments < 1000 || stats.penalties == 0 || stats.waivers == 0 || stats.leftovers == 0 || stats.partial == 0 || stats.paidOff == 0 ||
		stats.recoveries < 100 || stats.recovered == 0 {
		t.Errorf("too little exercised: %+v", stats)
	}
}

// repaymentStats counts what the machine exercised, across runs.
type repaymentStats struct {
	repayments, partial, leftovers, waivers, penalties, paidOff, recoveries, recovered int
}

// lastDue is the latest due date of items: as of it, everything is due.
func lastDue(items []Item) Date {
	var d Date
	for _, it := range items {
		if it.DueDate.After(d) {
			d = it.DueDate
		}
	}
	return d
}

var stats repaymentStats

func repaymentMachine(rt *rapid.T) {
	{
		terms := drawTerms(rt)
		terms.Periods = rapid.SampledFrom([]int{1, 3, 6, 12, 24}).Draw(rt, "plan_periods")
		terms.Principal = rapid.Int64Range(1, 10_000_000).Draw(rt, "plan_principal")
		s, err := NewSchedule(terms)
		if err != nil {
			rt.Fatal(err)
		}
		items := ItemsFromSchedule(s)
		rule := AllocationRule{
			Order:      rapid.Permutation(DefaultAllocationOrder).Draw(rt, "order"),
			Prepayment: rapid.SampledFrom([]Prepayment{PrepayLastFirst, PrepayNextFirst}).Draw(rt, "prepayment"),
		}
		penalty := money.MustRate("0.0005")
		grace := rapid.IntRange(0, 5).Draw(rt, "grace")
		day := terms.Start
		received, paid, waived, penalties := int64(0), int64(0), int64(0), int64(0)
		original := owedTotal(items)
		steps := rapid.IntRange(5, 40).Draw(rt, "steps")
		// The plan may be written off at some step: from then on no penalty accrues and
		// repayments are recoveries (AllocateRecovery: everything is due).
		writeOffStep := rapid.IntRange(0, 2*steps).Draw(rt, "write_off_step")
		for step := range steps {
			writtenOff := step >= writeOffStep
			for range rapid.IntRange(0, 45).Draw(rt, "days") {
				day = day.AddDays(1)
				if writtenOff {
					continue
				}
				for _, p := range DailyPenalties(items, day, penalty, grace) {
					byPeriod(items, p.Period).Penalty += p.Amount
					penalties += p.Amount
					stats.penalties++
				}
			}
			owed := owedTotal(items)
			if owed == 0 {
				break
			}
			allocate, asOf := Allocate, day
			if writtenOff {
				allocate = func(items []Item, amount int64, _ Date, rule AllocationRule) (Allocation, error) {
					return AllocateRecovery(items, amount, rule)
				}
				asOf = lastDue(items) // the slots checkAllocation expects: every item due
				stats.recoveries++
			}
			// Mostly partial repayments, sometimes exact payoffs and overpayments.
			amount := rapid.OneOf(
				rapid.Int64Range(1, 10), rapid.Int64Range(1, 10),
				rapid.Int64Range(1, owed/4+1), rapid.Int64Range(1, owed/4+1), rapid.Int64Range(1, owed/4+1),
				boundaryAmount(items, asOf, rule), boundaryAmount(items, asOf, rule),
				rapid.Int64Range(1, owed), rapid.Just(owed), rapid.Int64Range(owed, 2*owed),
			).Draw(rt, "amount")
			a, err := allocate(items, amount, day, rule)
			if err != nil {
				rt.Fatal(err)
			}
			after := checkAllocation(rt, items, amount, asOf, rule, a)
			if writtenOff && len(a.Waived) > 0 {
				rt.Fatalf("a recovery waived %+v", a.Waived)
			}

			// Split in two on the same day: the same end state, the same leftover.
			if amount > 1 {
				x := rapid.Int64Range(1, amount-1).Draw(rt, "first_part")
				a1, err1 := allocate(items, x, day, rule)
				mid, _ := Apply(items, a1)
				if err1 == nil && owedTotal(mid) > 0 {
					a2, err2 := allocate(mid, amount-x, day, rule)
					end, _ := Apply(mid, a2)
					if err2 != nil || !reflect.DeepEqual(end, after) || a1.Leftover+a2.Leftover != a.Leftover {
						rt.Fatalf("paying %d then %d ends at %+v, paying %d at once at %+v", x, amount-x, end, amount, after)
					}
				}
			}
			stats.repayments++
			if a.Leftover > 0 {
				stats.leftovers++
			}
			if len(a.Waived) > 0 {
				stats.waivers++
			}
			if owedTotal(after) > 0 {
				stats.partial++
			} else {
				stats.paidOff++
				if writtenOff {
					stats.recovered++
				}
			}
			received += amount
			paid += a.Paid()
			waived += sumSplits(a.Waived)
			items = after
			if received-paid < 0 {
				rt.Fatal("more paid than received")
			}
		}
		// Conservation over the whole life of the plan.
		if original+penalties-paid-waived != owedTotal(items) {
			rt.Fatalf("scheduled %d + penalties %d - paid %d - waived %d != owed %d", original, penalties, paid, waived, owedTotal(items))
		}
	}
}
