package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// withVec runs f with the vector kernels on and off (when the CPU has them).
func withVec(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := vecOn
	defer func() { vecOn = saved }()
	vecOn = false
	t.Run("scalar", f)
	if haveVec {
		vecOn = true
		t.Run("avx2", f)
	}
}

// TestVectorKernelsMatchReference checks GELU forward/backward and softmax on both paths
// against float64 references (math.Erf, math.Exp), at lengths that leave scalar tails.
func TestVectorKernelsMatchReference(t *testing.T) {
	withVec(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 8, 33, 1027} {
			rng := rand.New(rand.NewPCG(uint64(n), 5))
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 3)
			}
			x[0] = 9 // beyond the erf clamp
			if n > 1 {
				x[1] = -11
			}
			y, dx, dy := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range dy {
				dy[i] = 1
			}
			GeluForward(y, x)
			GeluBackward(dx, dy, x)
			for i, v := range x {
				xv := float64(v)
				cdf := 0.5 * (1 + math.Erf(xv/math.Sqrt2))
				w := xv * cdf
				dw := cdf + xv*math.Exp(-xv*xv/2)/math.Sqrt(2*math.Pi)
				// 4e-7·max(1,|x|): a few ulp of the result (erf approximated to ~1e-7).
				if d := math.Abs(float64(y[i]) - w); d > 4e-7*math.Max(1, math.Abs(xv)) {
					t.Fatalf("n=%d GELU(%v) = %v, want %v", n, v, y[i], w)
				}
				if d := math.Abs(float64(dx[i]) - dw); d > 4e-7*math.Max(1, math.Abs(xv)) {
					t.Fatalf("n=%d GELU'(%v) = %v, want %v", n, v, dx[i], dw)
				}
			}
			// Softmax of one row with a masked entry (float32 min added, as BERT does).
			x[n-1] += -math.MaxFloat32
			SoftmaxForward(y, x, 1, n)
			mx := math.Inf(-1)
			for _, v := range x {
				mx = math.Max(mx, float64(v))
			}
			var z float64
			for _, v := range x {
				z += math.Exp(float64(v) - mx)
			}
			for i, v := range x {
				w := math.Exp(float64(v)-mx) / z
				// float32 rounds x−max by up to half an ulp of |x−max|, which e** turns into
				// that much relative error; add 2 ulp for exp and the normalisation.
				if d := math.Abs(float64(y[i]) - w); d > 6e-8*(4+math.Abs(float64(v)-mx))*w+1e-30 {
					t.Fatalf("n=%d softmax[%d] = %v, want %v", n, i, y[i], w)
				}
			}
			if n > 1 && y[n-1] != 0 {
				t.Fatalf("masked probability %v, want 0", y[n-1])
			}
		}
	})
}

// TestAdamPathsBitIdentical runs Adam, Adam with L2 decay and AdamW on both paths from the
// same state: the parameters and moments must agree bit for bit after several steps.
func TestAdamPathsBitIdentical(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX2")
	}
	for _, hp := range []AdamParams{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1},
		{LR: 5e-5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true},
	} {
		const n = 1027
		rng := rand.New(rand.NewPCG(7, 7))
		p0, g := randVec(rng, n), randVec(rng, n)
		var res [2][3][]float32
		for path := range 2 {
			saved := vecOn
			vecOn = path == 1
			p, m, v := append([]float32(nil), p0...), make([]float32, n), make([]float32, n)
			for s := 1; s <= 4; s++ {
				h := hp
				h.Step = s
				AdamStep(p, g, m, v, h)
			}
			vecOn = saved
			res[path] = [3][]float32{p, m, v}
		}
		for k := range 3 {
			for i := range res[0][k] {
				if math.Float32bits(res[0][k][i]) != math.Float32bits(res[1][k][i]) {
					t.Fatalf("%+v: array %d element %d: scalar %v, avx2 %v", hp, k, i, res[0][k][i], res[1][k][i])
				}
			}
		}
	}
}

// TestLayerNormVectorMatchesScalar checks that LayerNorm forward (and its fused residual add)
// gives the same bits with the AVX2 row kernels as with the scalar loops, at widths that leave
// tails, on rows of very different scales.
func TestLayerNormVectorMatchesScalar(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX2")
	}
	saved := vecOn
	defer func() { vecOn = saved }()
	for _, c := range []int{1, 7, 8, 33, 768, 1027} {
		const n = 5
		rng := rand.New(rand.NewPCG(uint64(c), 9))
		x, res, g, b := make([]float32, n*c), make([]float32, n*c), make([]float32, c), make([]float32, c)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(i/c-2)))
			res[i] = float32(rng.NormFloat64())
		}
		for i := range g {
			g[i], b[i] = float32(1+rng.NormFloat64()/4), float32(rng.NormFloat64()/4)
		}
		var ys, ms, rs [2][]float32
		for k, on := range []bool{false, true} {
			vecOn = on
			y, mean, rstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
			LayerNormForward(y, mean, rstd, x, g, b, n, c, 1e-12)
			xa := append([]float32(nil), x...)
			ya := make([]float32, n*c)
			AddLayerNormForward(ya, xa, res, g, b, nil, nil, n, c, 1e-12)
			ys[k], ms[k], rs[k] = append(y, ya...), mean, rstd
		}
		for i := range ys[0] {
			if math.Float32bits(ys[0][i]) != math.Float32bits(ys[1][i]) {
				t.Fatalf("c=%d: output %d: scalar %v, vector %v", c, i, ys[0][i], ys[1][i])
			}
		}
		for i := range ms[0] {
			if ms[0][i] != ms[1][i] || rs[0][i] != rs[1][i] {
				t.Fatalf("c=%d row %d: mean/rstd scalar %v/%v, vector %v/%v", c, i, ms[0][i], rs[0][i], ms[1][i], rs[1][i])
			}
		}
	}
}

// TestMaxAVX2MatchesScalar checks the vector maximum of softmax against the scalar loop (v >
// mx from −Inf): NaN ignored, −Inf rows, the maximum anywhere in the row.
func TestMaxAVX2MatchesScalar(t *testing.T) {
	if !haveVec {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(4, 4))
	for _, n := range []int{8, 16, 64, 128} {
		for trial := range 50 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 10)
			}
			switch trial % 5 {
			case 1:
				x[rng.IntN(n)] = float32(math.NaN())
			case 2:
				for i := range x {
					x[i] = float32(math.Inf(-1))
				}
			case 3:
				x[rng.IntN(n)] = float32(math.Inf(1))
			case 4:
				for i := range x {
					x[i] = float32(math.NaN())
				}
			}
			want := float32(math.Inf(-1))
			for _, v := range x {
				if v > want {
					want = v
				}
			}
			if got := maxAVX2(&x[0], n); got != want {
				t.Fatalf("n=%d trial %d: maxAVX2 %v, scalar %v", n, trial, got, want)
			}
		}
	}
}
