package kernels

import (
	"sync"
	"time"
)

// peakLoop is one FMA calibration loop: run(n) issues n iterations of flops FLOP each on
// independent accumulators, so its rate is the core's FMA throughput for that vector width.
type peakLoop struct {
	name  string
	flops int
	run   func(n int)
}

// PeakRate is the measured fp32 FMA throughput of one instruction set on this machine.
type PeakRate struct {
	ISA string `json:"isa"`
	// GFLOPS is the rate of threads goroutines each running the loop at once, in 1e9 FLOP/s:
	// cores x FMA pipes x lanes x 2 x clock, as the machine delivers it right now.
	GFLOPS float64 `json:"gflops"`
	// PerThread is the best single goroutine's rate.
	PerThread float64 `json:"gflops_per_thread"`
	Threads   int     `json:"threads"`
}

// MeasurePeak times each FMA calibration loop this CPU runs (AVX2+FMA, AVX-512F) on threads
// goroutines (threads <= 0: Threads()) for about dur each and returns the rates: the fp32 peak
// that GEMM rates are compared with. The loop keeps 12 independent accumulators, more than FMA
// latency x pipes on current x86 cores, so it measures throughput, not latency. The best of
// five short windows is reported, which on a shared machine is the closest to the idle rate.
func MeasurePeak(threads int, dur time.Duration) []PeakRate {
	if threads <= 0 {
		threads = Threads()
	}
	var out []PeakRate
	for _, l := range peakLoops() {
		const n = 1 << 16
		l.run(n) // warm the unit (wide vectors may start at a lower clock)
		best, bestOne := 0.0, 0.0
		for range 5 {
			var wg sync.WaitGroup
			rates := make([]float64, threads)
			for t := range threads {
				wg.Add(1)
				go func() {
					defer wg.Done()
					iters := 0
					t0 := time.Now()
					for time.Since(t0) < dur/5 {
						l.run(n)
						iters += n
					}
					rates[t] = float64(iters) * float64(l.flops) / time.Since(t0).Seconds() / 1e9
				}()
			}
			wg.Wait()
			sum := 0.0
			for _, r := range rates {
				sum += r
				bestOne = max(bestOne, r)
			}
			best = max(best, sum)
		}
		out = append(out, PeakRate{ISA: l.name, GFLOPS: best, PerThread: bestOne, Threads: threads})
	}
	return out
}
