package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// forEachQgemm runs f with each int8 micro-kernel this CPU runs (the generic one included).
func forEachQgemm(t testing.TB, f func(name string)) {
	old := qgemmForce
	defer func() { qgemmForce = old }()
	for _, k := range qgemmKernels() {
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
		for _, sz := range [][3]int{{1, 1, 1}, {7, 17, 5}, {13, 33, 300}, {100, 40, 64}, {6, 16, 2}, {97, 3, 129}, {12, 32, 4}, {25, 65, 771}, {200, 31, 7}, {12, 64, 1027}} {
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
	if qq := q.Q(); qq[1] != -127 || qq[6] != 127 || qq[8] != -127 || qq[3] != 0 {
		t.Errorf("q=%v", qq)
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
			if strings.HasPrefix(name, "generic") {
				return
			}
			q.packed(qgemmActive().layout)
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

// TestQLinearExtremes checks the int8 paths bit for bit on the values that stress the quads
// layout's u8 offset and correction: every weight ±127 and activations at ±max (qx = ±127), so
// the kernel's sums reach 255·127·k before the 128·colsum correction.
func TestQLinearExtremes(t *testing.T) {
	forEachQgemm(t, func(name string) {
		for _, sz := range [][3]int{{12, 32, 3072}, {13, 33, 4099}} {
			rows, n, k := sz[0], sz[1], sz[2]
			x, w := make([]float32, rows*k), make([]float32, n*k)
			for i := range x {
				x[i] = float32(1 - 2*(i%2))
				if (i/k)%3 == 0 {
					x[i] = 1
				}
			}
			for i := range w {
				w[i] = float32(1 - 2*((i/3)%2))
				if (i/k)%2 == 0 {
					w[i] = -1
				}
			}
			q := QuantizeWeights(w, n, k)
			got, want := make([]float32, rows*n), make([]float32, rows*n)
			QLinearForward(got, x, q, nil, rows)
			qlinearReference(want, x, q, nil, rows)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s: rows=%d n=%d k=%d: y[%d]=%v, reference %v", name, rows, n, k, i, got[i], want[i])
				}
			}
		}
	})
}

// TestQuantizeRowMatchesScalar checks the vector quantisation of a row against the scalar one
// at awkward lengths and on exact ties (x·inv = m + 0.5), which round away from zero.
func TestQuantizeRowMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 15, 16, 17, 31, 32, 33, 48, 768, 1027, 3072} {
		for trial := range 4 {
			x := randSlice(rng, n)
			if trial == 1 {
				// max 127 so that inv = 1 and x·inv = x: halves are exact ties.
				for i := range x {
					x[i] = float32(max(-100, min(100, int(x[i]*20)))) + 0.5
				}
				x[n-1] = 127
			}
			if trial == 2 {
				clear(x)
			}
			if trial == 3 {
				for i := range x {
					x[i] = float32(math.Nextafter32(0.5, 0)) * float32(1-2*(i%2))
				}
				x[0] = 127
			}
			got, want := make([]int8, n), make([]int8, n)
			sg, sw := quantizeRow(got, x), quantizeRowScalar(want, x)
			if sg != sw {
				t.Fatalf("n=%d trial %d: scale %v, scalar %v", n, trial, sg, sw)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("n=%d trial %d: q[%d]=%d for x=%v, scalar %d", n, trial, i, got[i], x[i], want[i])
				}
			}
		}
	}
}

// TestQuantizedRepack packs weights for one kernel's layout and runs them on every other (the
// held packed form is unpacked and repacked): Q gives back the same int8 values and the
// products stay bit-identical to the reference.
func TestQuantizedRepack(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	rows, n, k := 14, 37, 203
	x, w := randSlice(rng, rows*k), randSlice(rng, n*k)
	q := QuantizeWeights(w, n, k)
	want0 := q.Q()
	want := make([]float32, rows*n)
	qlinearReference(want, x, q, nil, rows)
	for range 2 {
		forEachQgemm(t, func(name string) {
			got := make([]float32, rows*n)
			QLinearForward(got, x, q, nil, rows)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s after repacking: y[%d]=%v, reference %v", name, i, got[i], want[i])
				}
			}
			for i, v := range q.Q() {
				if v != want0[i] {
					t.Fatalf("%s: Q()[%d]=%d after repacking, was %d", name, i, v, want0[i])
				}
			}
		})
	}
}
