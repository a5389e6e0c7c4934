package payment_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/bank/sim"
	"github.com/fincore/fincore/payment"
	"github.com/fincore/fincore/platform/timer"
)

// stmtChannel is a real channel whose statements can be made to fail: the first fail calls
// fail, and with err set every call does. It counts the calls by day.
type stmtChannel struct {
	bank.Channel
	code  string
	caps  *bank.Capabilities
	mu    sync.Mutex
	calls map[string]int
	fail  int
	err   error
}

func (c *stmtChannel) Code() string { return c.code }

func (c *stmtChannel) Capabilities() bank.Capabilities {
	if c.caps != nil {
		return *c.caps
	}
	return c.Channel.Capabilities()
}

func (c *stmtChannel) Statement(ctx context.Context, day time.Time) ([]bank.StatementLine, error) {
	c.mu.Lock()
	c.calls[day.Format(time.DateOnly)]++
	err := c.err
	if err == nil && c.fail > 0 {
		c.fail--
		err = errors.New("statement not published yet")
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c.Channel.Statement(ctx, day)
}

func (c *stmtChannel) callsOn(day time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[day.Format(time.DateOnly)]
}

// wrapChannels replaces the fixture's channels with stmtChannels (same codes), plus the
// extra ones given as code → the code of the channel whose statements they give (they take
// no payments: they serve another currency only).
func wrapChannels(into map[string]*stmtChannel, extra map[string]string) func(*payment.Config) {
	return func(cfg *payment.Config) {
		reg := bank.NewRegistry()
		add := func(code string, ch bank.Channel, caps *bank.Capabilities) {
			w := &stmtChannel{Channel: ch, code: code, caps: caps, calls: map[string]int{}}
			into[code] = w
			if err := reg.Add(w); err != nil {
				panic(err)
			}
		}
		for _, code := range cfg.Channels.Codes() {
			ch, _ := cfg.Channels.Get(code)
			add(code, ch, nil)
		}
		for code, via := range extra {
			ch, _ := cfg.Channels.Get(via)
			add(code, ch, &bank.Capabilities{Currencies: []string{"USD"}})
		}
		cfg.Channels = reg
	}
}

// A statement fetched from the channel is reconciled like an imported one, once the day has
// ended; fetching the same statement again changes nothing, and a channel's failure is a
// clear error that stores nothing.
func TestFetchReconcile(t *testing.T) {
	var offset atomic.Int64
	chans := map[string]*stmtChannel{}
	wrap := wrapChannels(chans, map[string]string{"bank-none": "bank-a"})
	f := newFixtureWith(t, map[string]sim.Profile{"bank-a": {}}, func(cfg *payment.Config) {
		wrap(cfg)
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	chans["bank-none"].err = fmt.Errorf("no source: %w", bank.ErrNoStatements)
	ctx := context.Background()
	f.merchant("m1", 0)
	card := f.card().ID
	var total int64
	for i, amount := range []int64{1000, 2500, 4000} {
		f.payFinal(fmt.Sprintf("p%d", i+1), "m1", card, amount, payment.StatusSucceeded)
		total += amount
	}
	day := today()

	_, _, err := f.svc.FetchReconcile(ctx, "ops", "bank-a", day)
	if code(err) != apierror.InvalidRequest || chans["bank-a"].callsOn(day) != 0 {
		t.Fatalf("fetch of a day not ended: %v (calls %d)", err, chans["bank-a"].callsOn(day))
	}
	offset.Store(int64(day.AddDate(0, 0, 1).Add(3 * time.Hour).Sub(time.Now())))

	rep, created, err := f.svc.FetchReconcile(ctx, "ops", "bank-a", day)
	if err != nil || !created {
		t.Fatalf("fetch: created %v, %v", created, err)
	}
	s := rep.Statement
	if rep.Status != payment.ReportReconciled || s.Lines != 3 || s.ImportedBy != "ops" || len(rep.Discrepancies) != 0 {
		t.Fatalf("report %s: %d lines by %s, %d discrepancies", rep.Status, s.Lines, s.ImportedBy, len(rep.Discrepancies))
	}
	var sum int64
	for _, l := range f.banks["bank-a"].Statement(day) {
		sum += l.Amount
	}
	if sum != total {
		t.Fatalf("the bank's statement sums to %d, want %d", sum, total)
	}
	again, created, err := f.svc.FetchReconcile(ctx, "ops", "bank-a", day)
	if err != nil || created || again.Revision != rep.Revision {
		t.Fatalf("second fetch: created %v, revision %d (was %d), %v", created, again.Revision, rep.Revision, err)
	}

	chans["bank-a"].fail = 1
	if _, _, err := f.svc.FetchReconcile(ctx, "ops", "bank-a", day.AddDate(0, 0, -1)); code(err) != apierror.ReconStatementUnavailable {
		t.Fatalf("a failing channel: %v", err)
	}
	if _, err := f.svc.GetReconReport(ctx, "bank-a", day.AddDate(0, 0, -1)); code(err) != apierror.ReconReportNotFound {
		t.Fatalf("a failed fetch stored a report: %v", err)
	}
	_, _, err = f.svc.FetchReconcile(ctx, "ops", "bank-none", day)
	if code(err) != apierror.ReconStatementUnavailable || !errors.Is(err, bank.ErrNoStatements) {
		t.Fatalf("a channel without statements: %v", err)
	}
	if _, _, err := f.svc.FetchReconcile(ctx, "ops", "bank-zz", day); code(err) != apierror.ChannelNotFound {
		t.Fatalf("an unknown channel: %v", err)
	}
}

// The scheduled fetches: a start schedules every channel's ended days without a report and
// today's; those past their time are fetched at once, a failed fetch is retried, a channel
// without statements is not, and each fetch schedules the next day's.
func TestScheduledReconFetch(t *testing.T) {
	chans := map[string]*stmtChannel{}
	wrap := wrapChannels(chans, map[string]string{"bank-none": "bank-a", "bank-flaky": "bank-a"})
	f := newFixtureWith(t, map[string]sim.Profile{"bank-a": {}}, func(cfg *payment.Config) {
		wrap(cfg)
		cfg.ReconFetch = payment.ReconFetch{Enabled: true, After: time.Nanosecond, CatchUpDays: 2}
	})
	chans["bank-none"].err = fmt.Errorf("no source: %w", bank.ErrNoStatements)
	chans["bank-flaky"].fail = 2
	ctx := context.Background()
	day0 := today()
	days := []time.Time{day0.AddDate(0, 0, -2), day0.AddDate(0, 0, -1)}
	// A report made by hand before the start: that day is not fetched.
	if _, err := f.svc.Reconcile(ctx, "bank-a", days[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ScheduleReconFetches(ctx); err != nil {
		t.Fatal(err)
	}
	report := func(ch string, d time.Time) (payment.Report, bool) {
		r, err := f.svc.GetReconReport(ctx, ch, d)
		if err != nil && code(err) != apierror.ReconReportNotFound {
			t.Fatal(err)
		}
		return r, err == nil
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, a := report("bank-a", days[1])
		_, b0 := report("bank-flaky", days[0])
		_, b1 := report("bank-flaky", days[1])
		if a && b0 && b1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scheduled fetches did not happen: bank-a %v, bank-flaky %v %v", a, b0, b1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r, _ := report("bank-a", days[1]); r.Statement.ImportedBy != payment.ReconFetchActor || r.Status != payment.ReportReconciled {
		t.Fatalf("fetched report by %q, %s", r.Statement.ImportedBy, r.Status)
	}
	if n := chans["bank-a"].callsOn(days[0]); n != 0 {
		t.Fatalf("the day reconciled by hand was fetched %d times", n)
	}
	if n := chans["bank-flaky"].callsOn(days[0]) + chans["bank-flaky"].callsOn(days[1]); n != 4 {
		t.Fatalf("the flaky channel was asked %d times, want 4 (2 failures retried)", n)
	}
	for _, d := range days {
		if _, ok := report("bank-none", d); ok || chans["bank-none"].callsOn(d) != 1 {
			t.Fatalf("the channel without statements: report %v, asked %d times for %s", ok, chans["bank-none"].callsOn(d), d.Format(time.DateOnly))
		}
	}
	// Today's fetch waits for tomorrow, as does the next day's, scheduled by each fetch.
	timers := f.st.(timer.Provider).Timers()
	for _, ch := range []string{"bank-a", "bank-none", "bank-flaky"} {
		for _, d := range []time.Time{day0, day0.AddDate(0, 0, 1)} {
			id := payment.HandlerReconFetch + ":" + payment.ReconID(ch, d)
			r, ok, err := timers.Get(ctx, id)
			if d.Equal(day0.AddDate(0, 0, 1)) && !ok {
				continue // scheduled by today's fetch, which has not run
			}
			if err != nil || !ok || !r.Pending() || !r.FireAt.Equal(d.AddDate(0, 0, 1).Add(time.Nanosecond)) {
				t.Fatalf("timer %s: %+v %v %v", id, r, ok, err)
			}
		}
	}
	// Scheduling again (a restart) fetches only the ended days without a report: not
	// bank-a's, again bank-none's (it may have a statement now).
	a, none := chans["bank-a"].callsOn(days[1]), chans["bank-none"].callsOn(days[1])
	if err := f.svc.ScheduleReconFetches(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); chans["bank-none"].callsOn(days[1]) == none; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a second start did not ask bank-none again")
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := chans["bank-a"].callsOn(days[1]); n != a {
		t.Fatalf("a second start fetched a reconciled day again: %d calls, was %d", n, a)
	}
}
