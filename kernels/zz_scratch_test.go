package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func BenchmarkScratchBlock(b *testing.B) {
	base := gemmActive.Load()
	defer gemmActive.Store(base)
	for _, s := range [][3]int{{128, 768, 768}, {1024, 768, 3072}, {1024, 3072, 768}} {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 1))
		x, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		for _, kc := range []int{192, 256, 384, 768} {
			for _, mc := range []int{96, 192, 384} {
				kern := *base
				kern.kc, kern.mc = kc, mc
				gemmActive.Store(&kern)
				p := PackB(true, k, n, w, k)
				b.Run(fmt.Sprintf("kc%d/mc%d/%dx%dx%d", kc, mc, m, k, n), func(b *testing.B) {
					SetThreads(1)
					defer SetThreads(0)
					for b.Loop() {
						SgemmPacked(m, n, k, 1, x, k, p, 0, c, n)
					}
					b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
