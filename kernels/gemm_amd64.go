package kernels

import "golang.org/x/sys/cpu"

// avx2Kernel is the amd64 path for CPUs with AVX2 and FMA3 (Haswell and later, AMD Zen).
//
// Its micro-kernel (gemm_amd64.s) is 6×16: twelve ymm accumulators (6 rows × two 8-lane
// halves), two ymm for the B row and one for the broadcast A value; each k step issues 12 FMAs
// against 8 loads, so the two FMA pipes of a Zen 3 or Haswell core stay busy (alone on packed
// L1 data it reached 79 GFLOP/s, about 28 FLOP/cycle, on a Zen 3 EPYC at ~2.8 GHz). Blocking,
// chosen from the cache sizes of Zen 3 (32 KiB L1d, 512 KiB L2 per core; not yet swept by
// measurement): kc=256 keeps the kc×16 B strip (16 KiB) plus one 6×kc A strip (6 KiB) in L1,
// mc=144 keeps the mc×kc A block (144 KiB) in L2, nc=3072 bounds the packed B panel (3 MiB)
// well inside L3.
var avx2Kernel = &gemmKernel{
	name: "avx2-fma",
	mr:   6, nr: 16,
	mc: 144, kc: 256, nc: 3072,
	micro: microAVX2,
	packB16: func(kb int, src []float32, ldb int, dst []float32) {
		_ = src[(kb-1)*ldb+15]
		_ = dst[kb*16-1]
		packB16(kb, &src[0], ldb, &dst[0])
	},
}

// archGemmKernels returns the assembly kernels this CPU supports, best first.
func archGemmKernels() []*gemmKernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return []*gemmKernel{avx2Kernel}
	}
	return nil
}

// microAVX2 runs the 6×16 assembly kernel; the caller guarantees the strips hold kc steps and
// that c spans 6 rows of 16 at stride ldc.
func microAVX2(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[6*kc-1]
	_ = b[16*kc-1]
	_ = c[5*ldc+15]
	sgemmKernel6x16(kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
}

// sgemmKernel6x16 computes c[i*ldc+j] = alpha*Σ_p a[p*6+i]*b[p*16+j] + beta*c[i*ldc+j] for
// i < 6, j < 16, p < kc (kc >= 1); c is not read when beta == 0.
//
//go:noescape
func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// packB16 copies kb rows of 16 floats at stride ldb from src to dst at stride 16 (kb >= 1).
//
//go:noescape
func packB16(kb int, src *float32, ldb int, dst *float32)
