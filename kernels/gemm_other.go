//go:build !amd64

package kernels

// archGemmKernels returns the assembly kernels of this architecture: none outside amd64, where
// the generic Go kernel is used.
func archGemmKernels() []*gemmKernel { return nil }
