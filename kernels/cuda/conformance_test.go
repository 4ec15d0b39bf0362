package cuda

// The conformance suite: every kernel on every available backend against the CPU reference
// of package kernels (or a float64 reference), at awkward sizes, plus the driver surface.
//
// Backends: the host emulation of the driver, built by emu/build.sh into a temporary
// directory when a C++ compiler is present (or the library $MTBERT_CUDA_LIB names), and the
// real libcuda.so.1 when MTBERT_CUDA_REAL=1 or -cuda.real is given.

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"
)

var realFlag = flag.Bool("cuda.real", false, "also run the conformance suite on the real driver (libcuda.so.1); same as MTBERT_CUDA_REAL=1")

// backend is a driver library the suite runs on.
type backend struct {
	name string // "emu" or "gpu"
	lib  string
}

var (
	backends []backend
	// noBackend says why the suite has nothing to run on (when backends is empty).
	noBackend string
	// emuBuildErr is set when the emulator's build script exists but failed: a test failure.
	emuBuildErr string
)

// pkgDir is the package's source directory: the working directory under go test, or
// kernels/cuda when a compiled test binary runs from the repository's root.
var pkgDir = func() string {
	if _, err := os.Stat(filepath.Join("src", "KERNELS.md")); err != nil {
		if _, err := os.Stat(filepath.Join("kernels", "cuda", "src", "KERNELS.md")); err == nil {
			return filepath.Join("kernels", "cuda")
		}
	}
	return "."
}()

func TestMain(m *testing.M) {
	flag.Parse()
	var why []string
	if lib := os.Getenv(LibEnv); lib != "" {
		backends = append(backends, backend{"emu", lib})
		fmt.Fprintf(os.Stderr, "cuda conformance: using %s=%s\n", LibEnv, lib)
	} else if lib, msg, err := buildEmulator(); err != nil {
		emuBuildErr = err.Error()
		fmt.Fprintf(os.Stderr, "cuda conformance: emulator build FAILED: %v\n", err)
		why = append(why, "the emulator build failed")
	} else if lib != "" {
		backends = append(backends, backend{"emu", lib})
		fmt.Fprintf(os.Stderr, "cuda conformance: %s\n", msg)
	} else {
		why = append(why, msg)
	}
	if *realFlag || os.Getenv(RealEnv) == "1" {
		backends = append(backends, backend{"gpu", DefaultLib})
	} else {
		why = append(why, "no real GPU requested (set MTBERT_CUDA_REAL=1 on a machine with an NVIDIA GPU)")
	}
	if len(backends) == 0 {
		noBackend = "no CUDA backend: " + strings.Join(why, "; ")
		fmt.Fprintf(os.Stderr, "cuda conformance: %s: the suite skips\n", noBackend)
	}
	os.Exit(m.Run())
}

// buildEmulator builds (or finds cached) the host emulation for this package's sources.
func buildEmulator() (lib, msg string, err error) { return BuildEmulator(pkgDir) }

// TestEmulatorBuilds fails when emu/build.sh exists but does not build.
func TestEmulatorBuilds(t *testing.T) {
	if emuBuildErr != "" {
		t.Fatalf("the host emulator does not build:\n%s", emuBuildErr)
	}
}

// forEachBackend runs fn in a subtest per backend with device 0 of it open.
func forEachBackend(t *testing.T, fn func(t *testing.T, c *Context)) {
	t.Helper()
	if len(backends) == 0 {
		t.Skip(noBackend)
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, err := openWith(b.lib, 0)
			if err != nil {
				t.Fatalf("opening cuda:0 through %s: %v", b.lib, err)
			}
			fn(t, c)
		})
	}
}

// Tolerances, per dtype. A float32 result is checked as |got − want| <= atol + rtol·scale,
// where scale is |want| or, for sums and products, the sum of the absolute values of the terms
// (so that cancellation does not make the test meaningless or flaky).
const (
	// f32ULP is 2**-23, the spacing of float32 at 1.
	f32ULP = 1.0 / (1 << 23)
	// rtolF32 allows a few ulp of rounding difference in an elementwise float32 result
	// (fused multiply-adds, a different but correctly rounded evaluation order).
	rtolF32 = 4 * f32ULP
	// rtolF32Sum bounds the relative rounding of a float32 sum or dot product of up to a few
	// thousand terms against the float64 reference, relative to Σ|terms|.
	rtolF32Sum = 1e-5
	// rtolMath allows the float32 exp/erf approximations (a few ulp each, chained).
	rtolMath = 2e-6
	// bf16ULP is 2**-7, the spacing of bfloat16 at 1: a bf16 output may differ from the bf16
	// rounding of the float32 reference by one step when the float32 values straddle a tie.
	bf16ULP = 1.0 / (1 << 7)
)

// sizes are the awkward lengths every elementwise kernel is run at.
var sizes = []int{1, 7, 1027, 4096*256 + 7}

// upload copies host values into a new device buffer with room for pad more elements.
func upload[T any](t *testing.T, c *Context, v []T, pad int) Buffer {
	t.Helper()
	var z T
	n := (len(v) + pad) * int(unsafe.Sizeof(z))
	b, err := c.Alloc(n)
	if err != nil {
		t.Fatal(err)
	}
	if pad > 0 {
		// Sentinels: every byte 0x7f (a NaN-free, recognisable float 3.39e38).
		check(t, c.Stream().MemsetD8(b.Ptr, 0x7f, n))
	}
	check(t, Upload(c.Stream(), b, v))
	return b
}

// download copies n elements of a device buffer to the host.
func download[T any](t *testing.T, b Buffer, n int) []T {
	t.Helper()
	out := make([]T, n)
	check(t, Download(nil, out, b))
	return out
}

// checkSentinel fails unless the elements of b from n on still hold the upload sentinel.
func checkSentinel(t *testing.T, name string, b Buffer, n, pad, size int) {
	t.Helper()
	raw := download[byte](t, b, (n+pad)*size)
	for i := n * size; i < len(raw); i++ {
		if raw[i] != 0x7f {
			t.Errorf("%s: byte %d past the end (n=%d) was overwritten with %#x", name, i-n*size, n, raw[i])
			return
		}
	}
}

// compare checks got against want elementwise with |got−want| <= atol + rtol·scale[i] (scale
// nil: |want|), reporting the worst element and the maximum errors.
func compare(t *testing.T, name string, got, want []float32, scale []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	worst, worstI := -1.0, -1
	var maxAbs, maxRel float64
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		if math.IsNaN(w) || math.IsInf(w, 0) {
			if !(math.IsNaN(w) && math.IsNaN(g)) && g != w {
				t.Errorf("%s: element %d = %v, want %v", name, i, g, w)
				return
			}
			continue
		}
		s := math.Abs(w)
		if scale != nil {
			s = scale[i]
		}
		d := math.Abs(g - w)
		if math.IsNaN(g) {
			d = math.Inf(1)
		}
		maxAbs = max(maxAbs, d)
		if w != 0 {
			maxRel = max(maxRel, d/math.Abs(w))
		}
		if r := d / (atol + rtol*s); r > worst {
			worst, worstI = r, i
		}
	}
	if worst > 1 {
		t.Errorf("%s: element %d = %v, want %v (|err| %.3g > atol %.3g + rtol %.3g·%.3g); max abs err %.3g, max rel err %.3g over %d values",
			name, worstI, got[worstI], want[worstI], math.Abs(float64(got[worstI])-float64(want[worstI])), atol, rtol, scaleAt(scale, want, worstI), maxAbs, maxRel, len(got))
	}
}

func scaleAt(scale []float64, want []float32, i int) float64 {
	if scale != nil {
		return scale[i]
	}
	return math.Abs(float64(want[i]))
}

// exact checks bitwise equality (NaNs equal when both are NaN).
func exact[T comparable](t *testing.T, name string, got, want []T) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	bad, first := 0, -1
	for i := range got {
		if got[i] != want[i] {
			if g, ok := any(got[i]).(float32); ok && g != g {
				if w := any(want[i]).(float32); w != w {
					continue
				}
			}
			if first < 0 {
				first = i
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ; first at %d: got %v, want %v", name, bad, len(got), first, got[first], want[first])
	}
}

// randF32 returns n values uniform in [lo, hi) from a seeded generator.
func randF32(seed uint64, n int, lo, hi float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x6d7462657274))
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*r.Float32()
	}
	return v
}

// toBF16 rounds x to bfloat16 bits, nearest even; NaN stays a quiet NaN with its sign.
func toBF16(x float32) uint16 {
	b := math.Float32bits(x)
	if x != x {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

func fromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// roundBF16 rounds every element to the nearest bfloat16, as float32.
func roundBF16(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = fromBF16(toBF16(x))
	}
	return out
}

func bf16s(v []float32) []uint16 {
	out := make([]uint16, len(v))
	for i, x := range v {
		out[i] = toBF16(x)
	}
	return out
}

// compareBF16 checks bf16 outputs against a float32 reference: each must be the bf16
// rounding of some value within the float32 tolerance atol + rtol·scale[i] (scale nil: |want|)
// of the reference, so a bf16 output is exact whenever its float32 value is.
func compareBF16(t *testing.T, name string, got []uint16, want []float32, scale []float64, atol, rtol float64) {
	t.Helper()
	bad, first := 0, -1
	for i, g := range got {
		w := float64(want[i])
		sc := math.Abs(w)
		if scale != nil {
			sc = scale[i]
		}
		e := atol + rtol*sc
		lo, hi := fromBF16(toBF16(float32(w-e))), fromBF16(toBF16(float32(w+e)))
		if v := fromBF16(g); g == toBF16(want[i]) || lo <= v && v <= hi {
			continue
		}
		if first < 0 {
			first = i
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d bf16 values are not a rounding of the reference ± tolerance; first at %d: got %#04x (%v), want %#04x (%v from %v)",
			name, bad, len(got), first, got[first], fromBF16(got[first]), toBF16(want[first]), fromBF16(toBF16(want[first])), want[first])
	}
}
