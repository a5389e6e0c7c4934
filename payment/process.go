package payment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/timer"
)

// Attempt statuses.
const (
	attemptSending   = "sending" // written before the call: the bank may have it
	attemptPending   = "pending"
	attemptUnknown   = "unknown"
	attemptSucceeded = "succeeded"
	attemptFailed    = "failed"
)

// errStillUnknown makes the timer service retry a query later, with its backoff.
var errStillUnknown = errors.New("payment: outcome still unknown")

func bankID(paymentID string, n int) string { return paymentID + "." + strconv.Itoa(n) }

// splitBankID parses a bank id back into the payment id and attempt number.
func splitBankID(id string) (string, int, bool) {
	i := strings.LastIndexByte(id, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+1:])
	if err != nil || n < 1 {
		return "", 0, false
	}
	return id[:i], n, true
}

func (s *Service) handleProcess(ctx context.Context, t timer.Timer) error {
	return s.drive(ctx, string(t.Payload))
}

func (s *Service) handleQuery(ctx context.Context, t timer.Timer) error {
	return s.drive(ctx, string(t.Payload))
}

// drive moves a payment forward from wherever it stands: an attempt whose outcome is not
// known is queried; otherwise the next channel is tried. It returns errStillUnknown when the
// bank has not decided yet (the timer retries).
func (s *Service) drive(ctx context.Context, id string) error {
	// The first turn takes the payment from CreatePayment's hand-over if it is there.
	p, fresh := s.fresh.take(id)
	for range 16 { // bounded: each turn either finishes, waits, or records progress
		var err error
		if !fresh {
			p, err = s.loadPayment(ctx, id)
		}
		fresh = false
		if err != nil {
			if errors.Is(err, ledger.ErrNotFound) || isNotFound(err) {
				s.log.Warn("payment timer for a missing payment", "payment_id", id)
				return nil
			}
			return err
		}
		if p.Status.Final() {
			return nil
		}
		if n := len(p.Attempts); n > 0 {
			a := p.Attempts[n-1]
			switch a.Status {
			case attemptSending, attemptPending, attemptUnknown:
				res, err := s.query(ctx, a)
				if err != nil {
					return err
				}
				if !res.Status.Final() {
					return errStillUnknown
				}
				if err := s.settle(ctx, p, a.N, res); err != nil && !isConflict(err) {
					return err
				}
				continue
			}
		}
		done, err := s.attempt(ctx, p)
		if err != nil && !isConflict(err) {
			return err
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("payment %s: no progress after 16 turns", id)
}

func isNotFound(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no payment")
}

// query asks the channel of attempt a where it stands.
func (s *Service) query(ctx context.Context, a Attempt) (bank.Result, error) {
	ch, ok := s.cfg.Channels.Get(a.Channel)
	if !ok {
		return bank.Result{}, fmt.Errorf("payment: channel %s of attempt %s is not registered", a.Channel, a.BankID)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	t0 := time.Now()
	res, err := ch.Query(cctx, a.BankID)
	if err == nil {
		s.observe(a.Channel, a.Bank, res, time.Since(t0))
	}
	return res, err
}

// observe counts a bank call on channel for a card of bankCode ("" if not known).
func (s *Service) observe(channel, bankCode string, res bank.Result, d time.Duration) {
	label := s.stats.observe(channel, bankCode, res, d, s.cfg.Now())
	if f := s.cfg.Observe; f != nil {
		f(channel, label, res.Code, d)
	}
}

// attempt sends p to the next channel. It reports done when nothing more is to be done now
// (a final state was written, or the outcome is awaited on a timer).
func (s *Service) attempt(ctx context.Context, p Payment) (bool, error) {
	card, err := s.bankCard(ctx, p.CardID)
	if err != nil {
		p.Status, p.FailureCode, p.Updated = StatusFailed, string(bank.CodeCardInvalid), s.cfg.Now().UTC()
		return true, s.commitFinal(ctx, p)
	}
	tried := map[string]bool{}
	for _, a := range p.Attempts {
		tried[a.Channel] = true
	}
	var candidates []string
	for _, ch := range s.cfg.Channels.Candidates(card.BankCode, p.Currency, p.Amount) {
		if !tried[ch.Code()] {
			candidates = append(candidates, ch.Code())
		}
	}
	ranked := s.cfg.Router.Rank(s.cfg.Now(), candidates)
	if len(ranked) == 0 || len(p.Attempts) >= s.cfg.MaxAttempts {
		code := "no_channel_available"
		if n := len(p.Attempts); n > 0 {
			code = p.Attempts[n-1].Code
		}
		p.Status, p.FailureCode, p.Updated = StatusFailed, code, s.cfg.Now().UTC()
		return true, s.commitFinal(ctx, p)
	}
	// Write ahead: once this commits, the payment may be at the bank, and a crash from here
	// on is resolved by query, never by sending again.
	n := len(p.Attempts) + 1
	a := Attempt{N: n, Channel: ranked[0], Bank: card.BankCode, BankID: bankID(p.ID, n), Status: attemptSending, At: s.cfg.Now().UTC()}
	p.Attempts = append(p.Attempts, a)
	p.Updated = a.At
	if _, err := s.cfg.Ledger.Commit(ctx, s.finalUnit(ctx, p, nil)); err != nil {
		return false, err
	}
	p.version++
	ch, _ := s.cfg.Channels.Get(a.Channel)
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	t0 := time.Now()
	res, err := ch.Pay(cctx, bank.PayRequest{PaymentID: a.BankID, Amount: p.Amount, Currency: p.Currency, Card: card, Description: p.Description})
	cancel()
	if err != nil {
		// The channel refused to send it at all: not charged.
		res = bank.Result{Status: bank.Failed, Code: bank.CodeInvalidAmount, Message: err.Error()}
	}
	s.observe(a.Channel, a.Bank, res, time.Since(t0))
	if err := s.settle(ctx, p, n, res); err != nil {
		return false, err
	}
	return res.Status == bank.Succeeded || (res.Status == bank.Failed && !mayRetry(res.Code)) || !res.Status.Final(), nil
}

// commitFinal writes p, failed without (another) bank call.
func (s *Service) commitFinal(ctx context.Context, p Payment) error {
	_, err := s.cfg.Ledger.Commit(ctx, s.finalUnit(ctx, p, nil))
	if err == nil {
		s.finalized(p)
	}
	return err
}

// mayRetry reports whether a failed attempt may be followed by one on another channel: the
// bank certainly did not charge, for reasons of the channel.
func mayRetry(c bank.Code) bool {
	return c.Retriable() || c == bank.CodeNotFound
}

// settle records the outcome res of attempt n of p: a success with its postings, a final
// failure, a failure to retry elsewhere (the payment stays processing), or a wait for the
// bank (with a query timer).
func (s *Service) settle(ctx context.Context, p Payment, n int, res bank.Result) error {
	i := n - 1
	if i < 0 || i >= len(p.Attempts) {
		return fmt.Errorf("payment %s has no attempt %d", p.ID, n)
	}
	a := &p.Attempts[i]
	now := s.cfg.Now().UTC()
	a.Code, a.RawCode, a.At = string(res.Code), res.RawCode, now
	if res.ChannelRef != "" {
		a.ChannelRef = res.ChannelRef
	}
	p.Updated = now
	var u ledger.Unit
	switch res.Status {
	case bank.Succeeded:
		a.Status = attemptSucceeded
		p.Status = StatusSucceeded
		u = s.finalUnit(ctx, p, captureTransfers(p, a.Channel))
		s.cfg.Router.Observe(now, a.Channel, true)
	case bank.Failed:
		a.Status = attemptFailed
		if !mayRetry(res.Code) || n >= s.cfg.MaxAttempts {
			p.Status, p.FailureCode = StatusFailed, string(res.Code)
		}
		u = s.finalUnit(ctx, p, nil)
		s.cfg.Router.Observe(now, a.Channel, false)
	default:
		a.Status = attemptUnknown
		if res.Status == bank.Pending {
			a.Status = attemptPending
		}
		u = s.finalUnit(ctx, p, nil)
		u.Timers = []timer.Timer{{ID: "payment.query:" + a.BankID, Handler: HandlerQuery, FireAt: now.Add(s.cfg.QueryDelay), Payload: []byte(p.ID)}}
	}
	_, err := s.cfg.Ledger.Commit(ctx, u)
	if err == nil && p.Status.Final() {
		s.finalized(p)
	}
	return err
}

// Notification is a bank's asynchronous word on a payment or refund.
type Notification struct {
	Kind   string // "payment" or "refund"
	BankID string // the id the bank knows the request by
	Result bank.Result
}

// ApplyNotification applies a bank notification. Duplicates, notifications of superseded
// attempts and notifications arriving after a final state change nothing.
func (s *Service) ApplyNotification(ctx context.Context, channel string, n Notification) error {
	if !n.Result.Status.Final() {
		return nil
	}
	if n.Kind == "refund" {
		return s.applyRefundNotification(ctx, channel, n)
	}
	id, num, ok := splitBankID(n.BankID)
	if !ok {
		return invalid("id", "not a payment attempt id: %q", n.BankID)
	}
	for range 8 {
		p, err := s.loadPayment(ctx, id)
		if err != nil {
			return err
		}
		if p.Status.Final() || num > len(p.Attempts) {
			return nil
		}
		a := p.Attempts[num-1]
		if a.Channel != channel || a.Status == attemptSucceeded || a.Status == attemptFailed {
			return nil
		}
		err = s.settle(ctx, p, num, n.Result)
		if !isConflict(err) {
			return err
		}
	}
	return errors.New("payment: notification kept conflicting")
}
