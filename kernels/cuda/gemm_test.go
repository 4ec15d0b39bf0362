package cuda

import (
	"fmt"
	"math"
	"testing"
)

// Conformance of the GEMM kernels against a float64 reference: each element of C is checked
// as |got − want| <= rtol·(Σ_k |a_mk·b_kn| + |beta·c|), the bound of a float32 dot product.

// gemmCase is one product; the operands are packed with the given padding of the leading
// dimensions, and batches are strided with a gap.
type gemmCase struct {
	transA, transB bool
	m, n, k        int
	batch          int
	alpha, beta    float32
	pad            int // extra elements per row (leading dimension = packed + pad)
}

func (g gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v M=%d N=%d K=%d batch=%d alpha=%v beta=%v pad=%d", g.transA, g.transB, g.m, g.n, g.k, g.batch, g.alpha, g.beta, g.pad)
}

// gemmCases are awkward shapes: 1, 7, 1027, not multiples of any tile, K = 0, batched with
// strides that are not the packed ones, and each transpose.
var gemmCases = func() []gemmCase {
	var cs []gemmCase
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		cs = append(cs,
			gemmCase{tr[0], tr[1], 1, 1, 1, 1, 1, 0, 0},
			gemmCase{tr[0], tr[1], 7, 7, 7, 1, 1, 0, 3},
			gemmCase{tr[0], tr[1], 65, 130, 257, 1, 0.5, 0.25, 1},
			gemmCase{tr[0], tr[1], 33, 70, 129, 3, 1, 1, 2},
		)
	}
	return append(cs,
		gemmCase{false, false, 1027, 33, 65, 1, 1, 0, 0},
		gemmCase{false, true, 128, 128, 64, 12, 0.125, 0, 0}, // attention scores, 12 heads
		gemmCase{false, false, 7, 1027, 1, 1, 1, 0, 0},
		gemmCase{false, false, 5, 6, 0, 1, 1, 0.5, 0}, // K = 0: C = beta·C
	)
}()

// gemmOperands builds A, B, C (float32, already rounded to bf16 when bf16 is set) and the
// layout of g.
type gemmLayout struct {
	lda, ldb, ldc              int
	strA, strB, strC           int
	aLen, bLen, cLen           int
	aRows, aCols, bRows, bCols int
}

func layoutOf(g gemmCase) gemmLayout {
	var l gemmLayout
	l.aRows, l.aCols = g.m, g.k
	if g.transA {
		l.aRows, l.aCols = g.k, g.m
	}
	l.bRows, l.bCols = g.k, g.n
	if g.transB {
		l.bRows, l.bCols = g.n, g.k
	}
	l.lda, l.ldb, l.ldc = max(l.aCols, 1)+g.pad, max(l.bCols, 1)+g.pad, g.n+g.pad
	l.strA, l.strB, l.strC = l.aRows*l.lda+5, l.bRows*l.ldb+3, g.m*l.ldc+7
	l.aLen, l.bLen, l.cLen = g.batch*l.strA, g.batch*l.strB, g.batch*l.strC
	return l
}

// gemmRef computes C = alpha·op(A)·op(B) + beta·C in float64 and the error scale per element.
func gemmRef(g gemmCase, l gemmLayout, a, b, c []float32) ([]float32, []float64) {
	want := append([]float32(nil), c...)
	scale := make([]float64, len(c))
	for bt := 0; bt < g.batch; bt++ {
		for i := 0; i < g.m; i++ {
			for j := 0; j < g.n; j++ {
				var s, abs float64
				for p := 0; p < g.k; p++ {
					ai, bi := bt*l.strA+i*l.lda+p, bt*l.strB+p*l.ldb+j
					if g.transA {
						ai = bt*l.strA + p*l.lda + i
					}
					if g.transB {
						bi = bt*l.strB + j*l.ldb + p
					}
					av, bv := a[ai], b[bi]
					s += float64(av) * float64(bv)
					abs += math.Abs(float64(av) * float64(bv))
				}
				ci := bt*l.strC + i*l.ldc + j
				v := float64(g.alpha) * s
				sc := math.Abs(float64(g.alpha)) * abs
				if g.beta != 0 {
					v += float64(g.beta) * float64(c[ci])
					sc += math.Abs(float64(g.beta) * float64(c[ci]))
				}
				want[ci], scale[ci] = float32(v), sc
			}
		}
	}
	return want, scale
}

func (g gemmCase) gemm(l gemmLayout) Gemm {
	return Gemm{TransA: g.transA, TransB: g.transB, M: g.m, N: g.n, K: g.k, Alpha: g.alpha, Beta: g.beta,
		LDA: l.lda, LDB: l.ldb, LDC: l.ldc, StrideA: l.strA, StrideB: l.strB, StrideC: l.strC, Batch: g.batch}
}

func TestGemmF32(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for ci, g := range gemmCases {
			l := layoutOf(g)
			a := randF32(uint64(ci), l.aLen, -1, 1)
			b := randF32(uint64(ci)+100, l.bLen, -1, 1)
			cc := randF32(uint64(ci)+200, l.cLen, -1, 1)
			ab, bb, cb := upload(t, c, a, 0), upload(t, c, b, 0), upload(t, c, cc, 0)
			check(t, s.GemmF32(g.gemm(l), ab, bb, cb))
			want, scale := gemmRef(g, l, a, b, cc)
			// Elements outside the M×N blocks (padding, gaps) must be untouched: the reference
			// leaves them as they were, with scale 0.
			compare(t, "GemmF32 "+g.String(), download[float32](t, cb, l.cLen), want, scale, 1e-30, rtolF32Sum)
			for _, x := range []Buffer{ab, bb, cb} {
				x.Free()
			}
		}
	})
}

func TestGemmBF16(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for ci, g := range gemmCases {
			l := layoutOf(g)
			// Inputs rounded to bf16 first, so the reference sees exactly what the kernel sees
			// and the tolerance is that of float32 accumulation alone.
			a := roundBF16(randF32(uint64(ci), l.aLen, -1, 1))
			b := roundBF16(randF32(uint64(ci)+100, l.bLen, -1, 1))
			cc := randF32(uint64(ci)+200, l.cLen, -1, 1)
			ab, bb := upload(t, c, bf16s(a), 0), upload(t, c, bf16s(b), 0)
			cb := upload(t, c, cc, 0)
			c16 := upload(t, c, bf16s(cc), 0)
			check(t, s.GemmBF16(g.gemm(l), ab, bb, cb, c16))
			want, scale := gemmRef(g, l, a, b, cc)
			name := "GemmBF16 " + g.String()
			compare(t, name+" C", download[float32](t, cb, l.cLen), want, scale, 1e-30, rtolF32Sum)
			got16 := download[uint16](t, c16, l.cLen)
			compareBF16(t, name+" Cbf16", got16, want, scale, 1e-30, rtolF32Sum)
			// Cbf16 only (beta must then be 0).
			if g.beta == 0 {
				c16b := upload(t, c, make([]uint16, l.cLen), 0)
				check(t, s.GemmBF16(g.gemm(l), ab, bb, Buffer{}, c16b))
				for i := range got16 {
					// outside the product the buffer keeps its zeros
					if scale[i] == 0 && want[i] == cc[i] {
						got16[i] = 0
					}
				}
				wantOnly := append([]float32(nil), want...)
				for i := range wantOnly {
					if scale[i] == 0 && want[i] == cc[i] {
						wantOnly[i] = 0
					}
				}
				compareBF16(t, name+" Cbf16 only", download[uint16](t, c16b, l.cLen), wantOnly, scale, 1e-30, rtolF32Sum)
				c16b.Free()
			}
			for _, x := range []Buffer{ab, bb, cb, c16} {
				x.Free()
			}
		}
	})
}

func TestGemmBF16Epilogue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, c *Context) {
		s := c.Stream()
		for ci, g := range []gemmCase{
			{false, true, 7, 33, 65, 1, 1, 0, 0},
			{false, true, 130, 257, 64, 1, 1, 0.5, 3},
			{true, false, 65, 130, 33, 2, 0.5, 0, 1},
		} {
			for _, act := range []Activation{ActNone, ActGELU} {
				l := layoutOf(g)
				a := roundBF16(randF32(uint64(ci), l.aLen, -1, 1))
				b := roundBF16(randF32(uint64(ci)+100, l.bLen, -1, 1))
				cc := randF32(uint64(ci)+200, l.cLen, -1, 1)
				bias := randF32(uint64(ci)+300, g.n, -1, 1)
				ab, bb, cb := upload(t, c, bf16s(a), 0), upload(t, c, bf16s(b), 0), upload(t, c, cc, 0)
				c16, pre, biasb := upload(t, c, make([]uint16, l.cLen), 0), upload(t, c, cc, 0), upload(t, c, bias, 0)
				check(t, s.GemmBF16Ex(g.gemm(l), GemmEpilogue{Bias: biasb, Act: act, Preact: pre}, ab, bb, cb, c16))
				r, scale := gemmRef(g, l, a, b, cc)
				// Add the bias inside the M×N blocks (where scale is set).
				inside := make([]bool, l.cLen)
				for bt := 0; bt < g.batch; bt++ {
					for i := 0; i < g.m; i++ {
						for j := 0; j < g.n; j++ {
							ci := bt*l.strC + i*l.ldc + j
							r[ci] += bias[j]
							scale[ci] += math.Abs(float64(bias[j]))
							inside[ci] = true
						}
					}
				}
				want, wscale := append([]float32(nil), r...), append([]float64(nil), scale...)
				want16 := make([]float32, l.cLen)
				if act == ActGELU {
					// GELU's slope is at most 1.13; its float32 erf adds a few ulp of |r|.
					for i, v := range r {
						if inside[i] {
							y, _ := geluRef([]float32{v})
							want[i] = y[0]
							wscale[i] = 1.13*scale[i] + math.Abs(float64(v))
						}
					}
				}
				for i := range want16 {
					if inside[i] {
						want16[i] = want[i]
					}
				}
				name := fmt.Sprintf("GemmBF16Ex act=%d %v", act, g)
				compare(t, name+" preact", download[float32](t, pre, l.cLen), r, scale, 1e-30, rtolF32Sum)
				compare(t, name+" C", download[float32](t, cb, l.cLen), want, wscale, 1e-30, rtolF32Sum)
				compareBF16(t, name+" Cbf16", download[uint16](t, c16, l.cLen), want16, wscale, 1e-30, rtolF32Sum)
				for _, x := range []Buffer{ab, bb, cb, c16, pre, biasb} {
					x.Free()
				}
			}
		}
	})
}
