package autograd

import (
	"fmt"
	"slices"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// Reshape returns a with a new shape holding the same elements (one dimension may be -1).
func (tp *Tape) Reshape(a *Var, shape ...int) *Var {
	out := a.Value.Reshape(shape...)
	return tp.Op(out, func(o *Var) {
		if da := tp.GradOf(a); da != nil {
			o.Grad.AddInto(da.Data())
		}
	}, a)
}

// Transpose returns a with dimensions d0 and d1 swapped, as a contiguous copy.
func (tp *Tape) Transpose(a *Var, d0, d1 int) *Var {
	t := a.Value.Transpose(d0, d1)
	out := tp.Alloc(t.Shape()...)
	out.CopyFrom(t)
	return tp.Op(out, func(o *Var) {
		if da := tp.GradOf(a); da != nil {
			o.Grad.Transpose(d0, d1).AddInto(da.Data())
		}
	}, a)
}

// Narrow returns length elements of dimension dim of a starting at start, as a copy.
func (tp *Tape) Narrow(a *Var, dim, start, length int) *Var {
	t := a.Value.Narrow(dim, start, length)
	out := tp.Alloc(t.Shape()...)
	out.CopyFrom(t)
	return tp.Op(out, func(o *Var) {
		if da := tp.GradOf(a); da != nil {
			da.Narrow(dim, start, length).AddFrom(o.Grad.Data())
		}
	}, a)
}

// Select returns index i of dimension dim of a with that dimension removed, as a copy; for
// hidden states (B, T, H), Select(h, 1, 0) is the [CLS] vector of every sequence.
func (tp *Tape) Select(a *Var, dim, i int) *Var {
	t := a.Value.Select(dim, i)
	out := tp.Alloc(t.Shape()...)
	out.CopyFrom(t)
	return tp.Op(out, func(o *Var) {
		if da := tp.GradOf(a); da != nil {
			da.Select(dim, i).AddFrom(o.Grad.Data())
		}
	}, a)
}

// Concat joins vars along dimension dim; every other dimension must agree.
func (tp *Tape) Concat(dim int, vars ...*Var) *Var {
	if len(vars) == 0 {
		panic("autograd: Concat of nothing")
	}
	first := vars[0].Shape()
	if dim < 0 {
		dim += len(first)
	}
	if dim < 0 || dim >= len(first) {
		panic(fmt.Sprintf("autograd: Concat: dim %d for shape %v", dim, first))
	}
	shape := slices.Clone(first)
	shape[dim] = 0
	for _, v := range vars {
		s := v.Shape()
		ok := len(s) == len(first)
		for d := range s {
			if ok && d != dim && s[d] != first[d] {
				ok = false
			}
		}
		if !ok {
			panic(fmt.Sprintf("autograd: Concat along %d: shape %v does not match %v", dim, s, first))
		}
		shape[dim] += s[dim]
	}
	out := tp.Alloc(shape...)
	offs := make([]int, len(vars))
	off := 0
	for i, v := range vars {
		offs[i] = off
		n := v.Shape()[dim]
		out.Narrow(dim, off, n).CopyFrom(v.Value)
		off += n
	}
	return tp.Op(out, func(o *Var) {
		for i, v := range vars {
			if dv := tp.GradOf(v); dv != nil {
				o.Grad.Narrow(dim, offs[i], v.Shape()[dim]).AddInto(dv.Data())
			}
		}
	}, vars...)
}

// Embedding gathers rows of weight (V, H) at ids, giving shape (len(ids), H) reshaped to
// shape followed by H. The backward pass scatter-adds into the rows of weight's gradient.
func (tp *Tape) Embedding(weight *Var, ids []int32, shape ...int) *Var {
	ws := weight.Shape()
	if len(ws) != 2 {
		panic(fmt.Sprintf("autograd: Embedding: weight must be (V, H), have %v", ws))
	}
	if tensor.Numel(shape) != len(ids) {
		panic(fmt.Sprintf("autograd: Embedding: %d ids for shape %v", len(ids), shape))
	}
	v, h := ws[0], ws[1]
	wd := weight.Value.Contiguous().Data()
	out := tp.Alloc(append(slices.Clone(shape), h)...)
	od := out.Data()
	for i, id := range ids {
		if id < 0 || int(id) >= v {
			panic(fmt.Sprintf("autograd: Embedding: id %d at position %d outside vocabulary of %d", id, i, v))
		}
		copy(od[i*h:(i+1)*h], wd[int(id)*h:(int(id)+1)*h])
	}
	return tp.Op(out, func(o *Var) {
		if dw := tp.GradOf(weight); dw != nil {
			g, dd := o.Grad.Data(), dw.Data()
			for i, id := range ids {
				kernels.Axpy(1, g[i*h:(i+1)*h], dd[int(id)*h:(int(id)+1)*h])
			}
		}
	}, weight)
}
