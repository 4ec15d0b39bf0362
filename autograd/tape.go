package autograd

import (
	"fmt"
	"sync/atomic"

	"github.com/mtbert/mtbert/tensor"
)

// Var is a value in the graph: a tensor, the gradient of the loss with respect to it (once
// Backward has reached it), and whether gradients flow to it.
type Var struct {
	Value *tensor.Tensor
	Grad  *tensor.Tensor
	// Name labels parameters (hierarchical, e.g. "encoder.layer.0.attention.self.query.weight").
	Name         string
	requiresGrad bool
	param        bool
	version      atomic.Uint64
}

// Modified records that v's value has changed. Caches derived from a parameter's value (the
// packed or quantised weights of nn.Linear at inference) compare Version with the one they were
// built from and are rebuilt or bypassed when it differs; the optimisers and Params.SetFrom
// call it, and so must any code that writes a parameter through Value.Data() after inference.
func (v *Var) Modified() { v.version.Add(1) }

// Version counts the calls to Modified.
func (v *Var) Version() uint64 { return v.version.Load() }

// NewParam returns a trainable leaf holding t. Its gradient is allocated once and kept across
// tape resets.
func NewParam(name string, t *tensor.Tensor) *Var {
	return &Var{Value: t, Name: name, requiresGrad: true, param: true}
}

// Constant wraps t as a leaf that receives no gradient.
func Constant(t *tensor.Tensor) *Var { return &Var{Value: t} }

// RequiresGrad reports whether gradients flow to v.
func (v *Var) RequiresGrad() bool { return v.requiresGrad }

// Shape returns the shape of v's value.
func (v *Var) Shape() []int { return v.Value.Shape() }

// Detach returns a constant sharing v's value: gradients stop there.
func (v *Var) Detach() *Var { return &Var{Value: v.Value} }

// ZeroGrad sets v's gradient to zero, if it has one.
func (v *Var) ZeroGrad() {
	if v.Grad != nil {
		v.Grad.Zero()
	}
}

// Tape records operations and runs their backward passes.
type Tape struct {
	// KeepGrads keeps the gradients of intermediate values after Backward. By default each is
	// returned to the pool as soon as the op that made the value has consumed it, which roughly
	// halves the peak memory of a training step; parameters always keep theirs.
	KeepGrads bool

	record bool
	nodes  []func()
	outs   []*Var
	pool   *tensor.Pool
	temps  []*tensor.Tensor
}

// NewTape returns a tape that records operations for Backward.
func NewTape() *Tape { return &Tape{record: true, pool: tensor.NewPool()} }

// NoGrad returns a tape that records nothing: ops on it compute values only and keep nothing
// for a backward pass. Use it for inference.
func NoGrad() *Tape { return &Tape{pool: tensor.NewPool()} }

// Recording reports whether the tape records operations.
func (tp *Tape) Recording() bool { return tp.record }

// PoolAllocs returns how many buffers the tape's pool has had to allocate so far.
func (tp *Tape) PoolAllocs() int { return tp.pool.Allocs }

// PoolPeakLive returns the most float32 elements the tape's buffers held at once.
func (tp *Tape) PoolPeakLive() int { return tp.pool.PeakLive() }

// Mark returns a position in the tape's buffers for ReleaseSince.
func (tp *Tape) Mark() int { return len(tp.temps) }

// ReleaseSince gives back to the pool every buffer allocated since mark except those that
// hold the values of keep (or views of them), so that inference through a deep model holds
// one layer's intermediates at a time rather than all of them. Only a NoGrad tape may release
// (a recording tape needs its buffers for Backward); Vars made since mark other than keep must
// not be used afterwards.
func (tp *Tape) ReleaseSince(mark int, keep ...*Var) {
	if tp.record {
		panic("autograd: ReleaseSince on a recording tape")
	}
	kept := tp.temps[:mark]
	for _, t := range tp.temps[mark:] {
		hold := false
		for _, k := range keep {
			hold = hold || (k != nil && k.Value.Storage() == t.Storage())
		}
		if hold {
			kept = append(kept, t)
		} else {
			tp.pool.Put(t)
		}
	}
	clear(tp.temps[len(kept):])
	tp.temps = kept
}

// Alloc returns a zeroed tensor owned by the tape until Reset.
func (tp *Tape) Alloc(shape ...int) *tensor.Tensor {
	t := tp.pool.Get(shape...)
	tp.temps = append(tp.temps, t)
	return t
}

// AllocUninit is Alloc without the zeroing (tensor.Pool.GetUninit), for an output the caller
// overwrites whole before anything reads it.
func (tp *Tape) AllocUninit(shape ...int) *tensor.Tensor {
	t := tp.pool.GetUninit(shape...)
	tp.temps = append(tp.temps, t)
	return t
}

// needsGrad reports whether an op on these inputs must be recorded.
func (tp *Tape) needsGrad(inputs ...*Var) bool {
	if !tp.record {
		return false
	}
	for _, v := range inputs {
		if v != nil && v.requiresGrad {
			return true
		}
	}
	return false
}

// Op creates the output Var of an operation on inputs and, when a gradient must flow, records
// backward, which is called once out.Grad holds the incoming gradient and must accumulate into
// the inputs' gradients through tp.GradOf. It is the one entry point for adding an op.
func (tp *Tape) Op(value *tensor.Tensor, backward func(out *Var), inputs ...*Var) *Var {
	out := &Var{Value: value}
	if tp.needsGrad(inputs...) {
		out.requiresGrad = true
		tp.nodes = append(tp.nodes, func() { backward(out) })
		tp.outs = append(tp.outs, out)
	}
	return out
}

// GradOf returns v's gradient buffer, allocating a zeroed one on first use, or nil when v
// takes no gradient.
func (tp *Tape) GradOf(v *Var) *tensor.Tensor {
	if v == nil || !v.requiresGrad {
		return nil
	}
	if v.Grad == nil {
		if v.param {
			v.Grad = tensor.New(v.Value.Shape()...)
		} else {
			v.Grad = tp.Alloc(v.Value.Shape()...)
		}
	}
	return v.Grad
}

// gradData returns v's gradient buffer (see GradOf) as a slice, or nil when v takes none.
func gradData(tp *Tape, v *Var) []float32 {
	if g := tp.GradOf(v); g != nil {
		return g.Data()
	}
	return nil
}

// Backward computes the gradient of the scalar loss with respect to every Var that requires
// one, accumulating into their Grad. The tape is replayed in reverse creation order, which is a
// topological order of the graph.
func (tp *Tape) Backward(loss *Var) {
	if loss.Value.Len() != 1 {
		panic(fmt.Sprintf("autograd: Backward of a non-scalar of shape %v", loss.Shape()))
	}
	if !loss.requiresGrad {
		panic("autograd: Backward of a value that does not require grad (NoGrad tape, or no parameter reached it)")
	}
	tp.GradOf(loss).Fill(1)
	tp.BackwardFrom()
}

// BackwardFrom replays the tape given gradients already placed in outputs' Grad (for a
// vector-Jacobian product with an arbitrary seed).
func (tp *Tape) BackwardFrom() {
	for i := len(tp.nodes) - 1; i >= 0; i-- {
		out := tp.outs[i]
		if out.Grad == nil {
			continue
		}
		tp.nodes[i]()
		// Every consumer of out was recorded after it and has already run, so nothing adds to
		// out.Grad any more: give the buffer back for the rest of the pass.
		if !tp.KeepGrads && !out.param {
			tp.pool.Put(out.Grad)
			out.Grad = nil
		}
	}
}

// Reset forgets the recorded operations and returns every intermediate buffer to the pool.
// Parameter gradients are kept.
func (tp *Tape) Reset() {
	for i := range tp.outs {
		tp.outs[i].Grad = nil
		tp.outs[i] = nil
		tp.nodes[i] = nil
	}
	tp.outs, tp.nodes = tp.outs[:0], tp.nodes[:0]
	for i, t := range tp.temps {
		tp.pool.Put(t)
		tp.temps[i] = nil
	}
	tp.temps = tp.temps[:0]
}
