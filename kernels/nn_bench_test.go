package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// BERT-base shapes: batch 8 × 128 tokens, hidden 768, 12 heads of 64, intermediate 3072.
const (
	benchB, benchT, benchH, benchD = 8, 128, 12, 64
	benchC                         = benchH * benchD
)

func BenchmarkAttentionForward(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := benchB * benchT * benchC
	q, k, v, out := randVec(rng, n), randVec(rng, n), randVec(rng, n), make([]float32, n)
	p := make([]float32, benchB*benchH*benchT*benchT)
	a := &Attention{B: benchB, H: benchH, T: benchT, D: benchD, Scale: 0.125}
	view := func(d []float32) HeadView { return HeadView{Data: d, SB: benchT * benchC, SH: benchD, ST: benchC} }
	b.ReportAllocs()
	for b.Loop() {
		a.Forward(view(out), view(q), view(k), view(v), p)
	}
	flops := 4.0 * benchB * benchH * benchT * benchT * benchD
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkAttentionBackward(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := benchB * benchT * benchC
	q, k, v, out := randVec(rng, n), randVec(rng, n), randVec(rng, n), make([]float32, n)
	dq, dk, dv := make([]float32, n), make([]float32, n), make([]float32, n)
	p := make([]float32, benchB*benchH*benchT*benchT)
	a := &Attention{B: benchB, H: benchH, T: benchT, D: benchD, Scale: 0.125}
	view := func(d []float32) HeadView { return HeadView{Data: d, SB: benchT * benchC, SH: benchD, ST: benchC} }
	a.Forward(view(out), view(q), view(k), view(v), p)
	b.ReportAllocs()
	for b.Loop() {
		a.Backward(view(dq), view(dk), view(dv), view(out), view(q), view(k), view(v), p)
	}
	flops := 8.0 * benchB * benchH * benchT * benchT * benchD
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkLayerNorm(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := benchB * benchT
	x, g, be := randVec(rng, n*benchC), randVec(rng, benchC), randVec(rng, benchC)
	y, mean, rstd := make([]float32, n*benchC), make([]float32, n), make([]float32, n)
	b.SetBytes(int64(8 * n * benchC))
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			LayerNormForward(y, mean, rstd, x, g, be, n, benchC, 1e-12)
		}
	})
	dx, dg, db := make([]float32, n*benchC), make([]float32, benchC), make([]float32, benchC)
	b.Run("backward", func(b *testing.B) {
		b.SetBytes(int64(12 * n * benchC))
		for b.Loop() {
			LayerNormBackward(dx, dg, db, y, x, mean, rstd, g, n, benchC)
		}
	})
}

func BenchmarkGelu(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	n := benchB * benchT * 4 * benchC
	x, y, dx := randVec(rng, n), make([]float32, n), make([]float32, n)
	b.Run("forward", func(b *testing.B) {
		b.SetBytes(int64(8 * n))
		for b.Loop() {
			GeluForward(y, x)
		}
	})
	b.Run("backward", func(b *testing.B) {
		b.SetBytes(int64(12 * n))
		for b.Loop() {
			GeluBackward(dx, y, x)
		}
	})
}

// BenchmarkAdamW110M is one AdamW step over BERT-base's 110M parameters (4 arrays of 440 MB
// touched: 16 bytes read and 12 written per parameter).
func BenchmarkAdamW110M(b *testing.B) {
	const n = 110_000_000
	p, g, m, v := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(math.Sin(float64(i)))
	}
	hp := AdamParams{LR: 5e-5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}
	b.SetBytes(28 * n)
	for b.Loop() {
		hp.Step++
		AdamStep(p, g, m, v, hp)
	}
}
