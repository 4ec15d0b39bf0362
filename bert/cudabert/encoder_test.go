package cudabert

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// TestEncoderMatchesCPU runs a 2-layer encoder on the GPU path (the host emulation in CI)
// and on the CPU on a right-padded batch of two rows: the last hidden states agree within bf16
// tolerance (the attention's Q, K and V are rounded to bf16), and a left-padded mask is refused.
func TestEncoderMatchesCPU(t *testing.T) {
	c := cudatest.Open(t)
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize = 60, 128, 2, 256
	cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings = 2, 32
	m, err := bert.New(cfg, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 2, 13
	b := bert.Batch{B: B, T: T, IDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i := range b.IDs {
		r, p := i/T, i%T
		if r == 1 && p >= 9 {
			continue // row 1: 9 tokens, then padding
		}
		b.IDs[i], b.Mask[i] = int32(5+(i*37)%50), 1
		if p > 6 {
			b.TypeIDs[i] = 1
		}
	}
	out, err := m.Forward(autograd.NoGrad(), b, false)
	if err != nil {
		t.Fatal(err)
	}
	want := out.Last.Value.Data()
	// LayerNorm outputs are O(1). float32 GEMMs: only Q, K and V are rounded to bf16 (8 bits);
	// mixed precision: every GEMM input is bf16 too.
	for _, prec := range []struct {
		name            string
		bf16            bool
		maxTol, meanTol float64
	}{{"float32 GEMMs", false, 5e-3, 1e-3}, {"mixed precision", true, 5e-3, 1e-3}} {
		e, err := New(c, m)
		if err != nil {
			t.Fatal(err)
		}
		if prec.bf16 {
			if err := e.UseBF16(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := e.Forward(b)
		if err != nil {
			t.Fatal(err)
		}
		worst, sum := 0.0, 0.0
		for i := range want {
			d := math.Abs(float64(got[i] - want[i]))
			worst, sum = max(worst, d), sum+d
		}
		t.Logf("%s: GPU path vs CPU: max |diff| %.3g, mean %.3g over %d values", prec.name, worst, sum/float64(len(want)), len(want))
		if worst > prec.maxTol || sum/float64(len(want)) > prec.meanTol {
			t.Errorf("%s: GPU path differs from the CPU by up to %g (mean %g)", prec.name, worst, sum/float64(len(want)))
		}
		bad := b
		bad.Mask = append([]float32(nil), b.Mask...)
		bad.Mask[0] = 0 // a hole at the start of row 0: not right padding
		if _, err := e.Forward(bad); err == nil {
			t.Error("a mask that is not right padding was accepted")
		}
		e.Close()
	}
}

// TestGradientsMatchCPU checks the GPU backward of a token-tagging step (2 layers, a padded
// batch, ignored tags) against the CPU's autograd: the loss, and every parameter's gradient
// relative to that gradient's largest entry, within bf16 tolerance (Q, K, V and the attention
// output's gradient pass through bf16).
func TestGradientsMatchCPU(t *testing.T) {
	for _, p := range []float64{0, 0.1} {
		t.Run(fmt.Sprintf("dropout %g", p), func(t *testing.T) { gradientsVsCPU(t, p) })
	}
}

// gradientsVsCPU is TestGradientsMatchCPU with hidden and attention dropout p: the GPU
// path draws the same seeds from the model's dropout stream and the same masks as the CPU.
func gradientsVsCPU(t *testing.T, p float64) {
	c := cudatest.Open(t)
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize = 60, 128, 2, 256
	cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings = 2, 32
	cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = p, p
	m, err := bert.New(cfg, 11, false)
	if err != nil {
		t.Fatal(err)
	}
	head := nn.NewLinear(nn.Root(nn.NewParams()).Sub("head"), tensor.NewRNG(5), cfg.HiddenSize, 5, true, 0.02)
	const B, T = 2, 11
	b := bert.Batch{B: B, T: T, IDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	tags := make([]int32, B*T)
	for i := range b.IDs {
		tags[i] = int32(i*7) % 5
		if i/T == 1 && i%T >= 8 {
			tags[i] = autograd.IgnoreIndex // padding
			continue
		}
		b.IDs[i], b.Mask[i] = int32(3+(i*31)%55), 1
	}
	tags[3] = autograd.IgnoreIndex
	// The CPU reference.
	tp := autograd.NewTape()
	out, err := m.Forward(tp, b, true)
	if err != nil {
		t.Fatal(err)
	}
	loss := tp.CrossEntropy(head.Forward(tp, out.Last), tags, autograd.IgnoreIndex)
	tp.Backward(loss)
	for _, prec := range []struct {
		name    string
		bf16    bool
		rel     float64 // of a gradient tensor's largest entry
		lossTol float64
	}{{"float32 GEMMs", false, 2e-2, 1e-3}, {"mixed precision", true, 4e-2, 1e-3}} {
		t.Run(prec.name, func(t *testing.T) {
			m.Dropout.SetCalls(0) // the seeds the CPU drew
			checkGradients(t, c, m, head, b, tags, loss, prec.bf16, prec.rel, prec.lossTol)
		})
	}
}

func checkGradients(t *testing.T, c *cuda.Context, m *bert.Model, head *nn.Linear, b bert.Batch, tags []int32, loss *autograd.Var, bf16 bool, rel, lossTol float64) {
	e, err := New(c, m)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if bf16 {
		if err := e.UseBF16(); err != nil {
			t.Fatal(err)
		}
	}
	gl, grads, err := e.Gradients(b, head, tags, autograd.IgnoreIndex)
	if err != nil {
		t.Fatal(err)
	}
	if d := math.Abs(gl - float64(loss.Value.Item())); d > lossTol {
		t.Errorf("loss %g on the GPU path, %g on the CPU", gl, loss.Value.Item())
	}
	params := append(m.Params.List(), head.W, head.B)
	maxAbs := func(x []float32) float64 {
		m := 0.0
		for _, v := range x {
			m = max(m, math.Abs(float64(v)))
		}
		return m
	}
	global := 0.0
	for _, p := range params {
		global = max(global, maxAbs(p.Grad.Data()))
	}
	worstRel := 0.0
	for _, p := range params {
		want, got := p.Grad.Data(), grads[p]
		// The key biases' true gradient is 0 (softmax ignores a constant per row): an absolute
		// floor of 1e-4 of the largest gradient anywhere covers rounding there.
		scale := maxAbs(want)
		worst := 0.0
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
		}
		if scale > 1e-3*global {
			worstRel = max(worstRel, worst/scale)
		}
		if worst > rel*scale+1e-4*global {
			t.Errorf("%s: gradient differs by %.3g (largest entry %.3g)", p.Name, worst, scale)
		}
	}
	t.Logf("loss %.6f (CPU %.6f); worst gradient difference %.3g of the tensor's largest entry over %d tensors", gl, loss.Value.Item(), worstRel, len(params))
}

// TestTrainerTracksCPU trains the same encoder and head for 8 steps with AdamW on the GPU
// path (forward, backward, the fused multi-tensor AdamW kernel) and on the CPU (autograd and
// nn.AdamW): the loss curves agree step by step and fall, and the synced weights stay close.
func TestTrainerTracksCPU(t *testing.T) {
	c := cudatest.Open(t)
	build := func() (*bert.Model, *nn.Linear) {
		cfg := bert.DefaultConfig()
		cfg.VocabSize, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize = 60, 64, 2, 128
		cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings = 2, 32
		cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = 0, 0
		m, err := bert.New(cfg, 13, false)
		if err != nil {
			t.Fatal(err)
		}
		return m, nn.NewLinear(nn.Root(nn.NewParams()).Sub("head"), tensor.NewRNG(5), cfg.HiddenSize, 4, true, 0.02)
	}
	const B, T, steps = 3, 9, 8
	b := bert.Batch{B: B, T: T, IDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	tags := make([]int32, B*T)
	for i := range b.IDs {
		if i/T == 2 && i%T >= 6 {
			tags[i] = autograd.IgnoreIndex
			continue
		}
		b.IDs[i], b.Mask[i] = int32(3+(i*13)%50), 1
		tags[i] = b.IDs[i] % 4 // learnable from the token itself
	}
	noDecay := func(name string) bool { return strings.HasSuffix(name, ".bias") || strings.Contains(name, "LayerNorm") }
	const lr, wd = 3e-3, 0.01

	cm, ch := build()
	params := append(cm.Params.List(), ch.W, ch.B)
	opt := nn.NewAdamW(params, lr, wd)
	opt.NoDecay = noDecay
	var cpu []float64
	for k := 0; k < steps; k++ {
		tp := autograd.NewTape()
		out, err := cm.Forward(tp, b, true)
		if err != nil {
			t.Fatal(err)
		}
		loss := tp.CrossEntropy(ch.Forward(tp, out.Last), tags, autograd.IgnoreIndex)
		tp.Backward(loss)
		opt.Step()
		opt.ZeroGrad()
		cpu = append(cpu, float64(loss.Value.Item()))
	}

	for _, prec := range []struct {
		name          string
		bf16          bool
		lossTol, wTol float64
	}{{"float32 GEMMs", false, 1e-2, 0.1}, {"mixed precision", true, 3e-2, 0.5}} {
		t.Run(prec.name, func(t *testing.T) {
			checkTraining(t, c, build, b, tags, cpu, ch, noDecay, prec.bf16, prec.lossTol, prec.wTol)
		})
	}
}

func checkTraining(t *testing.T, c *cuda.Context, build func() (*bert.Model, *nn.Linear), b bert.Batch, tags []int32, cpu []float64, ch *nn.Linear, noDecay func(string) bool, bf16 bool, lossTol, wTol float64) {
	const lr, wd = 3e-3, 0.01
	steps := len(cpu)
	gm, gh := build()
	init := append([]float32(nil), gh.W.Value.Data()...)
	e, err := New(c, gm)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if bf16 {
		if err := e.UseBF16(); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := NewTrainer(e, gh, lr, wd, noDecay)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var gpu []float64
	for k := 0; k < steps; k++ {
		l, err := tr.Step(b, tags, autograd.IgnoreIndex)
		if err != nil {
			t.Fatal(err)
		}
		gpu = append(gpu, l)
	}
	t.Logf("loss, CPU: %.4f", cpu)
	t.Logf("loss, GPU: %.4f", gpu)
	for k := range cpu {
		if d := math.Abs(gpu[k] - cpu[k]); d > lossTol*cpu[k] {
			t.Errorf("step %d: loss %g on the GPU path, %g on the CPU", k, gpu[k], cpu[k])
		}
	}
	if !(cpu[steps-1] < 0.8*cpu[0]) {
		t.Errorf("the CPU loss did not fall: %v", cpu)
	}
	if err := tr.Sync(); err != nil {
		t.Fatal(err)
	}
	a, g := ch.W.Value.Data(), gh.W.Value.Data()
	worst, moved := 0.0, 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i]-g[i])))
		moved = max(moved, math.Abs(float64(g[i]-init[i])))
	}
	if worst > wTol*lr*float64(steps) || moved < lr {
		t.Errorf("synced head weights: %g from the CPU's, moved %g from the start (each step moves them by about %g)", worst, moved, lr)
	}
}
