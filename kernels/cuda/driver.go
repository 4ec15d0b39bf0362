package cuda

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// LibEnv names the environment variable that replaces libcuda.so.1 by another library
// exporting the driver API, such as the host emulation built by emu/build.sh.
const LibEnv = "MTBERT_CUDA_LIB"

// DefaultLib is the driver library loaded when LibEnv is unset.
const DefaultLib = "libcuda.so.1"

// maxArgs bounds the arguments of one driver call (cuLaunchKernel takes 11) and maxParams
// the parameters of one kernel.
const (
	maxArgs   = 11
	maxParams = 64
)

// call is the one argument block shared by the calling goroutine and the driver thread. It
// lives on the heap for the life of the driver, so the addresses of its out slots and of the
// kernel argument arena can be handed to the driver without allocating per call.
type call struct {
	name string
	fn   uintptr
	ctx  uintptr
	n    int
	args [maxArgs]uintptr
	res  Result
	ret  uintptr // the full return register (for entry points returning pointers)
	// out receives the driver's out-parameters (handles, pointers, sizes, ints).
	out [4]uint64
	// keep holds the Go memory a call reads or writes, so that it stays reachable (and, being
	// referenced from the heap, is heap-allocated) until the call has returned.
	keep [6]unsafe.Pointer
	// vals is the kernel argument arena: argument i of a launch is written to vals[i] and
	// params[i] = &vals[i] is the void** handed to cuLaunchKernel.
	vals   [maxParams]uint64
	params [maxParams]unsafe.Pointer
}

// driver is one loaded driver library and the OS-locked goroutine that makes every call
// into it. Calls from any goroutine take mu, fill the shared call block, and hand it to the
// driver thread through req; the thread makes the context current when the call needs one.
type driver struct {
	path   string
	handle uintptr
	sym    symbols

	mu   sync.Mutex
	c    *call
	req  chan struct{}
	done chan struct{}
	pin  runtime.Pinner

	// cur is the context current on the driver thread (touched only by that thread).
	cur uintptr
}

// symbols are the driver entry points, resolved with dlsym. Optional ones may be zero; a
// call through a zero symbol fails with CUDA_ERROR_NOT_SUPPORTED naming the symbol.
type symbols struct {
	cuInit, cuDriverGetVersion, cuGetErrorName, cuGetErrorString                           uintptr
	cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute, cuDeviceTotalMem uintptr
	cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize uintptr
	cuStreamCreate, cuStreamDestroy, cuStreamSynchronize, cuStreamWaitEvent, cuStreamQuery uintptr
	cuEventCreate, cuEventDestroy, cuEventRecord, cuEventSynchronize, cuEventQuery         uintptr
	cuEventElapsedTime                                                                     uintptr
	cuMemAlloc, cuMemFree, cuMemAllocHost, cuMemFreeHost, cuMemGetInfo                     uintptr
	cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD                                               uintptr
	cuMemcpyHtoDAsync, cuMemcpyDtoHAsync, cuMemcpyDtoDAsync                                uintptr
	cuMemsetD8, cuMemsetD32, cuMemsetD8Async, cuMemsetD32Async                             uintptr
	cuModuleLoadDataEx, cuModuleUnload, cuModuleGetFunction                                uintptr
	cuFuncGetAttribute, cuFuncSetAttribute, cuLaunchKernel                                 uintptr
	// mtEmuLastError is exported by the host emulator only: its detail of the last failure.
	mtEmuLastError uintptr
}

func (s *symbols) table() []struct {
	name     string
	p        *uintptr
	required bool
} {
	type e = struct {
		name     string
		p        *uintptr
		required bool
	}
	return []e{
		{"cuInit", &s.cuInit, true},
		{"cuDriverGetVersion", &s.cuDriverGetVersion, false},
		{"cuGetErrorName", &s.cuGetErrorName, false},
		{"cuGetErrorString", &s.cuGetErrorString, false},
		{"cuDeviceGetCount", &s.cuDeviceGetCount, true},
		{"cuDeviceGet", &s.cuDeviceGet, true},
		{"cuDeviceGetName", &s.cuDeviceGetName, false},
		{"cuDeviceGetAttribute", &s.cuDeviceGetAttribute, false},
		{"cuDeviceTotalMem_v2", &s.cuDeviceTotalMem, false},
		{"cuDevicePrimaryCtxRetain", &s.cuDevicePrimaryCtxRetain, true},
		{"cuDevicePrimaryCtxRelease_v2", &s.cuDevicePrimaryCtxRelease, false},
		{"cuCtxSetCurrent", &s.cuCtxSetCurrent, true},
		{"cuCtxSynchronize", &s.cuCtxSynchronize, false},
		{"cuStreamCreate", &s.cuStreamCreate, false},
		{"cuStreamDestroy_v2", &s.cuStreamDestroy, false},
		{"cuStreamSynchronize", &s.cuStreamSynchronize, false},
		{"cuStreamWaitEvent", &s.cuStreamWaitEvent, false},
		{"cuStreamQuery", &s.cuStreamQuery, false},
		{"cuEventCreate", &s.cuEventCreate, false},
		{"cuEventDestroy_v2", &s.cuEventDestroy, false},
		{"cuEventRecord", &s.cuEventRecord, false},
		{"cuEventSynchronize", &s.cuEventSynchronize, false},
		{"cuEventQuery", &s.cuEventQuery, false},
		{"cuEventElapsedTime", &s.cuEventElapsedTime, false},
		{"cuMemAlloc_v2", &s.cuMemAlloc, true},
		{"cuMemFree_v2", &s.cuMemFree, true},
		{"cuMemAllocHost_v2", &s.cuMemAllocHost, false},
		{"cuMemFreeHost", &s.cuMemFreeHost, false},
		{"cuMemGetInfo_v2", &s.cuMemGetInfo, false},
		{"cuMemcpyHtoD_v2", &s.cuMemcpyHtoD, true},
		{"cuMemcpyDtoH_v2", &s.cuMemcpyDtoH, true},
		{"cuMemcpyDtoD_v2", &s.cuMemcpyDtoD, false},
		{"cuMemcpyHtoDAsync_v2", &s.cuMemcpyHtoDAsync, false},
		{"cuMemcpyDtoHAsync_v2", &s.cuMemcpyDtoHAsync, false},
		{"cuMemcpyDtoDAsync_v2", &s.cuMemcpyDtoDAsync, false},
		{"cuMemsetD8_v2", &s.cuMemsetD8, false},
		{"cuMemsetD32_v2", &s.cuMemsetD32, false},
		{"cuMemsetD8Async", &s.cuMemsetD8Async, false},
		{"cuMemsetD32Async", &s.cuMemsetD32Async, false},
		{"cuModuleLoadDataEx", &s.cuModuleLoadDataEx, true},
		{"cuModuleUnload", &s.cuModuleUnload, false},
		{"cuModuleGetFunction", &s.cuModuleGetFunction, true},
		{"cuFuncGetAttribute", &s.cuFuncGetAttribute, false},
		{"cuFuncSetAttribute", &s.cuFuncSetAttribute, false},
		{"cuLaunchKernel", &s.cuLaunchKernel, true},
		{"mt_emu_last_error", &s.mtEmuLastError, false},
	}
}

var (
	driversMu sync.Mutex
	drivers   = map[string]*driverResult{}
)

type driverResult struct {
	d   *driver
	err error
}

// LibPath returns the driver library this process loads: $MTBERT_CUDA_LIB, else libcuda.so.1.
func LibPath() string {
	if p := os.Getenv(LibEnv); p != "" {
		return p
	}
	return DefaultLib
}

// loadDriver opens the driver library at path once per process, resolves its entry points,
// starts the driver thread and calls cuInit(0). The outcome, success or error, is cached.
func loadDriver(path string) (*driver, error) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if r, ok := drivers[path]; ok {
		return r.d, r.err
	}
	d, err := openDriver(path)
	drivers[path] = &driverResult{d, err}
	return d, err
}

// LoadError says why the driver library could not be used at all.
type LoadError struct {
	Path string
	Err  error
}

func (e *LoadError) Error() string {
	hint := "is the NVIDIA driver installed?"
	if e.Path != DefaultLib {
		hint = "check " + LibEnv
	}
	return fmt.Sprintf("cuda: cannot load the driver library %q (%s): %v", e.Path, hint, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

func openDriver(path string) (*driver, error) {
	h, err := dlopen(path)
	if err != nil {
		return nil, &LoadError{Path: path, Err: err}
	}
	d := &driver{path: path, handle: h, c: new(call), req: make(chan struct{}), done: make(chan struct{})}
	var missing []string
	for _, e := range d.sym.table() {
		p, err := dlsym(h, e.name)
		if err != nil || p == 0 {
			if e.required {
				missing = append(missing, e.name)
			}
			continue
		}
		*e.p = p
	}
	if len(missing) > 0 {
		dlclose(h)
		return nil, &LoadError{Path: path, Err: fmt.Errorf("missing driver entry points %v", missing)}
	}
	for i := range d.c.params {
		d.c.params[i] = unsafe.Pointer(&d.c.vals[i])
	}
	// The argument arena holds Go pointers handed to C: pin it for the life of the driver.
	d.pin.Pin(d.c)
	go d.loop()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.do(0, "cuInit", d.sym.cuInit, 0); err != nil {
		return nil, err
	}
	return d, nil
}

// loop is the driver thread: it runs on one locked OS thread for the life of the process
// and executes every driver call.
func (d *driver) loop() {
	runtime.LockOSThread()
	for range d.req {
		c := d.c
		if c.ctx != 0 && c.ctx != d.cur {
			r, _, _ := purego.SyscallN(d.sym.cuCtxSetCurrent, c.ctx)
			if r != 0 {
				c.res = Result(int32(r))
				c.name = "cuCtxSetCurrent"
				d.done <- struct{}{}
				continue
			}
			d.cur = c.ctx
		}
		r, _, _ := purego.SyscallN(c.fn, c.args[:c.n]...)
		c.ret, c.res = r, Result(int32(r))
		d.done <- struct{}{}
	}
}

// do runs fn(args...) on the driver thread with ctx current (0: any) and returns the
// driver's result as an *Error. The caller holds d.mu, and reads d.c.out after do returns.
func (d *driver) do(ctx uintptr, name string, fn uintptr, args ...uintptr) error {
	c := d.c
	if fn == 0 {
		return &Error{Call: name, Code: ErrorNotSupported, Name: "CUDA_ERROR_NOT_SUPPORTED",
			Text: "entry point not exported by " + d.path}
	}
	c.name, c.fn, c.ctx, c.n = name, fn, ctx, len(args)
	copy(c.args[:], args)
	d.req <- struct{}{}
	<-d.done
	c.keep = [6]unsafe.Pointer{}
	if c.res == Success {
		return nil
	}
	return d.errorOf(c.name, c.res)
}

// outp returns the address of out slot i of the shared call block.
func (d *driver) outp(i int) uintptr { return uintptr(unsafe.Pointer(&d.c.out[i])) }

// errorOf builds the Error of a failed call, asking the driver for the code's name and text.
func (d *driver) errorOf(name string, code Result) *Error {
	e := &Error{Call: name, Code: code, Name: code.String(), Text: "unknown error"}
	c := d.c
	try := func(fn uintptr) string {
		if fn == 0 {
			return ""
		}
		c.out[3] = 0
		c.fn, c.ctx, c.n = fn, 0, 2
		c.args[0], c.args[1] = uintptr(code), d.outp(3)
		d.req <- struct{}{}
		<-d.done
		if c.res != Success {
			return ""
		}
		return goString(*(**byte)(unsafe.Pointer(&c.out[3])))
	}
	if s := try(d.sym.cuGetErrorName); s != "" {
		e.Name = s
	}
	if s := try(d.sym.cuGetErrorString); s != "" {
		e.Text = s
	}
	if d.sym.mtEmuLastError != 0 {
		c.fn, c.ctx, c.n = d.sym.mtEmuLastError, 0, 0
		d.req <- struct{}{}
		<-d.done
		if s := goString(*(**byte)(unsafe.Pointer(&c.ret))); s != "" {
			e.Text += " [emulator: " + s + "]"
		}
	}
	return e
}

// goString copies the NUL-terminated C string at p.
func goString(p *byte) string {
	if p == nil {
		return ""
	}
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// Result is a CUresult code. It implements error, so errors.Is(err, cuda.ErrorOutOfMemory)
// tests the code carried by an *Error.
type Result int32

// The CUresult codes this package refers to by name (cuda.h).
const (
	Success                     Result = 0
	ErrorInvalidValue           Result = 1
	ErrorOutOfMemory            Result = 2
	ErrorNotInitialized         Result = 3
	ErrorNoDevice               Result = 100
	ErrorInvalidDevice          Result = 101
	ErrorInvalidImage           Result = 200
	ErrorInvalidContext         Result = 201
	ErrorInvalidPTX             Result = 218
	ErrorInvalidHandle          Result = 400
	ErrorNotFound               Result = 500
	ErrorNotReady               Result = 600
	ErrorIllegalAddress         Result = 700
	ErrorLaunchOutOfResources   Result = 701
	ErrorLaunchFailed           Result = 719
	ErrorNotSupported           Result = 801
	ErrorUnknown                Result = 999
	ErrorInsufficientDriver     Result = 35
	ErrorNoBinaryForGPU         Result = 209
	ErrorSharedObjectInitFailed Result = 303
)

var resultNames = map[Result]string{
	Success: "CUDA_SUCCESS", ErrorInvalidValue: "CUDA_ERROR_INVALID_VALUE",
	ErrorOutOfMemory: "CUDA_ERROR_OUT_OF_MEMORY", ErrorNotInitialized: "CUDA_ERROR_NOT_INITIALIZED",
	ErrorNoDevice: "CUDA_ERROR_NO_DEVICE", ErrorInvalidDevice: "CUDA_ERROR_INVALID_DEVICE",
	ErrorInvalidImage: "CUDA_ERROR_INVALID_IMAGE", ErrorInvalidContext: "CUDA_ERROR_INVALID_CONTEXT",
	ErrorInvalidPTX: "CUDA_ERROR_INVALID_PTX", ErrorInvalidHandle: "CUDA_ERROR_INVALID_HANDLE",
	ErrorNotFound: "CUDA_ERROR_NOT_FOUND", ErrorNotReady: "CUDA_ERROR_NOT_READY",
	ErrorIllegalAddress: "CUDA_ERROR_ILLEGAL_ADDRESS", ErrorLaunchOutOfResources: "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES",
	ErrorLaunchFailed: "CUDA_ERROR_LAUNCH_FAILED", ErrorNotSupported: "CUDA_ERROR_NOT_SUPPORTED",
	ErrorUnknown: "CUDA_ERROR_UNKNOWN", ErrorInsufficientDriver: "CUDA_ERROR_INSUFFICIENT_DRIVER",
	ErrorNoBinaryForGPU: "CUDA_ERROR_NO_BINARY_FOR_GPU", ErrorSharedObjectInitFailed: "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED",
}

// String returns the cuda.h name of the code, or "CUresult(N)".
func (r Result) String() string {
	if s, ok := resultNames[r]; ok {
		return s
	}
	return fmt.Sprintf("CUresult(%d)", int32(r))
}

func (r Result) Error() string { return r.String() }

// Error is a failed driver call: the entry point, its CUresult, the driver's name and text
// for the code (cuGetErrorName, cuGetErrorString) and, for module loads, the JIT error log.
type Error struct {
	Call string
	Code Result
	Name string
	Text string
	Log  string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("cuda: %s failed: %s (%d): %s", e.Call, e.Name, int32(e.Code), e.Text)
	if e.Log != "" {
		s += "\nJIT error log:\n" + e.Log
	}
	return s
}

// Unwrap returns the code, so that errors.Is(err, cuda.ErrorOutOfMemory) works.
func (e *Error) Unwrap() error { return e.Code }

// IsCode reports whether err carries the driver result code r.
func IsCode(err error, r Result) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == r
}
