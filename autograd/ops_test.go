package autograd

import (
	"strings"
	"testing"

	"github.com/mtbert/mtbert/tensor"
)

func randT(g *tensor.RNG, shape ...int) *tensor.Tensor { return tensor.Randn(g, 1, shape...) }

// TestGradCheck runs every differentiable op through central differences. Step h = 1e-2 in
// float32 leaves a truncation error O(h²·f”') and a rounding error O(ε·|L|/h) ≈ 1e-5·|L|;
// the tolerances (atol 2e-3, rtol 2e-2) sit above both for these small random inputs.
func TestGradCheck(t *testing.T) {
	mask := []float32{1, 1, 1, 0, 1, 1, 1, 1}
	targets := []int32{2, -100, 0, 4, 1, 3}
	mseTarget := []float32{0.5, -1, 2, 0, 1, -0.25}
	ids := []int32{3, 0, 3, 5, 1, 2}
	cases := []struct {
		name   string
		shapes [][]int
		f      func(tp *Tape, in []*Var) *Var
	}{
		{"matmul", [][]int{{3, 4}, {4, 5}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], false, false) }},
		{"matmul-tA", [][]int{{4, 3}, {4, 5}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], true, false) }},
		{"matmul-tB", [][]int{{3, 4}, {5, 4}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], false, true) }},
		{"matmul-tAtB", [][]int{{4, 3}, {5, 4}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], true, true) }},
		{"matmul-batched", [][]int{{2, 3, 3, 4}, {2, 3, 4, 2}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], false, false) }},
		{"matmul-batched-tB", [][]int{{2, 3, 4}, {2, 5, 4}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], false, true) }},
		{"matmul-shared", [][]int{{2, 3, 4}, {4, 5}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], false, false) }},
		{"matmul-shared-tB", [][]int{{2, 3, 4}, {5, 4}}, func(tp *Tape, in []*Var) *Var { return tp.MatMul(in[0], in[1], false, true) }},
		{"linear", [][]int{{2, 3, 4}, {5, 4}, {5}}, func(tp *Tape, in []*Var) *Var { return tp.Linear(in[0], in[1], in[2]) }},
		{"linear-nobias", [][]int{{3, 4}, {5, 4}}, func(tp *Tape, in []*Var) *Var { return tp.Linear(in[0], in[1], nil) }},
		{"add", [][]int{{2, 3}, {2, 3}}, func(tp *Tape, in []*Var) *Var { return tp.Add(in[0], in[1]) }},
		{"add-bias", [][]int{{2, 3, 4}, {4}}, func(tp *Tape, in []*Var) *Var { return tp.Add(in[0], in[1]) }},
		{"add-broadcast", [][]int{{2, 1, 4}, {3, 1}}, func(tp *Tape, in []*Var) *Var { return tp.Add(in[0], in[1]) }},
		{"mul-broadcast", [][]int{{2, 3, 4}, {3, 1}}, func(tp *Tape, in []*Var) *Var { return tp.Mul(in[0], in[1]) }},
		{"scale", [][]int{{3, 2}}, func(tp *Tape, in []*Var) *Var { return tp.Scale(in[0], -1.5) }},
		{"sum", [][]int{{3, 2}}, func(tp *Tape, in []*Var) *Var { return tp.Sum(in[0]) }},
		{"mean", [][]int{{3, 2}}, func(tp *Tape, in []*Var) *Var { return tp.Mean(in[0]) }},
		{"reshape", [][]int{{3, 4}}, func(tp *Tape, in []*Var) *Var { return tp.Mul(tp.Reshape(in[0], 2, -1), tp.Reshape(in[0], 2, 6)) }},
		{"transpose", [][]int{{2, 3, 4}}, func(tp *Tape, in []*Var) *Var { return tp.Transpose(in[0], 0, 2) }},
		{"narrow", [][]int{{3, 5}}, func(tp *Tape, in []*Var) *Var { return tp.Narrow(in[0], 1, 1, 3) }},
		{"select-cls", [][]int{{2, 3, 4}}, func(tp *Tape, in []*Var) *Var { return tp.Select(in[0], 1, 0) }},
		{"concat", [][]int{{2, 3}, {2, 2}}, func(tp *Tape, in []*Var) *Var { return tp.Concat(1, in[0], in[1]) }},
		{"embedding", [][]int{{6, 4}}, func(tp *Tape, in []*Var) *Var { return tp.Embedding(in[0], ids, 2, 3) }},
		{"layernorm", [][]int{{3, 5}, {5}, {5}}, func(tp *Tape, in []*Var) *Var { return tp.LayerNorm(in[0], in[1], in[2], 1e-5) }},
		{"gelu", [][]int{{4, 5}}, func(tp *Tape, in []*Var) *Var { return tp.GELU(in[0]) }},
		{"gelu-tanh", [][]int{{4, 5}}, func(tp *Tape, in []*Var) *Var { return tp.GELUTanh(in[0]) }},
		{"tanh", [][]int{{4, 5}}, func(tp *Tape, in []*Var) *Var { return tp.Tanh(in[0]) }},
		{"softmax", [][]int{{3, 6}}, func(tp *Tape, in []*Var) *Var { return tp.Softmax(in[0]) }},
		{"dropout", [][]int{{4, 8}}, func(tp *Tape, in []*Var) *Var { return tp.Dropout(in[0], 0.3, 7, true) }},
		{"dropout-rows", [][]int{{3, 8}}, func(tp *Tape, in []*Var) *Var {
			return tp.DropoutRows(in[0], 0.3, 7, 40, []int32{4, 0, 9}, true)
		}},
		{"attention", [][]int{{2, 4, 6}, {2, 4, 6}, {2, 4, 6}}, func(tp *Tape, in []*Var) *Var {
			return tp.Attention(in[0], in[1], in[2], 2, mask, 0, 0)
		}},
		{"attention-dropout", [][]int{{2, 4, 6}, {2, 4, 6}, {2, 4, 6}}, func(tp *Tape, in []*Var) *Var {
			return tp.Attention(in[0], in[1], in[2], 3, nil, 0.25, 99)
		}},
		{"cross-entropy", [][]int{{6, 5}}, func(tp *Tape, in []*Var) *Var { return tp.CrossEntropy(in[0], targets, IgnoreIndex) }},
		{"linear-cross-entropy", [][]int{{6, 4}, {5, 4}, {5}}, func(tp *Tape, in []*Var) *Var {
			return tp.LinearCrossEntropy(in[0], in[1], in[2], targets, IgnoreIndex)
		}},
		{"linear-cross-entropy-nobias", [][]int{{6, 4}, {5, 4}}, func(tp *Tape, in []*Var) *Var {
			return tp.LinearCrossEntropy(in[0], in[1], nil, targets, IgnoreIndex)
		}},
		{"mse", [][]int{{2, 3}}, func(tp *Tape, in []*Var) *Var { return tp.MSE(in[0], mseTarget) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := tensor.NewRNG(uint64(len(c.name)))
			in := make([]*tensor.Tensor, len(c.shapes))
			for i, s := range c.shapes {
				in[i] = randT(g, s...)
			}
			if err := GradCheck(c.f, in, 1e-2, 2e-3, 2e-2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDropoutRowsIsGatheredDropout checks that DropoutRows on rows gathered from a (N, C)
// tensor gives, bit for bit, those rows of DropoutAt on the whole tensor (same seed and
// offset), for rows out of order, and the same gradient. (A repeated row would sum its two
// gradients before the mask on one path and after it on the other: equal up to rounding.)
func TestDropoutRowsIsGatheredDropout(t *testing.T) {
	const n, c, seed, off = 7, 5, 11, 3 * 7 * 5
	rows := []int32{6, 0, 3, 5}
	g := tensor.NewRNG(2)
	x := NewParam("x", randT(g, n, c))
	up := Constant(randT(g, len(rows), c))
	// run returns the output and x's gradient for an upstream gradient up, through dropout of
	// the whole tensor then a gather (rows false) or a gather then DropoutRows (rows true).
	run := func(gathered bool) (y, dx []float32) {
		tp := NewTape()
		defer tp.Reset()
		x.ZeroGrad()
		var out *Var
		if gathered {
			out = tp.DropoutRows(tp.Embedding(x, rows, len(rows)), 0.4, seed, off, rows, true)
		} else {
			out = tp.Embedding(tp.DropoutAt(x, 0.4, seed, off, true), rows, len(rows))
		}
		tp.Backward(tp.Sum(tp.Mul(out, up)))
		return out.Value.ToHost(), x.Grad.ToHost()
	}
	wy, wdx := run(false)
	gy, gdx := run(true)
	dropped := 0
	for i := range wy {
		if gy[i] != wy[i] {
			t.Fatalf("element %d: DropoutRows %v, gathered DropoutAt %v", i, gy[i], wy[i])
		}
		if gy[i] == 0 {
			dropped++
		}
	}
	if dropped == 0 || dropped == len(gy) {
		t.Fatalf("%d of %d elements dropped: the mask is not random", dropped, len(gy))
	}
	for i := range wdx {
		if gdx[i] != wdx[i] {
			t.Fatalf("gradient element %d: DropoutRows %v, gathered DropoutAt %v", i, gdx[i], wdx[i])
		}
	}
}

func TestTapeResetReusesBuffers(t *testing.T) {
	g := tensor.NewRNG(1)
	w := NewParam("w", randT(g, 16, 8))
	x := Constant(randT(g, 4, 8))
	tp := NewTape()
	step := func() {
		y := tp.GELU(tp.Linear(x, w, nil))
		tp.Backward(tp.Mean(y))
		tp.Reset()
	}
	step()
	warm := tp.PoolAllocs()
	for range 5 {
		step()
	}
	if got := tp.PoolAllocs(); got != warm {
		t.Fatalf("pool allocated %d buffers after warm-up (had %d)", got-warm, warm)
	}
	if w.Grad == nil {
		t.Fatal("parameter gradient lost on Reset")
	}
}

func TestGradientAccumulates(t *testing.T) {
	w := NewParam("w", tensor.FromSlice([]float32{1, 2, 3}, 3))
	tp := NewTape()
	for range 2 {
		tp.Backward(tp.Sum(tp.Scale(w, 2)))
		tp.Reset()
	}
	for i, v := range w.Grad.Data() {
		if v != 4 {
			t.Fatalf("grad[%d] = %v after two backward passes of d(2w)/dw, want 4", i, v)
		}
	}
	w.ZeroGrad()
	if w.Grad.Data()[0] != 0 {
		t.Fatal("ZeroGrad left a gradient")
	}
}

func TestNoGradRecordsNothing(t *testing.T) {
	w := NewParam("w", tensor.FromSlice([]float32{1, 2}, 2))
	tp := NoGrad()
	y := tp.Sum(tp.Mul(w, w))
	if y.RequiresGrad() || len(tp.nodes) != 0 {
		t.Fatal("NoGrad tape recorded an op")
	}
	if y.Value.Item() != 5 {
		t.Fatalf("sum(w*w) = %v, want 5", y.Value.Item())
	}
	d := NewTape().Sum(w.Detach())
	if d.RequiresGrad() {
		t.Fatal("detached value requires grad")
	}
}

func TestShapeErrorsNameOpAndShapes(t *testing.T) {
	tp := NewTape()
	a := Constant(tensor.New(2, 3))
	b := Constant(tensor.New(4, 5))
	for _, c := range []struct {
		want string
		f    func()
	}{
		{"MatMul: shapes [2 3]", func() { tp.MatMul(a, b, false, false) }},
		{"Add: shapes [2 3] and [4 5]", func() { tp.Add(a, b) }},
		{"Linear: x [2 3], weight [4 5]", func() { tp.Linear(a, b, nil) }},
		{"CrossEntropy: 3 targets", func() { tp.CrossEntropy(a, []int32{0, 1, 2}, IgnoreIndex) }},
		{"Embedding: id 9", func() { tp.Embedding(b, []int32{9}, 1) }},
	} {
		func() {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, c.want) {
					t.Errorf("panic %q, want it to contain %q", r, c.want)
				}
			}()
			c.f()
		}()
	}
}
