package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	done   atomic.Int64 // chunks finished
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
		j.done.Add(1)
		j.wg.Done()
	}
}

// Waking a parked goroutine costs a futex call and, on a virtual machine, about 100 µs before
// it runs (TestHelperStartLatency measures it): more than a fifth of a 128 x 768 x 768 product.
// So the helpers, after a job, watch spinJob for spinFor before parking on helperJobs again, and
// the caller of runChunks watches its job's done counter for as long before it sleeps on the
// WaitGroup. The back-to-back calls of one encoder pass then hand work over in well under a
// microsecond; an idle process spins spinFor once and then sleeps.
const spinFor = 200 * time.Microsecond

var (
	helperJobs    = make(chan *parJob, 256)
	helperMu      sync.Mutex
	helperStarted atomic.Int64
	spinJob       atomic.Pointer[parJob] // the latest job, for helpers that are spinning
	spinning      atomic.Int64           // helpers spinning on spinJob now
)

// ensureHelpers starts helper goroutines until n of them exist.
func ensureHelpers(n int) {
	if int(helperStarted.Load()) >= n {
		return
	}
	helperMu.Lock()
	for int(helperStarted.Load()) < n {
		go helper()
		helperStarted.Add(1)
	}
	helperMu.Unlock()
}

// helper runs jobs: those sent on helperJobs and, for spinFor after each, those published on
// spinJob. Running a job whose chunks are all claimed returns at once, so a job seen both ways
// is harmless.
func helper() {
	for j := range helperJobs {
		for j != nil {
			j.run()
			j = spinForJob(j)
		}
	}
}

// spinForJob waits up to spinFor for a job other than last on spinJob and returns it, or nil.
// It spins only while the other helpers leave a processor for the caller (GOMAXPROCS > spinners
// + 1), so that spinning never keeps the goroutine that publishes the work from running.
func spinForJob(last *parJob) *parJob {
	if spinning.Add(1) >= int64(runtime.GOMAXPROCS(0)) {
		spinning.Add(-1)
		return nil
	}
	defer spinning.Add(-1)
	t0 := time.Now()
	for n := 0; ; n++ {
		if j := spinJob.Load(); j != nil && j != last && j.next.Load() < j.chunks {
			return j
		}
		if n&63 == 63 && time.Since(t0) > spinFor {
			return nil
		}
	}
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
	spinJob.Store(j)
	for range chunks - 1 - int(spinning.Load()) {
		select {
		case helperJobs <- j:
		default: // queue full: the caller does the work
		}
	}
	j.run()
	t0 := time.Now()
	for n := 0; j.done.Load() < j.chunks; n++ {
		if n&63 == 63 && time.Since(t0) > spinFor {
			break
		}
	}
	j.wg.Wait()
	spinJob.CompareAndSwap(j, nil)
}

// elemGrain is the ParallelFor grain of the elementwise kernels (activations, dropout masks,
// vector ops): enough elements that a goroutine's work outweighs starting it.
const elemGrain = 1 << 14
