package cuda

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Block and segment sizes of the caching allocator, after PyTorch's CUDACachingAllocator:
// requests are rounded up to 512 bytes; those up to 1 MiB come from 2 MiB segments (the small
// pool); larger ones from segments of 20 MiB when under 10 MiB, else the request rounded up
// to 2 MiB (the large pool). A cached block is split when the remainder is at least 512 bytes
// (small pool) or above 1 MiB (large pool), and freed blocks merge with free neighbours.
const (
	minBlockSize  = 512
	smallSize     = 1 << 20
	smallSegment  = 2 << 20
	minLargeAlloc = 10 << 20
	largeSegment  = 20 << 20
	roundLarge    = 2 << 20
)

// deviceMemory is what the allocator draws segments from: the driver (Context), or a fake in
// tests.
type deviceMemory interface {
	memAlloc(bytes int) (DevicePtr, error)
	memFree(p DevicePtr) error
}

func (c *Context) memAlloc(bytes int) (DevicePtr, error) { return c.MemAlloc(bytes) }
func (c *Context) memFree(p DevicePtr) error             { return c.MemFree(p) }

// Stats are the allocator's counters. Byte counts are of rounded blocks unless named Requested.
type Stats struct {
	Allocated, PeakAllocated int64 // bytes in blocks handed out and not yet freed
	Requested                int64 // bytes asked for by the live allocations
	Reserved, PeakReserved   int64 // bytes in segments obtained from the driver
	Segments                 int   // segments held
	Live                     int   // blocks handed out and not yet freed
	Allocs, Frees            int64 // Alloc and Free calls
	CacheHits                int64 // Allocs served from a cached block, without the driver
	DriverAllocs             int64 // cuMemAlloc calls
	DriverFrees              int64 // cuMemFree calls
	OOMRetries               int64 // times the cache was emptied to retry a failed cuMemAlloc
}

// String summarises the figures on one line.
func (s Stats) String() string {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("allocated %.1f MiB (peak %.1f), reserved %.1f MiB (peak %.1f) in %d segments, %d live blocks, %d allocs (%d cache hits), %d driver allocs, %d driver frees",
		mib(s.Allocated), mib(s.PeakAllocated), mib(s.Reserved), mib(s.PeakReserved), s.Segments, s.Live, s.Allocs, s.CacheHits, s.DriverAllocs, s.DriverFrees)
}

// block is a piece of a segment: handed out, or free in its pool.
type block struct {
	ptr        DevicePtr
	size       int
	requested  int
	pool       poolKey
	prev, next *block // neighbours in the same segment, by address
	free       bool
}

// poolKey selects a free list: blocks are reused only on the stream they were allocated for,
// and small and large blocks live apart.
type poolKey struct {
	stream uintptr
	large  bool
}

// Allocator is a caching device allocator: freed blocks are kept and reused for later
// requests on the same stream, so a training loop reaches a steady state with no driver
// allocations. A block must not be freed while work still uses it on a stream other than the
// one it was allocated for (synchronise that stream first).
type Allocator struct {
	c   *Context
	mem deviceMemory

	mu    sync.Mutex
	pools map[poolKey][]*block // free blocks, sorted by (size, ptr)
	spare []*block             // block records no longer in use, for reuse without allocating
	stats Stats
}

func (a *Allocator) newBlock() *block {
	if n := len(a.spare); n > 0 {
		b := a.spare[n-1]
		a.spare = a.spare[:n-1]
		return b
	}
	return new(block)
}

func (a *Allocator) dropBlock(b *block) {
	*b = block{}
	a.spare = append(a.spare, b)
}

func newAllocator(c *Context) *Allocator {
	return &Allocator{c: c, mem: c, pools: map[poolKey][]*block{}}
}

// Buffer is device memory from the caching allocator: Size bytes at Ptr. Free returns it to
// the cache.
type Buffer struct {
	Ptr  DevicePtr
	Size int
	blk  *block
	a    *Allocator
}

func (b Buffer) ctx() *Context { return b.a.c }

// Context returns the context the buffer belongs to.
func (b Buffer) Context() *Context { return b.a.c }

// Slice returns the bytes [off, off+n) of b as a Buffer that shares its memory; the view must
// not be freed.
func (b Buffer) Slice(off, n int) Buffer {
	if off < 0 || n < 0 || off+n > b.Size {
		panic(fmt.Sprintf("cuda: Buffer.Slice(%d, %d) of a buffer of %d bytes", off, n, b.Size))
	}
	return Buffer{Ptr: b.Ptr + DevicePtr(off), Size: n, a: b.a}
}

// Free returns the buffer to its allocator's cache.
func (b Buffer) Free() {
	if b.a == nil || b.blk == nil {
		if b.Size == 0 && b.a == nil {
			return
		}
		panic("cuda: Buffer.Free of a view or of a buffer not from an allocator")
	}
	b.a.free(b.blk)
}

// Alloc allocates bytes of device memory for use on the context's stream.
func (c *Context) Alloc(bytes int) (Buffer, error) { return c.alloc.Alloc(bytes, c.stream) }

// Alloc allocates bytes of device memory for use on s (nil: the context's stream). A
// request of 0 bytes still gets a distinct 512-byte block.
func (a *Allocator) Alloc(bytes int, s *Stream) (Buffer, error) {
	if bytes < 0 {
		return Buffer{}, fmt.Errorf("cuda: Alloc of %d bytes", bytes)
	}
	var key poolKey
	if s != nil {
		key.stream = s.h
	} else if a.c != nil {
		key.stream = a.c.stream.h
	}
	size := roundSize(bytes)
	key.large = size > smallSize
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.Allocs++
	b := a.takeFree(key, size)
	if b != nil {
		a.stats.CacheHits++
	} else {
		seg := segmentSize(size)
		p, err := a.mem.memAlloc(seg)
		if err != nil && errors.Is(err, ErrorOutOfMemory) {
			a.stats.OOMRetries++
			a.emptyCache()
			p, err = a.mem.memAlloc(seg)
		}
		if err != nil {
			return Buffer{}, fmt.Errorf("cuda: allocating %d bytes (segment of %d): %w; allocator: %v", bytes, seg, err, a.stats)
		}
		a.stats.DriverAllocs++
		a.stats.Reserved += int64(seg)
		a.stats.PeakReserved = max(a.stats.PeakReserved, a.stats.Reserved)
		a.stats.Segments++
		b = a.newBlock()
		*b = block{ptr: p, size: seg, pool: key}
	}
	a.split(b, size)
	b.free = false
	b.requested = bytes
	a.stats.Allocated += int64(b.size)
	a.stats.PeakAllocated = max(a.stats.PeakAllocated, a.stats.Allocated)
	a.stats.Requested += int64(bytes)
	a.stats.Live++
	return Buffer{Ptr: b.ptr, Size: bytes, blk: b, a: a}, nil
}

func roundSize(n int) int {
	if n < minBlockSize {
		return minBlockSize
	}
	return (n + minBlockSize - 1) / minBlockSize * minBlockSize
}

func segmentSize(size int) int {
	switch {
	case size <= smallSize:
		return smallSegment
	case size < minLargeAlloc:
		return largeSegment
	}
	return (size + roundLarge - 1) / roundLarge * roundLarge
}

// takeFree removes and returns the smallest free block of the pool that holds size bytes.
func (a *Allocator) takeFree(key poolKey, size int) *block {
	l := a.pools[key]
	i := sort.Search(len(l), func(i int) bool { return l[i].size >= size })
	if i == len(l) {
		return nil
	}
	b := l[i]
	a.pools[key] = append(l[:i], l[i+1:]...)
	return b
}

func (a *Allocator) insertFree(b *block) {
	l := a.pools[b.pool]
	i := sort.Search(len(l), func(i int) bool {
		return l[i].size > b.size || l[i].size == b.size && l[i].ptr >= b.ptr
	})
	l = append(l, nil)
	copy(l[i+1:], l[i:])
	l[i] = b
	a.pools[b.pool] = l
	b.free = true
}

func (a *Allocator) removeFree(b *block) {
	l := a.pools[b.pool]
	i := sort.Search(len(l), func(i int) bool {
		return l[i].size > b.size || l[i].size == b.size && l[i].ptr >= b.ptr
	})
	if i == len(l) || l[i] != b {
		panic("cuda: allocator: free block missing from its pool")
	}
	a.pools[b.pool] = append(l[:i], l[i+1:]...)
}

// split cuts b down to size when the rest is worth keeping, returning the rest to the pool.
func (a *Allocator) split(b *block, size int) {
	rest := b.size - size
	if b.pool.large && rest <= smallSize || !b.pool.large && rest < minBlockSize {
		return
	}
	r := a.newBlock()
	*r = block{ptr: b.ptr + DevicePtr(size), size: rest, pool: b.pool, prev: b, next: b.next}
	if b.next != nil {
		b.next.prev = r
	}
	b.next = r
	b.size = size
	a.insertFree(r)
}

func (a *Allocator) free(b *block) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b.free {
		panic("cuda: Buffer.Free: double free")
	}
	a.stats.Frees++
	a.stats.Allocated -= int64(b.size)
	a.stats.Requested -= int64(b.requested)
	a.stats.Live--
	if p := b.prev; p != nil && p.free {
		a.removeFree(p)
		p.size += b.size
		p.next = b.next
		if b.next != nil {
			b.next.prev = p
		}
		a.dropBlock(b)
		b = p
	}
	if n := b.next; n != nil && n.free {
		a.removeFree(n)
		b.size += n.size
		b.next = n.next
		if n.next != nil {
			n.next.prev = b
		}
		a.dropBlock(n)
	}
	a.insertFree(b)
}

// EmptyCache returns every wholly free segment to the driver.
func (a *Allocator) EmptyCache() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.emptyCache()
}

func (a *Allocator) emptyCache() error {
	var first error
	for key, l := range a.pools {
		kept := l[:0]
		for _, b := range l {
			if b.prev != nil || b.next != nil {
				kept = append(kept, b)
				continue
			}
			if err := a.mem.memFree(b.ptr); err != nil {
				if first == nil {
					first = err
				}
				kept = append(kept, b)
				continue
			}
			a.stats.DriverFrees++
			a.stats.Reserved -= int64(b.size)
			a.stats.Segments--
		}
		a.pools[key] = kept
	}
	return first
}

// releaseStream is called when s is destroyed: wholly free segments cached for s go back to
// the driver, and the segments of s still partly in use move to the context's stream, where
// their free blocks are reused.
func (a *Allocator) releaseStream(s *Stream) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, large := range []bool{false, true} {
		key := poolKey{stream: s.h, large: large}
		to := poolKey{stream: a.c.stream.h, large: large}
		for _, b := range append([]*block(nil), a.pools[key]...) {
			if !b.free || b.pool != key {
				continue // already moved with its segment
			}
			if b.prev == nil && b.next == nil {
				if a.mem.memFree(b.ptr) == nil {
					a.removeFree(b)
					a.stats.DriverFrees++
					a.stats.Reserved -= int64(b.size)
					a.stats.Segments--
				}
				continue
			}
			h := b
			for h.prev != nil {
				h = h.prev
			}
			for x := h; x != nil; x = x.next {
				if x.free {
					a.removeFree(x)
					x.pool = to
					a.insertFree(x)
				} else {
					x.pool = to
				}
			}
		}
		if len(a.pools[key]) == 0 {
			delete(a.pools, key)
		}
	}
}

// Stats returns the allocator's counters.
func (a *Allocator) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// ResetPeak sets the peak figures to the current ones.
func (a *Allocator) ResetPeak() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stats.PeakAllocated = a.stats.Allocated
	a.stats.PeakReserved = a.stats.Reserved
}
