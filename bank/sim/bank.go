// Package sim is a simulated bank: the far side of a channel, for development, tests, the
// demo and benchmarks. It keeps its own books (what it charged and refunded), answers with
// configurable latency and failure modes — declines, insufficient funds, system errors,
// requests lost on the way in, and the worst case, "charged but the answer was lost" — sends
// asynchronous notifications that are signed and sometimes duplicated or delivered out of
// order, and produces daily statements.
//
// A Bank is used in process through Channel, or served over HTTP by Handler (the
// `fincore bank-sim` command) and reached through HTTPChannel; both are bank.Channels.
package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/fincore/fincore/bank"
)

// Profile is how a simulated bank behaves. Rates are probabilities in [0, 1] drawn per request.
type Profile struct {
	// Latency of an answer: log-normal with this median, and P99 as its 99th percentile
	// (P99 ≤ Median gives a fixed latency).
	Median, P99 time.Duration
	// DeclineRate: the issuer declines (not charged; final).
	DeclineRate float64
	// IssuerDeclineRates: the decline rate for cards of these issuing bank codes, instead of
	// DeclineRate (issuers differ in what they decline).
	IssuerDeclineRates map[string]float64
	// InsufficientRate: insufficient funds (not charged; final).
	InsufficientRate float64
	// SystemErrorRate: the bank answers that it failed before charging (retriable elsewhere).
	SystemErrorRate float64
	// DropRate: the request is lost on the way in; the bank never sees it and never answers.
	DropRate float64
	// LostAnswerRate: the bank charges, but the answer is lost; only a query tells.
	LostAnswerRate float64
	// AsyncRate: the bank answers "pending" at once and decides later (after another latency
	// draw), telling the outcome by notification.
	AsyncRate float64
	// DuplicateNotifyRate: a notification is sent twice.
	DuplicateNotifyRate float64
	// NotifyDelayMax: each notification is delayed by a uniform draw up to this, so
	// notifications overtake each other.
	NotifyDelayMax time.Duration
}

// Validate checks the rates and durations.
func (p Profile) Validate() error {
	rates := []struct {
		name string
		v    float64
	}{{"decline", p.DeclineRate}, {"insufficient", p.InsufficientRate}, {"system-error", p.SystemErrorRate},
		{"drop", p.DropRate}, {"lost-answer", p.LostAnswerRate}, {"async", p.AsyncRate}, {"duplicate-notify", p.DuplicateNotifyRate}}
	sum := 0.0
	for _, r := range rates {
		if r.v < 0 || r.v > 1 || math.IsNaN(r.v) {
			return fmt.Errorf("sim: %s rate %v outside [0, 1]", r.name, r.v)
		}
	}
	for _, r := range rates[:5] {
		sum += r.v
	}
	if sum > 1 {
		return fmt.Errorf("sim: decline, insufficient, system-error, drop and lost-answer rates add up to %.3f > 1", sum)
	}
	for issuer, r := range p.IssuerDeclineRates {
		if r < 0 || r > 1 || math.IsNaN(r) {
			return fmt.Errorf("sim: decline rate %v of issuer %s outside [0, 1]", r, issuer)
		}
		if s := sum - p.DeclineRate + r; s > 1 {
			return fmt.Errorf("sim: with issuer %s's decline rate, the rates add up to %.3f > 1", issuer, s)
		}
	}
	if p.Median < 0 || p.P99 < 0 || p.NotifyDelayMax < 0 {
		return fmt.Errorf("sim: negative duration")
	}
	return nil
}

// Notification tells the outcome of an asynchronous payment or refund.
type Notification struct {
	Kind       string      `json:"kind"` // "payment" or "refund"
	ID         string      `json:"id"`   // PaymentID or RefundID
	ChannelRef string      `json:"channel_ref"`
	Status     bank.Status `json:"status"`
	RawCode    string      `json:"raw_code"`
	Amount     int64       `json:"amount"`
	Currency   string      `json:"currency"`
	At         time.Time   `json:"at"`
	Seq        uint64      `json:"seq"` // the bank's sequence number of the notification
}

// The simulated bank's own response codes (its "raw" codes), mapped onto bank.Codes by Map.
const (
	RawApproved     = "00"
	RawDeclined     = "05"
	RawInsufficient = "51"
	RawSystemError  = "96"
	RawNotFound     = "25"
	RawPending      = "09"
	RawDuplicate    = "94"
	RawBadRequest   = "30"
	RawReversed     = "R0" // the status of a payment or refund that was reversed
)

var rawCodes = map[string]bank.Code{
	RawApproved:     bank.CodeApproved,
	RawPending:      bank.CodeApproved,
	RawDeclined:     bank.CodeDeclined,
	RawInsufficient: bank.CodeInsufficientFunds,
	RawSystemError:  bank.CodeBankSystemError,
	RawNotFound:     bank.CodeNotFound,
	RawDuplicate:    bank.CodeDuplicate,
	RawBadRequest:   bank.CodeInvalidAmount,
	RawReversed:     bank.CodeReversed,
}

// Map maps the simulated bank's raw code onto the unified table; an unknown code reads as an
// unknown outcome (bank.Code's rule).
func Map(raw string) bank.Code {
	if c, ok := rawCodes[raw]; ok {
		return c
	}
	return bank.Code("sim_" + raw)
}

// record is one payment or refund in the bank's books.
type record struct {
	kind     string
	id       string
	ref      string
	payment  string // for refunds: the payment refunded
	amount   int64
	currency string
	status   bank.Status // Succeeded, Failed or Pending
	raw      string
	at       time.Time
	decideAt time.Time // for pending ones: when the bank decides
}

func (r *record) result() bank.Result {
	return bank.Result{Status: r.status, Code: Map(r.raw), RawCode: r.raw, ChannelRef: r.ref, Amount: r.amount, At: r.at}
}

// Bank is one simulated bank. It is safe for concurrent use.
type Bank struct {
	name    string
	profile Profile
	now     func() time.Time
	notify  func(Notification) // may be nil

	mu       sync.Mutex
	rng      *rand.Rand
	payments map[string]*record
	refunds  map[string]*record
	refunded map[string]int64 // payment id -> refunded amount
	seq      uint64
	serial   uint64
	timers   sync.WaitGroup
	closed   bool

	requests uint64 // requests that arrived or were dropped, for tests
}

// Options configure a Bank.
type Options struct {
	Name    string // used in channel references
	Profile Profile
	Seed    uint64
	// Notify receives notifications of asynchronous outcomes (from a goroutine per
	// notification, after the profile's delay). Nil drops them (queries still work).
	Notify func(Notification)
	// Now is the bank's clock (default time.Now).
	Now func() time.Time
}

// New returns a simulated bank.
func New(opts Options) (*Bank, error) {
	if err := opts.Profile.Validate(); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "SIM"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	seed := opts.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Bank{
		name: opts.Name, profile: opts.Profile, now: opts.Now, notify: opts.Notify,
		rng:      rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d)),
		payments: make(map[string]*record),
		refunds:  make(map[string]*record),
		refunded: make(map[string]int64),
	}, nil
}

// Close waits for pending decisions and notifications to finish; later ones are dropped.
func (b *Bank) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.timers.Wait()
}

// SetProfile changes the bank's behaviour from now on (a bank having a bad day).
func (b *Bank) SetProfile(p Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.profile = p
	return nil
}

// latency draws an answer latency from the profile.
func (b *Bank) latency() time.Duration {
	p := b.profile
	if p.Median <= 0 {
		return 0
	}
	if p.P99 <= p.Median {
		return p.Median
	}
	sigma := math.Log(float64(p.P99)/float64(p.Median)) / 2.326
	return time.Duration(float64(p.Median) * math.Exp(sigma*b.rng.NormFloat64()))
}

// fate is what the bank will do with one request, drawn when it arrives.
type fate struct {
	latency time.Duration
	drop    bool // never received: no record, no answer
	lost    bool // processed, answer lost
	async   bool
	raw     string // outcome code for synchronous or later decision
	decide  time.Duration
}

// draw draws the fate of a request; canDecline for payments, by a card of issuer.
func (b *Bank) draw(canDecline bool, issuer string) fate {
	p := b.profile
	if r, ok := p.IssuerDeclineRates[issuer]; ok {
		p.DeclineRate = r
	}
	f := fate{latency: b.latency(), raw: RawApproved}
	u := b.rng.Float64()
	switch {
	case u < p.DropRate:
		f.drop = true
	case u < p.DropRate+p.SystemErrorRate:
		f.raw = RawSystemError
	case canDecline && u < p.DropRate+p.SystemErrorRate+p.DeclineRate:
		f.raw = RawDeclined
	case canDecline && u < p.DropRate+p.SystemErrorRate+p.DeclineRate+p.InsufficientRate:
		f.raw = RawInsufficient
	case u < p.DropRate+p.SystemErrorRate+p.DeclineRate+p.InsufficientRate+p.LostAnswerRate:
		f.lost = true
	}
	if !f.drop && f.raw != RawSystemError && b.rng.Float64() < p.AsyncRate {
		f.async = true
		f.decide = b.latency()
	}
	return f
}

func (b *Bank) nextRef(prefix string) string {
	b.serial++
	return b.name + prefix + strconv.FormatUint(b.serial, 10)
}

// pay applies a payment request at the bank and returns the answer it sends (which the caller
// delivers after f.latency, unless f says it is lost).
func (b *Bank) pay(req bank.PayRequest, f fate) (bank.Result, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	if f.drop {
		return bank.Result{}, false
	}
	if r, ok := b.payments[req.PaymentID]; ok {
		// A repeated request: the bank answers with what it has, and never charges twice.
		if r.amount != req.Amount || r.currency != req.Currency {
			return bank.Result{Status: bank.Failed, Code: Map(RawDuplicate), RawCode: RawDuplicate, At: b.now()}, true
		}
		return r.result(), !f.lost
	}
	if req.Amount <= 0 || req.Currency == "" {
		return bank.Result{Status: bank.Failed, Code: Map(RawBadRequest), RawCode: RawBadRequest, At: b.now()}, true
	}
	r := &record{kind: "payment", id: req.PaymentID, ref: b.nextRef("P"), amount: req.Amount, currency: req.Currency, at: b.now(), raw: f.raw}
	switch {
	case f.raw == RawSystemError:
		// Failed before charging and kept no record: a query says not found.
		return bank.Result{Status: bank.Failed, Code: Map(f.raw), RawCode: f.raw, At: r.at}, true
	case f.async:
		r.status = bank.Pending
		r.raw = RawPending
		r.decideAt = r.at.Add(f.decide)
		b.payments[req.PaymentID] = r
		b.scheduleDecision(r, f.raw, f.decide)
	case f.raw == RawApproved:
		r.status = bank.Succeeded
		b.payments[req.PaymentID] = r
	default:
		r.status = bank.Failed
		b.payments[req.PaymentID] = r
	}
	return r.result(), !f.lost
}

// scheduleDecision makes a pending record final after d and notifies. Called with b.mu held.
func (b *Bank) scheduleDecision(r *record, raw string, d time.Duration) {
	if b.closed {
		return
	}
	b.timers.Add(1)
	time.AfterFunc(d, func() {
		defer b.timers.Done()
		b.mu.Lock()
		if r.status != bank.Pending {
			b.mu.Unlock()
			return
		}
		r.raw = raw
		if raw == RawApproved {
			r.status = bank.Succeeded
		} else {
			r.status = bank.Failed
			if r.kind == "refund" {
				b.refunded[r.payment] -= r.amount
			}
		}
		r.at = b.now()
		n := b.notification(r)
		dup := b.rng.Float64() < b.profile.DuplicateNotifyRate
		b.mu.Unlock()
		b.send(n)
		if dup {
			b.send(n)
		}
	})
}

// notification builds the notification of r. Called with b.mu held.
func (b *Bank) notification(r *record) Notification {
	b.seq++
	return Notification{Kind: r.kind, ID: r.id, ChannelRef: r.ref, Status: r.status, RawCode: r.raw,
		Amount: r.amount, Currency: r.currency, At: r.at, Seq: b.seq}
}

// send delivers n after a random delay (so notifications may arrive out of order).
func (b *Bank) send(n Notification) {
	if b.notify == nil {
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	var delay time.Duration
	if m := b.profile.NotifyDelayMax; m > 0 {
		delay = time.Duration(b.rng.Int64N(int64(m)))
	}
	b.timers.Add(1)
	b.mu.Unlock()
	time.AfterFunc(delay, func() {
		defer b.timers.Done()
		b.notify(n)
	})
}

// query answers where a payment stands.
func (b *Bank) query(kind, id string) bank.Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.payments
	if kind == "refund" {
		m = b.refunds
	}
	if r, ok := m[id]; ok {
		return r.result()
	}
	return bank.Result{Status: bank.Failed, Code: Map(RawNotFound), RawCode: RawNotFound, At: b.now()}
}

// refund applies a refund request.
func (b *Bank) refund(req bank.RefundRequest, f fate) (bank.Result, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	if f.drop {
		return bank.Result{}, false
	}
	if r, ok := b.refunds[req.RefundID]; ok {
		if r.amount != req.Amount || r.payment != req.PaymentID {
			return bank.Result{Status: bank.Failed, Code: Map(RawDuplicate), RawCode: RawDuplicate, At: b.now()}, true
		}
		return r.result(), !f.lost
	}
	p, ok := b.payments[req.PaymentID]
	if !ok || p.status != bank.Succeeded {
		return bank.Result{Status: bank.Failed, Code: Map(RawNotFound), RawCode: RawNotFound, At: b.now()}, true
	}
	if req.Amount <= 0 || req.Currency != p.currency || b.refunded[req.PaymentID]+req.Amount > p.amount {
		return bank.Result{Status: bank.Failed, Code: Map(RawBadRequest), RawCode: RawBadRequest, At: b.now()}, true
	}
	if f.raw == RawSystemError {
		return bank.Result{Status: bank.Failed, Code: Map(f.raw), RawCode: f.raw, At: b.now()}, true
	}
	r := &record{kind: "refund", id: req.RefundID, ref: b.nextRef("R"), payment: req.PaymentID, amount: req.Amount,
		currency: req.Currency, at: b.now(), raw: RawApproved, status: bank.Succeeded}
	b.refunded[req.PaymentID] += req.Amount
	if f.async {
		r.status = bank.Pending
		r.raw = RawPending
		b.scheduleDecision(r, RawApproved, f.decide)
	}
	b.refunds[req.RefundID] = r
	return r.result(), !f.lost
}

// reverse undoes a payment or refund (an ISO 8583 0400 reversal): a succeeded or pending one
// becomes failed with RawReversed, so it is not charged (or not refunded). Reversing what the
// bank never received answers RawNotFound; reversing twice answers the same.
func (b *Bank) reverse(kind, id string, f fate) (bank.Result, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests++
	if f.drop {
		return bank.Result{}, false
	}
	m := b.payments
	if kind == "refund" {
		m = b.refunds
	}
	r, ok := m[id]
	if !ok {
		return bank.Result{Status: bank.Failed, Code: Map(RawNotFound), RawCode: RawNotFound, At: b.now()}, !f.lost
	}
	if r.status != bank.Failed {
		if kind == "refund" {
			b.refunded[r.payment] -= r.amount
		}
		r.status = bank.Failed
		r.raw = RawReversed
		r.at = b.now()
	}
	return r.result(), !f.lost
}

// Statement returns the bank's final records of the day (UTC), payments then refunds, each in
// time order. Pending records are not on a statement.
func (b *Bank) Statement(day time.Time) []bank.StatementLine {
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, 0, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []bank.StatementLine
	for _, m := range []map[string]*record{b.payments, b.refunds} {
		var lines []bank.StatementLine
		for _, r := range m {
			if r.status == bank.Pending || r.at.Before(start) || !r.at.Before(end) {
				continue
			}
			lines = append(lines, bank.StatementLine{Kind: r.kind, ID: r.id, ChannelRef: r.ref, Amount: r.amount,
				Currency: r.currency, Status: r.status, At: r.at})
		}
		sort.Slice(lines, func(i, j int) bool {
			if !lines[i].At.Equal(lines[j].At) {
				return lines[i].At.Before(lines[j].At)
			}
			return lines[i].ID < lines[j].ID
		})
		out = append(out, lines...)
	}
	return out
}

// Stats are what the bank has done, for tests and the chaos check.
type Stats struct {
	Requests uint64 // payment and refund requests that arrived or were dropped
	Charges  uint64 // payments charged and not reversed (each PaymentID at most once)
	Charged  int64  // sum of succeeded payment amounts
	Refunded int64  // sum of succeeded refund amounts
}

// Stats returns the bank's counters.
func (b *Bank) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Stats{Requests: b.requests}
	for _, r := range b.payments {
		if r.status == bank.Succeeded {
			s.Charges++
			s.Charged += r.amount
		}
	}
	for _, r := range b.refunds {
		if r.status == bank.Succeeded {
			s.Refunded += r.amount
		}
	}
	return s
}
