package tensor

import (
	"fmt"
	"math/rand/v2"
)

// RNG is a seeded random source for initialisers; the same seed gives the same values on every
// machine.
type RNG struct{ r *rand.Rand }

// NewRNG returns a generator seeded with seed (PCG).
func NewRNG(seed uint64) *RNG { return &RNG{rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))} }

// Float32 returns a uniform value in [0, 1).
func (g *RNG) Float32() float32 { return g.r.Float32() }

// Uint64 returns a uniform 64-bit value.
func (g *RNG) Uint64() uint64 { return g.r.Uint64() }

// IntN returns a uniform value in [0, n).
func (g *RNG) IntN(n int) int { return g.r.IntN(n) }

// Norm returns a standard normal value.
func (g *RNG) Norm() float64 { return g.r.NormFloat64() }

// Perm returns a random permutation of [0, n).
func (g *RNG) Perm(n int) []int { return g.r.Perm(n) }

func (t *Tensor) fill(fn func() float32) {
	if t.IsContiguous() {
		d := t.Data()
		for i := range d {
			d[i] = fn()
		}
		return
	}
	t.each(func(j int) { t.st.F32[j] = fn() })
}

// Fill sets every element to v.
func (t *Tensor) Fill(v float32) *Tensor { t.fill(func() float32 { return v }); return t }

// Zero sets every element to 0.
func (t *Tensor) Zero() *Tensor {
	if t.IsContiguous() {
		clear(t.Data())
		return t
	}
	return t.Fill(0)
}

// FillNormal draws every element from N(mean, std²).
func (t *Tensor) FillNormal(g *RNG, mean, std float64) *Tensor {
	t.fill(func() float32 { return float32(mean + std*g.Norm()) })
	return t
}

// FillTruncNormal draws from N(mean, std²) restricted to [lo, hi] by rejection, as PyTorch's
// trunc_normal_ (whose bounds are absolute values, not multiples of std).
func (t *Tensor) FillTruncNormal(g *RNG, mean, std, lo, hi float64) *Tensor {
	if !(lo < hi) || std <= 0 || mean+6*std < lo || mean-6*std > hi {
		panic(fmt.Sprintf("tensor: FillTruncNormal(mean=%g, std=%g, lo=%g, hi=%g): empty or degenerate range", mean, std, lo, hi))
	}
	t.fill(func() float32 {
		for {
			v := mean + std*g.Norm()
			if v >= lo && v <= hi {
				return float32(v)
			}
		}
	})
	return t
}

// FillUniform draws every element uniformly from [lo, hi).
func (t *Tensor) FillUniform(g *RNG, lo, hi float64) *Tensor {
	t.fill(func() float32 { return float32(lo + (hi-lo)*g.r.Float64()) })
	return t
}

// Randn returns a new tensor of N(0, std²) values.
func Randn(g *RNG, std float64, shape ...int) *Tensor { return New(shape...).FillNormal(g, 0, std) }
