// Package service is the credit (Baitiao) module's service: applications with risk-based
// pricing and activation routing, credit lines, purchases on pay later or installments,
// repayments, statements, the end-of-day batch and the daily reconciler (DESIGN.md C1–C8).
//
// Its state lives in versioned records that the ledger's writer commits in the same
// transaction as the postings that go with them (ledger.Unit), so a state change and its
// money movement are never seen one without the other. A write that meets a record changed
// at the same time (record_conflict) reads the state again and retries.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
)

// Limits.
const (
	// OpenLoansMax bounds the open loans (purchases not paid off) of one line, so that one
	// repayment, which may touch all of them, fits in one ledger unit.
	OpenLoansMax = 50
	// RetriesMax bounds the retries of a write that met a concurrent change.
	RetriesMax = 16
	// ListMax bounds a page of a list.
	ListMax = 100
)

// idPattern is the shape of client ids in the credit API: short enough that the ledger
// ids derived from them fit.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,64}$`)

// ValidID reports whether s is a valid credit id.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// Config configures the service. Zero values take the defaults.
type Config struct {
	// Products are the credit products (default credit.ExampleProducts()).
	Products []credit.Product
	// Primary is the product lines are opened on (default: the first product); Relaxed is
	// the product of the second routing pass ("" for none; default baitiao_relaxed when the
	// products have it).
	Primary, Relaxed string
	// RelaxedLimitPercent is the share of the priced limit a second-pass line gets
	// (default 50).
	RelaxedLimitPercent int64
	// Pricing maps segment and score to a limit and rate tier (default ExamplePricing()).
	Pricing []PriceRow
	// Channels are the funding channels applications are routed to (default
	// ExampleChannels()).
	Channels []Channel
	// Decider makes risk decisions (default RuleDecider{}).
	Decider Decider
	// ChannelTimeout bounds one channel's answer during routing (default 2 s).
	ChannelTimeout time.Duration
	// Now is the clock (default time.Now); Location is where business dates are reckoned
	// (default UTC).
	Now      func() time.Time
	Location *time.Location
	// EODDelay is how long after midnight the end-of-day batch of the day before starts
	// (default 30 minutes), leaving time for late repayments of the day to commit.
	EODDelay time.Duration
	// EODWorkers is how many units the batch commits at once (default 8).
	EODWorkers int
	Logger     *slog.Logger
	// Observer is told about the batch's progress (for metrics); nil for none.
	Observer Observer
}

// Observer receives the end-of-day batch's progress.
type Observer interface {
	EODProgress(p Progress)
}

// Service is the credit service.
type Service struct {
	eng      *ledger.Engine
	st       ledger.Store
	cfg      Config
	products map[string]*credit.Product
	known    sync.Map // ledger account ids known to exist

	eodMu  sync.Mutex
	eodRun map[credit.Date]*eodState
}

// New returns the service over the ledger engine and its store.
func New(eng *ledger.Engine, st ledger.Store, cfg Config) (*Service, error) {
	if cfg.Products == nil {
		cfg.Products = credit.ExampleProducts()
	}
	s := &Service{eng: eng, st: st, products: map[string]*credit.Product{}, eodRun: map[credit.Date]*eodState{}}
	for i := range cfg.Products {
		p := &cfg.Products[i]
		if err := p.Validate(); err != nil {
			return nil, err
		}
		s.products[p.ID] = p
	}
	if len(cfg.Products) == 0 {
		return nil, errors.New("credit: no products")
	}
	if cfg.Primary == "" {
		cfg.Primary = cfg.Products[0].ID
	}
	if cfg.Relaxed == "" && s.products["baitiao_relaxed"] != nil && cfg.Primary != "baitiao_relaxed" {
		cfg.Relaxed = "baitiao_relaxed"
	}
	for _, id := range []string{cfg.Primary, cfg.Relaxed} {
		if id != "" && s.products[id] == nil {
			return nil, fmt.Errorf("credit: product %q is not configured", id)
		}
	}
	if cfg.RelaxedLimitPercent <= 0 || cfg.RelaxedLimitPercent > 100 {
		cfg.RelaxedLimitPercent = 50
	}
	if cfg.Pricing == nil {
		cfg.Pricing = ExamplePricing()
	}
	if err := validatePricing(cfg.Pricing); err != nil {
		return nil, err
	}
	if cfg.Channels == nil {
		cfg.Channels = ExampleChannels()
	}
	if len(cfg.Channels) == 0 {
		return nil, errors.New("credit: no funding channels")
	}
	if cfg.Decider == nil {
		cfg.Decider = RuleDecider{}
	}
	if cfg.ChannelTimeout <= 0 {
		cfg.ChannelTimeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.EODDelay <= 0 {
		cfg.EODDelay = 30 * time.Minute
	}
	if cfg.EODWorkers <= 0 {
		cfg.EODWorkers = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s.cfg = cfg
	return s, nil
}

// Today is the current business date.
func (s *Service) Today() credit.Date { return dateOf(s.cfg.Now(), s.cfg.Location) }

// Product returns a configured product.
func (s *Service) Product(id string) (*credit.Product, *apierror.Error) {
	p := s.products[id]
	if p == nil {
		return nil, apierror.Newf(apierror.ProductNotFound, "product", "credit product %q is not configured", id)
	}
	return p, nil
}

// Products returns the configured products.
func (s *Service) Products() []credit.Product { return s.cfg.Products }

// ---- chart of accounts (docs/credit.md) ----

// Ledger account ids of the credit module's chart of accounts.
func ReceivableAccount(line string) string       { return "credit.receivable." + line }
func PenaltyReceivableAccount(cur string) string { return "credit.penalty_receivable." + cur }
func MerchantAccount(merchant string) string     { return "credit.merchant." + merchant }
func UnearnedAccount(currency string) string     { return "credit.unearned." + currency }
func InterestIncomeAccount(cur string) string    { return "credit.income.interest." + cur }
func FeeIncomeAccount(cur string) string         { return "credit.income.fee." + cur }
func PenaltyIncomeAccount(cur string) string     { return "credit.income.penalty." + cur }
func RepaymentClearingAccount(c string) string   { return "credit.repayments." + c }
func WriteOffAccount(cur string) string          { return "credit.writeoff." + cur }
func RecoveryIncomeAccount(cur string) string    { return "credit.income.recovery." + cur }

// currencyAccounts are the ids of a currency's accounts that the end-of-day batch posts to
// for every loan, made once (accountsOf) rather than concatenated for each.
type currencyAccounts struct{ unearned, interest, fee, penaltyRecv, penaltyIncome string }

// currencyAccountIDs maps a currency to its currencyAccounts; replaced whole (copy on write)
// when a currency is added, so that reading it takes no lock.
var currencyAccountIDs atomic.Pointer[map[string]*currencyAccounts]

// accountsOf returns the ids of cur's accounts (UnearnedAccount(cur) and so on).
func accountsOf(cur string) *currencyAccounts {
	for {
		old := currencyAccountIDs.Load()
		if old != nil {
			if a, ok := (*old)[cur]; ok {
				return a
			}
		}
		a := &currencyAccounts{UnearnedAccount(cur), InterestIncomeAccount(cur), FeeIncomeAccount(cur),
			PenaltyReceivableAccount(cur), PenaltyIncomeAccount(cur)}
		m := make(map[string]*currencyAccounts, 1)
		if old != nil {
			maps.Copy(m, *old)
		}
		m[cur] = a
		if currencyAccountIDs.CompareAndSwap(old, &m) {
			return a
		}
	}
}

// Account codes of the chart.
const (
	CodeReceivable = "credit.loan_receivable"
	CodePenaltyRec = "credit.penalty_receivable"
	CodeMerchant   = "credit.merchant_payable"
	CodeUnearned   = "credit.unearned_income"
	CodeInterest   = "credit.interest_income"
	CodeFee        = "credit.fee_income"
	CodePenalty    = "credit.penalty_income"
	CodeRepayClear = "credit.repayment_clearing"
	CodeWriteOff   = "credit.write_off_expense"
	CodeRecovery   = "credit.recovery_income"
)

func accountInput(id, currency, code string, flags ledger.Flags, meta map[string]string) ledger.AccountInput {
	return ledger.AccountInput{ID: id, Currency: currency, Code: code, Flags: flags, Metadata: meta}
}

// globalAccounts are the accounts of one currency every loan books to.
func globalAccounts(cur string) []ledger.AccountInput {
	return []ledger.AccountInput{
		accountInput(UnearnedAccount(cur), cur, CodeUnearned, ledger.Flags{}, nil),
		accountInput(InterestIncomeAccount(cur), cur, CodeInterest, ledger.Flags{}, nil),
		accountInput(FeeIncomeAccount(cur), cur, CodeFee, ledger.Flags{}, nil),
		accountInput(PenaltyIncomeAccount(cur), cur, CodePenalty, ledger.Flags{}, nil),
		// The penalties the batch charges, for every loan of the currency (Loan.PenaltyPooled):
		// an asset that can never go below zero.
		accountInput(PenaltyReceivableAccount(cur), cur, CodePenaltyRec, ledger.Flags{CreditsMustNotExceedDebits: true}, nil),
		accountInput(RepaymentClearingAccount(cur), cur, CodeRepayClear, ledger.Flags{}, nil),
		accountInput(WriteOffAccount(cur), cur, CodeWriteOff, ledger.Flags{}, nil),
		accountInput(RecoveryIncomeAccount(cur), cur, CodeRecovery, ledger.Flags{}, nil),
	}
}

// receivableInput is a line's loan receivable: an asset that can never go below zero.
func receivableInput(line, cur string) ledger.AccountInput {
	return accountInput(ReceivableAccount(line), cur, CodeReceivable,
		ledger.Flags{CreditsMustNotExceedDebits: true}, map[string]string{"credit_line": line})
}

// merchantInput is a merchant's payable: a liability that can never go below zero.
func merchantInput(merchant, cur string) ledger.AccountInput {
	return accountInput(MerchantAccount(merchant), cur, CodeMerchant,
		ledger.Flags{DebitsMustNotExceedCredits: true}, map[string]string{"merchant": merchant})
}

// ensureAccounts creates the ledger accounts that are not known to exist yet (creating an
// account is idempotent: the same id and body is a replay).
func (s *Service) ensureAccounts(ctx context.Context, ins ...ledger.AccountInput) error {
	var missing []ledger.AccountInput
	for _, in := range ins {
		if _, ok := s.known.Load(in.ID); !ok {
			missing = append(missing, in)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	res, err := s.eng.CreateAccounts(ctx, missing)
	if err != nil {
		return err
	}
	for i, r := range res {
		if r.Err != nil {
			return fmt.Errorf("credit: ledger account %s: %w", missing[i].ID, r.Err)
		}
		s.known.Store(missing[i].ID, true)
	}
	return nil
}

// EnsureChart creates the accounts every loan of the configured products books to.
func (s *Service) EnsureChart(ctx context.Context) error {
	seen := map[string]bool{}
	var ins []ledger.AccountInput
	for _, p := range s.cfg.Products {
		if !seen[p.Currency] {
			seen[p.Currency] = true
			ins = append(ins, globalAccounts(p.Currency)...)
		}
	}
	return s.ensureAccounts(ctx, ins...)
}

// ---- committing units ----

// errDone ends a retry loop whose build found nothing to write (an idempotent replay).
var errDone = errors.New("done")

// commit builds a unit from the current state and commits it, building again when a record
// changed at the same time (record_conflict), at most RetriesMax times. build returns
// errDone when there is nothing to write.
func (s *Service) commit(ctx context.Context, build func() (*ledger.Unit, error)) error {
	var last error
	for range RetriesMax {
		u, err := build()
		if errors.Is(err, errDone) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = s.eng.Commit(ctx, *u)
		if err == nil {
			return nil
		}
		if be, ok := errors.AsType[*ledger.BatchError](err); ok {
			// A posting the ledger refused: the service built a movement its rules forbid.
			return fmt.Errorf("credit: ledger refused posting %d of a unit: %w", be.Index, be.Err)
		}
		if e := apierror.As(err); e == nil || e.Code != apierror.RecordConflict {
			return err
		}
		last = err
	}
	return last
}

// getRecord returns a record or nil when it does not exist.
func (s *Service) getRecord(ctx context.Context, kind, id string) (*ledger.Record, error) {
	r, err := s.st.GetRecord(ctx, kind, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, nil
	}
	return r, err
}

// lineRecord builds the record of a line.
func lineRecord(l *Line) ledger.RecordWrite {
	status := LineActive
	if l.Frozen {
		status = LineFrozen
	}
	v := l.Version
	l.Version = v + 1
	return ledger.RecordWrite{Record: ledger.Record{Kind: KindLine, ID: l.ID, Owner: l.Customer, Status: status, Data: encode(l)}, Expect: v}
}

// loanRecord builds the record of a loan.
func loanRecord(l *Loan) ledger.RecordWrite {
	v := l.Version
	l.Version = v + 1
	return ledger.RecordWrite{Record: ledger.Record{Kind: KindLoan, ID: l.ID, Owner: l.Account, Status: l.Status, Data: encodeLoan(l)}, Expect: v}
}

// Line returns a credit line (a customer's credit account).
func (s *Service) Line(ctx context.Context, id string) (*Line, error) {
	r, err := s.getRecord(ctx, KindLine, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierror.Newf(apierror.CreditAccountNotFound, "id", "credit account %q does not exist", id)
	}
	var l Line
	if err := decode(r, &l, &l.Version); err != nil {
		return nil, err
	}
	return &l, nil
}

// Loan returns a purchase's loan.
func (s *Service) Loan(ctx context.Context, id string) (*Loan, error) {
	r, err := s.getRecord(ctx, KindLoan, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierror.Newf(apierror.PurchaseNotFound, "id", "purchase %q does not exist", id)
	}
	return decodeLoan(r)
}

// Loans returns the loans of an account: status "" for all, newest first, a page at a time.
func (s *Service) Loans(ctx context.Context, account, status, startingAfter string, limit int) ([]*Loan, bool, error) {
	if _, err := s.Line(ctx, account); err != nil {
		return nil, false, err
	}
	recs, more, err := s.listRecords(ctx, ledger.RecordQuery{Kind: KindLoan, Owner: account, Status: status, StartingAfter: startingAfter, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	out := make([]*Loan, len(recs))
	for i, r := range recs {
		if out[i], err = decodeLoan(r); err != nil {
			return nil, false, err
		}
	}
	return out, more, nil
}

// lookup returns the record of kind and id decoded, or the not-found error code names
// ("<what> "id" does not exist").
func lookup[T any](ctx context.Context, s *Service, kind, id string, code apierror.Code, what string) (*T, error) {
	r, err := s.getRecord(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierror.Newf(code, "id", "%s %q does not exist", what, id)
	}
	var v T
	var version int64
	return &v, decode(r, &v, &version)
}

// listOwned returns a page of the records of kind that owner owns, newest first, decoded;
// startingAfter must name one of them (what describes it in the error).
func listOwned[T any](ctx context.Context, s *Service, kind, owner, startingAfter string, limit int, what string) ([]*T, bool, error) {
	if startingAfter != "" {
		if r, err := s.getRecord(ctx, kind, startingAfter); err != nil {
			return nil, false, err
		} else if r == nil || r.Owner != owner {
			return nil, false, apierror.Newf(apierror.InvalidRequest, "starting_after", "starting_after must be %s %s", what, owner)
		}
	}
	recs, more, err := s.listRecords(ctx, ledger.RecordQuery{Kind: kind, Owner: owner, StartingAfter: startingAfter, Limit: limit})
	if err != nil {
		return nil, false, err
	}
	out := make([]*T, len(recs))
	for i, r := range recs {
		out[i] = new(T)
		var v int64
		if err := decode(r, out[i], &v); err != nil {
			return nil, false, err
		}
	}
	return out, more, nil
}

func (s *Service) listRecords(ctx context.Context, q ledger.RecordQuery) ([]*ledger.Record, bool, error) {
	if q.Limit <= 0 || q.Limit > ListMax {
		return nil, false, apierror.Newf(apierror.InvalidRequest, "limit", "limit must be between 1 and %d", ListMax)
	}
	recs, more, err := s.st.ListRecords(ctx, q)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, false, apierror.Newf(apierror.InvalidRequest, "starting_after", "starting_after names no %s", q.Kind)
	}
	return recs, more, err
}

// existing returns the record of kind and id decoded, if it exists and was made by the same
// request (hashOf(v) == hash); id_conflict if another request made it; nil if it does not
// exist. It is how every create is idempotent by id.
func existing[T any](ctx context.Context, s *Service, kind, id, hash string, hashOf func(*T) string) (*T, error) {
	r, err := s.getRecord(ctx, kind, id)
	if err != nil || r == nil {
		return nil, err
	}
	var v T
	var version int64
	if err := decode(r, &v, &version); err != nil {
		return nil, err
	}
	if hashOf(&v) != hash {
		return nil, apierror.Newf(apierror.IDConflict, "id", "%s %s exists with a different request", strings.TrimPrefix(kind, "credit."), id)
	}
	return &v, nil
}

// replayed ends a build (errDone) when ex, the object a create would make, exists already,
// storing it in *out: replayed(s.existingX(...))(&out).
func replayed[T any](ex *T, err error) func(out **T) error {
	return func(out **T) error {
		if err != nil {
			return err
		}
		if ex != nil {
			*out = ex
			return errDone
		}
		return nil
	}
}
