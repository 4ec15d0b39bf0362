package kernels

// DropoutMask fills mask with 0 (dropped, probability p) or 1/(1−p) (kept), drawing one
// uniform value per element from the counter-based generator at (seed, offset+i), so that the
// mask depends only on the seed and the element's position (the same on every backend).
func DropoutMask(mask []float32, p float32, seed, offset uint64) {
	if p < 0 || p >= 1 {
		panic("kernels: DropoutMask: p must be in [0, 1)")
	}
	scale := 1 / (1 - p)
	ParallelFor(len(mask), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if dropUniform(seed, offset+uint64(i)) < p {
				mask[i] = 0
			} else {
				mask[i] = scale
			}
		}
	})
}

// dropUniform is the uniform value in [0, 1) that dropout draws for element i under seed (24
// bits of SplitMix64 of seed ^ i·golden ratio): DropoutMask and the attention's dropout share it,
// and the GPU kernels follow it.
func dropUniform(seed, i uint64) float32 {
	return float32(SplitMix64(seed^i*0x9e3779b97f4a7c15)>>40) * (1.0 / (1 << 24))
}

// SplitMix64 is the finaliser of the SplitMix64 generator: a bijective mix of x.
func SplitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
