package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/bank"
	"github.com/fincore/fincore/payment"
)

// Scopes of the reconciliation routes: reading reports, and importing statements and
// resolving discrepancies (which posts ledger adjustments). ScopeAdmin holds both.
const (
	ScopeReconRead  = "recon:read"
	ScopeReconWrite = "recon:write"
)

// ReconStatementMaxBytes bounds a statement file sent to POST /v1/recon/{channel}/{date}.
const ReconStatementMaxBytes = 16 << 20

// ReconOptions wire the reconciliation routes.
type ReconOptions struct {
	// Parse reads a statement file (CSV with a header: kind,id,channel_ref,amount,currency,
	// status,at); its errors name the first bad line.
	Parse func(io.Reader) ([]bank.StatementLine, error)
}

type reconAPI struct {
	s    *Server
	svc  *payment.Service
	opts ReconOptions
}

// RegisterRecon adds the reconciliation routes: import a channel's statement of a business
// day, read the report, resolve a discrepancy.
func (s *Server) RegisterRecon(svc *payment.Service, opts ReconOptions) {
	a := &reconAPI{s: s, svc: svc, opts: opts}
	s.HandleScoped("POST /v1/recon/{channel}/{date}", ScopeReconWrite, http.HandlerFunc(a.importStatement))
	s.HandleScoped("POST /v1/recon/{channel}/{date}/fetch", ScopeReconWrite, http.HandlerFunc(a.fetchStatement))
	s.HandleScoped("GET /v1/recon/{channel}/{date}", ScopeReconRead, http.HandlerFunc(a.get))
	s.HandleScoped("GET /v1/recon/{channel}/{date}/discrepancies", ScopeReconRead, http.HandlerFunc(a.discrepancies))
	s.HandleScoped("POST /v1/recon/{channel}/{date}/discrepancies/{id}/resolve", ScopeReconWrite, http.HandlerFunc(a.resolve))
}

// day checks that a recon request has no query string and parses its {date}; on failure it
// answers the request.
func (a *reconAPI) day(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	if _, e := query(r); e != nil {
		a.s.Error(w, r, e)
		return time.Time{}, false
	}
	return a.date(w, r)
}

// date parses a recon request's {date}; on failure it answers the request.
func (a *reconAPI) date(w http.ResponseWriter, r *http.Request) (time.Time, bool) {
	d, err := time.Parse(time.DateOnly, r.PathValue("date"))
	if err != nil {
		a.s.Error(w, r, invalid("date", "date must be a business day as YYYY-MM-DD, not %q.", clip(r.PathValue("date"))))
		return time.Time{}, false
	}
	return d, true
}

func (a *reconAPI) importStatement(w http.ResponseWriter, r *http.Request) {
	day, ok := a.day(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "text/csv" && mt != "text/plain") {
			a.s.Error(w, r, apierror.Newf(apierror.UnsupportedMedia, "", "Send the statement file as text/csv."))
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, ReconStatementMaxBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.s.Error(w, r, apierror.Newf(apierror.RequestTooLarge, "", "The statement is larger than the limit (%d bytes).", ReconStatementMaxBytes))
			return
		}
		a.s.Error(w, r, invalid("", "The request body could not be read: %v.", err))
		return
	}
	lines, err := a.opts.Parse(bytes.NewReader(body))
	if err != nil {
		a.s.Error(w, r, apierror.Newf(apierror.ReconStatementInvalid, "statement", "%s", clip(err.Error())))
		return
	}
	actor := Actor(r.Context())
	rep, created, err := a.svc.ReconcileAs(r.Context(), actor, r.PathValue("channel"), day, lines)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(created), rep.Brief())
}

// fetchStatement fetches the channel's statement of the day from the channel itself and
// reconciles it, as the daily schedule does.
func (a *reconAPI) fetchStatement(w http.ResponseWriter, r *http.Request) {
	day, ok := a.day(w, r)
	if !ok {
		return
	}
	rep, created, err := a.svc.FetchReconcile(r.Context(), Actor(r.Context()), r.PathValue("channel"), day)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(created), rep.Brief())
}

func (a *reconAPI) get(w http.ResponseWriter, r *http.Request) {
	day, ok := a.day(w, r)
	if !ok {
		return
	}
	rep, err := a.svc.GetReconReport(r.Context(), r.PathValue("channel"), day)
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, rep.Brief())
}

// discrepancyList is a page of a report's discrepancies.
type discrepancyList struct {
	Data    []payment.Discrepancy `json:"data"`
	HasMore bool                  `json:"has_more"`
}

func (a *reconAPI) discrepancies(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := a.s.listQuery(w, r, 500, "status")
	if !ok {
		return
	}
	day, ok := a.date(w, r)
	if !ok {
		return
	}
	ds, more, err := a.svc.ListDiscrepancies(r.Context(), r.PathValue("channel"), day,
		payment.DiscrepancyQuery{Status: q.Get("status"), StartingAfter: q.Get("starting_after"), Limit: limit})
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, discrepancyList{Data: ds, HasMore: more})
}

func (a *reconAPI) resolve(w http.ResponseWriter, r *http.Request) {
	day, ok := a.day(w, r)
	if !ok {
		return
	}
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var action, note string
	e := decodeFields(body, func(d *decoder, key, p string) (bool, *apierror.Error) {
		var e *apierror.Error
		switch key {
		case "action":
			_, e = d.str(p, &action)
		case "note":
			_, e = d.str(p, &note)
		default:
			return false, nil
		}
		return true, e
	})
	if e == nil && action == "" {
		e = required("action")
	}
	if e == nil && note == "" {
		e = required("note")
	}
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	// The report must exist for this channel (a clear 404 for an unknown channel or day).
	rep, err := a.svc.GetReconReport(r.Context(), r.PathValue("channel"), day)
	if err == nil {
		rep, err = a.svc.ResolveDiscrepancy(r.Context(), rep.ID, r.PathValue("id"), action, note, Actor(r.Context()))
	}
	if err != nil {
		a.s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, rep.Brief())
}
