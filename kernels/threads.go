package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// threadCount is the number of goroutines the CPU kernels may use; 0 means runtime.GOMAXPROCS(0).
var threadCount atomic.Int64

// SetThreads sets how many goroutines the CPU kernels (Sgemm, ParallelFor, ...) may use at once.
// n <= 0 restores the default, runtime.GOMAXPROCS(0) read at each call.
func SetThreads(n int) {
	if n < 0 {
		n = 0
	}
	threadCount.Store(int64(n))
}

// Threads returns the number of goroutines the CPU kernels may use (at least 1).
func Threads() int {
	if n := int(threadCount.Load()); n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0))
}

// ParallelFor calls fn on disjoint ranges [lo,hi) that together cover [0,n), using up to
// Threads() goroutines (the caller's included). Each range but possibly the last holds at least
// grain indices; when n < 2*grain or Threads() == 1, fn(0, n) runs on the caller's goroutine and
// no goroutine is involved. fn must be safe to run concurrently on disjoint ranges.
//
// Helpers are long-lived goroutines fed through a channel, so a call allocates only one small
// job record. A call never waits for a range that nobody has started: whatever the helpers have
// not claimed the caller runs itself, so nested calls (ParallelFor inside fn) cannot deadlock.
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	chunks := min(Threads(), n/grain)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	runChunks(chunks, func(i int) { fn(n*i/chunks, n*(i+1)/chunks) })
}

// parJob is one parallel call: chunks indices 0..chunks-1 claimed through next.
type parJob struct {
	fn     func(i int)
	chunks int64
	next   atomic.Int64
	wg     sync.WaitGroup
}

// run claims and runs chunks until none is left.
func (j *parJob) run() {
	for {
		i := j.next.Add(1) - 1
		if i >= j.chunks {
			return
		}
		j.fn(int(i))
		j.wg.Done()
	}
}

var (
	helperJobs    = make(chan *parJob, 256)
	helperMu      sync.Mutex
	helperStarted atomic.Int64
)

// ensureHelpers starts helper goroutines until n of them exist.
func ensureHelpers(n int) {
	if int(helperStarted.Load()) >= n {
		return
	}
	helperMu.Lock()
	for int(helperStarted.Load()) < n {
		go func() {
			for j := range helperJobs {
				j.run()
			}
		}()
		helperStarted.Add(1)
	}
	helperMu.Unlock()
}

// runChunks runs fn(0..chunks-1), each exactly once, on the caller and up to chunks-1 helpers,
// and returns when all have finished.
func runChunks(chunks int, fn func(i int)) {
	if chunks <= 1 {
		if chunks == 1 {
			fn(0)
		}
		return
	}
	ensureHelpers(chunks - 1)
	j := &parJob{fn: fn, chunks: int64(chunks)}
	j.wg.Add(chunks)
	for range chunks - 1 {
		select {
		case helperJobs <- j:
		default: // queue full: the caller does the work
		}
	}
	j.run()
	j.wg.Wait()
}

// elemGrain is the ParallelFor grain of the elementwise kernels (activations, dropout masks,
// vector ops): enough elements that a goroutine's work outweighs starting it.
const elemGrain = 1 << 14
