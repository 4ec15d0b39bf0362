package kernels

const (
	invSqrt2    = 0.7071067811865476
	invSqrt2Pi  = 0.3989422804014327
	sqrt2OverPi = 0.7978845608028654
	geluCoeff   = 0.044715
)

// GeluForward computes y = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the exact GELU of BERT.
func GeluForward(y, x []float32) {
	checkLen("GeluForward", len(y), len(x))
	ParallelFor(len(x), elemGrain, func(lo, hi int) {
		if vecOn && hi-lo >= 8 {
			n := (hi - lo) &^ 7
			geluFwdAVX2(&y[lo], &x[lo], n)
			lo += n
		}
		for i := lo; i < hi; i++ {
			v := x[i]
			y[i] = 0.5 * v * (1 + Erff(v*invSqrt2))
		}
	})
}

// geluRow applies GeluForward's exact GELU to x in place on the calling goroutine.
func geluRow(x []float32) {
	lo := 0
	if vecOn && len(x) >= 8 {
		lo = len(x) &^ 7
		geluFwdAVX2(&x[0], &x[0], lo)
	}
	for i := lo; i < len(x); i++ {
		v := x[i]
		x[i] = 0.5 * v * (1 + Erff(v*invSqrt2))
	}
}

// GeluBackward accumulates dx += dy·(Φ(x) + x·φ(x)), φ the standard normal density.
func GeluBackward(dx, dy, x []float32) {
	checkLen("GeluBackward", len(dx), len(dy), len(x))
	ParallelFor(len(x), elemGrain, func(lo, hi int) {
		if vecOn && hi-lo >= 8 {
			n := (hi - lo) &^ 7
			geluBwdAVX2(&dx[lo], &dy[lo], &x[lo], n)
			lo += n
		}
		for i := lo; i < hi; i++ {
			v := x[i]
			cdf := 0.5 * (1 + Erff(v*invSqrt2))
			pdf := invSqrt2Pi * Expf(-0.5*v*v)
			dx[i] += dy[i] * (cdf + v*pdf)
		}
	})
}

// GeluTanhForward computes the tanh form 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
// (Hugging Face "gelu_new" and "gelu_pytorch_tanh").
func GeluTanhForward(y, x []float32) {
	checkLen("GeluTanhForward", len(y), len(x))
	ParallelFor(len(x), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := x[i]
			y[i] = 0.5 * v * (1 + Tanhf(sqrt2OverPi*(v+geluCoeff*v*v*v)))
		}
	})
}

// GeluTanhBackward accumulates the derivative of GeluTanhForward:
// dx += dy·(0.5·(1+t) + 0.5·x·(1−t²)·√(2/π)·(1 + 3·0.044715·x²)), t = tanh(u).
func GeluTanhBackward(dx, dy, x []float32) {
	checkLen("GeluTanhBackward", len(dx), len(dy), len(x))
	ParallelFor(len(x), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := x[i]
			t := Tanhf(sqrt2OverPi * (v + geluCoeff*v*v*v))
			d := 0.5*(1+t) + 0.5*v*(1-t*t)*sqrt2OverPi*(1+3*geluCoeff*v*v)
			dx[i] += dy[i] * d
		}
	})
}

// TanhForward computes y = tanh(x).
func TanhForward(y, x []float32) {
	checkLen("TanhForward", len(y), len(x))
	for i, v := range x {
		y[i] = Tanhf(v)
	}
}

// TanhBackward accumulates dx += dy·(1 − y²) from the forward output y.
func TanhBackward(dx, dy, y []float32) {
	checkLen("TanhBackward", len(dx), len(dy), len(y))
	for i, v := range y {
		dx[i] += dy[i] * (1 - v*v)
	}
}
