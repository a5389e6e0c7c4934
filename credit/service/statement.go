package service

import (
	"context"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/ledger"
)

const statementPage = 200

// StatementID is the id of an account's statement of a date.
func StatementID(account string, d credit.Date) string { return account + "." + d.String() }

// dueDayAfter is the first date after d on day-of-month day (1 to 28).
func dueDayAfter(d credit.Date, day int) credit.Date {
	due, _ := credit.NewDate(d.Year(), d.Month(), day)
	if !due.After(d) {
		due = due.AddMonths(1)
	}
	return due
}

// buildStatement is an account's statement on d: every installment still owing that falls
// due by the payment due date (the product's due day after d), past due or not.
func buildStatement(line *Line, p *credit.Product, loans []*Loan, d credit.Date) *Statement {
	st := &Statement{ID: StatementID(line.ID, d), Account: line.ID, Date: d, DueDate: dueDayAfter(d, p.DueDay),
		Currency: line.Currency, Lines: []StatementLine{}}
	for _, l := range loans {
		for _, it := range l.Items {
			if it.Total() == 0 || it.DueDate.After(st.DueDate) {
				continue
			}
			sl := StatementLine{Loan: l.ID, Merchant: l.Merchant, Period: it.Period, Periods: len(l.Items), DueDate: it.DueDate,
				Principal: it.Principal, Interest: it.Interest, Fee: it.Fee, Penalty: it.Penalty, Total: it.Total(),
				PastDue: !it.DueDate.After(d)}
			st.Lines = append(st.Lines, sl)
			st.Total += sl.Total
			if sl.PastDue {
				st.PastDue += sl.Total
			}
		}
	}
	return st
}

// eodStatements runs stage 2: statements for the lines whose product's statement day is
// the run's date.
func (s *Service) eodStatements(ctx context.Context, run *EODRun) error {
	d := run.Date
	cutting := false
	for _, p := range s.cfg.Products {
		cutting = cutting || p.StatementDay == d.Day()
	}
	if !cutting {
		return nil
	}
	for {
		recs, more, err := s.st.ListRecords(ctx, ledger.RecordQuery{Kind: KindLine, StartingAfter: run.Cursor, Limit: statementPage})
		if err != nil {
			return err
		}
		var writes []ledger.RecordWrite
		for _, r := range recs {
			var line Line
			if err := decode(r, &line, &line.Version); err != nil {
				return err
			}
			p := s.products[line.Product]
			if p == nil || p.StatementDay != d.Day() || line.OpenLoans == 0 {
				continue
			}
			loans, err := s.loansOf(ctx, line.ID, LoanActive) // a written-off purchase is in collection, not billed
			if err != nil {
				return err
			}
			st := buildStatement(&line, p, loans, d)
			if len(st.Lines) == 0 {
				continue
			}
			writes = append(writes, ledger.RecordWrite{Record: ledger.Record{Kind: KindStatement, ID: st.ID, Owner: line.ID, Status: "issued", Data: encode(st)}})
		}
		for len(writes) > 0 {
			n := min(len(writes), ledger.UnitMax-1)
			if err := s.writeStatements(ctx, writes[:n]); err != nil {
				return err
			}
			run.Statements += int64(n)
			writes = writes[n:]
		}
		if len(recs) > 0 {
			run.Cursor = recs[len(recs)-1].ID
		}
		if !more {
			run.Cursor = ""
			return nil
		}
		if err := s.saveRun(ctx, run, nil); err != nil {
			return err
		}
	}
}

// writeStatements writes new statements; those that exist already (a resumed run) are
// skipped one by one.
func (s *Service) writeStatements(ctx context.Context, ws []ledger.RecordWrite) error {
	evs := func(ws []ledger.RecordWrite) []ledger.ModuleEvent {
		out := make([]ledger.ModuleEvent, len(ws))
		for i, w := range ws {
			out[i] = ledger.ModuleEvent{Subject: "credit.statement.issued", ID: "credit.statement." + w.Record.ID, Payload: w.Record.Data}
		}
		return out
	}
	_, err := s.eng.Commit(ctx, ledger.Unit{Records: ws, Events: evs(ws)})
	if e := apierror.As(err); e == nil || e.Code != apierror.RecordConflict {
		return err
	}
	for _, w := range ws {
		_, err := s.eng.Commit(ctx, ledger.Unit{Records: []ledger.RecordWrite{w}, Events: evs([]ledger.RecordWrite{w})})
		if e := apierror.As(err); err != nil && (e == nil || e.Code != apierror.RecordConflict) {
			return err
		}
	}
	return nil
}

// Statements lists an account's statements, newest first.
func (s *Service) Statements(ctx context.Context, account, startingAfter string, limit int) ([]*Statement, bool, error) {
	if _, err := s.Line(ctx, account); err != nil {
		return nil, false, err
	}
	return listOwned[Statement](ctx, s, KindStatement, account, startingAfter, limit, "a statement of account")
}
