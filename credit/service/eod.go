package service

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/timer"
)

// The end-of-day batch (DESIGN.md C7). For a business date it runs three stages, each
// resumable:
//
//  1. loans: every open loan is brought to the end of the date (accrual, penalties,
//     ageing; see advance). Loans are read a page at a time, newest first (the next page
//     while one commits); the changed ones are committed in units of several loans,
//     several units at once, and after each page the run's record (the checkpoint) moves
//     its cursor past the page.
//  2. statements: on a product's statement day, each of its lines gets a statement.
//  3. reconcile: the reconciler compares the loans with the ledger (Reconcile).
//
// Each loan remembers the last date applied to it (LastEOD), so a loan is never charged
// twice for a date, whatever the checkpoint says; the checkpoint only spares a resumed run
// the pages it already did. Statements are written once (their id is the account and
// date). The run's final unit marks it done and schedules the durable timer of the next
// date, so the batch drives itself from date to date.

// EOD stages.
const (
	StageLoans      = "loans"
	StageStatements = "statements"
	StageReconcile  = "reconcile"
	StageDone       = "done"
)

// EODHandler is the timer handler of the batch; a timer's payload is its business date.
const EODHandler = "credit.eod"

// Batch sizes.
const (
	eodUnitLoans = ledger.UnitMax // loans (records) in one unit at most
)

// eodPage is how many loans the batch reads at once (a variable for the tests).
var eodPage = 1000

// EODRun is the record of the batch for one business date: where it stands and what it did.
type EODRun struct {
	Date        credit.Date      `json:"date"`
	Stage       string           `json:"stage"`
	Cursor      string           `json:"cursor,omitempty"`
	Estimate    int64            `json:"estimate"`
	Loans       int64            `json:"loans"`
	Changed     int64            `json:"changed"`
	Earned      int64            `json:"earned"`
	Penalties   int64            `json:"penalties"`
	StageEvents int64            `json:"stage_changes"`
	WrittenOff  int64            `json:"written_off"`
	Statements  int64            `json:"statements"`
	Resumed     int              `json:"resumed"`
	Reconcile   *ReconcileReport `json:"reconcile,omitempty"`
	Started     time.Time        `json:"started"`
	Finished    time.Time        `json:"finished,omitzero"`
	Version     int64            `json:"version"`
}

// Progress is the batch's progress, reported after every page.
type Progress struct {
	Date      credit.Date
	Stage     string
	Loans     int64 // loans looked at
	Changed   int64 // loans changed
	Estimate  int64 // loans expected (yesterday's count; 0 if unknown)
	Elapsed   time.Duration
	Done      bool
	Penalties int64
}

type eodState struct{ mu sync.Mutex }

// eodID is the record id of a date's run.
func eodID(d credit.Date) string { return d.String() }

// EODTimer returns the durable timer that runs the batch for d: it fires EODDelay after
// midnight at the end of d.
func (s *Service) EODTimer(d credit.Date) timer.Timer {
	next := d.AddDays(1)
	at := time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, s.cfg.Location).Add(s.cfg.EODDelay)
	return timer.Timer{ID: EODHandler + ":" + d.String(), Handler: EODHandler, FireAt: at, Payload: []byte(d.String())}
}

// ScheduleEOD makes sure the timer of today's batch exists (scheduling is idempotent by
// timer id). Call it at start; every run schedules the next date's timer as it finishes.
func (s *Service) ScheduleEOD(ctx context.Context) error {
	_, err := s.eng.Commit(ctx, ledger.Unit{Timers: []timer.Timer{s.EODTimer(s.Today())}})
	return err
}

// HandleEODTimer is the timer handler: it runs the batch of the timer's date. An error makes
// the timer service retry it with backoff; a finished run returns at once.
func (s *Service) HandleEODTimer(ctx context.Context, t timer.Timer) error {
	d, err := credit.ParseDate(string(t.Payload))
	if err != nil {
		s.cfg.Logger.Error("credit: end-of-day timer with a bad date", "timer", t.ID, "err", err)
		return nil // retrying cannot fix it
	}
	_, err = s.RunEOD(ctx, d, nil)
	return err
}

// GetEOD returns the run of a date.
func (s *Service) GetEOD(ctx context.Context, d credit.Date) (*EODRun, error) {
	r, err := s.getRecord(ctx, KindEOD, eodID(d))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierror.Newf(apierror.EODRunNotFound, "date", "the end-of-day batch has not run for %s", d)
	}
	var run EODRun
	return &run, decode(r, &run, &run.Version)
}

func eodRecord(run *EODRun) ledger.RecordWrite {
	v := run.Version
	run.Version = v + 1
	return ledger.RecordWrite{Record: ledger.Record{Kind: KindEOD, ID: eodID(run.Date), Status: run.Stage, Data: encode(run)}, Expect: v}
}

// RunEOD runs (or resumes, or returns the finished run of) the batch for business date d.
// progress, if not nil, is called after every page, as is the Observer.
func (s *Service) RunEOD(ctx context.Context, d credit.Date, progress func(Progress)) (*EODRun, error) {
	if d.IsZero() {
		return nil, apierror.Newf(apierror.InvalidRequest, "date", "a business date is required")
	}
	if d.After(s.Today()) {
		return nil, apierror.Newf(apierror.InvalidRequest, "date", "%s has not begun yet (today is %s)", d, s.Today())
	}
	s.eodMu.Lock()
	st := s.eodRun[d]
	if st == nil {
		st = &eodState{}
		s.eodRun[d] = st
	}
	s.eodMu.Unlock()
	st.mu.Lock() // one run of a date at a time in this process
	defer st.mu.Unlock()

	if err := s.EnsureChart(ctx); err != nil { // accounts added to the chart since the loans were made
		return nil, err
	}
	run, err := s.startRun(ctx, d)
	if err != nil || run.Stage == StageDone {
		return run, err
	}
	began := time.Now()
	report := func(done bool) {
		p := Progress{Date: d, Stage: run.Stage, Loans: run.Loans, Changed: run.Changed, Estimate: run.Estimate,
			Elapsed: time.Since(began), Done: done, Penalties: run.Penalties}
		if progress != nil {
			progress(p)
		}
		if s.cfg.Observer != nil {
			s.cfg.Observer.EODProgress(p)
		}
	}
	report(false)
	if run.Stage == StageLoans {
		if err := s.eodLoans(ctx, run, report); err != nil {
			return run, err
		}
	}
	if run.Stage == StageStatements {
		if err := s.eodStatements(ctx, run); err != nil {
			return run, err
		}
		run.Stage = StageReconcile
		if err := s.saveRun(ctx, run, nil); err != nil {
			return run, err
		}
		report(false)
	}
	if run.Stage == StageReconcile {
		rep, err := s.Reconcile(ctx)
		if err != nil {
			return run, err
		}
		run.Reconcile = rep
		if !rep.OK() {
			s.cfg.Logger.Error("credit: reconciliation found differences", "date", d, "mismatches", len(rep.Mismatches))
		}
		run.Stage, run.Finished = StageDone, s.cfg.Now().UTC()
		rec := eodRecord(run)
		_, err = s.eng.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{rec}, Timers: []timer.Timer{s.EODTimer(d.AddDays(1))},
			Events: []ledger.ModuleEvent{{Subject: "credit.eod.completed", ID: "credit.eod." + d.String(), Payload: rec.Record.Data}}})
		if err != nil {
			run.Version--
			return run, err
		}
		report(true)
		s.cfg.Logger.Info("credit end of day done", "date", d, "loans", run.Loans, "changed", run.Changed,
			"penalties", run.Penalties, "statements", run.Statements, "reconciled", rep.OK())
	}
	return run, nil
}

// startRun loads the run of d, creating it if needed.
func (s *Service) startRun(ctx context.Context, d credit.Date) (*EODRun, error) {
	for range RetriesMax {
		run, err := s.GetEOD(ctx, d)
		if err == nil {
			if run.Stage != StageDone {
				run.Resumed++
				if err := s.saveRun(ctx, run, nil); err != nil {
					return nil, err
				}
				s.cfg.Logger.Info("credit end of day resumed", "date", d, "stage", run.Stage, "cursor", run.Cursor, "loans", run.Loans)
			}
			return run, nil
		}
		if e := apierror.As(err); e == nil || e.Code != apierror.EODRunNotFound {
			return nil, err
		}
		run = &EODRun{Date: d, Stage: StageLoans, Started: s.cfg.Now().UTC()}
		if prev, err := s.GetEOD(ctx, d.AddDays(-1)); err == nil {
			run.Estimate = prev.Loans
		}
		_, err = s.eng.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{eodRecord(run)}})
		if e := apierror.As(err); e != nil && e.Code == apierror.RecordConflict {
			continue // another process started it: read it
		}
		return run, err
	}
	return nil, fmt.Errorf("credit: could not start the end-of-day run of %s", d)
}

// saveRun writes the run's record, with the rest of u if given.
func (s *Service) saveRun(ctx context.Context, run *EODRun, u *ledger.Unit) error {
	if u == nil {
		u = &ledger.Unit{}
	}
	u.Records = append(u.Records, eodRecord(run))
	_, err := s.eng.Commit(ctx, *u)
	if err != nil {
		run.Version-- // not written
	}
	return err
}

// eodUnit is the work of some changed loans, committed together.
type eodUnit struct {
	date  credit.Date
	loans []*Loan
	res   []dayResult
	keys  map[postingKey]bool // aggregated postings
	n     int                 // postings
	ev    int                 // events
}

// postingKey is a posting of the batch that a unit sums over its loans: earned interest,
// earned fees, and penalties (each per currency).
type postingKey struct{ debit, credit, code string }

// aggregated reports whether a transfer of the batch is summed per unit.
func aggregated(tr *ledger.TransferInput) bool {
	return tr.Code == "credit.earn.interest" || tr.Code == "credit.earn.fee" || tr.Code == "credit.penalty"
}

func newEODUnit(d credit.Date) *eodUnit { return &eodUnit{date: d, keys: map[postingKey]bool{}} }

// fits reports whether the unit can take one more loan's result within the ledger's bounds.
func (u *eodUnit) fits(res *dayResult) bool {
	n, ev := u.n, u.ev+events(res)
	added := map[postingKey]bool{}
	for i := range res.transfers {
		tr := &res.transfers[i]
		k := postingKey{tr.DebitAccountID, tr.CreditAccountID, tr.Code}
		if !aggregated(tr) {
			n++
		} else if !u.keys[k] && !added[k] {
			added[k] = true
			n++
		}
	}
	return len(u.loans) < eodUnitLoans && n <= ledger.UnitMax && ev <= ledger.UnitMax
}

func (u *eodUnit) add(l *Loan, res dayResult) {
	u.loans, u.res = append(u.loans, l), append(u.res, res)
	u.ev += events(&res)
	for i := range res.transfers {
		tr := &res.transfers[i]
		k := postingKey{tr.DebitAccountID, tr.CreditAccountID, tr.Code}
		if !aggregated(tr) {
			u.n++
		} else if !u.keys[k] {
			u.keys[k] = true
			u.n++
		}
	}
}

func events(res *dayResult) int {
	n := 0
	if res.event != nil {
		n++
	}
	if res.writeOff != nil {
		n++
	}
	return n
}

// unit is the ledger unit: each loan's record and events, and the postings, where earned
// interest, earned fees and penalties are summed over the unit's loans
// into one transfer each (credit.eod.<date>.<first loan>.<n>: a loan is in one committed
// unit per date, so the id is never reused).
func (u *eodUnit) unit() ledger.Unit {
	var out ledger.Unit
	sums := map[postingKey]int{} // index in out.Transfers
	loans := map[postingKey]int{}
	for i, l := range u.loans {
		for _, tr := range u.res[i].transfers {
			if !aggregated(&tr) {
				out.Transfers = append(out.Transfers, tr)
				continue
			}
			k := postingKey{tr.DebitAccountID, tr.CreditAccountID, tr.Code}
			if j, ok := sums[k]; ok {
				out.Transfers[j].Amount += tr.Amount
				loans[k]++
				continue
			}
			sums[k], loans[k] = len(out.Transfers), 1
			tr.ID = fmt.Sprintf("credit.eod.%s.%s.%d", u.date, u.loans[0].ID, len(sums))
			tr.Metadata = map[string]string{"date": u.date.String(), "first_loan": u.loans[0].ID}
			out.Transfers = append(out.Transfers, tr)
		}
		out.Records = append(out.Records, loanRecord(l))
		if ev := u.res[i].event; ev != nil {
			out.Events = append(out.Events, *ev)
		}
		if ev := u.res[i].writeOff; ev != nil {
			out.Events = append(out.Events, *ev)
		}
	}
	for k, j := range sums {
		out.Transfers[j].Metadata["loans"] = strconv.Itoa(loans[k])
	}
	return out
}

type loanWork struct {
	l   *Loan
	res dayResult
}

// eodBatch is a page of loans read and brought to the date in memory, ready to commit.
type eodBatch struct {
	n         int    // loans looked at
	last      string // the id of its last loan (the cursor after it)
	more      bool   // pages follow
	units     []*eodUnit
	writeOffs []*Loan // each committed on its own, with its line (redoLoans)
	err       error
}

// readEODPage reads the page of loans after cursor and applies the date to them in memory.
func (s *Service) readEODPage(ctx context.Context, d credit.Date, cursor string) *eodBatch {
	recs, more, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLoan, Status: LoanActive, StartingAfter: cursor,
		Limit: eodPage})
	if err != nil {
		return &eodBatch{err: err}
	}
	pg := &eodBatch{n: len(recs), more: more}
	if len(recs) > 0 {
		pg.last = recs[len(recs)-1].ID
	}
	var work []loanWork
	for _, r := range recs {
		if next, ok := loanNext(r.Data); ok && (next.IsZero() || next.After(d)) {
			continue // nothing to do today: not even decoded
		}
		l, err := decodeLoanRecord(r, true)
		if err != nil {
			return &eodBatch{err: err}
		}
		p, e := s.Product(l.Product)
		if e != nil {
			return &eodBatch{err: fmt.Errorf("credit: loan %s: %w", l.ID, e)}
		}
		if res, changed := advance(l, p, d); changed {
			work = append(work, loanWork{l, res})
		}
	}
	// Units of consecutive loans: a unit sums the penalties of its loans, whatever their
	// lines, into one posting on the currency's penalty receivable.
	cur := newEODUnit(d)
	for _, w := range work {
		if w.res.writeOff != nil {
			pg.writeOffs = append(pg.writeOffs, w.l)
			continue
		}
		if !cur.fits(&w.res) {
			pg.units = append(pg.units, cur)
			cur = newEODUnit(d)
		}
		cur.add(w.l, w.res)
	}
	if len(cur.loans) > 0 {
		pg.units = append(pg.units, cur)
	}
	return pg
}

// eodLoans runs stage 1 from the run's cursor. The next page is read and prepared while one
// is committed; the checkpoint after a page is written once all its units are.
func (s *Service) eodLoans(ctx context.Context, run *EODRun, report func(bool)) error {
	d := run.Date
	next := make(chan *eodBatch, 1)
	read := func(cursor string) { next <- s.readEODPage(ctx, d, cursor) }
	go read(run.Cursor)
	for {
		pg := <-next
		if pg.err != nil {
			return pg.err
		}
		if pg.more {
			go read(pg.last)
		}
		changed, err := s.commitEODUnits(ctx, d, pg.units)
		if err != nil {
			return err
		}
		if len(pg.writeOffs) > 0 {
			if err := s.redoLoans(ctx, d, &eodUnit{loans: pg.writeOffs}, changed.add, new(sync.Mutex)); err != nil {
				return err
			}
		}
		run.Loans += int64(pg.n)
		run.Changed += changed.loans
		run.Earned += changed.earned
		run.Penalties += changed.penalty
		run.StageEvents += changed.events
		run.WrittenOff += changed.writtenOff
		if pg.n > 0 {
			run.Cursor = pg.last
		}
		if !pg.more {
			run.Stage, run.Cursor = StageStatements, ""
		}
		if err := s.saveRun(ctx, run, nil); err != nil {
			return err
		}
		report(false)
		if !pg.more {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

type eodTotals struct{ loans, earned, penalty, events, writtenOff int64 }

func (tot *eodTotals) add(res dayResult) {
	tot.loans++
	tot.earned += res.earned
	tot.penalty += res.penalty
	if res.event != nil {
		tot.events++
	}
	if res.writeOff != nil {
		tot.writtenOff++
	}
}

// commitEODUnits commits units, EODWorkers at a time. A unit that meets a concurrent change
// of one of its loans (a repayment) is redone loan by loan from the stored versions.
func (s *Service) commitEODUnits(ctx context.Context, d credit.Date, units []*eodUnit) (eodTotals, error) {
	var (
		mu    sync.Mutex
		tot   eodTotals
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, s.cfg.EODWorkers)
	)
	add := tot.add
	for _, u := range units {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := s.eng.Commit(ctx, u.unit())
			if e := apierror.As(err); e != nil && e.Code == apierror.RecordConflict {
				err = s.redoLoans(ctx, d, u, add, &mu)
			} else if err == nil {
				mu.Lock()
				for _, r := range u.res {
					add(r)
				}
				mu.Unlock()
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return tot, first
}

// redoLoans applies the date to each loan of a unit on its own, reading it again. A loan
// written off is committed with its line, frozen if the product says so (freezeOnWriteOff).
func (s *Service) redoLoans(ctx context.Context, d credit.Date, u *eodUnit, add func(dayResult), mu *sync.Mutex) error {
	for _, old := range u.loans {
		var res dayResult
		var did bool
		err := s.commit(ctx, func() (*ledger.Unit, error) {
			l, err := s.Loan(ctx, old.ID)
			if err != nil {
				return nil, err
			}
			p, e := s.Product(l.Product)
			if e != nil {
				return nil, e
			}
			if res, did = advance(l, p, d); !did {
				return nil, errDone
			}
			one := newEODUnit(d)
			one.add(l, res)
			un := one.unit()
			if res.writeOff != nil && p.FreezeLineOnWriteOff {
				if err := s.freezeOnWriteOff(ctx, l, &un); err != nil {
					return nil, err
				}
			}
			return &un, nil
		})
		if err != nil {
			return err
		}
		if did {
			mu.Lock()
			add(res)
			mu.Unlock()
		}
	}
	return nil
}
