package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/fincore/fincore/bank"
)

// DefaultTimeout bounds a call that gets no answer when the caller's context has no deadline.
const DefaultTimeout = 5 * time.Second

// Channel is a bank.Channel on a Bank in the same process. The simulated network is the
// latency drawn per request: half on the way in, half on the way out, so that a caller's
// deadline can end a call before or after the bank acted — and the caller cannot tell which.
type Channel struct {
	code    string
	caps    bank.Capabilities
	bank    *Bank
	timeout time.Duration
}

// NewChannel returns a channel with code and caps on b.
func NewChannel(code string, caps bank.Capabilities, b *Bank) *Channel {
	return &Channel{code: code, caps: caps, bank: b, timeout: DefaultTimeout}
}

// Code implements bank.Channel.
func (c *Channel) Code() string { return c.code }

// Capabilities implements bank.Channel.
func (c *Channel) Capabilities() bank.Capabilities { return c.caps }

// Bank returns the simulated bank behind the channel.
func (c *Channel) Bank() *Bank { return c.bank }

func (c *Channel) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// unknown is the answer to a call whose answer never came.
func unknown(now time.Time) bank.Result {
	return bank.Result{Status: bank.Unknown, Code: bank.CodeTimeout, Message: "no answer from the bank in time", At: now}
}

// process runs one request through the simulated network: the request travels for half the
// drawn latency, the bank acts on it, and the answer travels back for the other half. It
// reports false when no answer reaches the caller (the request or the answer was lost, or ctx
// ended first).
func (b *Bank) process(ctx context.Context, canDecline bool, issuer string, act func(fate) (bank.Result, bool)) (bank.Result, bool) {
	b.mu.Lock()
	f := b.draw(canDecline, issuer)
	b.mu.Unlock()
	if !sleep(ctx, f.latency/2) {
		return bank.Result{}, false
	}
	res, answered := act(f)
	if !answered || !sleep(ctx, f.latency-f.latency/2) {
		return bank.Result{}, false
	}
	return res, true
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// call runs one request through the simulated network, turning a missing answer into an
// unknown outcome.
func (c *Channel) call(ctx context.Context, op func(context.Context) (bank.Result, bool)) bank.Result {
	ctx, cancel := c.deadline(ctx)
	defer cancel()
	res, answered := op(ctx)
	if !answered {
		<-ctx.Done() // a lost answer: the caller waits until it gives up
		return unknown(c.bank.now())
	}
	return res
}

// Pay implements bank.Channel.
func (c *Channel) Pay(ctx context.Context, req bank.PayRequest) (bank.Result, error) {
	if req.PaymentID == "" || req.Amount <= 0 || req.Currency == "" {
		return bank.Result{}, fmt.Errorf("%w: payment id, a positive amount and a currency are required", bank.ErrInvalidRequest)
	}
	return c.call(ctx, func(ctx context.Context) (bank.Result, bool) { return c.bank.HandlePay(ctx, req) }), nil
}

// Refund implements bank.Channel.
func (c *Channel) Refund(ctx context.Context, req bank.RefundRequest) (bank.Result, error) {
	if req.RefundID == "" || req.PaymentID == "" || req.Amount <= 0 {
		return bank.Result{}, fmt.Errorf("%w: refund id, payment id and a positive amount are required", bank.ErrInvalidRequest)
	}
	return c.call(ctx, func(ctx context.Context) (bank.Result, bool) { return c.bank.HandleRefund(ctx, req) }), nil
}

// Query implements bank.Channel. Queries travel like requests (and may be dropped), but
// never change anything at the bank.
func (c *Channel) Query(ctx context.Context, paymentID string) (bank.Result, error) {
	return c.call(ctx, func(ctx context.Context) (bank.Result, bool) { return c.bank.HandleQuery(ctx, "payment", paymentID) }), nil
}

// QueryRefund implements bank.Channel.
func (c *Channel) QueryRefund(ctx context.Context, refundID string) (bank.Result, error) {
	return c.call(ctx, func(ctx context.Context) (bank.Result, bool) { return c.bank.HandleQuery(ctx, "refund", refundID) }), nil
}

// Statement implements bank.Channel.
func (c *Channel) Statement(ctx context.Context, day time.Time) ([]bank.StatementLine, error) {
	return c.bank.Statement(day), ctx.Err()
}

// The bank's operations through the simulated network, for servers that front the bank with
// their own protocol (the HTTP handler here, the ISO 8583 host). Each reports false when no
// answer reaches the caller.

// HandlePay charges a card.
func (b *Bank) HandlePay(ctx context.Context, req bank.PayRequest) (bank.Result, bool) {
	return b.process(ctx, true, req.Card.BankCode, func(f fate) (bank.Result, bool) { return b.pay(req, f) })
}

// HandleRefund refunds part of a payment.
func (b *Bank) HandleRefund(ctx context.Context, req bank.RefundRequest) (bank.Result, bool) {
	return b.process(ctx, false, "", func(f fate) (bank.Result, bool) { return b.refund(req, f) })
}

// HandleQuery tells where a payment or refund (kind "payment" or "refund") stands.
func (b *Bank) HandleQuery(ctx context.Context, kind, id string) (bank.Result, bool) {
	return b.process(ctx, false, "", func(f fate) (bank.Result, bool) { return b.query(kind, id), !f.drop })
}

// HandleReverse reverses a payment or refund.
func (b *Bank) HandleReverse(ctx context.Context, kind, id string) (bank.Result, bool) {
	return b.process(ctx, false, "", func(f fate) (bank.Result, bool) { return b.reverse(kind, id, f) })
}
