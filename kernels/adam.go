package kernels

import (
	"fmt"
	"math"
)

// AdamParams are the hyper-parameters of one Adam or AdamW step, as torch.optim names them.
// Step is the 1-based step number after this update (PyTorch increments before computing the
// bias corrections).
type AdamParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	// Decoupled selects AdamW (p ← p·(1 − lr·wd)) over Adam's L2 term (g ← g + wd·p).
	Decoupled bool
	Step      int
}

// adamConsts are the per-step scalars of adamAVX2, in the order the assembly reads them.
type adamConsts struct {
	decay, wd, w1, b2, w2, bc2sqrt, eps, negStep float32
	mode                                         int32
}

// AdamStep updates p in place from its gradient g and moments m, v, following PyTorch's
// single-tensor implementation (torch/optim/adam.py, _single_tensor_adam) operation for
// operation in float32:
//
//	g ← g + wd·p (Adam) | p ← p·(1 − lr·wd) (AdamW)
//	m ← lerp(m, g, 1−β1)           v ← β2·v + (1−β2)·g²
//	p ← p + (−lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + eps)
//
// The bias corrections are computed in float64 and rounded once, as PyTorch's Python floats
// are when they meet a float32 tensor. g is not modified.
func AdamStep(p, g, m, v []float32, hp AdamParams) {
	if len(g) != len(p) || len(m) != len(p) || len(v) != len(p) {
		panic(fmt.Sprintf("kernels: AdamStep: len(p)=%d len(g)=%d len(m)=%d len(v)=%d", len(p), len(g), len(m), len(v)))
	}
	if hp.Step < 1 {
		panic(fmt.Sprintf("kernels: AdamStep: step %d, want >= 1", hp.Step))
	}
	bc1 := 1 - math.Pow(hp.Beta1, float64(hp.Step))
	bc2 := 1 - math.Pow(hp.Beta2, float64(hp.Step))
	stepSize := float32(hp.LR / bc1)
	bc2Sqrt := float32(math.Sqrt(bc2))
	w1 := float32(1 - hp.Beta1)
	b2 := float32(hp.Beta2)
	w2 := float32(1 - hp.Beta2)
	eps := float32(hp.Eps)
	wd := float32(hp.WeightDecay)
	decay := float32(1 - hp.LR*hp.WeightDecay)
	c := adamConsts{decay: decay, wd: wd, w1: w1, b2: b2, w2: w2, bc2sqrt: bc2Sqrt, eps: eps, negStep: -stepSize}
	switch {
	case hp.WeightDecay == 0:
	case hp.Decoupled:
		c.mode = 2
	default:
		c.mode = 1
	}
	ParallelFor(len(p), 1<<15, func(lo, hi int) {
		if vecOn && w1 < 0.5 && hi-lo >= 8 {
			n := (hi - lo) &^ 7
			adamAVX2(&p[lo], &g[lo], &m[lo], &v[lo], n, &c)
			lo += n
		}
		for i := lo; i < hi; i++ {
			gi := g[i]
			pi := p[i]
			if hp.WeightDecay != 0 {
				if hp.Decoupled {
					pi *= decay
				} else {
					gi += wd * pi
				}
			}
			mi := m[i]
			// torch.lerp: weight < 0.5 ? self + w·(end − self) : end − (end − self)·(1 − w)
			if w1 < 0.5 {
				mi += w1 * (gi - mi)
			} else {
				mi = gi - (gi-mi)*(1-w1)
			}
			vi := v[i]*b2 + w2*gi*gi
			denom := float32(math.Sqrt(float64(vi)))/bc2Sqrt + eps
			// addcdiv: self + value·t1/t2, evaluated left to right.
			p[i] = pi + (-stepSize*mi)/denom
			m[i], v[i] = mi, vi
		}
	})
}
