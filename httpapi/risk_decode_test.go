package httpapi

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// checkDecisionDecoders checks that when the fast reader of a decision request accepts body,
// the general one reads the same rule set name, event and explain flag without error.
func checkDecisionDecoders(t *testing.T, body []byte) bool {
	t.Helper()
	name, ev, explain, ok := decodeDecisionFast(body)
	if !ok {
		return false
	}
	wname, wev, wexplain, err := decodeDecision(body)
	if err != nil {
		t.Fatalf("%s: fast reader accepted, general reader: %v", body, err)
	}
	if name != wname || explain != wexplain || ev.ID != wev.ID || ev.Type != wev.Type || !ev.Time.Equal(wev.Time) ||
		string(ev.Raw) != string(wev.Raw) || !reflect.DeepEqual(ev.Fields, wev.Fields) {
		t.Fatalf("%s:\nfast    %q %v %+v\ngeneral %q %v %+v", body, name, explain, ev, wname, wexplain, wev)
	}
	return true
}

// TestDecisionDecodersAgree compares the fast reader of decision requests with the general
// one on generated bodies, well-formed and not: members in any order, repeated, missing,
// unknown, of the wrong type, with escapes, white space, nested events, truncation and
// trailing bytes.
func TestDecisionDecodersAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 7))
	// Half of the bodies take the first (well-formed) choice at every step, the others any.
	clean := false
	pick := func(s ...string) string {
		if clean {
			return s[0]
		}
		return s[r.IntN(len(s))]
	}
	maybe := func(n int) bool { return !clean && r.IntN(n) == 0 }
	event := func() string {
		fields := []string{`"type":"payment"`, `"id":"e` + fmt.Sprint(r.IntN(100)) + `"`, `"timestamp":"2026-12-04T10:00:00Z"`}
		for range r.IntN(5) {
			// Field values vary even in clean bodies; the bad ones send those to the general reader.
			fields = append(fields, []string{`"amount":12345`, `"amount":-1.5e3`, `"user_id":"u1"`, `"ok":true`, `"n":null`,
				`"nested":{"a":[1,2]}`, `"esc":"a\"b"`, `"amount":01`, `"x":"é"`, `"type":"login"`, `"amount":1e999`}[r.IntN(11)])
		}
		r.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
		if maybe(8) {
			fields = fields[1:]
		}
		return "{" + strings.Join(fields, pick(",", ",", ",", ", ")) + pick("}", "}", "}", " }")
	}
	accepted := 0
	const n = 20000
	for range n {
		clean = r.IntN(2) == 0
		members := []string{`"ruleset":` + pick(`"pay"`, `"pay"`, `"pay"`, `""`, `"p\u0061y"`, `null`, `7`), `"event":` + pick(event(), event(), event(), `null`, `[]`, `"x"`)}
		if r.IntN(2) == 0 {
			members = append(members, `"explain":`+pick("true", "false", "null", `"yes"`, "tru"))
		}
		if maybe(10) {
			members = append(members, members[r.IntN(len(members))])
		}
		if maybe(10) {
			members = append(members, pick(`"extra":1`, `"Ruleset":"pay"`))
		}
		if maybe(10) {
			members = members[1:]
		}
		r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		body := pick("{", "{", "{", "{ ", "[") + strings.Join(members, pick(",", ",", ",", " ,", ",\n")) + pick("}", "}", "}", "}\n", "}}", "")
		if maybe(20) {
			body = body[:r.IntN(len(body)+1)]
		}
		if checkDecisionDecoders(t, []byte(body)) {
			accepted++
		}
	}
	t.Logf("the fast reader accepted %d of %d bodies", accepted, n)
	if accepted < n/5 {
		t.Fatalf("the fast reader accepted only %d of %d bodies", accepted, n)
	}
}

// FuzzDecisionRequest checks the fast reader of decision requests against the general one.
func FuzzDecisionRequest(f *testing.F) {
	f.Add([]byte(`{"ruleset":"pay","event":{"type":"payment","id":"e1","timestamp":"2026-12-04T10:00:00Z","amount":100}}`))
	f.Add([]byte(`{"explain":true,"event":{"type":"payment","id":"e1","timestamp":"2026-12-04T10:00:00Z","a":{"b":[1]}},"ruleset":"pay"}`))
	f.Add([]byte(`{"ruleset":"pay","event":{"type":"payment","id":"e1","timestamp":"2026-12-04T10:00:00Z","s":"}\"{"},"explain":false}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecisionDecoders(t, body)
	})
}
