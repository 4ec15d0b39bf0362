package kernels

import (
	"fmt"
	"math"
)

// SoftmaxForward computes y = softmax(x) over each of the n rows of x (n, c), subtracting
// the row maximum first. Rows whose entries are all −Inf give all-zero rows.
func SoftmaxForward(y, x []float32, n, c int) {
	if len(x) != n*c || len(y) != n*c {
		panic(fmt.Sprintf("kernels: SoftmaxForward: n=%d c=%d but len(x)=%d len(y)=%d", n, c, len(x), len(y)))
	}
	ParallelFor(n, max(1, 8192/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxRow(y[r*c:r*c+c], x[r*c:r*c+c])
		}
	})
}

func softmaxRow(y, x []float32) {
	mx := float32(math.Inf(-1))
	i := 0
	if vecOn && len(x) >= 8 {
		i = len(x) &^ 7
		mx = maxAVX2(&x[0], i)
	}
	for _, v := range x[i:] {
		if v > mx {
			mx = v
		}
	}
	if math.IsInf(float64(mx), -1) {
		clear(y)
		return
	}
	inv := float32(1 / expShiftSum(y, x, mx))
	i = 0
	if vecOn && len(y) >= 8 {
		i = len(y) &^ 7
		scaleAVX2(&y[0], i, inv)
	}
	for ; i < len(y); i++ {
		y[i] *= inv
	}
}

// SoftmaxBackward accumulates dx += y·(dy − Σ dy·y) for each row, from the forward output y.
func SoftmaxBackward(dx, dy, y []float32, n, c int) {
	if len(dx) != n*c || len(dy) != n*c || len(y) != n*c {
		panic(fmt.Sprintf("kernels: SoftmaxBackward: n=%d c=%d but len(dx)=%d len(dy)=%d len(y)=%d", n, c, len(dx), len(dy), len(y)))
	}
	ParallelFor(n, max(1, 8192/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			softmaxBackwardRow(dx[r*c:r*c+c], dy[r*c:r*c+c], y[r*c:r*c+c], false)
		}
	})
}

// softmaxBackwardRow computes dx (+)= y·(dy − Σdy·y); overwrite selects = over +=.
func softmaxBackwardRow(dx, dy, y []float32, overwrite bool) {
	var s float32
	for i, v := range y {
		s += dy[i] * v
	}
	if overwrite {
		for i, v := range y {
			dx[i] = v * (dy[i] - s)
		}
		return
	}
	for i, v := range y {
		dx[i] += v * (dy[i] - s)
	}
}

// CrossEntropyForward computes the mean over counted rows of −log softmax(logits)[target] for
// logits (n, c) and targets in [0, c), skipping rows whose target equals ignore. It writes
// the softmax probabilities of every counted row to probs (n, c), which may be logits itself
// (the row is then replaced by its probabilities), and zeroes the ignored rows of probs. It
// returns the loss and the number of counted rows. Each row's log-sum-exp is accumulated in
// float64 and the row losses are added in row order, so the result does not depend on the
// thread count. With no counted row the loss is 0 (PyTorch gives NaN there; a batch of padding
// only should not poison training).
func CrossEntropyForward(probs, logits []float32, targets []int32, n, c int, ignore int32) (loss float32, count int) {
	if len(logits) != n*c || len(probs) != n*c || len(targets) != n {
		panic(fmt.Sprintf("kernels: CrossEntropyForward: n=%d c=%d but len(logits)=%d len(probs)=%d len(targets)=%d", n, c, len(logits), len(probs), len(targets)))
	}
	for r, t := range targets {
		if t == ignore {
			continue
		}
		if t < 0 || int(t) >= c {
			panic(fmt.Sprintf("kernels: CrossEntropyForward: target %d at row %d out of range [0, %d)", t, r, c))
		}
		count++
	}
	rowLoss := make([]float64, n)
	ParallelFor(n, max(1, 8192/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			p := probs[r*c : r*c+c]
			t := targets[r]
			if t == ignore {
				clear(p)
				continue
			}
			row := logits[r*c : r*c+c]
			target := row[t]
			mx := row[0]
			for _, v := range row {
				mx = max(mx, v)
			}
			s := expShiftSum(p, row, mx)
			rowLoss[r] = float64(mx) + math.Log(s) - float64(target)
			inv := float32(1 / s)
			for i := range p {
				p[i] *= inv
			}
		}
	})
	if count == 0 {
		return 0, 0
	}
	var total float64
	for _, l := range rowLoss {
		total += l
	}
	return float32(total / float64(count)), count
}

// expShiftSum writes y = e**(x − shift) and returns Σy in float64 (y may alias x).
func expShiftSum(y, x []float32, shift float32) float64 {
	var s float64
	lo := 0
	if vecOn && len(x) >= 8 {
		lo = len(x) &^ 7
		s = float64(expShiftSumAVX2(&y[0], &x[0], lo, shift))
	}
	for i := lo; i < len(x); i++ {
		e := Expf(x[i] - shift)
		y[i] = e
		s += float64(e)
	}
	return s
}

// CrossEntropyBackward accumulates dlogits += dloss·(probs − onehot(target))/count for the
// counted rows of CrossEntropyForward.
func CrossEntropyBackward(dlogits, probs []float32, targets []int32, n, c int, ignore int32, count int, dloss float32) {
	if len(dlogits) != n*c || len(probs) != n*c || len(targets) != n {
		panic(fmt.Sprintf("kernels: CrossEntropyBackward: n=%d c=%d but len(dlogits)=%d len(probs)=%d len(targets)=%d", n, c, len(dlogits), len(probs), len(targets)))
	}
	if count == 0 {
		return
	}
	s := dloss / float32(count)
	for r := 0; r < n; r++ {
		t := targets[r]
		if t == ignore {
			continue
		}
		d, p := dlogits[r*c:r*c+c], probs[r*c:r*c+c]
		for i, v := range p {
			d[i] += s * v
		}
		d[t] -= s
	}
}
