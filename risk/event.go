package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Limits on an event.
const (
	MaxEventBytes  = 64 << 10
	MaxEventFields = 256
	maxIDBytes     = 128
)

// Event is something that happened (a payment, a login, a credit application) as the engine
// sees it: a type, an id that makes it idempotent, a time, and any other fields. Fields holds
// every top-level field of the JSON object, type, id and timestamp included; numbers are
// float64.
type Event struct {
	ID     string
	Type   string
	Time   time.Time
	Fields map[string]any
	// Raw is the event's JSON as received (compacted), for the event log.
	Raw json.RawMessage
}

// EventError is a problem with an event; Field names the offending field ("" for the event
// as a whole).
type EventError struct {
	Field string
	Msg   string
}

func (e *EventError) Error() string {
	if e.Field != "" {
		return "event." + e.Field + ": " + e.Msg
	}
	return "event: " + e.Msg
}

// ParseEvent reads an event from its JSON object.
func ParseEvent(raw []byte) (*Event, error) {
	return parseEvent(raw, true)
}

// parseEvent reads an event; with fast, a flat object without whitespace is read by
// parseFlat, anything else by encoding/json (which the fast reader agrees with, as a
// differential test checks).
func parseEvent(raw []byte, fast bool) (*Event, error) {
	if len(raw) > MaxEventBytes {
		return nil, &EventError{Msg: fmt.Sprintf("larger than %d bytes", MaxEventBytes)}
	}
	if !utf8.Valid(raw) {
		return nil, &EventError{Msg: "not valid UTF-8"}
	}
	var obj map[string]any
	flat := false
	if fast {
		obj, flat = parseFlat(raw)
	}
	if !flat {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil {
			return nil, &EventError{Msg: "must be a JSON object: " + jsonMsg(err)}
		}
		if obj == nil {
			return nil, &EventError{Msg: "must be a JSON object"}
		}
		if dec.More() {
			return nil, &EventError{Msg: "trailing data after the object"}
		}
	}
	if len(obj) > MaxEventFields {
		return nil, &EventError{Msg: fmt.Sprintf("more than %d fields", MaxEventFields)}
	}
	e := &Event{Fields: obj}
	var ok bool
	if e.Type, ok = obj["type"].(string); !ok || !validType(e.Type) {
		return nil, &EventError{Field: "type", Msg: "must be a string of letters, digits, '_', '.', ':' or '-' (at most 64)"}
	}
	if e.ID, ok = obj["id"].(string); !ok || e.ID == "" || len(e.ID) > maxIDBytes {
		return nil, &EventError{Field: "id", Msg: fmt.Sprintf("must be a non-empty string of at most %d bytes", maxIDBytes)}
	}
	ts, ok := obj["timestamp"].(string)
	if !ok {
		return nil, &EventError{Field: "timestamp", Msg: "must be an RFC 3339 time string"}
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Year() < 2000 || t.Year() > 9999 {
		return nil, &EventError{Field: "timestamp", Msg: "must be an RFC 3339 time between years 2000 and 9999"}
	}
	e.Time = t.UTC()
	if flat {
		// Already compact, numbers already float64.
		e.Raw = bytes.Clone(raw)
		return e, nil
	}
	for k, v := range obj {
		obj[k] = numbers(v)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, &EventError{Msg: jsonMsg(err)}
	}
	e.Raw = buf.Bytes()
	return e, nil
}

// validType reports whether s is 1 to 64 letters, digits, '_', '.', ':' or '-'.
func validType(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// parseFlat reads the common shape of an event quickly: a JSON object without insignificant
// whitespace whose values are strings without escapes, numbers, true, false or null. ok is
// false for anything else (nested values, escapes, whitespace, errors), which the general path
// then reads. Numbers become float64 as numbers() makes them; a repeated key keeps its last
// value, as encoding/json does. raw is valid UTF-8.
func parseFlat(raw []byte) (map[string]any, bool) {
	n := len(raw)
	if n < 2 || raw[0] != '{' {
		return nil, false
	}
	// A string here has no quote inside, so `":` ends a key: their count sizes the map (a
	// larger hint would double the memory of a 10-field event's map), within the limit on
	// fields (a malformed event could have many).
	obj := make(map[string]any, min(bytes.Count(raw, []byte(`":`)), MaxEventFields+1))
	i := 1
	if raw[i] == '}' {
		return obj, n == 2
	}
	for {
		end, ok := flatStringEnd(raw, i)
		if !ok || end+1 >= n || raw[end+1] != ':' {
			return nil, false
		}
		key, j := fieldName(raw[i+1:end]), end+1
		var v any
		if v, i, ok = flatValue(raw, j+1); !ok || i >= n {
			return nil, false
		}
		obj[key] = v
		switch raw[i] {
		case ',':
			i++
		case '}':
			return obj, i == n-1
		default:
			return nil, false
		}
	}
}

// flatString reads a string without escapes or control characters at raw[i]; it returns the
// string and the index after its closing quote.
func flatString(raw []byte, i int) (string, int, bool) {
	end, ok := flatStringEnd(raw, i)
	if !ok {
		return "", 0, false
	}
	return string(raw[i+1 : end]), end + 1, true
}

// flatStringEnd returns the index of the closing quote of a string without escapes or
// control characters at raw[i].
func flatStringEnd(raw []byte, i int) (int, bool) {
	if i >= len(raw) || raw[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return j, true
		case c == '\\' || c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// fieldNames holds recently seen event field names. Every event of a kind carries the same
// few names; taking them from here rather than allocating them anew saves a third of the
// allocations of reading an event. A name has two slots it may be in (chosen by its hash); a
// new name takes an empty one, or replaces one of the two.
var fieldNames [512][2]atomic.Pointer[string]

var fieldNameSeed = maphash.MakeSeed()

// fieldName returns b as a string, shared with earlier events when it is a recent field name.
func fieldName(b []byte) string {
	if len(b) > 64 {
		return string(b)
	}
	h := maphash.Bytes(fieldNameSeed, b)
	set := &fieldNames[h%uint64(len(fieldNames))]
	way := -1
	for i := range set {
		p := set[i].Load()
		if p == nil {
			way = i
			continue
		}
		if *p == string(b) {
			return *p
		}
	}
	if way < 0 {
		way = int(h>>32) & 1
	}
	s := string(b)
	set[way].Store(&s)
	return s
}

// flatValue reads a scalar value at raw[i]; it returns the value and the index after it.
func flatValue(raw []byte, i int) (any, int, bool) {
	if i >= len(raw) {
		return nil, 0, false
	}
	switch c := raw[i]; {
	case c == '"':
		return flatString(raw, i)
	case c == 't' && bytes.HasPrefix(raw[i:], []byte("true")):
		return true, i + 4, true
	case c == 'f' && bytes.HasPrefix(raw[i:], []byte("false")):
		return false, i + 5, true
	case c == 'n' && bytes.HasPrefix(raw[i:], []byte("null")):
		return nil, i + 4, true
	case c == '-' || '0' <= c && c <= '9':
		j, ok := jsonNumberEnd(raw, i)
		if !ok {
			return nil, 0, false
		}
		s := string(raw[i:j])
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			f = math.Inf(int(signOf(s))) // out of range, as numbers() reads it
		}
		return f, j, true
	}
	return nil, 0, false
}

// jsonNumberEnd returns the end of the JSON number at raw[i] (-?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?).
func jsonNumberEnd(raw []byte, i int) (int, bool) {
	n := len(raw)
	digits := func(i int) int {
		for i < n && '0' <= raw[i] && raw[i] <= '9' {
			i++
		}
		return i
	}
	if raw[i] == '-' {
		i++
	}
	switch {
	case i < n && raw[i] == '0':
		i++
	case i < n && '1' <= raw[i] && raw[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < n && raw[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < n && (raw[i] == 'e' || raw[i] == 'E') {
		i++
		if i < n && (raw[i] == '+' || raw[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// numbers turns json.Number into float64, recursively.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			// Out of range: keep the magnitude, as JSON decoders usually do.
			return math.Inf(int(signOf(string(x))))
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

func signOf(s string) float64 {
	if len(s) > 0 && s[0] == '-' {
		return -1
	}
	return 1
}

func jsonMsg(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	return err.Error()
}

// scalarKey renders a scalar field as a state or list key: a string as it is, a number in its
// shortest form ("5", "12.5"), a boolean as true/false. Objects, arrays and null are not keys.
func scalarKey(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// Key returns the event's value of field as a key, and whether it has one.
func (e *Event) Key(field string) (string, bool) { return scalarKey(e.Fields[field]) }

// Number returns the event's value of field as a number: numbers as they are, numeric strings
// parsed, booleans as 0 or 1; ok is false when the field is missing or not numeric.
func (e *Event) Number(field string) (float64, bool) {
	switch x := e.Fields[field].(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}
