//go:build !amd64

package kernels

func peakLoops() []peakLoop { return nil }
