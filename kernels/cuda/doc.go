// Package cuda is mtbert's GPU backend: a binding of the CUDA driver API loaded at run time
// through purego (no cgo, no CUDA toolkit: every build is CGO_ENABLED=0), a caching device
// allocator, and typed launches of the hand-written kernels of src/*.cu, whose PTX is
// committed under ptx/ and embedded in the binary.
//
// # Driver
//
// The driver library is libcuda.so.1, or the library named by $MTBERT_CUDA_LIB (LibEnv): the
// host emulation built by emu/build.sh exports the same entry points over host memory and runs
// the kernels compiled for the CPU, so the whole package is tested without a GPU. Every driver
// call runs on one goroutine locked to its OS thread, on which the device's primary context is
// made current; calls from any goroutine are handed to it through a shared argument block, so
// a launch allocates nothing. A failed call returns an *Error naming the entry point with the
// CUresult, cuGetErrorName and cuGetErrorString (and, for a module, the JIT's error log);
// errors.Is(err, cuda.ErrorOutOfMemory) tests the code.
//
// # Opening a device
//
// Commands parse -device (or $MTBERT_DEVICE) with kernels.ResolveDevice and open it with
// Select: "cpu" needs no driver, "cuda" and "cuda:N" fail with the reason (library not found,
// cuInit's code, no device, index out of range), "auto" falls back to the CPU with a one-line
// Note. Open(N) opens device N directly.
//
// # Memory and launches
//
// Context.Alloc takes memory from the caching allocator (512-byte rounding, small blocks from
// 2 MiB segments, large ones from 20 MiB or 2 MiB-rounded segments, free lists per stream,
// split and merge; Allocator.Stats and EmptyCache). Upload and Download copy Go slices;
// HostBuffer is page-locked memory for asynchronous copies. The kernels are methods of Stream
// (FillF32, GemmBF16, LayerNormForward, ...), which check their buffers, compute the grid as
// src/KERNELS.md documents it, load the module once per context and queue the launch.
//
// # Regenerating the PTX
//
// go generate ./kernels/cuda runs gen.sh, which compiles src/*.cu with clang-19 into ptx/;
// gen.sh -check (CI) fails when the committed PTX is not what the sources give.
//
// # Tests and benchmarks on a GPU
//
// The conformance suite (conformance_test.go and the *_test.go beside it) builds the emulator
// with emu/build.sh when a C++ compiler is present and runs every kernel on it against the CPU
// reference of package kernels; MTBERT_CUDA_REAL=1 (or -cuda.real) adds the real driver. The
// benchmarks of bench_test.go need the real GPU. Build the test binary here, copy it with the
// repository to the GPU machine (it finds kernels/cuda/src and emu from the repository's root)
// and run it there:
//
//	CGO_ENABLED=0 go test -c -o gpu/cuda.test ./kernels/cuda
//	MTBERT_CUDA_REAL=1 ./gpu/cuda.test -test.v -test.bench .
//
// Where the GPU machine has no C++ compiler the emulator backend is skipped with a message and
// the suite runs on the GPU alone.
package cuda

//go:generate ./gen.sh
