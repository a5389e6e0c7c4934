package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/money"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/payment/route"
)

// Scopes of the payment routes. Registering merchants needs ScopeAdmin (the answer carries
// the merchant's webhook secret).
const (
	ScopePaymentsRead  = "payments:read"
	ScopePaymentsWrite = "payments:write"
)

// PaymentsOptions wire the payment routes.
type PaymentsOptions struct {
	Channels *bank.Registry
	Router   *route.Router
	// Notify parses and verifies a bank notification for a channel (its signature scheme
	// is the channel's); nil for channels that do not notify.
	Notify func(channel string, header http.Header, body []byte) (payment.Notification, error)
	// Stats returns the live statistics per channel and issuing bank for GET /v1/channels.
	Stats func() payment.Stats
}

type paymentsAPI struct {
	s    *Server
	svc  *payment.Service
	opts PaymentsOptions
}

// RegisterPayments adds the cashier's routes: merchants, cards, payments, refunds, bank
// notifications and the channel view.
func (s *Server) RegisterPayments(svc *payment.Service, opts PaymentsOptions) {
	a := &paymentsAPI{s: s, svc: svc, opts: opts}
	s.HandleScoped("POST /v1/merchants", ScopeAdmin, http.HandlerFunc(a.createMerchant))
	s.HandleScoped("GET /v1/merchants/{id}", ScopePaymentsRead, http.HandlerFunc(a.getMerchant))
	s.HandleScoped("GET /v1/merchants/{id}/stats", ScopePaymentsRead, http.HandlerFunc(a.merchantStats))
	s.HandleScoped("POST /v1/cards", ScopePaymentsWrite, http.HandlerFunc(a.createCard))
	s.HandleScoped("GET /v1/cards/{id}", ScopePaymentsRead, http.HandlerFunc(a.getCard))
	s.HandleScoped("POST /v1/payments", ScopePaymentsWrite, http.HandlerFunc(a.createPayment))
	s.HandleScoped("GET /v1/payments", ScopePaymentsRead, http.HandlerFunc(a.listPayments))
	s.HandleScoped("GET /v1/payments/{id}", ScopePaymentsRead, http.HandlerFunc(a.getPayment))
	s.HandleScoped("POST /v1/payments/{id}/close", ScopePaymentsWrite, http.HandlerFunc(a.closePayment))
	s.HandleScoped("POST /v1/payments/{id}/refunds", ScopePaymentsWrite, http.HandlerFunc(a.createRefund))
	s.HandleScoped("GET /v1/payments/{id}/refunds", ScopePaymentsRead, http.HandlerFunc(a.listRefunds))
	s.HandleScoped("GET /v1/refunds/{id}", ScopePaymentsRead, http.HandlerFunc(a.getRefund))
	s.HandleScoped("GET /v1/channels", ScopePaymentsRead, http.HandlerFunc(a.channels))
	s.HandleScoped("GET /v1/webhooks", ScopePaymentsRead, http.HandlerFunc(a.listWebhooks))
	s.HandleScoped("GET /v1/webhooks/{id}", ScopePaymentsRead, http.HandlerFunc(a.getWebhook))
	s.HandleScoped("POST /v1/webhooks/{id}/resend", ScopePaymentsWrite, http.HandlerFunc(a.resendWebhook))
	// Banks call this one; it is authenticated by the notification's signature, not a key.
	s.HandleScoped("POST /v1/channels/{code}/notifications", "", http.HandlerFunc(a.notify))
}

// decodeFields decodes a JSON object whose fields are handled by fields (by name); unknown
// fields and a non-object body are errors.
func decodeFields(body []byte, fields func(d *decoder, key, p string) (bool, *apierror.Error)) *apierror.Error {
	d, e := newDecoder(body)
	if e != nil {
		return e
	}
	present, e := d.object("", func(key, p string) *apierror.Error {
		known, e := fields(d, key, p)
		if !known && e == nil {
			return unknownField(p)
		}
		return e
	})
	return d.finishObject(present, e)
}

func (a *paymentsAPI) createMerchant(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var in payment.MerchantInput
	var fee int64
	e := decodeFields(body, func(d *decoder, key, p string) (bool, *apierror.Error) {
		var e *apierror.Error
		switch key {
		case "id":
			_, e = d.str(p, &in.ID)
		case "name":
			_, e = d.str(p, &in.Name)
		case "webhook_url":
			_, e = d.str(p, &in.WebhookURL)
		case "currency":
			_, e = d.str(p, &in.Currency)
		case "fee_bps":
			_, e = d.integer(p, 0, 1000, &fee)
		default:
			return false, nil
		}
		return true, e
	})
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	in.FeeBps = int(fee)
	m, err := a.svc.CreateMerchant(r.Context(), in)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, m)
}

func (a *paymentsAPI) getMerchant(w http.ResponseWriter, r *http.Request) {
	m, err := a.svc.GetMerchant(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	m.SealedSecret = ""
	WriteJSON(w, http.StatusOK, m)
}

func (a *paymentsAPI) merchantStats(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		a.s.Error(w, r, e)
		return
	}
	st, err := a.svc.MerchantStats(r.Context(), r.PathValue("id"))
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

func (a *paymentsAPI) createCard(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var in payment.CardInput
	var month, year int64
	e := decodeFields(body, func(d *decoder, key, p string) (bool, *apierror.Error) {
		var e *apierror.Error
		switch key {
		case "pan":
			_, e = d.str(p, &in.PAN)
		case "holder":
			_, e = d.str(p, &in.Holder)
		case "expiry_month":
			_, e = d.integer(p, 1, 12, &month)
		case "expiry_year":
			_, e = d.integer(p, 2000, 2100, &year)
		case "bank_code":
			_, e = d.str(p, &in.BankCode)
		default:
			return false, nil
		}
		return true, e
	})
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	in.ExpiryMonth, in.ExpiryYear = int(month), int(year)
	c, err := a.svc.CreateCard(r.Context(), in)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusCreated, c)
}

// reply answers v with status, or err if there is one.
func reply[T any](s *Server, w http.ResponseWriter, r *http.Request, status int, v T, err error) {
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, status, v)
}

func (a *paymentsAPI) getCard(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.GetCard(r.Context(), r.PathValue("id"))
	reply(a.s, w, r, http.StatusOK, c, err)
}

func (a *paymentsAPI) createPayment(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var in payment.PaymentInput
	e := decodeFields(body, func(d *decoder, key, p string) (bool, *apierror.Error) {
		var e *apierror.Error
		switch key {
		case "id":
			_, e = d.str(p, &in.ID)
		case "merchant_id":
			_, e = d.str(p, &in.MerchantID)
		case "amount":
			_, e = d.integer(p, 1, money.MaxAmount, &in.Amount)
		case "currency":
			_, e = d.str(p, &in.Currency)
		case "card_id":
			_, e = d.str(p, &in.CardID)
		case "description":
			_, e = d.str(p, &in.Description)
		case "metadata":
			_, e = d.metadata(p, &in.Metadata)
		default:
			return false, nil
		}
		return true, e
	})
	for _, f := range []struct{ name, v string }{{"id", in.ID}, {"merchant_id", in.MerchantID}, {"currency", in.Currency}, {"card_id", in.CardID}} {
		if e == nil && f.v == "" {
			e = required(f.name)
		}
	}
	if e == nil && in.Amount == 0 {
		e = required("amount")
	}
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	p, created, err := a.svc.CreatePayment(r.Context(), in)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(created), p)
}

func (a *paymentsAPI) getPayment(w http.ResponseWriter, r *http.Request) {
	p, err := a.svc.GetPayment(r.Context(), r.PathValue("id"))
	reply(a.s, w, r, http.StatusOK, p, err)
}

type paymentList struct {
	Data    []payment.Payment `json:"data"`
	HasMore bool              `json:"has_more"`
}

func (a *paymentsAPI) listPayments(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := a.s.listQuery(w, r, 100, "merchant_id", "status", "created_gte", "created_lt")
	if !ok {
		return
	}
	lq := payment.ListQuery{MerchantID: q.Get("merchant_id"), Status: payment.Status(q.Get("status")), StartingAfter: q.Get("starting_after"), Limit: limit}
	switch lq.Status {
	case "", payment.StatusProcessing, payment.StatusSucceeded, payment.StatusFailed, payment.StatusClosed:
	default:
		a.s.Error(w, r, invalid("status", "status must be processing, succeeded, failed or closed."))
		return
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"created_gte", &lq.CreatedFrom}, {"created_lt", &lq.CreatedBefore}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				a.s.Error(w, r, invalid(t.name, "%s must be an RFC 3339 time.", t.name))
				return
			}
			*t.dst = at
		}
	}
	ps, more, err := a.svc.ListPayments(r.Context(), lq)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, paymentList{Data: ps, HasMore: more})
}

func (a *paymentsAPI) closePayment(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.s.readOptional(w, r); !ok {
		return
	}
	p, err := a.svc.ClosePayment(r.Context(), r.PathValue("id"))
	reply(a.s, w, r, http.StatusOK, p, err)
}

func (a *paymentsAPI) createRefund(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var in payment.RefundInput
	e := decodeFields(body, func(d *decoder, key, p string) (bool, *apierror.Error) {
		var e *apierror.Error
		switch key {
		case "id":
			_, e = d.str(p, &in.ID)
		case "amount":
			_, e = d.integer(p, 1, money.MaxAmount, &in.Amount)
		default:
			return false, nil
		}
		return true, e
	})
	if e == nil && in.ID == "" {
		e = required("id")
	}
	if e == nil && in.Amount == 0 {
		e = required("amount")
	}
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	ref, created, err := a.svc.CreateRefund(r.Context(), r.PathValue("id"), in)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(created), ref)
}

type refundList struct {
	Data    []payment.Refund `json:"data"`
	HasMore bool             `json:"has_more"`
}

func (a *paymentsAPI) listRefunds(w http.ResponseWriter, r *http.Request) {
	_, limit, ok := a.s.listQuery(w, r, 100)
	if !ok {
		return
	}
	if _, err := a.svc.GetPayment(r.Context(), r.PathValue("id")); err != nil {
		a.s.Error(w, r, err)
		return
	}
	rs, more, err := a.svc.ListRefunds(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, refundList{Data: rs, HasMore: more})
}

func (a *paymentsAPI) getRefund(w http.ResponseWriter, r *http.Request) {
	ref, err := a.svc.GetRefund(r.Context(), r.PathValue("id"))
	reply(a.s, w, r, http.StatusOK, ref, err)
}

// channelView is one channel in GET /v1/channels: what it can do, how operators configured
// it, what the router currently believes of it, and its live statistics (with their
// breakdown by issuing bank in stats.banks).
type channelView struct {
	Code       string               `json:"code"`
	Banks      []string             `json:"banks"`
	Currencies []string             `json:"currencies"`
	MinAmount  int64                `json:"min_amount"`
	MaxAmount  int64                `json:"max_amount"`
	Enabled    bool                 `json:"enabled"`
	Priority   int                  `json:"priority"`
	Weight     int                  `json:"weight"`
	CostBps    int                  `json:"cost_bps"`
	Router     route.View           `json:"router"`
	Stats      payment.ChannelStats `json:"stats"`
}

func (a *paymentsAPI) channels(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		a.s.Error(w, r, e)
		return
	}
	views := map[string]route.View{}
	for _, v := range a.opts.Router.Views(time.Now()) {
		views[v.Code] = v
	}
	var stats payment.Stats
	if a.opts.Stats != nil {
		stats = a.opts.Stats()
	}
	out := struct {
		Data  []channelView       `json:"data"`
		Banks []payment.BankStats `json:"banks"`
	}{Data: []channelView{}, Banks: stats.Banks}
	if out.Banks == nil {
		out.Banks = []payment.BankStats{}
	}
	for _, code := range a.opts.Channels.Codes() {
		ch, _ := a.opts.Channels.Get(code)
		caps := ch.Capabilities()
		cfg := a.opts.Router.Config(code)
		v := views[code]
		v.Code = code
		out.Data = append(out.Data, channelView{Code: code, Banks: nonNilStrings(caps.Banks), Currencies: nonNilStrings(caps.Currencies),
			MinAmount: caps.MinAmount, MaxAmount: caps.MaxAmount, Enabled: cfg.Enabled, Priority: cfg.Priority, Weight: cfg.Weight,
			CostBps: cfg.CostBps, Router: v, Stats: channelStats(stats.Channels[code])})
	}
	WriteJSON(w, http.StatusOK, out)
}

// channelStats fills in what a channel without calls lacks, so that every channel has the
// same shape.
func channelStats(st payment.ChannelStats) payment.ChannelStats {
	if st.Codes == nil {
		st.Codes = map[string]int64{}
	}
	if st.Banks == nil {
		st.Banks = []payment.BankStats{}
	}
	return st
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *paymentsAPI) notify(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if _, ok := a.opts.Channels.Get(code); !ok || a.opts.Notify == nil {
		a.s.Error(w, r, apierror.Newf(apierror.ChannelNotFound, "code", "no channel %q takes notifications", clip(code)))
		return
	}
	body, e := a.s.readBody(w, r)
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	n, err := a.opts.Notify(code, r.Header, body)
	if err != nil {
		a.s.Error(w, r, apierror.Newf(apierror.SignatureInvalid, "", "%s", clip(err.Error())))
		return
	}
	if err := a.svc.ApplyNotification(r.Context(), code, n); err != nil {
		a.s.Error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// readOptional reads a POST body that may be empty (or an empty JSON object).
func (s *Server) readOptional(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if _, e := query(r); e != nil {
		s.Error(w, r, e)
		return nil, false
	}
	body, e := s.readOptionalBody(w, r)
	if e == nil && len(strings.TrimSpace(string(body))) > 0 && strings.TrimSpace(string(body)) != "{}" {
		e = invalid("", "This request takes no body.")
	}
	if e != nil {
		s.Error(w, r, e)
		return nil, false
	}
	return body, true
}

type webhookList struct {
	Data    []payment.Webhook `json:"data"`
	HasMore bool              `json:"has_more"`
}

func (a *paymentsAPI) listWebhooks(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := a.s.listQuery(w, r, 100, "merchant_id", "status")
	if !ok {
		return
	}
	if q.Get("merchant_id") == "" {
		a.s.Error(w, r, required("merchant_id"))
		return
	}
	switch q.Get("status") {
	case "", "pending", "delivered", "failed":
	default:
		a.s.Error(w, r, invalid("status", "status must be pending, delivered or failed."))
		return
	}
	ws, more, err := a.svc.ListWebhooks(r.Context(), q.Get("merchant_id"), q.Get("status"), q.Get("starting_after"), limit)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, webhookList{Data: ws, HasMore: more})
}

func (a *paymentsAPI) getWebhook(w http.ResponseWriter, r *http.Request) {
	wh, err := a.svc.GetWebhook(r.Context(), r.PathValue("id"))
	reply(a.s, w, r, http.StatusOK, wh, err)
}

func (a *paymentsAPI) resendWebhook(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.s.readOptional(w, r); !ok {
		return
	}
	wh, err := a.svc.ResendWebhook(r.Context(), r.PathValue("id"))
	reply(a.s, w, r, http.StatusAccepted, wh, err)
}
