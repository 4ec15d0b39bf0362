package autograd

import (
	"fmt"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// MatMul returns op(a)·op(b) over the last two dimensions, where op transposes when the flag
// is set. a is (..., m, k) ((..., k, m) with transA) and b is (..., k, n) ((..., n, k) with
// transB) with equal leading dimensions, or b is 2-D and shared by every matrix of a.
func (tp *Tape) MatMul(a, b *Var, transA, transB bool) *Var {
	as, bs := a.Shape(), b.Shape()
	if len(as) < 2 || len(bs) < 2 {
		panic(fmt.Sprintf("autograd: MatMul: operands need rank >= 2, have %v and %v", as, bs))
	}
	m, k := as[len(as)-2], as[len(as)-1]
	if transA {
		m, k = k, m
	}
	kb, n := bs[len(bs)-2], bs[len(bs)-1]
	if transB {
		kb, n = n, kb
	}
	lead := as[:len(as)-2]
	batch := tensor.Numel(lead)
	shared := len(bs) == 2 && len(as) > 2
	if k != kb || (!shared && !tensor.SameShape(lead, bs[:len(bs)-2])) || (shared && transA) {
		panic(fmt.Sprintf("autograd: MatMul: shapes %v (transA=%v) and %v (transB=%v) do not match", as, transA, bs, transB))
	}
	av, bv := a.Value.Contiguous(), b.Value.Contiguous()
	outShape := append(append([]int(nil), lead...), m, n)
	out := tp.Alloc(outShape...)
	lda, ldb := k, n
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	if shared {
		// (batch·m, k) · op(b): one GEMM.
		kernels.Sgemm(false, transB, batch*m, n, k, 1, av.Data(), k, bv.Data(), ldb, 0, out.Data(), n)
	} else {
		kernels.SgemmStrided(transA, transB, m, n, k, 1, av.Data(), lda, m*k, bv.Data(), ldb, k*n, 0, out.Data(), n, m*n, batch)
	}
	return tp.Op(out, func(o *Var) {
		dc := o.Grad.Data()
		if da := tp.GradOf(a); da != nil {
			if shared {
				kernels.Sgemm(false, !transB, batch*m, k, n, 1, dc, n, bv.Data(), ldb, 1, da.Data(), k)
			} else if !transA {
				kernels.SgemmStrided(false, !transB, m, k, n, 1, dc, n, m*n, bv.Data(), ldb, k*n, 1, da.Data(), k, m*k, batch)
			} else {
				kernels.SgemmStrided(transB, true, k, m, n, 1, bv.Data(), ldb, k*n, dc, n, m*n, 1, da.Data(), m, m*k, batch)
			}
		}
		if db := tp.GradOf(b); db != nil {
			switch {
			case shared && !transB:
				kernels.Sgemm(true, false, k, n, batch*m, 1, av.Data(), k, dc, n, 1, db.Data(), n)
			case shared:
				kernels.Sgemm(true, false, n, k, batch*m, 1, dc, n, av.Data(), k, 1, db.Data(), k)
			case !transB:
				kernels.SgemmStrided(!transA, false, k, n, m, 1, av.Data(), lda, m*k, dc, n, m*n, 1, db.Data(), n, k*n, batch)
			default:
				kernels.SgemmStrided(true, transA, n, k, m, 1, dc, n, m*n, av.Data(), lda, m*k, 1, db.Data(), k, k*n, batch)
			}
		}
	}, a, b)
}

// Linear returns x·wᵀ + bias for x (..., in), w (out, in) as PyTorch stores it, and bias
// (out) or nil.
func (tp *Tape) Linear(x, w, bias *Var) *Var {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) < 1 || len(ws) != 2 || xs[len(xs)-1] != ws[1] || (bias != nil && (bias.Value.Rank() != 1 || bias.Shape()[0] != ws[0])) {
		bsh := []int(nil)
		if bias != nil {
			bsh = bias.Shape()
		}
		panic(fmt.Sprintf("autograd: Linear: x %v, weight %v, bias %v do not match", xs, ws, bsh))
	}
	in, outDim := ws[1], ws[0]
	rows := x.Value.Len() / in
	xv, wv := x.Value.Contiguous(), w.Value.Contiguous()
	outShape := append(append([]int(nil), xs[:len(xs)-1]...), outDim)
	out := tp.Alloc(outShape...)
	var bd []float32
	if bias != nil {
		bd = bias.Value.Contiguous().Data()
	}
	kernels.LinearForward(out.Data(), xv.Data(), wv.Data(), bd, rows, in, outDim)
	return tp.Op(out, func(o *Var) {
		kernels.LinearBackward(gradData(tp, x), gradData(tp, w), gradData(tp, bias), o.Grad.Data(), xv.Data(), wv.Data(), rows, in, outDim)
	}, x, w, bias)
}
