package kernels

import "fmt"

// PackedB is the right operand op(B) (k×n) of a product packed once, in advance, into the
// panel layout of the micro-kernel in use when it was packed, so that products with it
// (SgemmPacked) skip the packing of B that Sgemm does on every call. It suits a constant
// weight matrix used by many products (a Linear layer at inference).
//
// Layout: kc-deep slices of op(B) (kc as gemmSerial balances it for k); slice pc starts at
// pc*npad (npad = n rounded up to nr) and holds n/nr strips of kb×nr values, strip s at
// s*nr*kb with element (p, j) at p*nr + j, the last strip zero-padded. A column block of C
// that starts at a multiple of nr is a contiguous run of strips of every slice.
type PackedB struct {
	kern   *gemmKernel
	k, n   int
	npad   int
	data   []float32
	transB bool
	b      []float32 // the source, for the fallback when the micro-kernel changes
	ldb    int
}

// PackB packs op(B) (k×n; B stored k×n with ldb >= n, or n×k with ldb >= k when transB) for
// the current micro-kernel (see GemmPath). The result keeps a reference to b, which must not
// change while the PackedB is in use: pack again after changing it.
func PackB(transB bool, k, n int, b []float32, ldb int) *PackedB {
	checkGemm("PackB", false, transB, 1, n, k, make([]float32, max(k, 1)), max(k, 1), b, ldb, make([]float32, max(n, 1)), max(n, 1))
	kern := gemmActive.Load()
	nr := kern.nr
	npad := ceilDiv(n, nr) * nr
	p := &PackedB{kern: kern, k: k, n: n, npad: npad, transB: transB, b: b, ldb: ldb}
	if k == 0 || n == 0 {
		return p
	}
	kc := ceilDiv(k, ceilDiv(k, kern.kc))
	p.data = make([]float32, k*npad)
	slices := ceilDiv(k, kc)
	ParallelFor(slices, 1, func(lo, hi int) {
		for q := lo; q < hi; q++ {
			pc := q * kc
			kb := min(kc, k-pc)
			packB(kern, transB, kb, n, b, ldb, pc, 0, nr, p.data[pc*npad:])
		}
	})
	return p
}

// Dims returns k and n of op(B).
func (p *PackedB) Dims() (k, n int) { return p.k, p.n }

// Bytes returns the memory the packed panels hold.
func (p *PackedB) Bytes() int { return 4 * len(p.data) }

// SgemmPacked computes C = alpha·A·op(B) + beta·C with A m×k (row-major, lda >= k), op(B) the
// packed p (k×n) and C m×n (ldc >= n), with the semantics of Sgemm. The arithmetic is that of
// Sgemm on the unpacked operand, in the same order, so the results are bit-identical. When the
// micro-kernel has changed since p was packed (SetGemmPath), it falls back to Sgemm on the
// source matrix.
func SgemmPacked(m, n, k int, alpha float32, a []float32, lda int, p *PackedB, beta float32, c []float32, ldc int) {
	if p == nil || p.k != k || p.n != n {
		panic(fmt.Sprintf("kernels: SgemmPacked: packed operand does not match k=%d n=%d", k, n))
	}
	kern := gemmActive.Load()
	if kern != p.kern {
		p.mustHaveSource("SgemmPacked")
		Sgemm(false, p.transB, m, n, k, alpha, a, lda, p.b, p.ldb, beta, c, ldc)
		return
	}
	p.check("SgemmPacked", m, a, lda, c, ldc)
	gemmParallel(kern, Threads(), false, p.transB, m, n, k, alpha, a, lda, nil, p.ldb, beta, c, ldc, p)
}

// SgemmPackedBias computes C = A·op(B) + bias (bias len n, added to every row) with op(B) the
// packed p, then, when gelu is set, C = GELU(C) (the exact erf form of GeluForward): the layer
// y = GELU(x·Wᵀ + b) in one product, the bias written into each block of C and the activation
// applied to it while it is in cache. Bit-identical to copying the bias into every row, then
// SgemmPacked with beta 1, then GeluForward on C, where n is a multiple of 8 (GELU's vector
// width; otherwise the rows' scalar tails may round differently from one pass over all of C).
func SgemmPackedBias(m, n, k int, a []float32, lda int, p *PackedB, bias []float32, gelu bool, c []float32, ldc int) {
	if p == nil || p.k != k || p.n != n {
		panic(fmt.Sprintf("kernels: SgemmPackedBias: packed operand does not match k=%d n=%d", k, n))
	}
	if len(bias) != n {
		panic(fmt.Sprintf("kernels: SgemmPackedBias: len(bias)=%d, want n=%d", len(bias), n))
	}
	p.check("SgemmPackedBias", m, a, lda, c, ldc)
	kern := gemmActive.Load()
	var epi gemmEpilogue
	epi.bias = bias
	if gelu && kern.nr%8 == 0 {
		// Blocks of C start at multiples of nr: each row segment is whole vectors of GELU's.
		epi.rows = geluRow
	}
	if kern != p.kern || (gelu && epi.rows == nil) {
		for i := range m {
			copy(c[i*ldc:i*ldc+n], bias)
		}
		if kern != p.kern {
			p.mustHaveSource("SgemmPackedBias")
			Sgemm(false, p.transB, m, n, k, 1, a, lda, p.b, p.ldb, 1, c, ldc)
		} else {
			gemmParallel(kern, Threads(), false, p.transB, m, n, k, 1, a, lda, nil, p.ldb, 1, c, ldc, p)
		}
		if gelu {
			for i := range m {
				geluRow(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	gemmParallelEpi(kern, Threads(), false, p.transB, m, n, k, 1, a, lda, nil, p.ldb, 0, c, ldc, p, epi)
}

// DropSource lets go of the source matrix PackB kept for the fallback, for a packed copy of a
// matrix that exists nowhere else (stacked weights): the copy may then be used only while
// Current reports true; SgemmPacked panics on it otherwise.
func (p *PackedB) DropSource() { p.b = nil }

// Current reports whether p was packed for the micro-kernel now in use (see SetGemmPath), so
// that SgemmPacked reads its panels rather than falling back to the source matrix.
func (p *PackedB) Current() bool { return p.kern == gemmActive.Load() }

// check panics unless A (m×k, lda) and C (m×n, ldc) fit a product with p; B was checked when
// it was packed.
func (p *PackedB) check(op string, m int, a []float32, lda int, c []float32, ldc int) {
	checkGemmDims(op, false, false, m, p.n, p.k, lda, max(1, p.n), ldc)
	if need := matLen(m, p.k, lda); len(a) < need {
		panic(fmt.Sprintf("kernels: %s: len(a)=%d too short for m=%d k=%d lda=%d (need %d)", op, len(a), m, p.k, lda, need))
	}
	if need := matLen(m, p.n, ldc); len(c) < need {
		panic(fmt.Sprintf("kernels: %s: len(c)=%d too short for m=%d n=%d ldc=%d (need %d)", op, len(c), m, p.n, ldc, need))
	}
}

func (p *PackedB) mustHaveSource(op string) {
	if p.b == nil && p.k > 0 && p.n > 0 {
		panic(fmt.Sprintf("kernels: %s: operand packed for the %s micro-kernel, %s in use, and its source dropped (DropSource)", op, p.kern.name, GemmPath()))
	}
}
