package risk

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func testFragments(nf, nm, nr int) *logFragments {
	var fs []FeatureDef
	for i := range nf {
		fs = append(fs, FeatureDef{Name: "f" + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	var ms []ModelDef
	for i := range nm {
		ms = append(ms, ModelDef{ID: "m" + string(rune('a'+i))})
	}
	var rs []RuleDef
	for i := range nr {
		r := RuleDef{ID: "R" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Reason: "why", Score: i - 3}
		if i%7 == 0 {
			r.Action = Reject
		}
		rs = append(rs, r)
	}
	return fragmentsOf(fs, ms, rs)
}

// TestCompactBodyGolden pins the JSON readers get to the format the log wrote before bodies
// were compact.
func TestCompactBodyGolden(t *testing.T) {
	f := fragmentsOf([]FeatureDef{{Name: "n_1h"}, {Name: "avg_1h"}}, []ModelDef{{ID: "gbm"}},
		[]RuleDef{{ID: "R1", Reason: "velocity", Score: 40}, {ID: "R2", Reason: "black", Action: Reject}})
	d := &Decision{c: &Compiled{frag: f}, fv: []float64{3, 12.5}, mv: []float64{0.25}, hits: []int32{0, 1},
		Errors: []RuleError{{Rule: "R9", Error: "bad <input>"}}}
	body := appendCompactBody(nil, d)
	got, err := decodeCompactBody(f, body)
	want := `{"reasons":[{"rule":"R1","reason":"velocity","score":40},{"rule":"R2","reason":"black","score":0,"action":"reject"}],` +
		`"features":{"n_1h":3,"avg_1h":12.5},"models":{"gbm":0.25},"errors":[{"rule":"R9","error":"bad \u003cinput\u003e"}]}`
	if err != nil || string(got) != want {
		t.Fatalf("got %s (%v)\nwant %s", got, err, want)
	}
	if len(body) != 1+3+2+1+9+9+1+len(`[{"rule":"R9","error":"bad \u003cinput\u003e"}]`) {
		t.Fatalf("%d bytes: % x", len(body), body)
	}
}

// TestCompactBodyRoundTrip checks that a compact body decodes to exactly the JSON of the
// values it was made from, for awkward values and random ones.
func TestCompactBodyRoundTrip(t *testing.T) {
	special := []float64{0, math.Copysign(0, -1), 1, -1, 63, 64, -64, -65, 1e6, 1<<53 - 1, -(1<<53 - 1), 1 << 53, -(1 << 53),
		1 << 62, 1e300, -1e-300, 0.1, 1.0 / 3, math.MaxFloat64, math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1)}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 500 {
		nf, nm, nr := rng.IntN(60), rng.IntN(6), rng.IntN(300)
		f := testFragments(nf, nm, nr)
		d := &Decision{c: &Compiled{frag: f}, fv: make([]float64, nf), mv: make([]float64, nm)}
		if nm == 0 {
			d.mv = nil
		}
		for _, vs := range [][]float64{d.fv, d.mv} {
			for i := range vs {
				switch rng.IntN(4) {
				case 0:
					vs[i] = special[rng.IntN(len(special))]
				case 1:
					vs[i] = float64(rng.IntN(1000))
				case 2:
					vs[i] = float64(rng.Int64()>>rng.IntN(64)) * float64(1-2*rng.IntN(2))
				default:
					vs[i] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10))
				}
			}
		}
		for ri := range nr {
			if rng.IntN(3) == 0 {
				d.hits = append(d.hits, int32(ri))
			}
		}
		if n == 7 && nr > 2 { // not in rule order: still decoded as written
			d.hits = []int32{int32(nr - 1), 0, int32(nr - 1)}
		}
		var errs []byte
		if rng.IntN(5) == 0 {
			d.Errors = []RuleError{{Rule: "Rx", Error: "\"quoted\" \\ é"}}
			errs, _ = json.Marshal(d.Errors)
		}
		body := appendCompactBody(nil, d)
		got, err := decodeCompactBody(f, body)
		if err != nil {
			t.Fatalf("case %d: %v", n, err)
		}
		if want := appendBodyJSON(nil, f, d.hits, d.fv, d.mv, errs); !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", n, got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("case %d: invalid JSON %s", n, got)
		}
	}
}

func TestCompactBodyMalformed(t *testing.T) {
	f := testFragments(3, 1, 10)
	d := &Decision{c: &Compiled{frag: f}, fv: []float64{1, 2.5, 3}, mv: []float64{0.5}, hits: []int32{2, 9}}
	body := appendCompactBody(nil, d)
	if _, err := decodeCompactBody(f, body); err != nil {
		t.Fatal(err)
	}
	for i := range len(body) {
		if _, err := decodeCompactBody(f, body[:i]); !errors.Is(err, errBadBody) {
			t.Fatalf("truncated to %d bytes: %v", i, err)
		}
	}
	if _, err := decodeCompactBody(f, append(body, 0)); !errors.Is(err, errBadBody) {
		t.Fatalf("trailing byte: %v", err)
	}
	for _, other := range []*logFragments{testFragments(4, 1, 10), testFragments(3, 0, 10), testFragments(3, 1, 9)} {
		if _, err := decodeCompactBody(other, body); !errors.Is(err, errBadBody) {
			t.Fatalf("another version's fragments: %v", err)
		}
	}
}

func FuzzDecodeCompactBody(f *testing.F) {
	fr := testFragments(3, 2, 40)
	d := &Decision{c: &Compiled{frag: fr}, fv: []float64{1, -2.5, math.NaN()}, mv: []float64{0.5, 7}, hits: []int32{0, 3, 39}}
	f.Add(appendCompactBody(nil, d))
	f.Add([]byte{1, 3, 2, 0, 2, 2, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decodeCompactBody(fr, body)
		if err == nil && !json.Valid(got) {
			t.Fatalf("%x decoded to invalid JSON %s", body, got)
		}
	})
}
