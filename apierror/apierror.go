// Package apierror defines the typed errors of the public API: a stable code, a plain message
// and optionally the offending parameter. Codes and their HTTP statuses live in registry.go.
package apierror

import (
	"errors"
	"fmt"
)

// Code is a stable, documented error code.
type Code string

// Def is one registry entry.
type Def struct {
	Code    Code
	Status  int
	Message string
}

var byCode = func() map[Code]Def {
	m := make(map[Code]Def, len(registry))
	for _, d := range registry {
		if _, dup := m[d.Code]; dup {
			panic("apierror: duplicate code " + string(d.Code))
		}
		m[d.Code] = d
	}
	return m
}()

// Registry returns every registered error definition in registry order.
func Registry() []Def { return append([]Def(nil), registry...) }

// Lookup returns the definition of code; unknown codes map to Internal.
func Lookup(c Code) Def {
	if d, ok := byCode[c]; ok {
		return d
	}
	return byCode[Internal]
}

// Error is an API error: what a client sees.
type Error struct {
	Code    Code
	Message string
	Param   string
}

func (e *Error) Error() string {
	if e.Param != "" {
		return fmt.Sprintf("%s: %s (param %s)", e.Code, e.Message, e.Param)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Status is the HTTP status of the error's code.
func (e *Error) Status() int { return Lookup(e.Code).Status }

// Type is the error's class, derived from its status.
func (e *Error) Type() string { return TypeOf(e.Status()) }

// TypeOf names the class of errors with an HTTP status.
func TypeOf(status int) string {
	switch {
	case status == 401:
		return "authentication_error"
	case status == 403:
		return "permission_error"
	case status == 404:
		return "not_found_error"
	case status == 409:
		return "conflict_error"
	case status == 422:
		return "unprocessable_error"
	case status == 429:
		return "rate_limit_error"
	case status == 503:
		return "unavailable_error"
	case status >= 500:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

// New returns an error with code and the registry's message.
func New(c Code, param string) *Error {
	return &Error{Code: c, Message: Lookup(c).Message, Param: param}
}

// Newf returns an error with code and a specific message.
func Newf(c Code, param, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...), Param: param}
}

// As returns the *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
