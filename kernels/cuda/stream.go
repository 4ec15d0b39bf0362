package cuda

import "unsafe"

// unsafePtr and addr turn a Go pointer into what a call block keeps alive and what the driver
// receives.
func unsafePtr[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }
func addr[T any](p *T) uintptr             { return uintptr(unsafe.Pointer(p)) }

// Stream is a CUDA stream of its Context. Work queued on one stream runs in order.
type Stream struct {
	c *Context
	h uintptr
}

// NewStream creates a stream (cuStreamCreate, flags 0: it synchronises with the legacy
// default stream, so the driver's synchronous copies also wait for the work queued on it).
func (c *Context) NewStream() (*Stream, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(c.h, "cuStreamCreate", d.sym.cuStreamCreate, d.outp(0), 0); err != nil {
		return nil, err
	}
	return &Stream{c: c, h: uintptr(d.c.out[0])}, nil
}

// Context returns the stream's context.
func (s *Stream) Context() *Context { return s.c }

// Synchronize waits until all work queued on s has finished.
func (s *Stream) Synchronize() error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(s.c.h, "cuStreamSynchronize", d.sym.cuStreamSynchronize, s.h)
}

// Wait makes future work on s wait until e has completed (cuStreamWaitEvent).
func (s *Stream) Wait(e *Event) error {
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(s.c.h, "cuStreamWaitEvent", d.sym.cuStreamWaitEvent, s.h, e.h, 0)
}

// Destroy releases the stream once its work is done. The context's default stream must not
// be destroyed.
func (s *Stream) Destroy() error {
	if s == s.c.stream {
		panic("cuda: Stream.Destroy: the default stream belongs to the Context")
	}
	s.c.alloc.releaseStream(s)
	d := s.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(s.c.h, "cuStreamDestroy_v2", d.sym.cuStreamDestroy, s.h)
}

// Event is a CUDA event: a marker in a stream, used for ordering between streams and for
// timing.
type Event struct {
	c *Context
	h uintptr
}

// Event flags (cuEventCreate).
const (
	eventDefault       = 0
	eventDisableTiming = 2
)

// NewEvent creates an event; timing selects whether ElapsedMs may be asked of it.
func (c *Context) NewEvent(timing bool) (*Event, error) {
	d := c.d
	flags := uintptr(eventDisableTiming)
	if timing {
		flags = eventDefault
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(c.h, "cuEventCreate", d.sym.cuEventCreate, d.outp(0), flags); err != nil {
		return nil, err
	}
	return &Event{c: c, h: uintptr(d.c.out[0])}, nil
}

// Record places the event in s: it completes when the work queued on s before it has.
func (e *Event) Record(s *Stream) error {
	d := e.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(e.c.h, "cuEventRecord", d.sym.cuEventRecord, e.h, s.h)
}

// Synchronize waits until the event has completed.
func (e *Event) Synchronize() error {
	d := e.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(e.c.h, "cuEventSynchronize", d.sym.cuEventSynchronize, e.h)
}

// Done reports whether the event has completed (cuEventQuery), without waiting.
func (e *Event) Done() (bool, error) {
	d := e.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.do(e.c.h, "cuEventQuery", d.sym.cuEventQuery, e.h)
	if IsCode(err, ErrorNotReady) {
		return false, nil
	}
	return err == nil, err
}

// ElapsedMs returns the milliseconds between two completed timing events.
func ElapsedMs(start, end *Event) (float32, error) {
	d := start.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(start.c.h, "cuEventElapsedTime", d.sym.cuEventElapsedTime, d.outp(0), start.h, end.h); err != nil {
		return 0, err
	}
	return *(*float32)(unsafe.Pointer(&d.c.out[0])), nil
}

// Destroy releases the event.
func (e *Event) Destroy() error {
	d := e.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.do(e.c.h, "cuEventDestroy_v2", d.sym.cuEventDestroy, e.h)
}
