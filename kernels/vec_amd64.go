package kernels

import (
	"os"
	"strings"

	"golang.org/x/sys/cpu"
)

// The vectorised elementwise kernels of vec_amd64.s: GELU forward and backward and the
// exponential of softmax, 8 lanes at a time with AVX2 and FMA. They evaluate the same
// approximations as the scalar Erff and Expf in float32 with fused multiply-adds, so they agree
// with them to a few ulp; tests compare the two on awkward lengths.
var haveVec = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// vecOn selects the vector kernels; MTBERT_CPU=generic turns them off, and tests toggle it to
// run both paths.
var vecOn = haveVec && !strings.EqualFold(os.Getenv("MTBERT_CPU"), "generic")

//go:noescape
func geluFwdAVX2(y, x *float32, n int)

//go:noescape
func geluBwdAVX2(dx, dy, x *float32, n int)

//go:noescape
func expShiftSumAVX2(y, x *float32, n int, shift float32) float32

//go:noescape
func adamAVX2(pp, gg, mm, vv *float32, n int, cc *adamConsts)
