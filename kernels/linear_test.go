package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestLinearForwardBiasEpilogue checks that LinearForward, which writes the bias inside the
// product, gives bit for bit the bias copied into every row followed by Sgemm with beta 1, on
// every path and thread count, at sizes with partial tiles and several kc slices.
func TestLinearForwardBiasEpilogue(t *testing.T) {
	forEachGemmConfig(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(8, 9))
		for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 13}, {25, 513, 65}, {130, 64, 96}} {
			rows, in, out := sz[0], sz[1], sz[2]
			x, w, b := randSlice(rng, rows*in), randSlice(rng, out*in), randSlice(rng, out)
			want, got := make([]float32, rows*out), make([]float32, rows*out)
			for r := range rows {
				copy(want[r*out:(r+1)*out], b)
			}
			Sgemm(false, true, rows, out, in, 1, x, in, w, in, 1, want, out)
			LinearForward(got, x, w, b, rows, in, out)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: rows=%d in=%d out=%d: y[%d]=%v, copy+Sgemm gives %v", GemmPath(), rows, in, out, i, got[i], want[i])
				}
			}
		}
	})
}
