package service

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fincore/fincore/money"
)

// Risk event types the service asks its Decider about.
const (
	EventApplication = "credit_application"
	EventPurchase    = "credit_purchase"
)

// Decision outcomes.
const (
	Accept = "accept"
	Review = "review"
	Reject = "reject"
)

// RiskEvent is what the service asks a Decider to judge: an event of a type (the rule set
// it is judged by: credit_application, credit_purchase) about a customer, with its fields.
type RiskEvent struct {
	Type     string
	Customer string
	Fields   map[string]any
}

// Decision is a risk decision: the outcome, a score (higher is better), the customer
// segment the pricing table is keyed by, and the reasons, in words a reviewer reads.
type Decision struct {
	Outcome string   `json:"outcome"`
	Score   int      `json:"score"`
	Segment string   `json:"segment,omitempty"`
	Reasons []string `json:"reasons"`
	// Decider names what decided ("rules" for RuleDecider, a rule set's id and version for
	// the risk engine).
	Decider string `json:"decider"`
}

// Decider makes the service's risk decisions. The risk engine (package risk) implements it
// with its credit_application and credit_purchase rule sets; RuleDecider is the built-in
// fallback that needs nothing else.
type Decider interface {
	Decide(ctx context.Context, ev RiskEvent) (Decision, error)
}

// RuleDecider is the built-in Decider: a small transparent scorecard for applications and
// a sanity check for purchases.
//
// Application score: 520, plus 40 for ages 25 to 55 (10 for 18 to 24 and 56 to 65, −40
// above 65), plus 40, 80, 130 or 180 for a monthly income of at least 3,000, 5,000, 10,000
// or 20,000 (in major units of the currency). Applicants older than 70 are rejected.
// Segment: "salaried" with a reported income, else "thin_file".
//
// Purchases are accepted unless the amount exceeds 50,000.00 in one go (a review).
type RuleDecider struct{}

// Decide implements Decider.
func (RuleDecider) Decide(_ context.Context, ev RiskEvent) (Decision, error) {
	d := Decision{Outcome: Accept, Decider: "rules"}
	switch ev.Type {
	case EventApplication:
		age, _ := ev.Fields["age"].(int)
		income, _ := ev.Fields["monthly_income"].(int64)
		d.Score = 520
		d.Reasons = append(d.Reasons, "base score 520")
		switch {
		case age > 70:
			d.Outcome = Reject
			d.Reasons = append(d.Reasons, fmt.Sprintf("age %d is above 70", age))
		case age > 65:
			d.Score -= 40
			d.Reasons = append(d.Reasons, fmt.Sprintf("age %d: -40", age))
		case age >= 25 && age <= 55:
			d.Score += 40
			d.Reasons = append(d.Reasons, fmt.Sprintf("age %d: +40", age))
		default:
			d.Score += 10
			d.Reasons = append(d.Reasons, fmt.Sprintf("age %d: +10", age))
		}
		for _, band := range []struct{ min, points int64 }{{2_000_000, 180}, {1_000_000, 130}, {500_000, 80}, {300_000, 40}} {
			if income >= band.min {
				d.Score += int(band.points)
				d.Reasons = append(d.Reasons, fmt.Sprintf("monthly income %s: +%d", major(income), band.points))
				break
			}
		}
		d.Segment = "thin_file"
		if income > 0 {
			d.Segment = "salaried"
		}
		d.Reasons = append(d.Reasons, "segment "+d.Segment)
	case EventPurchase:
		amount, _ := ev.Fields["amount"].(int64)
		if amount > 5_000_000 {
			d.Outcome = Review
			d.Reasons = append(d.Reasons, fmt.Sprintf("amount %s is above 50,000.00 for one purchase", major(amount)))
		} else {
			d.Reasons = append(d.Reasons, "amount within the single-purchase limit")
		}
	default:
		return d, fmt.Errorf("credit: no rules for event type %q", ev.Type)
	}
	return d, nil
}

// major writes minor units as major units with two decimals (for explanations).
func major(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// PriceRow is a row of the pricing table: applicants of Segment with a score of at least
// MinScore get Limit at AnnualRate (rate tier Tier). The first matching row, in table
// order, applies; rows of a segment are listed best first.
type PriceRow struct {
	Segment    string     `json:"segment"`
	MinScore   int        `json:"min_score"`
	Limit      int64      `json:"limit"`
	AnnualRate money.Rate `json:"annual_rate"`
	Tier       string     `json:"tier"`
}

// ExamplePricing is the shipped pricing table (DESIGN.md C1): salaried applicants get
// 5,000 @ 10 %, 4,000 @ 18 % or 2,000 @ 25 % by score; thin files 2,000 @ 25 %.
func ExamplePricing() []PriceRow {
	return []PriceRow{
		{"salaried", 700, 500_000, money.MustRate("0.10"), "A"},
		{"salaried", 600, 400_000, money.MustRate("0.18"), "B"},
		{"salaried", 500, 200_000, money.MustRate("0.25"), "C"},
		{"thin_file", 550, 200_000, money.MustRate("0.25"), "C"},
	}
}

func validatePricing(rows []PriceRow) error {
	if len(rows) == 0 {
		return fmt.Errorf("credit: empty pricing table")
	}
	for i, r := range rows {
		if r.Segment == "" || r.Tier == "" || !money.ValidAmount(r.Limit) || r.AnnualRate.Cmp(money.MustRate("1")) > 0 {
			return fmt.Errorf("credit: pricing row %d: needs a segment, a tier, a limit of 1 to %d and a rate of 0 to 1", i, money.MaxAmount)
		}
	}
	return nil
}

// price returns the row for a segment and score.
func price(rows []PriceRow, segment string, score int) (PriceRow, bool) {
	for _, r := range rows {
		if r.Segment == segment && score >= r.MinScore {
			return r, true
		}
	}
	return PriceRow{}, false
}

// Channel is a funding channel (self-funded or a partner lender) with its acceptance rules:
// it funds offers on Products to applicants of Segments (any if empty) with a score of at
// least MinScore, up to MaxLimit (a larger offer is cut to it), at a rate of at most
// MaxAnnualRate (no bound if nil). Lower Priority wins among channels that accept.
type Channel struct {
	ID            string      `json:"id"`
	Name          string      `json:"name"`
	Priority      int         `json:"priority"`
	Products      []string    `json:"products"`
	Segments      []string    `json:"segments,omitempty"`
	MinScore      int         `json:"min_score"`
	MaxLimit      int64       `json:"max_limit"`
	MaxAnnualRate *money.Rate `json:"max_annual_rate,omitempty"`
	// Evaluator, if set, replaces the rules (a partner's remote decision service).
	Evaluator ChannelEvaluator `json:"-"`
}

// ChannelEvaluator answers for a channel whether it funds an offer.
type ChannelEvaluator interface {
	Evaluate(ctx context.Context, o Offer, d Decision) ChannelVerdict
}

// ExampleChannels are the shipped funding channels: the lender's own funds for good scores,
// a partner bank for salaried applicants, and a consumer-finance partner that funds only
// the relaxed product of the second pass.
func ExampleChannels() []Channel {
	return []Channel{
		{ID: "self", Name: "Self-funded", Priority: 1, Products: []string{"baitiao"}, MinScore: 700, MaxLimit: 500_000},
		{ID: "partner_bank", Name: "Partner bank", Priority: 2, Products: []string{"baitiao"}, Segments: []string{"salaried"}, MinScore: 600, MaxLimit: 400_000},
		{ID: "partner_cf", Name: "Partner consumer finance", Priority: 3, Products: []string{"baitiao_relaxed"}, MinScore: 500, MaxLimit: 200_000},
	}
}

// Offer is what routing asks a channel to fund.
type Offer struct {
	Product    string     `json:"product"`
	Limit      int64      `json:"limit"`
	AnnualRate money.Rate `json:"annual_rate"`
	Tier       string     `json:"tier"`
	Pass       int        `json:"pass"`
}

// ChannelVerdict is a channel's answer to an offer.
type ChannelVerdict struct {
	Channel string `json:"channel"`
	Pass    int    `json:"pass"`
	Accept  bool   `json:"accept"`
	// Limit is what the channel funds (the offer's limit, or less).
	Limit  int64  `json:"limit,omitempty"`
	Reason string `json:"reason"`
}

// evaluate applies a channel's rules to an offer.
func (c *Channel) evaluate(ctx context.Context, o Offer, d Decision) ChannelVerdict {
	if c.Evaluator != nil {
		v := c.Evaluator.Evaluate(ctx, o, d)
		v.Channel, v.Pass = c.ID, o.Pass
		if v.Accept && (v.Limit <= 0 || v.Limit > o.Limit) {
			v.Limit = o.Limit
		}
		return v
	}
	v := ChannelVerdict{Channel: c.ID, Pass: o.Pass}
	switch {
	case !slices.Contains(c.Products, o.Product):
		v.Reason = fmt.Sprintf("funds only %s", strings.Join(c.Products, ", "))
	case len(c.Segments) > 0 && !slices.Contains(c.Segments, d.Segment):
		v.Reason = fmt.Sprintf("segment %s not funded (funds %s)", d.Segment, strings.Join(c.Segments, ", "))
	case d.Score < c.MinScore:
		v.Reason = fmt.Sprintf("score %d below %d", d.Score, c.MinScore)
	case c.MaxAnnualRate != nil && o.AnnualRate.Cmp(*c.MaxAnnualRate) > 0:
		v.Reason = fmt.Sprintf("rate %s above %s", o.AnnualRate, c.MaxAnnualRate)
	default:
		v.Accept, v.Limit = true, min(o.Limit, c.MaxLimit)
		v.Reason = fmt.Sprintf("score %d at least %d", d.Score, c.MinScore)
		if v.Limit < o.Limit {
			v.Reason += fmt.Sprintf("; limit cut to %s", major(v.Limit))
		}
	}
	return v
}

// route asks every channel about the offer in parallel, each within the timeout, and
// returns their verdicts in channel order and the winner (the accepting channel of lowest
// priority), if any.
func (s *Service) route(ctx context.Context, o Offer, d Decision) ([]ChannelVerdict, *ChannelVerdict) {
	chs := s.cfg.Channels
	out := make([]ChannelVerdict, len(chs))
	done := make(chan int, len(chs))
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ChannelTimeout)
	defer cancel()
	for i := range chs {
		go func() {
			v := make(chan ChannelVerdict, 1)
			go func() { v <- chs[i].evaluate(ctx, o, d) }()
			select {
			case out[i] = <-v:
			case <-ctx.Done():
				out[i] = ChannelVerdict{Channel: chs[i].ID, Pass: o.Pass, Reason: "no answer in time"}
			}
			done <- i
		}()
	}
	for range chs {
		<-done
	}
	var win *ChannelVerdict
	for i := range out {
		if out[i].Accept && (win == nil || chs[i].Priority < s.channelPriority(win.Channel)) {
			win = &out[i]
		}
	}
	return out, win
}

func (s *Service) channelPriority(id string) int {
	for _, c := range s.cfg.Channels {
		if c.ID == id {
			return c.Priority
		}
	}
	return 1 << 30
}
