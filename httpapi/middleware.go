package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/fincore/fincore/apierror"
)

type requestIDKey struct{}

// RequestID returns the id of the request being served, or "" outside a request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestIDPattern is what the API accepts as a caller's X-Request-Id; anything else is
// replaced by a generated id, so logs never carry arbitrary client bytes.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,128}$`)

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	var id [4 + 2*len(b)]byte
	copy(id[:], "req_")
	hex.Encode(id[4:], b[:])
	return string(id[:])
}

// statusWriter records what a handler answered, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	code   apierror.Code // error code, if the response is an error
	actor  string        // the authenticated caller, if any
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe wraps a request: request id (from X-Request-Id or generated, echoed in the
// response), a server span (a child of the client's when it sent traceparent), panic
// recovery, one log line with method, route pattern, status and duration, and the
// Options.Observe hook.
func (s *Server) observe(w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !requestIDPattern.MatchString(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	ctx, span := s.startSpan(r, id)
	ctx = context.WithValue(ctx, requestIDKey{}, id)
	r = r.WithContext(ctx)
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		p := recover()
		if p != nil {
			if p == http.ErrAbortHandler {
				span.End()
				panic(p)
			}
			s.log.ErrorContext(ctx, "panic serving request", "panic", p, "request_id", id, "stack", string(debug.Stack()))
			if sw.status == 0 {
				s.writeError(sw, http.StatusInternalServerError, apierror.New(apierror.Internal, ""))
			}
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK // what net/http sends for a handler that wrote nothing
		}
		if s.onDone != nil {
			s.onDone(r.Method, route, status, d)
		}
		endSpan(span, r.Pattern, status, sw.code, p)
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.Int("status", sw.status),
			slog.Duration("duration", d),
			slog.String("request_id", id),
		}
		if sw.code != "" {
			attrs = append(attrs, slog.String("code", string(sw.code)))
		}
		if sw.actor != "" {
			attrs = append(attrs, slog.String("actor", sw.actor))
		}
		s.log.LogAttrs(ctx, level, "http request", attrs...)
	}()
	next(sw, r)
}
