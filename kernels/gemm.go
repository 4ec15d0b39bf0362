package kernels

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// gemmKernel is one micro-kernel with the cache blocking tuned for it.
//
// micro computes the mr×nr product of a packed A strip and a packed B strip over kc steps and
// stores c[i*ldc+j] = alpha*acc[i][j] + beta*c[i*ldc+j] for i < mr, j < nr; when beta == 0, c is
// not read (BLAS semantics: NaN in c does not propagate). The packed A strip holds
// a[p*mr+i] = op(A)[i][p], the packed B strip b[p*nr+j] = op(B)[p][j], for p < kc.
type gemmKernel struct {
	name       string
	mr, nr     int
	mc, kc, nc int
	micro      func(kc int, a, b, c []float32, ldc int, alpha, beta float32)
	// microBias, when set, stores c[i*ldc+j] = Σ a·b + bias[j] (alpha 1) without reading c:
	// the first kc slice of a product with a bias epilogue, bit-identical to micro with beta 1
	// on a c that holds the bias, without writing the bias first.
	microBias func(kc int, a, b, c []float32, ldc int, bias []float32)
	// packB16, when set, copies kb rows of 16 values at stride ldb from src into dst at stride
	// 16 (the full strips of a non-transposed B when nr is 16).
	packB16 func(kb int, src []float32, ldb int, dst []float32)
}

// gemmKernels lists the kernels this CPU can run, best first; the generic one is always last.
var gemmKernels []*gemmKernel

// gemmActive is the kernel in use.
var gemmActive atomic.Pointer[gemmKernel]

func init() {
	gemmKernels = append(archGemmKernels(), genericKernel)
	k := gemmKernels[0]
	if strings.EqualFold(os.Getenv("MTBERT_CPU"), "generic") {
		k = genericKernel
	}
	gemmActive.Store(k)
}

// GemmPath names the micro-kernel Sgemm uses: "avx512f" (amd64 with AVX-512F), "avx2-fma"
// (amd64 with AVX2 and FMA) or "generic" (pure Go). MTBERT_CPU=generic in the environment forces "generic" at start-up.
func GemmPath() string { return gemmActive.Load().name }

// SetGemmPath makes Sgemm use the named micro-kernel, for tests and benchmarks. It returns an
// error, and changes nothing, when p is not a path this CPU supports.
func SetGemmPath(p string) error {
	var names []string
	for _, k := range gemmKernels {
		if k.name == p {
			gemmActive.Store(k)
			return nil
		}
		names = append(names, k.name)
	}
	return fmt.Errorf("kernels: SetGemmPath: path %q not supported on this CPU (have %s)", p, strings.Join(names, ", "))
}

// gemmPaths returns the names of the paths this CPU supports, best first.
func gemmPaths() []string {
	var names []string
	for _, k := range gemmKernels {
		names = append(names, k.name)
	}
	return names
}

// gemmParallelMin is the work (m*n*k multiply-adds) below which Sgemm stays on one goroutine:
// about 50 µs of one core, well above the cost of waking a helper. Tests lower it to exercise
// the parallel split on small shapes.
var gemmParallelMin = 1 << 21

// Sgemm computes the single-precision general matrix product
//
//	C = alpha * op(A) * op(B) + beta * C
//
// on row-major matrices, where op(A) is m×k, op(B) is k×n and C is m×n with row stride ldc.
// op(A) = A when transA is false (A stored m×k, lda >= k) and Aᵀ when it is true (A stored k×m,
// lda >= m); likewise op(B) with B stored k×n (ldb >= n) or n×k (ldb >= k). With beta == 0, C is
// overwritten without being read, so NaN or Inf in C do not propagate; with alpha == 0 or k == 0,
// A and B are not read.
//
// The product is blocked GotoBLAS/BLIS style: B is packed into kc×nc panels of nr-wide column
// strips, A into mc×kc blocks of mr-tall row strips (the packing absorbs the transposes), and a
// register-blocked mr×nr micro-kernel (see GemmPath) runs over the packed strips. Large products
// are split into up to Threads() rectangles of C computed concurrently.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("Sgemm", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gemmParallel(gemmActive.Load(), Threads(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmStrided computes batch independent products
//
//	C_i = alpha * op(A_i) * op(B_i) + beta * C_i,  i = 0..batch-1,
//
// where A_i starts at a[i*strideA], B_i at b[i*strideB] and C_i at c[i*strideC], each with the
// shape and leading dimension of Sgemm. The C_i must not overlap (they are computed
// concurrently); they may interleave, e.g. one head per column block with strideC = n < ldc.
// Small products are spread across Threads() goroutines by batch entry, large ones are each
// computed in parallel.
func SgemmStrided(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int) {
	const op = "SgemmStrided"
	if batch < 0 {
		panic(fmt.Sprintf("kernels: %s: negative batch=%d", op, batch))
	}
	if strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Sprintf("kernels: %s: negative stride strideA=%d strideB=%d strideC=%d", op, strideA, strideB, strideC))
	}
	checkGemmDims(op, transA, transB, m, n, k, lda, ldb, ldc)
	if batch == 0 {
		return
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if need := (batch-1)*strideA + matLen(ar, ac, lda); len(a) < need {
		panic(fmt.Sprintf("kernels: %s: len(a)=%d too short for batch=%d strideA=%d m=%d k=%d lda=%d transA=%t (need %d)", op, len(a), batch, strideA, m, k, lda, transA, need))
	}
	if need := (batch-1)*strideB + matLen(br, bc, ldb); len(b) < need {
		panic(fmt.Sprintf("kernels: %s: len(b)=%d too short for batch=%d strideB=%d k=%d n=%d ldb=%d transB=%t (need %d)", op, len(b), batch, strideB, k, n, ldb, transB, need))
	}
	if need := (batch-1)*strideC + matLen(m, n, ldc); len(c) < need {
		panic(fmt.Sprintf("kernels: %s: len(c)=%d too short for batch=%d strideC=%d m=%d n=%d ldc=%d (need %d)", op, len(c), batch, strideC, m, n, ldc, need))
	}
	kern := gemmActive.Load()
	threads := Threads()
	one := func(i int, threads int) {
		var ai, bi []float32
		if m > 0 && k > 0 {
			ai = a[i*strideA:]
		}
		if n > 0 && k > 0 {
			bi = b[i*strideB:]
		}
		ci := c
		if m > 0 && n > 0 {
			ci = c[i*strideC:]
		}
		gemmParallel(kern, threads, transA, transB, m, n, k, alpha, ai, lda, bi, ldb, beta, ci, ldc)
	}
	work := m * n * k
	if threads == 1 || batch == 1 || (batch < threads && work >= gemmParallelMin) {
		for i := range batch {
			one(i, threads)
		}
		return
	}
	// Spread the batch: each chunk of entries on one goroutine, each product serial.
	chunks := min(threads, batch)
	runChunks(chunks, func(t int) {
		for i := batch * t / chunks; i < batch*(t+1)/chunks; i++ {
			one(i, 1)
		}
	})
}

// matLen is the number of elements a rows×cols row-major matrix with leading dimension ld spans.
func matLen(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// checkGemmDims panics unless the dimensions and leading dimensions are consistent.
func checkGemmDims(op string, transA, transB bool, m, n, k, lda, ldb, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: %s: negative dimension m=%d n=%d k=%d", op, m, n, k))
	}
	ac, bc := k, n
	if transA {
		ac = m
	}
	if transB {
		bc = k
	}
	if lda < max(1, ac) {
		panic(fmt.Sprintf("kernels: %s: lda=%d too small for m=%d k=%d transA=%t (need >= %d)", op, lda, m, k, transA, max(1, ac)))
	}
	if ldb < max(1, bc) {
		panic(fmt.Sprintf("kernels: %s: ldb=%d too small for k=%d n=%d transB=%t (need >= %d)", op, ldb, k, n, transB, max(1, bc)))
	}
	if ldc < max(1, n) {
		panic(fmt.Sprintf("kernels: %s: ldc=%d too small for n=%d (need >= %d)", op, ldc, n, max(1, n)))
	}
}

// checkGemm panics unless the arguments of one product are consistent.
func checkGemm(op string, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	checkGemmDims(op, transA, transB, m, n, k, lda, ldb, ldc)
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if need := matLen(ar, ac, lda); len(a) < need {
		panic(fmt.Sprintf("kernels: %s: len(a)=%d too short for m=%d k=%d lda=%d transA=%t (need %d)", op, len(a), m, k, lda, transA, need))
	}
	if need := matLen(br, bc, ldb); len(b) < need {
		panic(fmt.Sprintf("kernels: %s: len(b)=%d too short for k=%d n=%d ldb=%d transB=%t (need %d)", op, len(b), k, n, ldb, transB, need))
	}
	if need := matLen(m, n, ldc); len(c) < need {
		panic(fmt.Sprintf("kernels: %s: len(c)=%d too short for m=%d n=%d ldc=%d (need %d)", op, len(c), m, n, ldc, need))
	}
}

// scaleC sets C = beta*C for the m×n matrix c (beta == 0 writes zeros without reading C).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// gemmParallel computes one checked product on up to threads goroutines. C is cut into a
// tm×tn grid of rectangles (tm*tn <= threads) aligned to the micro-tile; each rectangle is an
// independent product with its own packing, so no goroutine waits on another. The grid is
// chosen to duplicate as little packing as possible: a row cut repacks B, a column cut repacks A.
//
// pb, when not nil, is op(B) packed in advance (PackB) for kern; b and ldb are then unused.
func gemmParallel(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, pb ...*PackedB) {
	var pk *PackedB
	if len(pb) > 0 {
		pk = pb[0]
	}
	gemmParallelEpi(kern, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pk, gemmEpilogue{})
}

// gemmEpilogue is work fused into a product, done on each block of C while it is in cache.
// With bias (len n) set, C starts as bias in every row instead of being scaled by beta (beta
// must be 0): C = alpha·op(A)·op(B) + bias, computed as a copy of the bias and the product
// accumulated with beta 1, so bit-identical to that copy followed by Sgemm with beta 1. With
// rows set, it is called on every finished row segment of C (its final values) in place.
type gemmEpilogue struct {
	bias []float32
	rows func(seg []float32)
}

// from returns the epilogue of the column block of C starting at column j0.
func (e gemmEpilogue) from(j0 int) gemmEpilogue {
	if e.bias != nil {
		e.bias = e.bias[j0:]
	}
	return e
}

// gemmParallelEpi is gemmParallel with B packed or not (pk nil) and an epilogue.
func gemmParallelEpi(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, pk *PackedB, epi gemmEpilogue) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		if epi.bias != nil {
			for i := range m {
				copy(c[i*ldc:i*ldc+n], epi.bias[:n])
			}
		} else {
			scaleC(m, n, beta, c, ldc)
		}
		if epi.rows != nil {
			for i := range m {
				epi.rows(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	mu := (m + kern.mr - 1) / kern.mr // row units
	nu := (n + kern.nr - 1) / kern.nr // column units
	if threads > 1 && m*n*k >= gemmParallelMin {
		threads = min(threads, mu*nu, max(1, m*n*k/max(1, gemmParallelMin/2)))
	} else {
		threads = 1
	}
	if threads == 1 {
		gemmSerial(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, pk, 0, epi)
		return
	}
	tm, tn := gemmGrid(kern, threads, m, n, k, pk != nil)
	runChunks(tm*tn, func(t int) {
		pi, pj := t/tn, t%tn
		i0, i1 := min(m, mu*pi/tm*kern.mr), min(m, mu*(pi+1)/tm*kern.mr)
		j0, j1 := min(n, nu*pj/tn*kern.nr), min(n, nu*(pj+1)/tn*kern.nr)
		if i0 >= i1 || j0 >= j1 {
			return
		}
		aOff, bOff := i0*lda, j0
		if transA {
			aOff = i0
		}
		if transB {
			bOff = j0 * ldb
		}
		var bs []float32
		if pk == nil {
			bs = b[bOff:]
		}
		gemmSerial(kern, transA, transB, i1-i0, j1-j0, k, alpha, a[aOff:], lda, bs, ldb, beta, c[i0*ldc+j0:], ldc, pk, j0, epi.from(j0))
	})
}

// gemmGrid picks the tm×tn grid (tm*tn == threads, tm <= row units, tn <= column units) that
// finishes first by a cycle model of the slowest rectangle: its micro-tiles (a partial tile
// costs a full one) at mr·nr/32 cycles per k step (two 16-lane FMA pipes), plus packing its
// rows of A (about 0.2 cycles a value) and, unless B comes packed, its columns of B (about 0.5
// cycles a value, strided). A row cut makes every part read all of B and a column cut all of A;
// with m small (one sequence of 128 tokens) the column cut balances better, at m large the two
// are even and the row cut packs less.
func gemmGrid(kern *gemmKernel, threads, m, n, k int, packedB bool) (tm, tn int) {
	mu := (m + kern.mr - 1) / kern.mr
	nu := (n + kern.nr - 1) / kern.nr
	tm, tn = 1, threads
	best := -1.0
	for d := 1; d <= threads; d++ {
		if threads%d != 0 || d > mu || threads/d > nu {
			continue
		}
		rows, cols := ceilDiv(mu, d), ceilDiv(nu, threads/d)
		cost := float64(rows*cols*kern.mr*kern.nr)/32 + 0.2*float64(rows*kern.mr)
		if !packedB {
			cost += 0.5 * float64(cols*kern.nr)
		}
		if best < 0 || cost < best {
			best, tm, tn = cost, d, threads/d
		}
	}
	return tm, tn
}

// gemmWork holds one goroutine's packing buffers.
type gemmWork struct {
	a, b, tile []float32
}

var gemmWorkPool = sync.Pool{New: func() any { return new(gemmWork) }}

// grow returns s resliced to n elements, reallocating only when its capacity is short.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// gemmSerial computes one product on the calling goroutine (m, n, k > 0, alpha != 0).
//
// Loop nest (BLIS): jc over nc-wide column panels; pc over kc-deep slices, packing the kc×nc
// panel of op(B); ic over mc-tall row blocks, packing the mc×kc block of op(A); then jr over the
// nr-wide strips and ir over the mr-tall strips, one micro-kernel call per mr×nr tile of C.
// beta is applied by the first kc slice; later slices accumulate (beta 1).
//
// With pb not nil, op(B) comes packed (PackB): the panels are read from pb starting at its
// column pj (a multiple of nr) instead of being packed here, and b is not read.
//
// epi (see gemmEpilogue) fills each mb×nb block of C with the bias just before its first kc
// slice and runs the row function on it just after its last.
func gemmSerial(kern *gemmKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, pb *PackedB, pj int, epi gemmEpilogue) {
	mr, nr := kern.mr, kern.nr
	// Balance the blocks: equal-sized kc slices and mc blocks (mc a multiple of mr) rather
	// than full blocks and a thin remainder.
	kc := ceilDiv(k, ceilDiv(k, kern.kc))
	mc := ceilDiv(ceilDiv(m, ceilDiv(m, kern.mc)), mr) * mr
	nc := min(kern.nc, ceilDiv(n, nr)*nr)
	ws := gemmWorkPool.Get().(*gemmWork)
	ws.a = grow(ws.a, mc*kc)
	if pb == nil {
		ws.b = grow(ws.b, kc*nc)
	}
	ws.tile = grow(ws.tile, mr*nr)
	tile := ws.tile
	for jc := 0; jc < n; jc += nc {
		nb := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			bpanel := ws.b
			if pb == nil {
				packB(kern, transB, kb, nb, b, ldb, pc, jc, nr, ws.b)
			} else {
				bpanel = pb.data[pc*pb.npad+(pj+jc)*kb:]
			}
			betaP := beta
			if pc > 0 || epi.bias != nil {
				betaP = 1
			}
			for ic := 0; ic < m; ic += mc {
				mb := min(mc, m-ic)
				// The bias goes in with the first slice: through the kernel's store where it
				// has one, else copied into the block first.
				biasStore := pc == 0 && epi.bias != nil && kern.microBias != nil && alpha == 1
				if pc == 0 && epi.bias != nil && !biasStore {
					for i := ic; i < ic+mb; i++ {
						copy(c[i*ldc+jc:i*ldc+jc+nb], epi.bias[jc:jc+nb])
					}
				}
				packA(transA, mb, kb, a, lda, ic, pc, mr, ws.a)
				for jr := 0; jr < nb; jr += nr {
					nrr := min(nr, nb-jr)
					bp := bpanel[jr*kb : (jr+nr)*kb]
					for ir := 0; ir < mb; ir += mr {
						mrr := min(mr, mb-ir)
						ap := ws.a[ir*kb : (ir+mr)*kb]
						ct := c[(ic+ir)*ldc+jc+jr:]
						if mrr == mr && nrr == nr {
							_ = ct[(mr-1)*ldc+nr-1]
							if biasStore {
								kern.microBias(kb, ap, bp, ct, ldc, epi.bias[jc+jr:jc+jr+nr])
								continue
							}
							kern.micro(kb, ap, bp, ct, ldc, alpha, betaP)
							continue
						}
						kern.micro(kb, ap, bp, tile, nr, alpha, 0)
						for i := range mrr {
							crow := ct[i*ldc : i*ldc+nrr]
							trow := tile[i*nr : i*nr+nrr]
							if biasStore {
								for j, t := range trow {
									crow[j] = t + epi.bias[jc+jr+j]
								}
								continue
							}
							if betaP == 0 {
								copy(crow, trow)
								continue
							}
							for j, t := range trow {
								crow[j] = t + betaP*crow[j]
							}
						}
					}
				}
				if pc+kb == k && epi.rows != nil {
					for i := ic; i < ic+mb; i++ {
						epi.rows(c[i*ldc+jc : i*ldc+jc+nb])
					}
				}
			}
		}
	}
	gemmWorkPool.Put(ws)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// packA packs the mb×kb block of op(A) starting at row ic, column pc into mr-tall strips:
// dst[s*mr*kb + p*mr + i] = op(A)[ic+s*mr+i][pc+p], zero-padding the last strip to mr rows.
func packA(transA bool, mb, kb int, a []float32, lda, ic, pc, mr int, dst []float32) {
	for s := 0; s < mb; s += mr {
		rows := min(mr, mb-s)
		d := dst[s*kb : (s+mr)*kb]
		if transA {
			// op(A)[i][p] = a[p*lda+i]: mr contiguous values per p.
			base := pc*lda + ic + s
			if rows == mr && mr == 6 {
				for p := range kb {
					src := a[base+p*lda : base+p*lda+6]
					dp := d[p*6 : p*6+6]
					dp[0], dp[1], dp[2], dp[3], dp[4], dp[5] = src[0], src[1], src[2], src[3], src[4], src[5]
				}
				continue
			}
			for p := range kb {
				dp := d[p*mr : p*mr+mr]
				copy(dp, a[base+p*lda:base+p*lda+rows])
				clear(dp[rows:])
			}
			continue
		}
		// op(A)[i][p] = a[i*lda+p]: read each row contiguously, write with stride mr.
		if rows == mr && mr == 6 {
			r0 := a[(ic+s)*lda+pc:][:kb]
			r1 := a[(ic+s+1)*lda+pc:][:kb]
			r2 := a[(ic+s+2)*lda+pc:][:kb]
			r3 := a[(ic+s+3)*lda+pc:][:kb]
			r4 := a[(ic+s+4)*lda+pc:][:kb]
			r5 := a[(ic+s+5)*lda+pc:][:kb]
			for p := range r0 {
				dp := d[p*6 : p*6+6]
				dp[0], dp[1], dp[2], dp[3], dp[4], dp[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		if rows == mr && mr == 12 {
			packA12(d, a[(ic+s)*lda+pc:], lda, kb)
			continue
		}
		for i := range rows {
			row := a[(ic+s+i)*lda+pc:][:kb]
			for p, v := range row {
				d[p*mr+i] = v
			}
		}
		for i := rows; i < mr; i++ {
			for p := range kb {
				d[p*mr+i] = 0
			}
		}
	}
}

// packA12 packs one full 12-row strip of a row-major A (row i at a[i*lda:], kb columns) into
// d[p*12+i]: on amd64 eight steps at a time by an AVX transpose (packa_amd64.s), the rest here.
func packA12(d, a []float32, lda, kb int) {
	_ = a[11*lda+kb-1]
	_ = d[12*kb-1]
	for p := archPackA12(d, a, lda, kb); p < kb; p++ {
		dp := d[p*12 : p*12+12 : p*12+12]
		for i := range dp {
			dp[i] = a[i*lda+p]
		}
	}
}

// packB packs the kb×nb panel of op(B) starting at row pc, column jc into nr-wide strips:
// dst[s*kb + p*nr + j] = op(B)[pc+p][jc+s+j] for strips s = 0, nr, 2nr, ..., zero-padding the
// last strip to nr columns.
func packB(kern *gemmKernel, transB bool, kb, nb int, b []float32, ldb, pc, jc, nr int, dst []float32) {
	for s := 0; s < nb; s += nr {
		cols := min(nr, nb-s)
		d := dst[s*kb : (s+nr)*kb]
		if !transB {
			// op(B)[p][j] = b[p*ldb+j]: nr contiguous values per p.
			base := pc*ldb + jc + s
			if cols == 16 && nr == 16 && kern.packB16 != nil {
				kern.packB16(kb, b[base:], ldb, d)
				continue
			}
			for p := range kb {
				dp := d[p*nr : p*nr+nr]
				copy(dp, b[base+p*ldb:base+p*ldb+cols])
				clear(dp[cols:])
			}
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: read each stored row contiguously, write with stride nr.
		for j := range cols {
			row := b[(jc+s+j)*ldb+pc:][:kb]
			for p, v := range row {
				d[p*nr+j] = v
			}
		}
		for j := cols; j < nr; j++ {
			for p := range kb {
				d[p*nr+j] = 0
			}
		}
	}
}
