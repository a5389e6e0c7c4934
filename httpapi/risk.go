package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/fincore/fincore/apierror"
	"github.com/fincore/fincore/risk"
)

// Scopes of the risk routes. Uploading and activating rule sets needs ScopeAdmin.
const (
	ScopeRiskRead  = "risk:read"
	ScopeRiskWrite = "risk:write"
)

// riskAPI serves the risk engine's routes.
type riskAPI struct {
	s   *Server
	eng *risk.Engine
}

// RegisterRisk adds the risk engine's routes: decisions, events, rule sets and lists.
func (s *Server) RegisterRisk(eng *risk.Engine) {
	a := &riskAPI{s: s, eng: eng}
	s.HandleScoped("POST /v1/risk/decisions", ScopeRiskWrite, http.HandlerFunc(a.decide))
	s.HandleScoped("POST /v1/risk/events", ScopeRiskWrite, http.HandlerFunc(a.ingest))
	s.HandleScoped("PUT /v1/risk/rulesets/{name}", ScopeAdmin, http.HandlerFunc(a.putRuleSet))
	s.HandleScoped("GET /v1/risk/rulesets/{name}", ScopeRiskRead, http.HandlerFunc(a.getRuleSet))
	s.HandleScoped("POST /v1/risk/rulesets/{name}/activate", ScopeAdmin, http.HandlerFunc(a.activate))
	s.HandleScoped("PUT /v1/risk/lists/{name}/items", ScopeRiskWrite, http.HandlerFunc(a.listItems(true)))
	s.HandleScoped("DELETE /v1/risk/lists/{name}/items", ScopeRiskWrite, http.HandlerFunc(a.listItems(false)))
}

// riskError maps the engine's errors to API errors.
func riskError(err error) error {
	var rse risk.RuleSetErrors
	var ee *risk.EventError
	switch {
	case errors.As(err, &rse):
		return apierror.Newf(apierror.RuleSetInvalid, "", "%s", clip(rse.Error()))
	case errors.As(err, &ee):
		return invalid("event."+ee.Field, "%s", ee.Error())
	case errors.Is(err, risk.ErrUnknownRuleSet):
		return apierror.New(apierror.RuleSetNotFound, "ruleset")
	case errors.Is(err, risk.ErrUnknownVersion):
		return apierror.New(apierror.RuleSetNotFound, "version")
	case errors.Is(err, risk.ErrNotActive):
		return apierror.New(apierror.RuleSetInactive, "ruleset")
	case errors.Is(err, risk.ErrIDConflict):
		return apierror.Newf(apierror.IDConflict, "event.id", "An event with this id was already received with a different body.")
	case errors.Is(err, risk.ErrOverloaded):
		return apierror.New(apierror.RiskOverloaded, "")
	case errors.Is(err, risk.ErrClosed):
		return apierror.New(apierror.Unavailable, "")
	case errors.Is(err, risk.ErrBadName):
		return invalid("name", "Names are lower-case letters, digits, '_', '.' or '-', at most 64, starting with a letter or digit.")
	}
	return err
}

func (a *riskAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.s.Error(w, r, riskError(err))
}

// answerBufs holds buffers for answers to POST /v1/risk/decisions; net/http copies or
// sends an answer before Write returns, so a buffer is free again after it.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// maxPooledAnswer is the largest buffer answerBufs keeps.
const maxPooledAnswer = 64 << 10

// contentTypeJSON is the Content-Type header of JSON answers, shared (net/http copies a
// handler's headers when it writes them, and never changes the values).
var contentTypeJSON = []string{"application/json"}

// decisionResponse is the answer to POST /v1/risk/decisions.
type decisionResponse struct {
	Decision string             `json:"decision"`
	Score    int                `json:"score"`
	Reasons  []risk.Reason      `json:"reasons"`
	RuleSet  string             `json:"ruleset"`
	Version  int                `json:"ruleset_version"`
	EventID  string             `json:"event_id"`
	Features map[string]float64 `json:"features,omitempty"`
	Models   map[string]float64 `json:"models,omitempty"`
	Errors   []risk.RuleError   `json:"errors,omitempty"`
}

func (a *riskAPI) decide(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var name string
	var rawEvent []byte
	var explain bool
	d, e := newDecoder(body)
	if e == nil {
		var present bool
		present, e = d.object("", func(key, p string) *apierror.Error {
			switch key {
			case "ruleset":
				_, e := d.str(p, &name)
				return e
			case "event":
				rawEvent = d.value()
				return nil
			case "explain":
				_, e := d.boolean(p, &explain)
				return e
			}
			return unknownField(p)
		})
		e = d.finishObject(present, e)
	}
	if e == nil && name == "" {
		e = required("ruleset")
	}
	if e == nil && rawEvent == nil {
		e = required("event")
	}
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	ev, err := risk.ParseEvent(rawEvent)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	dec, err := a.eng.DecideBrief(r.Context(), name, ev)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !explain {
		// The common answer, written without reflection (the same bytes; see the test) into
		// a reused buffer, with its length, so that net/http sends it as it is rather than
		// in chunks (answers with many reasons pass its 2 KB chunking threshold).
		bp := answerBufs.Get().(*[]byte)
		b := append(dec.AppendJSON((*bp)[:0]), '\n')
		h := w.Header()
		h["Content-Type"] = contentTypeJSON
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		if cap(b) <= maxPooledAnswer {
			*bp = b
			answerBufs.Put(bp)
		}
		return
	}
	x := dec.Explain()
	WriteJSON(w, http.StatusOK, decisionResponse{Decision: dec.Decision, Score: dec.Score, Reasons: x.Reasons, RuleSet: dec.RuleSet,
		Version: dec.Version, EventID: dec.EventID, Errors: dec.Errors, Features: x.Features, Models: x.Models})
}

func (a *riskAPI) ingest(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var rawEvent []byte
	d, e := newDecoder(body)
	if e == nil {
		var present bool
		present, e = d.object("", func(key, p string) *apierror.Error {
			if key == "event" {
				rawEvent = d.value()
				return nil
			}
			return unknownField(p)
		})
		e = d.finishObject(present, e)
	}
	if e == nil && rawEvent == nil {
		e = required("event")
	}
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	ev, err := risk.ParseEvent(rawEvent)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	applied, err := a.eng.Ingest(r.Context(), ev)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusAccepted, map[string]any{"id": ev.ID, "applied": applied})
}

// putRuleSet stores a rule set document sent as YAML or JSON, up to risk.MaxRuleSetBytes
// (model files make rule sets larger than other request bodies).
func (a *riskAPI) putRuleSet(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		a.s.Error(w, r, e)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(isJSONMediaType(mt) || strings.HasSuffix(mt, "yaml") || mt == "text/plain") {
			a.s.Error(w, r, apierror.Newf(apierror.UnsupportedMedia, "", "Send the rule set as YAML (application/yaml) or JSON (application/json)."))
			return
		}
	}
	src, err := io.ReadAll(http.MaxBytesReader(w, r.Body, risk.MaxRuleSetBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			a.s.Error(w, r, apierror.Newf(apierror.RequestTooLarge, "", "The rule set is larger than the limit (%d bytes).", risk.MaxRuleSetBytes))
			return
		}
		a.s.Error(w, r, invalid("", "The request body could not be read: %v.", err))
		return
	}
	sum, err := a.eng.PutRuleSet(r.Context(), r.PathValue("name"), src)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	WriteJSON(w, createdStatus(sum.Created), sum)
}

// headResponse is a rule set's versions.
type headResponse struct {
	Name          string `json:"name"`
	LatestVersion int    `json:"latest_version"`
	Version       int    `json:"active_version"`
	ShadowVersion int    `json:"shadow_version"`
}

func toHead(h risk.Head) headResponse {
	return headResponse{Name: h.Name, LatestVersion: h.Latest, Version: h.Active, ShadowVersion: h.Shadow}
}

func (a *riskAPI) getRuleSet(w http.ResponseWriter, r *http.Request) {
	if _, e := query(r); e != nil {
		a.s.Error(w, r, e)
		return
	}
	h, ok := a.eng.RuleSet(r.PathValue("name"))
	if !ok {
		a.fail(w, r, risk.ErrUnknownRuleSet)
		return
	}
	WriteJSON(w, http.StatusOK, toHead(h))
}

func (a *riskAPI) activate(w http.ResponseWriter, r *http.Request) {
	body, ok := a.s.readJSON(w, r)
	if !ok {
		return
	}
	var version, shadow int64
	var haveVersion bool
	d, e := newDecoder(body)
	if e == nil {
		var present bool
		present, e = d.object("", func(key, p string) *apierror.Error {
			switch key {
			case "version":
				var e *apierror.Error
				haveVersion, e = d.integer(p, 1, 1<<31-1, &version)
				return e
			case "shadow_version":
				_, e := d.integer(p, 0, 1<<31-1, &shadow)
				return e
			}
			return unknownField(p)
		})
		e = d.finishObject(present, e)
	}
	if e == nil && !haveVersion {
		e = required("version")
	}
	if e != nil {
		a.s.Error(w, r, e)
		return
	}
	h, err := a.eng.Activate(r.Context(), r.PathValue("name"), int(version), int(shadow))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, toHead(h))
}

// listItems serves PUT (add) and DELETE (remove) /v1/risk/lists/{name}/items.
func (a *riskAPI) listItems(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := a.s.readJSON(w, r)
		if !ok {
			return
		}
		var items []string
		var have bool
		d, e := newDecoder(body)
		if e == nil {
			var present bool
			present, e = d.object("", func(key, p string) *apierror.Error {
				if key != "items" {
					return unknownField(p)
				}
				var e *apierror.Error
				have, e = d.array(p, func(i int, p string) *apierror.Error {
					if i >= risk.MaxListItems {
						return invalid("items", "At most %d items may be changed at once.", risk.MaxListItems)
					}
					var s string
					if set, e := d.str(p, &s); e != nil || !set || s == "" || len(s) > 256 {
						return invalid(p, "%s must be a non-empty string of at most 256 bytes.", p)
					}
					items = append(items, s)
					return nil
				})
				return e
			})
			e = d.finishObject(present, e)
		}
		if e == nil && !have {
			e = required("items")
		}
		if e != nil {
			a.s.Error(w, r, e)
			return
		}
		name := r.PathValue("name")
		var n int
		var err error
		if add {
			n, err = a.eng.AddListItems(r.Context(), name, items)
		} else {
			n, err = a.eng.RemoveListItems(r.Context(), name, items)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"list": name, "changed": n, "size": a.eng.ListSize(name)})
	}
}
