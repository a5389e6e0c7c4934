package payment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// Reconciliation (DESIGN.md P6): a channel's statement for a business day is matched against
// our payment attempts and refunds on that channel; what disagrees becomes a discrepancy with a
// stable id, kept in a report record ("payment.recon", "<channel>:<YYYY-MM-DD>") together with
// the history of the statement files imported for that day. Operators resolve discrepancies
// one by one: an adjustment posted to the ledger, or an acceptance with a note; each
// resolution is one ledger unit with the report's new version (docs/payments.md).

// KindRecon is the record kind of reconciliation reports; KindReconPage that of the pages
// holding their discrepancies ("<report id>/<n>", owned by the report).
const (
	KindRecon     = "payment.recon"
	KindReconPage = "payment.recon.page"
)

// Discrepancy types.
const (
	// DiscrepancyLong: the bank has a success we have no record of on this channel.
	DiscrepancyLong = "long"
	// DiscrepancyShort: we have a success on this channel that day that the statement lacks.
	DiscrepancyShort = "short"
	// DiscrepancyAmount: both sides succeeded with different amounts (or currencies).
	DiscrepancyAmount = "amount_mismatch"
	// DiscrepancyStatus: one side succeeded, the other failed or is still in flight.
	DiscrepancyStatus = "status_mismatch"
	// DiscrepancyStale: the latest statement agrees with our books on the item, but an
	// adjustment was posted for it after an earlier statement; adjusting reverses it.
	DiscrepancyStale = "stale_adjustment"
)

// Resolution actions.
const (
	// ResolveAdjust posts the difference between clearing and the merchant's payable (or the
	// suspense account when no merchant of ours is involved).
	ResolveAdjust = "adjust"
	// ResolveSuspense posts the difference between clearing and the recon suspense account.
	ResolveSuspense = "suspense"
	// ResolveAccept posts nothing; the note explains why.
	ResolveAccept = "accept"
	// resolveMatched is the system's resolution of a short item that another day's statement
	// turned out to carry.
	resolveMatched = "matched"
)

// Discrepancy and report states.
const (
	DiscrepancyOpen     = "open"
	DiscrepancyResolved = "resolved"
	ReportOpen          = "open"       // some discrepancy is open
	ReportReconciled    = "reconciled" // none is
)

// Limits of reconciliation. A report is a record with the summary, and its discrepancies
// fill up to ReconPagesMax page records (of up to reconPageBytes each, ordered by id) written
// in the same unit, so a report holds a bounded number of discrepancies; a statement that
// disagrees with our books on more items than that is almost certainly another channel's or
// another day's file. Answers carry the first ReconInlineDiscrepancies discrepancies; GET
// .../discrepancies pages through all of them.
const (
	ReconLinesMax            = 200_000
	ReconDiscrepanciesMax    = 2_000
	ReconPagesMax            = 48
	ReconInlineDiscrepancies = 50
	ReconRevisionsMax        = 20
	ReconCrossDayMax         = 100
	ReconNoteMax             = 200
	// ReconLookback is how long before the business day a payment or refund may have been
	// created and still be expected on that day's statement (its outcome may come late).
	ReconLookback = 72 * time.Hour
	// reconNeighbours is how many days on either side are consulted for items the bank put on
	// another day's statement than the day we recorded their success.
	reconNeighbours = 2
)

// SuspenseAccount is the recon suspense account of a currency: the counterpart of adjustments
// that bring a channel's clearing account in line with its statement when no merchant of ours
// is involved (or an operator parks the difference there while it is investigated).
func SuspenseAccount(currency string) string { return "pay:suspense:" + currency }

// ReconID is the id of the report of a channel's business day.
func ReconID(channel string, day time.Time) string {
	return channel + ":" + businessDay(day).Format(time.DateOnly)
}

func businessDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// Report is the reconciliation of one channel's business day.
type Report struct {
	ID       string `json:"id"`
	Channel  string `json:"channel"`
	Date     string `json:"date"`
	Status   string `json:"status"`   // open, reconciled
	Revision int    `json:"revision"` // the statement files that changed the report
	// Statement is the import behind the current revision, History those before it.
	Statement StatementImport `json:"statement"`
	// Discrepancies are every discrepancy, ordered by id — in answers of the API, the first
	// ReconInlineDiscrepancies of them (see Brief).
	Discrepancies []Discrepancy `json:"discrepancies"`
	// DiscrepancyCount and OpenCount count all the discrepancies and the open ones;
	// MoreDiscrepancies says Discrepancies holds only the first of them.
	DiscrepancyCount  int               `json:"discrepancy_count"`
	OpenCount         int               `json:"open_discrepancies"`
	MoreDiscrepancies bool              `json:"more_discrepancies"`
	CrossDay          []CrossDayMatch   `json:"cross_day"`
	History           []StatementImport `json:"history"`
	Created           time.Time         `json:"created"`
	Updated           time.Time         `json:"updated"`
	version           int64
	pages             []reconPage // the stored pages, as read (or written)
}

// Brief returns r with only its first ReconInlineDiscrepancies discrepancies: what the API
// answers, to keep the answer small however many there are.
func (r Report) Brief() Report {
	if len(r.Discrepancies) > ReconInlineDiscrepancies {
		r.Discrepancies = r.Discrepancies[:ReconInlineDiscrepancies:ReconInlineDiscrepancies]
		r.MoreDiscrepancies = true
	}
	return r
}

// StatementImport is one imported statement file and what matching it found.
type StatementImport struct {
	Revision   int          `json:"revision"`
	SHA256     string       `json:"sha256"` // of the statement's lines, canonically encoded
	Lines      int          `json:"lines"`
	ImportedAt time.Time    `json:"imported_at"`
	ImportedBy string       `json:"imported_by"`
	Summary    ReconSummary `json:"summary"`
}

// ReconSummary counts what matching a statement found.
type ReconSummary struct {
	Matched int `json:"matched"` // lines that agree with our books (succeeded or failed on both sides)
	// MatchedOtherDay: our successes of the day that another day's statement carries.
	MatchedOtherDay int `json:"matched_other_day"`
	// Ignored: failed lines of items we have no record of on this channel (no money moved).
	Ignored        int          `json:"ignored"`
	Long           int          `json:"long"`
	Short          int          `json:"short"`
	AmountMismatch int          `json:"amount_mismatch"`
	StatusMismatch int          `json:"status_mismatch"`
	Totals         []ReconTotal `json:"totals"`
}

// ReconTotal sums the successes on each side, per currency: the bank's are the statement's
// lines; ours are the payments and refunds we recorded as succeeded on the channel that day.
type ReconTotal struct {
	Currency     string `json:"currency"`
	BankPayments int64  `json:"bank_payments"`
	BankRefunds  int64  `json:"bank_refunds"`
	OurPayments  int64  `json:"our_payments"`
	OurRefunds   int64  `json:"our_refunds"`
}

// CrossDayMatch is an item on this day's statement whose success we recorded on another day.
type CrossDayMatch struct {
	Kind    string `json:"kind"`
	BankID  string `json:"bank_id"`
	OurDate string `json:"our_date"`
}

// Discrepancy is one item on which the statement and our books disagree. Its id is
// "<kind>:<bank id>" — stable across imports of the day's statements.
type Discrepancy struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Kind       string `json:"kind"`    // payment or refund
	BankID     string `json:"bank_id"` // the attempt's bank id (<payment id>.<n>) or the refund id
	PaymentID  string `json:"payment_id,omitempty"`
	MerchantID string `json:"merchant_id,omitempty"`
	Currency   string `json:"currency"`
	Bank       *Side  `json:"bank,omitempty"` // the statement's line; nil when it has none
	Ours       *Side  `json:"ours,omitempty"` // our record; nil when we have none on this channel
	// Delta is what the statement says the channel owes us for the item minus what our books
	// say, in minor units of Currency; Adjusted is what adjustments have posted for it so far.
	// An adjustment posts Delta − Adjusted.
	Delta       int64        `json:"delta"`
	Adjusted    int64        `json:"adjusted"`
	Status      string       `json:"status"` // open, resolved
	Superseded  bool         `json:"superseded,omitempty"`
	Resolutions []Resolution `json:"resolutions,omitempty"`
}

// Side is one side's view of an item.
type Side struct {
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Status     string    `json:"status"` // succeeded, failed, processing (ours only)
	ChannelRef string    `json:"channel_ref,omitempty"`
	At         time.Time `json:"at"`
}

// Resolution is the audit trail of one resolution: who, when, why, and what it posted.
type Resolution struct {
	Action     string    `json:"action"`
	Note       string    `json:"note"`
	Actor      string    `json:"actor"`
	At         time.Time `json:"at"`
	Revision   int       `json:"revision"`
	TransferID string    `json:"transfer_id,omitempty"`
	Debit      string    `json:"debit_account_id,omitempty"`
	Credit     string    `json:"credit_account_id,omitempty"`
	Amount     int64     `json:"amount,omitempty"`
}

// open reports whether d needs a resolution.
func (d *Discrepancy) open() bool { return d.Status == DiscrepancyOpen }

func reconLimit(format string, args ...any) error {
	return apierror.Newf(apierror.ReconLimitExceeded, "", format, args...)
}

func statementInvalid(format string, args ...any) error {
	return apierror.Newf(apierror.ReconStatementInvalid, "statement", format, args...)
}

// --- import --------------------------------------------------------------------------------

// Reconcile imports channel's statement for a business day (UTC) and returns the report. The
// same statement again returns the report unchanged; a different one makes a new revision,
// keeping the earlier ones in its history and the resolutions of its discrepancies.
func (s *Service) Reconcile(ctx context.Context, channel string, day time.Time, lines []bank.StatementLine) (Report, error) {
	r, _, err := s.ReconcileAs(ctx, "", channel, day, lines)
	return r, err
}

// ReconcileAs is Reconcile naming who imports the statement; it also reports whether the
// import made a new revision.
func (s *Service) ReconcileAs(ctx context.Context, actor, channel string, day time.Time, lines []bank.StatementLine) (Report, bool, error) {
	if _, ok := s.cfg.Channels.Get(channel); !ok {
		return Report{}, false, apierror.Newf(apierror.ChannelNotFound, "channel", "no channel %q", clipID(channel))
	}
	day = businessDay(day)
	if day.After(s.cfg.Now().UTC()) {
		return Report{}, false, invalid("date", "the business day %s has not begun", day.Format(time.DateOnly))
	}
	if err := validateStatement(lines); err != nil {
		return Report{}, false, err
	}
	if actor == "" {
		actor = "unknown"
	}
	sum := statementHash(lines)
	id := ReconID(channel, day)
	for range 8 {
		cur, err := s.loadReport(ctx, id)
		exists := err == nil
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return Report{}, false, err
		}
		if exists && cur.Statement.SHA256 == sum {
			return cur, false, nil // the same statement: the same report
		}
		m, err := s.match(ctx, channel, day, lines)
		if err != nil {
			return Report{}, false, err
		}
		now := s.cfg.Now().UTC()
		next := Report{ID: id, Channel: channel, Date: day.Format(time.DateOnly), Revision: 1, CrossDay: m.crossDay,
			History: []StatementImport{}, Created: now, Updated: now}
		if exists {
			next.pages = cur.pages
			next.Revision = cur.Revision + 1
			next.History = append(slices.Clone(cur.History), cur.Statement)
			next.Created = cur.Created
			if len(next.History) >= ReconRevisionsMax {
				return Report{}, false, reconLimit("%s has %d statement revisions, the most one report keeps", id, ReconRevisionsMax)
			}
		}
		next.Statement = StatementImport{Revision: next.Revision, SHA256: sum, Lines: len(lines), ImportedAt: now, ImportedBy: actor, Summary: m.summary}
		next.Discrepancies = carryOver(cur.Discrepancies, m.discrepancies, exists)
		if len(next.Discrepancies) > ReconDiscrepanciesMax {
			return Report{}, false, reconLimit("the statement disagrees with our books on %d items; a report holds at most %d (is it %s's statement of %s?)",
				len(next.Discrepancies), ReconDiscrepanciesMax, channel, next.Date)
		}
		if len(next.CrossDay) > ReconCrossDayMax {
			return Report{}, false, reconLimit("%d items of the statement succeeded on another day by our books; a report holds at most %d", len(next.CrossDay), ReconCrossDayMax)
		}
		next.Status = reportStatus(next.Discrepancies)
		u := ledger.Unit{}
		ws, err := reportWrites(&next, cur.version)
		if err != nil {
			return Report{}, false, err
		}
		u.Records = append(u.Records, ws...)
		for _, nb := range s.clearNeighbours(m.neighbours, next, now) {
			ws, err := reportWrites(&nb, nb.version)
			if err != nil {
				return Report{}, false, err
			}
			u.Records = append(u.Records, ws...)
		}
		if len(u.Records) > ledger.UnitMax {
			return Report{}, false, reconLimit("the import would write %d records (the report, its pages and those of neighbouring days it clears); a unit holds at most %d",
				len(u.Records), ledger.UnitMax)
		}
		if _, err := s.cfg.Ledger.Commit(ctx, u); isConflict(err) {
			continue // another import or a resolution changed a report meanwhile: match again
		} else if err != nil {
			return Report{}, false, err
		}
		next.version = cur.version + 1
		s.log.Info("statement reconciled", "report", id, "revision", next.Revision, "lines", len(lines),
			"discrepancies", len(next.Discrepancies), "open", countOpen(next.Discrepancies), "actor", actor)
		return next, true, nil
	}
	return Report{}, false, apierror.New(apierror.Overloaded, "")
}

func clipID(s string) string { return clip(s, 64) }

// clip cuts s to n bytes, marking the cut, for names and messages quoted in errors.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// validateStatement checks every line before anything is matched or written.
func validateStatement(lines []bank.StatementLine) error {
	if len(lines) > ReconLinesMax {
		return statementInvalid("the statement has %d lines; at most %d are taken", len(lines), ReconLinesMax)
	}
	seen := make(map[[2]string]int, len(lines))
	for i, l := range lines {
		n := i + 1
		switch {
		case l.Kind != "payment" && l.Kind != "refund":
			return statementInvalid("entry %d: kind %q is not payment or refund", n, clipID(l.Kind))
		case l.ID == "" || len(l.ID) > 128 || !utf8.ValidString(l.ID) || strings.ContainsFunc(l.ID, unicode.IsControl):
			return statementInvalid("entry %d: the id must be 1 to 128 printable characters", n)
		case !l.Status.Final():
			return statementInvalid("entry %d (%s %s): status %q is not succeeded or failed", n, l.Kind, l.ID, clipID(string(l.Status)))
		case !money.ValidAmount(l.Amount):
			return statementInvalid("entry %d (%s %s): amount %d is not a positive number of minor units", n, l.Kind, l.ID, l.Amount)
		case !money.ValidCode(l.Currency):
			return statementInvalid("entry %d (%s %s): unknown currency %q", n, l.Kind, l.ID, clipID(l.Currency))
		case len(l.ChannelRef) > 128 || !utf8.ValidString(l.ChannelRef):
			return statementInvalid("entry %d (%s %s): the channel reference is longer than 128 bytes", n, l.Kind, l.ID)
		case l.At.IsZero():
			return statementInvalid("entry %d (%s %s): no time", n, l.Kind, l.ID)
		}
		k := [2]string{l.Kind, l.ID}
		if first, dup := seen[k]; dup {
			return statementInvalid("entry %d repeats %s %s of entry %d", n, l.Kind, l.ID, first)
		}
		seen[k] = n
	}
	return nil
}

// statementHash fingerprints a statement by its lines (not its bytes: the same statement in
// another encoding is the same statement).
func statementHash(lines []bank.StatementLine) string {
	h := sha256.New()
	for _, l := range lines {
		fmt.Fprintf(h, "%s\x1f%s\x1f%s\x1f%d\x1f%s\x1f%s\x1f%s\n", l.Kind, l.ID, l.ChannelRef, l.Amount, l.Currency, l.Status, l.At.UTC().Format(time.RFC3339Nano))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ourItem is our record of one statement item.
type ourItem struct {
	found      bool
	channel    string
	paymentID  string
	merchantID string
	status     string // succeeded, failed, processing
	amount     int64
	currency   string
	at         time.Time // when it succeeded, by our clock
}

func (o ourItem) side() *Side {
	return &Side{Amount: o.amount, Currency: o.currency, Status: o.status, At: o.at}
}

func lineSide(l bank.StatementLine) *Side {
	return &Side{Amount: l.Amount, Currency: l.Currency, Status: string(l.Status), ChannelRef: l.ChannelRef, At: l.At.UTC()}
}

// matching is what matching a statement found.
type matching struct {
	summary       ReconSummary
	discrepancies []Discrepancy
	crossDay      []CrossDayMatch
	neighbours    []Report // reports of nearby days, for items this statement carries
}

func (s *Service) match(ctx context.Context, channel string, day time.Time, lines []bank.StatementLine) (matching, error) {
	var m matching
	ours, err := s.lookupLines(ctx, lines)
	if err != nil {
		return m, err
	}
	totals := map[string]*ReconTotal{}
	total := func(cur string) *ReconTotal {
		if totals[cur] == nil {
			totals[cur] = &ReconTotal{Currency: cur}
		}
		return totals[cur]
	}
	onStatement := make(map[[2]string]bool, len(lines))
	end := day.AddDate(0, 0, 1)
	for i, l := range lines {
		onStatement[[2]string{l.Kind, l.ID}] = true
		if l.Status == bank.Succeeded {
			if l.Kind == "payment" {
				total(l.Currency).BankPayments += l.Amount
			} else {
				total(l.Currency).BankRefunds += l.Amount
			}
		}
		o := ours[i]
		if !o.found || o.channel != channel {
			if l.Status == bank.Succeeded {
				m.discrepancies = append(m.discrepancies, newDiscrepancy(DiscrepancyLong, l.Kind, l.ID, l, ourItem{}))
				m.summary.Long++
			} else {
				m.summary.Ignored++
			}
			continue
		}
		if o.status == string(StatusSucceeded) && (o.at.Before(day) || !o.at.Before(end)) {
			m.crossDay = append(m.crossDay, CrossDayMatch{Kind: l.Kind, BankID: l.ID, OurDate: o.at.UTC().Format(time.DateOnly)})
		}
		typ := ""
		switch {
		case l.Status == bank.Succeeded && o.status == string(StatusSucceeded):
			if l.Amount != o.amount || l.Currency != o.currency {
				typ = DiscrepancyAmount
				m.summary.AmountMismatch++
			}
		case l.Status == bank.Failed && o.status == string(StatusFailed):
		default:
			typ = DiscrepancyStatus
			m.summary.StatusMismatch++
		}
		if typ == "" {
			m.summary.Matched++
			continue
		}
		m.discrepancies = append(m.discrepancies, newDiscrepancy(typ, l.Kind, l.ID, l, o))
	}

	// Our successes of the day on the channel that the statement lacks.
	m.neighbours, err = s.neighbourReports(ctx, channel, day)
	if err != nil {
		return m, err
	}
	elsewhere := map[[2]string]bool{}
	date := day.Format(time.DateOnly)
	for _, nb := range m.neighbours {
		for _, c := range nb.CrossDay {
			if c.OurDate == date {
				elsewhere[[2]string{c.Kind, c.BankID}] = true
			}
		}
	}
	err = s.ourSuccesses(ctx, channel, day, func(kind, bankID string, o ourItem) {
		if kind == "payment" {
			total(o.currency).OurPayments += o.amount
		} else {
			total(o.currency).OurRefunds += o.amount
		}
		k := [2]string{kind, bankID}
		switch {
		case onStatement[k]:
		case elsewhere[k]:
			m.summary.MatchedOtherDay++
		default:
			m.discrepancies = append(m.discrepancies, newDiscrepancy(DiscrepancyShort, kind, bankID, bank.StatementLine{}, o))
			m.summary.Short++
		}
	})
	if err != nil {
		return m, err
	}
	// Refund discrepancies name the merchant of their payment (adjustments need it).
	for i := range m.discrepancies {
		d := &m.discrepancies[i]
		if d.Kind == "refund" && d.PaymentID != "" && d.MerchantID == "" {
			p, err := s.loadPayment(ctx, d.PaymentID)
			if err != nil {
				return m, err
			}
			d.MerchantID = p.MerchantID
		}
	}
	m.summary.Totals = []ReconTotal{}
	for _, cur := range sortedKeys(totals) {
		m.summary.Totals = append(m.summary.Totals, *totals[cur])
	}
	return m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// newDiscrepancy describes an item on which line (zero if the statement lacks it) and o (zero
// if we have no record on the channel) disagree.
func newDiscrepancy(typ, kind, bankID string, l bank.StatementLine, o ourItem) Discrepancy {
	d := Discrepancy{ID: kind + ":" + bankID, Type: typ, Kind: kind, BankID: bankID, Status: DiscrepancyOpen}
	var bankEff, ourEff int64
	if l.ID != "" {
		d.Bank = lineSide(l)
		d.Currency = l.Currency
		if l.Status == bank.Succeeded {
			bankEff = l.Amount
		}
	}
	if o.found {
		d.Ours = o.side()
		d.Currency = o.currency
		d.PaymentID, d.MerchantID = o.paymentID, o.merchantID
		if o.status == string(StatusSucceeded) {
			ourEff = o.amount
		}
	}
	if d.Bank != nil && d.Ours != nil && d.Bank.Currency != d.Ours.Currency {
		return d // no delta across currencies: only acceptance resolves it
	}
	// A payment makes the bank owe us its amount; a refund makes it owe us less.
	d.Delta = bankEff - ourEff
	if kind == "refund" {
		d.Delta = -d.Delta
	}
	return d
}

// lookupLines finds our record of every line, reading records in chunks.
func (s *Service) lookupLines(ctx context.Context, lines []bank.StatementLine) ([]ourItem, error) {
	const chunk = 500
	out := make([]ourItem, len(lines))
	for lo := 0; lo < len(lines); lo += chunk {
		hi := min(lo+chunk, len(lines))
		keys := make([]ledger.RecordKey, 0, hi-lo)
		for _, l := range lines[lo:hi] {
			if l.Kind == "payment" {
				if pid, _, ok := splitBankID(l.ID); ok {
					keys = append(keys, ledger.RecordKey{Kind: KindPayment, ID: pid})
				}
			} else {
				keys = append(keys, ledger.RecordKey{Kind: KindRefund, ID: l.ID})
			}
		}
		recs, err := s.cfg.Store.LoadRecords(ctx, keys)
		if err != nil {
			return nil, err
		}
		byKey := make(map[ledger.RecordKey]*ledger.Record, len(recs))
		for _, r := range recs {
			byKey[r.Key()] = r
		}
		for i := lo; i < hi; i++ {
			l := lines[i]
			if l.Kind == "payment" {
				pid, _, ok := splitBankID(l.ID)
				if r := byKey[ledger.RecordKey{Kind: KindPayment, ID: pid}]; ok && r != nil {
					var p Payment
					if err := decodePayment(r.Data, &p); err != nil {
						return nil, fmt.Errorf("payment: decode payment %s: %w", pid, err)
					}
					out[i] = paymentItem(p, l.ID)
				}
				continue
			}
			if r := byKey[ledger.RecordKey{Kind: KindRefund, ID: l.ID}]; r != nil {
				var rr refundRecord
				if err := json.Unmarshal(r.Data, &rr); err != nil {
					return nil, fmt.Errorf("payment: decode refund %s: %w", l.ID, err)
				}
				out[i] = refundItem(rr.Refund)
			}
		}
	}
	return out, nil
}

// paymentItem is our record of attempt bankID of p (not found if p has no such attempt).
func paymentItem(p Payment, bankID string) ourItem {
	for _, a := range p.Attempts {
		if a.BankID != bankID {
			continue
		}
		o := ourItem{found: true, channel: a.Channel, paymentID: p.ID, merchantID: p.MerchantID, amount: p.Amount, currency: p.Currency, status: "processing"}
		switch a.Status {
		case attemptSucceeded:
			o.status, o.at = string(StatusSucceeded), a.At.UTC()
		case attemptFailed:
			o.status, o.at = string(StatusFailed), a.At.UTC()
		}
		return o
	}
	return ourItem{}
}

func refundItem(r Refund) ourItem {
	o := ourItem{found: true, channel: r.Channel, paymentID: r.PaymentID, amount: r.Amount, currency: r.Currency, status: string(r.Status)}
	if r.Status.Final() {
		o.at = r.Updated.UTC()
	}
	return o
}

// ourSuccesses calls f for every payment attempt and refund that succeeded on channel during
// day by our books, reading the records created within ReconLookback before it page by page.
func (s *Service) ourSuccesses(ctx context.Context, channel string, day time.Time, f func(kind, bankID string, o ourItem)) error {
	end := day.AddDate(0, 0, 1)
	inDay := func(t time.Time) bool { return !t.Before(day) && t.Before(end) }
	for _, kind := range []string{KindPayment, KindRefund} {
		q := ledger.RecordQuery{Kind: kind, Status: string(StatusSucceeded), CreatedFrom: day.Add(-ReconLookback), CreatedBefore: end, Limit: 500}
		for {
			recs, more, err := s.cfg.Store.ListRecords(ctx, q)
			if err != nil {
				return err
			}
			for _, r := range recs {
				if kind == KindPayment {
					var p Payment
					if err := decodePayment(r.Data, &p); err != nil {
						return fmt.Errorf("payment: decode payment %s: %w", r.ID, err)
					}
					a := succeededAttempt(p)
					if a.Channel == channel && inDay(a.At) {
						f("payment", a.BankID, paymentItem(p, a.BankID))
					}
					continue
				}
				var rr refundRecord
				if err := json.Unmarshal(r.Data, &rr); err != nil {
					return fmt.Errorf("payment: decode refund %s: %w", r.ID, err)
				}
				if rr.Channel == channel && inDay(rr.Updated) {
					f("refund", rr.ID, refundItem(rr.Refund))
				}
			}
			if !more || len(recs) == 0 {
				break
			}
			q.StartingAfter = recs[len(recs)-1].ID
		}
	}
	return nil
}

// neighbourReports loads the reports of the days around day that exist.
func (s *Service) neighbourReports(ctx context.Context, channel string, day time.Time) ([]Report, error) {
	var out []Report
	for d := -reconNeighbours; d <= reconNeighbours; d++ {
		if d == 0 {
			continue
		}
		r, err := s.loadReport(ctx, ReconID(channel, day.AddDate(0, 0, d)))
		if errors.Is(err, ledger.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// clearNeighbours returns the neighbouring reports that change because next's statement
// carries items they list as short: such an item is resolved as matched, or — if an adjustment
// was posted for it — becomes a stale adjustment to reverse.
func (s *Service) clearNeighbours(neighbours []Report, next Report, now time.Time) []Report {
	var out []Report
	for _, nb := range neighbours {
		changed := false
		nb.Discrepancies = slices.Clone(nb.Discrepancies)
		for _, c := range next.CrossDay {
			if c.OurDate != nb.Date {
				continue
			}
			for i := range nb.Discrepancies {
				d := &nb.Discrepancies[i]
				if d.ID != c.Kind+":"+c.BankID || d.Type != DiscrepancyShort || d.Superseded {
					continue
				}
				switch {
				case d.Adjusted != 0:
					makeStale(d)
				case d.open():
					d.Status = DiscrepancyResolved
					d.Resolutions = append(slices.Clone(d.Resolutions), Resolution{Action: resolveMatched,
						Note: "on the statement of " + next.Date, Actor: "system", At: now, Revision: nb.Revision})
				default:
					continue // accepted already
				}
				changed = true
			}
		}
		if changed {
			nb.Status = reportStatus(nb.Discrepancies)
			nb.Updated = now
			out = append(out, nb)
		}
	}
	return out
}

// carryOver merges the discrepancies of a new revision with the current ones: an item keeps
// its id, the adjustments posted for it and its audit trail; it stays resolved if its facts
// did not change. Items the new statement no longer disputes are kept if they have a
// resolution — reopened as stale adjustments when an adjustment stands for them.
func carryOver(cur, next []Discrepancy, exists bool) []Discrepancy {
	if !exists {
		sortDiscrepancies(next)
		return next
	}
	old := make(map[string]Discrepancy, len(cur))
	for _, d := range cur {
		old[d.ID] = d
	}
	out := make([]Discrepancy, 0, len(next)+len(cur))
	seen := map[string]bool{}
	for _, d := range next {
		seen[d.ID] = true
		if o, ok := old[d.ID]; ok {
			d.Adjusted, d.Resolutions = o.Adjusted, o.Resolutions
			if o.Status == DiscrepancyResolved && sameFacts(o, d) {
				d.Status = DiscrepancyResolved
			}
		}
		out = append(out, d)
	}
	for _, o := range cur {
		if seen[o.ID] || len(o.Resolutions) == 0 {
			continue
		}
		switch {
		case o.Adjusted == 0:
			o.Superseded = true // nothing stands for it: kept for its audit trail
		case o.Type == DiscrepancyStale && !o.open():
			// An adjustment kept on purpose (accepted): it stays so.
		default:
			makeStale(&o)
		}
		out = append(out, o)
	}
	sortDiscrepancies(out)
	return out
}

// makeStale turns d into a stale adjustment: the statement and our books now agree on the item
// (or neither has it), so what was posted for it is to be reversed.
func makeStale(d *Discrepancy) {
	d.Type, d.Delta, d.Status, d.Superseded, d.Bank, d.Ours = DiscrepancyStale, 0, DiscrepancyOpen, false, nil, nil
}

func sameFacts(a, b Discrepancy) bool {
	return a.Type == b.Type && a.Currency == b.Currency && a.Delta == b.Delta && sameSide(a.Bank, b.Bank) && sameSide(a.Ours, b.Ours)
}

func sameSide(a, b *Side) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Amount == b.Amount && a.Currency == b.Currency && a.Status == b.Status
}

func sortDiscrepancies(ds []Discrepancy) {
	slices.SortFunc(ds, func(a, b Discrepancy) int { return strings.Compare(a.ID, b.ID) })
}

func countOpen(ds []Discrepancy) int {
	n := 0
	for i := range ds {
		if ds[i].open() {
			n++
		}
	}
	return n
}

func reportStatus(ds []Discrepancy) string {
	if countOpen(ds) > 0 {
		return ReportOpen
	}
	return ReportReconciled
}

// reconPageBytes bounds the data of one page of discrepancies.
const reconPageBytes = 48 << 10

// storedReport is a report as stored: without its discrepancies, which are in pages.
type storedReport struct {
	Report
	// Pages describe the page records, in order; those past the last in use have N 0 (the
	// record stays, with its version, for the next time the report needs that many).
	// Reports stored before pages have none and their discrepancies inline.
	Pages []pageRef `json:"pages,omitempty"`
}

// pageRef describes a page record of discrepancies: the id of its first, how many it holds,
// and its version when the report was written.
type pageRef struct {
	First   string `json:"first"`
	N       int    `json:"n"`
	Version int64  `json:"version"`
}

// reconPage is a page as read or written: its description and data.
type reconPage struct {
	ref  pageRef
	data []byte
}

func pageID(reportID string, n int) string { return reportID + "/" + strconv.Itoa(n) }

// reportWrites returns the record writes of r replacing version expect: the report and the
// pages of its discrepancies that changed from r.pages. It sets r's counts and r.pages to the
// pages written. It refuses a report larger than its records may be.
func reportWrites(r *Report, expect int64) ([]ledger.RecordWrite, error) {
	r.DiscrepancyCount, r.OpenCount, r.MoreDiscrepancies = len(r.Discrepancies), countOpen(r.Discrepancies), false
	type packed struct {
		first string
		n     int
		data  []byte
	}
	var pages []packed
	var cur packed
	for i := range r.Discrepancies {
		b, err := json.Marshal(&r.Discrepancies[i])
		if err != nil {
			return nil, err
		}
		if cur.n > 0 && len(cur.data)+len(b)+2 > reconPageBytes {
			pages = append(pages, cur)
			cur = packed{}
		}
		if cur.n == 0 {
			cur = packed{first: r.Discrepancies[i].ID, data: append(make([]byte, 0, reconPageBytes), '[')}
		} else {
			cur.data = append(cur.data, ',')
		}
		cur.data = append(cur.data, b...)
		cur.n++
	}
	if cur.n > 0 {
		pages = append(pages, cur)
	}
	if len(pages) > ReconPagesMax {
		return nil, reconLimit("the discrepancies of %s would take %d pages; a report holds at most %d", r.ID, len(pages), ReconPagesMax)
	}
	var ws []ledger.RecordWrite
	next := make([]reconPage, max(len(pages), len(r.pages)))
	for i := range next {
		var old reconPage
		if i < len(r.pages) {
			old = r.pages[i]
		}
		if i >= len(pages) {
			next[i] = reconPage{ref: pageRef{Version: old.ref.Version}} // no longer in use
			continue
		}
		p := pages[i]
		p.data = append(p.data, ']')
		next[i] = reconPage{ref: pageRef{First: p.first, N: p.n, Version: old.ref.Version}, data: p.data}
		if old.ref.N == 0 || !bytes.Equal(old.data, p.data) {
			ws = append(ws, ledger.RecordWrite{Record: ledger.Record{Kind: KindReconPage, ID: pageID(r.ID, i), Owner: r.ID, Data: p.data}, Expect: old.ref.Version})
			next[i].ref.Version++
		}
	}
	sr := storedReport{Report: *r, Pages: make([]pageRef, len(next))}
	sr.Discrepancies = nil
	for i, p := range next {
		sr.Pages[i] = p.ref
	}
	b, err := json.Marshal(sr)
	if err != nil {
		return nil, err
	}
	if len(b) > ledger.RecordDataMax {
		return nil, reconLimit("the report %s would take %d bytes; a report holds at most %d", r.ID, len(b), ledger.RecordDataMax)
	}
	r.pages = next
	w := ledger.RecordWrite{Record: ledger.Record{Kind: KindRecon, ID: r.ID, Owner: r.Channel, Status: r.Status, Data: b}, Expect: expect}
	return append([]ledger.RecordWrite{w}, ws...), nil
}

// loadStored reads a report's record (without its pages).
func (s *Service) loadStored(ctx context.Context, id string) (storedReport, int64, error) {
	var sr storedReport
	v, err := s.getRecord(ctx, KindRecon, id, &sr)
	return sr, v, err
}

// errPageMoved says a page changed after its report was read: read again.
var errPageMoved = errors.New("payment: recon page changed while reading")

// readPage reads page n of report id, which must have the version of ref.
func (s *Service) readPage(ctx context.Context, id string, n int, ref pageRef) ([]Discrepancy, []byte, error) {
	rec, err := s.cfg.Store.GetRecord(ctx, KindReconPage, pageID(id, n))
	if err != nil {
		return nil, nil, fmt.Errorf("payment: page %d of report %s: %w", n, id, err)
	}
	if rec.Version != ref.Version {
		return nil, nil, errPageMoved
	}
	var ds []Discrepancy
	if err := json.Unmarshal(rec.Data, &ds); err != nil {
		return nil, nil, fmt.Errorf("payment: decode page %d of report %s: %w", n, id, err)
	}
	return ds, rec.Data, nil
}

// loadReport reads a report with all its discrepancies, as of one version.
func (s *Service) loadReport(ctx context.Context, id string) (Report, error) {
	for range 8 {
		sr, v, err := s.loadStored(ctx, id)
		if err != nil {
			return Report{}, err
		}
		r := sr.Report
		r.version = v
		if r.Discrepancies == nil {
			r.Discrepancies = []Discrepancy{}
		}
		for i, ref := range sr.Pages {
			p := reconPage{ref: ref}
			if ref.N > 0 {
				var ds []Discrepancy
				ds, p.data, err = s.readPage(ctx, id, i, ref)
				if err != nil {
					break
				}
				r.Discrepancies = append(r.Discrepancies, ds...)
			}
			r.pages = append(r.pages, p)
		}
		if errors.Is(err, errPageMoved) {
			continue // written meanwhile
		}
		if err != nil {
			return Report{}, err
		}
		r.DiscrepancyCount, r.OpenCount, r.MoreDiscrepancies = len(r.Discrepancies), countOpen(r.Discrepancies), false
		return r, nil
	}
	return Report{}, apierror.New(apierror.Overloaded, "")
}

// DiscrepancyQuery pages through a report's discrepancies, in the order of their ids.
type DiscrepancyQuery struct {
	Status        string // open or resolved; "" for both
	StartingAfter string // the id of the last discrepancy of the previous page
	Limit         int
}

// ListDiscrepancies returns a page of the discrepancies of a channel's business day, ordered
// by id, and whether more follow. It reads only the pages of the report it needs.
func (s *Service) ListDiscrepancies(ctx context.Context, channel string, day time.Time, q DiscrepancyQuery) ([]Discrepancy, bool, error) {
	switch q.Status {
	case "", DiscrepancyOpen, DiscrepancyResolved:
	default:
		return nil, false, invalid("status", "status must be open or resolved")
	}
	if q.Limit <= 0 {
		q.Limit = 10
	}
	if _, ok := s.cfg.Channels.Get(channel); !ok {
		return nil, false, apierror.Newf(apierror.ChannelNotFound, "channel", "no channel %q", clipID(channel))
	}
	id := ReconID(channel, day)
	for range 8 {
		sr, _, err := s.loadStored(ctx, id)
		if errors.Is(err, ledger.ErrNotFound) {
			return nil, false, apierror.Newf(apierror.ReconReportNotFound, "date", "no statement of %s has been imported", id)
		}
		if err != nil {
			return nil, false, err
		}
		out := make([]Discrepancy, 0, q.Limit+1)
		found := q.StartingAfter == ""
		// take adds ds's items after the cursor to out; it reports whether out is full.
		take := func(ds []Discrepancy) (bool, error) {
			for _, d := range ds {
				if !found {
					if d.ID > q.StartingAfter {
						break
					}
					found = d.ID == q.StartingAfter
					continue
				}
				if q.Status == "" || d.Status == q.Status {
					out = append(out, d)
				}
				if len(out) > q.Limit {
					return true, nil
				}
			}
			if !found {
				return false, apierror.Newf(apierror.ReconDiscrepancyNotFound, "starting_after", "report %s has no discrepancy %q", id, clipID(q.StartingAfter))
			}
			return false, nil
		}
		// The first page to read is the last one starting at or before the cursor.
		start := 0
		if q.StartingAfter != "" {
			for i, ref := range sr.Pages {
				if ref.N > 0 && ref.First <= q.StartingAfter {
					start = i
				}
			}
		}
		if len(sr.Pages) == 0 { // stored before pages: inline
			_, err = take(sr.Discrepancies)
		}
		for i := start; i < len(sr.Pages) && sr.Pages[i].N > 0; i++ {
			var ds []Discrepancy
			if ds, _, err = s.readPage(ctx, id, i, sr.Pages[i]); err != nil {
				break
			}
			var full bool
			if full, err = take(ds); full || err != nil {
				break
			}
		}
		if errors.Is(err, errPageMoved) {
			continue
		}
		if err == nil && !found {
			err = apierror.Newf(apierror.ReconDiscrepancyNotFound, "starting_after", "report %s has no discrepancy %q", id, clipID(q.StartingAfter))
		}
		if err != nil {
			return nil, false, err
		}
		more := len(out) > q.Limit
		return out[:min(len(out), q.Limit)], more, nil
	}
	return nil, false, apierror.New(apierror.Overloaded, "")
}

// GetReconReport returns the report of a channel's business day.
func (s *Service) GetReconReport(ctx context.Context, channel string, day time.Time) (Report, error) {
	if _, ok := s.cfg.Channels.Get(channel); !ok {
		return Report{}, apierror.Newf(apierror.ChannelNotFound, "channel", "no channel %q", clipID(channel))
	}
	id := ReconID(channel, day)
	r, err := s.loadReport(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return Report{}, apierror.Newf(apierror.ReconReportNotFound, "date", "no statement of %s has been imported", id)
	}
	return r, err
}

// --- resolution ----------------------------------------------------------------------------

// ResolveDiscrepancy resolves an open discrepancy of a report: "adjust" posts Delta − Adjusted
// between the channel's clearing account and the merchant's payable (the suspense account for
// items no merchant of ours is party to), "suspense" posts it against the suspense account,
// "accept" posts nothing. The posting and the report's new version, with the resolution's
// audit trail (action, note, actor, time, transfer), commit as one unit. A discrepancy
// resolves once; the same resolution sent again returns the report as it stands.
func (s *Service) ResolveDiscrepancy(ctx context.Context, reportID, discrepancyID, action, note, actor string) (Report, error) {
	switch action {
	case ResolveAdjust, ResolveSuspense, ResolveAccept:
	default:
		return Report{}, invalid("action", "action must be adjust, suspense or accept")
	}
	note = strings.TrimSpace(note)
	if note == "" || utf8.RuneCountInString(note) > ReconNoteMax || !utf8.ValidString(note) {
		return Report{}, invalid("note", "note must be 1 to %d characters: say why", ReconNoteMax)
	}
	if actor == "" {
		actor = "unknown"
	}
	for range 8 {
		r, err := s.loadReport(ctx, reportID)
		if errors.Is(err, ledger.ErrNotFound) {
			return Report{}, apierror.Newf(apierror.ReconReportNotFound, "id", "no report %q", clipID(reportID))
		}
		if err != nil {
			return Report{}, err
		}
		i := slices.IndexFunc(r.Discrepancies, func(d Discrepancy) bool { return d.ID == discrepancyID })
		if i < 0 {
			return Report{}, apierror.Newf(apierror.ReconDiscrepancyNotFound, "discrepancy_id", "report %s has no discrepancy %q", r.ID, clipID(discrepancyID))
		}
		r.Discrepancies = slices.Clone(r.Discrepancies)
		d := &r.Discrepancies[i]
		if !d.open() {
			if n := len(d.Resolutions); n > 0 {
				last := d.Resolutions[n-1]
				if last.Action == action && last.Note == note && last.Actor == actor {
					return r, nil // the same request again (its answer was lost)
				}
			}
			return Report{}, apierror.Newf(apierror.ReconAlreadyResolved, "discrepancy_id", "discrepancy %s of %s is resolved already", d.ID, r.ID)
		}
		now := s.cfg.Now().UTC()
		res := Resolution{Action: action, Note: note, Actor: actor, At: now, Revision: r.Revision}
		var u ledger.Unit
		if action != ResolveAccept {
			t, err := s.adjustment(ctx, r, d, action)
			if err != nil {
				return Report{}, err
			}
			u.Transfers = []ledger.TransferInput{t}
			res.TransferID, res.Debit, res.Credit, res.Amount = t.ID, t.DebitAccountID, t.CreditAccountID, t.Amount
			if t.DebitAccountID == ClearingAccount(r.Channel, d.Currency) {
				d.Adjusted += t.Amount
			} else {
				d.Adjusted -= t.Amount
			}
		}
		d.Resolutions = append(slices.Clone(d.Resolutions), res)
		d.Status = DiscrepancyResolved
		r.Status = reportStatus(r.Discrepancies)
		r.Updated = now
		ws, err := reportWrites(&r, r.version)
		if err != nil {
			return Report{}, err
		}
		u.Records = ws
		_, err = s.cfg.Ledger.Commit(ctx, u)
		if isConflict(err) {
			continue
		}
		if be, ok := errors.AsType[*ledger.BatchError](err); ok {
			return Report{}, be.Err // the posting broke a ledger rule (exceeds_credits, ...)
		}
		if err != nil {
			return Report{}, err
		}
		r.version++
		s.log.Info("recon discrepancy resolved", "report", r.ID, "discrepancy", d.ID, "action", action, "amount", res.Amount, "actor", actor)
		return r, nil
	}
	return Report{}, apierror.New(apierror.Overloaded, "")
}

// adjustment is the transfer that resolves d by action.
func (s *Service) adjustment(ctx context.Context, r Report, d *Discrepancy, action string) (ledger.TransferInput, error) {
	notAdjustable := func(format string, args ...any) error {
		return apierror.Newf(apierror.ReconNotAdjustable, "action", format, args...)
	}
	switch {
	case d.Bank != nil && d.Ours != nil && d.Bank.Currency != d.Ours.Currency:
		return ledger.TransferInput{}, notAdjustable("the statement says %s and our books %s: nothing can be posted across currencies; accept it with a note", d.Bank.Currency, d.Ours.Currency)
	case d.Ours != nil && d.Ours.Status == string(StatusProcessing) && d.Type != DiscrepancyStale:
		return ledger.TransferInput{}, notAdjustable("our %s %s is still processing: let it settle and import the statement again, or accept it", d.Kind, d.BankID)
	case d.Delta == d.Adjusted:
		return ledger.TransferInput{}, notAdjustable("nothing to post: the books already agree with the statement on %s; accept it", d.ID)
	}
	cur := d.Currency
	counter := SuspenseAccount(cur)
	if action == ResolveAdjust {
		switch {
		case d.Type == DiscrepancyStale:
			counter = lastCounterpart(d, r.Channel, cur)
		case d.MerchantID != "" && d.Type != DiscrepancyLong:
			counter = MerchantAccount(d.MerchantID, cur)
		}
	}
	clearing := ClearingAccount(r.Channel, cur)
	if err := s.createAccounts(ctx, []ledger.AccountInput{
		{ID: clearing, Currency: cur, Code: "channel_clearing"},
		{ID: SuspenseAccount(cur), Currency: cur, Code: "recon_suspense"},
	}); err != nil {
		return ledger.TransferInput{}, err
	}
	amount := d.Delta - d.Adjusted
	t := ledger.TransferInput{ID: adjustmentID(r.ID, d.ID, len(d.Resolutions)+1), Currency: cur, Code: "recon_adjustment",
		Metadata: map[string]string{"recon_report": r.ID, "discrepancy": d.ID}}
	if amount > 0 { // the bank owes us more than our books say
		t.DebitAccountID, t.CreditAccountID, t.Amount = clearing, counter, amount
	} else {
		t.DebitAccountID, t.CreditAccountID, t.Amount = counter, clearing, -amount
	}
	return t, nil
}

// lastCounterpart is the counterpart of the last adjustment posted for d.
func lastCounterpart(d *Discrepancy, channel, cur string) string {
	clearing := ClearingAccount(channel, cur)
	for i := len(d.Resolutions) - 1; i >= 0; i-- {
		switch res := d.Resolutions[i]; clearing {
		case res.Debit:
			return res.Credit
		case res.Credit:
			return res.Debit
		}
	}
	return SuspenseAccount(cur)
}

// adjustmentID is the ledger id of the n-th resolution of a discrepancy: deterministic, so a
// retried resolution can never post twice.
func adjustmentID(reportID, discrepancyID string, n int) string {
	h := sha256.Sum256([]byte(discrepancyID))
	return "recon:" + reportID + ":" + hex.EncodeToString(h[:8]) + ":" + strconv.Itoa(n)
}
