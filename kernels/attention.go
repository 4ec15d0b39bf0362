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

// applyDropout writes dst = src ⊙ dropout mask for the (H, T, T) block of sequence b.
func (a *Attention) applyDropout(dst, src []float32, b int) {
	base := uint64(a.Row0+b) * uint64(a.H*a.T*a.T)
	for i, v := range src {
		dst[i] = v * a.dropScale(base+uint64(i))
	}
}

// Forward computes out = softmax(Scale·Q·Kᵀ + maskbias)·V per (b, h), writing the
// probabilities P (B, H, T, T, contiguous, before dropout) for Backward.
func (a *Attention) Forward(out, q, k, v HeadView, p []float32) {
	a.check("Attention.Forward", out, q, k, v)
	B, H, T, D := a.B, a.H, a.T, a.D
	if len(p) != B*H*T*T {
		panic(fmt.Sprintf("kernels: Attention.Forward: len(p)=%d, want B*H*T*T=%d", len(p), B*H*T*T))
	}
	hh := H * T * T
	minF := float32(-math.MaxFloat32)
	var sp *[]float32
	if a.DropP > 0 {
		sp = getScratch(hh)
		defer scratchPool.Put(sp)
	}
	for b := 0; b < B; b++ {
		pb := p[b*hh : (b+1)*hh]
		SgemmStrided(false, true, T, T, D, a.Scale,
			q.Data[b*q.SB:], q.ST, q.SH, k.Data[b*k.SB:], k.ST, k.SH, 0, pb, T, T*T, H)
		var m []float32
		if a.Mask != nil {
			m = a.Mask[b*T : (b+1)*T]
		}
		ParallelFor(H*T, max(1, 4096/max(T, 1)), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := pb[r*T : r*T+T]
				if m != nil {
					for j, mv := range m {
						if mv == 0 {
							row[j] += minF
						} else if mv != 1 {
							row[j] += (1 - mv) * minF
						}
					}
				}
				softmaxRow(row, row)
			}
		})
		src := pb
		if a.DropP > 0 {
			src = *sp
			a.applyDropout(src, pb, b)
		}
		SgemmStrided(false, false, T, D, T, 1, src, T, T*T,
			v.Data[b*v.SB:], v.ST, v.SH, 0, out.Data[b*out.SB:], out.ST, out.SH, H)
	}
}

// Backward accumulates dq, dk, dv from dout and the probabilities p saved by Forward:
//
//	dV += Pdᵀ·dO,  dPd = dO·Vᵀ,  dP = dPd ⊙ dropmask,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
//	dQ += Scale·dS·K,  dK += Scale·dSᵀ·Q.
func (a *Attention) Backward(dq, dk, dv, dout, q, k, v HeadView, p []float32) {
	a.check("Attention.Backward", dq, dk, dv, dout, q, k, v)
	B, H, T, D := a.B, a.H, a.T, a.D
	if len(p) != B*H*T*T {
		panic(fmt.Sprintf("kernels: Attention.Backward: len(p)=%d, want B*H*T*T=%d", len(p), B*H*T*T))
	}
	hh := H * T * T
	ds := getScratch(hh)
	defer scratchPool.Put(ds)
	var pd *[]float32
	if a.DropP > 0 {
		pd = getScratch(hh)
		defer scratchPool.Put(pd)
	}
	for b := 0; b < B; b++ {
		pb := p[b*hh : (b+1)*hh]
		src := pb
		if a.DropP > 0 {
			src = *pd
			a.applyDropout(src, pb, b)
		}
		SgemmStrided(true, false, T, D, T, 1, src, T, T*T,
			dout.Data[b*dout.SB:], dout.ST, dout.SH, 1, dv.Data[b*dv.SB:], dv.ST, dv.SH, H)
		d := *ds
		SgemmStrided(false, true, T, T, D, 1, dout.Data[b*dout.SB:], dout.ST, dout.SH,
			v.Data[b*v.SB:], v.ST, v.SH, 0, d, T, T*T, H)
		base := uint64(a.Row0+b) * uint64(hh)
		ParallelFor(H*T, max(1, 4096/max(T, 1)), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				row := d[r*T : r*T+T]
				if a.DropP > 0 {
					for j := range row {
						row[j] *= a.dropScale(base + uint64(r*T+j))
					}
				}
				softmaxBackwardRow(row, row, pb[r*T:r*T+T], true)
			}
		})
		SgemmStrided(false, false, T, D, T, a.Scale, d, T, T*T,
			k.Data[b*k.SB:], k.ST, k.SH, 1, dq.Data[b*dq.SB:], dq.ST, dq.SH, H)
		SgemmStrided(true, false, T, D, T, a.Scale, d, T, T*T,
			q.Data[b*q.SB:], q.ST, q.SH, 1, dk.Data[b*dk.SB:], dk.ST, dk.SH, H)
	}
}
