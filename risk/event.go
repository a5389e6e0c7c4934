package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
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
	if len(raw) > MaxEventBytes {
		return nil, &EventError{Msg: fmt.Sprintf("larger than %d bytes", MaxEventBytes)}
	}
	if !utf8.Valid(raw) {
		return nil, &EventError{Msg: "not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, &EventError{Msg: "must be a JSON object: " + jsonMsg(err)}
	}
	if obj == nil {
		return nil, &EventError{Msg: "must be a JSON object"}
	}
	if dec.More() {
		return nil, &EventError{Msg: "trailing data after the object"}
	}
	if len(obj) > MaxEventFields {
		return nil, &EventError{Msg: fmt.Sprintf("more than %d fields", MaxEventFields)}
	}
	e := &Event{Fields: obj}
	var ok bool
	if e.Type, ok = obj["type"].(string); !ok || !typePattern.MatchString(e.Type) {
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
