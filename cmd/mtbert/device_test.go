package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDeviceFlag: -device and MTBERT_DEVICE on a computing command, with no usable CUDA driver
// (MTBERT_CUDA_LIB names a library that does not exist): cuda is an error saying why, auto
// computes on the CPU with one line saying why, a bad name is an error naming its source.
func TestDeviceFlag(t *testing.T) {
	t.Setenv("MTBERT_CUDA_LIB", filepath.Join(t.TempDir(), "libcuda-absent.so"))
	t.Setenv("MTBERT_DEVICE", "")
	args := []string{"bench", "gemm", "-m", "8", "-k", "8", "-n", "8", "-runs", "1"}
	_, stderr := runCmd(t, 1, append(args, "-device", "cuda")...)
	if !strings.Contains(stderr, "device cuda:0") || !strings.Contains(stderr, "libcuda-absent.so") {
		t.Errorf("-device cuda: %q", stderr)
	}
	stdout, stderr := runCmd(t, 0, append(args, "-device", "auto")...)
	if !strings.Contains(stderr, "device auto: using the CPU because CUDA is unusable") || !strings.Contains(stdout, `"gflops"`) {
		t.Errorf("-device auto: stdout %q, stderr %q", stdout, stderr)
	}
	runCmd(t, 0, append(args, "-device", "cpu")...)
	// Every bench reads -device after parsing it (bench mt and mlm once read it before).
	for _, b := range []string{"mt", "mlm"} {
		if _, stderr := runCmd(t, 1, "bench", b, "-layers", "1", "-hidden", "64", "-batch", "1", "-seq", "8", "-reps", "1", "-device", "cuda"); !strings.Contains(stderr, "libcuda-absent.so") {
			t.Errorf("bench %s -device cuda: %q", b, stderr)
		}
	}
	t.Setenv("MTBERT_DEVICE", "tpu")
	if _, stderr := runCmd(t, 1, args...); !strings.Contains(stderr, `unknown device "tpu"`) || !strings.Contains(stderr, "MTBERT_DEVICE") {
		t.Errorf("MTBERT_DEVICE=tpu: %q", stderr)
	}
	t.Setenv("MTBERT_DEVICE", "cuda:1")
	if _, stderr := runCmd(t, 1, append(args, "-device", "cuda:x")...); !strings.Contains(stderr, "non-negative integer") {
		t.Errorf("-device cuda:x: %q", stderr)
	}
}
