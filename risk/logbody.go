package risk

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
)

// The decision log keeps a decision's body (reasons, features, models, errors) in a compact
// binary form, not as the JSON readers get: the names, reasons and scores of a body are those
// of its rule set version, which is stored and immutable, so only the values and the indexes
// of the rules that hit need storing. On the reference workload (50 features, 5 models, ~60
// rule hits) a body is ~250 bytes instead of ~4.8 KB of JSON, and writing it — to the WAL and
// again at checkpoint — was a third of the CPU time of a decision (BENCHMARKS.md).
//
// Format (version 1): the byte 0x01 (a JSON body starts with '{'), then as unsigned varints
// the number of features, of models and of rule hits; the hits as zig-zag varint deltas
// from the previous index (the first from -1); each feature value, then each model value,
// as a varint u: an integer zig-zag(n) when u is even (u = zig-zag(n) << 1), or else (u = 1)
// the float64's 8 bytes, little-endian; finally the varint length of the run-time errors'
// JSON and that JSON (length 0: none). DecisionBodyJSON turns it back into exactly the JSON
// appendDecisionBody writes.
const compactBodyV1 = 0x01

// maxExactInt bounds the integers written as varints: every integer of that size is exact
// in a float64.
const maxExactInt = 1 << 53

// appendCompactBody appends d's body in the compact log form.
func appendCompactBody(b []byte, d *Decision) []byte {
	b = append(b, compactBodyV1)
	b = binary.AppendUvarint(b, uint64(len(d.fv)))
	b = binary.AppendUvarint(b, uint64(len(d.mv)))
	b = binary.AppendUvarint(b, uint64(len(d.hits)))
	prev := int64(-1)
	for _, ri := range d.hits {
		b = binary.AppendVarint(b, int64(ri)-prev)
		prev = int64(ri)
	}
	for _, v := range d.fv {
		b = appendCompactValue(b, v)
	}
	for _, v := range d.mv {
		b = appendCompactValue(b, v)
	}
	if len(d.Errors) == 0 {
		return append(b, 0)
	}
	errs, _ := json.Marshal(d.Errors)
	return append(binary.AppendUvarint(b, uint64(len(errs))), errs...)
}

func appendCompactValue(b []byte, v float64) []byte {
	if v > -maxExactInt && v < maxExactInt && v == math.Trunc(v) && (v != 0 || !math.Signbit(v)) {
		n := int64(v)
		return binary.AppendUvarint(b, uint64(n<<1^n>>63)<<1)
	}
	return binary.LittleEndian.AppendUint64(append(b, 1), math.Float64bits(v))
}

// errBadBody is a log body that is neither JSON nor a well-formed compact body for its rule
// set version.
var errBadBody = errors.New("malformed decision log body")

// compactReader reads the fields of a compact body.
type compactReader struct {
	b   []byte
	err bool
}

func (r *compactReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *compactReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *compactReader) value() float64 {
	u := r.uvarint()
	if u&1 == 0 {
		u >>= 1
		return float64(int64(u>>1) ^ -int64(u&1))
	}
	if u != 1 || len(r.b) < 8 {
		r.err, r.b = true, nil
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// appendBodyJSON appends a decision body as JSON from its rule set version's fragments:
// {"reasons": [...], "features": {...}, "models": {...}, "errors": [...]}, features and
// models in the rule set's order. errs is the errors' JSON (nil: none).
func appendBodyJSON(b []byte, f *logFragments, hits []int32, fv, mv []float64, errs []byte) []byte {
	b = append(b, `{"reasons":[`...)
	for i, ri := range hits {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.rules[ri]...)
	}
	b = append(b, `],"features":{`...)
	for i, k := range f.features {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendNumber(append(b, k...), fv[i])
	}
	b = append(b, '}')
	if len(f.models) > 0 {
		b = append(b, `,"models":{`...)
		for i, k := range f.models {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendNumber(append(b, k...), mv[i])
		}
		b = append(b, '}')
	}
	if len(errs) > 0 {
		b = append(append(b, `,"errors":`...), errs...)
	}
	return append(b, '}')
}

// decodeCompactBody returns the JSON of a compact body written with the fragments f of its
// rule set version.
func decodeCompactBody(f *logFragments, body []byte) ([]byte, error) {
	if len(body) == 0 || body[0] != compactBodyV1 {
		return nil, errBadBody
	}
	r := &compactReader{b: body[1:]}
	nf, nm, nh := r.uvarint(), r.uvarint(), r.uvarint()
	if r.err || nf != uint64(len(f.features)) || nm != uint64(len(f.models)) || nh > uint64(len(f.rules)) {
		return nil, fmt.Errorf("%w: %d features, %d models and %d rule hits for a rule set version of %d, %d and %d",
			errBadBody, nf, nm, nh, len(f.features), len(f.models), len(f.rules))
	}
	hits := make([]int32, nh)
	prev := int64(-1)
	for i := range hits {
		prev += r.varint()
		if prev < 0 || prev >= int64(len(f.rules)) {
			return nil, fmt.Errorf("%w: rule index %d of %d", errBadBody, prev, len(f.rules))
		}
		hits[i] = int32(prev)
	}
	vals := make([]float64, nf+nm)
	for i := range vals {
		vals[i] = r.value()
	}
	n := r.uvarint()
	if r.err || n != uint64(len(r.b)) || n > 0 && !json.Valid(r.b) {
		return nil, errBadBody
	}
	return appendBodyJSON(make([]byte, 0, 64*(len(hits)+len(vals))), f, hits, vals[:nf], vals[nf:], r.b), nil
}

// LogReader reads the decision log of a store with the bodies as JSON: it turns compact
// bodies back into JSON with the names of their rule set version (parsed once per version)
// and passes JSON bodies (logged before the compact form) through. It is safe for
// concurrent use.
type LogReader struct {
	st    Store
	mu    sync.Mutex
	frags map[versionKey]*logFragments
}

type versionKey struct {
	name    string
	version int
}

// NewLogReader returns a reader of st's decision log.
func NewLogReader(st Store) *LogReader {
	return &LogReader{st: st, frags: map[versionKey]*logFragments{}}
}

// Decisions returns the logged decisions of the event ids (active and shadow), their
// bodies as JSON.
func (r *LogReader) Decisions(ctx context.Context, eventIDs []string) ([]LoggedDecision, error) {
	ds, err := r.st.Decisions(ctx, eventIDs)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if ds[i].Body, err = r.BodyJSON(ctx, ds[i]); err != nil {
			return nil, fmt.Errorf("decision of event %s by %s version %d: %w", ds[i].EventID, ds[i].RuleSet, ds[i].Version, err)
		}
	}
	return ds, nil
}

// BodyJSON returns the body of a logged decision as JSON.
func (r *LogReader) BodyJSON(ctx context.Context, d LoggedDecision) (json.RawMessage, error) {
	if len(d.Body) > 0 && d.Body[0] == '{' {
		return d.Body, nil
	}
	f, err := r.fragments(ctx, d.RuleSet, d.Version)
	if err != nil {
		return nil, err
	}
	return decodeCompactBody(f, d.Body)
}

// fragments returns the log fragments of a stored rule set version.
func (r *LogReader) fragments(ctx context.Context, name string, version int) (*logFragments, error) {
	k := versionKey{name, version}
	r.mu.Lock()
	f := r.frags[k]
	r.mu.Unlock()
	if f != nil {
		return f, nil
	}
	src, ok, err := r.st.RuleSetSource(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rule set %s version %d is not stored", name, version)
	}
	rs, err := ParseRuleSet(src)
	if err != nil {
		return nil, fmt.Errorf("rule set %s version %d: %w", name, version, err)
	}
	f = fragmentsOf(rs.Features, rs.Models, rs.Rules)
	r.mu.Lock()
	r.frags[k] = f
	r.mu.Unlock()
	return f, nil
}

// LoggedDecisions returns the logged decisions of the event ids (active and shadow), their
// bodies as JSON. Decisions still queued for the log are not among them (see Flush).
func (e *Engine) LoggedDecisions(ctx context.Context, eventIDs []string) ([]LoggedDecision, error) {
	return e.reader.Decisions(ctx, eventIDs)
}
