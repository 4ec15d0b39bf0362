package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// forEachQgemm runs f with each int8 micro-kernel this CPU runs (the generic one included).
func forEachQgemm(t testing.TB, f func(name string)) {
	old := qgemmForce
	defer func() { qgemmForce = old }()
	ks := []*qgemmKernel{qgemmGeneric}
	if k := archQgemm(); k != nil {
		ks = append(ks, k)
	}
	for _, k := range ks {
		qgemmForce = k
		f(k.name)
	}
}

// TestQLinearMatchesReference checks every int8 path bit for bit against the scalar reference
// (the int32 sums are exact and the epilogue rounds the same three operations), at awkward
// sizes: odd k, partial tiles in both directions, rows across several row blocks, nil bias,
// zero rows (scale 0).
func TestQLinearMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	forEachQgemm(t, func(name string) {
		for _, sz := range [][3]int{{1, 1, 1}, {7, 17, 5}, {13, 33, 300}, {100, 40, 64}, {6, 16, 2}, {97, 3, 129}} {
			rows, n, k := sz[0], sz[1], sz[2]
			for _, withBias := range []bool{false, true} {
				x, w := randSlice(rng, rows*k), randSlice(rng, n*k)
				clear(x[:k]) // a zero row
				var bias []float32
				if withBias {
					bias = randSlice(rng, n)
				}
				q := QuantizeWeights(w, n, k)
				got, want := make([]float32, rows*n), make([]float32, rows*n)
				QLinearForward(got, x, q, bias, rows)
				qlinearReference(want, x, q, bias, rows)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("%s: rows=%d n=%d k=%d bias=%t: y[%d]=%v, reference %v", name, rows, n, k, withBias, i, got[i], want[i])
					}
				}
			}
		}
	})
}

// TestQuantizeWeights checks the per-channel scales and the round trip error (<= scale/2).
func TestQuantizeWeights(t *testing.T) {
	w := []float32{1, -2, 0.5, 0, 0, 0, 3, 1.5, -3}
	q := QuantizeWeights(w, 3, 3)
	wantScale := []float32{2.0 / 127, 0, 3.0 / 127}
	for j, s := range wantScale {
		if q.Scale[j] != s {
			t.Errorf("scale[%d]=%v, want %v", j, q.Scale[j], s)
		}
	}
	if q.Q[1] != -127 || q.Q[6] != 127 || q.Q[8] != -127 || q.Q[3] != 0 {
		t.Errorf("q=%v", q.Q)
	}
	d := q.Dequantize()
	for i := range w {
		if diff := d[i] - w[i]; diff > q.Scale[i/3]/2+1e-7 || -diff > q.Scale[i/3]/2+1e-7 {
			t.Errorf("w[%d]=%v dequantised %v", i, w[i], d[i])
		}
	}
}

// BenchmarkQLinear times the int8 BERT-base linear layers (1024 tokens) on each int8 path,
// beside the fp32 packed GEMM of the same shape.
func BenchmarkQLinear(b *testing.B) {
	for _, s := range bertGemmShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 1))
		x, w, y := randSlice(rng, m*k), randSlice(rng, n*k), make([]float32, m*n)
		q := QuantizeWeights(w, n, k)
		forEachQgemm(b, func(name string) {
			b.Run(fmt.Sprintf("int8-%s/%dx%dx%d", name, m, k, n), func(b *testing.B) {
				for b.Loop() {
					QLinearForward(y, x, q, nil, m)
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		})
		p := PackB(true, k, n, w, k)
		b.Run(fmt.Sprintf("fp32-%s/%dx%dx%d", GemmPath(), m, k, n), func(b *testing.B) {
			for b.Loop() {
				SgemmPacked(m, n, k, 1, x, k, p, 0, y, n)
			}
			b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
		})
	}
}
