package autograd

import (
	"fmt"

	"github.com/mtbert/mtbert/kernels"

	"github.com/mtbert/mtbert/tensor"
)

// broadcastShape returns the NumPy broadcast of shapes a and b.
func broadcastShape(op string, a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			panic(fmt.Sprintf("autograd: %s: shapes %v and %v do not broadcast", op, a, b))
		}
	}
	return out
}

// expandStrides returns the contiguous strides of shape in as seen from the broadcast shape
// out: 0 on dimensions that in repeats.
func expandStrides(in, out []int) []int {
	st := make([]int, len(out))
	acc := 1
	for i := len(out) - 1; i >= 0; i-- {
		j := len(in) - len(out) + i
		if j < 0 || in[j] == 1 {
			st[i] = 0
		} else {
			st[i] = acc
		}
		if j >= 0 {
			acc *= in[j]
		}
	}
	return st
}

// walk calls fn(i, ia, ib) for each flat index i of shape with the matching offsets under the
// strides sa and sb.
func walk(shape, sa, sb []int, fn func(i, ia, ib int)) {
	n := tensor.Numel(shape)
	if n == 0 {
		return
	}
	r := len(shape)
	if r == 0 {
		fn(0, 0, 0)
		return
	}
	idx := make([]int, r)
	ia, ib := 0, 0
	for i := 0; i < n; i++ {
		fn(i, ia, ib)
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			ia += sa[d]
			ib += sb[d]
			if idx[d] < shape[d] {
				break
			}
			ia -= idx[d] * sa[d]
			ib -= idx[d] * sb[d]
			idx[d] = 0
		}
	}
}

// binary applies f elementwise under broadcasting; suffix holds when b's shape is a's trailing
// shape (the bias case), which runs as a plain row loop.
func binary(op string, av, bv *tensor.Tensor, out *tensor.Tensor, f func(x, y float32) float32) (sa, sb []int) {
	shape := out.Shape()
	ad, bd, od := av.Data(), bv.Data(), out.Data()
	if len(ad) == len(od) && len(bd) == len(od) {
		for i := range od {
			od[i] = f(ad[i], bd[i])
		}
		return nil, nil
	}
	if len(ad) == len(od) && len(bd) > 0 && len(od)%len(bd) == 0 && isSuffix(bv.Shape(), shape) {
		c := len(bd)
		for r := 0; r < len(od)/c; r++ {
			row, orow := ad[r*c:(r+1)*c], od[r*c:(r+1)*c]
			for j, y := range bd {
				orow[j] = f(row[j], y)
			}
		}
		return nil, nil
	}
	sa, sb = expandStrides(av.Shape(), shape), expandStrides(bv.Shape(), shape)
	walk(shape, sa, sb, func(i, ia, ib int) { od[i] = f(ad[ia], bd[ib]) })
	return sa, sb
}

func isSuffix(s, of []int) bool {
	for len(s) > 0 && s[0] == 1 && len(s) > 1 {
		s = s[1:]
	}
	if len(s) > len(of) {
		return false
	}
	return tensor.SameShape(s, of[len(of)-len(s):])
}

// reduceInto accumulates g (broadcast shape) into dst (shape in) by summing over the
// dimensions that in repeats.
func reduceInto(dst []float32, in []int, g []float32, shape []int, scale func(i int) float32) {
	if len(dst) == len(g) {
		for i := range g {
			dst[i] += g[i] * scale(i)
		}
		return
	}
	st := expandStrides(in, shape)
	walk(shape, st, st, func(i, ia, _ int) { dst[ia] += g[i] * scale(i) })
}

// Add returns a + b with NumPy broadcasting.
func (tp *Tape) Add(a, b *Var) *Var {
	if tensor.SameShape(a.Shape(), b.Shape()) {
		return tp.addSame(a, b)
	}
	shape := broadcastShape("Add", a.Shape(), b.Shape())
	av, bv := a.Value.Contiguous(), b.Value.Contiguous()
	out := tp.Alloc(shape...)
	binary("Add", av, bv, out, func(x, y float32) float32 { return x + y })
	one := func(int) float32 { return 1 }
	return tp.Op(out, func(o *Var) {
		g := o.Grad.Data()
		if da := tp.GradOf(a); da != nil {
			reduceInto(da.Data(), a.Shape(), g, shape, one)
		}
		if db := tp.GradOf(b); db != nil {
			reduceInto(db.Data(), b.Shape(), g, shape, one)
		}
	}, a, b)
}

// Mul returns a ⊙ b with NumPy broadcasting.
func (tp *Tape) Mul(a, b *Var) *Var {
	shape := broadcastShape("Mul", a.Shape(), b.Shape())
	av, bv := a.Value.Contiguous(), b.Value.Contiguous()
	out := tp.Alloc(shape...)
	binary("Mul", av, bv, out, func(x, y float32) float32 { return x * y })
	return tp.Op(out, func(o *Var) {
		g := o.Grad.Data()
		sa, sb := expandStrides(a.Shape(), shape), expandStrides(b.Shape(), shape)
		ad, bd := av.Data(), bv.Data()
		if da := tp.GradOf(a); da != nil {
			dd := da.Data()
			walk(shape, sa, sb, func(i, ia, ib int) { dd[ia] += g[i] * bd[ib] })
		}
		if db := tp.GradOf(b); db != nil {
			dd := db.Data()
			walk(shape, sa, sb, func(i, ia, ib int) { dd[ib] += g[i] * ad[ia] })
		}
	}, a, b)
}

// Scale returns s·a.
func (tp *Tape) Scale(a *Var, s float32) *Var {
	av := a.Value.Contiguous()
	out := tp.Alloc(a.Shape()...)
	kernels.Scale(out.Data(), s, av.Data())
	return tp.Op(out, func(o *Var) {
		if da := tp.GradOf(a); da != nil {
			kernels.Axpy(s, o.Grad.Data(), da.Data())
		}
	}, a)
}

// Sum returns the sum of all elements of a as a scalar, accumulated in float64.
func (tp *Tape) Sum(a *Var) *Var { return tp.sumScaled(a, 1) }

// Mean returns the mean of all elements of a as a scalar.
func (tp *Tape) Mean(a *Var) *Var {
	n := a.Value.Len()
	if n == 0 {
		panic(fmt.Sprintf("autograd: Mean of empty shape %v", a.Shape()))
	}
	return tp.sumScaled(a, 1/float64(n))
}

func (tp *Tape) sumScaled(a *Var, s float64) *Var {
	var acc float64
	for _, v := range a.Value.Contiguous().Data() {
		acc += float64(v)
	}
	out := tp.Alloc()
	out.Data()[0] = float32(acc * s)
	return tp.Op(out, func(o *Var) {
		if da := tp.GradOf(a); da != nil {
			g := o.Grad.Data()[0] * float32(s)
			dd := da.Data()
			for i := range dd {
				dd[i] += g
			}
		}
	}, a)
}

// addSame is Add for equal shapes (residual connections): plain loops, no index walk.
func (tp *Tape) addSame(a, b *Var) *Var {
	ad, bd := a.Value.Contiguous().Data(), b.Value.Contiguous().Data()
	out := tp.Alloc(a.Shape()...)
	od := out.Data()
	for i := range od {
		od[i] = ad[i] + bd[i]
	}
	return tp.Op(out, func(o *Var) {
		g := o.Grad.Data()
		for _, in := range [2]*Var{a, b} {
			if d := tp.GradOf(in); d != nil {
				kernels.Axpy(1, g, d.Data())
			}
		}
	}, a, b)
}
