package httpapi

import (
	"bytes"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/auth"
)

// Guard is the authentication layer: who may call which route, how often, and which
// modules an operator has switched off.
type Guard struct {
	// Keys authenticates bearer tokens and serves the key and audit routes. Required.
	Keys *auth.Service
	// Limits, if set, rate-limits each key (429 rate_limited with Retry-After).
	Limits *auth.Limiter
	// Switches, if set, refuses the routes of a module that is degraded (its writes) or off
	// (everything) with 503 degraded.
	Switches *auth.Switches
	// Rejected, if set, is called for every request refused before its handler, with the
	// reason: "unauthenticated", "forbidden", "rate_limited" or "degraded".
	Rejected func(reason string)
}

// Rejection reasons passed to Guard.Rejected.
const (
	RejectUnauthenticated = "unauthenticated"
	RejectForbidden       = "forbidden"
	RejectRateLimited     = "rate_limited"
	RejectDegraded        = "degraded"
)

// RejectReasons lists every reason Guard.Rejected is called with.
var RejectReasons = []string{RejectUnauthenticated, RejectForbidden, RejectRateLimited, RejectDegraded}

// UseAuth turns authentication on: every route with a scope then needs
// "Authorization: Bearer <key>" with a key holding that scope (routes registered with Handle,
// such as /healthz, stay public). It also registers the admin routes /v1/keys and /v1/audit.
// Call it once, before serving.
func (s *Server) UseAuth(g Guard) {
	if g.Keys == nil {
		panic("httpapi: UseAuth needs Guard.Keys")
	}
	if !s.guard.CompareAndSwap(nil, &g) {
		panic("httpapi: UseAuth called twice")
	}
	s.HandleScoped("POST /v1/keys", ScopeAdmin, http.HandlerFunc(s.createKey))
	s.HandleScoped("GET /v1/keys", ScopeAdmin, http.HandlerFunc(s.listKeys))
	s.HandleScoped("GET /v1/keys/{id}", ScopeAdmin, http.HandlerFunc(s.getKey))
	s.HandleScoped("POST /v1/keys/{id}/revoke", ScopeAdmin, http.HandlerFunc(s.revokeKey))
	s.HandleScoped("GET /v1/audit", ScopeAdmin, http.HandlerFunc(s.listAudit))
}

// gate lets a request for a route that needs scope through, returning it with the caller in
// its context, or answers it and returns false. The order: who are you (401), may you
// (403), not too often (429), is the module on (503).
func (s *Server) gate(w http.ResponseWriter, r *http.Request, g *Guard, scope string) (*http.Request, bool) {
	token, present := bearer(r)
	key, err := g.Keys.Authenticate(r.Context(), token)
	if err != nil {
		e := s.public(r, err)
		if e.Code == apierror.Unauthenticated {
			challenge := `Bearer realm="fincore"`
			if present {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			g.reject(RejectUnauthenticated)
		}
		s.writeError(w, e.Status(), e)
		return nil, false
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.actor = key.ID
	}
	if !key.Allows(scope) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fincore", error="insufficient_scope", scope="`+scope+`"`)
		g.reject(RejectForbidden)
		s.Error(w, r, apierror.Newf(apierror.Forbidden, "", "The API key %s lacks the scope %s that %s needs.", key.ID, scope, r.Pattern))
		return nil, false
	}
	if g.Limits != nil {
		if ok, wait := g.Limits.Allow(key.ID); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			g.reject(RejectRateLimited)
			s.Error(w, r, apierror.Newf(apierror.RateLimited, "", "The API key %s is over its rate limit; retry in %d s.", key.ID, max(secs, 1)))
			return nil, false
		}
	}
	if g.Switches != nil {
		if module, state, refused := g.Switches.ForScope(scope); refused {
			g.reject(RejectDegraded)
			what := "everything"
			if state == auth.Degraded {
				what = "writes"
			}
			s.Error(w, r, apierror.Newf(apierror.Degraded, "", "%s is %s by an operator: it refuses %s for now; retry later.", module, state, what))
			return nil, false
		}
	}
	ctx := auth.WithKey(WithActor(r.Context(), key.ID), key)
	return r.WithContext(ctx), true
}

// Switch returns the state of degradation switch name, for handlers that honour finer
// switches than their module's ("payments.channel.icbc"): On when authentication is off or
// has no switches.
func (s *Server) Switch(name string) auth.State {
	if g := s.guard.Load(); g != nil && g.Switches != nil {
		return g.Switches.State(name)
	}
	return auth.On
}

func (g *Guard) reject(reason string) {
	if g.Rejected != nil {
		g.Rejected(reason)
	}
}

// bearer returns the token of an "Authorization: Bearer <token>" header and whether the
// header was there at all.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "\x00", true // present but empty: invalid, not missing
	}
	return token, true
}

// origin is who makes a change through the API, for the audit log.
func origin(r *http.Request) auth.Origin {
	return auth.Origin{Actor: Actor(r.Context()), RequestID: RequestID(r.Context())}
}

// createdKey is the body of POST /v1/keys: the key and, this once, its secret.
type createdKey struct {
	auth.KeyView
	Secret string `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readJSON(w, r)
	if !ok {
		return
	}
	spec, e := decodeKeySpec(body)
	if e != nil {
		s.Error(w, r, e)
		return
	}
	k, token, err := s.guard.Load().Keys.CreateKey(r.Context(), origin(r), spec)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusCreated, createdKey{KeyView: k.View(), Secret: token})
}

// decodeKeySpec decodes POST /v1/keys: {"name", "scopes": [...], "tenant_id"?}.
func decodeKeySpec(body []byte) (auth.KeySpec, *apierror.Error) {
	var spec auth.KeySpec
	d, e := newDecoder(body)
	if e != nil {
		return spec, e
	}
	var hasScopes bool
	present, e := d.object("", func(key, p string) *apierror.Error {
		var e *apierror.Error
		switch key {
		case "name":
			_, e = d.str(p, &spec.Name)
		case "tenant_id":
			_, e = d.str(p, &spec.TenantID)
		case "scopes":
			hasScopes, e = d.array(p, func(i int, p string) *apierror.Error {
				if i >= auth.ScopesMax {
					return invalid("scopes", "A key may hold at most %d scopes.", auth.ScopesMax)
				}
				var sc string
				if _, e := d.str(p, &sc); e != nil {
					return e
				}
				spec.Scopes = append(spec.Scopes, sc)
				return nil
			})
		default:
			return unknownField(p)
		}
		return e
	})
	if e = d.finishObject(present, e); e != nil {
		return spec, e
	}
	if spec.Name == "" {
		return spec, required("name")
	}
	if !hasScopes {
		return spec, required("scopes")
	}
	return spec, nil
}

// keyList is a page of keys.
type keyList struct {
	Data    []auth.KeyView `json:"data"`
	HasMore bool           `json:"has_more"`
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := s.listQuery(w, r, auth.ListMax)
	if !ok {
		return
	}
	ks, more, err := s.guard.Load().Keys.ListKeys(r.Context(), q.Get("starting_after"), limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := keyList{Data: make([]auth.KeyView, len(ks)), HasMore: more}
	for i, k := range ks {
		out.Data[i] = k.View()
	}
	WriteJSON(w, http.StatusOK, out)
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		s.Error(w, r, e)
		return
	}
	k, err := s.guard.Load().Keys.Key(r.Context(), r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, k.View())
}

// revokeKey serves POST /v1/keys/{id}/revoke. The body may be empty or {}.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		s.Error(w, r, e)
		return
	}
	body, e := s.readOptionalBody(w, r)
	if b := bytes.TrimSpace(body); e == nil && len(b) > 0 && !bytes.Equal(b, []byte("{}")) {
		e = invalid("", "POST /v1/keys/{id}/revoke takes no parameters: send no body or {}.")
	}
	if e != nil {
		s.Error(w, r, e)
		return
	}
	k, err := s.guard.Load().Keys.RevokeKey(r.Context(), origin(r), r.PathValue("id"))
	if err != nil {
		s.Error(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, k.View())
}

// auditList is a page of the audit log.
type auditList struct {
	Data    []auth.AuditView `json:"data"`
	HasMore bool             `json:"has_more"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := s.listQuery(w, r, auth.ListMax, "actor", "action")
	if !ok {
		return
	}
	es, more, err := s.guard.Load().Keys.ListAudit(r.Context(), q.Get("starting_after"), q.Get("actor"), q.Get("action"), limit)
	if err != nil {
		s.Error(w, r, err)
		return
	}
	out := auditList{Data: make([]auth.AuditView, len(es)), HasMore: more}
	for i, e := range es {
		out.Data[i] = e.View()
	}
	WriteJSON(w, http.StatusOK, out)
}

// listQuery parses a list's query string: limit (1 to max, default listLimitDefault),
// starting_after and the filters named. On a bad query it answers the request and returns
// false.
func (s *Server) listQuery(w http.ResponseWriter, r *http.Request, max int, filters ...string) (url.Values, int, bool) {
	q, e := query(r, append([]string{"limit", "starting_after"}, filters...)...)
	limit := listLimitDefault
	if v := q.Get("limit"); e == nil && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > max || v[0] == '+' {
			e = invalid("limit", "limit must be an integer between 1 and %d.", max)
		}
		limit = n
	}
	if e != nil {
		s.Error(w, r, e)
		return nil, 0, false
	}
	return q, limit, true
}
