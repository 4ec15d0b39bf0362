package cuda

import (
	"math/rand/v2"
	"testing"
)

// fakeMemory hands out address ranges and counts driver calls, so the allocator's logic is
// tested without a driver.
type fakeMemory struct {
	next   DevicePtr
	live   map[DevicePtr]int
	limit  int // bytes the fake device holds (0: no limit)
	used   int
	allocs int
	frees  int
}

func (f *fakeMemory) memAlloc(n int) (DevicePtr, error) {
	if f.limit > 0 && f.used+n > f.limit {
		return 0, &Error{Call: "cuMemAlloc_v2", Code: ErrorOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY", Text: "out of memory"}
	}
	if f.live == nil {
		f.live = map[DevicePtr]int{}
		f.next = 1 << 32
	}
	p := f.next
	f.next += DevicePtr(n) + 4096
	f.live[p] = n
	f.used += n
	f.allocs++
	return p, nil
}

func (f *fakeMemory) memFree(p DevicePtr) error {
	n, ok := f.live[p]
	if !ok {
		panic("fake: free of unknown pointer")
	}
	delete(f.live, p)
	f.used -= n
	f.frees++
	return nil
}

func newFakeAllocator(limit int) (*Allocator, *fakeMemory) {
	m := &fakeMemory{limit: limit}
	return &Allocator{mem: m, pools: map[poolKey][]*block{}}, m
}

func TestAllocatorRounding(t *testing.T) {
	for _, tc := range []struct{ n, size, seg int }{
		{0, 512, 2 << 20}, {1, 512, 2 << 20}, {512, 512, 2 << 20}, {513, 1024, 2 << 20},
		{1 << 20, 1 << 20, 2 << 20}, {1<<20 + 1, 1<<20 + 512, 20 << 20},
		{10<<20 - 512, 10<<20 - 512, 20 << 20}, {10 << 20, 10 << 20, 10 << 20}, {10<<20 + 1, 10<<20 + 512, 12 << 20},
	} {
		if s := roundSize(tc.n); s != tc.size {
			t.Errorf("roundSize(%d) = %d, want %d", tc.n, s, tc.size)
		}
		if s := segmentSize(roundSize(tc.n)); s != tc.seg {
			t.Errorf("segmentSize(roundSize(%d)) = %d, want %d", tc.n, s, tc.seg)
		}
	}
}

func TestAllocatorSplitMergeReuse(t *testing.T) {
	a, m := newFakeAllocator(0)
	x, _ := a.Alloc(1000, nil) // 1024 of a 2 MiB segment
	y, _ := a.Alloc(3000, nil) // 3072, next in the same segment
	if m.allocs != 1 {
		t.Fatalf("two small allocations made %d driver allocations, want 1", m.allocs)
	}
	if y.Ptr != x.Ptr+1024 {
		t.Errorf("second block at %#x, want %#x (right after the first)", y.Ptr, x.Ptr+1024)
	}
	s := a.Stats()
	if s.Allocated != 4096 || s.Requested != 4000 || s.Reserved != 2<<20 || s.CacheHits != 1 || s.Live != 2 {
		t.Errorf("stats %+v", s)
	}
	x.Free()
	y.Free()
	// Everything merged back into one free 2 MiB block.
	if l := a.pools[poolKey{}]; len(l) != 1 || l[0].size != 2<<20 || l[0].prev != nil || l[0].next != nil {
		t.Fatalf("after freeing all: free list %v, want one whole segment", l)
	}
	big, _ := a.Alloc(5<<20, nil)
	if m.allocs != 2 || a.Stats().Reserved != 22<<20 {
		t.Errorf("5 MiB: %d driver allocs, reserved %d, want 2 and 22 MiB", m.allocs, a.Stats().Reserved)
	}
	big.Free()
	// A 3 MiB request reuses the large segment (remaining 17 MiB stays split off).
	b3, _ := a.Alloc(3<<20, nil)
	if m.allocs != 2 || b3.Ptr != big.Ptr {
		t.Errorf("3 MiB after freeing 5 MiB: %d driver allocs, ptr %#x want %#x", m.allocs, b3.Ptr, big.Ptr)
	}
	b3.Free()
	if err := a.EmptyCache(); err != nil {
		t.Fatal(err)
	}
	s = a.Stats()
	if m.frees != 2 || len(m.live) != 0 || s.Reserved != 0 || s.Segments != 0 || s.Allocated != 0 {
		t.Errorf("after EmptyCache: %d driver frees, %d live, stats %+v", m.frees, len(m.live), s)
	}
	if s.PeakReserved != 22<<20 || s.PeakAllocated != 5<<20 {
		t.Errorf("peaks %d %d, want 22 MiB and 5 MiB", s.PeakReserved, s.PeakAllocated)
	}
}

func TestAllocatorStreamsKeptApart(t *testing.T) {
	a, m := newFakeAllocator(0)
	s1, s2 := &Stream{h: 1}, &Stream{h: 2}
	x, _ := a.Alloc(4096, s1)
	x.Free()
	y, _ := a.Alloc(4096, s2)
	if m.allocs != 2 {
		t.Errorf("a block freed on stream 1 was reused on stream 2 (%d driver allocs)", m.allocs)
	}
	z, _ := a.Alloc(4096, s1)
	if z.Ptr != x.Ptr || m.allocs != 2 {
		t.Errorf("stream 1 did not reuse its block")
	}
	y.Free()
	z.Free()
}

func TestAllocatorSteadyStateNoDriverAllocs(t *testing.T) {
	a, m := newFakeAllocator(0)
	// One "training step": a mix of activations and workspaces of BERT-like sizes.
	sizes := []int{1024 * 768 * 4, 1024 * 3072 * 4, 1024 * 768 * 2, 12 * 128 * 128 * 4, 768 * 4, 7, 1027 * 4, 30522 * 768 * 4}
	// Every step makes the same requests and frees them in the same (shuffled) order, as a
	// training step does.
	step := func() {
		rng := rand.New(rand.NewPCG(1, 2))
		bufs := make([]Buffer, 0, 3*len(sizes))
		for rep := 0; rep < 3; rep++ {
			for _, n := range sizes {
				b, err := a.Alloc(n, nil)
				if err != nil {
					t.Fatal(err)
				}
				bufs = append(bufs, b)
			}
		}
		rng.Shuffle(len(bufs), func(i, j int) { bufs[i], bufs[j] = bufs[j], bufs[i] })
		for _, b := range bufs {
			b.Free()
		}
	}
	// Warm-up: the first step meets an empty cache, the second one a cache of whole free
	// segments laid out by the first; from then on every step finds what it needs.
	var perStep []int
	for i := 0; i < 3; i++ {
		n := m.allocs
		step()
		perStep = append(perStep, m.allocs-n)
	}
	t.Logf("driver allocations in warm-up steps: %v", perStep)
	warm := m.allocs
	before := a.Stats()
	for i := 0; i < 50; i++ {
		step()
	}
	after := a.Stats()
	if m.allocs != warm {
		t.Errorf("steady state made %d driver allocations after warm-up (%d)", m.allocs-warm, warm)
	}
	if hits := after.CacheHits - before.CacheHits; hits != 50*3*int64(len(sizes)) {
		t.Errorf("cache hits in steady state %d, want %d", hits, 50*3*len(sizes))
	}
	if after.Allocated != 0 || after.Live != 0 || after.Reserved != before.Reserved {
		t.Errorf("after the loop: %v", after)
	}
	t.Logf("warm-up: %d driver allocs; %v", warm, after)
}

func TestAllocatorOOMEmptiesCacheAndRetries(t *testing.T) {
	a, m := newFakeAllocator(24 << 20)
	x, err := a.Alloc(20<<20, nil) // 20 MiB segment
	if err != nil {
		t.Fatal(err)
	}
	x.Free()
	// 22 MiB does not fit beside the cached 20 MiB: the cache is emptied and the call retried.
	y, err := a.Alloc(22<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.OOMRetries != 1 || m.frees != 1 || s.Reserved != 22<<20 {
		t.Errorf("stats %+v, fake frees %d", s, m.frees)
	}
	_, err = a.Alloc(4<<20, nil)
	if !IsCode(err, ErrorOutOfMemory) {
		t.Errorf("allocation beyond the device: error %v, want CUDA_ERROR_OUT_OF_MEMORY", err)
	}
	y.Free()
}

func TestAllocatorDoubleFreePanics(t *testing.T) {
	a, _ := newFakeAllocator(0)
	x, _ := a.Alloc(10, nil)
	x.Free()
	defer func() {
		if recover() == nil {
			t.Error("double free did not panic")
		}
	}()
	x.Free()
}

func TestAllocatorReleaseStream(t *testing.T) {
	a, m := newFakeAllocator(0)
	a.c = &Context{stream: &Stream{h: 99}}
	s := &Stream{c: a.c, h: 7}
	x, _ := a.Alloc(4096, s)
	y, _ := a.Alloc(4096, s)  // same 2 MiB segment
	z, _ := a.Alloc(3<<20, s) // its own 20 MiB segment
	z.Free()
	x.Free()
	a.releaseStream(s) // the stream is destroyed with y still live
	st := a.Stats()
	if m.frees != 1 || st.Segments != 1 || st.Reserved != 2<<20 {
		t.Fatalf("after releasing the stream: %d driver frees, %v; want the wholly free 20 MiB segment returned", m.frees, st)
	}
	if _, ok := a.pools[poolKey{stream: 7}]; ok {
		t.Error("the destroyed stream still has a pool")
	}
	y.Free() // merges with the moved free blocks into one whole segment on the context's stream
	l := a.pools[poolKey{stream: 99}]
	if len(l) != 1 || l[0].size != 2<<20 || l[0].prev != nil || l[0].next != nil {
		t.Fatalf("context stream's pool after the last free: %d blocks", len(l))
	}
	w, _ := a.Alloc(8192, nil)
	if m.allocs != 2 || w.Ptr != x.Ptr {
		t.Errorf("allocation on the context's stream did not reuse the released segment (%d driver allocs)", m.allocs)
	}
	w.Free()
}
