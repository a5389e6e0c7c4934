package credit

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
)

// Product limits and defaults.
const (
	// InterestFreeDaysMax bounds a pay-later product's interest-free period.
	InterestFreeDaysMax = 30
	// GraceDaysMax bounds the days past due before penalties start.
	GraceDaysMax = 30
	// WriteOffDaysMin and WriteOffDaysMax bound the age at which an overdue plan is written
	// off: never before it has left M3, never later than ten years.
	WriteOffDaysMin = 91
	WriteOffDaysMax = 3650
	// WriteOffDaysDefault is the usual 180 days.
	WriteOffDaysDefault = 180
	// InstallmentOptionsMax bounds the options of one product.
	InstallmentOptionsMax = 24
	// ProductsMax and ProductFileMax bound a product file.
	ProductsMax    = 1000
	ProductFileMax = 1 << 20
)

var (
	// DailyPenaltyRateDefault is 0.05 % a day.
	DailyPenaltyRateDefault = money.MustRate("0.0005")
	// DailyPenaltyRateMax is 1 % a day.
	DailyPenaltyRateMax = money.MustRate("0.01")
)

// Component is one kind of amount an installment owes. Repayments pay components in the
// product's allocation order.
type Component string

// Components.
const (
	ComponentPenalty   Component = "penalty"
	ComponentFee       Component = "fee"
	ComponentInterest  Component = "interest"
	ComponentPrincipal Component = "principal"
)

// DefaultAllocationOrder is penalty → fee → interest → principal.
var DefaultAllocationOrder = []Component{ComponentPenalty, ComponentFee, ComponentInterest, ComponentPrincipal}

// Prepayment is the order in which money paid ahead of time repays the principal of
// installments not yet due.
type Prepayment string

// Prepayment orders.
const (
	// PrepayLastFirst repays the last installment first: the plan ends sooner and the next
	// bills are unchanged (the default).
	PrepayLastFirst Prepayment = "last_installment_first"
	// PrepayNextFirst repays the next installment first: the next bills shrink.
	PrepayNextFirst Prepayment = "next_installment_first"
)

// InstallmentOption is one way a product lets a purchase be split: a number of monthly
// periods and how they are charged.
type InstallmentOption struct {
	Periods int    `json:"periods"`
	Method  Method `json:"method"`
	// AnnualRate is set for annuity and equal_principal, FeeRate for flat_fee.
	AnnualRate *money.Rate `json:"annual_rate,omitempty"`
	FeeRate    *money.Rate `json:"fee_rate,omitempty"`
}

// Product is a credit product as configuration (DESIGN.md C1): what a line may be used for
// and how its plans are charged, billed and collected. Load products with LoadProducts,
// which fills defaults and validates.
type Product struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Currency string `json:"currency"`
	// InterestFreeDays is the pay-later period: a purchase not split into installments
	// falls due this many days after it is made, free of charge. 0 disables pay later.
	InterestFreeDays int                 `json:"interest_free_days"`
	Installments     []InstallmentOption `json:"installments"`
	// DailyPenaltyRate is charged each day past due on the unpaid due principal, interest and
	// fee (default 0.0005).
	DailyPenaltyRate money.Rate `json:"daily_penalty_rate"`
	// GraceDays past due are free of penalty (the days still count past due).
	GraceDays int `json:"grace_days"`
	// AllocationOrder is the order in which a repayment pays the components of each
	// installment, oldest due first (default penalty, fee, interest, principal).
	AllocationOrder []Component `json:"allocation_order"`
	// Prepayment orders early repayment of principal not yet due (default last first).
	Prepayment Prepayment `json:"prepayment"`
	// StatementDay and DueDay are days of the month (1 to 28, so every month has them): the
	// statement lists what falls due; payment is due on the next due day after it.
	StatementDay int `json:"statement_day"`
	DueDay       int `json:"due_day"`
	// WriteOffDays is the age past due at which a plan is written off (default 180).
	WriteOffDays int `json:"write_off_days"`
	// FreezeLineOnWriteOff freezes the line of a plan written off, so that it takes no more
	// purchases until operations unfreeze it (default true).
	FreezeLineOnWriteOff bool `json:"freeze_line_on_write_off"`
}

// productJSON is Product as written in files: optional fields are pointers so that an
// absent field takes its default and an explicit zero stays zero.
type productJSON struct {
	Product
	DailyPenaltyRate *money.Rate `json:"daily_penalty_rate"`
	WriteOffDays     *int        `json:"write_off_days"`
	FreezeOnWriteOff *bool       `json:"freeze_line_on_write_off"`
}

var productIDPattern = regexp.MustCompile(`^[a-z0-9_\-]{1,64}$`)

// Validate checks p completely; the error names the offending field as a JSON path.
func (p *Product) Validate() *apierror.Error {
	switch {
	case !productIDPattern.MatchString(p.ID):
		return invalid("id", "product id must be 1 to 64 characters of a-z 0-9 _ -")
	case p.Name == "" || len(p.Name) > 200:
		return invalid("name", "product %s: name must be 1 to 200 bytes", p.ID)
	case !money.ValidCode(p.Currency):
		return invalid("currency", "product %s: currency %q is not a known ISO 4217 code", p.ID, p.Currency)
	case p.InterestFreeDays < 0 || p.InterestFreeDays > InterestFreeDaysMax:
		return invalid("interest_free_days", "product %s: interest_free_days must be 0 to %d", p.ID, InterestFreeDaysMax)
	case p.InterestFreeDays == 0 && len(p.Installments) == 0:
		return invalid("installments", "product %s offers neither pay later (interest_free_days) nor installments", p.ID)
	case len(p.Installments) > InstallmentOptionsMax:
		return invalid("installments", "product %s: at most %d installment options", p.ID, InstallmentOptionsMax)
	case p.DailyPenaltyRate.Cmp(DailyPenaltyRateMax) > 0:
		return invalid("daily_penalty_rate", "product %s: daily_penalty_rate must be 0 to %s", p.ID, DailyPenaltyRateMax)
	case p.GraceDays < 0 || p.GraceDays > GraceDaysMax:
		return invalid("grace_days", "product %s: grace_days must be 0 to %d", p.ID, GraceDaysMax)
	case p.Prepayment != PrepayLastFirst && p.Prepayment != PrepayNextFirst:
		return invalid("prepayment", "product %s: prepayment must be %s or %s", p.ID, PrepayLastFirst, PrepayNextFirst)
	case p.StatementDay < 1 || p.StatementDay > 28:
		return invalid("statement_day", "product %s: statement_day must be 1 to 28", p.ID)
	case p.DueDay < 1 || p.DueDay > 28 || p.DueDay == p.StatementDay:
		return invalid("due_day", "product %s: due_day must be 1 to 28 and differ from statement_day", p.ID)
	case p.WriteOffDays < WriteOffDaysMin || p.WriteOffDays > WriteOffDaysMax:
		return invalid("write_off_days", "product %s: write_off_days must be %d to %d", p.ID, WriteOffDaysMin, WriteOffDaysMax)
	}
	if err := validateOrder(p.AllocationOrder); err != nil {
		return invalid("allocation_order", "product %s: allocation_order %s", p.ID, err)
	}
	seen := map[int]bool{}
	for i, o := range p.Installments {
		param := fmt.Sprintf("installments[%d]", i)
		if seen[o.Periods] {
			return invalid(param+".periods", "product %s offers %d periods twice", p.ID, o.Periods)
		}
		seen[o.Periods] = true
		if err := o.validate(); err != nil {
			err.Param = param + "." + err.Param
			err.Message = fmt.Sprintf("product %s, %d periods: %s", p.ID, o.Periods, err.Message)
			return err
		}
	}
	return nil
}

func validateOrder(order []Component) error {
	want := slices.Clone(DefaultAllocationOrder)
	got := slices.Clone(order)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return fmt.Errorf("must list penalty, fee, interest and principal once each")
	}
	return nil
}

func (o *InstallmentOption) validate() *apierror.Error {
	if o.Periods < 2 || o.Periods > PeriodsMax {
		return invalid("periods", "periods must be 2 to %d (one period is pay later)", PeriodsMax)
	}
	switch {
	case !o.Method.Valid():
		return invalid("method", "method must be annuity, equal_principal or flat_fee")
	case o.Method.ChargesInterest() && (o.AnnualRate == nil || o.FeeRate != nil):
		return invalid("annual_rate", "%s needs annual_rate and no fee_rate", o.Method)
	case !o.Method.ChargesInterest() && (o.FeeRate == nil || o.AnnualRate != nil):
		return invalid("fee_rate", "flat_fee needs fee_rate and no annual_rate")
	case o.AnnualRate != nil && o.AnnualRate.Cmp(AnnualRateMax) > 0:
		return invalid("annual_rate", "annual_rate must be 0 to %s", AnnualRateMax)
	case o.FeeRate != nil && o.FeeRate.Cmp(FeeRateMax) > 0:
		return invalid("fee_rate", "fee_rate must be 0 to %s per period", FeeRateMax)
	}
	return nil
}

// Option returns the installment option with n periods.
func (p *Product) Option(n int) (InstallmentOption, bool) {
	for _, o := range p.Installments {
		if o.Periods == n {
			return o, true
		}
	}
	return InstallmentOption{}, false
}

// Terms returns the schedule terms of a purchase of principal split into n periods from
// start; the error is periods_not_offered when the product has no such option, or an
// invalid_request from the terms' own validation.
func (p *Product) Terms(principal int64, n int, start Date) (Terms, *apierror.Error) {
	o, ok := p.Option(n)
	if !ok {
		offered := make([]string, len(p.Installments))
		for i, o := range p.Installments {
			offered[i] = fmt.Sprint(o.Periods)
		}
		return Terms{}, apierror.Newf(apierror.PeriodsNotOffered, "periods",
			"product %s does not offer %d periods; it offers %s", p.ID, n, strings.Join(offered, ", "))
	}
	t := Terms{Principal: principal, Periods: n, Method: o.Method, Start: start}
	if o.AnnualRate != nil {
		t.AnnualRate = *o.AnnualRate
	}
	if o.FeeRate != nil {
		t.FeeRate = *o.FeeRate
	}
	return t, t.Validate()
}

// PayLater returns the schedule of a pay-later purchase: one installment of the whole
// principal, free of charge, due InterestFreeDays after the purchase date.
func (p *Product) PayLater(principal int64, purchase Date) (*Schedule, *apierror.Error) {
	switch {
	case p.InterestFreeDays == 0:
		return nil, apierror.Newf(apierror.PeriodsNotOffered, "periods", "product %s does not offer pay later", p.ID)
	case !money.ValidAmount(principal):
		return nil, invalid("principal", "principal must be between 1 and %d minor units", money.MaxAmount)
	case purchase.IsZero():
		return nil, invalid("start", "purchase date is required (YYYY-MM-DD)")
	}
	return &Schedule{
		Installments: []Installment{{Period: 1, DueDate: purchase.AddDays(p.InterestFreeDays),
			Principal: principal, Total: principal}},
		TotalPrincipal: principal,
	}, nil
}

// AllocationRule is how the product splits repayments.
func (p *Product) AllocationRule() AllocationRule {
	return AllocationRule{Order: p.AllocationOrder, Prepayment: p.Prepayment}
}

// LoadProducts reads a product file, {"products": [...]}, fills defaults and validates
// every product; unknown fields, duplicate ids and files over ProductFileMax are refused.
func LoadProducts(r io.Reader) ([]Product, error) {
	data, err := io.ReadAll(io.LimitReader(r, ProductFileMax+1))
	if err != nil {
		return nil, err
	}
	if len(data) > ProductFileMax {
		return nil, fmt.Errorf("product file is larger than %d bytes", ProductFileMax)
	}
	var file struct {
		Products []productJSON `json:"products"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("product file: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("product file: data after the products object")
	}
	if len(file.Products) == 0 || len(file.Products) > ProductsMax {
		return nil, fmt.Errorf("product file must hold 1 to %d products", ProductsMax)
	}
	out := make([]Product, len(file.Products))
	ids := map[string]bool{}
	for i, pj := range file.Products {
		p := pj.Product
		p.DailyPenaltyRate = DailyPenaltyRateDefault
		if pj.DailyPenaltyRate != nil {
			p.DailyPenaltyRate = *pj.DailyPenaltyRate
		}
		p.WriteOffDays = WriteOffDaysDefault
		if pj.WriteOffDays != nil {
			p.WriteOffDays = *pj.WriteOffDays
		}
		p.FreezeLineOnWriteOff = pj.FreezeOnWriteOff == nil || *pj.FreezeOnWriteOff
		if p.AllocationOrder == nil {
			p.AllocationOrder = slices.Clone(DefaultAllocationOrder)
		}
		if p.Prepayment == "" {
			p.Prepayment = PrepayLastFirst
		}
		if err := p.Validate(); err != nil {
			err.Param = fmt.Sprintf("products[%d].%s", i, err.Param)
			return nil, err
		}
		if ids[p.ID] {
			return nil, invalid(fmt.Sprintf("products[%d].id", i), "product id %s appears twice", p.ID)
		}
		ids[p.ID] = true
		out[i] = p
	}
	return out, nil
}

//go:embed products.json
var exampleProducts []byte

// ExampleProducts returns the shipped example products (credit/products.json): a Baitiao
// product and the relaxed product of the second pass.
func ExampleProducts() []Product {
	ps, err := LoadProducts(bytes.NewReader(exampleProducts))
	if err != nil {
		panic("credit: shipped products.json is invalid: " + err.Error())
	}
	return ps
}
