package payment_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/platform/signature"
)

// httpSender is a WebhookSender over real HTTP.
type httpSender struct{}

func (httpSender) Send(ctx context.Context, url string, body []byte, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Fincore-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// merchantEndpoint is a merchant's webhook receiver that fails its first failFirst calls.
type merchantEndpoint struct {
	mu        sync.Mutex
	failFirst int
	calls     int
	got       []string // verified event payloads
	bad       int      // calls with a wrong signature
	secret    []byte
}

func (m *merchantEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.calls <= m.failFirst {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if _, err := signature.Verify(m.secret, r.Header.Get("Fincore-Signature"), body, time.Now(), 0); err != nil {
		m.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	m.got = append(m.got, string(body))
}

func TestWebhooksSignedRetriedRecordedResent(t *testing.T) {
	ep := &merchantEndpoint{failFirst: 2}
	srv := httptest.NewServer(ep)
	defer srv.Close()
	f := newFixtureWith(t, map[string]sim.Profile{"bank-a": {}}, func(c *payment.Config) { c.Webhooks = httpSender{} })
	m, err := f.svc.CreateMerchant(context.Background(), payment.MerchantInput{ID: "m1", Name: "Shop", Currency: "CNY", WebhookURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ep.mu.Lock()
	ep.secret = []byte(m.WebhookSecret)
	ep.mu.Unlock()
	f.pay("p1", "m1", f.card().ID, 100)
	f.final("p1")
	w := waitWebhook(t, f, "evt_p1_succeeded", func(w payment.Webhook) bool { return w.Status == "delivered" })
	if w.Tries != 3 || len(w.Attempts) != 3 || w.Attempts[0].StatusCode != 503 || w.Attempts[2].StatusCode != 200 || w.MerchantID != "m1" {
		t.Fatalf("delivery %+v", w)
	}
	ep.mu.Lock()
	if len(ep.got) != 1 || ep.bad != 0 || !bytes.Contains([]byte(ep.got[0]), []byte(`"type":"payment.succeeded"`)) {
		t.Fatalf("endpoint got %v (bad signatures %d)", ep.got, ep.bad)
	}
	ep.mu.Unlock()

	// A manual re-send delivers it again.
	if _, err := f.svc.ResendWebhook(context.Background(), w.ID); err != nil {
		t.Fatal(err)
	}
	waitWebhook(t, f, w.ID, func(w payment.Webhook) bool { return w.Status == "delivered" && w.Tries == 4 })
	ep.mu.Lock()
	if len(ep.got) != 2 {
		t.Fatalf("after the re-send the endpoint got %d deliveries", len(ep.got))
	}
	ep.mu.Unlock()
	list, _, err := f.svc.ListWebhooks(context.Background(), "m1", "", "", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListWebhooks = %+v, %v", list, err)
	}
	// A merchant without a URL gets no deliveries.
	f.merchant("m2", 0)
	f.pay("p2", "m2", f.card().ID, 100)
	f.final("p2")
	if list, _, _ := f.svc.ListWebhooks(context.Background(), "m2", "", "", 10); len(list) != 0 {
		t.Fatalf("deliveries for a merchant without a URL: %+v", list)
	}
}

func waitWebhook(t *testing.T, f *fixture, id string, done func(payment.Webhook) bool) payment.Webhook {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w, err := f.svc.GetWebhook(context.Background(), id)
		if err == nil && done(w) {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook %s: %+v %v", id, w, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
