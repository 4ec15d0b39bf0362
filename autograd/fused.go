package autograd

import (
	"fmt"

	"github.com/mtbert/mtbert/kernels"
)

// LinearCrossEntropy returns CrossEntropy(Linear(x, w, bias), targets, ignore) for x (N, in),
// w (V, in) as PyTorch stores it (a tied word-embedding matrix serves as is), bias (V) or nil,
// and one target per row, fused: the (N, V) logits are turned into probabilities in place and,
// in backward, into the gradient of the logits in place, so that buffer is the only
// vocabulary-sized memory the op holds (CrossEntropy after Linear keeps two). Ignored rows are still projected: gather the
// rows that count first (as the masked-language-model head does). With no counted row the loss
// is 0 and no gradient flows.
func (tp *Tape) LinearCrossEntropy(x, w, bias *Var, targets []int32, ignore int32) *Var {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) != 2 || len(ws) != 2 || xs[1] != ws[1] || (bias != nil && (bias.Value.Rank() != 1 || bias.Shape()[0] != ws[0])) || len(targets) != xs[0] {
		bsh := []int(nil)
		if bias != nil {
			bsh = bias.Shape()
		}
		panic(fmt.Sprintf("autograd: LinearCrossEntropy: x %v, weight %v, bias %v, %d targets do not match", xs, ws, bsh, len(targets)))
	}
	n, in, v := xs[0], xs[1], ws[0]
	xv, wv := x.Value.Contiguous(), w.Value.Contiguous()
	buf := tp.Alloc(n, v)
	bd := buf.Data()
	var bias32 []float32
	if bias != nil {
		bias32 = bias.Value.Contiguous().Data()
	}
	kernels.LinearForward(bd, xv.Data(), wv.Data(), bias32, n, in, v)
	loss, count := kernels.CrossEntropyForward(bd, bd, targets, n, v, ignore)
	out := tp.Alloc()
	out.Data()[0] = loss
	return tp.Op(out, func(o *Var) {
		if count == 0 {
			return
		}
		// buf becomes dloss/dlogits = g·(probs − onehot)/count in place.
		g := o.Grad.Data()[0] / float32(count)
		kernels.ParallelFor(n, 1, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				if targets[r] == ignore {
					continue
				}
				row := bd[r*v : (r+1)*v]
				row[targets[r]] -= 1
				for i := range row {
					row[i] *= g
				}
			}
		})
		kernels.LinearBackward(gradData(tp, x), gradData(tp, w), gradData(tp, bias), bd, xv.Data(), wv.Data(), n, in, v)
	}, x, w, bias)
}
