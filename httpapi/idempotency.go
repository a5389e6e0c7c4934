package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/idem"
)

// Idempotency headers (docs/api.md, "Idempotency-Key").
const (
	// IdempotencyKeyHeader carries the client's key on a POST.
	IdempotencyKeyHeader = "Idempotency-Key"
	// ReplayedHeader is "true" on a response replayed from storage.
	ReplayedHeader = "Idempotent-Replayed"
)

// replayedHeaders are the response headers stored with a response and replayed with it.
// Per-request headers (X-Request-Id, Date) are not: a replay has its own.
var replayedHeaders = []string{"Content-Type", "Location", "Link"}

// UseIdempotency makes every POST route honour the Idempotency-Key header with svc (nil turns
// it off again); see Options.Idempotency. It is safe to call while serving.
func (s *Server) UseIdempotency(svc *idem.Service) { s.idem.Store(svc) }

// idempotent wraps the handler of a POST route: a request with an Idempotency-Key header
// executes once per key and caller, and its repetitions get the stored response. Without the
// header, or when the server has no idempotency service, the request passes through.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys := r.Header.Values(IdempotencyKeyHeader)
		svc := s.idem.Load()
		if svc == nil || len(keys) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		if len(keys) > 1 || idem.ValidKey(keys[0]) != nil {
			s.Error(w, r, invalid(IdempotencyKeyHeader, "The Idempotency-Key header must appear once and hold 1 to %d printable ASCII characters without spaces (a UUID, for example).", idem.KeyMax))
			return
		}
		body, e := s.readLimited(w, r)
		if e != nil {
			s.Error(w, r, e)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx := r.Context()
		outcome, stored, claim, err := svc.Begin(ctx, Actor(ctx), keys[0], fingerprint(r, body))
		if err != nil {
			s.log.ErrorContext(ctx, "idempotency", "err", err, "request_id", RequestID(ctx))
			s.Error(w, r, apierror.Newf(apierror.Unavailable, "", "The idempotency key could not be checked; retry the request with the same key."))
			return
		}
		trace.SpanFromContext(ctx).SetAttributes(attribute.String("fincore.idempotency", outcome.String()))
		switch outcome {
		case idem.Replay:
			h := w.Header()
			for k, v := range stored.Header {
				h.Set(k, v)
			}
			h.Set(ReplayedHeader, "true")
			w.WriteHeader(stored.Status)
			w.Write(stored.Body)
		case idem.Conflict:
			s.Error(w, r, apierror.Newf(apierror.IdempotencyConflict, IdempotencyKeyHeader,
				"This Idempotency-Key was used with a different request (method, path or body); use a new key for a new request."))
		case idem.InProgress:
			w.Header().Set("Retry-After", "1")
			s.Error(w, r, apierror.New(apierror.IdempotencyInFlight, IdempotencyKeyHeader))
		default:
			s.execute(w, r, next, svc, claim)
		}
	})
}

// execute runs the request under claim and stores its response, or releases the key when
// the response is not to be stored (a server error) or the handler panicked.
func (s *Server) execute(w http.ResponseWriter, r *http.Request, next http.Handler, svc *idem.Service, claim *idem.Claim) {
	// The outcome is recorded even if the client has gone: a retry must find it.
	ctx := context.WithoutCancel(r.Context())
	cw := &captureWriter{ResponseWriter: w, max: svc.ResponseMax()}
	finished := false
	defer func() {
		if !finished { // the handler panicked
			if err := svc.Abandon(ctx, claim); err != nil {
				s.log.ErrorContext(ctx, "idempotency", "err", err, "request_id", RequestID(ctx))
			}
		}
	}()
	next.ServeHTTP(cw, r)
	finished = true
	resp := idem.Response{Status: cw.status, Body: cw.body.Bytes()}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	var err error
	switch {
	case cw.overflow:
		s.log.WarnContext(ctx, "idempotency: response too large to store; key released", "limit", cw.max, "request_id", RequestID(ctx))
		err = svc.Abandon(ctx, claim)
	case noStore(cw.Header()):
		// The response carries a secret (a new API key): it is not kept, and a retry executes.
		err = svc.Abandon(ctx, claim)
	default:
		resp.Header = make(map[string]string, len(replayedHeaders))
		for _, k := range replayedHeaders {
			if v := cw.Header().Get(k); v != "" {
				resp.Header[k] = v
			}
		}
		err = svc.Finish(ctx, claim, resp)
	}
	if err != nil {
		// The client has its answer; a retry with the key finds the key still claimed until the
		// lease ends, then executes again.
		s.log.ErrorContext(ctx, "idempotency", "err", err, "request_id", RequestID(ctx))
	}
}

// noStore reports whether a response forbids storing it (Cache-Control: no-store).
func noStore(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

// fingerprint identifies a request for its key: its method, path, query and body.
func fingerprint(r *http.Request, body []byte) []byte {
	h := sha256.New()
	for _, part := range []string{r.Method, r.URL.Path, r.URL.RawQuery} {
		io.WriteString(h, strconv.Itoa(len(part)))
		io.WriteString(h, ":")
		io.WriteString(h, part)
	}
	h.Write(body)
	return h.Sum(nil)
}

// captureWriter passes a response through and keeps a copy of its status and body (up to max
// bytes) for storage.
type captureWriter struct {
	http.ResponseWriter
	status   int
	body     bytes.Buffer
	max      int
	overflow bool
}

func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if !c.overflow {
		if c.body.Len()+len(b) > c.max {
			c.overflow = true
			c.body = bytes.Buffer{}
		} else {
			c.body.Write(b)
		}
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController and the error writer reach the underlying writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
