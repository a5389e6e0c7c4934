package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/store/sqlite"
)

// testStore opens embedded storage in a temporary directory, closed when t ends.
func testStore(t testing.TB) ledger.Store {
	t.Helper()
	st, err := sqlite.OpenLedger(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// servePayments serves the cashier as serve does, with in-process simulated banks of these
// profiles, and returns the server and a function calling it (which fails t on an answer
// other than 2xx, and decodes the answer into into unless nil).
func servePayments(t *testing.T, sims map[string]sim.Profile) (*httptest.Server, func(method, path string, body, into any)) {
	ctx := t.Context()
	st := testStore(t)
	quiet := slog.New(slog.DiscardHandler)
	metrics := obs.New()
	ts, err := timer.New(timer.Config{Store: st.(timer.Provider).Timers(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: quiet, Observer: metrics, TimersCommitted: ts.Committed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	pays, err := newPayments(ctx, eng, st, ts, nil, payment.NewKey(), paymentFlags{sims: sims}, metrics, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pays.Close)
	if err := ts.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Stop)
	srv := httptest.NewServer(withPayments(newHandler(eng, st, metrics, quiet), pays))
	t.Cleanup(srv.Close)
	call := func(method, path string, body, into any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		if into != nil {
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, b)
			}
		}
	}
	return srv, call
}

// TestChannelMonitoringByBank wires the cashier as serve does, with two in-process simulated
// banks whose issuers decline at different rates (AAA 10%, BBB 60%), drives payments by cards
// of both issuers through it, and checks that GET /v1/channels (per channel, its breakdown by
// bank, and the banks across channels) and /metrics count exactly the bank calls the payments
// record.
func TestChannelMonitoringByBank(t *testing.T) {
	// Declines only: every payment makes one call, answered at once.
	issuers := sim.Profile{IssuerDeclineRates: map[string]float64{"AAA": 0.1, "BBB": 0.6}}
	srv, call := servePayments(t, map[string]sim.Profile{"sim-x": issuers, "sim-y": issuers})

	call("POST", "/v1/merchants", map[string]any{"id": "shop", "name": "Shop", "currency": "CNY"}, nil)
	const perBank = 40
	var ids []string
	for _, bk := range []string{"AAA", "BBB"} {
		var card struct{ ID string }
		call("POST", "/v1/cards", map[string]any{"pan": "6222020200112233446", "holder": "Li Si", "expiry_month": 12, "expiry_year": 2035, "bank_code": bk}, &card)
		for i := range perBank {
			id := fmt.Sprintf("%s_%d", bk, i)
			call("POST", "/v1/payments", map[string]any{"id": id, "merchant_id": "shop", "amount": 1000, "currency": "CNY", "card_id": card.ID}, nil)
			ids = append(ids, id)
		}
	}
	// What the payments record: calls by channel, bank and code.
	type key struct{ channel, bank, code string }
	want := map[key]int64{}
	for _, id := range ids {
		var p payment.Payment
		waitFor(t, "payment "+id+" final", func() bool {
			call("GET", "/v1/payments/"+id, nil, &p)
			return p.Status.Final()
		})
		if len(p.Attempts) != 1 {
			t.Fatalf("payment %s: %+v", id, p.Attempts)
		}
		a := p.Attempts[0]
		if a.Bank != id[:3] {
			t.Fatalf("payment %s attempt bank %q", id, a.Bank)
		}
		want[key{a.Channel, a.Bank, a.Code}]++
	}

	var view struct {
		Data []struct {
			Code  string
			Stats payment.ChannelStats
		}
		Banks []payment.BankStats
	}
	call("GET", "/v1/channels", nil, &view)
	got := map[key]int64{}
	for _, ch := range view.Data {
		var sum int64
		for _, bs := range ch.Stats.Banks {
			if len(bs.Channels) != 0 {
				t.Errorf("%s/%s lists channels %v", ch.Code, bs.Bank, bs.Channels)
			}
			var final, ok, hist int64
			for code, n := range bs.Codes {
				got[key{ch.Code, bs.Bank, code}] = n
				final += n
				if code == "approved" {
					ok = n
				}
			}
			for _, n := range bs.Latency.Counts {
				hist += n
			}
			if bs.Calls != final || hist != bs.Calls || bs.Recent.Calls != bs.Calls || bs.SuccessRate != float64(ok)/float64(final) {
				t.Errorf("%s/%s: %+v", ch.Code, bs.Bank, bs.CallStats)
			}
			sum += bs.Calls
		}
		if ch.Stats.Calls != sum {
			t.Errorf("channel %s: %d calls, its banks %d", ch.Code, ch.Stats.Calls, sum)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GET /v1/channels counts\n%v\nthe payments record\n%v", got, want)
	}
	if len(view.Banks) != 2 {
		t.Fatalf("banks %+v", view.Banks)
	}
	rate := map[string]float64{}
	for _, bs := range view.Banks {
		var approved int64
		for k, n := range want {
			if k.bank == bs.Bank && k.code == "approved" {
				approved += n
			}
		}
		if bs.Calls != perBank || bs.Codes["approved"] != approved || bs.SuccessRate != float64(approved)/perBank {
			t.Errorf("bank %s across channels: %+v, want %d calls, %d approved", bs.Bank, bs.CallStats, perBank, approved)
		}
		rate[bs.Bank] = bs.SuccessRate
	}
	if rate["AAA"] < 0.7 || rate["BBB"] > 0.6 {
		t.Errorf("success rates %v: AAA declines 10%%, BBB 60%%", rate)
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	samples := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if name, v, ok := strings.Cut(line, " "); ok && strings.HasPrefix(name, "fincore_bank_call") {
			var f float64
			fmt.Sscan(v, &f)
			samples[name] = f
		}
	}
	var n int
	for k, c := range want {
		name := fmt.Sprintf(`fincore_bank_calls_total{bank=%q,channel=%q,code=%q}`, k.bank, k.channel, k.code)
		if samples[name] != float64(c) {
			t.Errorf("%s = %v, want %d", name, samples[name], c)
		}
		n++
	}
	for name := range samples {
		if strings.HasPrefix(name, "fincore_bank_calls_total{") {
			n--
		}
	}
	if n != 0 {
		t.Errorf("/metrics has other bank call series than the payments record:\n%s", body)
	}
	calls := map[[2]string]int64{}
	for k, c := range want {
		calls[[2]string{k.channel, k.bank}] += c
	}
	for k, c := range calls {
		name := fmt.Sprintf(`fincore_bank_call_duration_seconds_count{bank=%q,channel=%q}`, k[1], k[0])
		if samples[name] != float64(c) {
			t.Errorf("%s = %v, want %d", name, samples[name], c)
		}
	}
}

// TestMerchantMonitoring drives payments of two merchants through in-process simulated banks
// where cards of issuer AAA are always approved and those of BBB always declined, and checks
// GET /v1/merchants/{id}/stats count exactly those, apart for each merchant; a merchant
// without payments has zero counts and an unknown one is merchant_not_found.
func TestMerchantMonitoring(t *testing.T) {
	issuers := sim.Profile{IssuerDeclineRates: map[string]float64{"AAA": 0, "BBB": 1}}
	srv, call := servePayments(t, map[string]sim.Profile{"sim-x": issuers, "sim-y": issuers})
	cards := map[string]string{}
	for _, bk := range []string{"AAA", "BBB"} {
		var card struct{ ID string }
		call("POST", "/v1/cards", map[string]any{"pan": "6222020200112233446", "holder": "Li Si", "expiry_month": 12, "expiry_year": 2035, "bank_code": bk}, &card)
		cards[bk] = card.ID
	}
	plan := []struct {
		merchant           string
		approved, declined int
	}{{"shop-a", 6, 3}, {"shop-b", 2, 5}, {"shop-c", 0, 0}}
	var ids []string
	for _, m := range plan {
		call("POST", "/v1/merchants", map[string]any{"id": m.merchant, "name": m.merchant, "currency": "CNY"}, nil)
		for i := range m.approved + m.declined {
			bk := "AAA"
			if i >= m.approved {
				bk = "BBB"
			}
			id := fmt.Sprintf("%s_%d", m.merchant, i)
			call("POST", "/v1/payments", map[string]any{"id": id, "merchant_id": m.merchant, "amount": 1000, "currency": "CNY", "card_id": cards[bk]}, nil)
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		var p payment.Payment
		waitFor(t, "payment "+id+" final", func() bool {
			call("GET", "/v1/payments/"+id, nil, &p)
			return p.Status.Final()
		})
	}
	for _, m := range plan {
		var st payment.MerchantStats
		call("GET", "/v1/merchants/"+m.merchant+"/stats", nil, &st)
		n := int64(m.approved + m.declined)
		var hist int64
		for _, c := range st.Latency.Counts {
			hist += c
		}
		codes := map[string]int64{}
		if m.declined > 0 {
			codes["declined"] = int64(m.declined)
		}
		var rate float64
		if n > 0 {
			rate = float64(m.approved) / float64(n)
		}
		if st.MerchantID != m.merchant || st.Payments != n || st.Succeeded != int64(m.approved) || st.Failed != int64(m.declined) ||
			st.Closed != 0 || st.SuccessRate != rate || fmt.Sprint(st.FailureCodes) != fmt.Sprint(codes) || hist != n ||
			st.Recent != (payment.MerchantRecent{WindowS: 300, Payments: n, Succeeded: int64(m.approved), Failed: int64(m.declined), SuccessRate: rate}) ||
			(st.Since == nil) != (n == 0) || (n > 0 && (st.LatencyP50Ms <= 0 || st.LatencyP99Ms < st.LatencyP50Ms)) {
			t.Errorf("%s: %+v, want %d approved and %d declined", m.merchant, st, m.approved, m.declined)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/merchants/nobody/stats")
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || e.Error.Code != "merchant_not_found" {
		t.Errorf("unknown merchant: %d %+v", resp.StatusCode, e)
	}
}
