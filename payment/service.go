package payment

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
	"github.com/fincore/fincore/payment/route"
	"github.com/fincore/fincore/platform/jsonw"
	"github.com/fincore/fincore/platform/timer"
)

// Config wires a Service.
type Config struct {
	Ledger   *ledger.Engine
	Store    ledger.Store // reads of records and accounts
	Channels *bank.Registry
	Router   *route.Router
	Sealer   *Sealer
	Now      func() time.Time
	Logger   *slog.Logger
	// MaxAttempts bounds the channels one payment is tried on (default 3).
	MaxAttempts int
	// CallTimeout bounds one bank call (default 10 s).
	CallTimeout time.Duration
	// QueryDelay is when an unknown or pending outcome is first queried (default 2 s); the
	// timer service retries later queries with its backoff.
	QueryDelay time.Duration
	// Observe, if set, is told about every bank call: channel, the label of the card's
	// issuing bank (its bank code, BankUnknown or BankOther: see MaxBankLabels), outcome
	// code, latency.
	Observe func(channel, bankLabel string, code bank.Code, d time.Duration)
	// MaxBankLabels bounds the issuing banks that statistics and Observe tell apart
	// (default 64): the bank codes the registered channels list in their capabilities always
	// have their own label; past them, the first MaxBankLabels other bank codes seen do, and
	// later ones are counted as BankOther. Card bank codes come from API clients, so this
	// keeps metrics' cardinality bounded.
	MaxBankLabels int
	// Webhooks sends merchants' webhooks; nil records deliveries without sending them.
	Webhooks WebhookSender
	// MerchantStatsMax bounds the merchants whose payment statistics are held (default
	// DefaultMerchantStatsMax, about 1.5 KB each); MerchantStatsIdle drops the statistics of a
	// merchant without a final payment for that long (default DefaultMerchantStatsIdle).
	// Merchant ids are unbounded: they never become metric labels.
	MerchantStatsMax  int
	MerchantStatsIdle time.Duration
	// Finalized, if set, is called once after each payment's final state has committed
	// (for metrics and benchmarks), by the process that committed it. It must not block.
	Finalized func(p Payment)
	// Screen, if set, screens every new payment for fraud before it is accepted (the risk
	// engine). A rejected payment is stored failed with failure_code risk_rejected and
	// never reaches a bank. If Screen fails, the payment is accepted (and the failure
	// logged): screening must not stop payments.
	Screen func(ctx context.Context, p Payment, c Card) (Screening, error)
	// ReconFetch configures the daily fetch and reconciliation of the channels' statements
	// (off unless Enabled).
	ReconFetch ReconFetch
}

// Screening is the verdict of Config.Screen.
type Screening struct {
	Reject  bool
	Reasons []string
}

// FailureRiskRejected is the failure code of a payment the risk screen rejected.
const FailureRiskRejected = "risk_rejected"

// Service is the payment service. It is safe for concurrent use.
type Service struct {
	cfg           Config
	log           *slog.Logger
	stats         *statsBook
	merchantStats *merchantBook
	// Merchants and cards never change once written: reads of them are cached.
	merchants cache[Merchant]
	cards     cache[Card]
	// fresh holds payments this service has just created, for their processing timer to take
	// instead of reading them back from storage.
	fresh freshPayments
}

// freshMax bounds Service.fresh: payments created but not yet picked up by their processing
// timer (normally a handful: the timer is due at once).
const freshMax = 8192

// freshPayments is a hand-over of just-created payments from CreatePayment to the first run
// of their processing timer, which then skips reading the payment back from storage. An
// entry is only a hint: every write names the version it replaces, so a payment that changed
// meanwhile (elsewhere) makes that write fail with record_conflict and the processor reads
// the payment from storage.
type freshPayments struct {
	mu sync.Mutex
	m  map[string]Payment
}

func (f *freshPayments) put(p Payment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil || len(f.m) >= freshMax {
		// Full: payments whose timers run elsewhere (another instance) or not at all are
		// never taken. Start again rather than grow.
		f.m = make(map[string]Payment)
	}
	f.m[p.ID] = p
}

// take returns and forgets the fresh payment id, if there is one.
func (f *freshPayments) take(id string) (Payment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.m[id]
	if ok {
		delete(f.m, id)
	}
	return p, ok
}

// cacheMax bounds each cache; past it, entries are dropped at random.
const cacheMax = 100_000

// cache is a bounded map of immutable records.
type cache[T any] struct {
	mu sync.RWMutex
	m  map[string]T
}

func (c *cache[T]) get(id string) (T, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[id]
	return v, ok
}

func (c *cache[T]) put(id string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]T)
	}
	if len(c.m) >= cacheMax {
		for k := range c.m {
			delete(c.m, k)
			if len(c.m) < cacheMax*3/4 {
				break
			}
		}
	}
	c.m[id] = v
}

// New returns a payment service.
func New(cfg Config) (*Service, error) {
	if cfg.Ledger == nil || cfg.Store == nil || cfg.Channels == nil || cfg.Router == nil || cfg.Sealer == nil {
		return nil, errors.New("payment: ledger, store, channels, router and sealer are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.QueryDelay <= 0 {
		cfg.QueryDelay = 2 * time.Second
	}
	cfg.ReconFetch.setDefaults()
	if cfg.MaxBankLabels <= 0 {
		cfg.MaxBankLabels = 64
	}
	if cfg.MerchantStatsMax <= 0 {
		cfg.MerchantStatsMax = DefaultMerchantStatsMax
	}
	if cfg.MerchantStatsIdle <= 0 {
		cfg.MerchantStatsIdle = DefaultMerchantStatsIdle
	}
	var configured []string
	for _, code := range cfg.Channels.Codes() {
		ch, _ := cfg.Channels.Get(code)
		configured = append(configured, ch.Capabilities().Banks...)
	}
	return &Service{cfg: cfg, log: cfg.Logger, stats: newStatsBook(configured, cfg.MaxBankLabels),
		merchantStats: newMerchantBook(cfg.MerchantStatsMax, cfg.MerchantStatsIdle)}, nil
}

// Handlers returns the service's timer handlers, to register with the timer service.
func (s *Service) Handlers() map[string]timer.HandlerFunc {
	return map[string]timer.HandlerFunc{
		HandlerProcess:     s.handleProcess,
		HandlerQuery:       s.handleQuery,
		HandlerRefund:      s.handleRefund,
		HandlerRefundQuery: s.handleRefundQuery,
		HandlerWebhook:     s.handleWebhook,
		HandlerReconFetch:  s.handleReconFetch,
	}
}

// The chart of accounts (docs/payments.md).

// ClearingAccount is the receivable from a channel: what the bank owes us for captured
// payments, until it settles.
func ClearingAccount(channel, currency string) string {
	return "pay:clearing:" + channel + ":" + currency
}

// MerchantAccount is what we owe a merchant: captured payments less fees and refunds.
func MerchantAccount(merchant, currency string) string {
	return "pay:merchant:" + merchant + ":" + currency
}

// FeeAccount is fee revenue.
func FeeAccount(currency string) string { return "pay:fees:" + currency }

// Setup creates the clearing accounts of the registered channels and the fee accounts of
// their currencies. It is idempotent.
func (s *Service) Setup(ctx context.Context) error {
	var ins []ledger.AccountInput
	seen := map[string]bool{}
	for _, code := range s.cfg.Channels.Codes() {
		ch, _ := s.cfg.Channels.Get(code)
		for _, cur := range ch.Capabilities().Currencies {
			ins = append(ins, ledger.AccountInput{ID: ClearingAccount(code, cur), Currency: cur, Code: "channel_clearing"})
			if !seen[cur] {
				seen[cur] = true
				ins = append(ins, ledger.AccountInput{ID: FeeAccount(cur), Currency: cur, Code: "fee_revenue"})
			}
		}
	}
	return s.createAccounts(ctx, ins)
}

func (s *Service) createAccounts(ctx context.Context, ins []ledger.AccountInput) error {
	if len(ins) == 0 {
		return nil
	}
	res, err := s.cfg.Ledger.CreateAccounts(ctx, ins)
	if err != nil {
		return err
	}
	for i, r := range res {
		if r.Err != nil {
			return fmt.Errorf("payment: account %s: %w", ins[i].ID, r.Err)
		}
	}
	return nil
}

// clientIDPattern is the shape of client-chosen payment and refund ids (no ':' so that the
// ids derived from them are unambiguous).
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func invalid(param, format string, args ...any) error {
	return apierror.Newf(apierror.InvalidRequest, param, format, args...)
}

// --- records -------------------------------------------------------------------------------

func (s *Service) getRecord(ctx context.Context, kind, id string, v any) (int64, error) {
	r, err := s.cfg.Store.GetRecord(ctx, kind, id)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		return 0, fmt.Errorf("payment: decode %s %s: %w", kind, id, err)
	}
	return r.Version, nil
}

func record(kind, id, owner string, status Status, v any) ledger.Record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always marshal
	}
	return ledger.Record{Kind: kind, ID: id, Owner: owner, Status: string(status), Data: b}
}

func notFound(err error, code apierror.Code, param, what, id string) error {
	if errors.Is(err, ledger.ErrNotFound) {
		return apierror.Newf(code, param, "no %s %q", what, id)
	}
	return err
}

// --- merchants -----------------------------------------------------------------------------

// MerchantInput creates a merchant.
type MerchantInput struct {
	ID         string
	Name       string
	WebhookURL string
	Currency   string
	FeeBps     int
}

// CreateMerchant registers a merchant and its payable account. The response carries the
// webhook secret; it is never shown again. Creating an existing id fails with id_conflict.
func (s *Service) CreateMerchant(ctx context.Context, in MerchantInput) (Merchant, error) {
	if in.ID == "" {
		in.ID = newID("mch_")
	}
	switch {
	case !clientIDPattern.MatchString(in.ID):
		return Merchant{}, invalid("id", "id must be 1 to 64 letters, digits, '_', '.' or '-'")
	case strings.TrimSpace(in.Name) == "" || utf8.RuneCountInString(in.Name) > 200:
		return Merchant{}, invalid("name", "name must be 1 to 200 characters")
	case !money.ValidCode(in.Currency):
		return Merchant{}, invalid("currency", "unknown currency %q", in.Currency)
	case in.FeeBps < 0 || in.FeeBps > 1000:
		return Merchant{}, invalid("fee_bps", "fee_bps must be 0 to 1000")
	}
	if in.WebhookURL != "" {
		u, err := url.Parse(in.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(in.WebhookURL) > 2000 {
			return Merchant{}, invalid("webhook_url", "webhook_url must be an http or https URL")
		}
	}
	secret := "whsec_" + hex.EncodeToString(NewKey())
	m := Merchant{ID: in.ID, Name: in.Name, WebhookURL: in.WebhookURL, Currency: in.Currency, FeeBps: in.FeeBps,
		Created: s.cfg.Now().UTC(), SealedSecret: s.cfg.Sealer.Seal([]byte(secret), "merchant:"+in.ID)}
	if err := s.createAccounts(ctx, []ledger.AccountInput{{ID: MerchantAccount(m.ID, m.Currency), Currency: m.Currency,
		Code: "merchant_payable", Flags: ledger.Flags{DebitsMustNotExceedCredits: true}}}); err != nil {
		return Merchant{}, err
	}
	_, err := s.cfg.Ledger.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: record(KindMerchant, m.ID, "", "active", m)}}})
	if isConflict(err) {
		return Merchant{}, apierror.Newf(apierror.IDConflict, "id", "merchant %q exists", m.ID)
	}
	if err != nil {
		return Merchant{}, err
	}
	m.SealedSecret, m.WebhookSecret = "", secret
	return m, nil
}

func isConflict(err error) bool {
	if err == nil {
		return false // without the allocation of errors.As
	}
	var ae *apierror.Error
	return errors.As(err, &ae) && ae.Code == apierror.RecordConflict
}

// GetMerchant returns a merchant (with its sealed secret; the API clears it).
func (s *Service) GetMerchant(ctx context.Context, id string) (Merchant, error) {
	if m, ok := s.merchants.get(id); ok {
		return m, nil
	}
	var m Merchant
	if _, err := s.getRecord(ctx, KindMerchant, id, &m); err != nil {
		return Merchant{}, notFound(err, apierror.MerchantNotFound, "merchant_id", "merchant", id)
	}
	s.merchants.put(id, m)
	return m, nil
}

// WebhookSecret returns a merchant's webhook secret, for signing.
func (s *Service) WebhookSecret(ctx context.Context, merchantID string) ([]byte, error) {
	m, err := s.GetMerchant(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	return s.cfg.Sealer.Open(m.SealedSecret, "merchant:"+m.ID)
}

// --- cards ---------------------------------------------------------------------------------

// CardInput tokenizes a card.
type CardInput struct {
	PAN         string
	Holder      string
	ExpiryMonth int
	ExpiryYear  int
	BankCode    string
}

var bankCodePattern = regexp.MustCompile(`^[A-Z0-9]{2,16}$`)

type sealedCard struct {
	PAN    string `json:"pan"`
	Holder string `json:"holder"`
}

// CreateCard validates and tokenizes a card. The number and holder are sealed; the token is
// random. The PAN is never logged.
func (s *Service) CreateCard(ctx context.Context, in CardInput) (Card, error) {
	now := s.cfg.Now().UTC()
	switch {
	case !Luhn(in.PAN):
		return Card{}, apierror.Newf(apierror.CardInvalid, "pan", "the card number is not valid")
	case strings.TrimSpace(in.Holder) == "" || utf8.RuneCountInString(in.Holder) > 100:
		return Card{}, apierror.Newf(apierror.CardInvalid, "holder", "holder must be 1 to 100 characters")
	case in.ExpiryMonth < 1 || in.ExpiryMonth > 12 || in.ExpiryYear < 2000 || in.ExpiryYear > 2100:
		return Card{}, apierror.Newf(apierror.CardInvalid, "expiry_month", "expiry must be a month 1..12 and a four-digit year")
	case in.ExpiryYear < now.Year() || (in.ExpiryYear == now.Year() && in.ExpiryMonth < int(now.Month())):
		return Card{}, apierror.Newf(apierror.CardInvalid, "expiry_year", "the card has expired")
	case !bankCodePattern.MatchString(in.BankCode):
		return Card{}, invalid("bank_code", "bank_code must be 2 to 16 upper-case letters or digits")
	}
	c := Card{ID: newID("card_"), Last4: in.PAN[len(in.PAN)-4:], BankCode: in.BankCode, ExpiryMonth: in.ExpiryMonth,
		ExpiryYear: in.ExpiryYear, Created: now}
	secret, _ := json.Marshal(sealedCard{PAN: in.PAN, Holder: in.Holder})
	c.Sealed = s.cfg.Sealer.Seal(secret, "card:"+c.ID)
	if _, err := s.cfg.Ledger.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{{Record: record(KindCard, c.ID, "", "active", c)}}}); err != nil {
		return Card{}, err
	}
	c.Sealed = ""
	return c, nil
}

// GetCard returns a card's public view.
func (s *Service) GetCard(ctx context.Context, id string) (Card, error) {
	c, err := s.card(ctx, id)
	c.Sealed = ""
	return c, err
}

// card returns a stored card, sealed data included.
func (s *Service) card(ctx context.Context, id string) (Card, error) {
	if c, ok := s.cards.get(id); ok {
		return c, nil
	}
	var c Card
	if _, err := s.getRecord(ctx, KindCard, id, &c); err != nil {
		return Card{}, notFound(err, apierror.CardNotFound, "card_id", "card", id)
	}
	s.cards.put(id, c)
	return c, nil
}

// bankCard opens a card's sealed data for a bank call.
func (s *Service) bankCard(ctx context.Context, id string) (bank.Card, error) {
	c, err := s.card(ctx, id)
	if err != nil {
		return bank.Card{}, err
	}
	plain, err := s.cfg.Sealer.Open(c.Sealed, "card:"+c.ID)
	if err != nil {
		return bank.Card{}, err
	}
	sc, err := openedCard(plain)
	if err != nil {
		return bank.Card{}, err
	}
	return bank.Card{PAN: sc.PAN, Holder: sc.Holder, ExpiryMonth: c.ExpiryMonth, ExpiryYear: c.ExpiryYear, BankCode: c.BankCode}, nil
}

// --- payments ------------------------------------------------------------------------------

// PaymentInput creates a payment.
type PaymentInput struct {
	ID          string
	MerchantID  string
	Amount      int64
	Currency    string
	CardID      string
	Description string
	Metadata    map[string]string
}

// hash is the fingerprint of the request: the first half of the SHA-256 of its JSON (as
// encoding/json writes it, so that payments stored before this encoder still match), in hex.
func (in *PaymentInput) hash() string {
	var buf [256]byte
	b := buf[:0]
	b = append(b, `{"ID":`...)
	b = jsonw.AppendString(b, in.ID)
	b = append(b, `,"MerchantID":`...)
	b = jsonw.AppendString(b, in.MerchantID)
	b = append(b, `,"Amount":`...)
	b = strconv.AppendInt(b, in.Amount, 10)
	b = append(b, `,"Currency":`...)
	b = jsonw.AppendString(b, in.Currency)
	b = append(b, `,"CardID":`...)
	b = jsonw.AppendString(b, in.CardID)
	b = append(b, `,"Description":`...)
	b = jsonw.AppendString(b, in.Description)
	b = append(b, `,"Metadata":`...)
	b = appendJSONStringMap(b, in.Metadata)
	b = append(b, '}')
	h := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], h[:16])
	return string(out[:])
}

// CreatePayment accepts a payment and schedules its processing; it answers at once with
// status processing. It is idempotent by id: the same request again returns the payment as it
// stands (created false); a different request with the same id fails with id_conflict.
func (s *Service) CreatePayment(ctx context.Context, in PaymentInput) (Payment, bool, error) {
	if !clientIDPattern.MatchString(in.ID) {
		return Payment{}, false, invalid("id", "id is required: 1 to 64 letters, digits, '_', '.' or '-'")
	}
	if !money.ValidAmount(in.Amount) {
		return Payment{}, false, invalid("amount", "amount must be a positive integer of minor units up to %d", money.MaxAmount)
	}
	if utf8.RuneCountInString(in.Description) > 500 {
		return Payment{}, false, invalid("description", "description is longer than 500 characters")
	}
	if len(in.Metadata) > 20 {
		return Payment{}, false, invalid("metadata", "at most 20 metadata keys")
	}
	for k, v := range in.Metadata {
		if k == "" || len(k) > 40 || len(v) > 500 {
			return Payment{}, false, invalid("metadata", "metadata keys are 1 to 40 bytes, values up to 500")
		}
	}
	hash := in.hash()
	m, err := s.GetMerchant(ctx, in.MerchantID)
	if err != nil {
		return Payment{}, false, err
	}
	if in.Currency != m.Currency {
		return Payment{}, false, apierror.Newf(apierror.CurrencyMismatch, "currency", "merchant %s settles in %s, not %s", m.ID, m.Currency, in.Currency)
	}
	card, err := s.GetCard(ctx, in.CardID)
	if err != nil {
		return Payment{}, false, err
	}
	now := s.cfg.Now().UTC()
	p := Payment{ID: in.ID, MerchantID: in.MerchantID, Amount: in.Amount, Currency: in.Currency, CardID: in.CardID,
		Description: in.Description, Metadata: in.Metadata, Status: StatusProcessing, Fee: fee(in.Amount, m.FeeBps),
		Attempts: []Attempt{}, Created: now, Updated: now, ReqHash: hash}
	if p.Metadata == nil {
		p.Metadata = map[string]string{}
	}
	u := ledger.Unit{
		Records: []ledger.RecordWrite{{Record: paymentRecord(&p)}},
		Timers:  []timer.Timer{{ID: "payment.process:" + p.ID, Handler: HandlerProcess, FireAt: now, Payload: []byte(p.ID)}},
	}
	if s.cfg.Screen != nil {
		verdict, err := s.cfg.Screen(ctx, p, card)
		switch {
		case err != nil:
			s.log.Warn("payment screening failed; accepting the payment", "payment_id", p.ID, "err", err)
		case verdict.Reject:
			p.Status, p.FailureCode = StatusFailed, FailureRiskRejected
			u = s.finalUnit(ctx, p, nil)
		}
	}
	_, err = s.cfg.Ledger.Commit(ctx, u)
	if isConflict(err) { // the id exists: a replay, or a different request
		cur, gerr := s.loadPayment(ctx, in.ID)
		if gerr != nil {
			return Payment{}, false, gerr
		}
		return s.replay(cur, hash)
	}
	if err != nil {
		return Payment{}, false, err
	}
	p.version = 1
	if p.Status.Final() {
		s.finalized(p)
	}
	if p.Status == StatusProcessing {
		f := p
		f.Metadata = maps.Clone(p.Metadata) // the caller owns the returned one
		s.fresh.put(f)
	}
	return p.public(), true, nil
}

func (s *Service) replay(p Payment, hash string) (Payment, bool, error) {
	if p.ReqHash != hash {
		return Payment{}, false, apierror.Newf(apierror.IDConflict, "id", "payment %q exists with a different request", p.ID)
	}
	return p.public(), false, nil
}

// fee is the merchant's fee on amount: amount·bps/10,000, rounded half up.
func fee(amount int64, bps int) int64 {
	if bps == 0 {
		return 0
	}
	// amount ≤ 2^53 and bps ≤ 1000 cannot overflow int64.
	return (amount*int64(bps) + 5000) / 10000
}

func (p Payment) public() Payment {
	p.ReqHash = ""
	return p
}

// GetPayment returns a payment.
func (s *Service) GetPayment(ctx context.Context, id string) (Payment, error) {
	p, err := s.loadPayment(ctx, id)
	return p.public(), err
}

func (s *Service) loadPayment(ctx context.Context, id string) (Payment, error) {
	r, err := s.cfg.Store.GetRecord(ctx, KindPayment, id)
	if err != nil {
		return Payment{}, notFound(err, apierror.PaymentNotFound, "id", "payment", id)
	}
	var p Payment
	if err := decodePayment(r.Data, &p); err != nil {
		return Payment{}, fmt.Errorf("payment: decode payment %s: %w", id, err)
	}
	p.version = r.Version
	return p, nil
}

// ListQuery filters payments.
type ListQuery struct {
	MerchantID    string
	Status        Status
	CreatedFrom   time.Time
	CreatedBefore time.Time
	StartingAfter string
	Limit         int
}

// ListPayments lists payments newest first. Filtering by merchant and status together
// filters the merchant's payments by status in memory, page by page.
func (s *Service) ListPayments(ctx context.Context, q ListQuery) ([]Payment, bool, error) {
	rq := ledger.RecordQuery{Kind: KindPayment, Owner: q.MerchantID, Status: string(q.Status), CreatedFrom: q.CreatedFrom,
		CreatedBefore: q.CreatedBefore, StartingAfter: q.StartingAfter, Limit: q.Limit}
	recs, more, err := s.cfg.Store.ListRecords(ctx, rq)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, false, apierror.Newf(apierror.PaymentNotFound, "starting_after", "no payment %q", q.StartingAfter)
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]Payment, 0, len(recs))
	for _, r := range recs {
		var p Payment
		if err := decodePayment(r.Data, &p); err != nil {
			return nil, false, fmt.Errorf("payment: decode payment %s: %w", r.ID, err)
		}
		out = append(out, p.public())
	}
	return out, more, nil
}

// ClosePayment closes a payment that has not been sent to any bank.
func (s *Service) ClosePayment(ctx context.Context, id string) (Payment, error) {
	for {
		p, err := s.loadPayment(ctx, id)
		if err != nil {
			return Payment{}, err
		}
		if p.Status == StatusClosed {
			return p.public(), nil
		}
		if p.Status != StatusProcessing || len(p.Attempts) > 0 {
			return Payment{}, apierror.Newf(apierror.PaymentNotClosable, "id", "payment %s is %s with %d bank attempts", p.ID, p.Status, len(p.Attempts))
		}
		p.Status = StatusClosed
		p.Updated = s.cfg.Now().UTC()
		_, err = s.cfg.Ledger.Commit(ctx, s.finalUnit(ctx, p, nil))
		if isConflict(err) {
			continue // processing started meanwhile: look again
		}
		if err != nil {
			return Payment{}, err
		}
		s.finalized(p)
		return p.public(), nil
	}
}

// event is the bus and webhook payload of a payment or refund event.
type event struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	Data    any       `json:"data"`
}

// EventPayload builds the JSON of an event about obj.
func eventPayload(id, typ string, at time.Time, obj any) []byte {
	b, _ := json.Marshal(event{ID: id, Type: typ, Created: at, Data: obj})
	return b
}

// finalUnit is the unit that writes p in its new (final or processing) state, with the ledger
// postings of a success and the event of a final state.
func (s *Service) finalUnit(ctx context.Context, p Payment, extra []ledger.TransferInput) ledger.Unit {
	u := ledger.Unit{Records: []ledger.RecordWrite{{Record: paymentRecord(&p), Expect: p.version}}}
	u.Transfers = extra
	var typ string
	switch p.Status {
	case StatusSucceeded:
		typ = EventPaymentSucceeded
	case StatusFailed:
		typ = EventPaymentFailed
	case StatusClosed:
		typ = EventPaymentClosed
	}
	if typ != "" {
		id := "evt_" + p.ID + "_" + strings.TrimPrefix(typ, "payment.")
		pub := p.public()
		u.Events = append(u.Events, ledger.ModuleEvent{Subject: typ, ID: id, Payload: appendPaymentEventJSON(make([]byte, 0, 1024), id, typ, p.Updated, &pub)})
		u = s.withWebhooks(ctx, u, p.MerchantID)
	}
	return u
}

// captureTransfers are the postings of a succeeded payment on channel: the channel owes us the
// amount, we owe the merchant the amount less the fee.
func captureTransfers(p Payment, channel string) []ledger.TransferInput {
	merchant := MerchantAccount(p.MerchantID, p.Currency)
	meta := map[string]string{"payment_id": p.ID} // shared: the ledger only reads it
	ts := make([]ledger.TransferInput, 1, 2)
	ts[0] = ledger.TransferInput{ID: "pay:" + p.ID + ":capture", DebitAccountID: ClearingAccount(channel, p.Currency),
		CreditAccountID: merchant, Amount: p.Amount, Currency: p.Currency, Code: "payment_capture", Metadata: meta}
	if p.Fee > 0 {
		ts = append(ts, ledger.TransferInput{ID: "pay:" + p.ID + ":fee", DebitAccountID: merchant,
			CreditAccountID: FeeAccount(p.Currency), Amount: p.Fee, Currency: p.Currency, Code: "payment_fee", Metadata: meta})
	}
	return ts
}
