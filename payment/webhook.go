package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/signature"
	"github.com/fincore/fincore/platform/timer"
)

// KindWebhook is the record kind of webhook deliveries.
const KindWebhook = "payment.webhook"

// HandlerWebhook delivers a webhook.
const HandlerWebhook = "payment.webhook"

// WebhookSender posts a signed webhook body to a merchant's URL and returns the HTTP status
// (the cmd wiring implements it with an HTTP client; tests with a real local server).
type WebhookSender interface {
	Send(ctx context.Context, url string, body []byte, signature string) (status int, err error)
}

// Webhook delivery limits.
const (
	// WebhookRetryFor is how long a failing delivery is retried before it is given up.
	WebhookRetryFor = 72 * time.Hour
	// webhookAttemptsKept bounds the attempts a delivery record lists (the latest are kept).
	webhookAttemptsKept = 50
)

// WebhookAttempt is one try of a delivery.
type WebhookAttempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error,omitempty"`
	DurationMs int64     `json:"duration_ms"`
}

// Webhook is the delivery of one event to one merchant.
type Webhook struct {
	ID         string           `json:"id"` // the event id
	MerchantID string           `json:"merchant_id"`
	Type       string           `json:"type"`
	URL        string           `json:"url"`
	Status     string           `json:"status"` // pending, delivered, failed
	Attempts   []WebhookAttempt `json:"attempts"`
	Tries      int              `json:"tries"`
	Payload    json.RawMessage  `json:"payload"`
	Created    time.Time        `json:"created"`
	Updated    time.Time        `json:"updated"`
	Resends    int              `json:"resends"`
	version    int64
}

// webhookParts returns the delivery record and timer of an event for merchant m, or nothing
// when the merchant has no webhook URL.
func webhookParts(m Merchant, ev ledger.ModuleEvent, now time.Time) ([]ledger.RecordWrite, []timer.Timer) {
	if m.WebhookURL == "" {
		return nil, nil
	}
	w := Webhook{ID: ev.ID, MerchantID: m.ID, Type: ev.Subject, URL: m.WebhookURL, Status: "pending", Attempts: []WebhookAttempt{},
		Payload: json.RawMessage(ev.Payload), Created: now, Updated: now}
	return []ledger.RecordWrite{{Record: record(KindWebhook, w.ID, w.MerchantID, Status(w.Status), w)}},
		[]timer.Timer{{ID: "webhook:" + w.ID, Handler: HandlerWebhook, FireAt: now, Payload: []byte(w.ID)}}
}

// withWebhooks adds to u the webhook deliveries of its events for the merchant.
func (s *Service) withWebhooks(ctx context.Context, u ledger.Unit, merchantID string) ledger.Unit {
	if len(u.Events) == 0 {
		return u
	}
	m, err := s.GetMerchant(ctx, merchantID)
	if err != nil {
		s.log.Error("webhook: merchant not found", "merchant_id", merchantID, "err", err)
		return u
	}
	now := s.cfg.Now().UTC()
	for _, ev := range u.Events {
		recs, ts := webhookParts(m, ev, now)
		u.Records = append(u.Records, recs...)
		u.Timers = append(u.Timers, ts...)
	}
	return u
}

func (s *Service) loadWebhook(ctx context.Context, id string) (Webhook, error) {
	var w Webhook
	v, err := s.getRecord(ctx, KindWebhook, id, &w)
	if err != nil {
		return Webhook{}, err
	}
	w.version = v
	return w, nil
}

// errWebhookRetry makes the timer service try the delivery again later, with its backoff.
var errWebhookRetry = errors.New("payment: webhook not delivered yet")

// handleWebhook makes one delivery attempt and records it.
func (s *Service) handleWebhook(ctx context.Context, t timer.Timer) error {
	if s.cfg.Webhooks == nil {
		return nil
	}
	w, err := s.loadWebhook(ctx, string(t.Payload))
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if w.Status != "pending" {
		return nil
	}
	secret, err := s.WebhookSecret(ctx, w.MerchantID)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	sig := signature.Header(secret, now, w.Payload)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	t0 := time.Now()
	status, serr := s.cfg.Webhooks.Send(cctx, w.URL, w.Payload, sig)
	cancel()
	a := WebhookAttempt{At: now.UTC(), StatusCode: status, DurationMs: time.Since(t0).Milliseconds()}
	if serr != nil {
		a.Error = clipString(serr.Error(), 300)
	}
	w.Tries++
	w.Attempts = append(w.Attempts, a)
	if n := len(w.Attempts); n > webhookAttemptsKept {
		w.Attempts = w.Attempts[n-webhookAttemptsKept:]
	}
	ok := serr == nil && status >= 200 && status < 300
	switch {
	case ok:
		w.Status = "delivered"
	case now.Sub(w.Created) > WebhookRetryFor:
		w.Status = "failed"
	}
	w.Updated = now.UTC()
	_, err = s.cfg.Ledger.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: record(KindWebhook, w.ID, w.MerchantID, Status(w.Status), w), Expect: w.version}}})
	if err != nil && !isConflict(err) {
		return err
	}
	if w.Status == "pending" {
		return errWebhookRetry
	}
	return nil
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// GetWebhook returns a delivery with its attempts.
func (s *Service) GetWebhook(ctx context.Context, id string) (Webhook, error) {
	w, err := s.loadWebhook(ctx, id)
	if err != nil {
		return Webhook{}, notFound(err, apierror.WebhookNotFound, "id", "webhook delivery", id)
	}
	return w, nil
}

// ListWebhooks lists a merchant's deliveries, newest first.
func (s *Service) ListWebhooks(ctx context.Context, merchantID, status, startingAfter string, limit int) ([]Webhook, bool, error) {
	recs, more, err := s.cfg.Store.ListRecords(ctx, ledger.RecordQuery{Kind: KindWebhook, Owner: merchantID, Status: status, StartingAfter: startingAfter, Limit: limit})
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, false, apierror.Newf(apierror.WebhookNotFound, "starting_after", "no webhook delivery %q", startingAfter)
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]Webhook, 0, len(recs))
	for _, r := range recs {
		var w Webhook
		if err := json.Unmarshal(r.Data, &w); err != nil {
			return nil, false, err
		}
		out = append(out, w)
	}
	return out, more, nil
}

// ResendWebhook sends a delivery again (delivered, failed or pending alike): it becomes
// pending and a new delivery timer starts at once.
func (s *Service) ResendWebhook(ctx context.Context, id string) (Webhook, error) {
	for range 8 {
		w, err := s.loadWebhook(ctx, id)
		if err != nil {
			return Webhook{}, notFound(err, apierror.WebhookNotFound, "id", "webhook delivery", id)
		}
		now := s.cfg.Now().UTC()
		w.Status, w.Updated, w.Created = "pending", now, now // the 72 hours start again
		w.Resends++
		_, err = s.cfg.Ledger.Commit(ctx, ledger.Unit{
			Records: []ledger.RecordWrite{{Record: record(KindWebhook, w.ID, w.MerchantID, Status(w.Status), w), Expect: w.version}},
			Timers:  []timer.Timer{{ID: fmt.Sprintf("webhook:%s:resend:%d", w.ID, w.Resends), Handler: HandlerWebhook, FireAt: now, Payload: []byte(w.ID)}},
		})
		if isConflict(err) {
			continue
		}
		if err != nil {
			return Webhook{}, err
		}
		return w, nil
	}
	return Webhook{}, apierror.New(apierror.Overloaded, "")
}
