//go:build !amd64

package kernels

const haveVec = false

var vecOn = false

func geluFwdAVX2(y, x *float32, n int)                            { panic("unreachable") }
func geluBwdAVX2(dx, dy, x *float32, n int)                       { panic("unreachable") }
func expShiftSumAVX2(y, x *float32, n int, shift float32) float32 { panic("unreachable") }

type adamConsts struct {
	decay, wd, w1, b2, w2, bc2sqrt, eps, negStep float32
	mode                                         int32
}

func adamAVX2(pp, gg, mm, vv *float32, n int, cc *adamConsts) { panic("unreachable") }
