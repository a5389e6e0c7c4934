package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/timer"
)

// Automatic reconciliation (docs/payments.md): every channel's statement of a business day
// is fetched from the channel (bank.Channel.Statement) some time after the day ends and
// reconciled as if an operator had imported it. A durable timer per channel and day drives
// it; each fetch schedules the next day's, so the chain survives restarts, and a start
// schedules the days it may have missed. A failed fetch is retried with the timer service's
// backoff; a statement the channel cannot give (it keeps none) or one that cannot be
// reconciled (invalid, over a limit) is logged and left to an operator.

// HandlerReconFetch is the timer handler that fetches and reconciles one statement.
const HandlerReconFetch = "payment.recon_fetch"

// ReconFetchActor is the actor the history of a fetched statement names.
const ReconFetchActor = "scheduler"

// Defaults of ReconFetch.
const (
	DefaultReconFetchAfter   = 2 * time.Hour
	DefaultReconCatchUpDays  = 3
	DefaultReconFetchTimeout = 2 * time.Minute
	// ReconCatchUpDaysMax bounds ReconFetch.CatchUpDays: the timer service remembers done
	// timers for a week, and older days are for an operator to look at.
	ReconCatchUpDaysMax = 7
)

// ReconFetch configures automatic reconciliation.
type ReconFetch struct {
	// Enabled turns the daily fetch on.
	Enabled bool
	// After is how long after the end of a business day (midnight UTC) its statements are
	// fetched (DefaultReconFetchAfter): banks publish them some time after the day closes.
	After time.Duration
	// CatchUpDays is how many ended days before today ScheduleReconFetches covers, for the
	// days a stopped service missed (DefaultReconCatchUpDays, at most ReconCatchUpDaysMax).
	// Days that already have a report are skipped.
	CatchUpDays int
	// Timeout bounds one statement fetch (DefaultReconFetchTimeout).
	Timeout time.Duration
}

func (f *ReconFetch) setDefaults() {
	if f.After <= 0 {
		f.After = DefaultReconFetchAfter
	}
	if f.CatchUpDays <= 0 {
		f.CatchUpDays = DefaultReconCatchUpDays
	}
	f.CatchUpDays = min(f.CatchUpDays, ReconCatchUpDaysMax)
	if f.Timeout <= 0 {
		f.Timeout = DefaultReconFetchTimeout
	}
}

// reconFetchPayload is the payload of a HandlerReconFetch timer.
type reconFetchPayload struct {
	Channel string `json:"channel"`
	Date    string `json:"date"`
}

// reconFetchTimer is the timer that fetches channel's statement of day.
func (s *Service) reconFetchTimer(channel string, day time.Time) timer.Timer {
	day = businessDay(day)
	payload, _ := json.Marshal(reconFetchPayload{Channel: channel, Date: day.Format(time.DateOnly)})
	return timer.Timer{ID: HandlerReconFetch + ":" + ReconID(channel, day), Handler: HandlerReconFetch,
		FireAt: day.AddDate(0, 0, 1).Add(s.cfg.ReconFetch.After), Payload: payload}
}

// FetchReconcile fetches channel's statement of a business day (UTC) from the channel and
// reconciles it (ReconcileAs); the day must have ended. It reports whether the import made a
// new revision: fetching the same statement again changes nothing.
func (s *Service) FetchReconcile(ctx context.Context, actor, channel string, day time.Time) (Report, bool, error) {
	lines, err := s.fetchStatement(ctx, channel, day)
	if err != nil {
		return Report{}, false, err
	}
	return s.ReconcileAs(ctx, actor, channel, day, lines)
}

// fetchStatement asks the channel for its statement; its errors are API errors that wrap
// the channel's (so errors.Is(err, bank.ErrNoStatements) holds for a channel without any).
func (s *Service) fetchStatement(ctx context.Context, channel string, day time.Time) ([]bank.StatementLine, error) {
	ch, ok := s.cfg.Channels.Get(channel)
	if !ok {
		return nil, apierror.Newf(apierror.ChannelNotFound, "channel", "no channel %q", clipID(channel))
	}
	day = businessDay(day)
	if end := day.AddDate(0, 0, 1); end.After(s.cfg.Now()) {
		return nil, invalid("date", "the business day %s has not ended: its statement can be fetched from %s",
			day.Format(time.DateOnly), end.Format(time.RFC3339))
	}
	fctx, cancel := context.WithTimeout(ctx, s.cfg.ReconFetch.Timeout)
	defer cancel()
	lines, err := ch.Statement(fctx, day)
	if err != nil {
		what := "could not give"
		if errors.Is(err, bank.ErrNoStatements) {
			what = "keeps no statements: import its file; it did not give"
		}
		ae := apierror.Newf(apierror.ReconStatementUnavailable, "channel", "channel %s %s its statement of %s (%s)",
			channel, what, day.Format(time.DateOnly), clip(err.Error(), 200))
		return nil, &fetchError{api: ae, cause: err}
	}
	return lines, nil
}

// fetchError is an API error that keeps the channel's error for errors.Is.
type fetchError struct {
	api   *apierror.Error
	cause error
}

func (e *fetchError) Error() string   { return e.api.Error() }
func (e *fetchError) Unwrap() []error { return []error{e.api, e.cause} }

// ScheduleReconFetches schedules, when ReconFetch is enabled, the fetch of every channel's
// statement of today and of the CatchUpDays ended days before it that have no report yet;
// those past their time are fetched at once. Scheduling again is harmless (the timers'
// ids are per channel and day). Call it once the service is set up, on every start.
func (s *Service) ScheduleReconFetches(ctx context.Context) error {
	f := s.cfg.ReconFetch
	if !f.Enabled {
		return nil
	}
	today := businessDay(s.cfg.Now())
	var ts []timer.Timer
	for _, code := range s.cfg.Channels.Codes() {
		for back := f.CatchUpDays; back >= 0; back-- {
			day := today.AddDate(0, 0, -back)
			if back > 0 {
				if _, err := s.loadReport(ctx, ReconID(code, day)); err == nil {
					continue // reconciled already, by hand or by an earlier fetch
				} else if !errors.Is(err, ledger.ErrNotFound) {
					return err
				}
			}
			ts = append(ts, s.reconFetchTimer(code, day))
		}
	}
	for len(ts) > 0 {
		n := min(len(ts), 256)
		if _, err := s.cfg.Ledger.Commit(ctx, ledger.Unit{Timers: ts[:n]}); err != nil {
			return fmt.Errorf("schedule statement fetches: %w", err)
		}
		ts = ts[n:]
	}
	return nil
}

// handleReconFetch fetches and reconciles one channel's statement of one day, after
// scheduling the next day's fetch.
func (s *Service) handleReconFetch(ctx context.Context, t timer.Timer) error {
	var p reconFetchPayload
	if err := json.Unmarshal(t.Payload, &p); err != nil {
		s.log.Error("statement fetch: bad timer payload", "timer", t.ID, "err", err)
		return nil // retrying cannot help
	}
	day, err := time.Parse(time.DateOnly, p.Date)
	if err != nil {
		s.log.Error("statement fetch: bad timer payload", "timer", t.ID, "err", err)
		return nil
	}
	if !s.cfg.ReconFetch.Enabled {
		s.log.Info("statement fetch skipped: automatic reconciliation is off", "channel", p.Channel, "date", p.Date)
		return nil
	}
	if _, ok := s.cfg.Channels.Get(p.Channel); !ok {
		s.log.Warn("statement fetch skipped: the channel is no longer configured", "channel", p.Channel, "date", p.Date)
		return nil
	}
	// The next day's first, so that the chain does not depend on this day's outcome. A next
	// fetch already due is left alone: a start schedules the days up to today (a timer
	// written again after it fired could fire again), and a fetch on time or retried has
	// scheduled it while it was still ahead.
	if next := s.reconFetchTimer(p.Channel, day.AddDate(0, 0, 1)); next.FireAt.After(s.cfg.Now()) {
		if _, err := s.cfg.Ledger.Commit(ctx, ledger.Unit{Timers: []timer.Timer{next}}); err != nil {
			return fmt.Errorf("schedule the next statement fetch: %w", err)
		}
	}
	rep, created, err := s.FetchReconcile(ctx, ReconFetchActor, p.Channel, day)
	var ae *apierror.Error
	switch {
	case err == nil:
		s.log.Info("statement fetched", "channel", p.Channel, "date", p.Date, "new_revision", created,
			"lines", rep.Statement.Lines, "status", rep.Status, "open_discrepancies", countOpen(rep.Discrepancies))
		return nil
	case errors.Is(err, bank.ErrNoStatements):
		s.log.Warn("statement fetch skipped: the channel keeps no statements", "channel", p.Channel, "date", p.Date)
		return nil
	case errors.As(err, &ae) && ae.Status() < 500:
		// Invalid, over a limit: fetching it again gives the same; an operator looks at it.
		s.log.Error("statement fetched but not reconciled", "channel", p.Channel, "date", p.Date, "err", err)
		return nil
	}
	return fmt.Errorf("statement of %s for %s: %w", p.Channel, p.Date, err) // retried with backoff
}
