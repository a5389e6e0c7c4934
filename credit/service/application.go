package service

import (
	"context"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/money"
)

// Application outcomes.
const (
	Approved = "approved"
	Rejected = "rejected"
	InReview = "in_review"
)

// AdultAge is the age an applicant must have reached.
const AdultAge = 18

// ApplicationRequest is POST /v1/credit/applications.
type ApplicationRequest struct {
	ID            string
	CustomerID    string
	Name          string
	IDNumber      string
	Phone         string
	MonthlyIncome int64
}

// Step is one step of a decision and why it went the way it did.
type Step struct {
	Step    string `json:"step"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
}

// Application is a decided application: the decision and every step that led to it.
type Application struct {
	ID       string           `json:"id"`
	Customer string           `json:"customer_id"`
	Name     string           `json:"name"`
	IDNumber string           `json:"id_number"` // masked: the first 6 and last 4 characters
	Age      int              `json:"age"`
	Date     credit.Date      `json:"date"`
	Decision string           `json:"decision"`
	Risk     *Decision        `json:"risk,omitempty"`
	Offer    *Offer           `json:"offer,omitempty"`
	Channels []ChannelVerdict `json:"channels"`
	Channel  string           `json:"funding_channel,omitempty"`
	Account  string           `json:"account_id,omitempty"`
	Steps    []Step           `json:"explanation"`
	Hash     string           `json:"request_hash"`
}

// LineID is the id of a customer's credit line: one line per customer.
func LineID(customer string) string { return "ca_" + customer }

// CheckIDNumber checks a PRC resident identity number (GB 11643-1999): 17 digits and a
// check character (0-9 or X) such that the weighted sum of the digits with weights
// 2^(17−i) mod 11 plus the check value is 1 mod 11, and an address code and a birth date
// that are plausible. It returns the birth date.
func CheckIDNumber(s string) (credit.Date, error) {
	if len(s) != 18 {
		return credit.Date{}, fmt.Errorf("an ID number has 18 characters, not %d", utf8.RuneCountInString(s))
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		c := s[i]
		if c < '0' || c > '9' {
			return credit.Date{}, fmt.Errorf("character %d of an ID number must be a digit", i+1)
		}
		sum += int(c-'0') * weights[i]
	}
	want := "10X98765432"[sum%11]
	got := s[17]
	if got == 'x' {
		got = 'X'
	}
	if got != want {
		return credit.Date{}, fmt.Errorf("the check character of the ID number is wrong")
	}
	if s[0] < '1' || s[0] > '8' {
		return credit.Date{}, fmt.Errorf("the ID number's address code is not a region")
	}
	birth, err := credit.ParseDate(s[6:10] + "-" + s[10:12] + "-" + s[12:14])
	if err != nil {
		return credit.Date{}, fmt.Errorf("the ID number's birth date %s is not a date", s[6:14])
	}
	return birth, nil
}

// ageOn is the age in whole years on date d of someone born on birth.
func ageOn(birth, d credit.Date) int {
	age := d.Year() - birth.Year()
	if d.Month() < birth.Month() || d.Month() == birth.Month() && d.Day() < birth.Day() {
		age--
	}
	return age
}

func maskID(s string) string { return s[:6] + "********" + s[14:] }

// validateApplication checks a request completely before anything is read or written.
func validateApplication(r *ApplicationRequest, today credit.Date) (credit.Date, *apierror.Error) {
	switch {
	case !ValidID(r.ID):
		return credit.Date{}, apierror.Newf(apierror.InvalidRequest, "id", "id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case !ValidID(r.CustomerID):
		return credit.Date{}, apierror.Newf(apierror.InvalidRequest, "customer_id", "customer_id must be 1 to 64 characters of A-Z a-z 0-9 _ -")
	case r.Name == "" || len(r.Name) > 200:
		return credit.Date{}, apierror.Newf(apierror.InvalidRequest, "name", "name must be 1 to 200 bytes")
	case len(r.Phone) > 20:
		return credit.Date{}, apierror.Newf(apierror.InvalidRequest, "phone", "phone must be at most 20 characters")
	case r.MonthlyIncome < 0 || r.MonthlyIncome > money.MaxAmount:
		return credit.Date{}, apierror.Newf(apierror.InvalidRequest, "monthly_income", "monthly_income must be 0 to %d minor units", money.MaxAmount)
	}
	birth, err := CheckIDNumber(r.IDNumber)
	if err != nil {
		return credit.Date{}, apierror.Newf(apierror.IDNumberInvalid, "id_number", "%v", err)
	}
	if birth.After(today) {
		return credit.Date{}, apierror.Newf(apierror.IDNumberInvalid, "id_number", "the ID number's birth date is in the future")
	}
	return birth, nil
}

// Apply decides an application (DESIGN.md C1): identity basics (ID number and age), the
// risk decision, the pricing table, and activation routing across the funding channels in
// parallel with a second pass on the relaxed product for those every channel rejected. An
// approved application opens the customer's credit line in the same unit as the
// application's record. It is idempotent by id: the same request returns the same
// application (created false); a different request with the same id is id_conflict.
func (s *Service) Apply(ctx context.Context, req ApplicationRequest) (*Application, bool, error) {
	today := s.Today()
	birth, e := validateApplication(&req, today)
	if e != nil {
		return nil, false, e
	}
	hash := fingerprint("application", req.ID, req.CustomerID, req.Name, req.IDNumber, req.Phone, req.MonthlyIncome)
	if a, err := s.existingApplication(ctx, req.ID, hash); a != nil || err != nil {
		return a, false, err
	}
	lineID := LineID(req.CustomerID)
	if r, err := s.getRecord(ctx, KindLine, lineID); err != nil {
		return nil, false, err
	} else if r != nil {
		return nil, false, apierror.Newf(apierror.CreditAccountExists, "customer_id", "customer %s already has credit account %s", req.CustomerID, lineID)
	}

	a := &Application{ID: req.ID, Customer: req.CustomerID, Name: req.Name, IDNumber: maskID(req.IDNumber),
		Age: ageOn(birth, today), Date: today, Hash: hash, Channels: []ChannelVerdict{}}
	if err := s.decide(ctx, a, req); err != nil {
		return nil, false, err
	}
	var line *Line
	if a.Decision == Approved {
		p := s.products[a.Offer.Product]
		line = &Line{ID: lineID, Customer: req.CustomerID, Product: p.ID, Currency: p.Currency, Limit: a.Offer.Limit,
			Available: a.Offer.Limit, AnnualRate: a.Offer.AnnualRate, Tier: a.Offer.Tier, Channel: a.Channel,
			Application: a.ID, Opened: today, Receivable: ReceivableAccount(lineID)}
		a.Account = lineID
		if err := s.ensureAccounts(ctx, append(globalAccounts(p.Currency), receivableInput(lineID, p.Currency))...); err != nil {
			return nil, false, err
		}
	}
	var replay *Application
	err := s.commit(ctx, func() (*ledger.Unit, error) {
		if err := replayed(s.existingApplication(ctx, req.ID, hash))(&replay); err != nil {
			return nil, err
		}
		u := &ledger.Unit{
			Records: []ledger.RecordWrite{{Record: ledger.Record{Kind: KindApplication, ID: a.ID, Owner: a.Customer, Status: a.Decision, Data: encode(a)}}},
			Events:  []ledger.ModuleEvent{{Subject: "credit.application.decided", ID: "credit.application." + a.ID, Payload: encode(a)}},
		}
		if line != nil {
			if r, err := s.getRecord(ctx, KindLine, lineID); err != nil {
				return nil, err
			} else if r != nil {
				return nil, apierror.Newf(apierror.CreditAccountExists, "customer_id", "customer %s already has credit account %s", req.CustomerID, lineID)
			}
			l := *line
			u.Records = append(u.Records, lineRecord(&l))
			u.Events = append(u.Events, ledger.ModuleEvent{Subject: "credit.line.opened", ID: "credit.line.opened." + lineID, Payload: encode(&l)})
		}
		return u, nil
	})
	if err != nil {
		return nil, false, err
	}
	if replay != nil {
		return replay, false, nil
	}
	s.cfg.Logger.InfoContext(ctx, "credit application decided", "application", a.ID, "decision", a.Decision, "account", a.Account)
	return a, true, nil
}

func (s *Service) existingApplication(ctx context.Context, id, hash string) (*Application, error) {
	return existing(ctx, s, KindApplication, id, hash, func(a *Application) string { return a.Hash })
}

// decide runs the decision steps, recording each in a.Steps.
func (s *Service) decide(ctx context.Context, a *Application, req ApplicationRequest) error {
	step := func(name, outcome, format string, args ...any) {
		a.Steps = append(a.Steps, Step{Step: name, Outcome: outcome, Reason: fmt.Sprintf(format, args...)})
	}
	a.Decision = Rejected
	step("identity", "pass", "ID number checksum valid")
	if a.Age < AdultAge {
		step("age", "reject", "age %d is below %d", a.Age, AdultAge)
		return nil
	}
	step("age", "pass", "age %d is at least %d", a.Age, AdultAge)

	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	d, err := s.cfg.Decider.Decide(ctx2, RiskEvent{Type: EventApplication, Customer: req.CustomerID, Fields: map[string]any{
		"application_id": req.ID, "customer_id": req.CustomerID, "age": a.Age, "monthly_income": req.MonthlyIncome,
		"phone": req.Phone,
	}})
	cancel()
	if err != nil {
		return fmt.Errorf("credit: risk decision: %w", err)
	}
	a.Risk = &d
	switch d.Outcome {
	case Reject:
		step("risk", "reject", "%s: score %d; %s", d.Decider, d.Score, joinReasons(d.Reasons))
		return nil
	case Review:
		a.Decision = InReview
		step("risk", "review", "%s: score %d; %s", d.Decider, d.Score, joinReasons(d.Reasons))
		return nil
	}
	step("risk", "accept", "%s: score %d; %s", d.Decider, d.Score, joinReasons(d.Reasons))

	row, ok := price(s.cfg.Pricing, d.Segment, d.Score)
	if !ok {
		step("pricing", "reject", "no price for segment %s at score %d", d.Segment, d.Score)
		return nil
	}
	step("pricing", "pass", "segment %s, score %d at least %d: tier %s, limit %s at %s a year", d.Segment, d.Score, row.MinScore, row.Tier, major(row.Limit), row.AnnualRate)

	offer := Offer{Product: s.cfg.Primary, Limit: row.Limit, AnnualRate: row.AnnualRate, Tier: row.Tier, Pass: 1}
	vs, win := s.route(ctx, offer, d)
	a.Channels = append(a.Channels, vs...)
	if win == nil && s.cfg.Relaxed != "" {
		step("routing", "reject", "pass 1 on %s: every channel rejected", offer.Product)
		offer = Offer{Product: s.cfg.Relaxed, Limit: max(1, row.Limit*s.cfg.RelaxedLimitPercent/100), AnnualRate: row.AnnualRate, Tier: row.Tier, Pass: 2}
		vs, win = s.route(ctx, offer, d)
		a.Channels = append(a.Channels, vs...)
	}
	if win == nil {
		step("routing", "reject", "pass %d on %s: every channel rejected", offer.Pass, offer.Product)
		return nil
	}
	offer.Limit = win.Limit
	a.Offer, a.Channel, a.Decision = &offer, win.Channel, Approved
	step("routing", "pass", "pass %d on %s: funded by %s (%s), limit %s", offer.Pass, offer.Product, win.Channel, win.Reason, major(offer.Limit))
	return nil
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}

// GetApplication returns an application.
func (s *Service) GetApplication(ctx context.Context, id string) (*Application, error) {
	return lookup[Application](ctx, s, KindApplication, id, apierror.ApplicationNotFound, "application")
}

// freezeLine freezes or unfreezes l, logs it, and returns the line's record and the event
// (credit.line.frozen or credit.line.unfrozen, with the line) to commit together.
func freezeLine(l *Line, e FreezeEntry) (ledger.RecordWrite, ledger.ModuleEvent) {
	l.Frozen, l.FrozenBy, l.FrozenNote = e.Frozen, e.By, e.Reason
	if !e.Frozen {
		l.FrozenBy, l.FrozenNote = "", ""
	}
	l.FreezeLog = append(l.FreezeLog, e)
	if n := len(l.FreezeLog); n > FreezeLogMax {
		l.FreezeLog = slices.Delete(l.FreezeLog, 0, n-FreezeLogMax)
	}
	subject := "credit.line.frozen"
	if !e.Frozen {
		subject = "credit.line.unfrozen"
	}
	w := lineRecord(l)
	return w, ledger.ModuleEvent{Subject: subject, ID: fmt.Sprintf("%s.%s.%d", subject, l.ID, l.Version), Payload: w.Record.Data}
}

// SetFrozen freezes or unfreezes a line (an operator's action): a frozen line takes no
// purchases; repayments still apply. The change is in the line's freeze log and is a
// credit.line.frozen or credit.line.unfrozen event; a line already so is left as it is.
func (s *Service) SetFrozen(ctx context.Context, id string, frozen bool, actor, reason string) (*Line, error) {
	if len(reason) > 500 {
		return nil, apierror.Newf(apierror.InvalidRequest, "reason", "reason must be at most 500 bytes")
	}
	var out *Line
	err := s.commit(ctx, func() (*ledger.Unit, error) {
		l, err := s.Line(ctx, id)
		if err != nil {
			return nil, err
		}
		out = l
		if l.Frozen == frozen {
			return nil, errDone
		}
		w, ev := freezeLine(l, FreezeEntry{At: s.cfg.Now().UTC(), Frozen: frozen, By: actor, Reason: reason})
		return &ledger.Unit{Records: []ledger.RecordWrite{w}, Events: []ledger.ModuleEvent{ev}}, nil
	})
	return out, err
}
