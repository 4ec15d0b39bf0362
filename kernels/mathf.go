package kernels

import "math"

// Expf returns e**x in float32 with an error of about one ulp over the normal range.
//
// Cephes' expf: n = round(x·log2 e), r = x − n·ln 2 (ln 2 split in two for exactness), e**r by a
// degree-6 polynomial, then scaled by 2**n through the exponent bits. Results below the
// smallest normal are flushed towards zero by a second scaling; x > 88.72 gives +Inf.
func Expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
		hi    = 88.72283905206835
		lo    = -103.972084
	)
	if x != x {
		return x
	}
	if x > hi {
		return float32(math.Inf(1))
	}
	if x < lo {
		return 0
	}
	fn := float32(math.Floor(float64(x*log2e + 0.5)))
	r := x - fn*c1 - fn*c2
	z := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	p = p*z + r + 1
	n := int32(fn)
	if n < -126 {
		p *= math.Float32frombits(uint32(n+126+127) << 23)
		return p * math.Float32frombits(uint32(-126+127)<<23)
	}
	if n > 127 {
		return p * 2 * math.Float32frombits(uint32(n-1+127)<<23)
	}
	return p * math.Float32frombits(uint32(n+127)<<23)
}

// Erff returns the error function of x in float32, within a few ulp.
//
// The rational approximation erf(x) ≈ x·P(x²)/Q(x²) on [−4, 4] used by Eigen and XLA
// (coefficients from their generic_fast_erf_float); |erf(x)| rounds to 1 in float32 beyond 4.
func Erff(x float32) float32 {
	const (
		a1  = -1.60960333262415e-02
		a3  = -2.95459980854025e-03
		a5  = -7.34990630326855e-04
		a7  = -5.69250639462346e-05
		a9  = -2.10102402082508e-06
		a11 = 2.77068142495902e-08
		a13 = -2.72614225801306e-10
		b0  = -1.42647390514189e-02
		b2  = -7.37332916720468e-03
		b4  = -1.68282697438203e-03
		b6  = -2.13374055278905e-04
		b8  = -1.45660718464996e-05
	)
	if x > 4 {
		x = 4
	} else if x < -4 {
		x = -4
	}
	// Evaluated in float64 and rounded once: the scalar cost is the same and the result
	// carries only the approximation's own error.
	xd := float64(x)
	x2 := xd * xd
	p := x2*a13 + a11
	p = x2*p + a9
	p = x2*p + a7
	p = x2*p + a5
	p = x2*p + a3
	p = x2*p + a1
	p = xd * p
	q := x2*b8 + b6
	q = x2*q + b4
	q = x2*q + b2
	q = x2*q + b0
	return float32(p / q)
}

// Tanhf returns tanh(x) in float32: 1 − 2/(e**(2x)+1), with the odd symmetry made exact and
// x itself for |x| < 2**-12 where the formula would lose bits.
func Tanhf(x float32) float32 {
	ax := x
	if ax < 0 {
		ax = -ax
	}
	var r float32
	switch {
	case ax < 1.0/4096:
		return x
	case ax < 0.55:
		// 1 − 2/(e^(2x)+1) cancels for small x; use the expm1 form (e^(2x)−1)/(e^(2x)+1)
		// evaluated in float64 for the few small arguments.
		e := math.Expm1(2 * float64(ax))
		r = float32(e / (e + 2))
	case ax > 9.1:
		r = 1
	default:
		r = 1 - 2/(Expf(2*ax)+1)
	}
	if x < 0 {
		return -r
	}
	return r
}
