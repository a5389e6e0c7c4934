package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/iso8583"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/risk"
)

// paymentStream is the stream that holds the cashier's events (payment.>, refund.>), which
// the outbox relay publishes; without it their publication would fail and hold up the relay.
const paymentStream = "PAYMENTS"

// paymentFlags configure the cashier's channels and keys.
type paymentFlags struct {
	noSim    bool
	bankSims string // code=URL,...
	iso      string // code=host:port,...
	// noReconFetch turns off the daily fetch of the channels' statements; reconFetchAfter is
	// how long after the end of a business day it runs.
	noReconFetch    bool
	reconFetchAfter time.Duration
	// sims are the in-process simulated banks by channel code (default simProfiles).
	sims map[string]sim.Profile
}

func (pf *paymentFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&pf.noSim, "no-sim-banks", false, "do not register the three simulated banks (sim-a, sim-b, sim-c) that run in process")
	fs.StringVar(&pf.bankSims, "bank-sim", "", "channels on simulated banks served by 'fincore bank-sim': code=URL[,code=URL...] (notifications signed with $FINCORE_BANK_SIM_SECRET)")
	fs.StringVar(&pf.iso, "iso8583", "", "ISO 8583 channels: code=host:port[,code=host:port...]")
	fs.BoolVar(&pf.noReconFetch, "no-recon-fetch", false, "do not fetch and reconcile every channel's statement of each business day (imports by hand still work)")
	fs.DurationVar(&pf.reconFetchAfter, "recon-fetch-after", payment.DefaultReconFetchAfter, "how long after the end of a business day (UTC) its statements are fetched and reconciled")
}

// simProfiles are the in-process simulated banks: realistic latency (20–200 ms), a few
// declines, and every failure mode at a low rate.
var simProfiles = map[string]sim.Profile{
	"sim-a": {Median: 30 * time.Millisecond, P99: 150 * time.Millisecond, DeclineRate: 0.02, InsufficientRate: 0.02, SystemErrorRate: 0.005, DropRate: 0.002, LostAnswerRate: 0.002, AsyncRate: 0.05, DuplicateNotifyRate: 0.1, NotifyDelayMax: 500 * time.Millisecond},
	"sim-b": {Median: 50 * time.Millisecond, P99: 200 * time.Millisecond, DeclineRate: 0.03, InsufficientRate: 0.02, SystemErrorRate: 0.01, DropRate: 0.002, LostAnswerRate: 0.002, AsyncRate: 0.05, DuplicateNotifyRate: 0.1, NotifyDelayMax: 500 * time.Millisecond},
	"sim-c": {Median: 80 * time.Millisecond, P99: 200 * time.Millisecond, DeclineRate: 0.05, InsufficientRate: 0.03, SystemErrorRate: 0.02, DropRate: 0.005, LostAnswerRate: 0.005, AsyncRate: 0.05, DuplicateNotifyRate: 0.1, NotifyDelayMax: 500 * time.Millisecond},
}

// payments is the wired cashier.
type payments struct {
	svc      *payment.Service
	channels *bank.Registry
	router   *route.Router
	notify   func(channel string, h http.Header, body []byte) (payment.Notification, error)
	closers  []func()
}

func (p *payments) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// cardKey returns the sealing key of cards and webhook secrets: FINCORE_CARD_KEY (base64 of
// 32 bytes), or in embedded mode a key file in the data directory made on first start.
func cardKey(data string, embedded bool) ([]byte, error) {
	if v := os.Getenv("FINCORE_CARD_KEY"); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != payment.KeySize {
			return nil, fmt.Errorf("FINCORE_CARD_KEY must be the base64 of %d bytes", payment.KeySize)
		}
		return k, nil
	}
	if !embedded {
		return nil, errors.New("set FINCORE_CARD_KEY (base64 of 32 random bytes) to encrypt cards; every instance needs the same key")
	}
	path := filepath.Join(data, "card.key")
	if b, err := os.ReadFile(path); err == nil {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != payment.KeySize {
			return nil, fmt.Errorf("%s is not a base64 key of %d bytes", path, payment.KeySize)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k := payment.NewKey()
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, err
	}
	return k, nil
}

func splitPairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%q: want code=value", part)
		}
		out[k] = v
	}
	return out, nil
}

var cny = bank.Capabilities{Currencies: []string{"CNY"}, MaxAmount: 5_000_000_00, Refunds: true}

// newPayments builds the cashier on the engine and registers its timer handlers.
func newPayments(ctx context.Context, eng *ledger.Engine, st ledger.Store, timers *timer.Service, riskEng *risk.Engine, key []byte,
	pf paymentFlags, metrics *obs.Metrics, log *slog.Logger) (*payments, error) {
	p := &payments{channels: bank.NewRegistry(), router: route.New(route.Options{})}
	var svc *payment.Service // set below; the simulated banks' notifications need it
	sims := pf.sims
	if sims == nil {
		sims = simProfiles
	}
	if !pf.noSim {
		for _, code := range slices.Sorted(maps.Keys(sims)) {
			b, err := sim.New(sim.Options{Name: strings.ToUpper(strings.TrimPrefix(code, "sim-")), Profile: sims[code],
				Notify: func(n sim.Notification) {
					err := svc.ApplyNotification(context.Background(), code, simNotification(n))
					if err != nil {
						log.Warn("bank notification not applied", "channel", code, "id", n.ID, "err", err)
					}
				}})
			if err != nil {
				return nil, err
			}
			p.closers = append(p.closers, b.Close)
			if err := p.channels.Add(sim.NewChannel(code, cny, b)); err != nil {
				return nil, err
			}
		}
	}
	secrets := map[string][]byte{}
	remote, err := splitPairs(pf.bankSims)
	if err != nil {
		return nil, fmt.Errorf("--bank-sim %w", err)
	}
	for code, url := range remote {
		if err := p.channels.Add(sim.NewHTTPChannel(code, cny, url)); err != nil {
			return nil, err
		}
		secrets[code] = []byte(os.Getenv("FINCORE_BANK_SIM_SECRET"))
	}
	isos, err := splitPairs(pf.iso)
	if err != nil {
		return nil, fmt.Errorf("--iso8583 %w", err)
	}
	for code, addr := range isos {
		ch, err := iso8583.New(iso8583.Options{Code: code, Caps: cny, Addr: addr, Logger: log})
		if err != nil {
			return nil, err
		}
		p.closers = append(p.closers, func() { ch.Close() })
		if err := p.channels.Add(ch); err != nil {
			return nil, err
		}
	}
	p.notify = func(code string, h http.Header, body []byte) (payment.Notification, error) {
		secret, ok := secrets[code]
		if !ok || len(secret) == 0 {
			return payment.Notification{}, fmt.Errorf("channel %s takes no notifications", code)
		}
		n, err := sim.ParseNotification(secret, h.Get(sim.SignatureHeader), body, time.Now())
		if err != nil {
			return payment.Notification{}, err
		}
		return simNotification(n), nil
	}
	sealer, err := payment.NewSealer(key)
	if err != nil {
		return nil, err
	}
	observe := metrics.BankCallObserver()
	svc, err = payment.New(payment.Config{Ledger: eng, Store: st, Channels: p.channels, Router: p.router, Sealer: sealer, Logger: log,
		Observe:    func(ch, bk string, code bank.Code, d time.Duration) { observe(ch, bk, string(code), d) },
		Webhooks:   webhookSender{client: &http.Client{Timeout: 10 * time.Second}},
		Screen:     riskScreen(riskEng),
		ReconFetch: payment.ReconFetch{Enabled: !pf.noReconFetch, After: pf.reconFetchAfter}})
	if err != nil {
		return nil, err
	}
	p.svc = svc
	for name, h := range svc.Handlers() {
		timers.Register(name, h)
	}
	setup := func(ctx context.Context) error {
		if err := svc.Setup(ctx); err != nil {
			return err
		}
		return svc.ScheduleReconFetches(ctx)
	}
	if err := setupAsWriter(ctx, eng, log, "payments", setup); err != nil {
		return nil, err
	}
	return p, nil
}

func simNotification(n sim.Notification) payment.Notification {
	return payment.Notification{Kind: n.Kind, BankID: n.ID, Result: bank.Result{Status: n.Status, Code: sim.Map(n.RawCode),
		RawCode: n.RawCode, ChannelRef: n.ChannelRef, Amount: n.Amount, At: n.At}}
}

// withPayments adds the payment routes to the API.
func withPayments(api *httpapi.Server, p *payments) *httpapi.Server {
	api.RegisterPayments(p.svc, httpapi.PaymentsOptions{Channels: p.channels, Router: p.router, Notify: p.notify, Stats: p.svc.Stats})
	return api
}

// webhookSender posts merchants' webhooks.
type webhookSender struct{ client *http.Client }

func (w webhookSender) Send(ctx context.Context, url string, body []byte, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fincore-webhooks/1")
	req.Header.Set("Fincore-Signature", sig)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// PaymentRuleSet is the risk rule set that screens payments, when it is active.
const PaymentRuleSet = "payment"

// riskScreen screens payments with the risk engine's "payment" rule set (docs/payments.md):
// the event is {"type": "payment", "id": "pay:<payment id>", "timestamp", "user_id" (the
// card token), "merchant_id", "amount", "currency", "bank_code"}. Without an active rule set
// every payment passes.
func riskScreen(eng *risk.Engine) func(context.Context, payment.Payment, payment.Card) (payment.Screening, error) {
	if eng == nil {
		return nil
	}
	return func(ctx context.Context, p payment.Payment, c payment.Card) (payment.Screening, error) {
		raw, err := json.Marshal(map[string]any{"type": "payment", "id": "pay:" + p.ID, "timestamp": p.Created.Format(time.RFC3339Nano),
			"user_id": c.ID, "merchant_id": p.MerchantID, "amount": p.Amount, "currency": p.Currency, "bank_code": c.BankCode})
		if err != nil {
			return payment.Screening{}, err
		}
		ev, err := risk.ParseEvent(raw)
		if err != nil {
			return payment.Screening{}, err
		}
		dec, err := eng.DecideBrief(ctx, PaymentRuleSet, ev)
		if errors.Is(err, risk.ErrUnknownRuleSet) || errors.Is(err, risk.ErrNotActive) {
			return payment.Screening{}, nil
		}
		if err != nil {
			return payment.Screening{}, err
		}
		out := payment.Screening{Reject: dec.Decision == "reject"}
		for _, r := range dec.RuleHits() {
			out.Reasons = append(out.Reasons, r.Reason)
		}
		return out, nil
	}
}
