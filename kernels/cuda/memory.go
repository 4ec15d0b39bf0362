package cuda

import (
	"fmt"
	"unsafe"
)

// DevicePtr is a device address (CUdeviceptr).
type DevicePtr uint64

// MemAlloc allocates bytes of device memory straight from the driver (cuMemAlloc_v2),
// bypassing the caching allocator. Most code wants Context.Alloc.
func (c *Context) MemAlloc(bytes int) (DevicePtr, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(c.h, "cuMemAlloc_v2", d.sym.cuMemAlloc, d.outp(0), uintptr(bytes)); err != nil {
		return 0, err
	}
	return DevicePtr(d.c.out[0]), nil
}

// MemFree returns memory from MemAlloc to the driver (cuMemFree_v2).
func (c *Context) MemFree(p DevicePtr) error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(c.h, "cuMemFree_v2", d.sym.cuMemFree, uintptr(p))
}

// HostBuffer is page-locked host memory (cuMemAllocHost_v2): the source or destination of
// truly asynchronous copies. It is C memory, so the garbage collector neither moves nor frees
// it: call Free.
type HostBuffer struct {
	c *Context
	p unsafe.Pointer
	n int
}

// AllocHost allocates bytes of page-locked host memory.
func (c *Context) AllocHost(bytes int) (*HostBuffer, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("cuda: AllocHost: %d bytes", bytes)
	}
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(c.h, "cuMemAllocHost_v2", d.sym.cuMemAllocHost, d.outp(0), uintptr(bytes)); err != nil {
		return nil, err
	}
	return &HostBuffer{c: c, p: *(*unsafe.Pointer)(unsafe.Pointer(&d.c.out[0])), n: bytes}, nil
}

// Bytes returns the buffer's memory as a byte slice (valid until Free).
func (h *HostBuffer) Bytes() []byte { return unsafe.Slice((*byte)(h.p), h.n) }

// Len returns the buffer's size in bytes.
func (h *HostBuffer) Len() int { return h.n }

// HostSlice views h as a slice of T (valid until Free).
func HostSlice[T any](h *HostBuffer) []T {
	var z T
	return unsafe.Slice((*T)(h.p), h.n/int(unsafe.Sizeof(z)))
}

// Free releases the page-locked memory.
func (h *HostBuffer) Free() error {
	if h.p == nil {
		return nil
	}
	d := h.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.do(h.c.h, "cuMemFreeHost", d.sym.cuMemFreeHost, uintptr(h.p))
	h.p, h.n = nil, 0
	return err
}

// CopyHtoD copies bytes from host memory at src to dst, synchronously (cuMemcpyHtoD_v2).
// src must stay valid for the call; it is kept reachable until the copy has returned.
func (c *Context) CopyHtoD(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.keep[0] = src
	return d.do(c.h, "cuMemcpyHtoD_v2", d.sym.cuMemcpyHtoD, uintptr(dst), uintptr(src), uintptr(bytes))
}

// CopyDtoH copies bytes from src to host memory at dst, synchronously (cuMemcpyDtoH_v2).
func (c *Context) CopyDtoH(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.keep[0] = dst
	return d.do(c.h, "cuMemcpyDtoH_v2", d.sym.cuMemcpyDtoH, uintptr(dst), uintptr(src), uintptr(bytes))
}

// CopyDtoD copies bytes between device buffers, synchronously (cuMemcpyDtoD_v2).
func (c *Context) CopyDtoD(dst, src DevicePtr, bytes int) error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(c.h, "cuMemcpyDtoD_v2", d.sym.cuMemcpyDtoD, uintptr(dst), uintptr(src), uintptr(bytes))
}

// CopyHtoDAsync queues a copy of bytes from host memory at src to dst on s
// (cuMemcpyHtoDAsync_v2). From page-locked memory (HostBuffer) it returns at once and src
// must stay untouched until the stream reaches it; from Go memory the driver stages the data
// before returning.
func (s *Stream) CopyHtoDAsync(dst DevicePtr, src unsafe.Pointer, bytes int) error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.keep[0] = src
	return d.do(s.c.h, "cuMemcpyHtoDAsync_v2", d.sym.cuMemcpyHtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), s.h)
}

// CopyDtoHAsync queues a copy of bytes from src to host memory at dst on s
// (cuMemcpyDtoHAsync_v2). dst should be page-locked (HostBuffer); read it after the stream
// has been synchronised.
func (s *Stream) CopyDtoHAsync(dst unsafe.Pointer, src DevicePtr, bytes int) error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.keep[0] = dst
	return d.do(s.c.h, "cuMemcpyDtoHAsync_v2", d.sym.cuMemcpyDtoHAsync, uintptr(dst), uintptr(src), uintptr(bytes), s.h)
}

// CopyDtoDAsync queues a device-to-device copy on s.
func (s *Stream) CopyDtoDAsync(dst, src DevicePtr, bytes int) error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(s.c.h, "cuMemcpyDtoDAsync_v2", d.sym.cuMemcpyDtoDAsync, uintptr(dst), uintptr(src), uintptr(bytes), s.h)
}

// MemsetD8 queues dst[0:n] = v (bytes) on s.
func (s *Stream) MemsetD8(dst DevicePtr, v uint8, n int) error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(s.c.h, "cuMemsetD8Async", d.sym.cuMemsetD8Async, uintptr(dst), uintptr(v), uintptr(n), s.h)
}

// MemsetD32 queues n 32-bit words at dst = v on s (v = math.Float32bits(x) fills floats).
func (s *Stream) MemsetD32(dst DevicePtr, v uint32, n int) error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(s.c.h, "cuMemsetD32Async", d.sym.cuMemsetD32Async, uintptr(dst), uintptr(v), uintptr(n), s.h)
}

// MemsetD32 sets n 32-bit words at dst to v, synchronously (cuMemsetD32_v2).
func (c *Context) MemsetD32(dst DevicePtr, v uint32, n int) error {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(c.h, "cuMemsetD32_v2", d.sym.cuMemsetD32, uintptr(dst), uintptr(v), uintptr(n))
}

// Upload copies src into the device buffer dst on stream s (nil: the context's stream) and
// returns once the data has left src.
func Upload[T any](s *Stream, dst Buffer, src []T) error {
	if len(src) == 0 {
		return nil
	}
	n := len(src) * int(unsafe.Sizeof(src[0]))
	if n > dst.Size {
		return fmt.Errorf("cuda: Upload: %d bytes into a buffer of %d", n, dst.Size)
	}
	if s == nil {
		s = dst.ctx().stream
	}
	return s.CopyHtoDAsync(dst.Ptr, unsafe.Pointer(&src[0]), n)
}

// Download copies the device buffer src into dst after the work queued on s (nil: the
// context's stream) before it, and waits for it.
func Download[T any](s *Stream, dst []T, src Buffer) error {
	if len(dst) == 0 {
		return nil
	}
	n := len(dst) * int(unsafe.Sizeof(dst[0]))
	if n > src.Size {
		return fmt.Errorf("cuda: Download: %d bytes from a buffer of %d", n, src.Size)
	}
	if s == nil {
		s = src.ctx().stream
	}
	if err := s.CopyDtoHAsync(unsafe.Pointer(&dst[0]), src.Ptr, n); err != nil {
		return err
	}
	return s.Synchronize()
}
