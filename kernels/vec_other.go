//go:build !amd64

package kernels

const haveVec = false

var vecOn = false

func geluFwdAVX2(y, x *float32, n int)                            { panic("unreachable") }
func geluBwdAVX2(dx, dy, x *float32, n int)                       { panic("unreachable") }
func expShiftSumAVX2(y, x *float32, n int, shift float32) float32 { panic("unreachable") }

func adamAVX2(pp, gg, mm, vv *float32, n int, cc *adamConsts) { panic("unreachable") }

func lnPartialsAVX2(x *float32, n int, m float64, sq bool, out *[8]float64) { panic("unreachable") }
func lnOutAVX2(out, row, gamma, beta *float32, n int, mf, rf float32)       { panic("unreachable") }
func addAVX2(dst, src *float32, n int)                                      { panic("unreachable") }
func maxAVX2(x *float32, n int) float32                                     { panic("unreachable") }
func scaleAVX2(y *float32, n int, a float32)                                { panic("unreachable") }
