package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/platform/config"
)

// configListMax bounds a page of configuration values.
const configListMax = 1000

// RegisterConfig adds the configuration routes, served by c, all in the admin scope:
//
//	GET /v1/config?prefix=&limit=&starting_after=          current values, by key
//	GET /v1/config/{key}                                   one value with its version
//	PUT /v1/config/{key}                                   {"value", "reason"?, "expected_version"?}
//	GET /v1/config/{key}/history?limit=&starting_after=    the key's changes, newest first
//
// c is used only when a request comes (tests register the routes with nil).
func (s *Server) RegisterConfig(c *config.Center) {
	h := &configRoutes{s: s, c: c}
	s.HandleScoped("GET /v1/config", ScopeAdmin, http.HandlerFunc(h.list))
	s.HandleScoped("GET /v1/config/{key}", ScopeAdmin, http.HandlerFunc(h.get))
	s.HandleScoped("PUT /v1/config/{key}", ScopeAdmin, http.HandlerFunc(h.set))
	s.HandleScoped("GET /v1/config/{key}/history", ScopeAdmin, http.HandlerFunc(h.history))
}

type configRoutes struct {
	s *Server
	c *config.Center
}

// configList is a page of configuration values.
type configList struct {
	Data    []config.Entry `json:"data"`
	HasMore bool           `json:"has_more"`
}

// configHistory is a key's changes, newest first.
type configHistory struct {
	Data    []config.Change `json:"data"`
	HasMore bool            `json:"has_more"`
}

func (h *configRoutes) list(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := h.s.listQuery(w, r, configListMax, "prefix")
	if !ok {
		return
	}
	entries, err := h.c.List(r.Context(), q.Get("prefix"))
	if err != nil {
		h.s.Error(w, r, configError(err))
		return
	}
	if after := q.Get("starting_after"); after != "" {
		i, _ := slices.BinarySearchFunc(entries, after, func(e config.Entry, k string) int { return strings.Compare(e.Key, k) })
		for i < len(entries) && entries[i].Key <= after {
			i++
		}
		entries = entries[i:]
	}
	out := configList{Data: entries, HasMore: len(entries) > limit}
	if out.HasMore {
		out.Data = entries[:limit]
	}
	if out.Data == nil {
		out.Data = []config.Entry{}
	}
	WriteJSON(w, http.StatusOK, out)
}

func (h *configRoutes) get(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		h.s.Error(w, r, e)
		return
	}
	entry, err := h.c.Get(r.Context(), r.PathValue("key"))
	if err != nil {
		h.s.Error(w, r, configError(err))
		return
	}
	WriteJSON(w, http.StatusOK, entry)
}

func (h *configRoutes) set(w http.ResponseWriter, r *http.Request) {
	body, ok := h.s.readJSON(w, r)
	if !ok {
		return
	}
	value, meta, e := decodeConfigSet(body)
	if e != nil {
		h.s.Error(w, r, e)
		return
	}
	meta.Actor = Actor(r.Context())
	ch, err := h.c.Set(r.Context(), r.PathValue("key"), value, meta)
	if errors.Is(err, config.ErrAuditFailed) {
		h.s.log.ErrorContext(r.Context(), "configuration change not audited", "err", err, "request_id", RequestID(r.Context()))
		h.s.Error(w, r, apierror.Newf(apierror.Unavailable, "",
			"The change was stored as version %d of %s, but the audit log did not record it; it is in the key's history. Check the audit log's storage.",
			ch.Version, ch.Key))
		return
	}
	if err != nil {
		h.s.Error(w, r, configError(err))
		return
	}
	WriteJSON(w, http.StatusOK, ch)
}

func (h *configRoutes) history(w http.ResponseWriter, r *http.Request) {
	q, limit, ok := h.s.listQuery(w, r, config.HistoryDefault)
	if !ok {
		return
	}
	var before uint64
	if v := q.Get("starting_after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || v[0] == '+' {
			h.s.Error(w, r, invalid("starting_after", "starting_after must be a version (an integer) from a previous page."))
			return
		}
		before = n
	}
	changes, err := h.c.History(r.Context(), r.PathValue("key"))
	if err != nil {
		h.s.Error(w, r, configError(err))
		return
	}
	if before > 0 {
		i := 0
		for i < len(changes) && changes[i].Version >= before {
			i++
		}
		changes = changes[i:]
	}
	out := configHistory{Data: changes, HasMore: len(changes) > limit}
	if out.HasMore {
		out.Data = changes[:limit]
	}
	WriteJSON(w, http.StatusOK, out)
}

// decodeConfigSet decodes PUT /v1/config/{key}: {"value": any JSON, "reason"?: string,
// "expected_version"?: integer >= 0}. The value is checked by the config center.
func decodeConfigSet(body []byte) ([]byte, config.Meta, *apierror.Error) {
	var meta config.Meta
	var value []byte
	d, e := newDecoder(body)
	if e != nil {
		return nil, meta, e
	}
	present, e := d.object("", func(key, p string) *apierror.Error {
		switch key {
		case "value":
			if raw := d.value(); string(raw) != "null" {
				value = raw
			}
			return nil
		case "reason":
			_, e := d.str(p, &meta.Reason)
			return e
		case "expected_version":
			var v int64
			set, e := d.integer(p, 0, 1<<53, &v)
			if set {
				u := uint64(v)
				meta.ExpectVersion = &u
			}
			return e
		}
		return unknownField(p)
	})
	if e = d.finishObject(present, e); e != nil {
		return nil, meta, e
	}
	if value == nil {
		return nil, meta, invalid("value", "value is required: the key's new value as JSON (true, 100, \"on\", {...}).")
	}
	return value, meta, nil
}

// configError maps the config center's refusals onto the API's error codes; other errors
// pass through (and become internal errors).
func configError(err error) error {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return err
	}
	msg := ce.Detail
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:] + "."
	}
	switch {
	case errors.Is(err, config.ErrKeyUnknown):
		return apierror.Newf(apierror.ConfigKeyUnknown, "key", "%s", msg)
	case errors.Is(err, config.ErrNotSet):
		return apierror.Newf(apierror.ConfigNotSet, "key", "%s", msg)
	case errors.Is(err, config.ErrValueInvalid):
		return apierror.Newf(apierror.ConfigValueInvalid, "value", "%s", msg)
	case errors.Is(err, config.ErrConflict):
		return apierror.Newf(apierror.ConfigConflict, "expected_version", "%s", msg)
	case errors.Is(err, config.ErrMetaInvalid):
		return apierror.Newf(apierror.InvalidRequest, "reason", "%s", msg)
	}
	return err
}
