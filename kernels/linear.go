package kernels

import "fmt"

// LinearForward computes y = x·wᵀ + b for x (rows, in), w (out, in) as PyTorch stores it and
// b (out) or nil, with the values of copying the bias into every row of y and adding the
// product onto it (Sgemm with beta 1): the bias goes into each block of y inside the product
// (its epilogue, in parallel and in cache) rather than in a pass of its own.
func LinearForward(y, x, w, b []float32, rows, in, out int) {
	if len(y) != rows*out || len(x) != rows*in || len(w) != out*in || (b != nil && len(b) != out) {
		panic(fmt.Sprintf("kernels: LinearForward: rows=%d in=%d out=%d but len(y)=%d len(x)=%d len(w)=%d len(b)=%d", rows, in, out, len(y), len(x), len(w), len(b)))
	}
	if b == nil {
		Sgemm(false, true, rows, out, in, 1, x, in, w, in, 0, y, out)
		return
	}
	checkGemm("LinearForward", false, true, rows, out, in, x, in, w, in, y, out)
	gemmParallelEpi(gemmActive.Load(), Threads(), false, true, rows, out, in, 1, x, in, w, in, 0, y, out, nil, gemmEpilogue{bias: b})
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
