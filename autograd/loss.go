package autograd

import (
	"fmt"
	"github.com/mtbert/mtbert/kernels"
	"math"
)

// IgnoreIndex is the target that CrossEntropy skips, as PyTorch's default ignore_index.
const IgnoreIndex = -100

func sqrtf(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// CrossEntropy returns the mean over counted rows of −log softmax(logits)[target] for logits
// (..., C) and one target per row; rows whose target is ignore are not counted. With no
// counted row the loss is 0 and no gradient flows.
func (tp *Tape) CrossEntropy(logits *Var, targets []int32, ignore int32) *Var {
	ls := logits.Shape()
	c := ls[len(ls)-1]
	n := logits.Value.Len() / max(c, 1)
	if len(targets) != n {
		panic(fmt.Sprintf("autograd: CrossEntropy: %d targets for logits %v (%d rows)", len(targets), ls, n))
	}
	lv := logits.Value.Contiguous()
	probs := tp.Alloc(n, c)
	loss, count := kernels.CrossEntropyForward(probs.Data(), lv.Data(), targets, n, c, ignore)
	out := tp.Alloc()
	out.Data()[0] = loss
	return tp.Op(out, func(o *Var) {
		if dl := tp.GradOf(logits); dl != nil {
			kernels.CrossEntropyBackward(dl.Data(), probs.Data(), targets, n, c, ignore, count, o.Grad.Data()[0])
		}
	}, logits)
}

// MSE returns the mean of (pred − target)² over all elements; target has pred's shape.
func (tp *Tape) MSE(pred *Var, target []float32) *Var {
	pv := pred.Value.Contiguous().Data()
	if len(target) != len(pv) {
		panic(fmt.Sprintf("autograd: MSE: %d targets for prediction %v", len(target), pred.Shape()))
	}
	var s float64
	for i, p := range pv {
		d := float64(p) - float64(target[i])
		s += d * d
	}
	n := float32(len(pv))
	out := tp.Alloc()
	out.Data()[0] = float32(s / float64(len(pv)))
	return tp.Op(out, func(o *Var) {
		if dp := tp.GradOf(pred); dp != nil {
			g := o.Grad.Data()[0] * 2 / n
			dd := dp.Data()
			for i, p := range pv {
				dd[i] += g * (p - target[i])
			}
		}
	}, pred)
}
