//go:build !amd64

package kernels

func archQgemm() *qgemmKernel { return nil }
