package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/timer"
)

// RefundInput creates a refund.
type RefundInput struct {
	ID     string
	Amount int64
}

// Refund states beyond Status: whether the request has been sent to the bank.
type refundRecord struct {
	Refund
	Sent  bool `json:"sent"`
	Tries int  `json:"tries"` // times sent
}

// refundTriesMax bounds how often a refund the bank certainly did not apply (not received,
// or failed before acting) is sent again. Refunds go to the payment's channel only.
const refundTriesMax = 3

// CreateRefund accepts a refund of a succeeded payment and schedules it. The sum of a
// payment's refunds — succeeded and in flight — never exceeds its amount, however many
// requests race: each refund reserves its amount on the payment's record, and the ledger's
// writer admits only one change of a record version. Idempotent by refund id.
func (s *Service) CreateRefund(ctx context.Context, paymentID string, in RefundInput) (Refund, bool, error) {
	if !clientIDPattern.MatchString(in.ID) {
		return Refund{}, false, invalid("id", "id is required: 1 to 64 letters, digits, '_', '.' or '-'")
	}
	if in.Amount <= 0 {
		return Refund{}, false, invalid("amount", "amount must be a positive integer of minor units")
	}
	for range 64 {
		if r, err := s.loadRefund(ctx, in.ID); err == nil {
			if r.PaymentID != paymentID || r.Amount != in.Amount {
				return Refund{}, false, apierror.Newf(apierror.IDConflict, "id", "refund %q exists with a different request", in.ID)
			}
			return r.Refund, false, nil
		} else if !errors.Is(err, ledger.ErrNotFound) {
			return Refund{}, false, err
		}
		p, err := s.loadPayment(ctx, paymentID)
		if err != nil {
			return Refund{}, false, err
		}
		if p.Status != StatusSucceeded {
			return Refund{}, false, apierror.Newf(apierror.PaymentNotRefundable, "payment_id", "payment %s is %s", p.ID, p.Status)
		}
		if left := p.Amount - p.Refunded - p.RefundPending; in.Amount > left {
			return Refund{}, false, apierror.Newf(apierror.RefundExceedsPayment, "amount", "at most %d of payment %s can still be refunded", left, p.ID)
		}
		now := s.cfg.Now().UTC()
		a := succeededAttempt(p)
		r := refundRecord{Refund: Refund{ID: in.ID, PaymentID: p.ID, Amount: in.Amount, Currency: p.Currency, Status: StatusProcessing,
			Channel: a.Channel, Bank: a.Bank, Created: now, Updated: now}}
		p.RefundPending += in.Amount
		p.Updated = now
		_, err = s.cfg.Ledger.Commit(ctx, ledger.Unit{
			Records: []ledger.RecordWrite{
				{Record: paymentRecord(&p), Expect: p.version},
				{Record: record(KindRefund, r.ID, p.ID, r.Status, r)},
			},
			Timers: []timer.Timer{{ID: "payment.refund:" + r.ID, Handler: HandlerRefund, FireAt: now, Payload: []byte(r.ID)}},
		})
		if isConflict(err) {
			continue // the payment changed (another refund): check the amount again
		}
		if err != nil {
			return Refund{}, false, err
		}
		return r.Refund, true, nil
	}
	return Refund{}, false, apierror.New(apierror.Overloaded, "")
}

func succeededAttempt(p Payment) Attempt {
	for _, a := range p.Attempts {
		if a.Status == attemptSucceeded {
			return a
		}
	}
	return Attempt{}
}

func (s *Service) loadRefund(ctx context.Context, id string) (refundRecord, error) {
	var r refundRecord
	v, err := s.getRecord(ctx, KindRefund, id, &r)
	if err != nil {
		return refundRecord{}, err
	}
	r.version = v
	return r, nil
}

// GetRefund returns a refund.
func (s *Service) GetRefund(ctx context.Context, id string) (Refund, error) {
	r, err := s.loadRefund(ctx, id)
	if err != nil {
		return Refund{}, notFound(err, apierror.RefundNotFound, "id", "refund", id)
	}
	return r.Refund, nil
}

// ListRefunds lists a payment's refunds, newest first.
func (s *Service) ListRefunds(ctx context.Context, paymentID string, limit int) ([]Refund, bool, error) {
	recs, more, err := s.cfg.Store.ListRecords(ctx, ledger.RecordQuery{Kind: KindRefund, Owner: paymentID, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	out := make([]Refund, 0, len(recs))
	for _, rec := range recs {
		var r refundRecord
		if err := json.Unmarshal(rec.Data, &r); err != nil {
			return nil, false, err
		}
		out = append(out, r.Refund)
	}
	return out, more, nil
}

func (s *Service) handleRefund(ctx context.Context, t timer.Timer) error {
	return s.driveRefund(ctx, string(t.Payload))
}

func (s *Service) handleRefundQuery(ctx context.Context, t timer.Timer) error {
	return s.driveRefund(ctx, string(t.Payload))
}

// driveRefund sends a refund to the bank, or queries it if it was sent, and settles it.
func (s *Service) driveRefund(ctx context.Context, id string) error {
	for range 16 {
		r, err := s.loadRefund(ctx, id)
		if errors.Is(err, ledger.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Status.Final() {
			return nil
		}
		ch, ok := s.cfg.Channels.Get(r.Channel)
		if !ok {
			return fmt.Errorf("payment: channel %s of refund %s is not registered", r.Channel, r.ID)
		}
		var res bank.Result
		if r.Sent {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
			t0 := time.Now()
			res, err = ch.QueryRefund(cctx, r.ID)
			cancel()
			if err != nil {
				return err
			}
			s.observe(r.Channel, r.Bank, res, time.Since(t0))

		} else {
			p, err := s.loadPayment(ctx, r.PaymentID)
			if err != nil {
				return err
			}
			// Write ahead, as for payments: from here on the bank may have it.
			r.Sent, r.Tries, r.Updated = true, r.Tries+1, s.cfg.Now().UTC()
			if err := s.writeRefund(ctx, r); err != nil {
				if isConflict(err) {
					continue
				}
				return err
			}
			r.version++
			a := succeededAttempt(p)
			cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
			t0 := time.Now()
			res, err = ch.Refund(cctx, bank.RefundRequest{RefundID: r.ID, PaymentID: a.BankID, ChannelRef: a.ChannelRef, Amount: r.Amount, Currency: r.Currency})
			cancel()
			if err != nil {
				res = bank.Result{Status: bank.Failed, Code: bank.CodeInvalidAmount, Message: err.Error()}
			}
			s.observe(r.Channel, r.Bank, res, time.Since(t0))
		}
		if !res.Status.Final() {
			return s.awaitRefund(ctx, r)
		}
		if res.Status == bank.Failed && mayRetry(res.Code) && r.Tries < refundTriesMax {
			// The bank certainly did not refund (it never got the request, or failed before
			// acting): send it again, after the timer's backoff.
			r.Sent, r.Updated = false, s.cfg.Now().UTC()
			if err := s.writeRefund(ctx, r); err != nil && !isConflict(err) {
				return err
			}
			return errStillUnknown
		}
		err = s.settleRefund(ctx, r, res)
		if isConflict(err) {
			continue
		}
		return err
	}
	return fmt.Errorf("refund %s: no progress after 16 turns", id)
}

func (s *Service) writeRefund(ctx context.Context, r refundRecord) error {
	_, err := s.cfg.Ledger.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: record(KindRefund, r.ID, r.PaymentID, r.Status, r), Expect: r.version}}})
	return err
}

// awaitRefund schedules a query of a refund whose outcome is not known yet.
func (s *Service) awaitRefund(ctx context.Context, r refundRecord) error {
	_, err := s.cfg.Ledger.Commit(ctx, ledger.Unit{Timers: []timer.Timer{{ID: "payment.refund_query:" + r.ID,
		Handler: HandlerRefundQuery, FireAt: s.cfg.Now().Add(s.cfg.QueryDelay), Payload: []byte(r.ID)}}})
	if err != nil {
		return err
	}
	return errStillUnknown
}

// settleRefund writes a refund's final outcome: on success the payment's refunded amount and
// the postings that take it back from the merchant; on failure the release of its reservation.
func (s *Service) settleRefund(ctx context.Context, r refundRecord, res bank.Result) error {
	p, err := s.loadPayment(ctx, r.PaymentID)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	r.Updated, p.Updated = now, now
	r.ChannelRef = res.ChannelRef
	p.RefundPending -= r.Amount
	var ts []ledger.TransferInput
	typ := EventRefundFailed
	if res.Status == bank.Succeeded {
		r.Status = StatusSucceeded
		p.Refunded += r.Amount
		typ = EventRefundSucceeded
		ts = []ledger.TransferInput{{ID: "refund:" + r.ID, DebitAccountID: MerchantAccount(p.MerchantID, p.Currency),
			CreditAccountID: ClearingAccount(r.Channel, p.Currency), Amount: r.Amount, Currency: p.Currency, Code: "refund",
			Metadata: map[string]string{"payment_id": p.ID, "refund_id": r.ID}}}
	} else {
		r.Status, r.FailureCode = StatusFailed, string(res.Code)
	}
	evID := "evt_" + r.ID + "_" + strings.TrimPrefix(typ, "refund.")
	_, err = s.cfg.Ledger.Commit(ctx, s.withWebhooks(ctx, ledger.Unit{
		Transfers: ts,
		Records: []ledger.RecordWrite{
			{Record: record(KindRefund, r.ID, r.PaymentID, r.Status, r), Expect: r.version},
			{Record: paymentRecord(&p), Expect: p.version},
		},
		Events: []ledger.ModuleEvent{{Subject: typ, ID: evID, Payload: eventPayload(evID, typ, now, r.Refund)}},
	}, p.MerchantID))
	return err
}

// applyRefundNotification applies a bank's notification about a refund.
func (s *Service) applyRefundNotification(ctx context.Context, channel string, n Notification) error {
	for range 8 {
		r, err := s.loadRefund(ctx, n.BankID)
		if errors.Is(err, ledger.ErrNotFound) {
			return apierror.Newf(apierror.RefundNotFound, "id", "no refund %q", n.BankID)
		}
		if err != nil {
			return err
		}
		if r.Status.Final() || r.Channel != channel || !r.Sent {
			return nil
		}
		err = s.settleRefund(ctx, r, n.Result)
		if !isConflict(err) {
			return err
		}
	}
	return errors.New("payment: refund notification kept conflicting")
}
