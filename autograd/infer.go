package autograd

import (
	"fmt"

	"github.com/mtbert/mtbert/kernels"
)

// The inference-only ops: they run on a tape that does not record (NoGrad), reuse buffers in
// place where the value they replace has no other reader, and panic on a recording tape, which
// needs the differentiable ops instead.

func (tp *Tape) mustNotRecord(op string) {
	if tp.record {
		panic(fmt.Sprintf("autograd: %s is inference-only: the tape records gradients", op))
	}
}

// LinearPacked returns x·wᵀ + bias like Linear, for x (..., in) and w packed in advance
// (kernels.PackB(true, in, out, w, in)); bias (out) or nil. It runs the arithmetic of Linear in
// the same order (bias copied in, then the product added onto it), so the result is
// bit-identical. Inference only.
func (tp *Tape) LinearPacked(x *Var, w *kernels.PackedB, bias *Var) *Var {
	return tp.linearPacked("LinearPacked", x, w, bias, false)
}

// LinearPackedGELU returns GELU(x·wᵀ + bias) (the exact erf form) in one product: the bias
// is written into each block of the output and the activation applied to it while it is in
// cache (kernels.SgemmPackedBias). Bit-identical to GELUInPlace(LinearPacked(x, w, bias))
// where out is a multiple of 8. Inference only.
func (tp *Tape) LinearPackedGELU(x *Var, w *kernels.PackedB, bias *Var) *Var {
	if bias == nil {
		return tp.GELUInPlace(tp.LinearPacked(x, w, nil), true)
	}
	return tp.linearPacked("LinearPackedGELU", x, w, bias, true)
}

func (tp *Tape) linearPacked(op string, x *Var, w *kernels.PackedB, bias *Var, gelu bool) *Var {
	tp.mustNotRecord(op)
	in, outDim := w.Dims()
	xs := x.Shape()
	if len(xs) < 1 || xs[len(xs)-1] != in || (bias != nil && bias.Value.Len() != outDim) {
		panic(fmt.Sprintf("autograd: %s: x %v with a packed (%d, %d) weight", op, xs, outDim, in))
	}
	rows := x.Value.Len() / max(in, 1)
	// Overwritten whole: by the bias and the product, or by the product (beta 0).
	out := tp.AllocUninit(append(append([]int(nil), xs[:len(xs)-1]...), outDim)...)
	od := out.Data()
	xd := x.Value.Contiguous().Data()
	if bias == nil {
		kernels.SgemmPacked(rows, outDim, in, 1, xd, in, w, 0, od, outDim)
	} else {
		kernels.SgemmPackedBias(rows, outDim, in, xd, in, w, bias.Value.Contiguous().Data(), gelu, od, outDim)
	}
	return &Var{Value: out}
}

// AttentionQKV is AttentionAt without dropout on the side-by-side projections qkv (B, T, 3C)
// of a fused Q, K, V product (nn.Fused): Q is columns [0, C), K [C, 2C), V [2C, 3C), read in
// place through strided views, no copy. Bit-identical to AttentionAt on the three separate
// (B, T, C) tensors. Inference only.
func (tp *Tape) AttentionQKV(qkv *Var, heads int, mask []float32) *Var {
	tp.mustNotRecord("AttentionQKV")
	s := qkv.Shape()
	if len(s) != 3 || heads <= 0 || s[2]%(3*heads) != 0 {
		panic(fmt.Sprintf("autograd: AttentionQKV: qkv %v with %d heads", s, heads))
	}
	B, T, C := s[0], s[1], s[2]/3
	D := C / heads
	a := &kernels.Attention{B: B, H: heads, T: T, D: D, Scale: 1 / sqrtf(float32(D)), Mask: mask}
	out := tp.AllocUninit(B, T, C)
	if B*T == 0 {
		return &Var{Value: out}
	}
	d := qkv.Value.Contiguous().Data()
	in := func(off int) kernels.HeadView {
		return kernels.HeadView{Data: d[off:], SB: T * 3 * C, SH: D, ST: 3 * C}
	}
	// No Backward: the probabilities stay in per-head scratch (p nil), never a (B, H, T, T) buffer.
	a.Forward(kernels.HeadView{Data: out.Data(), SB: T * C, SH: D, ST: C}, in(0), in(C), in(2*C), nil)
	return &Var{Value: out}
}

// GELUInPlace overwrites x with GELU(x) (exact erf form, or the tanh form when exact is false)
// and returns it: x must be a value nothing else reads afterwards, such as a Linear's fresh
// output. Values are those of GELU and GELUTanh. Inference only.
func (tp *Tape) GELUInPlace(x *Var, exact bool) *Var {
	tp.mustNotRecord("GELUInPlace")
	if !x.Value.IsContiguous() {
		panic("autograd: GELUInPlace: x is not contiguous")
	}
	d := x.Value.Data()
	if exact {
		kernels.GeluForward(d, d)
	} else {
		kernels.GeluTanhForward(d, d)
	}
	return x
}

// AddLayerNormInPlace returns LayerNorm(x + res) over the last dimension in one pass
// (kernels.AddLayerNormForward), overwriting x with x + res: x must be a value nothing else
// reads afterwards. Bit-identical to LayerNorm(Add(x, res)). Inference only.
func (tp *Tape) AddLayerNormInPlace(x, res, gamma, beta *Var, eps float32) *Var {
	tp.mustNotRecord("AddLayerNormInPlace")
	xs := x.Shape()
	c := xs[len(xs)-1]
	if res.Value.Len() != x.Value.Len() || gamma.Value.Len() != c || beta.Value.Len() != c {
		panic(fmt.Sprintf("autograd: AddLayerNormInPlace: x %v, res %v, gamma %v, beta %v", xs, res.Shape(), gamma.Shape(), beta.Shape()))
	}
	n := x.Value.Len() / max(c, 1)
	out := tp.Alloc(xs...)
	kernels.AddLayerNormForward(out.Data(), x.Value.Contiguous().Data(), res.Value.Contiguous().Data(),
		gamma.Value.Contiguous().Data(), beta.Value.Contiguous().Data(), nil, nil, n, c, eps)
	return &Var{Value: out}
}

// LinearInt8 returns x·wᵀ + bias for x (..., in) with w quantised to int8 per output channel
// and x quantised per row on the fly (kernels.QLinearForward): int32 accumulation, dequantised
// with the bias in the GEMM's epilogue. bias (out) or nil. Inference only.
func (tp *Tape) LinearInt8(x *Var, w *kernels.QuantizedB, bias *Var) *Var {
	tp.mustNotRecord("LinearInt8")
	xs := x.Shape()
	if len(xs) < 1 || xs[len(xs)-1] != w.K || (bias != nil && bias.Value.Len() != w.N) {
		panic(fmt.Sprintf("autograd: LinearInt8: x %v with a quantised (%d, %d) weight", xs, w.N, w.K))
	}
	rows := x.Value.Len() / max(w.K, 1)
	out := tp.AllocUninit(append(append([]int(nil), xs[:len(xs)-1]...), w.N)...) // every element written
	var bd []float32
	if bias != nil {
		bd = bias.Value.Contiguous().Data()
	}
	kernels.QLinearForward(out.Data(), x.Value.Contiguous().Data(), w, bd, rows)
	return &Var{Value: out}
}
