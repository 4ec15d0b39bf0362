package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestSgemmPackedMatchesSgemm checks SgemmPacked against Sgemm on the unpacked operand, on every
// path and thread count, at awkward sizes (edges of every micro-tile, k across several kc
// slices). With beta 0 or 1 the two run the same arithmetic in the same order, so they must
// agree bit for bit; the C grid they split into may differ, which only matters for the rounding
// of beta·C with other betas (a fused or separate multiply-add at tile edges).
func TestSgemmPackedMatchesSgemm(t *testing.T) {
	forEachGemmConfig(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, sz := range [][3]int{{1, 1, 1}, {7, 13, 5}, {13, 33, 300}, {25, 65, 513}, {128, 96, 64}, {50, 1027, 7}} {
			m, n, k := sz[0], sz[1], sz[2]
			for _, transB := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					ldb := n
					if transB {
						ldb = k + 3
					} else {
						ldb = n + 2
					}
					rows := k
					if transB {
						rows = n
					}
					a, b := randSlice(rng, m*(k+1)), randSlice(rng, rows*ldb)
					c0 := randSlice(rng, m*(n+5))
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					Sgemm(false, transB, m, n, k, 0.75, a, k+1, b, ldb, beta, want, n+5)
					p := PackB(transB, k, n, b, ldb)
					SgemmPacked(m, n, k, 0.75, a, k+1, p, beta, got, n+5)
					for i := range want {
						if want[i] != got[i] {
							t.Fatalf("%s: m=%d n=%d k=%d transB=%t beta=%v: c[%d]=%v, Sgemm gives %v", GemmPath(), m, n, k, transB, beta, i, got[i], want[i])
						}
					}
				}
			}
		}
	})
}

// TestSgemmPackedBiasMatchesSeparatePasses checks the fused epilogue: bias copied into each block
// and GELU applied to it there must give, bit for bit, the bias copied into every row, then
// SgemmPacked with beta 1, then GeluForward over all of C (n a multiple of 8, GELU's vector
// width), on every path and thread count, at sizes with partial tiles and several kc slices;
// and with the micro-kernel changed since packing (the fallback).
func TestSgemmPackedBiasMatchesSeparatePasses(t *testing.T) {
	forEachGemmConfig(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, sz := range [][3]int{{1, 8, 1}, {7, 40, 5}, {13, 48, 300}, {25, 520, 513}, {128, 96, 64}} {
			m, n, k := sz[0], sz[1], sz[2]
			for _, gelu := range []bool{false, true} {
				a, w, bias := randSlice(rng, m*(k+1)), randSlice(rng, n*k), randSlice(rng, n)
				want, got := randSlice(rng, m*(n+5)), randSlice(rng, m*(n+5))
				p := PackB(true, k, n, w, k)
				for i := range m {
					copy(want[i*(n+5):i*(n+5)+n], bias)
				}
				SgemmPacked(m, n, k, 1, a, k+1, p, 1, want, n+5)
				if gelu {
					for i := range m {
						row := want[i*(n+5) : i*(n+5)+n]
						GeluForward(row, row)
					}
				}
				SgemmPackedBias(m, n, k, a, k+1, p, bias, gelu, got, n+5)
				for i := range m {
					for j := range n {
						if x, y := got[i*(n+5)+j], want[i*(n+5)+j]; x != y {
							t.Fatalf("%s: m=%d n=%d k=%d gelu=%t: c[%d][%d]=%v, separate passes give %v", GemmPath(), m, n, k, gelu, i, j, x, y)
						}
					}
				}
			}
		}
	})
}

// TestSgemmPackedFallback checks that a PackedB made under one micro-kernel still gives the right
// product after the path changes.
func TestSgemmPackedFallback(t *testing.T) {
	paths := gemmPaths()
	if len(paths) < 2 {
		t.Skip("one gemm path")
	}
	old := GemmPath()
	defer SetGemmPath(old)
	rng := rand.New(rand.NewPCG(5, 6))
	m, n, k := 9, 40, 70
	a, b := randSlice(rng, m*k), randSlice(rng, n*k)
	SetGemmPath(paths[0])
	p := PackB(true, k, n, b, k)
	SetGemmPath(paths[len(paths)-1])
	want, got := make([]float32, m*n), make([]float32, m*n)
	Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, want, n)
	SgemmPacked(m, n, k, 1, a, k, p, 0, got, n)
	for i := range want {
		if want[i] != got[i] {
			t.Fatalf("c[%d]=%v, want %v", i, got[i], want[i])
		}
	}
}

// BenchmarkSgemmPacked times the BERT-base linear layers (y = x·Wᵀ, W (out, in)) with W packed
// once, beside Sgemm repacking it on every call.
//
// The 128-row shapes are one 128-token sequence (the latency case), on one thread and on all.
func BenchmarkSgemmPacked(b *testing.B) {
	for _, s := range [][3]int{{128, 768, 768}, {128, 768, 3072}, {128, 3072, 768}} {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 1))
		x, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		p := PackB(true, k, n, w, k)
		for _, t := range []int{1, Threads()} {
			b.Run(fmt.Sprintf("%s/packed/threads%d/%dx%dx%d", GemmPath(), t, m, k, n), func(b *testing.B) {
				old := int(threadCount.Load())
				defer SetThreads(old)
				SetThreads(t)
				for b.Loop() {
					SgemmPacked(m, n, k, 1, x, k, p, 0, c, n)
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
	for _, s := range bertGemmShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 1))
		x, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		p := PackB(true, k, n, w, k)
		b.Run(fmt.Sprintf("%s/packed/%dx%dx%d", GemmPath(), m, k, n), func(b *testing.B) {
			for b.Loop() {
				SgemmPacked(m, n, k, 1, x, k, p, 0, c, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("%s/sgemm/%dx%dx%d", GemmPath(), m, k, n), func(b *testing.B) {
			for b.Loop() {
				Sgemm(false, true, m, n, k, 1, x, k, w, k, 0, c, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
