package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ulpDiff returns the distance in float32 ulps between a and the float64 reference w.
func relErr(a float32, w float64) float64 {
	if w == 0 {
		return math.Abs(float64(a))
	}
	return math.Abs(float64(a)-w) / math.Abs(w)
}

func TestExpfAccuracy(t *testing.T) {
	worst := 0.0
	for x := -87.0; x <= 88.5; x += 0.0137 {
		e := relErr(Expf(float32(x)), math.Exp(float64(float32(x))))
		worst = max(worst, e)
	}
	// Cephes documents 2 ulp (≈ 2.4e-7 relative) for expf.
	if worst > 2.4e-7 {
		t.Fatalf("Expf worst relative error %g", worst)
	}
	if !math.IsInf(float64(Expf(89)), 1) || Expf(-110) != 0 || Expf(0) != 1 {
		t.Fatal("Expf special values")
	}
}

func TestErffAccuracy(t *testing.T) {
	worst := 0.0
	for x := -6.0; x <= 6; x += 0.00071 {
		xf := float32(x)
		d := math.Abs(float64(Erff(xf)) - math.Erf(float64(xf)))
		worst = max(worst, d)
	}
	// Absolute error under 1 ulp of 1.0 (1.19e-7) keeps GELU = 0.5x(1+erf) within float32 rounding.
	if worst > 1.2e-7 {
		t.Fatalf("Erff worst absolute error %g", worst)
	}
}

func TestTanhfAccuracy(t *testing.T) {
	worst := 0.0
	for x := -12.0; x <= 12; x += 0.00053 {
		worst = max(worst, relErr(Tanhf(float32(x)), math.Tanh(float64(float32(x)))))
	}
	if worst > 5e-7 {
		t.Fatalf("Tanhf worst relative error %g", worst)
	}
}

func TestGeluValues(t *testing.T) {
	// Hand values: GELU(x) = x·Φ(x), Φ from math.Erf in float64.
	x := []float32{-3, -1, -0.5, 0, 0.5, 1, 3}
	y := make([]float32, len(x))
	GeluForward(y, x)
	for i, v := range x {
		w := 0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2))
		if math.Abs(float64(y[i])-w) > 2.4e-7 {
			t.Errorf("GELU(%v) = %v, want %v", v, y[i], w)
		}
	}
}

func TestLayerNormForwardReference(t *testing.T) {
	n, c := 5, 7
	rng := rand.New(rand.NewPCG(1, 2))
	x, g, b := randVec(rng, n*c), randVec(rng, c), randVec(rng, c)
	y, mean, rstd := make([]float32, n*c), make([]float32, n), make([]float32, n)
	LayerNormForward(y, mean, rstd, x, g, b, n, c, 1e-5)
	for r := 0; r < n; r++ {
		var m, v float64
		for i := 0; i < c; i++ {
			m += float64(x[r*c+i])
		}
		m /= float64(c)
		for i := 0; i < c; i++ {
			d := float64(x[r*c+i]) - m
			v += d * d
		}
		rs := 1 / math.Sqrt(v/float64(c)+1e-5)
		for i := 0; i < c; i++ {
			w := (float64(x[r*c+i])-m)*rs*float64(g[i]) + float64(b[i])
			if math.Abs(float64(y[r*c+i])-w) > 1e-6 {
				t.Fatalf("row %d col %d: %v want %v", r, i, y[r*c+i], w)
			}
		}
	}
}

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestAttentionReference checks the fused kernel against a float64 loop implementation of
// softmax(QKᵀ·scale + maskbias)·V on awkward sizes, in the (B, T, H·D) layout.
func TestAttentionReference(t *testing.T) {
	for _, dims := range [][4]int{{1, 1, 1, 1}, {2, 3, 7, 5}, {1, 2, 33, 8}, {3, 1, 6, 4}} {
		B, H, T, D := dims[0], dims[1], dims[2], dims[3]
		C := H * D
		rng := rand.New(rand.NewPCG(uint64(T), 3))
		q, k, v := randVec(rng, B*T*C), randVec(rng, B*T*C), randVec(rng, B*T*C)
		// Each sequence pads a different key (the kernel finds a sequence's padded keys once
		// per task and must not reuse another sequence's).
		mask := make([]float32, B*T)
		for i := range mask {
			mask[i] = 1
			if b := i / T; i%T == T-1-b && T > 1+b {
				mask[i] = 0
			}
		}
		a := &Attention{B: B, H: H, T: T, D: D, Scale: float32(1 / math.Sqrt(float64(D))), Mask: mask}
		view := func(d []float32) HeadView { return HeadView{Data: d, SB: T * C, SH: D, ST: C} }
		out := make([]float32, B*T*C)
		p := make([]float32, B*H*T*T)
		a.Forward(view(out), view(q), view(k), view(v), p)
		// Without a probabilities buffer (inference), per-head scratch: the same output.
		noP := make([]float32, B*T*C)
		a.Forward(view(noP), view(q), view(k), view(v), nil)
		for i := range out {
			if out[i] != noP[i] {
				t.Fatalf("dims %v: output %d is %v with p, %v without", dims, i, out[i], noP[i])
			}
		}
		for b := 0; b < B; b++ {
			for h := 0; h < H; h++ {
				for i := 0; i < T; i++ {
					s := make([]float64, T)
					mx := math.Inf(-1)
					for j := 0; j < T; j++ {
						for d := 0; d < D; d++ {
							s[j] += float64(q[b*T*C+i*C+h*D+d]) * float64(k[b*T*C+j*C+h*D+d])
						}
						s[j] /= math.Sqrt(float64(D))
						if mask[b*T+j] == 0 {
							s[j] = math.Inf(-1)
						}
						mx = max(mx, s[j])
					}
					var z float64
					for j := range s {
						s[j] = math.Exp(s[j] - mx)
						z += s[j]
					}
					for d := 0; d < D; d++ {
						var o float64
						for j := range s {
							o += s[j] / z * float64(v[b*T*C+j*C+h*D+d])
						}
						if got := out[b*T*C+i*C+h*D+d]; math.Abs(float64(got)-o) > 1e-5 {
							t.Fatalf("dims %v (b%d h%d i%d d%d): %v want %v", dims, b, h, i, d, got, o)
						}
					}
				}
			}
		}
	}
}

func TestCrossEntropyHand(t *testing.T) {
	// logits (2, 3): row 0 uniform → loss ln 3; row 1 ignored.
	logits := []float32{1, 1, 1, 5, 0, 0}
	probs := make([]float32, 6)
	loss, n := CrossEntropyForward(probs, logits, []int32{2, -100}, 2, 3, -100)
	if n != 1 || math.Abs(float64(loss)-math.Log(3)) > 1e-7 {
		t.Fatalf("loss %v over %d rows, want ln 3 over 1", loss, n)
	}
	d := make([]float32, 6)
	CrossEntropyBackward(d, probs, []int32{2, -100}, 2, 3, -100, n, 1)
	want := []float32{1.0 / 3, 1.0 / 3, 1.0/3 - 1, 0, 0, 0}
	for i := range d {
		if math.Abs(float64(d[i]-want[i])) > 1e-7 {
			t.Fatalf("dlogits %v, want %v", d, want)
		}
	}
}

func TestDropoutMaskRate(t *testing.T) {
	m := make([]float32, 1<<16)
	DropoutMask(m, 0.1, 5, 0)
	dropped := 0
	for _, v := range m {
		if v == 0 {
			dropped++
		} else if math.Abs(float64(v)-1/0.9) > 1e-7 {
			t.Fatalf("kept value %v", v)
		}
	}
	// Binomial(65536, 0.1): sd ≈ 77; allow 5 sd.
	if d := math.Abs(float64(dropped) - 6553.6); d > 5*77 {
		t.Fatalf("dropped %d of 65536 at p=0.1", dropped)
	}
}
