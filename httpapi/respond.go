package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
)

// errorEnvelope is the body of every error response: {"error": {...}}.
type errorEnvelope struct {
	Error errorObject `json:"error"`
}

// errorObject is the error as clients see it. Param is "" when no single parameter is at
// fault.
type errorObject struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param"`
}

func newErrorObject(status int, e *apierror.Error) *errorObject {
	return &errorObject{Type: apierror.TypeOf(status), Code: string(e.Code), Message: e.Message, Param: e.Param}
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only a programming error gets here (every response type marshals).
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorEnvelope{*newErrorObject(status, apierror.New(apierror.Internal, ""))})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// Error writes err in the API's error envelope with the status of its code. An error that is
// not an *apierror.Error is logged and answered with 500 internal_error and a generic
// message, so that no internal detail (SQL, paths) reaches the client.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	e := s.public(r, err)
	s.writeError(w, e.Status(), e)
}

// writeError writes e with an explicit status (an atomic batch answers 422 with its failing
// item's code).
func (s *Server) writeError(w http.ResponseWriter, status int, e *apierror.Error) {
	for u := w; u != nil; {
		if sw, ok := u.(*statusWriter); ok {
			sw.code = e.Code
			break
		}
		wr, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		u = wr.Unwrap()
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	WriteJSON(w, status, errorEnvelope{*newErrorObject(status, e)})
}

// public turns any error into one that is safe to show a client, logging what it hides.
func (s *Server) public(r *http.Request, err error) *apierror.Error {
	ctx := r.Context()
	if e := apierror.As(err); e != nil {
		if e.Status() >= 500 && e.Status() != http.StatusServiceUnavailable {
			// Internal errors may carry details meant for operators.
			s.log.ErrorContext(ctx, "internal error", "err", err, "request_id", RequestID(ctx))
			return apierror.New(e.Code, "")
		}
		if len(e.Param) > paramMax {
			// Copy: the engine may hand the same error to many requests.
			c := *e
			c.Param = clip(c.Param)
			return &c
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The client went away or a deadline passed before the ledger answered. The write may
		// still be applied; an idempotent retry with the same id tells.
		s.log.WarnContext(ctx, "request cancelled", "err", err, "request_id", RequestID(ctx))
		return apierror.Newf(apierror.Unavailable, "",
			"The request was cancelled before it completed; retry it with the same id to learn its outcome.")
	}
	s.log.ErrorContext(ctx, "internal error", "err", err, "request_id", RequestID(ctx))
	return apierror.New(apierror.Internal, "")
}

// paramMax bounds the length of a param echoed back to the client (an unknown field's name
// can be as long as the body).
const paramMax = 128

// clip shortens s to at most paramMax bytes without splitting a UTF-8 sequence.
func clip(s string) string {
	if len(s) <= paramMax {
		return s
	}
	n := paramMax
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
