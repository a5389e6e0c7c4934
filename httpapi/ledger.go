package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
)

// Ledger list limits.
const (
	listLimitDefault = 10
	listLimitMax     = ledger.ListLimitMax
)

func (s *Server) registerLedger() {
	s.HandleScoped("POST /v1/accounts", ScopeLedgerWrite, http.HandlerFunc(s.createAccount))
	s.HandleScoped("GET /v1/accounts/{id}", ScopeLedgerRead, http.HandlerFunc(s.getAccount))
	s.HandleScoped("GET /v1/accounts/{id}/transfers", ScopeLedgerRead, http.HandlerFunc(s.listAccountTransfers))
	s.HandleScoped("GET /v1/accounts/{id}/balances", ScopeLedgerRead, http.HandlerFunc(s.accountBalances))
	s.HandleScoped("POST /v1/transfers", ScopeLedgerWrite, http.HandlerFunc(s.createTransfer))
	s.HandleScoped("GET /v1/transfers/{id}", ScopeLedgerRead, http.HandlerFunc(s.getTransfer))
	s.HandleScoped("POST /v1/transfers/{pending_id}/post", ScopeLedgerWrite, http.HandlerFunc(s.closePending(ledger.ActionPost)))
	s.HandleScoped("POST /v1/transfers/{pending_id}/void", ScopeLedgerWrite, http.HandlerFunc(s.closePending(ledger.ActionVoid)))
	s.HandleScoped("POST /v1/transfer_batches", ScopeLedgerWrite, http.HandlerFunc(s.createBatch))
}

// createdStatus is 201 for a new object and 200 for an idempotent replay.
func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// readJSON reads a POST body after rejecting any query string.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if _, e := query(r); e != nil {
		s.Error(w, r, e)
		return nil, false
	}
	body, e := s.readBody(w, r)
	if e != nil {
		s.Error(w, r, e)
		return nil, false
	}
	return body, true
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r)
	if !ok {
		return
	}
	in, e := decodeAccount(body)
	if e != nil {
		s.Error(w, r, e)
		return
	}
	res, err := s.eng.CreateAccounts(r.Context(), []ledger.AccountInput{in})
	if err == nil && len(res) != 1 {
		err = errors.New("ledger returned no account result")
	}
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(res[0].Created), res[0].Account)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		s.Error(w, r, e)
		return
	}
	a, err := s.eng.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, a)
}

func (s *Server) createTransfer(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r)
	if !ok {
		return
	}
	in, e := decodeTransfer(body)
	if e != nil {
		s.Error(w, r, e)
		return
	}
	s.applyOne(w, r, in)
}

// closePending serves POST /v1/transfers/{pending_id}/post and /void.
func (s *Server) closePending(action ledger.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := s.readJSON(w, r)
		if !ok {
			return
		}
		in, e := decodeClose(body, action, r.PathValue("pending_id"))
		if e != nil {
			s.Error(w, r, e)
			return
		}
		s.applyOne(w, r, in)
	}
}

// applyOne applies a single transfer input and answers with the transfer.
func (s *Server) applyOne(w http.ResponseWriter, r *http.Request, in ledger.TransferInput) {
	t, created, err := s.eng.CreateTransfer(r.Context(), in)
	if err == nil && t == nil {
		err = errors.New("ledger returned no transfer")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(created), t)
}

func (s *Server) getTransfer(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		s.Error(w, r, e)
		return
	}
	t, err := s.eng.Transfer(r.Context(), r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, t)
}

// batchItem is one item of a batch response: the item's own status with either the transfer
// or the error.
type batchItem struct {
	Status   int              `json:"status"`
	Transfer *ledger.Transfer `json:"transfer,omitempty"`
	Error    *errorObject     `json:"error,omitempty"`
}

// batchResponse is the body of a successful POST /v1/transfer_batches.
type batchResponse struct {
	Data []batchItem `json:"data"`
}

// createBatch serves POST /v1/transfer_batches. An atomic batch either applies completely
// (201, or 200 when every item was a replay) or fails with 422 naming the failing item's
// index in param. A non-atomic batch answers 200 with one result per item.
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r)
	if !ok {
		return
	}
	ins, atomic, e := decodeBatch(body)
	if e != nil {
		s.Error(w, r, e)
		return
	}
	res, err := s.eng.CreateTransfers(r.Context(), ins, atomic)
	if be, ok := errors.AsType[*ledger.BatchError](err); ok {
		item := s.public(r, be.Err)
		if item.Status() >= 500 {
			s.writeError(w, item.Status(), item)
			return
		}
		msg := "Transfer " + strconv.Itoa(be.Index) + " of the atomic batch failed, so none was applied: " + item.Message
		if item.Param != "" {
			msg += " (field " + item.Param + ")"
		}
		s.writeError(w, http.StatusUnprocessableEntity, &apierror.Error{
			Code: item.Code, Message: msg, Param: strconv.Itoa(be.Index),
		})
		return
	}
	if err == nil && len(res) != len(ins) {
		err = errors.New("ledger returned the wrong number of batch results")
	}
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := batchResponse{Data: make([]batchItem, len(res))}
	anyCreated := false
	for i, rr := range res {
		switch {
		case rr.Err != nil:
			e := s.public(r, rr.Err)
			out.Data[i] = batchItem{Status: e.Status(), Error: newErrorObject(e.Status(), e)}
		case rr.Transfer == nil:
			e := s.public(r, errors.New("ledger returned an empty batch result"))
			out.Data[i] = batchItem{Status: e.Status(), Error: newErrorObject(e.Status(), e)}
		default:
			anyCreated = anyCreated || rr.Created
			out.Data[i] = batchItem{Status: createdStatus(rr.Created), Transfer: rr.Transfer}
		}
	}
	status := http.StatusOK
	if atomic {
		status = createdStatus(anyCreated)
	}
	WriteJSON(w, status, out)
}

// transferList is a page of transfers.
type transferList struct {
	Data    []*ledger.Transfer `json:"data"`
	HasMore bool               `json:"has_more"`
}

func (s *Server) listAccountTransfers(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := s.listQuery(w, r, listLimitMax)
	if !ok {
		return
	}
	ts, more, err := s.eng.AccountTransfers(r.Context(), r.PathValue("id"), q.Get("starting_after"), limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	if ts == nil {
		ts = []*ledger.Transfer{}
	}
	WriteJSON(w, http.StatusOK, transferList{Data: ts, HasMore: more})
}

// accountBalances is the body of GET /v1/accounts/{id}/balances.
type accountBalances struct {
	AccountID string           `json:"account_id"`
	At        ledger.Timestamp `json:"at"`
	Balances  ledger.Balances  `json:"balances"`
}

// Instants a ledger timestamp (int64 nanoseconds since the epoch) can represent.
var (
	minInstant = time.Unix(0, math.MinInt64)
	maxInstant = time.Unix(0, math.MaxInt64)
)

func (s *Server) accountBalances(w http.ResponseWriter, r *http.Request) {
	q, e := query(r, "at")
	if e != nil {
		s.Error(w, r, e)
		return
	}
	id := r.PathValue("id")
	v := q.Get("at")
	if v == "" {
		// Now: the account's current balances.
		a, err := s.eng.Account(r.Context(), id)
		if err != nil {
			s.Error(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, accountBalances{AccountID: a.ID, At: ledger.Timestamp(time.Now().UnixNano()), Balances: a.Balances})
		return
	}
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || at.Before(minInstant) || at.After(maxInstant) {
		s.Error(w, r, invalid("at", "at must be an RFC 3339 timestamp such as 2026-01-02T03:04:05Z (in a URL, encode + as %%2B)."))
		return
	}
	ts := ledger.Timestamp(at.UnixNano())
	b, err := s.eng.BalancesAt(r.Context(), id, ts)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, accountBalances{AccountID: id, At: ts, Balances: b})
}
