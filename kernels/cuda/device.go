package cuda

import (
	"fmt"
	"sync"

	"github.com/mtbert/mtbert/kernels"
)

// Device attributes read by DeviceInfo (CUdevice_attribute in cuda.h).
const (
	attrMaxThreadsPerBlock     = 1
	attrMaxSharedPerBlock      = 8
	attrWarpSize               = 10
	attrClockRate              = 13
	attrMultiprocessorCount    = 16
	attrMemoryClockRate        = 36
	attrGlobalMemoryBusWidth   = 37
	attrL2CacheSize            = 38
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
	attrMaxSharedPerSM         = 81
	attrMaxSharedPerBlockOptin = 97
)

// DeviceInfo describes one CUDA device.
type DeviceInfo struct {
	Index               int
	Name                string
	Major, Minor        int    // compute capability
	SMs                 int    // multiprocessors
	TotalMem            uint64 // bytes
	MaxThreadsPerBlock  int
	WarpSize            int
	SharedPerBlock      int // bytes of shared memory a block gets without opting in
	SharedPerBlockOptin int // bytes a block may opt in to (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
	SharedPerSM         int
	L2Cache             int
	ClockKHz            int
	MemClockKHz         int
	BusWidth            int
}

// String returns a one-line summary: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
func (i DeviceInfo) String() string {
	return fmt.Sprintf("%s (sm_%d%d, %d SMs, %.1f GiB)", i.Name, i.Major, i.Minor, i.SMs, float64(i.TotalMem)/(1<<30))
}

// DriverVersion returns the CUDA version the loaded driver supports, as 1000*major + 10*minor.
func DriverVersion() (int, error) {
	d, err := loadDriver(LibPath())
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(0, "cuDriverGetVersion", d.sym.cuDriverGetVersion, d.outp(0)); err != nil {
		return 0, err
	}
	return int(int32(d.c.out[0])), nil
}

// DeviceCount returns the number of CUDA devices the driver sees.
func DeviceCount() (int, error) {
	d, err := loadDriver(LibPath())
	if err != nil {
		return 0, err
	}
	return d.deviceCount()
}

func (d *driver) deviceCount() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(0, "cuDeviceGetCount", d.sym.cuDeviceGetCount, d.outp(0)); err != nil {
		return 0, err
	}
	return int(int32(d.c.out[0])), nil
}

// Devices describes every device the driver sees.
func Devices() ([]DeviceInfo, error) {
	d, err := loadDriver(LibPath())
	if err != nil {
		return nil, err
	}
	n, err := d.deviceCount()
	if err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, n)
	for i := range out {
		dev, err := d.device(i)
		if err != nil {
			return nil, err
		}
		if out[i], err = d.deviceInfo(i, dev); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *driver) device(i int) (int32, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.out[0] = 0
	if err := d.do(0, "cuDeviceGet", d.sym.cuDeviceGet, d.outp(0), uintptr(i)); err != nil {
		return 0, err
	}
	return int32(d.c.out[0]), nil
}

func (d *driver) attr(dev int32, a int) (int, error) {
	d.c.out[0] = 0
	if err := d.do(0, "cuDeviceGetAttribute", d.sym.cuDeviceGetAttribute, d.outp(0), uintptr(a), uintptr(dev)); err != nil {
		return 0, err
	}
	return int(int32(d.c.out[0])), nil
}

func (d *driver) deviceInfo(index int, dev int32) (DeviceInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info := DeviceInfo{Index: index}
	name := new([256]byte)
	d.c.keep[0] = unsafePtr(&name[0])
	if err := d.do(0, "cuDeviceGetName", d.sym.cuDeviceGetName, addr(&name[0]), uintptr(len(name)), uintptr(dev)); err != nil {
		return info, err
	}
	info.Name = goString(&name[0])
	d.c.out[0] = 0
	if err := d.do(0, "cuDeviceTotalMem_v2", d.sym.cuDeviceTotalMem, d.outp(0), uintptr(dev)); err != nil {
		return info, err
	}
	info.TotalMem = d.c.out[0]
	for _, a := range []struct {
		p    *int
		attr int
	}{
		{&info.Major, attrComputeCapabilityMajor}, {&info.Minor, attrComputeCapabilityMinor},
		{&info.SMs, attrMultiprocessorCount}, {&info.MaxThreadsPerBlock, attrMaxThreadsPerBlock},
		{&info.WarpSize, attrWarpSize}, {&info.SharedPerBlock, attrMaxSharedPerBlock},
		{&info.SharedPerBlockOptin, attrMaxSharedPerBlockOptin}, {&info.SharedPerSM, attrMaxSharedPerSM},
		{&info.L2Cache, attrL2CacheSize}, {&info.ClockKHz, attrClockRate},
		{&info.MemClockKHz, attrMemoryClockRate}, {&info.BusWidth, attrGlobalMemoryBusWidth},
	} {
		v, err := d.attr(dev, a.attr)
		if err != nil {
			return info, err
		}
		*a.p = v
	}
	return info, nil
}

// Context is an open CUDA device: its primary context, a default stream, the caching
// allocator and the kernel modules loaded so far. Every driver call it makes runs on the
// package's driver thread with this context current, so a Context may be used from any
// goroutine.
type Context struct {
	d     *driver
	index int
	dev   int32
	h     uintptr
	info  DeviceInfo

	stream *Stream
	alloc  *Allocator

	modMu sync.Mutex
	mods  map[string]*Module
	funcs map[kernelKey]*Function
}

var (
	openMu   sync.Mutex
	contexts = map[string]*Context{}
)

// Open opens CUDA device index through the driver library named by LibPath: it loads the
// library and calls cuInit if not yet done, retains the device's primary context and creates
// a default stream. Opening the same device again returns the same Context. The errors say
// why CUDA is unusable: the library cannot be loaded (*LoadError), cuInit failed (*Error with
// its code), there is no device, or index is out of range.
func Open(index int) (*Context, error) {
	return openWith(LibPath(), index)
}

func openWith(path string, index int) (*Context, error) {
	d, err := loadDriver(path)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s#%d", path, index)
	openMu.Lock()
	defer openMu.Unlock()
	if c, ok := contexts[key]; ok {
		return c, nil
	}
	n, err := d.deviceCount()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("cuda: the driver (%s) reports no CUDA device", path)
	}
	if index < 0 || index >= n {
		return nil, fmt.Errorf("cuda: device cuda:%d requested but the driver (%s) reports %d device(s): cuda:0..cuda:%d", index, path, n, n-1)
	}
	dev, err := d.device(index)
	if err != nil {
		return nil, err
	}
	info, err := d.deviceInfo(index, dev)
	if err != nil {
		return nil, err
	}
	c := &Context{d: d, index: index, dev: dev, info: info, mods: map[string]*Module{}, funcs: map[kernelKey]*Function{}}
	d.mu.Lock()
	d.c.out[0] = 0
	err = d.do(0, "cuDevicePrimaryCtxRetain", d.sym.cuDevicePrimaryCtxRetain, d.outp(0), uintptr(dev))
	c.h = uintptr(d.c.out[0])
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if c.stream, err = c.NewStream(); err != nil {
		return nil, err
	}
	c.alloc = newAllocator(c)
	contexts[key] = c
	return c, nil
}

// Info describes the context's device.
func (c *Context) Info() DeviceInfo { return c.info }

// Device returns the kernels.Device this context is.
func (c *Context) Device() kernels.Device { return kernels.Device{Kind: kernels.CUDA, Index: c.index} }

// Stream returns the context's default stream, on which Alloc and the launch wrappers work
// unless told otherwise.
func (c *Context) Stream() *Stream { return c.stream }

// Allocator returns the context's caching device allocator.
func (c *Context) Allocator() *Allocator { return c.alloc }

// Synchronize waits for all work on the device (cuCtxSynchronize).
func (c *Context) Synchronize() error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.d.do(c.h, "cuCtxSynchronize", c.d.sym.cuCtxSynchronize)
}

// MemInfo returns the free and total device memory in bytes (cuMemGetInfo).
func (c *Context) MemInfo() (free, total uint64, err error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.d.c.out[0], c.d.c.out[1] = 0, 0
	if err := c.d.do(c.h, "cuMemGetInfo_v2", c.d.sym.cuMemGetInfo, c.d.outp(0), c.d.outp(1)); err != nil {
		return 0, 0, err
	}
	return c.d.c.out[0], c.d.c.out[1], nil
}

// Selection is the outcome of Select: the device to compute on, its Context when it is a
// CUDA device, and, when "auto" fell back to the CPU, a one-line Note saying why.
type Selection struct {
	Device kernels.Device
	Ctx    *Context
	Note   string
}

// Select opens the device a parsed request names (see kernels.ResolveDevice). "cpu" needs
// nothing; "cuda" and "cuda:N" return the reason as an error when the device cannot be
// opened; "auto" opens cuda:0 when it can and otherwise selects the CPU with a Note. The
// usual use in a command:
//
//	req, err := kernels.ResolveDevice(*deviceFlag)
//	...
//	sel, err := cuda.Select(req)
//	...
//	if sel.Note != "" {
//		log.Print(sel.Note)
//	}
func Select(req kernels.DeviceRequest) (Selection, error) {
	return selectWith(LibPath(), req)
}

func selectWith(path string, req kernels.DeviceRequest) (Selection, error) {
	if req.Kind == kernels.CPU && !req.Auto {
		return Selection{Device: kernels.Host}, nil
	}
	c, err := openWith(path, req.Index)
	if err != nil {
		if req.Auto {
			return Selection{Device: kernels.Host, Note: "device auto: using the CPU because CUDA is unusable: " + oneLine(err.Error())}, nil
		}
		return Selection{}, fmt.Errorf("device %s: %w", req.Device, err)
	}
	return Selection{Device: c.Device(), Ctx: c}, nil
}

func oneLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// Probe describes in one line what CUDA this process can use: the driver library, its CUDA
// version and the devices, or the reason there is none (as an error).
func Probe() (string, error) {
	path := LibPath()
	if _, err := loadDriver(path); err != nil {
		return "", err
	}
	v, err := DriverVersion()
	if err != nil {
		return "", err
	}
	devs, err := Devices()
	if err != nil {
		return "", err
	}
	if len(devs) == 0 {
		return "", fmt.Errorf("cuda: the driver (%s) reports no CUDA device", path)
	}
	s := fmt.Sprintf("cuda: %s, CUDA %d.%d, %d device(s):", path, v/1000, v%1000/10, len(devs))
	for _, d := range devs {
		s += fmt.Sprintf(" cuda:%d %v;", d.Index, d)
	}
	return s[:len(s)-1], nil
}
