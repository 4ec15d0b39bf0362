package nn

import (
	"sync/atomic"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// Fused is several Linear layers over the same input run as one product at inference: their
// weights stacked ((Σ out, in)) and packed once, their biases written into the product's
// blocks, so that the input is packed once and the threads split one wide product instead of
// several narrow ones (BERT's Q, K and V projections: one 768 → 2304 product instead of three
// 768 → 768). The output is (..., Σ out): layer i's columns follow layer i−1's.
//
// Only the packed copy is kept, not the stacked float weights: the layers' own W stay the
// source. Forward returns nil, and the caller runs the layers one by one, when the tape records,
// when any W or B has changed since Pack (its Version), when the layers have no float weights (an
// int8 model) or when the GEMM micro-kernel has changed since (kernels.SetGemmPath).
type Fused struct {
	Layers []*Linear

	packed atomic.Pointer[fusedPack]
}

type fusedPack struct {
	w        *kernels.PackedB
	bias     *autograd.Var // the biases side by side, or nil
	versions []uint64      // of each layer's W, then of each B
}

// versions returns the versions of the layers' weights, then of their biases.
func (f *Fused) versions() []uint64 {
	v := make([]uint64, 0, 2*len(f.Layers))
	for _, l := range f.Layers {
		v = append(v, l.W.Version())
	}
	for _, l := range f.Layers {
		if l.B != nil {
			v = append(v, l.B.Version())
		}
	}
	return v
}

// NewFused groups layers with the same input size (they keep their own parameters).
func NewFused(layers ...*Linear) *Fused { return &Fused{Layers: layers} }

// Pack stacks and packs the layers' weights for Forward. It does nothing when they cannot be
// fused (different input sizes, a missing bias among biases, or no float weights).
func (f *Fused) Pack() {
	f.packed.Store(nil)
	if len(f.Layers) == 0 {
		return
	}
	in := f.Layers[0].W.Shape()[1]
	out := 0
	withBias := f.Layers[0].B != nil
	for _, l := range f.Layers {
		s := l.W.Shape()
		if s[1] != in || s[0] == 0 || (l.B != nil) != withBias {
			return
		}
		out += s[0]
	}
	stacked := make([]float32, 0, out*in)
	var bias []float32
	for _, l := range f.Layers {
		stacked = append(stacked, l.W.Value.Contiguous().Data()...)
		if withBias {
			bias = append(bias, l.B.Value.Contiguous().Data()...)
		}
	}
	w := kernels.PackB(true, in, out, stacked, in)
	w.DropSource()
	p := &fusedPack{w: w, versions: f.versions()}
	if withBias {
		p.bias = &autograd.Var{Value: tensor.FromSlice(bias, out)}
	}
	f.packed.Store(p)
}

// DropFloat lets go of the layers' float weights once the stacked copy is valid (Packed), for
// layers that will only run inference on the CPU, as Linear.DropFloat does for one layer: each
// W becomes (0, in) and the stacked packed copy is the only one left. It does nothing when the
// stacked copy is missing or stale.
func (f *Fused) DropFloat() {
	if !f.Packed() {
		return
	}
	for _, l := range f.Layers {
		l.W.Value = tensor.New(0, l.W.Shape()[1])
	}
}

// Unpack drops the packed stacked weights: Forward then returns nil.
func (f *Fused) Unpack() { f.packed.Store(nil) }

// Packed reports whether Forward would run the fused product on a tape that does not record.
func (f *Fused) Packed() bool {
	p := f.packed.Load()
	if p == nil || !p.w.Current() {
		return false
	}
	// The versions of the weights, then of the biases, as versions() lists them; compared in
	// place, since this runs on every inference pass.
	i := 0
	for _, l := range f.Layers {
		if l.W.Version() != p.versions[i] {
			return false
		}
		i++
	}
	for _, l := range f.Layers {
		if l.B != nil {
			if i >= len(p.versions) || l.B.Version() != p.versions[i] {
				return false
			}
			i++
		}
	}
	return i == len(p.versions)
}

// PackedBytes returns the memory the packed stacked weights hold (0 without them).
func (f *Fused) PackedBytes() int {
	if p := f.packed.Load(); p != nil {
		return p.w.Bytes()
	}
	return 0
}

// Forward returns the layers' outputs side by side, (..., Σ out), from one product, or nil
// when the fused copy cannot be used (see Fused): bit-identical to the layers' own packed
// inference outputs column by column.
func (f *Fused) Forward(tp *autograd.Tape, x *autograd.Var) *autograd.Var {
	if tp.Recording() || !f.Packed() {
		return nil
	}
	p := f.packed.Load()
	return tp.LinearPacked(x, p.w, p.bias)
}
