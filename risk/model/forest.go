package model

import (
	"errors"
	"fmt"
	"math"
)

// Node flags.
const (
	// flagDefaultLeft sends a missing value (NaN) to the left child.
	flagDefaultLeft uint8 = 1 << iota
	// flagZeroMissing also treats values in [-zeroThreshold, zeroThreshold] as missing
	// (LightGBM's missing type "Zero").
	flagZeroMissing
	// flagCategorical marks a categorical split: threshold indexes forest.cats.
	flagCategorical
	// flagInSetRight sends the categories of the set to the right child (XGBoost) instead of
	// the left (LightGBM); values outside the set go the other way.
	flagInSetRight
)

// walk's branch-free child choice reads the default direction as bit 0.
const _ uint8 = 1 - flagDefaultLeft

// zeroThreshold is LightGBM's kZeroThreshold, a float constant 1e-35f widened to double.
var zeroThreshold = float64(float32(1e-35))

// node is one split of a flattened forest. A child index >= 0 is a node of forest.nodes; a
// negative one is ^i for leaf i of forest.leaves.
type node struct {
	threshold float64 // go left when x <= threshold; for categorical splits the index into cats
	feature   int32
	left      int32
	right     int32
	flags     uint8
}

// catSet is one categorical split's bitset: words [start, start+n) of forest.catWords; bit c
// of the concatenated words is set when category c is in the set.
type catSet struct{ start, n int32 }

// output is the transformation from the summed trees (the margin) to Predict's result.
type output uint8

const (
	outRaw       output = iota // the margin itself
	outSigmoid                 // 1 / (1 + exp(-scale * margin)), in float64 (LightGBM)
	outExp                     // exp(margin), in float64 (LightGBM Poisson, gamma, Tweedie)
	outSquare                  // sign(margin) * margin², LightGBM regression with reg_sqrt
	outSigmoid32               // XGBoost's float32 sigmoid
	outExp32                   // XGBoost's float32 exp
	outHinge                   // 1 if margin > 0 else 0 (XGBoost binary:hinge)
)

// forest is a tree ensemble flattened into contiguous arrays.
type forest struct {
	nodes     []node
	leaves    []float64
	roots     []int32 // per tree, in order: its root node, or ^leaf for a single-leaf tree
	cats      []catSet
	catWords  []uint32
	nFeatures int
	names     []string // feature names stored in the model file, if any

	f32     bool    // XGBoost: sum in float32, categories from float32(x)
	base    float64 // added to the sum of the trees (XGBoost's base margin)
	average bool    // divide the sum by the number of trees (LightGBM average_output)
	out     output
	scale   float64 // outSigmoid's scale

	packed *packed // the trees as complete trees, when they are shallow (pack)
}

// rawNode is a tree node as a parser reads it, before flattening. Children index the same
// tree's rawNode slice.
type rawNode struct {
	leaf      bool
	value     float64 // leaf value
	feature   int32
	threshold float64
	flags     uint8
	left      int32
	right     int32
}

// addTree flattens one tree, whose root is raw[0], into f. Nodes that cannot be reached from
// the root are dropped (XGBoost keeps deleted nodes in its arrays); a node reached twice, a
// child out of range or a path deeper than MaxTreeDepth is an error.
func (f *forest) addTree(raw []rawNode) error {
	if len(raw) == 0 {
		return errors.New("has no nodes")
	}
	if len(raw) > MaxTreeNodes {
		return limitErr("node count", len(raw), "MaxTreeNodes", MaxTreeNodes)
	}
	if len(f.roots) >= MaxTrees {
		return limitErr("tree count", len(f.roots)+1, "MaxTrees", MaxTrees)
	}
	// First pass: number the reachable nodes in preorder, left subtree first, so that a
	// node's left child usually sits right after it.
	const unseen = math.MinInt32
	id := make([]int32, len(raw))
	for i := range id {
		id[i] = unseen
	}
	type item struct{ at, depth int32 }
	stack := []item{{0, 0}}
	order := make([]int32, 0, len(raw))
	nInner, nLeaves := int32(len(f.nodes)), int32(len(f.leaves))
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if id[it.at] != unseen {
			return fmt.Errorf("node %d is reached twice", it.at)
		}
		r := &raw[it.at]
		if r.leaf {
			id[it.at] = ^nLeaves
			nLeaves++
			order = append(order, it.at)
			continue
		}
		if it.depth >= MaxTreeDepth {
			return limitErr("depth", int(it.depth)+1, "MaxTreeDepth", MaxTreeDepth)
		}
		for _, c := range [2]int32{r.left, r.right} {
			if c <= 0 || int(c) >= len(raw) {
				return fmt.Errorf("node %d has child %d, outside 1..%d", it.at, c, len(raw)-1)
			}
		}
		id[it.at] = nInner
		nInner++
		order = append(order, it.at)
		stack = append(stack, item{r.right, it.depth + 1}, item{r.left, it.depth + 1})
	}
	if int(nInner)+int(nLeaves) > MaxForestNodes {
		return limitErr("node count of the ensemble", int(nInner)+int(nLeaves), "MaxForestNodes", MaxForestNodes)
	}
	// Second pass: emit.
	for _, at := range order {
		r := &raw[at]
		if r.leaf {
			if math.IsNaN(r.value) || math.IsInf(r.value, 0) {
				return fmt.Errorf("leaf node %d has value %v; want a finite number", at, r.value)
			}
			f.leaves = append(f.leaves, r.value)
			continue
		}
		if r.feature < 0 || int(r.feature) >= f.nFeatures {
			return fmt.Errorf("node %d splits on feature %d; the model has features 0..%d", at, r.feature, f.nFeatures-1)
		}
		if math.IsNaN(r.threshold) && r.flags&flagCategorical == 0 {
			return fmt.Errorf("node %d has threshold NaN", at)
		}
		f.nodes = append(f.nodes, node{
			threshold: r.threshold,
			feature:   r.feature,
			left:      id[r.left],
			right:     id[r.right],
			flags:     r.flags,
		})
	}
	f.roots = append(f.roots, id[0])
	return nil
}

// lanes is how many trees marginWalk (the layout of trees too deep to pack) walks at once. One walk is a chain of dependent loads (node,
// input, child); interleaving independent walks lets the processor overlap them. On the
// 300-tree, depth-6 benchmark eight lanes cut the time per prediction by about 2.5 times
// against walking one tree at a time (BENCHMARKS.md).
const lanes = 8

// margin sums the trees' leaves for x, which has at least nFeatures entries, in tree order
// (so that the float sums round exactly as the training tool's do).
func (f *forest) margin(x []float64) float64 {
	if f.packed != nil {
		return f.marginPacked(x)
	}
	return f.marginWalk(x)
}

// marginWalk is margin on the pointer layout.
func (f *forest) marginWalk(x []float64) float64 {
	var buf [lanes]int32
	r := f.roots
	if f.f32 {
		s := float32(f.base)
		for k := 0; k < len(r); k += lanes {
			cur := buf[:min(lanes, len(r)-k)]
			f.walk(x, r[k:], cur)
			for _, i := range cur {
				s += float32(f.leaves[^i])
			}
		}
		return float64(s)
	}
	s := f.base
	for k := 0; k < len(r); k += lanes {
		cur := buf[:min(lanes, len(r)-k)]
		f.walk(x, r[k:], cur)
		for _, i := range cur {
			s += f.leaves[^i]
		}
	}
	if f.average {
		s /= float64(len(r))
	}
	return s
}

// walk takes len(cur) trees from roots down to their leaves, one level of every tree per
// round, and leaves each tree's leaf (as ^index) in cur.
func (f *forest) walk(x []float64, roots []int32, cur []int32) {
	copy(cur, roots)
	for {
		live := 0
		for j, i := range cur {
			if i < 0 {
				continue
			}
			n := &f.nodes[i]
			v := x[n.feature]
			if n.flags&(flagCategorical|flagZeroMissing) != 0 {
				if f.decide(n.flags, n.threshold, v) {
					i = n.left
				} else {
					i = n.right
				}
			} else {
				// Left when v <= threshold, or when v is NaN and the default is left; chosen
				// without a branch, since the direction is a coin toss for the predictor.
				c := int32((b2u(v <= n.threshold) | b2u(v != v)&n.flags) & flagDefaultLeft)
				i = n.right + c*(n.left-n.right)
			}
			cur[j] = i
			live += int(uint32(^i) >> 31) // 1 while i >= 0
		}
		if live == 0 {
			return
		}
	}
}

// b2u is 1 for true, 0 for false; the compiler turns it into a flag read, not a jump.
func b2u(b bool) uint8 {
	var u uint8
	if b {
		u = 1
	}
	return u
}

// decide handles the rarer splits: categorical ones and numeric ones where zero is missing.
// It reports whether v goes left.
func (f *forest) decide(flags uint8, threshold, v float64) bool {
	if v != v {
		return flags&flagDefaultLeft != 0
	}
	if flags&flagCategorical == 0 {
		if v >= -zeroThreshold && v <= zeroThreshold {
			return flags&flagDefaultLeft != 0
		}
		return v <= threshold
	}
	return f.inSet(threshold, v) != (flags&flagInSetRight != 0)
}

// inSet reports whether v is one of the categories of a categorical split. Values that are no
// category at all (negative, too large) are outside every set.
func (f *forest) inSet(set, v float64) bool {
	var c int64
	if f.f32 {
		// XGBoost reads the category from the float32 value and rejects negative values.
		v32 := float32(v)
		if !(v32 >= 0 && v32 < MaxCategory) {
			return false
		}
		c = int64(v32)
	} else {
		// LightGBM truncates toward zero into an int and rejects negative results, so
		// values in (-1, 0) are category 0.
		if !(v > -1 && v < math.MaxInt32) {
			return false
		}
		c = int64(v)
	}
	cs := f.cats[int(set)]
	w := c >> 5
	if w >= int64(cs.n) {
		return false
	}
	return f.catWords[int64(cs.start)+w]>>(c&31)&1 != 0
}

// addCatSet appends a bitset and returns its index for a node's threshold.
func (f *forest) addCatSet(words []uint32) (int, error) {
	if len(f.catWords)+len(words) > MaxCategoryWord {
		return 0, limitErr("category bitset words", len(f.catWords)+len(words), "MaxCategoryWord", MaxCategoryWord)
	}
	f.cats = append(f.cats, catSet{start: int32(len(f.catWords)), n: int32(len(words))})
	f.catWords = append(f.catWords, words...)
	return len(f.cats) - 1, nil
}

// transform applies the model's objective to a margin.
func (f *forest) transform(m float64) float64 {
	switch f.out {
	case outSigmoid:
		return 1 / (1 + math.Exp(-f.scale*m))
	case outExp:
		return math.Exp(m)
	case outSquare:
		if m < 0 {
			return -m * m
		}
		return m * m
	case outSigmoid32:
		return float64(sigmoid32(float32(m)))
	case outExp32:
		return float64(float32(math.Exp(float64(float32(m)))))
	case outHinge:
		if m > 0 {
			return 1
		}
		return 0
	}
	return m
}

// sigmoid32 is XGBoost's float sigmoid: 1 / (expf(min(-x, 88.7)) + 1), every step rounded to
// float32. (The clamp keeps expf finite; XGBoost's extra 1e-16f cannot change a float32 sum
// that is at least 1.)
func sigmoid32(x float32) float32 {
	t := -x
	if t > 88.7 {
		t = 88.7
	}
	e := float32(math.Exp(float64(t)))
	d := e + 1
	return 1 / d
}

// treeModel is a compiled LightGBM or XGBoost ensemble.
type treeModel struct {
	id     string
	inputs []string
	f      *forest
}

func newTreeModel(s Spec, f *forest) (Model, error) {
	inputs := s.Inputs
	if len(inputs) == 0 {
		if len(f.names) == 0 {
			return nil, &Error{ID: s.ID, Field: "inputs", Err: fmt.Errorf("is empty and the model file names no features; list its %d inputs", f.nFeatures)}
		}
		if err := checkNames(f.names); err != nil {
			return nil, &Error{ID: s.ID, Field: "inputs", Err: fmt.Errorf("is empty and the model file's feature names are unusable: %v", err)}
		}
		inputs = f.names
	}
	if len(inputs) != f.nFeatures {
		return nil, &Error{ID: s.ID, Field: "inputs", Err: fmt.Errorf("lists %d names; the model file has %d features, one name each in the model's feature order", len(inputs), f.nFeatures)}
	}
	f.pack()
	return &treeModel{id: s.ID, inputs: append([]string(nil), inputs...), f: f}, nil
}

func (m *treeModel) ID() string       { return m.id }
func (m *treeModel) Inputs() []string { return append([]string(nil), m.inputs...) }

func (m *treeModel) Predict(x []float64) float64 {
	return m.f.transform(m.margin(x))
}

// margin is the ensemble's raw score before the objective's transformation.
func (m *treeModel) margin(x []float64) float64 {
	if len(x) < m.f.nFeatures {
		x = padNaN(x, m.f.nFeatures)
	}
	return m.f.margin(x)
}

// padNaN returns x extended with NaN to n entries. Only a caller that passes a short slice
// pays for this allocation.
func padNaN(x []float64, n int) []float64 {
	p := make([]float64, n)
	copy(p, x)
	for i := len(x); i < n; i++ {
		p[i] = math.NaN()
	}
	return p
}
