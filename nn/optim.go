package nn

import (
	"fmt"
	"math"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
)

// Adam is torch.optim.Adam (Decoupled false: weight decay as an L2 term added to the
// gradient) or torch.optim.AdamW (Decoupled true: p ← p·(1 − lr·wd) before the update), with
// PyTorch's bias correction and eps added outside the square root. See kernels.AdamStep.
type Adam struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	Decoupled                          bool
	// NoDecay, when set, exempts parameters from weight decay by name (biases and LayerNorm
	// weights, as BERT fine-tuning recipes do).
	NoDecay func(name string) bool

	params []*autograd.Var
	state  []adamState
	index  map[*autograd.Var]int
}

type adamState struct {
	m, v []float32
	step int
}

// NewAdam returns Adam with PyTorch's defaults (betas 0.9, 0.999; eps 1e-8; no weight decay).
func NewAdam(params []*autograd.Var, lr float64) *Adam {
	idx := make(map[*autograd.Var]int, len(params))
	for i, p := range params {
		idx[p] = i
	}
	return &Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, params: params, state: make([]adamState, len(params)), index: idx}
}

// NewAdamW returns AdamW with PyTorch's defaults and the given weight decay (PyTorch's default
// is 0.01).
func NewAdamW(params []*autograd.Var, lr, weightDecay float64) *Adam {
	o := NewAdam(params, lr)
	o.WeightDecay, o.Decoupled = weightDecay, true
	return o
}

// Step updates every parameter that has a gradient. As in PyTorch, a parameter without a
// gradient is skipped and its step count does not advance.
func (o *Adam) Step() { o.StepParams(o.params) }

// StepParams updates only the given parameters (each must belong to the optimiser), as
// PyTorch does when every other parameter's gradient is None: a multitask step updates the
// shared encoder and one task's head, and the other heads' moments and step counts stay put.
func (o *Adam) StepParams(params []*autograd.Var) {
	for _, p := range params {
		i, ok := o.index[p]
		if !ok {
			panic(fmt.Sprintf("nn: Adam.StepParams: parameter %q is not in the optimiser", p.Name))
		}
		if p.Grad == nil {
			continue
		}
		st := &o.state[i]
		if st.m == nil {
			st.m = make([]float32, p.Value.Len())
			st.v = make([]float32, p.Value.Len())
		}
		st.step++
		wd := o.WeightDecay
		if o.NoDecay != nil && o.NoDecay(p.Name) {
			wd = 0
		}
		kernels.AdamStep(p.Value.Data(), p.Grad.Data(), st.m, st.v, kernels.AdamParams{
			LR: o.LR, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: wd, Decoupled: o.Decoupled, Step: st.step,
		})
		p.Modified()
	}
}

// ZeroGrad zeroes the gradients of the optimiser's parameters.
func (o *Adam) ZeroGrad() {
	for _, p := range o.params {
		p.ZeroGrad()
	}
}

// Params returns the parameters the optimiser updates.
func (o *Adam) Params() []*autograd.Var { return o.params }

// State returns parameter i's first and second moments and step count (nil before its first
// step); the slices alias the optimiser's state.
func (o *Adam) State(i int) (m, v []float32, step int) {
	s := o.state[i]
	return s.m, s.v, s.step
}

// SetState restores parameter i's moments (copied) and step count.
func (o *Adam) SetState(i int, m, v []float32, step int) error {
	n := o.params[i].Value.Len()
	if len(m) != n || len(v) != n {
		return fmt.Errorf("nn: Adam.SetState: parameter %q has %d elements, state has %d and %d", o.params[i].Name, n, len(m), len(v))
	}
	o.state[i] = adamState{m: append([]float32(nil), m...), v: append([]float32(nil), v...), step: step}
	return nil
}

// ClipGradNorm scales the gradients of params so that their global L2 norm is at most maxNorm,
// as torch.nn.utils.clip_grad_norm_: coef = maxNorm/(norm + 1e-6), applied when below 1. It
// returns the norm before clipping (accumulated in float64).
func ClipGradNorm(params []*autograd.Var, maxNorm float64) float64 {
	var ss float64
	for _, p := range params {
		if p.Grad != nil {
			ss += kernels.SumSquares(p.Grad.Data())
		}
	}
	norm := math.Sqrt(ss)
	coef := maxNorm / (norm + 1e-6)
	if coef < 1 {
		c := float32(coef)
		for _, p := range params {
			if p.Grad != nil {
				g := p.Grad.Data()
				kernels.Scale(g, c, g)
			}
		}
	}
	return norm
}

// Schedule gives the learning rate for a 0-based optimiser step.
type Schedule interface {
	LR(step int) float64
}

// Constant is a fixed learning rate.
type Constant float64

// LR returns the constant rate.
func (c Constant) LR(int) float64 { return float64(c) }

// LinearWarmup rises linearly from 0 to Peak over Warmup steps, then falls linearly to 0 at
// Total, as transformers' get_linear_schedule_with_warmup: the rate of step s is
// Peak·s/Warmup while s < Warmup, then Peak·max(0, (Total−s)/(Total−Warmup)).
type LinearWarmup struct {
	Peak          float64
	Warmup, Total int
}

// LR returns the rate for step s.
func (l LinearWarmup) LR(s int) float64 {
	if s < l.Warmup {
		return l.Peak * float64(s) / float64(max(1, l.Warmup))
	}
	if l.Total <= l.Warmup {
		return l.Peak
	}
	return l.Peak * math.Max(0, float64(l.Total-s)/float64(l.Total-l.Warmup))
}
