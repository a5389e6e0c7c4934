package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/credit/service"
	"github.com/fincore/fincore/httpapi"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/obs"
	"github.com/fincore/fincore/platform/timer"
	"github.com/fincore/fincore/risk"
)

// creditStream is the stream that holds the credit module's events (credit.>), which the
// ledger's outbox relays.
const creditStream = "CREDIT"

// newCredit returns the credit service on eng: its chart of accounts created, its
// end-of-day handler registered on timers (before they start) and today's batch timer
// scheduled. Risk decisions go to the risk engine's credit_application and credit_purchase
// rule sets when they are active, else to the built-in rules.
func newCredit(ctx context.Context, eng *ledger.Engine, st ledger.Store, timers *timer.Service, riskEng *risk.Engine, m *obs.Metrics, log *slog.Logger) (*service.Service, error) {
	cfg := service.Config{Logger: log, Observer: newCreditMetrics(m.Registry())}
	if riskEng != nil {
		cfg.Decider = riskDecider{eng: riskEng, log: log}
	}
	svc, err := service.New(eng, st, cfg)
	if err != nil {
		return nil, err
	}
	timers.Register(service.EODHandler, svc.HandleEODTimer)
	// Both write through the ledger: on a standby they wait until it is the writer.
	if err := setupAsWriter(ctx, eng, log, "credit", func(ctx context.Context) error {
		if err := svc.EnsureChart(ctx); err != nil {
			return err
		}
		return svc.ScheduleEOD(ctx)
	}); err != nil {
		return nil, err
	}
	return svc, nil
}

// withCredit adds the credit routes to the API.
func withCredit(api *httpapi.Server, svc *service.Service) *httpapi.Server {
	api.RegisterCredit(svc)
	return api
}

// riskDecider asks the risk engine, by the rule set named like the event type; while that
// rule set does not exist or is not active, the built-in rules decide. The built-in rules
// always give the segment the pricing table needs.
type riskDecider struct {
	eng *risk.Engine
	log *slog.Logger
}

func (d riskDecider) Decide(ctx context.Context, ev service.RiskEvent) (service.Decision, error) {
	base, err := service.RuleDecider{}.Decide(ctx, ev)
	if err != nil {
		return base, err
	}
	obj := map[string]any{"type": ev.Type, "timestamp": time.Now().UTC().Format(time.RFC3339Nano), "customer_id": ev.Customer}
	for k, v := range ev.Fields {
		obj[k] = v
	}
	id, _ := ev.Fields["application_id"].(string)
	if id == "" {
		id, _ = ev.Fields["purchase_id"].(string)
	}
	obj["id"] = ev.Type + ":" + id
	raw, err := json.Marshal(obj)
	if err != nil {
		return base, err
	}
	rev, err := risk.ParseEvent(raw)
	if err != nil {
		return base, fmt.Errorf("risk event: %w", err)
	}
	dec, err := d.eng.DecideBrief(ctx, ev.Type, rev)
	if errors.Is(err, risk.ErrUnknownRuleSet) || errors.Is(err, risk.ErrNotActive) {
		return base, nil
	}
	if err != nil {
		return base, err
	}
	out := service.Decision{Outcome: dec.Decision, Score: dec.Score, Segment: base.Segment,
		Decider: fmt.Sprintf("risk:%s@%d", dec.RuleSet, dec.Version)}
	if out.Score == 0 {
		out.Score = base.Score
	}
	for _, r := range dec.RuleHits() {
		out.Reasons = append(out.Reasons, r.Rule+": "+r.Reason)
	}
	return out, nil
}

// creditMetrics exports the end-of-day batch's progress.
type creditMetrics struct {
	loans, changed, progress, running *prometheus.GaugeVec
	penalties                         *prometheus.GaugeVec
}

func newCreditMetrics(reg *prometheus.Registry) *creditMetrics {
	g := func(name, help string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "fincore", Subsystem: "credit_eod", Name: name, Help: help}, []string{"stage"})
		reg.MustRegister(v)
		return v
	}
	return &creditMetrics{
		loans:     g("loans", "Loans the running end-of-day batch has looked at."),
		changed:   g("changed", "Loans the running end-of-day batch has changed."),
		progress:  g("progress_ratio", "Share of the expected loans done (0 when unknown)."),
		running:   g("running", "1 while an end-of-day batch runs."),
		penalties: g("penalties", "Penalties (minor units) the running batch has charged."),
	}
}

// EODProgress implements service.Observer.
func (m *creditMetrics) EODProgress(p service.Progress) {
	m.loans.Reset()
	m.changed.Reset()
	m.progress.Reset()
	m.running.Reset()
	m.penalties.Reset()
	m.loans.WithLabelValues(p.Stage).Set(float64(p.Loans))
	m.changed.WithLabelValues(p.Stage).Set(float64(p.Changed))
	m.penalties.WithLabelValues(p.Stage).Set(float64(p.Penalties))
	if p.Estimate > 0 {
		m.progress.WithLabelValues(p.Stage).Set(min(1, float64(p.Loans)/float64(p.Estimate)))
	}
	if !p.Done {
		m.running.WithLabelValues(p.Stage).Set(1)
	}
}

// cmdCreditEOD runs the end-of-day batch of a business date on the database, with its
// progress on stderr (newProgress), and prints the run as JSON. It becomes the ledger's writer, so
// run it while no server writes to the same database (or use POST /v1/credit/eod/{date}).
func cmdCreditEOD(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("credit eod", flag.ContinueOnError)
	date := fs.String("date", "", "business date YYYY-MM-DD (default: yesterday)")
	var sf storeFlags
	sf.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var d credit.Date
	if *date == "" {
		now := time.Now().UTC().AddDate(0, 0, -1)
		d, _ = credit.NewDate(now.Year(), now.Month(), now.Day())
	} else {
		var err error
		if d, err = credit.ParseDate(*date); err != nil {
			return fmt.Errorf("--date: %w", err)
		}
	}
	ctx := context.Background()
	st, err := sf.openLedgerStore(ctx, sf.migrate)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := ledger.Open(ctx, st, ledger.Config{Logger: log})
	if err != nil {
		return err
	}
	defer eng.Close()
	svc, err := service.New(eng, st, service.Config{Logger: log})
	if err != nil {
		return err
	}
	prog := newProgress(stderr)
	run, err := svc.RunEOD(ctx, d, prog.report)
	prog.end()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(run)
}
