package kernels

import (
	"fmt"
	"math"
	"sync"
)

// HeadView addresses a (B, H, T, D) array inside a flat buffer: element (b, h, t, d) is at
// Data[b*SB + h*SH + t*ST + d]. The projections of a transformer produce (B, T, H·D) rows, which
// is the view SB = T·H·D, SH = D, ST = H·D: attention reads them with no transpose.
type HeadView struct {
	Data       []float32
	SB, SH, ST int
}

// Attention describes one scaled-dot-product attention: B sequences, H heads, T positions and
// head size D. Mask, when not nil, is (B, T) with 1 for a key that may be attended and 0 for
// padding; as in Hugging Face BERT, (1−mask)·float32 min is added to the scores before the
// softmax. Dropout on the probabilities (rate DropP, 0 for none) draws its mask from the
// counter-based generator at (Seed, position), so backward regenerates it instead of storing it.
type Attention struct {
	B, H, T, D int
	Scale      float32
	Mask       []float32
	DropP      float32
	Seed       uint64
	// Row0 is the index of sequence 0 in the batch the dropout masks are keyed by: a batch
	// that is rows Row0.. of a larger one (a data-parallel rank's slice) draws that batch's
	// masks for its rows. 0 for a batch of its own.
	Row0 int
}

func (a *Attention) check(op string, views ...HeadView) {
	if a.B < 0 || a.H <= 0 || a.T < 0 || a.D <= 0 {
		panic(fmt.Sprintf("kernels: %s: bad dims B=%d H=%d T=%d D=%d", op, a.B, a.H, a.T, a.D))
	}
	if a.Mask != nil && len(a.Mask) != a.B*a.T {
		panic(fmt.Sprintf("kernels: %s: mask has %d elements, want B*T=%d*%d", op, len(a.Mask), a.B, a.T))
	}
	for i, v := range views {
		if a.B == 0 || a.T == 0 {
			continue
		}
		last := (a.B-1)*v.SB + (a.H-1)*v.SH + (a.T-1)*v.ST + a.D
		if len(v.Data) < last || v.ST < a.D {
			panic(fmt.Sprintf("kernels: %s: view %d (len %d, strides %d,%d,%d) too small for B=%d H=%d T=%d D=%d",
				op, i, len(v.Data), v.SB, v.SH, v.ST, a.B, a.H, a.T, a.D))
		}
	}
}

var scratchPool sync.Pool

func getScratch(n int) *[]float32 {
	if p, ok := scratchPool.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	s := make([]float32, n)
	return &s
}

// dropScale returns the dropout factor of probability element i under the attention's rule.
func (a *Attention) dropScale(i uint64) float32 {
	if dropUniform(a.Seed, i) < a.DropP {
		return 0
	}
	return 1 / (1 - a.DropP)
}

// applyDropout writes dst = src ⊙ dropout mask for a block of probabilities whose first
// element has index base in the attention's mask numbering ((Row0+b)·H·T·T + h·T·T for head h
// of sequence b).
func (a *Attention) applyDropout(dst, src []float32, base uint64) {
	for i, v := range src {
		dst[i] = v * a.dropScale(base+uint64(i))
	}
}

// Forward computes out = softmax(Scale·Q·Kᵀ + maskbias)·V per (b, h), writing the
// probabilities P (B, H, T, T, contiguous, before dropout) for Backward. With p nil (inference:
// no Backward) each head's probabilities live in a T×T scratch block of its goroutine instead,
// with the same values.
//
// The B·H heads are the parallel tasks: each runs its two products, the mask and the softmax
// on one goroutine while its T×T block is in cache, one parallel region per call. Each product
// is the serial Sgemm of that head, so the result does not depend on the thread count.
func (a *Attention) Forward(out, q, k, v HeadView, p []float32) {
	a.check("Attention.Forward", out, q, k, v)
	B, H, T, D := a.B, a.H, a.T, a.D
	if p != nil && len(p) != B*H*T*T {
		panic(fmt.Sprintf("kernels: Attention.Forward: len(p)=%d, want B*H*T*T=%d", len(p), B*H*T*T))
	}
	tt := T * T
	minF := float32(-math.MaxFloat32)
	ParallelFor(B*H, 1, func(lo, hi int) {
		var sp, own *[]float32
		if a.DropP > 0 {
			sp = getScratch(tt)
			defer scratchPool.Put(sp)
		}
		if p == nil {
			own = getScratch(tt)
			defer scratchPool.Put(own)
		}
		// The keys of sequence mb whose mask is not 1: only those get the mask's bias (a key
		// with mask 1 gets none), so a row costs nothing for the mask without padding.
		var masked []int
		mb := -1
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			var ph []float32
			if p != nil {
				ph = p[bh*tt : (bh+1)*tt]
			} else {
				ph = *own
			}
			sgemmSerial(false, true, T, T, D, a.Scale, q.Data[b*q.SB+h*q.SH:], q.ST, k.Data[b*k.SB+h*k.SH:], k.ST, 0, ph, T)
			var m []float32
			if a.Mask != nil {
				m = a.Mask[b*T : (b+1)*T]
				if mb != b {
					mb, masked = b, masked[:0]
					for j, mv := range m {
						if mv != 1 {
							masked = append(masked, j)
						}
					}
				}
			}
			for r := range T {
				row := ph[r*T : r*T+T]
				for _, j := range masked {
					if mv := m[j]; mv == 0 {
						row[j] += minF
					} else {
						row[j] += (1 - mv) * minF
					}
				}
				softmaxRow(row, row)
			}
			src := ph
			if a.DropP > 0 {
				src = *sp
				a.applyDropout(src, ph, uint64(a.Row0+b)*uint64(H*tt)+uint64(h*tt))
			}
			sgemmSerial(false, false, T, D, T, 1, src, T, v.Data[b*v.SB+h*v.SH:], v.ST, 0, out.Data[b*out.SB+h*out.SH:], out.ST)
		}
	})
}

// Backward accumulates dq, dk, dv from dout and the probabilities p saved by Forward:
//
//	dV += Pdᵀ·dO,  dPd = dO·Vᵀ,  dP = dPd ⊙ dropmask,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
//	dQ += Scale·dS·K,  dK += Scale·dSᵀ·Q.
//
// As in Forward, each of the B·H heads is one task on one goroutine.
func (a *Attention) Backward(dq, dk, dv, dout, q, k, v HeadView, p []float32) {
	a.check("Attention.Backward", dq, dk, dv, dout, q, k, v)
	B, H, T, D := a.B, a.H, a.T, a.D
	if len(p) != B*H*T*T {
		panic(fmt.Sprintf("kernels: Attention.Backward: len(p)=%d, want B*H*T*T=%d", len(p), B*H*T*T))
	}
	tt := T * T
	ParallelFor(B*H, 1, func(lo, hi int) {
		ds := getScratch(tt)
		defer scratchPool.Put(ds)
		var pd *[]float32
		if a.DropP > 0 {
			pd = getScratch(tt)
			defer scratchPool.Put(pd)
		}
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			ph := p[bh*tt : (bh+1)*tt]
			base := uint64(a.Row0+b)*uint64(H*tt) + uint64(h*tt)
			src := ph
			if a.DropP > 0 {
				src = *pd
				a.applyDropout(src, ph, base)
			}
			do := dout.Data[b*dout.SB+h*dout.SH:]
			sgemmSerial(true, false, T, D, T, 1, src, T, do, dout.ST, 1, dv.Data[b*dv.SB+h*dv.SH:], dv.ST)
			d := *ds
			sgemmSerial(false, true, T, T, D, 1, do, dout.ST, v.Data[b*v.SB+h*v.SH:], v.ST, 0, d, T)
			for r := range T {
				row := d[r*T : r*T+T]
				if a.DropP > 0 {
					for j := range row {
						row[j] *= a.dropScale(base + uint64(r*T+j))
					}
				}
				softmaxBackwardRow(row, row, ph[r*T:r*T+T], true)
			}
			sgemmSerial(false, false, T, D, T, a.Scale, d, T, k.Data[b*k.SB+h*k.SH:], k.ST, 1, dq.Data[b*dq.SB+h*dq.SH:], dq.ST)
			sgemmSerial(true, false, T, D, T, a.Scale, d, T, q.Data[b*q.SB+h*q.SH:], q.ST, 1, dk.Data[b*dk.SB+h*dk.SH:], dk.ST)
		}
	})
}

// sgemmSerial is Sgemm on the calling goroutine only.
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("Sgemm", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemmParallel(gemmActive.Load(), 1, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
