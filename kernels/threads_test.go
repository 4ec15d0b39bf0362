package kernels

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestParallelForConcurrentCallers runs nested ParallelFor calls from several goroutines at
// once, so that spinning helpers meet jobs published by different callers: every index must be
// visited exactly once and no call may hang.
func TestParallelForConcurrentCallers(t *testing.T) {
	old := int(threadCount.Load())
	defer SetThreads(old)
	SetThreads(4)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 300 {
				n := 1 + (g*131+r*17)%257
				hits := make([]atomic.Int32, n)
				ParallelFor(n, 3, func(lo, hi int) {
					ParallelFor(hi-lo, 1, func(l2, h2 int) {
						for i := lo + l2; i < lo+h2; i++ {
							hits[i].Add(1)
						}
					})
				})
				for i := range hits {
					if h := hits[i].Load(); h != 1 {
						errs <- fmt.Errorf("caller %d round %d: index %d of %d visited %d times", g, r, i, n, h)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestGemmGridOneSequence checks the split of one 128-token sequence's products on two
// threads: a column cut (the row cut leaves one part a partial strip more and makes both read
// all of B), and a result bit-identical to one thread's.
func TestGemmGridOneSequence(t *testing.T) {
	kern := gemmActive.Load()
	for _, s := range [][3]int{{128, 768, 768}, {128, 768, 3072}, {128, 3072, 768}} {
		m, k, n := s[0], s[1], s[2]
		if tm, tn := gemmGrid(kern, 2, m, n, k, true); kern.mr == 12 && (tm != 1 || tn != 2) {
			t.Errorf("%dx%dx%d packed on 2 threads: grid %dx%d, want 1x2", m, k, n, tm, tn)
		}
		rng := rand.New(rand.NewPCG(3, uint64(n)))
		x, w := randSlice(rng, m*k), randSlice(rng, k*n)
		p := PackB(true, k, n, w, k)
		one, two := make([]float32, m*n), make([]float32, m*n)
		gemmParallel(kern, 1, false, true, m, n, k, 1, x, k, nil, k, 0, one, n, p)
		gemmParallel(kern, 2, false, true, m, n, k, 1, x, k, nil, k, 0, two, n, p)
		for i := range one {
			if one[i] != two[i] {
				t.Fatalf("%dx%dx%d: c[%d] = %v on 2 threads, %v on 1", m, k, n, i, two[i], one[i])
			}
		}
	}
	// A 1024-row product is cut by rows: every part then packs fewer rows of A.
	if tm, tn := gemmGrid(kern, 2, 1024, 768, 768, true); tm != 2 || tn != 1 {
		t.Errorf("1024x768x768 packed on 2 threads: grid %dx%d, want 2x1", tm, tn)
	}
}

// BenchmarkRunChunksHandover times back-to-back two-chunk jobs of about 20 µs each, the
// pattern of one encoder pass: with helpers spinning between jobs, a job costs its work plus
// well under a microsecond; with parked helpers, about the wake-up latency of a goroutine.
func BenchmarkRunChunksHandover(b *testing.B) {
	old := int(threadCount.Load())
	defer SetThreads(old)
	SetThreads(2)
	var sink [2]float32
	work := func(i int) {
		x := float32(i)
		for range 20000 {
			x = x*0.999 + 1
		}
		sink[i] = x
	}
	for b.Loop() {
		runChunks(2, work)
	}
}
