package bank

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// fixedChannel is a channel that only describes itself: enough to test the registry.
type fixedChannel struct {
	code string
	caps Capabilities
}

func (c fixedChannel) Code() string               { return c.code }
func (c fixedChannel) Capabilities() Capabilities { return c.caps }
func (fixedChannel) Pay(context.Context, PayRequest) (Result, error) {
	return Result{}, ErrInvalidRequest
}
func (fixedChannel) Query(context.Context, string) (Result, error) {
	return Result{}, ErrInvalidRequest
}
func (fixedChannel) Refund(context.Context, RefundRequest) (Result, error) {
	return Result{}, ErrInvalidRequest
}
func (fixedChannel) QueryRefund(context.Context, string) (Result, error) {
	return Result{}, ErrInvalidRequest
}
func (fixedChannel) Statement(context.Context, time.Time) ([]StatementLine, error) { return nil, nil }

func TestRegistryCandidates(t *testing.T) {
	r := NewRegistry()
	add := func(c fixedChannel) {
		t.Helper()
		if err := r.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	add(fixedChannel{"b-icbc", Capabilities{Banks: []string{"ICBC"}, Currencies: []string{"CNY"}, MaxAmount: 5_000_00}})
	add(fixedChannel{"a-any", Capabilities{Currencies: []string{"CNY", "USD"}, MinAmount: 100}})
	add(fixedChannel{"c-usd", Capabilities{Currencies: []string{"USD"}}})

	names := func(chs []Channel) string {
		var s []string
		for _, c := range chs {
			s = append(s, c.Code())
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		bank, cur string
		amount    int64
		want      string
	}{
		{"ICBC", "CNY", 1000, "a-any,b-icbc"},
		{"ICBC", "CNY", 6_000_00, "a-any"}, // over b-icbc's maximum
		{"CMB", "CNY", 1000, "a-any"},      // b-icbc serves only ICBC
		{"CMB", "CNY", 99, ""},             // under a-any's minimum
		{"CMB", "USD", 1000, "a-any,c-usd"},
		{"CMB", "EUR", 1000, ""},
	} {
		if got := names(r.Candidates(tc.bank, tc.cur, tc.amount)); got != tc.want {
			t.Errorf("Candidates(%s, %s, %d) = %q, want %q", tc.bank, tc.cur, tc.amount, got, tc.want)
		}
	}
	if _, ok := r.Get("a-any"); !ok {
		t.Error("Get(a-any) not found")
	}
	if got := fmt.Sprint(r.Codes()); got != "[a-any b-icbc c-usd]" {
		t.Errorf("Codes = %s", got)
	}
}

func TestRegistryRejectsBadChannels(t *testing.T) {
	r := NewRegistry()
	cny := []string{"CNY"}
	if err := r.Add(fixedChannel{"ok", Capabilities{Currencies: cny}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []fixedChannel{
		{"ok", Capabilities{Currencies: cny}},       // duplicate
		{"Bad Code", Capabilities{Currencies: cny}}, // code pattern
		{"", Capabilities{Currencies: cny}},         // empty code
		{"nocur", Capabilities{}},                   // no currency
		{"neg", Capabilities{Currencies: cny, MinAmount: -1}},
		{"inverted", Capabilities{Currencies: cny, MinAmount: 10, MaxAmount: 5}},
	} {
		if err := r.Add(c); err == nil {
			t.Errorf("Add(%q, %+v) accepted", c.code, c.caps)
		}
	}
}

func TestCodeTable(t *testing.T) {
	seen := map[Code]bool{}
	for _, info := range Codes() {
		if seen[info.Code] {
			t.Errorf("code %s listed twice", info.Code)
		}
		seen[info.Code] = true
		if info.Description == "" {
			t.Errorf("code %s has no description", info.Code)
		}
		if info.Retriable && info.Unknown {
			t.Errorf("code %s is both retriable and unknown: a payment that may have been charged must never go to another channel", info.Code)
		}
	}
	if len(seen) != len(codeInfo) {
		t.Errorf("Codes lists %d codes, the table has %d", len(seen), len(codeInfo))
	}
	// The safety-critical readings.
	if CodeTimeout.Retriable() || !CodeTimeout.Info().Unknown {
		t.Error("timeout must be unknown and not retriable")
	}
	if !CodeChannelUnavailable.Retriable() || CodeDeclined.Retriable() || CodeInsufficientFunds.Retriable() {
		t.Error("only outcomes where the bank certainly did not charge, for channel reasons, are retriable")
	}
	if u := Code("bank_said_something_new").Info(); !u.Unknown || u.Retriable {
		t.Errorf("an unmapped code must read as unknown, got %+v", u)
	}
}

func TestCardNeverPrintsPAN(t *testing.T) {
	c := Card{PAN: "6222020200112233445", Holder: "Zhang San", ExpiryMonth: 12, ExpiryYear: 2030, BankCode: "ICBC"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(PayRequest{Card: c})} {
		if strings.Contains(s, "622202020011") || strings.Contains(s, "Zhang") {
			t.Errorf("card leaks in %q", s)
		}
		if !strings.Contains(s, "3445") {
			t.Errorf("card print %q lacks the last four digits", s)
		}
	}
}

func TestStatusFinal(t *testing.T) {
	for s, want := range map[Status]bool{Succeeded: true, Failed: true, Pending: false, Unknown: false} {
		if s.Final() != want {
			t.Errorf("%s.Final() = %v", s, !want)
		}
	}
}

// TestCodesDocumented keeps docs/channels.md's table in step with the code table.
func TestCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/channels.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range Codes() {
		row := fmt.Sprintf("| `%s` |%s|%s|", c.Code, cell(c.Retriable), cell(c.Unknown))
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/channels.md lacks the row %q", row)
		}
	}
}

func cell(b bool) string {
	if b {
		return " yes "
	}
	return " "
}
