package model

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// LightGBM decision_type bits (include/LightGBM/tree.h).
const (
	lgbCategorical = 1
	lgbDefaultLeft = 2
	// bits 2-3 hold the missing type: 0 None, 1 Zero, 2 NaN
	lgbMissingZero = 1
	lgbMissingNaN  = 2
)

// lgbLine is a key=value line of a LightGBM text model and where it was.
type lgbLine struct {
	value string
	line  int
}

// parseLightGBM reads a model in LightGBM's text format (what Booster.save_model writes): a
// header of key=value lines, then one block per tree ("Tree=N" followed by key=value lines),
// then "end of trees" and sections this package ignores (feature importances, parameters).
func parseLightGBM(src string) (*forest, error) {
	lines := strings.Split(src, "\n")
	at := 0 // index into lines; line numbers are at+1
	next := func() (string, bool) {
		for at < len(lines) {
			l := strings.TrimRight(lines[at], "\r \t")
			at++
			if l != "" {
				return l, true
			}
		}
		return "", false
	}
	first, ok := next()
	if !ok {
		return nil, errors.New("is empty")
	}
	if first != "tree" {
		return nil, &lineError{at, fmt.Errorf("starts with %q; a LightGBM text model starts with \"tree\"", clip(first))}
	}

	header := map[string]lgbLine{}
	var treeLine string
	for {
		l, ok := next()
		if !ok {
			return nil, errors.New("has no trees (no \"Tree=\" line)")
		}
		if strings.HasPrefix(l, "Tree=") {
			treeLine = l
			break
		}
		if l == "end of trees" {
			return nil, &lineError{at, errors.New("has no trees before \"end of trees\"")}
		}
		k, v, _ := strings.Cut(l, "=")
		header[k] = lgbLine{v, at}
	}

	f := &forest{}
	numFeatures := func() error {
		h, ok := header["max_feature_idx"]
		if !ok {
			return errors.New("has no max_feature_idx line")
		}
		n, err := strconv.Atoi(h.value)
		if err != nil || n < 0 {
			return &lineError{h.line, fmt.Errorf("max_feature_idx %q is not a non-negative integer", clip(h.value))}
		}
		if n+1 > MaxInputs {
			return &lineError{h.line, limitErr("feature count", n+1, "MaxInputs", MaxInputs)}
		}
		f.nFeatures = n + 1
		return nil
	}
	if err := numFeatures(); err != nil {
		return nil, err
	}
	for _, k := range []string{"num_class", "num_tree_per_iteration"} {
		if h, ok := header[k]; ok && h.value != "1" {
			return nil, &lineError{h.line, fmt.Errorf("%s=%s: models with more than one output (multiclass) are not supported; Predict returns one number", k, clip(h.value))}
		}
	}
	if h, ok := header["feature_names"]; ok {
		names := strings.Fields(h.value)
		if len(names) != f.nFeatures {
			return nil, &lineError{h.line, fmt.Errorf("feature_names lists %d names for %d features", len(names), f.nFeatures)}
		}
		f.names = names
	}
	_, f.average = header["average_output"]
	if err := lgbObjective(f, header); err != nil {
		return nil, err
	}

	// Trees.
	for {
		want := "Tree=" + strconv.Itoa(len(f.roots))
		if treeLine != want {
			return nil, &lineError{at, fmt.Errorf("found %q, want %q", clip(treeLine), want)}
		}
		treeAt := at
		block := map[string]lgbLine{}
		treeLine = ""
		for {
			l, ok := next()
			if !ok || l == "end of trees" {
				break
			}
			if strings.HasPrefix(l, "Tree=") {
				treeLine = l
				break
			}
			k, v, _ := strings.Cut(l, "=")
			block[k] = lgbLine{v, at}
		}
		raw, cats, err := lgbTree(block, treeAt)
		if err != nil {
			return nil, err
		}
		// Register the tree's category bitsets and point its categorical nodes at them.
		if len(cats) > 0 {
			base := len(f.cats)
			for _, words := range cats {
				if _, err := f.addCatSet(words); err != nil {
					return nil, &lineError{treeAt, err}
				}
			}
			for i := range raw {
				if !raw[i].leaf && raw[i].flags&flagCategorical != 0 {
					raw[i].threshold += float64(base)
				}
			}
		}
		if err := f.addTree(raw); err != nil {
			return nil, &lineError{treeAt, fmt.Errorf("tree %d: %w", len(f.roots), err)}
		}
		if treeLine == "" {
			break
		}
	}
	return f, nil
}

// lgbObjective sets the output transformation from the objective line, e.g.
// "objective=binary sigmoid:1" or "objective=regression sqrt".
func lgbObjective(f *forest, header map[string]lgbLine) error {
	h, ok := header["objective"]
	if !ok {
		f.out = outRaw // trained with a custom objective: LightGBM returns raw scores
		return nil
	}
	fields := strings.Fields(h.value)
	if len(fields) == 0 {
		return &lineError{h.line, errors.New("objective is empty")}
	}
	name, params := fields[0], fields[1:]
	param := func(key string) (string, bool) {
		for _, p := range params {
			if p == key {
				return "", true
			}
			if k, v, ok := strings.Cut(p, ":"); ok && k == key {
				return v, true
			}
		}
		return "", false
	}
	switch name {
	case "binary":
		f.out, f.scale = outSigmoid, 1
		if v, ok := param("sigmoid"); ok {
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || !(s > 0) || math.IsInf(s, 0) {
				return &lineError{h.line, fmt.Errorf("objective binary has sigmoid %q; want a positive number", clip(v))}
			}
			f.scale = s
		}
	case "cross_entropy", "xentropy":
		f.out, f.scale = outSigmoid, 1
	case "regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root",
		"root_mean_squared_error", "rmse", "regression_l1", "l1", "mean_absolute_error", "mae",
		"huber", "fair", "quantile", "mape", "mean_absolute_percentage_error":
		f.out = outRaw
		if _, ok := param("sqrt"); ok {
			f.out = outSquare
		}
	case "poisson", "gamma", "tweedie":
		f.out = outExp
	case "lambdarank", "rank_xendcg", "custom", "none":
		f.out = outRaw
	case "multiclass", "multiclassova", "softmax", "ova", "ovr":
		return &lineError{h.line, fmt.Errorf("objective %s: multiclass models are not supported; Predict returns one number", name)}
	default:
		return &lineError{h.line, fmt.Errorf("objective %q is not supported", clip(name))}
	}
	return nil
}

// lgbTree converts one tree block into raw nodes: internal node i of the file is raw[i], leaf
// j is raw[num_leaves-1+j]. It also returns the tree's category bitsets, which categorical
// nodes index through their threshold.
func lgbTree(b map[string]lgbLine, treeAt int) ([]rawNode, [][]uint32, error) {
	get := func(k string) (lgbLine, error) {
		v, ok := b[k]
		if !ok {
			return v, &lineError{treeAt, fmt.Errorf("tree has no %s line", k)}
		}
		return v, nil
	}
	h, err := get("num_leaves")
	if err != nil {
		return nil, nil, err
	}
	nLeaves, err := strconv.Atoi(h.value)
	if err != nil || nLeaves < 1 {
		return nil, nil, &lineError{h.line, fmt.Errorf("num_leaves %q is not a positive integer", clip(h.value))}
	}
	if nLeaves > (MaxTreeNodes+1)/2 { // compared before doubling, which could overflow
		return nil, nil, &lineError{h.line, limitErr("leaf count", nLeaves, "MaxTreeNodes/2 (leaves of a tree)", (MaxTreeNodes+1)/2)}
	}
	if v, ok := b["is_linear"]; ok && v.value != "0" {
		return nil, nil, &lineError{v.line, errors.New("linear trees (is_linear=1) are not supported")}
	}
	nInner := nLeaves - 1
	raw := make([]rawNode, nInner+nLeaves)

	h, err = get("leaf_value")
	if err != nil {
		return nil, nil, err
	}
	values, err := parseFloats(h.value, nLeaves)
	if err != nil {
		return nil, nil, &lineError{h.line, fmt.Errorf("leaf_value: %w", err)}
	}
	for j, v := range values {
		raw[nInner+j] = rawNode{leaf: true, value: v}
	}
	if nInner == 0 {
		return raw[nInner:], nil, nil
	}

	ints := func(k string, min, max int) ([]int, error) {
		h, err := get(k)
		if err != nil {
			return nil, err
		}
		vs, err := parseInts(h.value, nInner, min, max)
		if err != nil {
			return nil, &lineError{h.line, fmt.Errorf("%s: %w", k, err)}
		}
		return vs, nil
	}
	features, err := ints("split_feature", 0, math.MaxInt32)
	if err != nil {
		return nil, nil, err
	}
	decisions, err := ints("decision_type", 0, 15)
	if err != nil {
		return nil, nil, err
	}
	lefts, err := ints("left_child", -nLeaves, nInner-1)
	if err != nil {
		return nil, nil, err
	}
	rights, err := ints("right_child", -nLeaves, nInner-1)
	if err != nil {
		return nil, nil, err
	}
	h, err = get("threshold")
	if err != nil {
		return nil, nil, err
	}
	thresholds, err := parseFloats(h.value, nInner)
	if err != nil {
		return nil, nil, &lineError{h.line, fmt.Errorf("threshold: %w", err)}
	}
	thresholdLine := h.line

	cats, err := lgbCats(b, treeAt)
	if err != nil {
		return nil, nil, err
	}

	// A child index c >= 0 is internal node c; c < 0 is leaf ^c.
	child := func(c int) int32 {
		if c < 0 {
			return int32(nInner + ^c)
		}
		return int32(c)
	}
	for i := 0; i < nInner; i++ {
		d := decisions[i]
		r := rawNode{feature: int32(features[i]), threshold: thresholds[i], left: child(lefts[i]), right: child(rights[i])}
		missing := d >> 2 & 3
		if missing == 3 {
			return nil, nil, &lineError{b["decision_type"].line, fmt.Errorf("decision_type %d of node %d has an unknown missing type", d, i)}
		}
		if d&lgbCategorical != 0 {
			k := thresholds[i]
			if k != math.Trunc(k) || k < 0 || int(k) >= len(cats) {
				return nil, nil, &lineError{thresholdLine, fmt.Errorf("categorical node %d has threshold %v; want a category set index 0..%d", i, k, len(cats)-1)}
			}
			// LightGBM sends NaN and non-categories right, the set left.
			r.flags = flagCategorical
		} else {
			switch {
			case missing == lgbMissingNaN:
				if d&lgbDefaultLeft != 0 {
					r.flags = flagDefaultLeft
				}
			case missing == lgbMissingZero:
				r.flags = flagZeroMissing
				if d&lgbDefaultLeft != 0 {
					r.flags |= flagDefaultLeft
				}
			default:
				// Missing type None: LightGBM reads NaN as 0, so NaN goes where 0 goes.
				if 0 <= thresholds[i] {
					r.flags = flagDefaultLeft
				}
			}
		}
		raw[i] = r
	}
	return raw, cats, nil
}

// lgbCats reads a tree's cat_boundaries and cat_threshold into one bitset per categorical
// split.
func lgbCats(b map[string]lgbLine, treeAt int) ([][]uint32, error) {
	nCat := 0
	if h, ok := b["num_cat"]; ok {
		n, err := strconv.Atoi(h.value)
		if err != nil || n < 0 || n > MaxTreeNodes {
			return nil, &lineError{h.line, fmt.Errorf("num_cat %q is not an integer in 0..%d", clip(h.value), MaxTreeNodes)}
		}
		nCat = n
	}
	if nCat == 0 {
		return nil, nil
	}
	hb, ok := b["cat_boundaries"]
	if !ok {
		return nil, &lineError{treeAt, errors.New("tree has categorical splits but no cat_boundaries line")}
	}
	bounds, err := parseInts(hb.value, nCat+1, 0, MaxCategoryWord)
	if err != nil {
		return nil, &lineError{hb.line, fmt.Errorf("cat_boundaries: %w", err)}
	}
	if bounds[0] != 0 {
		return nil, &lineError{hb.line, errors.New("cat_boundaries must start at 0")}
	}
	for k := 1; k <= nCat; k++ {
		if bounds[k] < bounds[k-1] {
			return nil, &lineError{hb.line, errors.New("cat_boundaries must not decrease")}
		}
	}
	ht, ok := b["cat_threshold"]
	if !ok {
		return nil, &lineError{treeAt, errors.New("tree has categorical splits but no cat_threshold line")}
	}
	words, err := parseInts(ht.value, bounds[nCat], 0, math.MaxUint32)
	if err != nil {
		return nil, &lineError{ht.line, fmt.Errorf("cat_threshold: %w", err)}
	}
	sets := make([][]uint32, nCat)
	for k := range sets {
		s := make([]uint32, bounds[k+1]-bounds[k])
		for i := range s {
			s[i] = uint32(words[bounds[k]+i])
		}
		sets[k] = s
	}
	return sets, nil
}

// parseFloats reads exactly n space-separated numbers. It stops at the first token past n, so
// a huge line costs no more than n numbers.
func parseFloats(s string, n int) ([]float64, error) {
	out := make([]float64, 0, n)
	for tok := range tokens(s) {
		if len(out) == n {
			return nil, fmt.Errorf("has more than %d values", n)
		}
		v, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			return nil, fmt.Errorf("value %d %q is not a number", len(out), clip(tok))
		}
		out = append(out, v)
	}
	if len(out) != n {
		return nil, fmt.Errorf("has %d values, want %d", len(out), n)
	}
	return out, nil
}

// parseInts reads exactly n space-separated integers in [min, max].
func parseInts(s string, n, min, max int) ([]int, error) {
	out := make([]int, 0, n)
	for tok := range tokens(s) {
		if len(out) == n {
			return nil, fmt.Errorf("has more than %d values", n)
		}
		v, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || v < int64(min) || v > int64(max) {
			return nil, fmt.Errorf("value %d %q is not an integer in %d..%d", len(out), clip(tok), min, max)
		}
		out = append(out, int(v))
	}
	if len(out) != n {
		return nil, fmt.Errorf("has %d values, want %d", len(out), n)
	}
	return out, nil
}

// tokens yields the space-separated fields of s without building a slice of them.
func tokens(s string) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for s != "" {
			s = strings.TrimLeft(s, " \t")
			if s == "" {
				return
			}
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			if !yield(s[:end]) {
				return
			}
			s = s[end:]
		}
	}
}

// clip shortens text quoted in an error message.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
