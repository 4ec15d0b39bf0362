package autograd

import (
	"fmt"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// LayerNorm normalises the last dimension of x (..., C) and applies gamma and beta (C):
// y = (x − mean)/√(var + eps)·gamma + beta, with the biased variance as PyTorch uses.
func (tp *Tape) LayerNorm(x, gamma, beta *Var, eps float32) *Var {
	xs := x.Shape()
	c := xs[len(xs)-1]
	if gamma.Value.Len() != c || beta.Value.Len() != c {
		panic(fmt.Sprintf("autograd: LayerNorm: x %v with gamma %v and beta %v", xs, gamma.Shape(), beta.Shape()))
	}
	n := x.Value.Len() / c
	xv := x.Value.Contiguous()
	gv := gamma.Value.Contiguous()
	out := tp.Alloc(xs...)
	mean, rstd := tp.Alloc(n), tp.Alloc(n)
	kernels.LayerNormForward(out.Data(), mean.Data(), rstd.Data(), xv.Data(), gv.Data(), beta.Value.Contiguous().Data(), n, c, eps)
	return tp.Op(out, func(o *Var) {
		dx, dg, db := tp.GradOf(x), tp.GradOf(gamma), tp.GradOf(beta)
		var dxd, dgd, dbd []float32
		if dx != nil {
			dxd = dx.Data()
		} else {
			dxd = tp.Alloc(xs...).Data()
		}
		if dg != nil {
			dgd = dg.Data()
		} else {
			dgd = tp.Alloc(c).Data()
		}
		if db != nil {
			dbd = db.Data()
		} else {
			dbd = tp.Alloc(c).Data()
		}
		kernels.LayerNormBackward(dxd, dgd, dbd, o.Grad.Data(), xv.Data(), mean.Data(), rstd.Data(), gv.Data(), n, c)
	}, x, gamma, beta)
}

// unary runs an elementwise forward f(y, x) and a backward that accumulates from (dx, dy, x, y).
func (tp *Tape) unary(x *Var, f func(y, x []float32), b func(dx, dy, x, y []float32)) *Var {
	xv := x.Value.Contiguous()
	out := tp.Alloc(x.Shape()...)
	f(out.Data(), xv.Data())
	return tp.Op(out, func(o *Var) {
		if dx := tp.GradOf(x); dx != nil {
			b(dx.Data(), o.Grad.Data(), xv.Data(), out.Data())
		}
	}, x)
}

// GELU returns the exact GELU 0.5·x·(1 + erf(x/√2)).
func (tp *Tape) GELU(x *Var) *Var {
	return tp.unary(x, kernels.GeluForward, func(dx, dy, x, _ []float32) { kernels.GeluBackward(dx, dy, x) })
}

// GELUTanh returns the tanh approximation of GELU (Hugging Face gelu_new).
func (tp *Tape) GELUTanh(x *Var) *Var {
	return tp.unary(x, kernels.GeluTanhForward, func(dx, dy, x, _ []float32) { kernels.GeluTanhBackward(dx, dy, x) })
}

// Tanh returns tanh(x).
func (tp *Tape) Tanh(x *Var) *Var {
	return tp.unary(x, kernels.TanhForward, func(dx, dy, _, y []float32) { kernels.TanhBackward(dx, dy, y) })
}

// Softmax returns the softmax over the last dimension of x.
func (tp *Tape) Softmax(x *Var) *Var {
	xs := x.Shape()
	c := xs[len(xs)-1]
	n := x.Value.Len() / max(c, 1)
	return tp.unary(x, func(y, x []float32) { kernels.SoftmaxForward(y, x, n, c) },
		func(dx, dy, _, y []float32) { kernels.SoftmaxBackward(dx, dy, y, n, c) })
}

// Dropout zeroes each element of x with probability p and scales the others by 1/(1−p)
// (inverted dropout). The mask is a pure function of (seed, element index), so the same seed
// reproduces it. With train false or p == 0 it returns x itself.
func (tp *Tape) Dropout(x *Var, p float32, seed uint64, train bool) *Var {
	return tp.DropoutAt(x, p, seed, 0, train)
}

// DropoutAt is Dropout drawing the mask of element i at position offset+i of the generator:
// a tensor that is a slice of a larger one, from flat index offset on, gets that tensor's
// mask.
func (tp *Tape) DropoutAt(x *Var, p float32, seed, offset uint64, train bool) *Var {
	if !train || p == 0 {
		return x
	}
	mask := tp.Alloc(x.Shape()...)
	kernels.DropoutMask(mask.Data(), p, seed, offset)
	return tp.applyMask(x, mask)
}

// DropoutRows is DropoutAt for rows gathered from a larger tensor: x is (M, C), and its row r
// is row rows[r] of an (N, C) tensor whose element i would draw its mask at position offset+i.
// Element (r, j) draws at offset + rows[r]·C + j, so dropping out the gathered rows gives
// exactly the values of gathering the rows of the dropped-out (N, C) tensor.
func (tp *Tape) DropoutRows(x *Var, p float32, seed, offset uint64, rows []int32, train bool) *Var {
	if !train || p == 0 {
		return x
	}
	xs := x.Shape()
	if len(xs) != 2 || xs[0] != len(rows) {
		panic(fmt.Sprintf("autograd: DropoutRows: x %v for %d rows", xs, len(rows)))
	}
	c := xs[1]
	for i, r := range rows {
		if r < 0 {
			panic(fmt.Sprintf("autograd: DropoutRows: row %d (entry %d) is negative", r, i))
		}
	}
	mask := tp.Alloc(xs...)
	md := mask.Data()
	kernels.ParallelFor(len(rows), max(1, 16384/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			kernels.DropoutMask(md[r*c:(r+1)*c], p, seed, offset+uint64(rows[r])*uint64(c))
		}
	})
	return tp.applyMask(x, mask)
}

// applyMask returns x ⊙ mask, mask a constant of x's shape (dropout's scaled keep mask).
func (tp *Tape) applyMask(x *Var, mask *tensor.Tensor) *Var {
	xv := x.Value.Contiguous()
	out := tp.Alloc(x.Shape()...)
	kernels.Mul(out.Data(), xv.Data(), mask.Data())
	return tp.Op(out, func(o *Var) {
		if dx := tp.GradOf(x); dx != nil {
			dd, md := dx.Data(), mask.Data()
			for i, g := range o.Grad.Data() {
				dd[i] += g * md[i]
			}
		}
	}, x)
}

// Attention is fused scaled-dot-product attention. q, k and v are (B, T, H·D), the layout the
// projections produce; they are read as (B, H, T, D) views without a transpose. mask is (B, T)
// with 1 for real tokens and 0 for padding, or nil. The result is softmax(q·kᵀ/√D + maskbias)·v
// in the same (B, T, H·D) layout. The op keeps only the (B, H, T, T) probabilities for
// backward. dropP is the dropout on the probabilities (0 for none), drawn from seed.
func (tp *Tape) Attention(q, k, v *Var, heads int, mask []float32, dropP float32, seed uint64) *Var {
	return tp.AttentionAt(q, k, v, heads, mask, dropP, seed, 0)
}

// AttentionAt is Attention whose dropout masks are those of sequences row0.. of a larger
// batch (kernels.Attention.Row0): a data-parallel rank's slice draws the full batch's masks.
func (tp *Tape) AttentionAt(q, k, v *Var, heads int, mask []float32, dropP float32, seed uint64, row0 int) *Var {
	qs := q.Shape()
	if len(qs) != 3 || !tensor.SameShape(qs, k.Shape()) || !tensor.SameShape(qs, v.Shape()) || heads <= 0 || qs[2]%heads != 0 {
		panic(fmt.Sprintf("autograd: Attention: q %v, k %v, v %v with %d heads", qs, k.Shape(), v.Shape(), heads))
	}
	B, T, C := qs[0], qs[1], qs[2]
	D := C / heads
	a := &kernels.Attention{B: B, H: heads, T: T, D: D, Scale: 1 / sqrtf(float32(D)), Mask: mask, DropP: dropP, Seed: seed, Row0: row0}
	view := func(d []float32) kernels.HeadView { return kernels.HeadView{Data: d, SB: T * C, SH: D, ST: C} }
	qv, kv, vv := q.Value.Contiguous(), k.Value.Contiguous(), v.Value.Contiguous()
	// Forward overwrites every element of both (products with beta 0): no zero-fill.
	out := tp.AllocUninit(B, T, C)
	if !tp.Recording() {
		// No Backward: the probabilities stay in per-head scratch, no (B, H, T, T) buffer.
		a.Forward(view(out.Data()), view(qv.Data()), view(kv.Data()), view(vv.Data()), nil)
		return &Var{Value: out}
	}
	p := tp.AllocUninit(B, heads, T, T)
	a.Forward(view(out.Data()), view(qv.Data()), view(kv.Data()), view(vv.Data()), p.Data())
	return tp.Op(out, func(o *Var) {
		grad := func(x *Var) kernels.HeadView {
			if g := tp.GradOf(x); g != nil {
				return view(g.Data())
			}
			return view(tp.Alloc(B, T, C).Data())
		}
		a.Backward(grad(q), grad(k), grad(v), view(o.Grad.Data()), view(qv.Data()), view(kv.Data()), view(vv.Data()), p.Data())
	}, q, k, v)
}
