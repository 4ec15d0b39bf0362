package cuda

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/mtbert/mtbert/kernels"
)

// The driver surface: loading, errors without a driver, devices, memory, streams, events,
// modules and launches. The tests that need a driver run on every backend of the suite.

func TestNoDriverErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libcuda-missing.so.1")
	_, err := openWith(missing, 0)
	var le *LoadError
	if !errors.As(err, &le) || le.Path != missing {
		t.Fatalf("opening a missing library: %v, want a *LoadError for %s", err, missing)
	}
	for _, want := range []string{"cannot load the driver library", missing, LibEnv} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// The default library's message points at the driver installation instead.
	if s := (&LoadError{Path: DefaultLib, Err: errors.New("x")}).Error(); !strings.Contains(s, "NVIDIA driver") {
		t.Errorf("LoadError for %s: %q", DefaultLib, s)
	}
	// A library that is not a driver: missing entry points are named.
	notDriver := filepath.Join(t.TempDir(), "notdriver.so")
	if err := os.WriteFile(notDriver, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(notDriver, 0); err == nil || !strings.Contains(err.Error(), "cannot load") {
		t.Errorf("opening a non-library: %v", err)
	}

	req := func(s string) kernels.DeviceRequest {
		r, err := kernels.ParseDevice(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sel, err := selectWith(missing, req("cpu"))
	if err != nil || sel.Device != kernels.Host || sel.Ctx != nil || sel.Note != "" {
		t.Errorf("cpu: %+v, %v", sel, err)
	}
	sel, err = selectWith(missing, req("auto"))
	if err != nil || sel.Device != kernels.Host || sel.Ctx != nil {
		t.Errorf("auto without a driver: %+v, %v; want the CPU", sel, err)
	}
	if !strings.HasPrefix(sel.Note, "device auto: using the CPU because CUDA is unusable: cuda: cannot load") || strings.Contains(sel.Note, "\n") {
		t.Errorf("auto note %q", sel.Note)
	}
	_, err = selectWith(missing, req("cuda:1"))
	if err == nil || !strings.HasPrefix(err.Error(), "device cuda:1: cuda: cannot load the driver library") {
		t.Errorf("cuda:1 without a driver: %v", err)
	}
}

func TestProbe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		t.Setenv(LibEnv, c.d.path)
		s, err := Probe()
		if err != nil || !strings.HasPrefix(s, "cuda: "+c.d.path+", CUDA ") || !strings.Contains(s, "cuda:0 "+c.Info().Name) {
			t.Errorf("Probe() = %q, %v", s, err)
		}
		t.Log(s)
	})
	t.Setenv(LibEnv, filepath.Join(t.TempDir(), "none.so"))
	if _, err := Probe(); err == nil || !strings.Contains(err.Error(), "cannot load") {
		t.Errorf("Probe without a driver: %v", err)
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Call: "cuMemAlloc_v2", Code: ErrorOutOfMemory, Name: "CUDA_ERROR_OUT_OF_MEMORY", Text: "out of memory"}
	if got, want := e.Error(), "cuda: cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var err error = e
	if !errors.Is(err, ErrorOutOfMemory) || errors.Is(err, ErrorInvalidValue) || !IsCode(err, ErrorOutOfMemory) {
		t.Error("errors.Is does not see the code")
	}
	if Result(12345).String() != "CUresult(12345)" || ErrorInvalidPTX.String() != "CUDA_ERROR_INVALID_PTX" {
		t.Error("Result.String")
	}
}

func TestDevices(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		info := c.Info()
		t.Logf("cuda:0 = %v; %d bytes shared/block opt-in", info, info.SharedPerBlockOptin)
		if info.Name == "" || info.Major < 1 || info.SMs < 1 || info.TotalMem == 0 || info.WarpSize != 32 || info.MaxThreadsPerBlock < 1024 {
			t.Errorf("implausible device info %+v", info)
		}
		d := c.d
		n, err := d.deviceCount()
		if err != nil || n < 1 {
			t.Fatalf("device count %d, %v", n, err)
		}
		_, err = openWith(d.path, n)
		if err == nil || !strings.Contains(err.Error(), "requested but the driver") {
			t.Errorf("opening cuda:%d of %d devices: %v", n, n, err)
		}
		if again, err := openWith(d.path, 0); err != nil || again != c {
			t.Errorf("opening cuda:0 twice gave another context (%v)", err)
		}
		r, _ := kernels.ParseDevice("auto")
		if sel, err := selectWith(d.path, r); err != nil || sel.Ctx != c || sel.Note != "" || sel.Device.String() != "cuda:0" {
			t.Errorf("auto with a driver: %+v, %v", sel, err)
		}
		if free, total, err := c.MemInfo(); err != nil || total == 0 || free > total {
			t.Errorf("MemInfo %d/%d, %v", free, total, err)
		}
	})
}

func TestMemcpyRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		for _, n := range []int{1, 7, 1027, 1 << 20} {
			src := make([]float32, n)
			for i := range src {
				src[i] = float32(i)*0.5 - 3
			}
			p, err := c.MemAlloc(4 * n)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CopyHtoD(p, unsafe.Pointer(&src[0]), 4*n); err != nil {
				t.Fatal(err)
			}
			q, err := c.MemAlloc(4 * n)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CopyDtoD(q, p, 4*n); err != nil {
				t.Fatal(err)
			}
			dst := make([]float32, n)
			if err := c.CopyDtoH(unsafe.Pointer(&dst[0]), q, 4*n); err != nil {
				t.Fatal(err)
			}
			for i := range src {
				if dst[i] != src[i] {
					t.Fatalf("n=%d: element %d came back %v, want %v", n, i, dst[i], src[i])
				}
			}
			c.MemFree(p)
			c.MemFree(q)
		}
	})
}

func TestPinnedAsyncCopyAndMemset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		const n = 1027
		s, err := c.NewStream()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		h, err := c.AllocHost(4 * n)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Free()
		hv := HostSlice[float32](h)
		if len(hv) != n {
			t.Fatalf("HostSlice has %d elements", len(hv))
		}
		for i := range hv {
			hv[i] = float32(i)
		}
		buf, err := c.allocator().Alloc(4*n+3, s)
		if err != nil {
			t.Fatal(err)
		}
		defer buf.Free()
		if err := s.CopyHtoDAsync(buf.Ptr, unsafe.Pointer(&hv[0]), 4*n); err != nil {
			t.Fatal(err)
		}
		// Overwrite elements [5, 15) with 2.5 and bytes of element 0 with 0x3f (= 0.74803925).
		if err := s.MemsetD32(buf.Ptr+20, math.Float32bits(2.5), 10); err != nil {
			t.Fatal(err)
		}
		if err := s.MemsetD8(buf.Ptr, 0x3f, 4); err != nil {
			t.Fatal(err)
		}
		// The copy from page-locked memory is asynchronous: wait before reusing hv.
		check(t, s.Synchronize())
		clear(hv)
		if err := s.CopyDtoHAsync(unsafe.Pointer(&hv[0]), buf.Ptr, 4*n); err != nil {
			t.Fatal(err)
		}
		if err := s.Synchronize(); err != nil {
			t.Fatal(err)
		}
		for i, v := range hv {
			want := float32(i)
			switch {
			case i == 0:
				want = math.Float32frombits(0x3f3f3f3f)
			case i >= 5 && i < 15:
				want = 2.5
			}
			if v != want {
				t.Fatalf("element %d = %v, want %v", i, v, want)
			}
		}
		if err := c.MemsetD32(buf.Ptr, 7, n); err != nil {
			t.Fatal(err)
		}
		got := make([]uint32, n)
		if err := Download(s, got, buf); err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != 7 {
				t.Fatalf("after MemsetD32: word %d = %d", i, v)
			}
		}
	})
}

// allocator is the context's allocator (a helper for tests that name the stream).
func (c *Context) allocator() *Allocator { return c.alloc }

func TestStreamEventOrdering(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		const n = 1 << 16
		s1, s2 := c.Stream(), mustStream(t, c)
		defer s2.Destroy()
		x := mustAlloc(t, c, 4*n)
		defer x.Free()
		start, end := mustEvent(t, c, true), mustEvent(t, c, true)
		ready := mustEvent(t, c, false)
		// s1: x = 1, then x += 2·x (= 3); s2 waits for ready, then scales x by 10.
		check(t, start.Record(s1))
		check(t, s1.FillF32(x, 1, n))
		check(t, s1.AxpyF32(x, x, 2, n))
		check(t, ready.Record(s1))
		check(t, s2.Wait(ready))
		check(t, s2.ScaleF32(x, x, 10, n))
		check(t, end.Record(s2))
		check(t, end.Synchronize())
		done, err := end.Done()
		if err != nil || !done {
			t.Errorf("event after Synchronize: done=%v, %v", done, err)
		}
		ms, err := ElapsedMs(start, end)
		if err != nil || ms < 0 || math.IsNaN(float64(ms)) {
			t.Errorf("ElapsedMs = %v, %v", ms, err)
		}
		got := make([]float32, n)
		check(t, Download(s2, got, x))
		for i, v := range got {
			if v != 30 {
				t.Fatalf("x[%d] = %v, want 30 (fill 1, axpy to 3, scale to 30 in stream order)", i, v)
			}
		}
		for _, e := range []*Event{start, end, ready} {
			check(t, e.Destroy())
		}
	})
}

func TestModuleLoadErrorCarriesLog(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		_, err := c.LoadPTX("broken.ptx", []byte("this is not PTX at all\n.entry broken(\n"))
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("loading invalid PTX: %v, want an *Error", err)
		}
		if e.Code != ErrorInvalidPTX && e.Code != ErrorInvalidImage {
			t.Errorf("code %v, want CUDA_ERROR_INVALID_PTX or _IMAGE", e.Code)
		}
		if e.Code == ErrorInvalidPTX && (e.Log == "" || e.Log == "(the JIT wrote no error log)" || !strings.Contains(err.Error(), "JIT error log:\n"+e.Log)) {
			t.Errorf("no JIT log in %q", err)
		}
		if !strings.Contains(e.Call, "broken.ptx") {
			t.Errorf("call %q does not name the module", e.Call)
		}
		t.Logf("%v", err)
		// Well-formed PTX with an unknown instruction: only a real JIT sees it.
		bogus := ".version 8.0\n.target sm_80\n.address_size 64\n.visible .entry mt_bogus()\n{\n\tbogus.instruction.x %r1;\n\tret;\n}\n"
		_, err = c.LoadPTX("bogus.ptx", []byte(bogus))
		if isEmulator(c) {
			t.Logf("emulator (does not compile PTX): %v", err)
		} else if !errors.As(err, &e) || e.Code != ErrorInvalidPTX || !strings.Contains(e.Log, "bogus") {
			t.Errorf("PTX with an unknown instruction: %v; want CUDA_ERROR_INVALID_PTX with a JIT log naming it", err)
		} else {
			t.Logf("%v", err)
		}
		m, err := c.Module("elementwise")
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Function("mt_no_such_kernel")
		if !IsCode(err, ErrorNotFound) || !strings.Contains(err.Error(), "mt_no_such_kernel") {
			t.Errorf("missing function: %v", err)
		}
		if _, err := c.Kernel("no_such_module", "x"); err == nil || !strings.Contains(err.Error(), "ptx/no_such_module.ptx is not embedded") {
			t.Errorf("missing module: %v", err)
		}
	})
}

func TestLaunchErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		f, err := c.Kernel("elementwise", "mt_fill_f32")
		if err != nil {
			t.Fatal(err)
		}
		x := mustAlloc(t, c, 4*64)
		defer x.Free()
		for _, tc := range []struct {
			grid, block Dim3
		}{
			{Dim3{0, 1, 1}, Dim3{64, 1, 1}},
			{Dim3{1, 1, 1}, Dim3{2048, 1, 1}},
			{Dim3{1, 1, 1}, Dim3{64, 64, 1}},
			{Dim3{1, 1 << 17, 1}, Dim3{64, 1, 1}},
		} {
			err := f.Launch(nil, tc.grid, tc.block, 0, Ptr(x), F32(1), I64(64))
			if !IsCode(err, ErrorInvalidValue) {
				t.Errorf("grid %v block %v: %v, want CUDA_ERROR_INVALID_VALUE", tc.grid, tc.block, err)
			} else if !strings.Contains(err.Error(), "cuLaunchKernel(mt_fill_f32") {
				t.Errorf("error does not name the kernel: %v", err)
			}
		}
		// Dynamic shared memory above 48 KiB: the attribute is raised first, once.
		if err := f.Launch(nil, Dim3{1, 1, 1}, Dim3{64, 1, 1}, 64<<10, Ptr(x), F32(1), I64(64)); err != nil {
			t.Errorf("launch with 64 KiB of dynamic shared memory: %v", err)
		}
		if v, err := f.Attribute(FuncMaxDynamicSharedSizeBytes); err != nil || v != 64<<10 {
			t.Errorf("max dynamic shared memory attribute = %d, %v; want 65536", v, err)
		}
		if err := f.Launch(nil, Dim3{1, 1, 1}, Dim3{64, 1, 1}, 1<<30, Ptr(x), F32(1), I64(64)); err == nil {
			t.Error("launch with 1 GiB of shared memory succeeded")
		}
		check(t, c.Synchronize())
	})
}

func TestLaunchDoesNotAllocate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		x := mustAlloc(t, c, 4*1027)
		defer x.Free()
		y := mustAlloc(t, c, 4*1027)
		defer y.Free()
		s := c.Stream()
		check(t, s.FillF32(x, 1, 1027)) // loads the module
		allocs := testing.AllocsPerRun(50, func() {
			if err := s.AxpyF32(y, x, 0.5, 1027); err != nil {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Errorf("a launch makes %v Go allocations, want 0", allocs)
		}
		st0 := c.Allocator().Stats()
		allocs = testing.AllocsPerRun(50, func() {
			b, err := c.Alloc(4096)
			if err != nil {
				panic(err)
			}
			b.Free()
		})
		st1 := c.Allocator().Stats()
		if allocs != 0 {
			t.Errorf("a cached Alloc+Free makes %v Go allocations, want 0", allocs)
		}
		if st1.DriverAllocs != st0.DriverAllocs {
			t.Errorf("steady alloc/free made %d driver allocations", st1.DriverAllocs-st0.DriverAllocs)
		}
		t.Logf("Go allocations per cached Alloc+Free: %v; %v", allocs, st1)
	})
}

func TestAllocatorOnDevice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		a := c.Allocator()
		check(t, a.EmptyCache())
		st0 := a.Stats()
		sizes := []int{7, 1027 * 4, 768 * 768 * 4, 3 << 20, 12 << 20}
		step := func() {
			var bufs []Buffer
			for _, n := range sizes {
				b, err := c.Alloc(n)
				if err != nil {
					t.Fatal(err)
				}
				check(t, c.Stream().FillF32(b, 1, min(n/4, 1024)))
				bufs = append(bufs, b)
			}
			for _, b := range bufs {
				b.Free()
			}
		}
		step()
		warm := a.Stats()
		for i := 0; i < 20; i++ {
			step()
		}
		st := a.Stats()
		if st.DriverAllocs != warm.DriverAllocs {
			t.Errorf("steady-state loop made %d driver allocations", st.DriverAllocs-warm.DriverAllocs)
		}
		if st.CacheHits-warm.CacheHits < 20*int64(len(sizes)) {
			t.Errorf("cache hits %d, want >= %d", st.CacheHits-warm.CacheHits, 20*len(sizes))
		}
		if st.Allocated != st0.Allocated || st.Reserved <= st0.Reserved {
			t.Errorf("stats after the loop: %v (before %v)", st, st0)
		}
		check(t, c.Synchronize())
		check(t, a.EmptyCache())
		if e := a.Stats(); e.Reserved != st0.Reserved || e.DriverFrees <= st0.DriverFrees {
			t.Errorf("EmptyCache left %v", e)
		}
		t.Logf("%v", st)
	})
}

func mustStream(t *testing.T, c *Context) *Stream {
	t.Helper()
	s, err := c.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustEvent(t *testing.T, c *Context, timing bool) *Event {
	t.Helper()
	e, err := c.NewEvent(timing)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustAlloc(t *testing.T, c *Context, n int) Buffer {
	t.Helper()
	b, err := c.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// isEmulator reports whether c is the host emulation of the driver.
func isEmulator(c *Context) bool { return strings.Contains(c.Info().Name, "emulator") }
