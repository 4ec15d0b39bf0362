package tensor

import (
	"math/bits"
	"sync"
)

// Pool recycles host float32 buffers, so that a training step that asks for the same shapes
// every step allocates nothing once warm. It is safe for concurrent use.
//
// Buffers are kept in size classes (sixteen per doubling, so at most 12.5% of a buffer is
// slack), which lets batches of varying sequence length share them. The pool never holds more
// than twice the most it has had handed out at once: beyond that, returned buffers are left to
// the garbage collector, so memory stays bounded whatever sequence of shapes a run asks for.
type Pool struct {
	mu       sync.Mutex
	free     map[int][][]float32 // by class capacity
	live     int                 // elements handed out and not yet returned
	peakLive int
	retained int // elements in free
	// Allocs counts the buffers the pool had to allocate (misses).
	Allocs int
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{free: map[int][][]float32{}} }

// sizeClass rounds n up to its class: a multiple of 1/16 of the power of two at or above it.
func sizeClass(n int) int {
	if n <= 64 {
		return 64
	}
	step := 1 << (bits.Len(uint(n-1)) - 4)
	return (n + step - 1) / step * step
}

// Get returns a zeroed tensor of the given shape whose buffer comes from the pool.
func (p *Pool) Get(shape ...int) *Tensor { return p.get(true, shape) }

// GetUninit is Get without the zeroing: the contents are whatever the buffer last held (zero
// when it is new). For outputs that are overwritten whole before they are read.
func (p *Pool) GetUninit(shape ...int) *Tensor { return p.get(false, shape) }

func (p *Pool) get(zero bool, shape []int) *Tensor {
	n := Numel(shape)
	c := sizeClass(n)
	p.mu.Lock()
	var buf []float32
	if l := p.free[c]; len(l) > 0 {
		buf = l[len(l)-1]
		l[len(l)-1] = nil
		p.free[c] = l[:len(l)-1]
		p.retained -= c
	} else {
		p.Allocs++
	}
	p.live += c
	p.peakLive = max(p.peakLive, p.live)
	p.mu.Unlock()
	if buf == nil {
		buf = make([]float32, n, c)
	} else {
		buf = buf[:n]
		if zero {
			clear(buf)
		}
	}
	return FromSlice(buf, shape...)
}

// Put returns t's storage to the pool. t and every view of it must not be used afterwards;
// putting the same tensor twice is harmless.
func (p *Pool) Put(t *Tensor) {
	if t == nil || t.st.F32 == nil {
		return
	}
	buf := t.st.F32
	t.st.F32 = nil
	c := cap(buf)
	if c != sizeClass(c) {
		return // not one of ours
	}
	p.mu.Lock()
	p.live -= c
	if p.retained+c <= 2*p.peakLive {
		p.free[c] = append(p.free[c], buf[:c])
		p.retained += c
	}
	p.mu.Unlock()
}

// PeakLive returns the largest number of float32 elements (in size classes) handed out and not
// yet returned at any one time.
func (p *Pool) PeakLive() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peakLive
}

// Retained returns the number of float32 elements the pool holds for reuse.
func (p *Pool) Retained() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.retained
}
