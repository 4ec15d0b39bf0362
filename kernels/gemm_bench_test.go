package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// bertGemmShapes are the BERT-base products of one 1024-token batch (m×k·k×n): the attention
// projections (768→768), the feed-forward up (768→3072) and down (3072→768) projections.
var bertGemmShapes = [][3]int{{1024, 768, 768}, {1024, 768, 3072}, {1024, 3072, 768}}

// BenchmarkSgemm times C = A·B on the BERT shapes for every path this CPU supports, with
// Threads() goroutines (set GOMAXPROCS or -cpu to change it).
func BenchmarkSgemm(b *testing.B) {
	old := GemmPath()
	defer SetGemmPath(old)
	for _, p := range gemmPaths() {
		for _, s := range bertGemmShapes {
			m, k, n := s[0], s[1], s[2]
			b.Run(fmt.Sprintf("%s/%dx%dx%d", p, m, k, n), func(b *testing.B) {
				if err := SetGemmPath(p); err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 1))
				x, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
				b.ReportAllocs()
				for b.Loop() {
					Sgemm(false, false, m, n, k, 1, x, k, w, n, 0, c, n)
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkSgemmStrided times the attention scores of one BERT-base layer on a batch of 8
// sequences of 128 tokens: 8*12 = 96 products Q·Kᵀ of (128×64)·(64×128).
func BenchmarkSgemmStrided(b *testing.B) {
	const batch, heads, T, D = 8, 12, 128, 64
	old := GemmPath()
	defer SetGemmPath(old)
	for _, p := range gemmPaths() {
		b.Run(fmt.Sprintf("%s/attention-%dx%dx(%dx%dx%d)", p, batch, heads, T, D, T), func(b *testing.B) {
			if err := SetGemmPath(p); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(2, 2))
			q, kk := randSlice(rng, batch*heads*T*D), randSlice(rng, batch*heads*T*D)
			s := make([]float32, batch*heads*T*T)
			b.ReportAllocs()
			for b.Loop() {
				SgemmStrided(false, true, T, T, D, 0.125, q, D, T*D, kk, D, T*D, 0, s, T, T*T, batch*heads)
			}
			b.ReportMetric(2*float64(batch*heads*T*T*D)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGonumSgemm times gonum's blas32.Gemm (its default pure-Go implementation) on the
// same shapes as BenchmarkSgemm, the baseline the generic path must match.
func BenchmarkGonumSgemm(b *testing.B) {
	for _, s := range bertGemmShapes {
		m, k, n := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
			A := blas32.General{Rows: m, Cols: k, Stride: k, Data: x}
			B := blas32.General{Rows: k, Cols: n, Stride: n, Data: w}
			C := blas32.General{Rows: m, Cols: n, Stride: n, Data: c}
			b.ReportAllocs()
			for b.Loop() {
				blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, A, B, 0, C)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemmMicroKernel times the micro-kernel alone on L1-resident packed strips
// (kc=256, C tile accumulated with beta 1), on one goroutine: the ceiling of the blocked product.
func BenchmarkSgemmMicroKernel(b *testing.B) {
	for _, kern := range gemmKernels {
		b.Run(kern.name, func(b *testing.B) {
			const kc = 256
			rng := rand.New(rand.NewPCG(3, 3))
			ap, bp := randSlice(rng, kern.mr*kc), randSlice(rng, kern.nr*kc)
			c := make([]float32, kern.mr*kern.nr)
			for b.Loop() {
				kern.micro(kc, ap, bp, c, kern.nr, 1, 1)
			}
			b.ReportMetric(2*float64(kern.mr*kern.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
