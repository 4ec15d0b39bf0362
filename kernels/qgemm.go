package kernels

import (
	"fmt"
	"math"
)

// Int8 inference GEMM: y = x·Wᵀ + bias with W quantised symmetric per output channel and x
// quantised per row (token) on the fly:
//
//	W[j][p] ≈ sw[j]·qw[j][p],  sw[j] = max_p |W[j][p]| / 127,  qw = round(W/sw) in [-127, 127]
//	x[i][p] ≈ sx[i]·qx[i][p],  sx[i] = max_p |x[i][p]| / 127,  qx likewise
//	acc[i][j] = Σ_p qx[i][p]·qw[j][p]   (int32, exact: |acc| <= 127²·k < 2³¹ for k < 133,000)
//	y[i][j] = float32(acc)·sx[i]·sw[j] + bias[j]   (three float32 operations, rounded in turn)
//
// Every path (the AVX2 micro-kernel, the pure-Go one, the scalar reference) computes the same
// exact int32 sums and the same rounded epilogue, so all agree bit for bit.

// QuantizedB is a weight W (n×k, (out, in) as PyTorch stores it) quantised symmetric per output
// channel, with the int8 values also packed for the micro-kernel.
type QuantizedB struct {
	K, N  int
	Q     []int8    // n×k row-major: the checkpoint form
	Scale []float32 // n
	// packed: k/2 (rounded up) pairs of steps per nr-column strip, strip s at s*kp*2*qnr,
	// element (pair pp, column j, step t) at pp*2*qnr + 2*j + t; padding is zero.
	packed []int8
	kp     int // k rounded up to even, / 2
	npad   int
	sw     []float32 // Scale padded to npad
}

// qmr, qnr are the int8 micro-tile: 6 rows by 16 columns (12 ymm int32 accumulators).
const qmr, qnr = 6, 16

// QuantizeWeights quantises w (n×k) per row (output channel) as above; an all-zero row gets
// scale 0 (Scale never divides).
func QuantizeWeights(w []float32, n, k int) *QuantizedB {
	if len(w) != n*k {
		panic(fmt.Sprintf("kernels: QuantizeWeights: len(w)=%d, want n*k=%d*%d", len(w), n, k))
	}
	q := make([]int8, n*k)
	s := make([]float32, n)
	ParallelFor(n, 16, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			s[j] = quantizeRow(q[j*k:(j+1)*k], w[j*k:(j+1)*k])
		}
	})
	return NewQuantizedB(q, s, n, k)
}

// quantizeRow writes round(x/s) into q with s = max|x|/127 and returns s (0 for a zero row).
// Rounding is to nearest, ties away from zero; the quotient is x·(127/max), in float32.
func quantizeRow(q []int8, x []float32) float32 {
	var m float32
	for _, v := range x {
		m = max(m, float32(math.Abs(float64(v))))
	}
	if m == 0 {
		clear(q)
		return 0
	}
	inv := 127 / m
	for i, v := range x {
		q[i] = int8(max(-127, min(127, roundHalfAway(v*inv))))
	}
	return m / 127
}

func roundHalfAway(v float32) float32 { return float32(math.Round(float64(v))) }

// NewQuantizedB wraps int8 weights q (n×k) and their scales (n), as read from a checkpoint,
// and packs them for the micro-kernel.
func NewQuantizedB(q []int8, scale []float32, n, k int) *QuantizedB {
	if len(q) != n*k || len(scale) != n {
		panic(fmt.Sprintf("kernels: NewQuantizedB: len(q)=%d len(scale)=%d for n=%d k=%d", len(q), len(scale), n, k))
	}
	kp := (k + 1) / 2
	npad := ceilDiv(n, qnr) * qnr
	b := &QuantizedB{K: k, N: n, Q: q, Scale: scale, kp: kp, npad: npad,
		packed: make([]int8, npad*kp*2), sw: make([]float32, npad)}
	copy(b.sw, scale)
	for j := range n {
		s, jj := j/qnr, j%qnr
		base := s * kp * 2 * qnr
		row := q[j*k : (j+1)*k]
		for p, v := range row {
			b.packed[base+(p/2)*2*qnr+2*jj+p%2] = v
		}
	}
	return b
}

// Bytes returns the memory of the int8 weights (checkpoint form and packed) and scales.
func (b *QuantizedB) Bytes() int { return len(b.Q) + len(b.packed) + 4*len(b.Scale) + 4*len(b.sw) }

// Dequantize returns sw[j]·qw[j][p] (n×k).
func (b *QuantizedB) Dequantize() []float32 {
	w := make([]float32, b.N*b.K)
	for j := range b.N {
		for p := range b.K {
			w[j*b.K+p] = b.Scale[j] * float32(b.Q[j*b.K+p])
		}
	}
	return w
}

// qgemmKernel is one int8 micro-kernel: acc over kp pairs of the packed A strip (qmr rows of
// int16 pairs, a[pp*2*qmr + 2*i + t]) and B strip, then c[i*ldc+j] = float32(acc)·sa[i]·sw[j] +
// bias[j] for the full qmr×qnr tile.
type qgemmKernel struct {
	name  string
	micro func(kp int, a []int16, b []int8, c []float32, ldc int, sa, sw, bias []float32)
}

var qgemmGeneric = &qgemmKernel{name: "generic", micro: qmicroGeneric}

// QGemmPath names the int8 micro-kernel in use: "avx2" (vpmovsxbw + vpmaddwd) or "generic".
func QGemmPath() string { return qgemmActive().name }

var qgemmForce *qgemmKernel // tests: force a kernel (nil: the best)

func qgemmActive() *qgemmKernel {
	if qgemmForce != nil {
		return qgemmForce
	}
	if GemmPath() == "generic" {
		return qgemmGeneric
	}
	if k := archQgemm(); k != nil {
		return k
	}
	return qgemmGeneric
}

// qmicroGeneric is the pure-Go int8 micro-kernel.
func qmicroGeneric(kp int, a []int16, b []int8, c []float32, ldc int, sa, sw, bias []float32) {
	var acc [qmr][qnr]int32
	a = a[:kp*2*qmr]
	b = b[:kp*2*qnr]
	for pp := range kp {
		ap := a[pp*2*qmr : pp*2*qmr+2*qmr]
		bp := b[pp*2*qnr : pp*2*qnr+2*qnr]
		for i := range qmr {
			a0, a1 := int32(ap[2*i]), int32(ap[2*i+1])
			row := &acc[i]
			for j := range qnr {
				row[j] += a0*int32(bp[2*j]) + a1*int32(bp[2*j+1])
			}
		}
	}
	for i := range qmr {
		cr := c[i*ldc : i*ldc+qnr]
		for j := range qnr {
			cr[j] = dequant(acc[i][j], sa[i], sw[j], bias[j])
		}
	}
}

// dequant is the epilogue, each operation rounded to float32 in turn (no fused multiply-add).
func dequant(acc int32, sa, sw, bias float32) float32 {
	v := float32(acc) * sa
	v = float32(v * sw)
	return float32(v + bias)
}

// QLinearForward computes y = x·Wᵀ + bias (rows×n) for x (rows×k) with w quantised
// (QuantizeWeights) and x quantised per row on the fly; bias (n) may be nil.
func QLinearForward(y, x []float32, w *QuantizedB, bias []float32, rows int) {
	k, n := w.K, w.N
	if len(y) != rows*n || len(x) != rows*k || (bias != nil && len(bias) != n) {
		panic(fmt.Sprintf("kernels: QLinearForward: rows=%d k=%d n=%d but len(y)=%d len(x)=%d len(bias)=%d", rows, k, n, len(y), len(x), len(bias)))
	}
	if rows == 0 || n == 0 {
		return
	}
	if k == 0 {
		for r := range rows {
			row := y[r*n : (r+1)*n]
			clear(row)
			copy(row, bias)
		}
		return
	}
	kern := qgemmActive()
	bp := make([]float32, w.npad)
	copy(bp, bias)
	kp := w.kp
	// Row blocks of qmc rows: each goroutine quantises and packs its block of x (int16 pairs),
	// then sweeps every column strip over it, so the block stays in L2 and a B strip in L1.
	const qmc = 16 * qmr
	blocks := ceilDiv(rows, qmc)
	ParallelFor(blocks, 1, func(lo, hi int) {
		ap := make([]int16, qmc*kp*2)
		sa := make([]float32, qmc)
		q8 := make([]int8, k)
		var tile [qmr * qnr]float32
		for blk := lo; blk < hi; blk++ {
			r0 := blk * qmc
			mb := min(qmc, rows-r0)
			strips := ceilDiv(mb, qmr)
			clear(ap[:strips*qmr*kp*2])
			clear(sa)
			for i := range mb {
				sa[i] = quantizeRow(q8, x[(r0+i)*k:(r0+i+1)*k])
				s, ii := i/qmr, i%qmr
				d := ap[s*qmr*kp*2:]
				for p, v := range q8 {
					d[(p/2)*2*qmr+2*ii+p%2] = int16(v)
				}
			}
			for js := 0; js < n; js += qnr {
				ncol := min(qnr, n-js)
				bs := w.packed[(js/qnr)*kp*2*qnr:]
				for s := range strips {
					as := ap[s*qmr*kp*2:]
					i0 := r0 + s*qmr
					nrow := min(qmr, rows-i0)
					if nrow == qmr && ncol == qnr {
						kern.micro(kp, as, bs, y[i0*n+js:], n, sa[s*qmr:], w.sw[js:], bp[js:])
						continue
					}
					kern.micro(kp, as, bs, tile[:], qnr, sa[s*qmr:], w.sw[js:], bp[js:])
					for i := range nrow {
						copy(y[(i0+i)*n+js:(i0+i)*n+js+ncol], tile[i*qnr:i*qnr+ncol])
					}
				}
			}
		}
	})
}

// qlinearReference is the scalar reference of QLinearForward: plain loops on the unpacked
// int8 values, the same quantisation and epilogue.
func qlinearReference(y, x []float32, w *QuantizedB, bias []float32, rows int) {
	k, n := w.K, w.N
	q8 := make([]int8, k)
	for i := range rows {
		sa := quantizeRow(q8, x[i*k:(i+1)*k])
		for j := range n {
			var acc int32
			for p := range k {
				acc += int32(q8[p]) * int32(w.Q[j*k+p])
			}
			var b float32
			if bias != nil {
				b = bias[j]
			}
			y[i*n+j] = dequant(acc, sa, w.Scale[j], b)
		}
	}
}
