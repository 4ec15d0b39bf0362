// Package cudatest gives the tests of the packages above kernels/cuda their CUDA device: the
// real driver when MTBERT_CUDA_REAL=1 (or MTBERT_CUDA_LIB names a driver library), else the
// host emulation of the driver, built from kernels/cuda's sources (cuda.TestLibrary); a test
// skips, saying why, where no C++ compiler can build it.
package cudatest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda"
)

// srcDir is kernels/cuda, the emulation's sources.
func srcDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

// Use points the driver binding (cuda.LibEnv, for t's duration) at the emulation, or leaves
// the real driver in place; it skips t when the emulation cannot be built.
func Use(t testing.TB) {
	t.Helper()
	lib, skip, err := cuda.TestLibrary(srcDir())
	switch {
	case err != nil:
		t.Fatalf("building the CUDA emulation: %v", err)
	case skip != "":
		t.Skip(skip)
	case lib != "":
		t.Setenv(cuda.LibEnv, lib)
	}
}

// Open is Use, then cuda.Open(0).
func Open(t testing.TB) *cuda.Context {
	t.Helper()
	Use(t)
	c, err := cuda.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
