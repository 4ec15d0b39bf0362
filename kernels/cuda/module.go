package cuda

import (
	"bytes"
	"fmt"
	"math"
	"unsafe"
)

// JIT options of cuModuleLoadDataEx (CUjit_option in cuda.h).
const (
	jitInfoLogBuffer          = 3
	jitInfoLogBufferSizeBytes = 4
	jitErrorLogBuffer         = 5
	jitErrorLogBufferSize     = 6
)

// jitLogSize is the size of each JIT log buffer.
const jitLogSize = 32 << 10

// Module is a loaded PTX module.
type Module struct {
	c    *Context
	h    uintptr
	name string
	// InfoLog is what the JIT wrote to its info log while loading (may be empty).
	InfoLog string
}

// LoadPTX loads a PTX module (cuModuleLoadDataEx) under a name used in errors. On failure
// the returned *Error carries the JIT's error log.
func (c *Context) LoadPTX(name string, ptx []byte) (*Module, error) {
	img := make([]byte, len(ptx)+1) // NUL-terminated copy
	copy(img, ptx)
	errLog := make([]byte, jitLogSize)
	infoLog := make([]byte, jitLogSize)
	opts := &[4]int32{jitErrorLogBuffer, jitErrorLogBufferSize, jitInfoLogBuffer, jitInfoLogBufferSizeBytes}
	vals := &[4]uintptr{addr(&errLog[0]), jitLogSize, addr(&infoLog[0]), jitLogSize}
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.keep = [6]unsafe.Pointer{unsafePtr(&img[0]), unsafePtr(&errLog[0]), unsafePtr(&infoLog[0]), unsafePtr(opts), unsafePtr(vals)}
	d.c.out[0] = 0
	err := d.do(c.h, "cuModuleLoadDataEx", d.sym.cuModuleLoadDataEx,
		d.outp(0), addr(&img[0]), uintptr(len(opts)), addr(&opts[0]), addr(&vals[0]))
	logOf := func(b []byte, n uintptr) string {
		if n > uintptr(len(b)) {
			n = uintptr(len(b))
		}
		b = b[:n]
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(bytes.TrimSpace(b))
	}
	if err != nil {
		e := err.(*Error)
		e.Call = fmt.Sprintf("cuModuleLoadDataEx(%s)", name)
		e.Log = logOf(errLog, vals[1])
		if e.Log == "" {
			e.Log = "(the JIT wrote no error log)"
		}
		return nil, e
	}
	return &Module{c: c, h: uintptr(d.c.out[0]), name: name, InfoLog: logOf(infoLog, vals[3])}, nil
}

// Function is a kernel of a loaded module.
type Function struct {
	m    *Module
	h    uintptr
	name string
	// dynSmem is the dynamic shared memory size the function has been allowed so far.
	dynSmem int
}

// Function looks up the kernel named name (cuModuleGetFunction).
func (m *Module) Function(name string) (*Function, error) {
	cname := append([]byte(name), 0)
	d := m.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.keep[0] = unsafePtr(&cname[0])
	d.c.out[0] = 0
	if err := d.do(m.c.h, "cuModuleGetFunction", d.sym.cuModuleGetFunction, d.outp(0), m.h, addr(&cname[0])); err != nil {
		e := err.(*Error)
		e.Call = fmt.Sprintf("cuModuleGetFunction(%s, %q)", m.name, name)
		return nil, e
	}
	return &Function{m: m, h: uintptr(d.c.out[0]), name: name, dynSmem: 48 << 10}, nil
}

// Name returns the kernel's name.
func (f *Function) Name() string { return f.name }

// FuncAttribute is a CUfunction_attribute.
type FuncAttribute int

// The function attributes (cuda.h).
const (
	FuncMaxThreadsPerBlock        FuncAttribute = 0
	FuncSharedSizeBytes           FuncAttribute = 1
	FuncConstSizeBytes            FuncAttribute = 2
	FuncLocalSizeBytes            FuncAttribute = 3
	FuncNumRegs                   FuncAttribute = 4
	FuncPTXVersion                FuncAttribute = 5
	FuncBinaryVersion             FuncAttribute = 6
	FuncCacheModeCA               FuncAttribute = 7
	FuncMaxDynamicSharedSizeBytes FuncAttribute = 8
)

// Attribute reads a function attribute (cuFuncGetAttribute).
func (f *Function) Attribute(a FuncAttribute) (int, error) {
	d := f.m.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(f.m.c.h, "cuFuncGetAttribute", d.sym.cuFuncGetAttribute, d.outp(0), uintptr(a), f.h); err != nil {
		return 0, err
	}
	return int(int32(d.c.out[0])), nil
}

// SetAttribute sets a function attribute (cuFuncSetAttribute).
func (f *Function) SetAttribute(a FuncAttribute, v int) error {
	d := f.m.c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return f.setAttr(a, v)
}

func (f *Function) setAttr(a FuncAttribute, v int) error {
	d := f.m.c.d
	if err := d.do(f.m.c.h, "cuFuncSetAttribute", d.sym.cuFuncSetAttribute, f.h, uintptr(a), uintptr(uint32(int32(v)))); err != nil {
		e := err.(*Error)
		e.Call = fmt.Sprintf("cuFuncSetAttribute(%s, %d, %d)", f.name, a, v)
		return e
	}
	if a == FuncMaxDynamicSharedSizeBytes {
		f.dynSmem = v
	}
	return nil
}

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z int }

// Launch queues the kernel on s (nil: the context's stream) with the given grid, block and
// dynamic shared memory bytes. args are the kernel's parameters in order, each encoded by
// Ptr, I32, I64, U64 or F32: they are written to an argument arena that lives as long as the
// driver, and cuLaunchKernel gets the arena's void**, so a launch allocates nothing. When
// smem exceeds 48 KiB the function is first allowed that much dynamic shared memory
// (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES), once.
func (f *Function) Launch(s *Stream, grid, block Dim3, smem int, args ...uint64) error {
	if len(args) > maxParams {
		panic(fmt.Sprintf("cuda: Launch(%s): %d arguments, at most %d", f.name, len(args), maxParams))
	}
	c := f.m.c
	if s == nil {
		s = c.stream
	}
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if smem > f.dynSmem {
		if err := f.setAttr(FuncMaxDynamicSharedSizeBytes, smem); err != nil {
			return err
		}
	}
	copy(d.c.vals[:], args)
	err := d.do(c.h, "cuLaunchKernel", d.sym.cuLaunchKernel, f.h,
		dim(grid.X), dim(grid.Y), dim(grid.Z), dim(block.X), dim(block.Y), dim(block.Z),
		uintptr(uint32(smem)), s.h, addr(&d.c.params[0]), 0)
	if err != nil {
		e := err.(*Error)
		e.Call = fmt.Sprintf("cuLaunchKernel(%s, grid %v, block %v, smem %d)", f.name, grid, block, smem)
		return e
	}
	return nil
}

func dim(v int) uintptr { return uintptr(uint32(int32(v))) }

// Kernel argument encoders for Launch: each value occupies one 8-byte slot of the argument
// arena, little-endian, so a 4-byte parameter reads the low half.

// Ptr encodes a device buffer's address (a T* parameter); the zero Buffer encodes 0.
func Ptr(b Buffer) uint64 { return uint64(b.Ptr) }

// DPtr encodes a device address.
func DPtr(p DevicePtr) uint64 { return uint64(p) }

// I32 encodes an int parameter.
func I32(v int) uint64 { return uint64(uint32(int32(v))) }

// I64 encodes a long long parameter.
func I64(v int) uint64 { return uint64(int64(v)) }

// U64 encodes an unsigned long long parameter.
func U64(v uint64) uint64 { return v }

// F32 encodes a float parameter.
func F32(v float32) uint64 { return uint64(math.Float32bits(v)) }
