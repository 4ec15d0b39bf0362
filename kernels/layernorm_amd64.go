package kernels

//go:noescape
func lnPartialsAVX2(x *float32, n int, m float64, sq bool, out *[8]float64)

//go:noescape
func lnOutAVX2(out, row, gamma, beta *float32, n int, mf, rf float32)

//go:noescape
func addAVX2(dst, src *float32, n int)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func scaleAVX2(y *float32, n int, a float32)
