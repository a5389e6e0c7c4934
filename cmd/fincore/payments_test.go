package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServePayments drives the cashier through the HTTP API of a real fincore process with
// its in-process simulated banks: a merchant, a card, a payment to a final state, a refund,
// the channel view, and bad input that changes nothing.
func TestServePayments(t *testing.T) {
	srv := startServer(t, "--data", t.TempDir())
	defer srv.kill()
	post := func(path string, body any, wantStatus int) map[string]any {
		t.Helper()
		st, b, err := doJSON("POST", srv.url(path), body)
		if err != nil || st != wantStatus {
			t.Fatalf("POST %s: %d %s %v (want %d)", path, st, b, err, wantStatus)
		}
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	get := func(path string) map[string]any {
		t.Helper()
		st, b, err := doJSON("GET", srv.url(path), nil)
		if err != nil || st != 200 {
			t.Fatalf("GET %s: %d %s %v", path, st, b, err)
		}
		var out map[string]any
		json.Unmarshal(b, &out)
		return out
	}
	errCode := func(m map[string]any) string {
		e, _ := m["error"].(map[string]any)
		s, _ := e["code"].(string)
		return s
	}

	m := post("/v1/merchants", map[string]any{"id": "shop", "name": "Shop", "currency": "CNY", "fee_bps": 60}, 201)
	if s, _ := m["webhook_secret"].(string); !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("merchant %v", m)
	}
	if _, shown := get("/v1/merchants/shop")["webhook_secret"]; shown {
		t.Fatal("the webhook secret is shown again")
	}
	card := post("/v1/cards", map[string]any{"pan": "6222020200112233446", "holder": "Zhang San", "expiry_month": 12, "expiry_year": 2035, "bank_code": "ICBC"}, 201)
	cardID, _ := card["id"].(string)
	if !strings.HasPrefix(cardID, "card_") || card["last4"] != "3446" || strings.Contains(fmt.Sprint(card), "622202") {
		t.Fatalf("card %v", card)
	}
	if !strings.Contains(srv.logs.String(), "3446") && strings.Contains(srv.logs.String(), "6222020200112233446") {
		t.Fatal("the card number was logged")
	}

	// Bad input: clear errors, nothing stored.
	for _, tc := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"id": "bad1", "merchant_id": "nope", "amount": 100, "currency": "CNY", "card_id": cardID}, "merchant_not_found"},
		{map[string]any{"id": "bad2", "merchant_id": "shop", "amount": 100, "currency": "CNY", "card_id": "card_nope"}, "card_not_found"},
		{map[string]any{"id": "bad3", "merchant_id": "shop", "amount": 100, "currency": "USD", "card_id": cardID}, "currency_mismatch"},
		{map[string]any{"id": "bad4", "merchant_id": "shop", "amount": -5, "currency": "CNY", "card_id": cardID}, "invalid_request"},
		{map[string]any{"id": "bad5", "merchant_id": "shop", "amount": 1.5, "currency": "CNY", "card_id": cardID}, "invalid_request"},
		{map[string]any{"id": "bad6", "merchant_id": "shop", "amount": 100, "currency": "CNY", "card_id": cardID, "tip": 1}, "invalid_request"},
	} {
		st, b, _ := doJSON("POST", srv.url("/v1/payments"), tc.body)
		var out map[string]any
		json.Unmarshal(b, &out)
		if st < 400 || errCode(out) != tc.code {
			t.Errorf("%v: %d %s, want %s", tc.body, st, b, tc.code)
		}
		if st, _, _ := doJSON("GET", srv.url("/v1/payments/"+tc.body["id"].(string)), nil); st != 404 {
			t.Errorf("%v was stored", tc.body)
		}
	}

	// Enough payments that most succeed (the simulated banks decline a few per cent).
	var succeeded string
	for i := 0; i < 10 && succeeded == ""; i++ {
		id := fmt.Sprintf("pay_%d", i)
		p := post("/v1/payments", map[string]any{"id": id, "merchant_id": "shop", "amount": 10000, "currency": "CNY", "card_id": cardID}, 201)
		if p["status"] != "processing" {
			t.Fatalf("payment answered %v", p)
		}
		post("/v1/payments", map[string]any{"id": id, "merchant_id": "shop", "amount": 10000, "currency": "CNY", "card_id": cardID}, 200)
		deadline := time.Now().Add(30 * time.Second)
		for {
			p = get("/v1/payments/" + id)
			if p["status"] != "processing" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("payment %s still processing: %v\n%s", id, p, srv.logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if p["status"] == "succeeded" {
			succeeded = id
		}
	}
	if succeeded == "" {
		t.Fatal("no payment succeeded in ten")
	}
	r := post("/v1/payments/"+succeeded+"/refunds", map[string]any{"id": "re_1", "amount": 4000}, 201)
	if r["status"] != "processing" || r["payment_id"] != succeeded {
		t.Fatalf("refund %v", r)
	}
	over := post("/v1/payments/"+succeeded+"/refunds", map[string]any{"id": "re_2", "amount": 6001}, 409)
	if errCode(over) != "refund_exceeds_payment" {
		t.Fatalf("over-refund %v", over)
	}
	post("/v1/payments", map[string]any{"id": "pay_extra", "merchant_id": "shop", "amount": 1, "currency": "CNY", "card_id": cardID}, 201)
	list := get("/v1/payments?merchant_id=shop&limit=1")
	if data, _ := list["data"].([]any); len(data) != 1 || list["has_more"] != true {
		t.Fatalf("list %v", list)
	}
	chans := get("/v1/channels")
	data, _ := chans["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("channels %v", chans)
	}
	// With a "payment" rule set active, the risk engine screens payments: this one rejects
	// anything from 9,000,000 up, before any bank sees it.
	rs := "rules:\n  - {id: too_big, when: 'event.amount >= 9000000', action: reject, reason: too_big}\ndecision: {review_at: 50, reject_at: 100}\n"
	req, _ := http.NewRequest("PUT", srv.url("/v1/risk/rulesets/payment"), strings.NewReader(rs))
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("upload rule set: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	post("/v1/risk/rulesets/payment/activate", map[string]any{"version": 1}, 200)
	big := post("/v1/payments", map[string]any{"id": "pay_big", "merchant_id": "shop", "amount": 9000000, "currency": "CNY", "card_id": cardID}, 201)
	if big["status"] != "failed" || big["failure_code"] != "risk_rejected" {
		t.Fatalf("screened payment %v", big)
	}
	// serve wires the risk engine's metrics.
	if v := metricValue(t, srv, `fincore_risk_decisions_total{decision="reject",ruleset="payment"}`); v != 1 {
		t.Fatalf("risk reject decisions in /metrics: %v", v)
	}

	// The payments' events leave through the outbox: it drains.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, b, _ := doJSON("GET", srv.url("/metrics"), nil)
		if strings.Contains(string(b), "\nfincore_outbox_unpublished 0\n") {
			break
		}
		if time.Now().After(deadline) {
			i := strings.Index(string(b), "fincore_outbox_unpublished ")
			t.Fatalf("the outbox does not drain: %.60s", string(b)[max(i, 0):])
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A forged notification is refused.
	req, _ = http.NewRequest("POST", srv.url("/v1/channels/sim-a/notifications"), strings.NewReader(`{"kind":"payment","id":"pay_0.1","status":"succeeded"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("forged notification: %d", resp.StatusCode)
	}
}

// TestServeDemoShowsPayments: serve --demo keeps payments flowing through the simulated banks
// and the risk engine's payment rule set.
func TestServeDemoShowsPayments(t *testing.T) {
	srv := startServer(t, "--data", t.TempDir(), "--demo")
	defer srv.kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, b, err := doJSON("GET", srv.url("/v1/payments?status=succeeded&limit=3"), nil)
		if err == nil && st == 200 && strings.Count(string(b), `"status":"succeeded"`) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no demo payments succeeded: %d %s %v\n%s", st, b, err, srv.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st, b, _ := doJSON("GET", srv.url("/v1/risk/rulesets/payment"), nil)
	if st != 200 || !strings.Contains(string(b), `"active_version":1`) {
		t.Fatalf("the demo's payment rule set: %d %s", st, b)
	}
}
