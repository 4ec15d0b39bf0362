package autograd

import (
	"fmt"
	"math"

	"github.com/mtbert/mtbert/tensor"
)

// GradCheck compares the gradients that backward gives for f against central differences.
//
// f builds an output from Vars made of inputs (each a parameter). The check reduces the output
// to the scalar L = Σ r ⊙ f(x) with a fixed random r (computed in float64 outside the tape, so
// only f's own rounding enters) and, for every element x_i of every input, compares ∂L/∂x_i
// from backward with (L(x_i + h) − L(x_i − h)) / 2h. It returns an error naming the first input
// and element where |analytic − numeric| > atol + rtol·|numeric|.
func GradCheck(f func(tp *Tape, in []*Var) *Var, inputs []*tensor.Tensor, h, atol, rtol float64) error {
	vars := make([]*Var, len(inputs))
	for i, t := range inputs {
		vars[i] = NewParam(fmt.Sprintf("input%d", i), t)
	}
	tp := NewTape()
	out := f(tp, vars)
	g := tensor.NewRNG(12345)
	r := make([]float64, out.Value.Len())
	for i := range r {
		r[i] = g.Norm()
	}
	seed := tp.GradOf(out).Data()
	for i := range seed {
		seed[i] = float32(r[i])
	}
	tp.BackwardFrom()
	analytic := make([][]float32, len(vars))
	for i, v := range vars {
		if v.Grad == nil {
			analytic[i] = make([]float32, v.Value.Len())
		} else {
			analytic[i] = v.Grad.ToHost()
		}
	}
	tp.Reset()
	eval := func() float64 {
		nt := NoGrad()
		o := f(nt, vars).Value.ToHost()
		var s float64
		for i, v := range o {
			s += r[i] * float64(v)
		}
		nt.Reset()
		return s
	}
	for i, t := range inputs {
		d := t.Data()
		for j := range d {
			orig := d[j]
			d[j] = orig + float32(h)
			hp := float64(d[j]) - float64(orig)
			lp := eval()
			d[j] = orig - float32(h)
			hm := float64(orig) - float64(d[j])
			lm := eval()
			d[j] = orig
			num := (lp - lm) / (hp + hm)
			an := float64(analytic[i][j])
			if math.Abs(an-num) > atol+rtol*math.Abs(num) || math.IsNaN(an) {
				return fmt.Errorf("input %d %v element %d: backward gives %.6g, central difference %.6g", i, t.Shape(), j, an, num)
			}
		}
	}
	return nil
}
