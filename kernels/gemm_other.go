//go:build !amd64

package kernels

// archGemmKernels returns the assembly kernels of this architecture: none outside amd64, where
// the generic Go kernel is used.
func archGemmKernels() []*gemmKernel { return nil }

func archPackA12(d, a []float32, lda, kb int) int { return 0 }
