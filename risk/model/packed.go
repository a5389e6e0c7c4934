package model

import "math"

// packed is a forest of shallow trees laid out as complete binary trees of one depth, so that
// a walk needs no child indexes: node k of a tree has children 2k+1 (left) and 2k+2 (right),
// and every walk takes exactly depth steps. A leaf above the full depth becomes a chain of
// pass-through splits that always go left (threshold +Inf, missing values left), with its
// value copied to every leaf below it, so the walk ends on a leaf of the same value.
type packed struct {
	depth  int
	inner  int     // 2^depth − 1 splits per tree
	nodes  []pnode // tree t's splits are nodes[t*inner : (t+1)*inner], breadth first
	leaves []float64
	// plain is true when no split is categorical or treats zero as missing: the walk then
	// needs no check for them.
	plain bool
}

// pnode is a split of a packed tree; see node.
type pnode struct {
	threshold float64
	feature   int32
	flags     uint8
}

// Limits on packing: deeper trees walk the interleaved pointer layout, and so do ragged
// trees whose padding would more than quadruple the nodes (their padded walks take far more
// steps than their real paths).
const (
	maxPackDepth  = 8
	maxPackGrowth = 4
)

// pack lays f's trees out as a packed forest when they are shallow enough; margin uses it.
// It is called once the last tree is added.
func (f *forest) pack() { f.packWithin(maxPackDepth, maxPackGrowth) }

// packWithin packs f unless a tree is deeper than maxDepth or padding would make more than
// growth times its nodes.
func (f *forest) packWithin(maxDepth, growth int) {
	f.packed = nil
	depth := 0
	for _, r := range f.roots {
		d := f.depth(r)
		if d > maxDepth {
			return
		}
		depth = max(depth, d)
	}
	nt := len(f.roots)
	inner := 1<<depth - 1
	if nt*(2*inner+1) > growth*(len(f.nodes)+len(f.leaves)) {
		return
	}
	p := &packed{depth: depth, inner: inner, nodes: make([]pnode, nt*inner), leaves: make([]float64, nt<<depth), plain: true}
	pass := pnode{threshold: math.Inf(1), flags: flagDefaultLeft}
	var fill func(t, k, level int, at int32)
	fill = func(t, k, level int, at int32) {
		if level == depth {
			p.leaves[t<<depth+k-inner] = f.leaves[^at]
			return
		}
		left, right := at, at // a leaf above the full depth: both sides lead to it
		if at >= 0 {
			n := &f.nodes[at]
			p.nodes[t*inner+k] = pnode{threshold: n.threshold, feature: n.feature, flags: n.flags}
			if n.flags&(flagCategorical|flagZeroMissing) != 0 {
				p.plain = false
			}
			left, right = n.left, n.right
		} else {
			p.nodes[t*inner+k] = pass
		}
		fill(t, 2*k+1, level+1, left)
		fill(t, 2*k+2, level+1, right)
	}
	for t, r := range f.roots {
		fill(t, 0, 0, r)
	}
	f.packed = p
}

// depth is the number of splits on the longest path from i down to a leaf.
func (f *forest) depth(i int32) int {
	if i < 0 {
		return 0
	}
	n := &f.nodes[i]
	return 1 + max(f.depth(n.left), f.depth(n.right))
}

// packChunk is how many trees a packed walk takes down one level at a time. The steps of
// different trees do not depend on each other, so the processor overlaps their loads.
const packChunk = 64

// leavesPacked walks trees [k, k+len(cur)) of p down to their leaves and leaves each tree's
// leaf index (within the tree's leaves) in cur. x decides the loop: without missing values
// (the usual case for window features) and without special splits the step is one compare.
func (f *forest) leavesPacked(x []float64, k int, cur []uint32) {
	p := f.packed
	clear(cur)
	inner := p.inner
	nodes := p.nodes[k*inner:]
	switch {
	case p.plain && !hasNaN(x):
		for range p.depth {
			stepNumber(nodes, inner, x, cur)
		}
	case p.plain:
		for range p.depth {
			stepMissing(nodes, inner, x, cur)
		}
	default:
		for range p.depth {
			f.stepAny(nodes, inner, x, cur)
		}
	}
	for j := range cur {
		cur[j] -= uint32(inner)
	}
}

// hasNaN reports whether x holds a missing value.
func hasNaN(x []float64) bool {
	for _, v := range x {
		if v != v {
			return true
		}
	}
	return false
}

// stepNumber takes each tree of cur (tree j's splits start at nodes[j*inner]) one level down,
// for x without NaN and splits that are all numeric with NaN as the only missing value.
func stepNumber(nodes []pnode, inner int, x []float64, cur []uint32) {
	at := 0
	for j, i := range cur {
		n := &nodes[at+int(i)]
		at += inner
		cur[j] = 2*i + 2 - uint32(b2u(x[n.feature] <= n.threshold))
	}
}

// stepMissing is stepNumber for x with NaN.
func stepMissing(nodes []pnode, inner int, x []float64, cur []uint32) {
	at := 0
	for j, i := range cur {
		n := &nodes[at+int(i)]
		at += inner
		v := x[n.feature]
		// Left when v <= threshold, or when v is NaN and the default is left.
		c := (b2u(v <= n.threshold) | b2u(v != v)&n.flags) & flagDefaultLeft
		cur[j] = 2*i + 2 - uint32(c)
	}
}

// stepAny is stepMissing for forests with categorical splits or splits where zero is
// missing.
func (f *forest) stepAny(nodes []pnode, inner int, x []float64, cur []uint32) {
	at := 0
	for j, i := range cur {
		n := &nodes[at+int(i)]
		at += inner
		v := x[n.feature]
		var c uint8
		if n.flags&(flagCategorical|flagZeroMissing) != 0 {
			c = b2u(f.decide(n.flags, n.threshold, v))
		} else {
			c = (b2u(v <= n.threshold) | b2u(v != v)&n.flags) & flagDefaultLeft
		}
		cur[j] = 2*i + 2 - uint32(c)
	}
}

// marginPacked is margin on the packed layout.
func (f *forest) marginPacked(x []float64) float64 {
	p := f.packed
	var buf [packChunk]uint32
	nt := len(f.roots)
	if f.f32 {
		s := float32(f.base)
		for k := 0; k < nt; k += packChunk {
			cur := buf[:min(packChunk, nt-k)]
			f.leavesPacked(x, k, cur)
			for j, i := range cur {
				s += float32(p.leaves[(k+j)<<p.depth+int(i)])
			}
		}
		return float64(s)
	}
	s := f.base
	for k := 0; k < nt; k += packChunk {
		cur := buf[:min(packChunk, nt-k)]
		f.leavesPacked(x, k, cur)
		for j, i := range cur {
			s += p.leaves[(k+j)<<p.depth+int(i)]
		}
	}
	if f.average {
		s /= float64(nt)
	}
	return s
}
