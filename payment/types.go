// Package payment is fincore's cashier: merchants, tokenized cards, payments over bank
// channels chosen by the router, refunds, and the asynchronous processing that drives them to
// a final state. Every state change is a ledger unit: the payment's record, its postings, its
// events and its next timer commit in one transaction (docs/adr/0013).
package payment

import (
	"time"
)

// Status is a payment's or refund's state.
type Status string

// Payment states: processing → succeeded | failed; closed for one cancelled before it was
// sent. Refunds use processing, succeeded and failed.
const (
	StatusProcessing Status = "processing"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusClosed     Status = "closed"
)

// Final reports whether s is a final state.
func (s Status) Final() bool { return s == StatusSucceeded || s == StatusFailed || s == StatusClosed }

// Record kinds in the ledger's module records.
const (
	KindMerchant = "payment.merchant"
	KindCard     = "payment.card"
	KindPayment  = "payment"
	KindRefund   = "payment.refund"
)

// Merchant is a business that takes payments. Its webhook secret is stored sealed and shown
// once, at creation.
type Merchant struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	WebhookURL    string    `json:"webhook_url"`
	Currency      string    `json:"currency"`
	FeeBps        int       `json:"fee_bps"`
	Created       time.Time `json:"created"`
	WebhookSecret string    `json:"webhook_secret,omitempty"` // only in the creation response
	SealedSecret  string    `json:"sealed_secret,omitempty"`  // storage only
}

// Card is a tokenized card: the number and holder are sealed; only the last four digits are
// ever shown.
type Card struct {
	ID          string    `json:"id"`
	Last4       string    `json:"last4"`
	BankCode    string    `json:"bank_code"`
	ExpiryMonth int       `json:"expiry_month"`
	ExpiryYear  int       `json:"expiry_year"`
	Created     time.Time `json:"created"`
	Sealed      string    `json:"sealed,omitempty"` // storage only: PAN and holder
}

// Attempt is one try of a payment on one channel. BankID is the id the bank knows the try by
// (the payment id and the attempt number), so a retry on another channel can never be
// mistaken for the first. Bank is the card's issuing bank code when the attempt was routed
// (empty in attempts recorded before it was kept: their calls count as BankUnknown).
type Attempt struct {
	N          int       `json:"n"`
	Channel    string    `json:"channel"`
	Bank       string    `json:"bank,omitempty"`
	BankID     string    `json:"bank_id"`
	Status     string    `json:"status"` // sending, pending, unknown, succeeded, failed
	Code       string    `json:"code,omitempty"`
	RawCode    string    `json:"raw_code,omitempty"`
	ChannelRef string    `json:"channel_ref,omitempty"`
	At         time.Time `json:"at"`
}

// Payment is a payment order.
type Payment struct {
	ID          string            `json:"id"`
	MerchantID  string            `json:"merchant_id"`
	Amount      int64             `json:"amount"`
	Currency    string            `json:"currency"`
	CardID      string            `json:"card_id"`
	Description string            `json:"description,omitempty"`
	Metadata    map[string]string `json:"metadata"`
	Status      Status            `json:"status"`
	FailureCode string            `json:"failure_code,omitempty"`
	Fee         int64             `json:"fee"`
	Refunded    int64             `json:"amount_refunded"`
	// RefundPending is the sum of refunds in flight: with Refunded it bounds new refunds.
	RefundPending int64     `json:"amount_refund_pending"`
	Attempts      []Attempt `json:"attempts"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	ReqHash       string    `json:"req_hash,omitempty"` // storage only: fingerprint of the create request
	version       int64
}

// Refund is a refund of part or all of a succeeded payment.
type Refund struct {
	ID          string    `json:"id"`
	PaymentID   string    `json:"payment_id"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	Status      Status    `json:"status"`
	FailureCode string    `json:"failure_code,omitempty"`
	Channel     string    `json:"channel"`
	Bank        string    `json:"bank,omitempty"` // the card's issuing bank code, as on the payment's attempt
	ChannelRef  string    `json:"channel_ref,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	version     int64
}

// Event subjects published on the bus (and sent to merchants as webhooks).
const (
	EventPaymentSucceeded = "payment.succeeded"
	EventPaymentFailed    = "payment.failed"
	EventPaymentClosed    = "payment.closed"
	EventRefundSucceeded  = "refund.succeeded"
	EventRefundFailed     = "refund.failed"
)

// EventSubjects are every subject the service publishes through the outbox, for checking
// that the bus has a stream for each (the outbox relay cannot publish past an event no
// stream captures).
var EventSubjects = []string{EventPaymentSucceeded, EventPaymentFailed, EventPaymentClosed, EventRefundSucceeded, EventRefundFailed}

// Timer handlers of the payment service.
const (
	HandlerProcess     = "payment.process"
	HandlerQuery       = "payment.query"
	HandlerRefund      = "payment.refund"
	HandlerRefundQuery = "payment.refund_query"
)
