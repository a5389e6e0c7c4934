package service

import (
	"context"
	"strings"
	"testing"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
)

func TestCheckIDNumber(t *testing.T) {
	// The standard's worked example.
	if b, err := CheckIDNumber("11010519491231002X"); err != nil || b != credit.MustDate("1949-12-31") {
		t.Fatalf("standard example: %v %v", b, err)
	}
	if _, err := CheckIDNumber("11010519491231002x"); err != nil {
		t.Errorf("lower-case x: %v", err)
	}
	for _, bad := range []string{
		"110105194912310021",  // wrong check character
		"11010519491231002",   // 17 characters
		"1101051949123100211", // 19
		"11010519491331002X",  // month 13 (check character recomputed below)
		"A1010519491231002X",
		"",
	} {
		if _, err := CheckIDNumber(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A correct check character on an impossible date is still refused.
	if _, err := CheckIDNumber(validID("20230229")); err == nil {
		t.Error("2023-02-29 accepted")
	}
	if _, err := CheckIDNumber(validID("20240229")); err != nil {
		t.Errorf("2024-02-29: %v", err)
	}
	if ageOn(credit.MustDate("2008-01-15"), credit.MustDate("2026-01-15")) != 18 || ageOn(credit.MustDate("2008-01-16"), credit.MustDate("2026-01-15")) != 17 {
		t.Error("age on the birthday")
	}
}

func TestApplications(t *testing.T) {
	onBackends(t, func(t *testing.T, f factory) {
		e := newEnv(t, f, Config{})
		ctx := context.Background()
		cases := []struct {
			customer, birth string
			income          int64
			decision        string
			product         string
			limit           int64
			rate            string
			channel         string
		}{
			{"c_a", "19900307", 2_500_000, Approved, "baitiao", 500_000, "0.1", "self"},              // 520+40+180 = 740: tier A
			{"c_b", "19900307", 1_200_000, Approved, "baitiao", 400_000, "0.18", "partner_bank"},     // 690: tier B
			{"c_c", "20050101", 350_000, Approved, "baitiao_relaxed", 100_000, "0.25", "partner_cf"}, // 520+10+40 = 570: tier C, second pass
			{"c_thin", "19850101", 0, Approved, "baitiao_relaxed", 100_000, "0.25", "partner_cf"},    // thin file 560
			{"c_young", "20080116", 2_500_000, Rejected, "", 0, "", ""},                              // 17 on 2026-01-15
			{"c_old", "19500101", 2_500_000, Rejected, "", 0, "", ""},                                // 76
			{"c_low", "20050101", 0, Rejected, "", 0, "", ""},                                        // thin file 530: no price
		}
		for _, c := range cases {
			a, created, err := e.svc.Apply(ctx, ApplicationRequest{ID: "app_" + c.customer, CustomerID: c.customer, Name: "N",
				IDNumber: validID(c.birth), MonthlyIncome: c.income})
			if err != nil || !created {
				t.Fatalf("%s: %v", c.customer, err)
			}
			if a.Decision != c.decision {
				t.Fatalf("%s: decision %s, want %s; %+v", c.customer, a.Decision, c.decision, a.Steps)
			}
			if len(a.Steps) < 2 {
				t.Errorf("%s: no explanation", c.customer)
			}
			if c.decision != Approved {
				if _, err := e.svc.Line(ctx, LineID(c.customer)); apierror.As(err) == nil || apierror.As(err).Code != apierror.CreditAccountNotFound {
					t.Errorf("%s: rejected but has a line (%v)", c.customer, err)
				}
				continue
			}
			if a.Offer.Product != c.product || a.Offer.Limit != c.limit || a.Offer.AnnualRate.String() != c.rate || a.Channel != c.channel {
				t.Errorf("%s: offer %+v via %s", c.customer, a.Offer, a.Channel)
			}
			l, err := e.svc.Line(ctx, a.Account)
			if err != nil || l.Limit != c.limit || l.Available != c.limit || l.Product != c.product || l.Channel != c.channel {
				t.Errorf("%s: line %+v %v", c.customer, l, err)
			}
			if c.product == "baitiao_relaxed" {
				// The second pass is explained: pass 1 rejected by every channel.
				var saw bool
				for _, s := range a.Steps {
					saw = saw || strings.Contains(s.Reason, "pass 1") && s.Outcome == "reject"
				}
				if !saw || len(a.Channels) != 6 {
					t.Errorf("%s: second pass not explained: %+v %+v", c.customer, a.Steps, a.Channels)
				}
			}
		}
		// Idempotent replay, id conflict, one line per customer.
		req := ApplicationRequest{ID: "app_c_a", CustomerID: "c_a", Name: "N", IDNumber: validID("19900307"), MonthlyIncome: 2_500_000}
		if a, created, err := e.svc.Apply(ctx, req); err != nil || created || a.Account != "ca_c_a" {
			t.Errorf("replay: %+v %v %v", a, created, err)
		}
		req.MonthlyIncome = 1
		if _, _, err := e.svc.Apply(ctx, req); apierror.As(err) == nil || apierror.As(err).Code != apierror.IDConflict {
			t.Errorf("different body: %v", err)
		}
		req.ID = "app_again"
		if _, _, err := e.svc.Apply(ctx, req); apierror.As(err) == nil || apierror.As(err).Code != apierror.CreditAccountExists {
			t.Errorf("second line: %v", err)
		}
		// Bad input changes nothing.
		before := countRecords(t, e, KindApplication)
		for _, bad := range []ApplicationRequest{
			{ID: "x1", CustomerID: "n1", Name: "N", IDNumber: "110105199003071231"},
			{ID: "x2", CustomerID: "n2", Name: "N", IDNumber: "123"},
			{ID: "bad id", CustomerID: "n3", Name: "N", IDNumber: validID("19900307")},
			{ID: "x4", CustomerID: "n4", Name: "", IDNumber: validID("19900307")},
			{ID: "x5", CustomerID: "n5", Name: "N", IDNumber: validID("20300101")},
			{ID: "x6", CustomerID: "n6", Name: "N", IDNumber: validID("19900307"), MonthlyIncome: -1},
		} {
			if _, _, err := e.svc.Apply(ctx, bad); apierror.As(err) == nil || apierror.As(err).Status() >= 500 {
				t.Errorf("%+v: %v", bad, err)
			}
		}
		if after := countRecords(t, e, KindApplication); after != before {
			t.Errorf("bad applications wrote records: %d -> %d", before, after)
		}
	})
}

func countRecords(t testing.TB, e *env, kind string) int {
	recs, _, err := e.st.ListRecords(context.Background(), ledger.RecordQuery{Kind: kind, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return len(recs)
}
