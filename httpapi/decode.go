package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
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

// readBody checks the request's Content-Type and reads its body within the size limit; an
// empty body is an error.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apierror.Error) {
	body, e := s.readOptionalBody(w, r)
	if e == nil && len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid("", "The request body is empty; send a JSON object.")
	}
	return body, e
}

// readOptionalBody is readBody for routes whose body may be empty.
func (s *Server) readOptionalBody(w http.ResponseWriter, r *http.Request) ([]byte, *apierror.Error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !isJSONMediaType(mt) {
			return nil, apierror.Newf(apierror.UnsupportedMedia, "", "Content-Type %q is not JSON; send application/json.", clip(ct))
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, apierror.Newf(apierror.UnsupportedMedia, "", "charset %q is not supported; send UTF-8.", clip(cs))
		}
	}
	return s.readLimited(w, r)
}

// readLimited reads the request's body within the size limit.
func (s *Server) readLimited(w http.ResponseWriter, r *http.Request) ([]byte, *apierror.Error) {
	if r.ContentLength > s.maxBody {
		return nil, s.tooLarge()
	}
	var body []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= exactBodyMax {
		// The length is known (and net/http holds the body to it): read it into a buffer of
		// that size rather than growing one.
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, s.tooLarge()
		}
		return nil, invalid("", "The request body could not be read: %v.", err)
	}
	return body, nil
}

// exactBodyMax is the largest declared body length read into a buffer of that size; a longer
// body is read into a buffer that grows as it arrives, so that a client declaring a large body
// it does not send holds no more memory than it sent.
const exactBodyMax = 64 << 10

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

func (s *Server) tooLarge() *apierror.Error {
	return apierror.Newf(apierror.RequestTooLarge, "", "The request body is larger than the limit (%d bytes).", s.maxBody)
}

// query parses the query string and rejects parameters that are not in allowed, or that
// appear more than once.
func query(r *http.Request, allowed ...string) (url.Values, *apierror.Error) {
	if r.URL.RawQuery == "" {
		return nil, nil // no parameters (reading a nil url.Values finds none)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("", "The query string is malformed.")
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return nil, invalid(k, "Unknown query parameter %q.", clip(k))
		}
		if len(vs) > 1 {
			return nil, invalid(k, "Query parameter %s is given more than once.", k)
		}
	}
	return q, nil
}

// decoder walks one JSON document. The document is checked for syntax (json.Valid) and
// UTF-8 up front, so the walk itself only has to find its way through valid JSON: it reads
// fields in place, without the allocations of json.Decoder's token stream, which matters
// for batches of thousands of transfers.
type decoder struct {
	b []byte
	i int
}

// newDecoder checks that body is UTF-8 and syntactically valid JSON and returns a decoder at
// its start.
func newDecoder(body []byte) (*decoder, *apierror.Error) {
	if !utf8.Valid(body) {
		return nil, invalid("", "The request body is not valid UTF-8.")
	}
	if !json.Valid(body) {
		var raw json.RawMessage
		return nil, syntaxError(json.Unmarshal(body, &raw))
	}
	return &decoder{b: body}, nil
}

// end checks that nothing but white space follows the top-level value.
func (d *decoder) end() *apierror.Error {
	if d.peek() != 0 {
		return invalid("", "Unexpected data after the JSON object.")
	}
	return nil
}

func syntaxError(err error) *apierror.Error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return invalid("", "Malformed JSON at byte %d: %s.", se.Offset, se.Error())
	}
	return invalid("", "Malformed JSON.")
}

// peek skips white space and returns the next byte, or 0 at the end.
func (d *decoder) peek() byte {
	for d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return c
		}
	}
	return 0
}

// skipString moves past the string that starts at d.i and reports whether it holds escapes.
func (d *decoder) skipString() (escaped bool) {
	i := d.i + 1
	for {
		switch d.b[i] {
		case '"':
			d.i = i + 1
			return escaped
		case '\\':
			escaped = true
			i += 2
		default:
			i++
		}
	}
}

// value returns the next value's bytes and moves past it.
func (d *decoder) value() []byte {
	d.peek()
	start := d.i
	switch d.b[d.i] {
	case '"':
		d.skipString()
	case '{', '[':
		for depth := 0; ; {
			switch d.b[d.i] {
			case '"':
				d.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			d.i++
			if depth == 0 {
				break
			}
		}
	default: // a number, true, false or null
		for d.i < len(d.b) && !isDelimiter(d.b[d.i]) {
			d.i++
		}
	}
	return d.b[start:d.i]
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// unquote returns the string a raw JSON string denotes.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s) // raw is a valid JSON string
	return s
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

// keySet remembers the keys of one object, to refuse repeated ones. Objects are small, so it
// scans a slice, and switches to a map only for large ones (metadata can hold many keys
// before the ledger refuses it, and a quadratic scan would be a cheap denial of service).
type keySet struct {
	list []string
	m    map[string]struct{}
}

// add records key and reports whether it was new.
func (s *keySet) add(key string) bool {
	if s.m != nil {
		if _, dup := s.m[key]; dup {
			return false
		}
		s.m[key] = struct{}{}
		return true
	}
	for _, k := range s.list {
		if k == key {
			return false
		}
	}
	s.list = append(s.list, key)
	if len(s.list) > 16 {
		s.m = make(map[string]struct{}, 2*len(s.list))
		for _, k := range s.list {
			s.m[k] = struct{}{}
		}
	}
	return true
}

// object reads a JSON object at param, calling field for each member; field must consume the
// member's value. A null instead of the object is reported as absent (present false).
func (d *decoder) object(param string, field func(key, param string) *apierror.Error) (present bool, _ *apierror.Error) {
	switch c := d.peek(); c {
	case 'n':
		d.value()
		return false, nil
	case '{':
	default:
		return false, invalid(param, "%s must be a JSON object, not %s.", name(param), describe(d.value()))
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return true, nil
	}
	var first [8]string
	seen := keySet{list: first[:0]}
	for {
		d.peek()
		key := unquote(d.value())
		d.peek() // the colon
		d.i++
		p := join(param, key)
		if !seen.add(key) {
			return false, invalid(p, "Field %s appears more than once.", clip(p))
		}
		if e := field(key, p); e != nil {
			return false, e
		}
		if d.peek() == '}' {
			d.i++
			return true, nil
		}
		d.i++ // the comma
	}
}

// array reads a JSON array at param, calling elem for each element with its index; elem must
// consume the element. A null instead of the array is reported as absent.
func (d *decoder) array(param string, elem func(i int, param string) *apierror.Error) (present bool, _ *apierror.Error) {
	switch c := d.peek(); c {
	case 'n':
		d.value()
		return false, nil
	case '[':
	default:
		return false, invalid(param, "%s must be an array, not %s.", name(param), describe(d.value()))
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return true, nil
	}
	for i := 0; ; i++ {
		if e := elem(i, param+"["+strconv.Itoa(i)+"]"); e != nil {
			return false, e
		}
		if d.peek() == ']' {
			d.i++
			return true, nil
		}
		d.i++ // the comma
	}
}

// str reads a string (or null: set false).
func (d *decoder) str(param string, dst *string) (set bool, _ *apierror.Error) {
	raw := d.value()
	switch raw[0] {
	case 'n':
		return false, nil
	case '"':
		*dst = unquote(raw)
		return true, nil
	}
	return false, invalid(param, "%s must be a string, not %s.", param, describe(raw))
}

// boolean reads true or false (or null: set false).
func (d *decoder) boolean(param string, dst *bool) (set bool, _ *apierror.Error) {
	raw := d.value()
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
	raw := d.value()
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
