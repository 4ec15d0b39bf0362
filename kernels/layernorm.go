package kernels

import (
	"fmt"
	"math"
	"sync"
)

// LayerNormForward normalises each of the n rows of x (n, c):
//
//	mean = Σx/c, var = Σ(x−mean)²/c, rstd = 1/√(var+eps), y = (x−mean)·rstd·gamma + beta
//
// and saves mean and rstd (n) for the backward pass. Statistics accumulate in float64 (two
// passes), as PyTorch's CPU kernel does with its wider accumulator.
func LayerNormForward(y, mean, rstd, x, gamma, beta []float32, n, c int, eps float32) {
	if len(x) != n*c || len(y) != n*c || len(mean) != n || len(rstd) != n || len(gamma) != c || len(beta) != c {
		panic(fmt.Sprintf("kernels: LayerNormForward: n=%d c=%d but len(x)=%d len(y)=%d len(mean)=%d len(rstd)=%d len(gamma)=%d len(beta)=%d",
			n, c, len(x), len(y), len(mean), len(rstd), len(gamma), len(beta)))
	}
	ParallelFor(n, max(1, 4096/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			mean[r], rstd[r] = layerNormRow(y[r*c:r*c+c], x[r*c:r*c+c], gamma, beta, eps)
		}
	})
}

// layerNormRow normalises one row (see LayerNormForward) into out and returns its mean and rstd.
func layerNormRow(out, row, gamma, beta []float32, eps float32) (mf, rf float32) {
	c := len(row)
	var s float64
	for _, v := range row {
		s += float64(v)
	}
	m := s / float64(c)
	var ss float64
	for _, v := range row {
		d := float64(v) - m
		ss += d * d
	}
	rs := 1 / math.Sqrt(ss/float64(c)+float64(eps))
	mf, rf = float32(m), float32(rs)
	out = out[:c]
	gamma, beta = gamma[:c], beta[:c]
	for i, v := range row {
		out[i] = (v-mf)*rf*gamma[i] + beta[i]
	}
	return mf, rf
}

// AddLayerNormForward computes y = LayerNorm(x + res) row by row in one pass over memory (the
// residual add of a post-LayerNorm transformer block, fused): x (n, c) is overwritten with
// x + res, then normalised into y exactly as LayerNormForward does, so the result is
// bit-identical to an add followed by LayerNormForward. mean and rstd (n) may be nil.
func AddLayerNormForward(y, x, res, gamma, beta, mean, rstd []float32, n, c int, eps float32) {
	if len(x) != n*c || len(y) != n*c || len(res) != n*c || len(gamma) != c || len(beta) != c || (mean != nil && len(mean) != n) || (rstd != nil && len(rstd) != n) {
		panic(fmt.Sprintf("kernels: AddLayerNormForward: n=%d c=%d but len(x)=%d len(y)=%d len(res)=%d len(gamma)=%d len(beta)=%d",
			n, c, len(x), len(y), len(res), len(gamma), len(beta)))
	}
	ParallelFor(n, max(1, 4096/max(c, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, rr := x[r*c:r*c+c], res[r*c:r*c+c]
			for i := range row {
				row[i] += rr[i]
			}
			m, rs := layerNormRow(y[r*c:r*c+c], row, gamma, beta, eps)
			if mean != nil {
				mean[r], rstd[r] = m, rs
			}
		}
	})
}

// LayerNormBackward accumulates the gradients of LayerNormForward. With x̂ = (x−mean)·rstd
// and g = dy·gamma:
//
//	dx += rstd·(g − mean(g) − x̂·mean(g·x̂)),  dgamma += Σ_rows dy·x̂,  dbeta += Σ_rows dy
func LayerNormBackward(dx, dgamma, dbeta, dy, x, mean, rstd, gamma []float32, n, c int) {
	if len(x) != n*c || len(dx) != n*c || len(dy) != n*c || len(mean) != n || len(rstd) != n || len(gamma) != c || len(dgamma) != c || len(dbeta) != c {
		panic(fmt.Sprintf("kernels: LayerNormBackward: n=%d c=%d but len(x)=%d len(dx)=%d len(dy)=%d len(mean)=%d len(rstd)=%d len(gamma)=%d len(dgamma)=%d len(dbeta)=%d",
			n, c, len(x), len(dx), len(dy), len(mean), len(rstd), len(gamma), len(dgamma), len(dbeta)))
	}
	var mu sync.Mutex
	ParallelFor(n, max(1, 4096/max(c, 1)), func(lo, hi int) {
		acc := make([]float32, 2*c)
		dg, db := acc[:c], acc[c:]
		for r := lo; r < hi; r++ {
			xr, dyr, dxr := x[r*c:r*c+c], dy[r*c:r*c+c], dx[r*c:r*c+c]
			m, rs := mean[r], rstd[r]
			var sg, sgx float64
			for i, v := range xr {
				xh := (v - m) * rs
				g := dyr[i] * gamma[i]
				sg += float64(g)
				sgx += float64(g * xh)
				dg[i] += dyr[i] * xh
				db[i] += dyr[i]
			}
			mg, mgx := float32(sg/float64(c)), float32(sgx/float64(c))
			for i, v := range xr {
				xh := (v - m) * rs
				g := dyr[i] * gamma[i]
				dxr[i] += rs * (g - mg - xh*mgx)
			}
		}
		mu.Lock()
		for i := range dg {
			dgamma[i] += dg[i]
			dbeta[i] += db[i]
		}
		mu.Unlock()
	})
}
