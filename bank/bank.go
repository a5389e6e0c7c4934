// Package bank is the boundary between fincore and the banks (channels) that move money for
// it. Every adapter — the simulated bank, the ISO 8583 host adapter, a real bank's front end —
// implements Channel and maps its own response codes onto the one table of Codes here, which
// says for each outcome whether the bank certainly did not charge (the payment may be tried on
// another channel), certainly declined, or left the outcome unknown (the payment must be
// resolved by Query, never by guessing).
//
// Adding a bank is one adapter package registered in a Registry at start; nothing else in
// fincore names a bank.
package bank

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Status is where a channel says a payment or refund stands.
type Status string

const (
	// Succeeded: the bank charged (or refunded); final.
	Succeeded Status = "succeeded"
	// Failed: the bank did not charge; final. Result.Code says why.
	Failed Status = "failed"
	// Pending: the bank accepted the request and will decide later (a notification or a
	// Query tells the outcome).
	Pending Status = "pending"
	// Unknown: the outcome is not known (the answer was lost, the call timed out after the
	// request may have reached the bank). Only Query can resolve it.
	Unknown Status = "unknown"
)

// Final reports whether s is a final state.
func (s Status) Final() bool { return s == Succeeded || s == Failed }

// Card is the card data a channel needs to charge. It exists only in memory while a call is
// made: fincore stores cards encrypted and never logs them. String hides everything but the
// last four digits.
type Card struct {
	PAN         string
	Holder      string
	ExpiryMonth int // 1..12
	ExpiryYear  int // four digits
	BankCode    string
}

// String masks the card for logs and errors.
func (c Card) String() string {
	last4 := c.PAN
	if len(last4) > 4 {
		last4 = last4[len(last4)-4:]
	}
	return fmt.Sprintf("card(%s ****%s)", c.BankCode, last4)
}

// GoString masks the card for %#v as well.
func (c Card) GoString() string { return c.String() }

// PayRequest asks a channel to charge a card. PaymentID is fincore's id of the attempt; the
// channel must treat a repeated PaymentID as the same payment (it is the key for Query and
// for the bank's own de-duplication).
type PayRequest struct {
	PaymentID   string
	Amount      int64 // minor units of Currency, > 0
	Currency    string
	Card        Card
	Description string
}

// RefundRequest asks a channel to refund part or all of a succeeded payment. RefundID plays
// the role PaymentID plays for payments.
type RefundRequest struct {
	RefundID   string
	PaymentID  string
	ChannelRef string // the channel's reference of the payment, from its Result
	Amount     int64
	Currency   string
}

// Result is a channel's answer about a payment or refund.
type Result struct {
	Status     Status
	Code       Code   // unified code; CodeApproved for Succeeded and Pending
	RawCode    string // the channel's own response code, for logs and reconciliation
	Message    string
	ChannelRef string // the channel's reference (bank serial number), if it gave one
	Amount     int64  // the amount the bank reports, when it reports one
	At         time.Time
}

// Capabilities say what a channel can be asked to do; the router filters candidates by them.
type Capabilities struct {
	Banks      []string // bank codes served; empty means every bank
	Currencies []string // ISO 4217 codes
	MinAmount  int64    // per payment, minor units; 0 means no minimum
	MaxAmount  int64    // per payment, minor units; 0 means no maximum
	Refunds    bool
}

// Supports reports whether a payment of amount in currency by a card of bankCode is within c.
func (c Capabilities) Supports(bankCode, currency string, amount int64) bool {
	if len(c.Banks) > 0 && !contains(c.Banks, bankCode) {
		return false
	}
	if !contains(c.Currencies, currency) {
		return false
	}
	if amount < c.MinAmount || (c.MaxAmount > 0 && amount > c.MaxAmount) {
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// StatementLine is one entry of a channel's daily statement (for reconciliation).
type StatementLine struct {
	Kind       string // "payment" or "refund"
	ID         string // PaymentID or RefundID
	ChannelRef string
	Amount     int64
	Currency   string
	Status     Status // Succeeded or Failed
	At         time.Time
}

// Channel is one bank channel. Implementations must be safe for concurrent use and must honour
// ctx: when ctx ends before the bank answers, the call returns a Result with Status Unknown
// (or Failed with CodeChannelUnavailable if the request certainly never left).
//
// The returned error is for calls that could not be made at all because of the request
// (invalid argument, unsupported bank); bank outcomes — declines, timeouts, lost answers — are
// Results, never errors, so that callers cannot mistake an unknown outcome for a failure.
type Channel interface {
	// Code is the channel's unique code ("sim-a", "iso-icbc", ...).
	Code() string
	Capabilities() Capabilities
	Pay(ctx context.Context, req PayRequest) (Result, error)
	// Query resolves a payment whose outcome is unknown: it asks the bank where the payment
	// with this PaymentID stands, or — for protocols without an inquiry message, like ISO
	// 8583 — reverses it, so that the answer is final either way. Call it only for payments
	// whose outcome is unknown. A payment the bank never received is Failed with
	// CodeNotFound, which is final: the bank did not charge.
	Query(ctx context.Context, paymentID string) (Result, error)
	Refund(ctx context.Context, req RefundRequest) (Result, error)
	// QueryRefund asks where a refund stands, like Query.
	QueryRefund(ctx context.Context, refundID string) (Result, error)
	// Statement returns the channel's statement for a business day (in the channel's time
	// zone, given as a date at midnight UTC).
	Statement(ctx context.Context, day time.Time) ([]StatementLine, error)
}

// ErrNoStatements is wrapped by Channel.Statement errors of channels that keep no
// statements (their statements arrive as files, imported by hand): asking again will not help.
var ErrNoStatements = errors.New("bank: the channel keeps no statements")

// ErrInvalidRequest is wrapped by Channel errors for requests a channel refuses to send.
var ErrInvalidRequest = errors.New("bank: invalid request")
