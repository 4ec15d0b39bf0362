package kernels

import "golang.org/x/sys/cpu"

// fmaLoopAVX2 runs n iterations of 12 independent 8-lane FMAs (192 FLOP each).
//
//go:noescape
func fmaLoopAVX2(n int)

// fmaLoopAVX512 runs n iterations of 12 independent 16-lane FMAs (384 FLOP each).
//
//go:noescape
func fmaLoopAVX512(n int)

func peakLoops() []peakLoop {
	var l []peakLoop
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		l = append(l, peakLoop{"avx2-fma", 192, fmaLoopAVX2})
	}
	if cpu.X86.HasAVX512F {
		l = append(l, peakLoop{"avx512f", 384, fmaLoopAVX512})
	}
	return l
}
