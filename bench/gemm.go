package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/mtbert/mtbert/kernels"
)

// GemmResult is the report of one SGEMM workload C = A·B with A m×k and B k×n.
type GemmResult struct {
	M          int     `json:"m"`
	K          int     `json:"k"`
	N          int     `json:"n"`
	Threads    int     `json:"threads"`
	Path       string  `json:"path"`        // micro-kernel in use (kernels.GemmPath)
	GFLOPS     float64 `json:"gflops"`      // 2*m*k*n / median run time, in 1e9 FLOP/s
	GFLOPSBest float64 `json:"gflops_best"` // the same for the fastest run
	Runs       int     `json:"runs"`
	MaxAbsErr  float64 `json:"max_abs_err"` // max |C - C64| over the sampled entries
}

// gemmSamples is how many entries of C are checked against the float64 reference.
const gemmSamples = 256

// Gemm times kernels.Sgemm on C = A·B with A m×k and B k×n filled from a seeded normal
// distribution, on threads goroutines (threads <= 0: kernels' default). After one warm-up it
// times runs products and reports the median and best rate, then compares gemmSamples entries
// of C (chosen by a seeded generator) with a float64 dot product and reports the largest error.
// The thread count is restored afterwards.
func Gemm(m, k, n, threads, runs int) (GemmResult, error) {
	if m <= 0 || k <= 0 || n <= 0 {
		return GemmResult{}, fmt.Errorf("bench: Gemm: dimensions must be positive, got m=%d k=%d n=%d", m, k, n)
	}
	if runs <= 0 {
		return GemmResult{}, fmt.Errorf("bench: Gemm: runs must be positive, got %d", runs)
	}
	old := kernels.Threads()
	kernels.SetThreads(threads)
	defer kernels.SetThreads(old)

	rng := rand.New(rand.NewPCG(uint64(m), uint64(k)<<32|uint64(n)))
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	c := make([]float32, m*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	kernels.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n) // warm-up
	times := make([]float64, runs)
	for r := range times {
		t0 := time.Now()
		kernels.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
		times[r] = time.Since(t0).Seconds()
	}
	slices.Sort(times)
	flops := 2 * float64(m) * float64(k) * float64(n)
	res := GemmResult{
		M: m, K: k, N: n, Threads: kernels.Threads(), Path: kernels.GemmPath(), Runs: runs,
		GFLOPS:     flops / times[runs/2] / 1e9,
		GFLOPSBest: flops / times[0] / 1e9,
	}
	for range gemmSamples {
		i, j := rng.IntN(m), rng.IntN(n)
		var want float64
		for p := range k {
			want += float64(a[i*k+p]) * float64(b[p*n+j])
		}
		res.MaxAbsErr = math.Max(res.MaxAbsErr, math.Abs(float64(c[i*n+j])-want))
	}
	return res, nil
}
