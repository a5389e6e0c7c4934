package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The parts of XGBoost's JSON model format (Booster.save_model("m.json"), format of XGBoost
// 1.0 and later) that prediction needs.
type xgbFile struct {
	Learner *struct {
		FeatureNames      []string    `json:"feature_names"`
		GradientBooster   *xgbBooster `json:"gradient_booster"`
		LearnerModelParam struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
	} `json:"learner"`
}

type xgbBooster struct {
	Name   string    `json:"name"`
	Model  *xgbTrees `json:"model"` // gbtree
	GBTree *struct {
		Model *xgbTrees `json:"model"`
	} `json:"gbtree"` // dart wraps a gbtree
	WeightDrop []xfloat `json:"weight_drop"` // dart: one weight per tree
}

type xgbTrees struct {
	Trees    []xgbTree `json:"trees"`
	TreeInfo []int64   `json:"tree_info"`
}

type xgbTree struct {
	LeftChildren       []int32  `json:"left_children"`
	RightChildren      []int32  `json:"right_children"`
	SplitIndices       []int64  `json:"split_indices"`
	SplitConditions    []xfloat `json:"split_conditions"`
	DefaultLeft        []xbool  `json:"default_left"`
	SplitType          []int64  `json:"split_type"`
	Categories         []int64  `json:"categories"`
	CategoriesNodes    []int64  `json:"categories_nodes"`
	CategoriesSegments []int64  `json:"categories_segments"`
	CategoriesSizes    []int64  `json:"categories_sizes"`
}

// xfloat is a float32 as XGBoost writes it: a JSON number, or NaN and infinities, which its
// writer emits as bare words (quoteNonFinite turns them into strings first).
type xfloat float32

func (x *xfloat) UnmarshalJSON(b []byte) error {
	s := string(b)
	switch s {
	case "null", `"NaN"`, `"-NaN"`:
		*x = xfloat(math.NaN())
		return nil
	case `"Infinity"`:
		*x = xfloat(math.Inf(1))
		return nil
	case `"-Infinity"`:
		*x = xfloat(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil {
		return fmt.Errorf("%q is not a number", clip(s))
	}
	*x = xfloat(v)
	return nil
}

// xbool is default_left: JSON booleans in XGBoost 1.x, 0 or 1 in 2.x.
type xbool bool

func (x *xbool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1":
		*x = true
	case "false", "0":
		*x = false
	default:
		return fmt.Errorf("default_left value %q is not a boolean", clip(string(b)))
	}
	return nil
}

// parseXGBoost reads an XGBoost JSON model with a tree booster (gbtree or dart) and one
// output.
func parseXGBoost(src string) (*forest, error) {
	var file xgbFile
	data := quoteNonFinite([]byte(src))
	if err := json.Unmarshal(data, &file); err != nil {
		wrapped := fmt.Errorf("is not an XGBoost JSON model: %v", err)
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax):
			return nil, &lineError{lineAt(data, syntax.Offset), wrapped}
		case errors.As(err, &typ):
			return nil, &lineError{lineAt(data, typ.Offset), wrapped}
		}
		return nil, wrapped
	}
	l := file.Learner
	if l == nil || l.GradientBooster == nil {
		return nil, errors.New("is not an XGBoost JSON model: no learner.gradient_booster")
	}
	p := l.LearnerModelParam
	f := &forest{f32: true}
	n, err := strconv.Atoi(p.NumFeature)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("learner_model_param.num_feature %q is not a positive integer", clip(p.NumFeature))
	}
	if n > MaxInputs {
		return nil, limitErr("feature count", n, "MaxInputs", MaxInputs)
	}
	f.nFeatures = n
	for _, kv := range [][2]string{{"num_class", p.NumClass}, {"num_target", p.NumTarget}} {
		if kv[1] != "" && kv[1] != "0" && kv[1] != "1" {
			return nil, fmt.Errorf("learner_model_param.%s is %s: models with more than one output are not supported; Predict returns one number", kv[0], clip(kv[1]))
		}
	}
	if len(l.FeatureNames) > 0 {
		if len(l.FeatureNames) != n {
			return nil, fmt.Errorf("learner.feature_names lists %d names for %d features", len(l.FeatureNames), n)
		}
		f.names = l.FeatureNames
	}

	b := l.GradientBooster
	trees := b.Model
	switch b.Name {
	case "gbtree":
	case "dart":
		if b.GBTree == nil {
			return nil, errors.New("dart booster has no gbtree")
		}
		trees = b.GBTree.Model
	case "gblinear":
		return nil, errors.New("gblinear (linear booster) models are not supported; use a tree booster or a logistic model")
	default:
		return nil, fmt.Errorf("booster %q is not supported; want gbtree or dart", clip(b.Name))
	}
	if trees == nil || len(trees.Trees) == 0 {
		return nil, errors.New("has no trees")
	}
	if len(trees.Trees) > MaxTrees {
		return nil, limitErr("tree count", len(trees.Trees), "MaxTrees", MaxTrees)
	}
	for i, g := range trees.TreeInfo {
		if g != 0 {
			return nil, fmt.Errorf("tree %d belongs to output group %d: models with more than one output are not supported", i, g)
		}
	}
	if b.Name == "dart" && len(b.WeightDrop) != len(trees.Trees) {
		return nil, fmt.Errorf("dart booster has %d weight_drop values for %d trees", len(b.WeightDrop), len(trees.Trees))
	}

	if err := xgbObjective(f, l.Objective.Name, p.BaseScore); err != nil {
		return nil, err
	}
	for i := range trees.Trees {
		weight := float32(1)
		if b.Name == "dart" {
			weight = float32(b.WeightDrop[i])
		}
		raw, err := xgbTreeNodes(f, &trees.Trees[i], weight)
		if err == nil {
			err = f.addTree(raw)
		}
		if err != nil {
			return nil, fmt.Errorf("tree %d: %w", i, err)
		}
	}
	return f, nil
}

// xgbObjective sets the output transformation and the base margin. XGBoost stores base_score
// in the output's space (a probability for logistic objectives) and starts every prediction
// from its margin, computed as XGBoost does in float32: logit for logistic objectives, log for
// Poisson, gamma, Tweedie and Cox, the value itself otherwise.
func xgbObjective(f *forest, name, baseScore string) error {
	s := strings.TrimSpace(baseScore)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") { // XGBoost 3 writes a vector
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	v, err := strconv.ParseFloat(s, 32)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("learner_model_param.base_score %q is not one finite number", clip(baseScore))
	}
	b := float32(v)
	margin := b
	switch name {
	case "binary:logistic", "reg:logistic", "binary:logitraw":
		if !(b > 0 && b < 1) {
			return fmt.Errorf("base_score %v of objective %s must lie in (0, 1)", b, name)
		}
		margin = -float32(math.Log(float64(1/b - 1)))
		f.out = outSigmoid32
		if name == "binary:logitraw" {
			f.out = outRaw
		}
	case "count:poisson", "reg:gamma", "reg:tweedie", "survival:cox":
		if !(b > 0) {
			return fmt.Errorf("base_score %v of objective %s must be positive", b, name)
		}
		margin = float32(math.Log(float64(b)))
		f.out = outExp32
	case "binary:hinge":
		f.out = outHinge
	case "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror",
		"reg:absoluteerror", "reg:quantileerror", "rank:pairwise", "rank:ndcg", "rank:map":
		f.out = outRaw
	case "":
		return errors.New("learner.objective.name is empty")
	default:
		if strings.HasPrefix(name, "multi:") {
			return fmt.Errorf("objective %s: multiclass models are not supported; Predict returns one number", name)
		}
		return fmt.Errorf("objective %q is not supported", clip(name))
	}
	f.base = float64(margin)
	return nil
}

// xgbTreeNodes converts one tree's arrays into raw nodes (same indices). Leaf values are
// scaled by the DART weight in float32, as XGBoost does when it predicts.
func xgbTreeNodes(f *forest, t *xgbTree, weight float32) ([]rawNode, error) {
	n := len(t.LeftChildren)
	if n == 0 {
		return nil, errors.New("has no nodes")
	}
	if n > MaxTreeNodes {
		return nil, limitErr("node count", n, "MaxTreeNodes", MaxTreeNodes)
	}
	for _, a := range []struct {
		name string
		len  int
	}{
		{"right_children", len(t.RightChildren)},
		{"split_indices", len(t.SplitIndices)},
		{"split_conditions", len(t.SplitConditions)},
		{"default_left", len(t.DefaultLeft)},
	} {
		if a.len != n {
			return nil, fmt.Errorf("%s has %d entries for %d nodes", a.name, a.len, n)
		}
	}
	if len(t.SplitType) != 0 && len(t.SplitType) != n {
		return nil, fmt.Errorf("split_type has %d entries for %d nodes", len(t.SplitType), n)
	}
	cats, err := xgbCategories(t, n)
	if err != nil {
		return nil, err
	}
	raw := make([]rawNode, n)
	for i := 0; i < n; i++ {
		l, r := t.LeftChildren[i], t.RightChildren[i]
		cond := float32(t.SplitConditions[i])
		if l == -1 {
			if r != -1 {
				return nil, fmt.Errorf("node %d has no left child but right child %d", i, r)
			}
			raw[i] = rawNode{leaf: true, value: float64(weight * cond)}
			continue
		}
		feature := t.SplitIndices[i]
		if feature < 0 || feature > math.MaxInt32 {
			return nil, fmt.Errorf("node %d splits on feature %d", i, feature)
		}
		rn := rawNode{feature: int32(feature), left: l, right: r}
		if t.DefaultLeft[i] {
			rn.flags = flagDefaultLeft
		}
		categorical := len(t.SplitType) == n && t.SplitType[i] != 0
		if categorical {
			words, ok := cats[i]
			if !ok {
				return nil, fmt.Errorf("categorical node %d has no categories", i)
			}
			k, err := f.addCatSet(words)
			if err != nil {
				return nil, err
			}
			rn.threshold = float64(k)
			rn.flags |= flagCategorical | flagInSetRight
		} else {
			if math.IsNaN(float64(cond)) || math.IsInf(float64(cond), -1) {
				return nil, fmt.Errorf("node %d has split condition %v", i, cond)
			}
			rn.threshold = below32(cond)
		}
		raw[i] = rn
	}
	return raw, nil
}

// xgbCategories builds the category bitset of each categorical node, keyed by node index.
func xgbCategories(t *xgbTree, n int) (map[int][]uint32, error) {
	k := len(t.CategoriesNodes)
	if k == 0 {
		return nil, nil
	}
	if len(t.CategoriesSegments) != k || len(t.CategoriesSizes) != k {
		return nil, fmt.Errorf("categories_nodes, categories_segments and categories_sizes have %d, %d and %d entries", k, len(t.CategoriesSegments), len(t.CategoriesSizes))
	}
	out := make(map[int][]uint32, k)
	for j := 0; j < k; j++ {
		node, start, size := t.CategoriesNodes[j], t.CategoriesSegments[j], t.CategoriesSizes[j]
		if node < 0 || node >= int64(n) {
			return nil, fmt.Errorf("categories_nodes names node %d of %d", node, n)
		}
		if start < 0 || size < 0 || start > int64(len(t.Categories)) || size > int64(len(t.Categories))-start {
			return nil, fmt.Errorf("categories segment %d..%d+%d is outside the %d categories", start, start, size, len(t.Categories))
		}
		var words []uint32
		for _, c := range t.Categories[start : start+size] {
			if c < 0 || c >= MaxCategory {
				return nil, fmt.Errorf("category %d of node %d is outside 0..%d (MaxCategory)", c, node, MaxCategory-1)
			}
			w := int(c >> 5)
			if w >= len(words) {
				if w+1 > MaxCategoryWord {
					return nil, limitErr("category bitset words", w+1, "MaxCategoryWord", MaxCategoryWord)
				}
				words = append(words, make([]uint32, w+1-len(words))...)
			}
			words[w] |= 1 << (c & 31)
		}
		out[int(node)] = words
	}
	return out, nil
}

// lineAt is the 1-based line of byte offset off in b. (quoteNonFinite adds no line breaks,
// so lines in its output are the source's lines.)
func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return 1 + bytes.Count(b[:off], []byte("\n"))
}

// overflow32 is the smallest float64 that float32() rounds to +Inf: MaxFloat32 plus half its
// last place (a tie rounds to the even neighbour, which is the overflow).
var overflow32 = math.MaxFloat32 + math.Ldexp(1, 103)

// below32 turns XGBoost's split test float32(x) < c into the float64 test x <= t: it returns
// the largest t for which float32(x) < c holds for every x <= t (and for no x > t).
// XGBoost compares float32 features with float32 conditions; doing the rounding here keeps
// the hot path free of conversions.
func below32(c float32) float64 {
	switch {
	case math.IsInf(float64(c), 1):
		return math.Nextafter(overflow32, math.Inf(-1))
	case c == -math.MaxFloat32:
		return -overflow32 // only values that round to -Inf are below
	}
	p := math.Nextafter32(c, float32(math.Inf(-1))) // the float32 just below c
	m := (float64(p) + float64(c)) / 2              // exact: the rounding boundary between them
	if math.Float32bits(p)&1 == 0 {
		return m // a tie rounds to p, which is below c
	}
	return math.Nextafter(m, math.Inf(-1)) // a tie rounds to c
}

// quoteNonFinite rewrites the bare words NaN, Infinity and -Infinity that XGBoost's JSON
// writer emits for non-finite floats into JSON strings, leaving string contents alone.
func quoteNonFinite(b []byte) []byte {
	words := [][]byte{[]byte("-Infinity"), []byte("Infinity"), []byte("-NaN"), []byte("NaN")}
	var out []byte
	last := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		if c != 'N' && c != 'I' && c != '-' {
			continue
		}
		for _, w := range words {
			if bytes.HasPrefix(b[i:], w) {
				if out == nil {
					out = make([]byte, 0, len(b)+64)
				}
				out = append(out, b[last:i]...)
				out = append(out, '"')
				out = append(out, w...)
				out = append(out, '"')
				i += len(w) - 1
				last = i + 1
				break
			}
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}
