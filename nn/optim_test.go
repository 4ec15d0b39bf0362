package nn

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/tensor"
)

// TestAdamMatchesPyTorch replays testdata/adam_golden.json, written by adam_golden.py with
// torch.optim.Adam/AdamW (torch 1.13). That version updates the first moment as
// m·β1 + (1−β1)·g where current PyTorch (and mtbert) uses lerp(m, g, 1−β1); the two differ in
// the last bit, so parameters must agree to 2e-7 absolute (about 2 ulp of these values).
func TestAdamMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/adam_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		N     int
		Cases []struct {
			Name        string
			Decoupled   bool
			WeightDecay float64 `json:"weight_decay"`
			LR          float64
			Steps       [][]float64
		}
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	for _, c := range golden.Cases {
		t.Run(c.Name, func(t *testing.T) {
			p := make([]float32, golden.N)
			for i := range p {
				p[i] = float32(0.5 * math.Sin(0.37*float64(i)+1))
			}
			v := autograd.NewParam("p", tensor.FromSlice(p, golden.N))
			opt := NewAdam([]*autograd.Var{v}, c.LR)
			opt.WeightDecay, opt.Decoupled = c.WeightDecay, c.Decoupled
			g := make([]float32, golden.N)
			v.Grad = tensor.FromSlice(g, golden.N)
			for s, want := range c.Steps {
				for i := range g {
					g[i] = float32(0.1*math.Cos(0.11*float64(i)*float64(s+1)) - 0.02)
				}
				opt.Step()
				for i, w := range want {
					if d := math.Abs(float64(p[i]) - w); d > 2e-7 {
						t.Fatalf("step %d element %d: %v, PyTorch %v (diff %g)", s+1, i, p[i], w, d)
					}
				}
			}
		})
	}
}

func TestAdamSkipsParamsWithoutGrad(t *testing.T) {
	a := autograd.NewParam("a", tensor.FromSlice([]float32{1}, 1))
	b := autograd.NewParam("b", tensor.FromSlice([]float32{1}, 1))
	a.Grad = tensor.FromSlice([]float32{1}, 1)
	opt := NewAdam([]*autograd.Var{a, b}, 0.1)
	opt.Step()
	if _, _, s := opt.State(1); s != 0 || b.Value.Item() != 1 {
		t.Fatalf("parameter without gradient was updated (step %d, value %v)", s, b.Value.Item())
	}
	// First Adam step moves by exactly lr·sign(g) up to eps: m̂ = g, v̂ = g².
	if got := a.Value.Item(); math.Abs(float64(got)-0.9) > 1e-6 {
		t.Fatalf("first step gives %v, want 0.9", got)
	}
}

func TestClipGradNorm(t *testing.T) {
	a := autograd.NewParam("a", tensor.New(2))
	b := autograd.NewParam("b", tensor.New(1))
	a.Grad = tensor.FromSlice([]float32{3, 0}, 2)
	b.Grad = tensor.FromSlice([]float32{4}, 1)
	norm := ClipGradNorm([]*autograd.Var{a, b}, 1)
	if norm != 5 {
		t.Fatalf("norm %v, want 5", norm)
	}
	// coef = 1/(5+1e-6)
	want := float32(3 / (5 + 1e-6))
	if got := a.Grad.Data()[0]; math.Abs(float64(got-want)) > 1e-7 {
		t.Fatalf("clipped grad %v, want %v", got, want)
	}
	if n := ClipGradNorm([]*autograd.Var{a, b}, 10); math.Abs(n-1) > 1e-6 || math.Abs(float64(b.Grad.Data()[0])-0.8) > 1e-6 {
		t.Fatalf("norm below the limit changed the gradients: norm %v, b %v", n, b.Grad.Data()[0])
	}
}

func TestLinearWarmup(t *testing.T) {
	s := LinearWarmup{Peak: 1e-3, Warmup: 10, Total: 110}
	for _, c := range []struct {
		step int
		want float64
	}{{0, 0}, {5, 5e-4}, {10, 1e-3}, {60, 5e-4}, {110, 0}, {200, 0}} {
		if got := s.LR(c.step); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LR(%d) = %g, want %g", c.step, got, c.want)
		}
	}
	if Constant(5e-5).LR(1000) != 5e-5 {
		t.Error("constant schedule changed")
	}
}

func TestModuleNames(t *testing.T) {
	p := NewParams()
	g := tensor.NewRNG(1)
	s := Root(p).Sub("encoder").Sub("layer.0")
	NewLinear(s.Sub("attention.self.query"), g, 4, 4, true, 0.02)
	NewLayerNorm(s.Sub("output.LayerNorm"), 4, 1e-12)
	want := []string{
		"encoder.layer.0.attention.self.query.bias", "encoder.layer.0.attention.self.query.weight",
		"encoder.layer.0.output.LayerNorm.bias", "encoder.layer.0.output.LayerNorm.weight",
	}
	got := p.Names()
	if len(got) != len(want) {
		t.Fatalf("names %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("names %v, want %v", got, want)
		}
	}
	if p.Count() != 4*4+4+4+4 {
		t.Fatalf("count %d", p.Count())
	}
	defer func() {
		if recover() == nil {
			t.Fatal("duplicate name accepted")
		}
	}()
	NewLayerNorm(s.Sub("output.LayerNorm"), 4, 1e-12)
}

func TestDropoutReproducible(t *testing.T) {
	x := autograd.Constant(tensor.New(64).Fill(1))
	run := func() []float32 {
		d := NewDropout(0.5, 42)
		tp := autograd.NoGrad()
		a := d.Forward(tp, x, true).Value.ToHost()
		b := d.Forward(tp, x, true).Value.ToHost()
		return append(a, b...)
	}
	r1, r2 := run(), run()
	same, zeros := true, 0
	for i := range r1 {
		if r1[i] != r2[i] {
			t.Fatal("same seed gave different masks")
		}
		if r1[i] != 0 && r1[i] != 2 {
			t.Fatalf("kept value %v, want 1/(1-p) = 2", r1[i])
		}
		if r1[i] == 0 {
			zeros++
		}
		if i < 64 && r1[i] != r1[i+64] {
			same = false
		}
	}
	if same {
		t.Fatal("two calls drew the same mask")
	}
	if zeros < 40 || zeros > 88 {
		t.Fatalf("%d of 128 dropped at p=0.5", zeros)
	}
}

// TestDropoutForwardRowsAtRow0 checks ForwardRows against Forward for a data-parallel rank's
// slice (Row0 = 3, B = 2 sequences of T = 3): each gathered row, out of order, gets bit for bit
// the value Forward gives it in the (B, T, C) batch, and the draw counters advance alike.
func TestDropoutForwardRowsAtRow0(t *testing.T) {
	const b, tt, c = 2, 3, 8
	rows := []int32{5, 1, 2}
	x := autograd.Constant(tensor.Randn(tensor.NewRNG(4), 1, b, tt, c))
	full, part := NewDropout(0.3, 7), NewDropout(0.3, 7)
	full.Row0, part.Row0 = 3, 3
	tp := autograd.NoGrad()
	want := full.Forward(tp, x, true).Value.Data()
	got := part.ForwardRows(tp, tp.Embedding(tp.Reshape(x, b*tt, c), rows, len(rows)), rows, tt, true).Value.Data()
	for r, row := range rows {
		for j := 0; j < c; j++ {
			if w, g := want[int(row)*c+j], got[r*c+j]; w != g {
				t.Fatalf("row %d element %d: ForwardRows %v, Forward %v", row, j, g, w)
			}
		}
	}
	if full.Calls() != part.Calls() {
		t.Fatalf("Forward drew %d seeds, ForwardRows %d", full.Calls(), part.Calls())
	}
}
