// Package httpapi is fincore's JSON-over-HTTP API: routing, strict request decoding, the
// error envelope, request logging and the OpenAPI document. It translates between HTTP and
// the domain packages (today the ledger) and holds no business rules of its own.
package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/ledger"
	"github.com/fincore/fincore/platform/idem"
)

// DefaultMaxBodyBytes is the default limit on a request body (1 MiB).
const DefaultMaxBodyBytes int64 = 1 << 20

// Options configure the API. Zero values take the defaults.
type Options struct {
	// Logger receives one line per request and the details of internal errors
	// (default slog.Default()).
	Logger *slog.Logger
	// MaxBodyBytes bounds a request body; larger bodies get 413 request_too_large
	// (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Observe, if set, is called once per request after it is served, with the method, the
	// route pattern ("GET /v1/accounts/{id}", or "unmatched" when no route matched), the
	// status answered and the time taken. It is how metrics see requests without this
	// package depending on a metrics library.
	Observe func(method, route string, status int, d time.Duration)
	// TracerProvider makes a server span for every request (default: the global provider, a
	// no-op unless the program installs an SDK). A W3C traceparent header from the client
	// makes the span a child of the client's.
	TracerProvider trace.TracerProvider
	// Idempotency, if set, makes every POST route honour the Idempotency-Key header
	// (docs/api.md); without it the header is ignored.
	Idempotency *idem.Service
}

// Server is the HTTP API. It is an http.Handler; more routes (from other modules) are added
// with Handle before or while it serves. Every route gets request ids, request logging, panic
// recovery and the JSON 404/405 answers.
type Server struct {
	eng     *ledger.Engine
	log     *slog.Logger
	maxBody int64
	mux     *http.ServeMux
	onDone  func(method, route string, status int, d time.Duration)
	tracer  trace.Tracer
	guard   atomic.Pointer[Guard]        // nil: authentication off (UseAuth turns it on)
	idem    atomic.Pointer[idem.Service] // nil: Idempotency-Key ignored

	mu      sync.Mutex
	routes  []string          // registered patterns, "METHOD /path"
	methods []string          // every method some route uses, for telling 405 from 404
	scopes  map[string]string // pattern -> scope a caller needs ("" = public)
}

// New returns the API handler serving the ledger routes on eng.
func New(eng *ledger.Engine, opts Options) http.Handler { return NewServer(eng, opts) }

// NewServer returns the API server with the ledger routes registered, so that callers can
// Handle more routes on it.
func NewServer(eng *ledger.Engine, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{eng: eng, log: opts.Logger, maxBody: opts.MaxBodyBytes, mux: http.NewServeMux(), onDone: opts.Observe,
		tracer: newTracer(opts.TracerProvider)}
	s.idem.Store(opts.Idempotency)
	s.HandleFunc("GET /healthz", s.healthz)
	s.HandleFunc("GET /openapi.json", serveOpenAPI)
	s.registerLedger()
	return s
}

// Handle registers h for pattern, a Go 1.22 ServeMux pattern that must name its method
// ("GET /v1/things/{id}"), as a public route (no scope needed). Routes under /v1 must also be
// described in openapi.json; a test checks it. Handle panics on a pattern without a method or
// one that conflicts with another.
func (s *Server) Handle(pattern string, h http.Handler) { s.HandleScoped(pattern, "", h) }

// HandleScoped registers h for pattern like Handle, and records the scope ("ledger:read",
// "admin", ...) a caller's key must hold to use the route. The scope is enforced by the
// authentication layer, which reads it with Scope; "" marks a public route. A POST route
// honours the Idempotency-Key header (see Options.Idempotency), with keys scoped to the
// caller's Actor.
func (s *Server) HandleScoped(pattern, scope string, h http.Handler) {
	method, _, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || strings.HasPrefix(method, "/") {
		panic("httpapi: pattern " + pattern + " must start with a method")
	}
	if method == http.MethodPost {
		h = s.idempotent(h)
	}
	s.mux.Handle(pattern, h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scopes == nil {
		s.scopes = make(map[string]string)
	}
	s.scopes[pattern] = scope
	s.routes = append(s.routes, pattern)
	if !slices.Contains(s.methods, method) {
		s.methods = append(s.methods, method)
	}
}

// HandleFunc registers a handler function for pattern; see Handle.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, http.HandlerFunc(h))
}

// Scope returns the scope registered for a route pattern ("" for a public route or an
// unknown pattern).
func (s *Server) Scope(pattern string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.scopes[pattern]
}

// Routes returns the registered patterns in registration order.
func (s *Server) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// ServeHTTP serves a request: it assigns the request id, routes, recovers panics and logs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.observe(w, r, s.route)
}

// route dispatches to the registered handler, or answers 404 or 405 in the API's error shape.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		// Matched (or a redirect to the canonical path of a match): let the mux serve it so
		// that it sets the path values and r.Pattern. r.Pattern is set here already so that
		// the log, metrics and span name the route of a request the guard refuses.
		r.Pattern = pattern
		if g := s.guard.Load(); g != nil {
			if scope := s.Scope(pattern); scope != "" {
				var ok bool
				if r, ok = s.gate(w, r, g, scope); !ok {
					return
				}
			}
		}
		s.mux.ServeHTTP(w, r)
		return
	}
	if allow := s.allowedMethods(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.Error(w, r, apierror.Newf(apierror.MethodNotAllowed, "", "%s is not allowed on %s; allowed: %s",
			r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	s.Error(w, r, apierror.Newf(apierror.RouteNotFound, "", "no route %s %s", r.Method, r.URL.Path))
}

// allowedMethods lists the methods with a route matching r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	s.mu.Lock()
	methods := slices.Clone(s.methods)
	s.mu.Unlock()
	var allow []string
	for _, m := range methods {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	slices.Sort(allow)
	return slices.Compact(allow)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
