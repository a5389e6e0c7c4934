package credit

import (
	"slices"

	"github.com/fincore/fincore/money"
)

// Refund reduces a plan by a merchant refund of amount (docs/credit.md, merchant refunds):
// the refund takes principal off the installments still owing principal, **last
// installment first** (whatever their due dates), and each installment whose principal it
// reduces from P to P − x loses the same share of the interest and fee it still owes:
// round_half_up(owed × x / P) of each, or all of it when x = P. Penalties already charged
// stay owed. It returns the new items and the cuts (principal, interest and fee per
// period, in the order taken), whose sum is exactly what the items owe less; it never
// changes an amount other than by a cut. ok is false, changing nothing, when amount is not
// positive or is more than the principal the plan still owes.
func Refund(items []Item, amount int64) (out []Item, cuts []Split, ok bool) {
	var owed int64
	for i := range items {
		owed += items[i].Principal
	}
	if amount <= 0 || amount > owed {
		return nil, nil, false
	}
	out = slices.Clone(items)
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	// Last installment first: latest due date, then highest period.
	slices.SortFunc(order, func(a, b int) int {
		if c := out[b].DueDate.Compare(out[a].DueDate); c != 0 {
			return c
		}
		return out[b].Period - out[a].Period
	})
	left := amount
	for _, i := range order {
		it := &out[i]
		if left == 0 {
			break
		}
		if it.Principal == 0 {
			continue
		}
		x := min(left, it.Principal)
		for _, c := range []Component{ComponentInterest, ComponentFee} {
			f := it.field(c)
			cut := *f
			if x < it.Principal {
				cut, _ = money.MulFrac(*f, x, it.Principal, Rounding) // x < P: at most *f
			}
			if cut > 0 {
				*f -= cut
				cuts = append(cuts, Split{Period: it.Period, Component: c, Amount: cut})
			}
		}
		it.Principal -= x
		left -= x
		cuts = append(cuts, Split{Period: it.Period, Component: ComponentPrincipal, Amount: x})
	}
	return out, cuts, true
}
