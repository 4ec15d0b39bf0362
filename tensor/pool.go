package tensor

import "sync"

// Pool recycles host float32 buffers by exact length, so that a training step that asks for
// the same shapes every step allocates nothing once warm. It is safe for concurrent use.
type Pool struct {
	mu   sync.Mutex
	free map[int][][]float32
	// Allocs counts the buffers the pool had to allocate (misses).
	Allocs int
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{free: map[int][][]float32{}} }

// Get returns a zeroed tensor of the given shape whose buffer comes from the pool.
func (p *Pool) Get(shape ...int) *Tensor {
	n := Numel(shape)
	p.mu.Lock()
	var buf []float32
	if l := p.free[n]; len(l) > 0 {
		buf = l[len(l)-1]
		p.free[n] = l[:len(l)-1]
		p.mu.Unlock()
		clear(buf)
	} else {
		p.Allocs++
		p.mu.Unlock()
		buf = make([]float32, n)
	}
	return FromSlice(buf, shape...)
}

// Put returns t's storage to the pool. t and every view of it must not be used afterwards.
func (p *Pool) Put(t *Tensor) {
	if t == nil || t.st.F32 == nil {
		return
	}
	buf := t.st.F32
	p.mu.Lock()
	p.free[len(buf)] = append(p.free[len(buf)], buf)
	p.mu.Unlock()
	t.st.F32 = nil
}
