package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fincore/fincore/apierror"
)

// Request decoding is strict, and happens completely before anything is written: the body
// must be UTF-8 JSON holding exactly one object; field names are matched exactly (no case
// folding); unknown and repeated fields are rejected; every value must have its documented
// JSON type (an integer is an integer literal: no fraction, no exponent, no quotes). Each
// error names the offending field by its JSON path ("amount", "transfers[3].amount").
// null is accepted for an optional field and means the same as leaving it out.

func invalid(param, format string, args ...any) *apierror.Error {
	return apierror.Newf(apierror.InvalidRequest, clip(param), format, args...)
}

// readBody checks the request's Content-Type and reads its body within the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apierror.Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !isJSONMediaType(mt) {
			return nil, apierror.Newf(apierror.UnsupportedMedia, "", "Content-Type %q is not JSON; send application/json.", clip(ct))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, apierror.Newf(apierror.UnsupportedMedia, "", "charset %q is not supported; send UTF-8.", clip(cs))
		}
	}
	if r.ContentLength > s.maxBody {
		return nil, s.tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, s.tooLarge()
		}
		return nil, invalid("", "The request body could not be read: %v.", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "The request body is empty; send a JSON object.")
	}
	if !utf8.Valid(body) {
		return nil, invalid("", "The request body is not valid UTF-8.")
	}
	return body, nil
}

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func (s *Server) tooLarge() *apierror.Error {
	return apierror.Newf(apierror.RequestTooLarge, "", "The request body is larger than the limit (%d bytes).", s.maxBody)
}

// query parses the query string and rejects parameters that are not in allowed, or that
// appear more than once.
func query(r *http.Request, allowed ...string) (url.Values, *apierror.Error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("", "The query string is malformed.")
	}
	for k, vs := range q {
		if !contains(allowed, k) {
			return nil, invalid(k, "Unknown query parameter %q.", clip(k))
		}
		if len(vs) > 1 {
			return nil, invalid(k, "Query parameter %s is given more than once.", k)
		}
	}
	return q, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decoder walks one JSON document token by token.
type decoder struct {
	dec *json.Decoder
}

func newDecoder(body []byte) *decoder {
	return &decoder{dec: json.NewDecoder(bytes.NewReader(body))}
}

// end checks that nothing but white space follows the top-level value.
func (d *decoder) end() *apierror.Error {
	if _, err := d.dec.Token(); err != io.EOF {
		return invalid("", "Unexpected data after the JSON object.")
	}
	return nil
}

func syntaxError(err error) *apierror.Error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return invalid("", "Malformed JSON at byte %d: %s.", se.Offset, se.Error())
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("", "Malformed JSON: the body ends before the JSON value is complete.")
	}
	return invalid("", "Malformed JSON: %v.", err)
}

// join names field key of the object at path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names what a JSON value is, for messages: "a string", "an object"...
func describe(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// describeToken is describe for a token from json.Decoder.Token.
func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

func name(param string) string {
	if param == "" {
		return "The request body"
	}
	return param
}

func unknownField(param string) *apierror.Error {
	return invalid(param, "Unknown field %s.", clip(param))
}

func required(param string) *apierror.Error {
	return invalid(param, "%s is required.", param)
}

// object reads a JSON object at param, calling field for each member; field must consume the
// member's value. A null instead of the object is reported as absent (present false).
func (d *decoder) object(param string, field func(key, param string) *apierror.Error) (present bool, _ *apierror.Error) {
	tok, err := d.dec.Token()
	if err != nil {
		return false, syntaxError(err)
	}
	if tok == nil {
		return false, nil
	}
	if tok != json.Delim('{') {
		return false, invalid(param, "%s must be a JSON object, not %s.", name(param), describeToken(tok))
	}
	seen := make(map[string]struct{}, 8)
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return false, syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return false, invalid(param, "Malformed JSON object.")
		}
		p := join(param, key)
		if _, dup := seen[key]; dup {
			return false, invalid(p, "Field %s appears more than once.", clip(p))
		}
		seen[key] = struct{}{}
		if e := field(key, p); e != nil {
			return false, e
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing brace
		return false, syntaxError(err)
	}
	return true, nil
}

// array reads a JSON array at param, calling elem for each element with its index; elem must
// consume the element. A null instead of the array is reported as absent.
func (d *decoder) array(param string, elem func(i int, param string) *apierror.Error) (present bool, _ *apierror.Error) {
	tok, err := d.dec.Token()
	if err != nil {
		return false, syntaxError(err)
	}
	if tok == nil {
		return false, nil
	}
	if tok != json.Delim('[') {
		return false, invalid(param, "%s must be an array, not %s.", name(param), describeToken(tok))
	}
	for i := 0; d.dec.More(); i++ {
		if e := elem(i, param+"["+strconv.Itoa(i)+"]"); e != nil {
			return false, e
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing bracket
		return false, syntaxError(err)
	}
	return true, nil
}

// value reads the next JSON value whole.
func (d *decoder) value() (json.RawMessage, *apierror.Error) {
	var raw json.RawMessage
	if err := d.dec.Decode(&raw); err != nil {
		return nil, syntaxError(err)
	}
	return raw, nil
}

// str reads a string (or null: set false).
func (d *decoder) str(param string, dst *string) (set bool, _ *apierror.Error) {
	raw, e := d.value()
	if e != nil {
		return false, e
	}
	switch raw[0] {
	case 'n':
		return false, nil
	case '"':
		if err := json.Unmarshal(raw, dst); err != nil {
			return false, invalid(param, "%s is not a valid JSON string.", param)
		}
		return true, nil
	}
	return false, invalid(param, "%s must be a string, not %s.", param, describe(raw))
}

// boolean reads true or false (or null: set false).
func (d *decoder) boolean(param string, dst *bool) (set bool, _ *apierror.Error) {
	raw, e := d.value()
	if e != nil {
		return false, e
	}
	switch string(raw) {
	case "null":
		return false, nil
	case "true":
		*dst = true
		return true, nil
	case "false":
		*dst = false
		return true, nil
	}
	return false, invalid(param, "%s must be true or false, not %s.", param, describe(raw))
}

// integer reads an integer literal between lo and hi (or null: set false). Fractions and
// exponents are rejected even when their value is whole (1.0, 1e2): money is counted in
// integers and a client that sends anything else has a bug worth surfacing.
func (d *decoder) integer(param string, lo, hi int64, dst *int64) (set bool, _ *apierror.Error) {
	raw, e := d.value()
	if e != nil {
		return false, e
	}
	if string(raw) == "null" {
		return false, nil
	}
	bad := func() (bool, *apierror.Error) {
		return false, invalid(param, "%s must be an integer between %d and %d, not %s.", param, lo, hi, clip(string(raw)))
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		if raw[0] == '"' {
			return false, invalid(param, "%s must be an integer between %d and %d, not a string.", param, lo, hi)
		}
		return false, invalid(param, "%s must be an integer between %d and %d, not %s.", param, lo, hi, describe(raw))
	}
	if bytes.ContainsAny(raw, ".eE") {
		return bad()
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || v < lo || v > hi {
		return bad()
	}
	*dst = v
	return true, nil
}

// metadata reads an object of string values (or null: nil).
func (d *decoder) metadata(param string, dst *map[string]string) (set bool, _ *apierror.Error) {
	m := map[string]string{}
	present, e := d.object(param, func(key, p string) *apierror.Error {
		var v string
		set, e := d.str(p, &v)
		if e != nil {
			return e
		}
		if !set {
			return invalid(p, "Metadata values must be strings, not null.")
		}
		m[key] = v
		return nil
	})
	if e != nil || !present {
		return false, e
	}
	*dst = m
	return true, nil
}
