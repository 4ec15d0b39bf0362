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
//
// Each float64 sum runs as eight interleaved partial sums (element i into sum i mod 8, the
// eight added pairwise at the end), a fixed order on every CPU: eight independent chains of
// adds instead of one chain as long as the row, whose add latency bounded the loop.
func layerNormRow(out, row, gamma, beta []float32, eps float32) (mf, rf float32) {
	c := len(row)
	m := sum8(row, 0, false) / float64(c)
	rs := 1 / math.Sqrt(sum8(row, m, true)/float64(c)+float64(eps))
	mf, rf = float32(m), float32(rs)
	out = out[:c]
	gamma, beta = gamma[:c], beta[:c]
	i := 0
	if vecOn && c >= 8 {
		i = c &^ 7
		lnOutAVX2(&out[0], &row[0], &gamma[0], &beta[0], i, mf, rf)
	}
	for ; i < c; i++ {
		out[i] = (row[i]-mf)*rf*gamma[i] + beta[i]
	}
	return mf, rf
}

// sum8 returns Σ x[i] (sq false) or Σ (x[i]−m)² (sq true) in float64, element i added into
// partial sum i mod 8 and the partials combined pairwise: ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)).
// With the vector kernels on, the whole groups of 8 run in lnPartialsAVX2 (the same sums).
func sum8(x []float32, m float64, sq bool) float64 {
	var s [8]float64
	i := 0
	if vecOn && len(x) >= 8 {
		i = len(x) &^ 7
		lnPartialsAVX2(&x[0], i, m, sq, &s)
	}
	s0, s1, s2, s3, s4, s5, s6, s7 := s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
	if sq {
		for ; i+8 <= len(x); i += 8 {
			v := x[i : i+8 : i+8]
			d0, d1, d2, d3 := float64(v[0])-m, float64(v[1])-m, float64(v[2])-m, float64(v[3])-m
			d4, d5, d6, d7 := float64(v[4])-m, float64(v[5])-m, float64(v[6])-m, float64(v[7])-m
			s0 += d0 * d0
			s1 += d1 * d1
			s2 += d2 * d2
			s3 += d3 * d3
			s4 += d4 * d4
			s5 += d5 * d5
			s6 += d6 * d6
			s7 += d7 * d7
		}
	} else {
		for ; i+8 <= len(x); i += 8 {
			v := x[i : i+8 : i+8]
			s0 += float64(v[0])
			s1 += float64(v[1])
			s2 += float64(v[2])
			s3 += float64(v[3])
			s4 += float64(v[4])
			s5 += float64(v[5])
			s6 += float64(v[6])
			s7 += float64(v[7])
		}
	}
	tail := [8]float64{}
	for j := 0; i < len(x); i, j = i+1, j+1 {
		d := float64(x[i]) - m
		if sq {
			d *= d
		}
		tail[j] = d
	}
	s0, s1, s2, s3 = s0+tail[0], s1+tail[1], s2+tail[2], s3+tail[3]
	s4, s5, s6, s7 = s4+tail[4], s5+tail[5], s6+tail[6], s7+tail[7]
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
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
			i := 0
			if vecOn && c >= 8 {
				i = c &^ 7
				addAVX2(&row[0], &rr[0], i)
			}
			for ; i < c; i++ {
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
