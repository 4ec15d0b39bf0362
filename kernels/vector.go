package kernels

import "fmt"

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
