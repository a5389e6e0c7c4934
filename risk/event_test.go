package risk

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// TestParseEventFastAgrees checks that the fast reader of flat events gives what the general
// path (encoding/json) gives, on random documents: flat and nested, compact and spaced, with
// escapes, extreme numbers, repeated keys, and errors of every kind.
func TestParseEventFastAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	value := func() string {
		return pick(`"a"`, `""`, `"d1"`, `"é中"`, `"a\"b"`, `"\u00e9"`, `"tab	x"`, `1`, `0`, `-0`, `12.5`, `-3e2`, `1E+3`,
			`1e400`, `-1e400`, `1e-400`, `01`, `1.`, `.5`, `-`, `1e`, `true`, `false`, `null`, `tru`, `nul`, `truex`,
			`{"x":1}`, `[1,2]`, `[]`, `{}`, `"2026-12-04T10:00:00Z"`, `12345678901234567890`)
	}
	key := func() string {
		return pick(`"type"`, `"id"`, `"timestamp"`, `"amount"`, `"user_id"`, `"a\u0062"`, `"x"`, `"amount"`, `""`)
	}
	sep := func(s string) string {
		if r.IntN(8) == 0 {
			return pick(" ", "\n", "\t ") + s + pick("", " ")
		}
		return s
	}
	agree, fast := 0, 0
	for i := range 20000 {
		var b strings.Builder
		b.WriteString("{")
		valid := r.IntN(4) > 0 // mostly events that are accepted
		fields := []string{`"type":"payment"`, fmt.Sprintf(`"id":"e%d"`, i), `"timestamp":` + pick(`"2026-12-04T10:00:00Z"`, `"2026-12-04T10:00:00.5+08:00"`)}
		if !valid {
			fields[r.IntN(3)] = pick(`"type":"pay ment"`, `"type":1`, `"id":""`, `"id":7`, `"timestamp":"yesterday"`, `"timestamp":"1999-01-01T00:00:00Z"`)
		}
		value := value
		if valid && r.IntN(2) == 0 {
			value = func() string {
				return pick(`"a"`, `"é中"`, `1`, `-0`, `12.5`, `-3e2`, `1e400`, `1e-400`, `true`, `null`, `"x"`)
			}
		}
		for range r.IntN(6) {
			fields = append(fields, key()+sep(":")+value())
		}
		r.Shuffle(len(fields), func(a, c int) { fields[a], fields[c] = fields[c], fields[a] })
		if !valid && r.IntN(4) == 0 {
			fields = fields[:r.IntN(len(fields))]
		}
		for j, f := range fields {
			if j > 0 {
				b.WriteString(sep(","))
			}
			b.WriteString(f)
		}
		b.WriteString(pick("}", "}", "}", "}", "}", "}", "}", "} ", "},", "}{}", ""))
		raw := []byte(b.String())
		if !valid && r.IntN(5) == 0 {
			raw = raw[:r.IntN(len(raw)+1)]
		}
		got, gerr := parseEvent(raw, true)
		want, werr := parseEvent(raw, false)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("%s: fast error %v, general %v", raw, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		agree++
		if _, ok := parseFlat(raw); ok {
			fast++
		}
		if got.ID != want.ID || got.Type != want.Type || !got.Time.Equal(want.Time) || string(got.Raw) != string(want.Raw) ||
			!reflect.DeepEqual(got.Fields, want.Fields) {
			t.Fatalf("%s:\nfast    %+v\ngeneral %+v", raw, got, want)
		}
	}
	t.Logf("%d accepted events, %d of them read by the fast reader", agree, fast)
	if fast < agree/3 {
		t.Fatalf("the fast reader read only %d of %d events", fast, agree)
	}
}

// BenchmarkParseEvent reads the reference workload's payment event.
func BenchmarkParseEvent(b *testing.B) {
	raw := []byte(`{"type":"payment","id":"ev1764930000_123456","timestamp":"2026-12-05T10:00:00.123456789Z","user_id":"u48213","device_id":"d8213","card_id":"c96427","ip":"10.13.213.2","merchant_id":"m1711","amount":251234,"channel":"web"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFieldName checks the shared field names: a name is copied, not kept by reference to the
// event's bytes, and names that share a slot each come back as themselves.
func TestFieldName(t *testing.T) {
	b := []byte("user_id")
	first := fieldName(b)
	b[0] = 'X'
	if first != "user_id" || fieldName([]byte("user_id")) != "user_id" || fieldName(b) != "Xser_id" {
		t.Fatalf("names %q %q", first, fieldName(b))
	}
	for round := range 2 {
		for i := range 5000 {
			name := fmt.Sprintf("field_%d", i)
			if got := fieldName([]byte(name)); got != name {
				t.Fatalf("round %d: %q for %q", round, got, name)
			}
		}
	}
}
