package httpapi

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

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
	name, ev, explain, ok := decodeDecisionFast(body)
	if !ok {
		var err error
		if name, ev, explain, err = decodeDecision(body); err != nil {
			a.fail(w, r, err)
			return
		}
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

// decodeDecision reads a POST /v1/risk/decisions body: {"ruleset", "event", "explain"?}. Its
// errors are *apierror.Error or the event's *risk.EventError.
func decodeDecision(body []byte) (name string, ev *risk.Event, explain bool, err error) {
	var rawEvent []byte
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
		return "", nil, false, e
	}
	ev, err = risk.ParseEvent(rawEvent)
	return name, ev, explain, err
}

// decodeDecisionFast reads the common shape of a decision request in one pass: members
// "ruleset" (a string without escapes), "event" (an object) and "explain" (true or false),
// each at most once, in any order, without white space between them. ok is false for
// anything else and for any error; decodeDecision then reads the body and reports what is
// wrong, so that both give the same answer to every body (a fuzz test checks it). What this
// skips is the syntax check of the whole body and the walk of the general decoder: the event
// is read by risk.ParseEvent, which succeeds only on a valid JSON object, and the rest is
// checked here byte by byte, so a body read here is valid JSON.
func decodeDecisionFast(body []byte) (name string, ev *risk.Event, explain bool, ok bool) {
	n := len(body)
	if n < 2 || body[0] != '{' || body[n-1] != '}' || !utf8.Valid(body) {
		return "", nil, false, false
	}
	var haveName, haveExplain bool
	for i := 1; ; {
		end, ok := plainStringEnd(body, i)
		if !ok || end+1 >= n || body[end+1] != ':' {
			return "", nil, false, false
		}
		j := end + 2
		switch string(body[i+1 : end]) {
		case "ruleset":
			if haveName {
				return "", nil, false, false
			}
			end, ok := plainStringEnd(body, j)
			if !ok || end == j+1 {
				return "", nil, false, false
			}
			name, j, haveName = string(body[j+1:end]), end+1, true
		case "event":
			end := objectEnd(body, j)
			if ev != nil || end < 0 {
				return "", nil, false, false
			}
			var err error
			if ev, err = risk.ParseEvent(body[j:end]); err != nil {
				return "", nil, false, false
			}
			j = end
		case "explain":
			switch {
			case haveExplain:
				return "", nil, false, false
			case bytes.HasPrefix(body[j:], []byte("true")):
				explain, j = true, j+4
			case bytes.HasPrefix(body[j:], []byte("false")):
				j += 5
			default:
				return "", nil, false, false
			}
			haveExplain = true
		default:
			return "", nil, false, false
		}
		switch {
		case j < n-1 && body[j] == ',':
			i = j + 1
		case j == n-1: // the closing brace
			return name, ev, explain, haveName && ev != nil
		default:
			return "", nil, false, false
		}
	}
}

// plainStringEnd returns the index of the closing quote of a JSON string without escapes or
// control characters at b[i].
func plainStringEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j, true
		case c == '\\' || c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// objectEnd returns the index after the JSON object at b[i] if its braces and brackets
// balance (strings, with their escapes, skipped), or -1. It does not check the object's
// syntax.
func objectEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return -1
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
