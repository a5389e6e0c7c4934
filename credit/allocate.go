package credit

import (
	"fmt"
	"slices"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
)

// Item is what one installment of a plan still owes.
type Item struct {
	Period    int   `json:"period"`
	DueDate   Date  `json:"due_date"`
	Penalty   int64 `json:"penalty"`
	Fee       int64 `json:"fee"`
	Interest  int64 `json:"interest"`
	Principal int64 `json:"principal"`
}

// ItemsFromSchedule returns the items of a plan that nothing has been paid on yet.
func ItemsFromSchedule(s *Schedule) []Item {
	items := make([]Item, len(s.Installments))
	for i, in := range s.Installments {
		items[i] = Item{Period: in.Period, DueDate: in.DueDate, Fee: in.Fee, Interest: in.Interest, Principal: in.Principal}
	}
	return items
}

// Owed is what the item owes of component c.
func (it *Item) Owed(c Component) int64 { return *it.field(c) }

// Total is everything the item owes.
func (it *Item) Total() int64 { return it.Penalty + it.Fee + it.Interest + it.Principal }

func (it *Item) field(c Component) *int64 {
	switch c {
	case ComponentPenalty:
		return &it.Penalty
	case ComponentFee:
		return &it.Fee
	case ComponentInterest:
		return &it.Interest
	case ComponentPrincipal:
		return &it.Principal
	}
	panic("credit: unknown component " + string(c))
}

// Split is an amount of one component of one installment: paid by a repayment, waived, or
// charged as a penalty.
type Split struct {
	Period    int       `json:"period"`
	Component Component `json:"component"`
	Amount    int64     `json:"amount"`
}

// AllocationRule is how repayments are split (from the product).
type AllocationRule struct {
	// Order of components within an installment; nil means DefaultAllocationOrder.
	Order []Component
	// Prepayment orders the repayment of principal not yet due; "" means PrepayLastFirst.
	Prepayment Prepayment
}

// Allocation is how one repayment was split.
type Allocation struct {
	// Splits are what the repayment paid, in the order it paid them.
	Splits []Split `json:"splits"`
	// Waived are interest and fees of installments not yet due whose principal this
	// repayment paid off: they are no longer owed (docs/credit.md, early repayment).
	Waived []Split `json:"waived"`
	// Leftover is what remains once the plan owes nothing; it goes back to the payer.
	Leftover int64 `json:"leftover"`
}

// Paid is the sum of the splits.
func (a *Allocation) Paid() int64 { return sumSplits(a.Splits) }

func sumSplits(ss []Split) int64 {
	var n int64
	for _, s := range ss {
		n += s.Amount
	}
	return n
}

// Limits of a plan handed to Allocate.
const (
	// ItemsMax bounds the installments of one plan.
	ItemsMax = PeriodsMax
)

func validateItems(items []Item) *apierror.Error {
	if len(items) == 0 || len(items) > ItemsMax {
		return invalid("items", "a plan has 1 to %d installments", ItemsMax)
	}
	seen := make(map[int]bool, len(items))
	var total int64
	for i, it := range items {
		if seen[it.Period] {
			return invalid(fmt.Sprintf("items[%d].period", i), "period %d appears twice", it.Period)
		}
		seen[it.Period] = true
		if it.DueDate.IsZero() {
			return invalid(fmt.Sprintf("items[%d].due_date", i), "period %d has no due date", it.Period)
		}
		for _, c := range DefaultAllocationOrder {
			v := it.Owed(c)
			if v < 0 || v > money.MaxAmount {
				return invalid(fmt.Sprintf("items[%d].%s", i, c), "period %d owes %d of %s", it.Period, v, c)
			}
			total += v
		}
		if total > money.MaxAmount {
			return invalid("items", "the plan owes more than %d minor units", money.MaxAmount)
		}
	}
	return nil
}

// Allocate splits a repayment of amount received on asOf across a plan's items (it does
// not change them; Apply does):
//
//  1. items due on or before asOf, oldest due first; each paid component by component in
//     rule.Order (default penalty, fee, interest, principal) before the next item;
//  2. what is left prepays the principal of items not yet due, last installment first or
//     next first as rule.Prepayment says; when an item's principal is paid off before its
//     due date, its interest and fee are waived, never paid;
//  3. what is still left is the leftover.
//
// Every minor unit paid is in exactly one split or the leftover.
func Allocate(items []Item, amount int64, asOf Date, rule AllocationRule) (Allocation, error) {
	if !money.ValidAmount(amount) {
		return Allocation{}, invalid("amount", "amount must be between 1 and %d minor units", money.MaxAmount)
	}
	if asOf.IsZero() {
		return Allocation{}, invalid("date", "the repayment date is required")
	}
	if err := validateItems(items); err != nil {
		return Allocation{}, err
	}
	order := rule.Order
	if order == nil {
		order = DefaultAllocationOrder
	}
	if err := validateOrder(order); err != nil {
		return Allocation{}, invalid("allocation_order", "allocation_order %s", err)
	}
	if rule.Prepayment == "" {
		rule.Prepayment = PrepayLastFirst
	}
	if rule.Prepayment != PrepayLastFirst && rule.Prepayment != PrepayNextFirst {
		return Allocation{}, invalid("prepayment", "prepayment must be %s or %s", PrepayLastFirst, PrepayNextFirst)
	}

	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b Item) int {
		if c := a.DueDate.Compare(b.DueDate); c != 0 {
			return c
		}
		return a.Period - b.Period
	})
	var a Allocation
	left := amount
	pay := func(it *Item, c Component) {
		v := min(left, it.Owed(c))
		if v > 0 {
			a.Splits = append(a.Splits, Split{it.Period, c, v})
			left -= v
		}
	}
	var future []Item
	for i := range sorted {
		it := &sorted[i]
		if it.DueDate.After(asOf) {
			future = append(future, *it)
			continue
		}
		for _, c := range order {
			pay(it, c)
		}
	}
	if rule.Prepayment == PrepayLastFirst {
		slices.Reverse(future)
	}
	for i := range future {
		it := &future[i]
		if left == 0 || it.Principal == 0 {
			continue
		}
		pay(it, ComponentPrincipal)
		if a.Splits[len(a.Splits)-1].Amount == it.Principal {
			for _, c := range order {
				if v := it.Owed(c); v > 0 && (c == ComponentFee || c == ComponentInterest) {
					a.Waived = append(a.Waived, Split{it.Period, c, v})
				}
			}
		}
	}
	a.Leftover = left
	return a, nil
}

// AllocateRecovery splits a repayment of a plan that was written off (a recovery). Writing
// off accelerates the plan: everything it still owes is due, so every installment is paid
// as a due one, oldest due first, component by component in rule.Order; nothing is prepaid
// and nothing is waived (what the customer owes after a write-off is owed in full). Every
// minor unit is in exactly one split or the leftover.
func AllocateRecovery(items []Item, amount int64, rule AllocationRule) (Allocation, error) {
	if err := validateItems(items); err != nil {
		return Allocation{}, err
	}
	var last Date
	for _, it := range items {
		if it.DueDate.After(last) {
			last = it.DueDate
		}
	}
	a, err := Allocate(items, amount, last, rule)
	if err == nil && len(a.Waived) > 0 { // every item is due as of the last due date
		return Allocation{}, fmt.Errorf("credit: a recovery waived %+v", a.Waived)
	}
	return a, err
}

// Apply returns a copy of items with the allocation's splits and waivers taken off. It fails,
// changing nothing, if a split names an unknown period or takes more than is owed.
func Apply(items []Item, a Allocation) ([]Item, error) {
	out := slices.Clone(items)
	index := make(map[int]int, len(out))
	for i, it := range out {
		index[it.Period] = i
	}
	for _, s := range slices.Concat(a.Splits, a.Waived) {
		i, ok := index[s.Period]
		if !ok {
			return nil, fmt.Errorf("credit: split for period %d, which the plan does not have", s.Period)
		}
		f := out[i].field(s.Component)
		if s.Amount <= 0 || s.Amount > *f {
			return nil, fmt.Errorf("credit: split of %d %s on period %d, which owes %d", s.Amount, s.Component, s.Period, *f)
		}
		*f -= s.Amount
	}
	return out, nil
}
