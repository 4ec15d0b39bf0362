package kernels

import "fmt"

const (
	invSqrt2    = 0.7071067811865476
	invSqrt2Pi  = 0.3989422804014327
	sqrt2OverPi = 0.7978845608028654
	geluCoeff   = 0.044715
	actGrain    = 1 << 14
)

// GeluForward computes y = x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the exact GELU of BERT.
func GeluForward(y, x []float32) {
	checkLen("GeluForward", len(y), len(x))
	ParallelFor(len(x), actGrain, func(lo, hi int) {
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

// GeluBackward accumulates dx += dy·(Φ(x) + x·φ(x)), φ the standard normal density.
func GeluBackward(dx, dy, x []float32) {
	checkLen("GeluBackward", len(dx), len(dy), len(x))
	ParallelFor(len(x), actGrain, func(lo, hi int) {
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
	ParallelFor(len(x), actGrain, func(lo, hi int) {
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
	ParallelFor(len(x), actGrain, func(lo, hi int) {
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

// DropoutMask fills mask with 0 (dropped, probability p) or 1/(1−p) (kept), drawing one
// uniform value per element from the counter-based generator at (seed, offset+i), so that the
// mask depends only on the seed and the element's position (the same on every backend).
func DropoutMask(mask []float32, p float32, seed, offset uint64) {
	if p < 0 || p >= 1 {
		panic("kernels: DropoutMask: p must be in [0, 1)")
	}
	scale := 1 / (1 - p)
	ParallelFor(len(mask), actGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if dropUniform(seed, offset+uint64(i)) < p {
				mask[i] = 0
			} else {
				mask[i] = scale
			}
		}
	})
}

// dropUniform is the uniform value in [0, 1) that dropout draws for element i under seed (24
// bits of SplitMix64 of seed ^ i·golden ratio): DropoutMask and the attention's dropout share it,
// and the GPU kernels follow it.
func dropUniform(seed, i uint64) float32 {
	return float32(SplitMix64(seed^i*0x9e3779b97f4a7c15)>>40) * (1.0 / (1 << 24))
}

// SplitMix64 is the finaliser of the SplitMix64 generator: a bijective mix of x.
func SplitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Mul computes y = a·b elementwise.
func Mul(y, a, b []float32) {
	checkLen("Mul", len(y), len(a), len(b))
	for i := range y {
		y[i] = a[i] * b[i]
	}
}

// Axpy computes y += alpha·x.
func Axpy(alpha float32, x, y []float32) {
	checkLen("Axpy", len(y), len(x))
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Scale computes y = alpha·x.
func Scale(y []float32, alpha float32, x []float32) {
	checkLen("Scale", len(y), len(x))
	for i, v := range x {
		y[i] = alpha * v
	}
}

// Dot returns Σ x·y accumulated in float64.
func Dot(x, y []float32) float64 {
	checkLen("Dot", len(x), len(y))
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return s
}

// SumSquares returns Σ x² accumulated in float64.
func SumSquares(x []float32) float64 { return Dot(x, x) }

func checkLen(op string, n int, others ...int) {
	for _, m := range others {
		if m != n {
			panic(fmt.Sprintf("kernels: %s: length mismatch: %d vs %d", op, n, m))
		}
	}
}

// SumRows accumulates dst[j] += Σ_r x[r, j] over the rows of x (rows, cols), in float32 and
// in row order.
func SumRows(dst, x []float32, rows, cols int) {
	if len(dst) != cols || len(x) != rows*cols {
		panic(fmt.Sprintf("kernels: SumRows: rows=%d cols=%d but len(dst)=%d len(x)=%d", rows, cols, len(dst), len(x)))
	}
	for r := 0; r < rows; r++ {
		row := x[r*cols : (r+1)*cols]
		for j, v := range row {
			dst[j] += v
		}
	}
}

// LinearForward computes y = x·wᵀ + b for x (rows, in), w (out, in) as PyTorch stores it and
// b (out) or nil: the bias is copied into every row of y and the product added onto it.
func LinearForward(y, x, w, b []float32, rows, in, out int) {
	if len(y) != rows*out || len(x) != rows*in || len(w) != out*in || (b != nil && len(b) != out) {
		panic(fmt.Sprintf("kernels: LinearForward: rows=%d in=%d out=%d but len(y)=%d len(x)=%d len(w)=%d len(b)=%d", rows, in, out, len(y), len(x), len(w), len(b)))
	}
	beta := float32(0)
	if b != nil {
		for r := 0; r < rows; r++ {
			copy(y[r*out:(r+1)*out], b)
		}
		beta = 1
	}
	Sgemm(false, true, rows, out, in, 1, x, in, w, in, beta, y, out)
}

// LinearBackward accumulates the gradients of y = x·wᵀ + b (x rows×in, w out×in) from dy
// (rows×out): dx += dy·w, dw += dyᵀ·x, db += Σ_rows dy. A nil dx, dw or db is skipped.
func LinearBackward(dx, dw, db, dy, x, w []float32, rows, in, out int) {
	if dx != nil {
		Sgemm(false, false, rows, in, out, 1, dy, out, w, in, 1, dx, in)
	}
	if dw != nil {
		Sgemm(true, false, out, in, rows, 1, dy, out, x, in, 1, dw, in)
	}
	if db != nil {
		SumRows(db, dy, rows, out)
	}
}
