package credit

import (
	"os"
	"strings"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/money"
)

// TestShippedProducts loads credit/products.json as a deployment would and checks what it
// offers, including the defaults the relaxed product leaves out.
func TestShippedProducts(t *testing.T) {
	f, err := os.Open("products.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ps, err := LoadProducts(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].ID != "baitiao" || ps[1].ID != "baitiao_relaxed" {
		t.Fatalf("products: %+v", ps)
	}
	bt, relaxed := ps[0], ps[1]
	if bt.InterestFreeDays != 30 || bt.GraceDays != 3 || bt.StatementDay != 1 || bt.DueDay != 10 || len(bt.Installments) != 4 {
		t.Errorf("baitiao: %+v", bt)
	}
	if relaxed.DailyPenaltyRate.Cmp(money.MustRate("0.0005")) != 0 || relaxed.WriteOffDays != 180 || !relaxed.FreezeLineOnWriteOff ||
		relaxed.Prepayment != PrepayLastFirst || strings.Join(componentNames(relaxed.AllocationOrder), ",") != "penalty,fee,interest,principal" {
		t.Errorf("relaxed product defaults: %+v", relaxed)
	}
	if got := ExampleProducts(); len(got) != 2 || got[0].Installments[3].AnnualRate.String() != "0.18" {
		t.Errorf("ExampleProducts: %+v", got)
	}

	// A 12-period Baitiao purchase is the flat_fee golden plan's product.
	terms, aerr := bt.Terms(1_299_900, 12, MustDate("2026-06-18"))
	if aerr != nil {
		t.Fatal(aerr)
	}
	want := Terms{Principal: 1_299_900, Periods: 12, Method: FlatFee, FeeRate: money.MustRate("0.0075"), Start: MustDate("2026-06-18")}
	if terms != want {
		t.Errorf("Terms = %+v, want %+v", terms, want)
	}
	if _, aerr := bt.Terms(100_000, 9, MustDate("2026-06-18")); aerr == nil || aerr.Code != apierror.PeriodsNotOffered ||
		!strings.Contains(aerr.Message, "offers 3, 6, 12, 24") {
		t.Errorf("9 periods: %v", aerr)
	}
	if _, aerr := bt.Terms(0, 3, MustDate("2026-06-18")); aerr == nil || aerr.Param != "principal" {
		t.Errorf("zero principal: %v", aerr)
	}

	// Pay later: due 30 days after the purchase, free of charge.
	s, aerr := bt.PayLater(59_900, MustDate("2026-01-31"))
	if aerr != nil || len(s.Installments) != 1 || s.Installments[0].DueDate != MustDate("2026-03-02") ||
		s.Installments[0].Total != 59_900 || s.TotalFee+s.TotalInterest != 0 {
		t.Errorf("PayLater = %+v, %v", s, aerr)
	}
	if _, aerr := relaxed.PayLater(100, MustDate("2026-01-31")); aerr == nil || aerr.Code != apierror.PeriodsNotOffered {
		t.Errorf("pay later on a product without it: %v", aerr)
	}
}

func componentNames(cs []Component) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// TestProductValidation: every rule names the field that broke it.
func TestProductValidation(t *testing.T) {
	const good = `{"id":"p","name":"P","currency":"CNY","interest_free_days":30,
		"installments":[{"periods":3,"method":"flat_fee","fee_rate":"0.006"},{"periods":12,"method":"annuity","annual_rate":0.12}],
		"statement_day":1,"due_day":10}`
	if ps, err := LoadProducts(strings.NewReader(`{"products":[` + good + `]}`)); err != nil || !ps[0].FreezeLineOnWriteOff {
		t.Fatalf("good product: %v (freezes the line on write-off by default: %v)", err, ps)
	}
	if ps, err := LoadProducts(strings.NewReader(`{"products":[` + strings.Replace(good, `"due_day":10`, `"due_day":10,"freeze_line_on_write_off":false`, 1) + `]}`)); err != nil ||
		ps[0].FreezeLineOnWriteOff {
		t.Fatalf("freeze_line_on_write_off false: %v %+v", err, ps)
	}
	for _, tc := range []struct {
		name, from, to, param string
	}{
		{"bad id", `"id":"p"`, `"id":"P Q"`, "products[0].id"},
		{"no name", `"name":"P"`, `"name":""`, "products[0].name"},
		{"bad currency", `"CNY"`, `"XX"`, "products[0].currency"},
		{"31 free days", `"interest_free_days":30`, `"interest_free_days":31`, "products[0].interest_free_days"},
		{"nothing offered", `"interest_free_days":30,
		"installments":[{"periods":3,"method":"flat_fee","fee_rate":"0.006"},{"periods":12,"method":"annuity","annual_rate":0.12}]`, `"interest_free_days":0`, "products[0].installments"},
		{"duplicate periods", `"periods":12`, `"periods":3`, "products[0].installments[1].periods"},
		{"one period", `"periods":12`, `"periods":1`, "products[0].installments[1].periods"},
		{"annuity with fee", `"annual_rate":0.12`, `"fee_rate":0.01`, "products[0].installments[1].annual_rate"},
		{"flat fee with rate", `"fee_rate":"0.006"`, `"annual_rate":"0.006"`, "products[0].installments[0].fee_rate"},
		{"fee too high", `"fee_rate":"0.006"`, `"fee_rate":"0.6"`, "products[0].installments[0].fee_rate"},
		{"unknown method", `"method":"annuity"`, `"method":"bullet"`, "products[0].installments[1].method"},
		{"penalty too high", `"due_day":10`, `"due_day":10,"daily_penalty_rate":"0.05"`, "products[0].daily_penalty_rate"},
		{"grace too long", `"due_day":10`, `"due_day":10,"grace_days":31`, "products[0].grace_days"},
		{"statement day 29", `"statement_day":1`, `"statement_day":29`, "products[0].statement_day"},
		{"due day = statement day", `"due_day":10`, `"due_day":1`, "products[0].due_day"},
		{"write-off too early", `"due_day":10`, `"due_day":10,"write_off_days":90`, "products[0].write_off_days"},
		{"order incomplete", `"due_day":10`, `"due_day":10,"allocation_order":["penalty","fee","interest"]`, "products[0].allocation_order"},
		{"order repeats", `"due_day":10`, `"due_day":10,"allocation_order":["penalty","fee","fee","principal"]`, "products[0].allocation_order"},
		{"bad prepayment", `"due_day":10`, `"due_day":10,"prepayment":"random"`, "products[0].prepayment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := strings.Replace(good, tc.from, tc.to, 1)
			if p == good {
				t.Fatal("replacement did not apply")
			}
			_, err := LoadProducts(strings.NewReader(`{"products":[` + p + `]}`))
			e := apierror.As(err)
			if e == nil || e.Code != apierror.InvalidRequest || e.Param != tc.param {
				t.Fatalf("LoadProducts = %v; want invalid_request on %s", err, tc.param)
			}
		})
	}
	for _, bad := range []string{
		`{"products":[]}`,
		`{"products":[` + good + `,` + good + `]}`, // duplicate id
		`{"products":[` + strings.Replace(good, `"name"`, `"nmae"`, 1) + `]}`, // unknown field
		`{"products":[` + good + `]} {}`,
		`{"products":[` + strings.Replace(good, `0.12`, `-0.12`, 1) + `]}`,
		`[` + good + `]`,
		`{"products":[` + good + `]}` + strings.Repeat(" ", ProductFileMax),
	} {
		if _, err := LoadProducts(strings.NewReader(bad)); err == nil {
			t.Errorf("LoadProducts accepted %.80s", bad)
		}
	}
}

// FuzzLoadProducts: any bytes either load into valid products or fail with an error; never a
// panic, never an invalid product.
func FuzzLoadProducts(f *testing.F) {
	data, err := os.ReadFile("products.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"products":[{"id":"x","name":"x","currency":"CNY","interest_free_days":1,"statement_day":1,"due_day":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := LoadProducts(strings.NewReader(string(b)))
		if err != nil {
			return
		}
		for i := range ps {
			if verr := ps[i].Validate(); verr != nil {
				t.Fatalf("loaded an invalid product: %v", verr)
			}
		}
	})
}
