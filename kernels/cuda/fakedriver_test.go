package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels"
)

// fakeDriverSrc is a driver library that fails in a chosen way, to check what Open and
// Select say: cuInit's code, no device, an index out of range.
const fakeDriverSrc = `
typedef int CUresult;
#ifndef INIT_RESULT
#define INIT_RESULT 0
#endif
#ifndef DEVICES
#define DEVICES 0
#endif
static const char* names[] = {"CUDA_SUCCESS", "CUDA_ERROR_NO_DEVICE", "CUDA_ERROR_INSUFFICIENT_DRIVER"};
static const char* texts[] = {"no error", "no CUDA-capable device is detected", "CUDA driver version is insufficient for CUDA runtime version"};
static int idx(CUresult r) { return r == 100 ? 1 : r == 35 ? 2 : 0; }
CUresult cuGetErrorName(CUresult r, const char** s) { *s = names[idx(r)]; return 0; }
CUresult cuGetErrorString(CUresult r, const char** s) { *s = texts[idx(r)]; return 0; }
CUresult cuInit(unsigned f) { return INIT_RESULT; }
CUresult cuDeviceGetCount(int* n) { *n = DEVICES; return 0; }
CUresult cuDeviceGet(int* d, int i) { *d = i; return i < DEVICES ? 0 : 101; }
CUresult cuDevicePrimaryCtxRetain(void** c, int d) { return 999; }
CUresult cuCtxSetCurrent(void* c) { return 0; }
CUresult cuMemAlloc_v2(void* p, unsigned long n) { return 999; }
CUresult cuMemFree_v2(void* p) { return 999; }
CUresult cuMemcpyHtoD_v2(void* a, void* b, unsigned long n) { return 999; }
CUresult cuMemcpyDtoH_v2(void* a, void* b, unsigned long n) { return 999; }
CUresult cuModuleLoadDataEx(void* a, void* b, unsigned n, void* c, void* d) { return 999; }
CUresult cuModuleGetFunction(void* a, void* b, void* c) { return 999; }
CUresult cuLaunchKernel(void* f, unsigned a, unsigned b, unsigned c, unsigned d, unsigned e, unsigned g, unsigned s, void* st, void** p, void** x) { return 999; }
`

// buildFakeDriver compiles fakeDriverSrc with the given -D flags, or skips without a compiler.
func buildFakeDriver(t *testing.T, name string, defs ...string) string {
	t.Helper()
	cc := ""
	for _, c := range []string{os.Getenv("CC"), "clang-19", "clang", "gcc", "cc"} {
		if c == "" {
			continue
		}
		if _, err := exec.LookPath(c); err == nil {
			cc = c
			break
		}
	}
	if cc == "" {
		t.Skip("no C compiler (clang-19, clang, gcc, cc or $CC) to build a fake driver")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, name+".c")
	if err := os.WriteFile(src, []byte(fakeDriverSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, name+".so")
	args := append([]string{"-shared", "-fPIC", "-o", lib, src}, defs...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", cc, args, err, out)
	}
	return lib
}

func TestDriverFailureModes(t *testing.T) {
	req := func(s string) kernels.DeviceRequest {
		r, err := kernels.ParseDevice(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	noInit := buildFakeDriver(t, "noinit", "-DINIT_RESULT=100")
	_, err := selectWith(noInit, req("cuda"))
	if want := "device cuda:0: cuda: cuInit failed: CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"; err == nil || err.Error() != want {
		t.Errorf("cuInit failing: %v\nwant %s", err, want)
	}
	if !IsCode(err, ErrorNoDevice) {
		t.Errorf("the cuInit error does not carry its code: %v", err)
	}
	sel, err := selectWith(noInit, req("auto"))
	if err != nil || sel.Ctx != nil || !strings.Contains(sel.Note, "cuInit failed: CUDA_ERROR_NO_DEVICE (100)") {
		t.Errorf("auto with cuInit failing: %+v, %v", sel, err)
	}

	none := buildFakeDriver(t, "nodevice", "-DDEVICES=0")
	_, err = selectWith(none, req("cuda:0"))
	if err == nil || !strings.Contains(err.Error(), "reports no CUDA device") {
		t.Errorf("no device: %v", err)
	}

	two := buildFakeDriver(t, "twodevices", "-DDEVICES=2")
	_, err = selectWith(two, req("cuda:2"))
	if err == nil || !strings.Contains(err.Error(), "device cuda:2 requested but the driver") || !strings.Contains(err.Error(), "reports 2 device(s): cuda:0..cuda:1") {
		t.Errorf("index out of range: %v", err)
	}
	// cuda:1 exists, and the failure is then the driver's (here: cuDevicePrimaryCtxRetain).
	_, err = selectWith(two, req("cuda:1"))
	if err == nil || !strings.Contains(err.Error(), "cuDeviceGetName") && !strings.Contains(err.Error(), "cuDevicePrimaryCtxRetain") {
		t.Errorf("cuda:1 of the fake: %v", err)
	}
}
