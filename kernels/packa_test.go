package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// packARef is packA's definition as a plain loop: dst[s*mr*kb + p*mr + i] = op(A)[ic+s*mr+i][pc+p],
// zero past the last row.
func packARef(transA bool, mb, kb int, a []float32, lda, ic, pc, mr int, dst []float32) {
	for s := 0; s < mb; s += mr {
		for p := range kb {
			for i := range mr {
				var v float32
				if s+i < mb {
					if transA {
						v = a[(pc+p)*lda+ic+s+i]
					} else {
						v = a[(ic+s+i)*lda+pc+p]
					}
				}
				dst[s*kb+p*mr+i] = v
			}
		}
	}
}

// TestPackAMatchesReference checks packA (its unrolled 6- and 12-row strips included) against
// the plain loop at awkward sizes and offsets, both orientations.
func TestPackAMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, mr := range []int{2, 6, 12} {
		for _, sz := range [][4]int{{1, 1, 0, 0}, {12, 7, 0, 0}, {25, 33, 3, 5}, {36, 256, 12, 1}, {13, 1, 1, 2}} {
			mb, kb, ic, pc := sz[0], sz[1], sz[2], sz[3]
			for _, transA := range []bool{false, true} {
				rowsA, colsA := ic+mb+1, pc+kb+2
				if transA {
					rowsA, colsA = pc+kb+2, ic+mb+1
				}
				lda := colsA + 3
				a := randSlice(rng, rowsA*lda)
				n := ceilDiv(mb, mr) * mr * kb
				got, want := randSlice(rng, n), make([]float32, n)
				packA(transA, mb, kb, a, lda, ic, pc, mr, got)
				packARef(transA, mb, kb, a, lda, ic, pc, mr, want)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("mr=%d mb=%d kb=%d ic=%d pc=%d transA=%t: dst[%d]=%v, want %v", mr, mb, kb, ic, pc, transA, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// BenchmarkPackA times packing a 192×256 block (the avx512f kernel's mc×kc) of a row-major A
// with 768 columns, in 12-row strips.
func BenchmarkPackA(b *testing.B) {
	for _, mr := range []int{6, 12} {
		const mb, kb, lda = 192, 256, 768
		a := randSlice(rand.New(rand.NewPCG(1, 2)), mb*lda)
		dst := make([]float32, mb*kb)
		b.Run(fmt.Sprintf("mr%d", mr), func(b *testing.B) {
			for b.Loop() {
				packA(false, mb, kb, a, lda, 0, 256, mr, dst)
			}
			b.ReportMetric(float64(4*mb*kb)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}
