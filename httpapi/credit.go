package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/url"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/credit"
	"github.com/fincore/fincore/credit/service"
	"github.com/fincore/fincore/money"
)

// Scopes of the credit routes.
const (
	ScopeCreditRead  = "credit:read"
	ScopeCreditWrite = "credit:write"
)

// creditAPI serves the credit routes on a credit service.
type creditAPI struct {
	s   *Server
	svc *service.Service
}

// RegisterCredit adds the credit routes (docs/credit.md) served by svc.
func (s *Server) RegisterCredit(svc *service.Service) {
	c := &creditAPI{s: s, svc: svc}
	s.HandleScoped("GET /v1/credit/products", ScopeCreditRead, http.HandlerFunc(c.products))
	s.HandleScoped("POST /v1/credit/applications", ScopeCreditWrite, http.HandlerFunc(c.apply))
	s.HandleScoped("GET /v1/credit/applications/{id}", ScopeCreditRead, http.HandlerFunc(c.getApplication))
	s.HandleScoped("GET /v1/credit/accounts/{id}", ScopeCreditRead, http.HandlerFunc(c.getAccount))
	s.HandleScoped("POST /v1/credit/accounts/{id}/freeze", ScopeAdmin, http.HandlerFunc(c.freeze(true)))
	s.HandleScoped("POST /v1/credit/accounts/{id}/unfreeze", ScopeAdmin, http.HandlerFunc(c.freeze(false)))
	s.HandleScoped("GET /v1/credit/accounts/{id}/purchases", ScopeCreditRead, http.HandlerFunc(c.listPurchases))
	s.HandleScoped("GET /v1/credit/accounts/{id}/statements", ScopeCreditRead, http.HandlerFunc(c.listStatements))
	s.HandleScoped("POST /v1/credit/purchases", ScopeCreditWrite, http.HandlerFunc(c.purchase))
	s.HandleScoped("GET /v1/credit/purchases/{id}", ScopeCreditRead, http.HandlerFunc(c.getPurchase))
	s.HandleScoped("POST /v1/credit/purchases/{id}/refunds", ScopeCreditWrite, http.HandlerFunc(c.refund))
	s.HandleScoped("GET /v1/credit/purchases/{id}/refunds", ScopeCreditRead, http.HandlerFunc(c.listRefunds))
	s.HandleScoped("GET /v1/credit/refunds/{id}", ScopeCreditRead, http.HandlerFunc(c.getRefund))
	s.HandleScoped("POST /v1/credit/repayments", ScopeCreditWrite, http.HandlerFunc(c.repay))
	s.HandleScoped("GET /v1/credit/repayments/{id}", ScopeCreditRead, http.HandlerFunc(c.getRepayment))
	s.HandleScoped("GET /v1/credit/eod/{date}", ScopeCreditRead, http.HandlerFunc(c.getEOD))
	s.HandleScoped("POST /v1/credit/eod/{date}", ScopeAdmin, http.HandlerFunc(c.runEOD))
}

// fields decodes a flat JSON object of strings and integers: each known field is read into
// its destination; unknown fields are refused.
type fields struct {
	strs map[string]*string
	ints map[string]struct {
		lo, hi int64
		dst    *int64
	}
}

func newFields() *fields {
	return &fields{strs: map[string]*string{}, ints: map[string]struct {
		lo, hi int64
		dst    *int64
	}{}}
}

func (f *fields) str(name string, dst *string) *fields { f.strs[name] = dst; return f }

func (f *fields) int(name string, lo, hi int64, dst *int64) *fields {
	f.ints[name] = struct {
		lo, hi int64
		dst    *int64
	}{lo, hi, dst}
	return f
}

// decode reads body; need names the fields that must be present.
func (f *fields) decode(body []byte, need ...string) *apierror.Error {
	d, e := newDecoder(body)
	if e != nil {
		return e
	}
	set := map[string]bool{}
	present, e := d.object("", func(key, p string) *apierror.Error {
		if dst, ok := f.strs[key]; ok {
			ok, e := d.str(p, dst)
			set[key] = ok
			return e
		}
		if in, ok := f.ints[key]; ok {
			ok, e := d.integer(p, in.lo, in.hi, in.dst)
			set[key] = ok
			return e
		}
		return unknownField(p)
	})
	if e = d.finishObject(present, e); e != nil {
		return e
	}
	for _, r := range need {
		if !set[r] {
			return required(r)
		}
	}
	return nil
}

func (c *creditAPI) products(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		c.s.Error(w, r, e)
		return
	}
	WriteJSON(w, http.StatusOK, map[string][]credit.Product{"data": c.svc.Products()})
}

// create serves a POST that makes an object: the body is decoded into the fields f names
// (need lists the required ones), then do makes the object (created false for a replay).
func (c *creditAPI) create(w http.ResponseWriter, r *http.Request, f *fields, need []string, do func(ctx context.Context) (any, bool, error)) {
	body, ok := c.s.readJSON(w, r)
	if !ok {
		return
	}
	if e := f.decode(body, need...); e != nil {
		c.s.Error(w, r, e)
		return
	}
	v, created, err := do(r.Context())
	c.answer(w, r, createdStatus(created), v, err)
}

func (c *creditAPI) apply(w http.ResponseWriter, r *http.Request) {
	var req service.ApplicationRequest
	f := newFields().str("id", &req.ID).str("customer_id", &req.CustomerID).str("name", &req.Name).
		str("id_number", &req.IDNumber).str("phone", &req.Phone).int("monthly_income", 0, money.MaxAmount, &req.MonthlyIncome)
	c.create(w, r, f, []string{"id", "customer_id", "name", "id_number"}, func(ctx context.Context) (any, bool, error) {
		return c.svc.Apply(ctx, req)
	})
}

func (c *creditAPI) purchase(w http.ResponseWriter, r *http.Request) {
	var req service.PurchaseRequest
	var periods int64
	f := newFields().str("id", &req.ID).str("account_id", &req.AccountID).str("merchant_id", &req.MerchantID).
		int("amount", 1, money.MaxAmount, &req.Amount).str("currency", &req.Currency).str("plan", &req.Plan).
		int("periods", 2, credit.PeriodsMax, &periods)
	c.create(w, r, f, []string{"id", "account_id", "merchant_id", "amount", "currency", "plan"}, func(ctx context.Context) (any, bool, error) {
		req.Periods = int(periods)
		return c.svc.Purchase(ctx, req)
	})
}

func (c *creditAPI) repay(w http.ResponseWriter, r *http.Request) {
	var req service.RepaymentRequest
	f := newFields().str("id", &req.ID).str("account_id", &req.AccountID).int("amount", 1, money.MaxAmount, &req.Amount).
		str("currency", &req.Currency).str("purchase_id", &req.LoanID)
	c.create(w, r, f, []string{"id", "account_id", "amount", "currency"}, func(ctx context.Context) (any, bool, error) {
		return c.svc.Repay(ctx, req)
	})
}

// refund serves POST /v1/credit/purchases/{id}/refunds: {"id", "amount"}.
func (c *creditAPI) refund(w http.ResponseWriter, r *http.Request) {
	req := service.RefundRequest{LoanID: r.PathValue("id")}
	f := newFields().str("id", &req.ID).int("amount", 1, money.MaxAmount, &req.Amount)
	c.create(w, r, f, []string{"id", "amount"}, func(ctx context.Context) (any, bool, error) {
		return c.svc.RefundPurchase(ctx, req)
	})
}

// freeze serves POST /v1/credit/accounts/{id}/freeze and /unfreeze: {"reason"} or no body.
func (c *creditAPI) freeze(frozen bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, e := query(r); e != nil {
			c.s.Error(w, r, e)
			return
		}
		body, e := c.s.readOptionalBody(w, r)
		var reason string
		if e == nil && len(bytes.TrimSpace(body)) > 0 {
			e = newFields().str("reason", &reason).decode(body)
		}
		if e != nil {
			c.s.Error(w, r, e)
			return
		}
		l, err := c.svc.SetFrozen(r.Context(), r.PathValue("id"), frozen, Actor(r.Context()), reason)
		c.answer(w, r, http.StatusOK, l, err)
	}
}

// get serves a GET of one object by the path's {id}.
func get[T any](c *creditAPI, fetch func(ctx context.Context, id string) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, e := query(r); e != nil {
			c.s.Error(w, r, e)
			return
		}
		v, err := fetch(r.Context(), r.PathValue("id"))
		c.answer(w, r, http.StatusOK, v, err)
	}
}

func (c *creditAPI) getApplication(w http.ResponseWriter, r *http.Request) {
	get(c, c.svc.GetApplication)(w, r)
}
func (c *creditAPI) getAccount(w http.ResponseWriter, r *http.Request)  { get(c, c.svc.Line)(w, r) }
func (c *creditAPI) getPurchase(w http.ResponseWriter, r *http.Request) { get(c, c.svc.Loan)(w, r) }
func (c *creditAPI) getRepayment(w http.ResponseWriter, r *http.Request) {
	get(c, c.svc.GetRepayment)(w, r)
}

func (c *creditAPI) getRefund(w http.ResponseWriter, r *http.Request) { get(c, c.svc.GetRefund)(w, r) }

// list serves a GET of a page of the objects under the path's {id} ({"data", "has_more"});
// filters are the query parameters it takes besides limit and starting_after.
func list[T any](c *creditAPI, fetch func(r *http.Request, q url.Values, limit int) ([]*T, bool, error), filters ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, limit, ok := c.s.listQuery(w, r, service.ListMax, filters...)
		if !ok {
			return
		}
		vs, more, err := fetch(r, q, limit)
		if vs == nil {
			vs = []*T{}
		}
		c.answer(w, r, http.StatusOK, map[string]any{"data": vs, "has_more": more}, err)
	}
}

func (c *creditAPI) listPurchases(w http.ResponseWriter, r *http.Request) {
	list(c, func(r *http.Request, q url.Values, limit int) ([]*service.Loan, bool, error) {
		return c.svc.Loans(r.Context(), r.PathValue("id"), q.Get("status"), q.Get("starting_after"), limit)
	}, "status")(w, r)
}

func (c *creditAPI) listStatements(w http.ResponseWriter, r *http.Request) {
	list(c, func(r *http.Request, q url.Values, limit int) ([]*service.Statement, bool, error) {
		return c.svc.Statements(r.Context(), r.PathValue("id"), q.Get("starting_after"), limit)
	})(w, r)
}

func (c *creditAPI) listRefunds(w http.ResponseWriter, r *http.Request) {
	list(c, func(r *http.Request, q url.Values, limit int) ([]*service.Refund, bool, error) {
		return c.svc.Refunds(r.Context(), r.PathValue("id"), q.Get("starting_after"), limit)
	})(w, r)
}

func (c *creditAPI) date(w http.ResponseWriter, r *http.Request) (credit.Date, bool) {
	d, err := credit.ParseDate(r.PathValue("date"))
	if err != nil {
		c.s.Error(w, r, invalid("date", "%v", err))
		return d, false
	}
	return d, true
}

func (c *creditAPI) getEOD(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		c.s.Error(w, r, e)
		return
	}
	d, ok := c.date(w, r)
	if !ok {
		return
	}
	run, err := c.svc.GetEOD(r.Context(), d)
	c.answer(w, r, http.StatusOK, run, err)
}

// runEOD serves POST /v1/credit/eod/{date}: it starts (or resumes) the batch in the
// background and answers 202 with the run as it stands; GET follows it.
func (c *creditAPI) runEOD(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		c.s.Error(w, r, e)
		return
	}
	d, ok := c.date(w, r)
	if !ok {
		return
	}
	if d.After(c.svc.Today()) {
		c.s.Error(w, r, invalid("date", "%s has not begun yet (today is %s)", d, c.svc.Today()))
		return
	}
	if run, err := c.svc.GetEOD(r.Context(), d); err == nil && run.Stage == service.StageDone {
		WriteJSON(w, http.StatusOK, run)
		return
	}
	started := make(chan struct{})
	go func() {
		close(started)
		if _, err := c.svc.RunEOD(context.WithoutCancel(r.Context()), d, nil); err != nil {
			c.s.log.Error("credit end of day failed", "date", d, "err", err)
		}
	}()
	<-started
	WriteJSON(w, http.StatusAccepted, map[string]any{"date": d, "status": "running"})
}

// answer writes v, or the error.
func (c *creditAPI) answer(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		c.s.Error(w, r, err)
		return
	}
	WriteJSON(w, status, v)
}
