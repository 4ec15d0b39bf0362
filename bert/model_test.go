package bert

import (
	"encoding/json"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
)

type golden struct {
	Config     json.RawMessage
	B, T       int
	IDs        []float64
	Types      []float64
	Mask       []float64
	LastHidden []float64 `json:"last_hidden"`
	Pooled     []float64
	Hidden     [][]float64
	Loss       float64
	Grads      map[string][]float64
}

func loadGolden(t *testing.T, name string) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// setFormulaWeights fills every parameter from the formula of make_golden.py.
func setFormulaWeights(p *nn.Params) {
	names := p.Names()
	sort.Strings(names)
	for k, name := range names {
		d := p.Get(name).Value.Data()
		scale, off := 0.05, 0.0
		switch {
		case strings.HasSuffix(name, "LayerNorm.weight"):
			scale, off = 0.1, 1
		case strings.HasSuffix(name, "bias"):
			scale = 0.02
		}
		for i := range d {
			d[i] = float32(off + scale*math.Sin(0.37*float64(i)+float64(k)))
		}
	}
}

func goldenModel(t *testing.T, g golden) (*Model, Batch) {
	t.Helper()
	cfg, err := ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	setFormulaWeights(m.Params)
	b := Batch{B: g.B, T: g.T, IDs: make([]int32, len(g.IDs)), TypeIDs: make([]int32, len(g.IDs)), Mask: make([]float32, len(g.IDs))}
	for i := range g.IDs {
		b.IDs[i], b.TypeIDs[i], b.Mask[i] = int32(g.IDs[i]), int32(g.Types[i]), float32(g.Mask[i])
	}
	return m, b
}

func maxDiff(t *testing.T, what string, got []float32, want []float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, golden has %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		worst = max(worst, math.Abs(float64(got[i])-want[i]))
	}
	return worst
}

// TestForwardMatchesPyTorch compares the encoder with make_golden.py's PyTorch BertModel on a
// tiny config: every hidden state within 1e-5 absolute, padding included.
func TestForwardMatchesPyTorch(t *testing.T) {
	for _, name := range []string{"tiny.json", "tiny_gelu_new.json"} {
		g := loadGolden(t, name)
		m, b := goldenModel(t, g)
		tp := autograd.NoGrad()
		out, err := m.Forward(tp, b, false)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, "last hidden", out.Last.Value.Data(), g.LastHidden); d > 1e-5 {
			t.Errorf("%s: last hidden state differs from PyTorch by %g", name, d)
		}
		if d := maxDiff(t, "pooled", out.Pooled.Value.Data(), g.Pooled); d > 1e-5 {
			t.Errorf("%s: pooled output differs from PyTorch by %g", name, d)
		}
		for i, h := range g.Hidden {
			if d := maxDiff(t, "hidden", out.Hidden[i].Value.Data(), h); d > 1e-5 {
				t.Errorf("%s: hidden state %d differs by %g", name, i, d)
			}
		}
	}
}

// TestTraceAndEncodeMatchPyTorch checks Model.Trace's embeddings and layer outputs against
// PyTorch's output_hidden_states, its attention outputs for count and shape, and Model.Encode
// (the CPU's bert.Encoder) against the last hidden state and pooled output, within 1e-5.
func TestTraceAndEncodeMatchPyTorch(t *testing.T) {
	g := loadGolden(t, "tiny.json")
	m, b := goldenModel(t, g)
	tr, err := m.Trace(b)
	if err != nil {
		t.Fatal(err)
	}
	L := m.Cfg.NumHiddenLayers
	if len(g.Hidden) != L+1 || len(tr.Layers) != L || len(tr.Attention) != L {
		t.Fatalf("golden %d hidden states, trace %d layers and %d attention outputs, for %d layers", len(g.Hidden), len(tr.Layers), len(tr.Attention), L)
	}
	if d := maxDiff(t, "embeddings", tr.Embeddings, g.Hidden[0]); d > 1e-5 {
		t.Errorf("trace embeddings differ from PyTorch by %g", d)
	}
	for i := range L {
		if d := maxDiff(t, "layer", tr.Layers[i], g.Hidden[i+1]); d > 1e-5 {
			t.Errorf("trace layer %d differs from PyTorch by %g", i, d)
		}
		if len(tr.Attention[i]) != len(tr.Layers[i]) {
			t.Errorf("trace attention output %d holds %d values, not %d", i, len(tr.Attention[i]), len(tr.Layers[i]))
		}
	}
	var enc Encoder = m
	out, err := enc.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, "last hidden", out.Last.Value.Data(), g.LastHidden); d > 1e-5 {
		t.Errorf("Encode: last hidden state differs from PyTorch by %g", d)
	}
	if d := maxDiff(t, "pooled", out.Pooled.Value.Data(), g.Pooled); d > 1e-5 {
		t.Errorf("Encode: pooled output differs from PyTorch by %g", d)
	}
}

// TestGradientsMatchPyTorch checks the gradient of L = Σ last⊙r1 + Σ pooled⊙r2 for every
// parameter: max |got − want| ≤ 1e-4·max|want| per tensor.
func TestGradientsMatchPyTorch(t *testing.T) {
	g := loadGolden(t, "tiny.json")
	m, b := goldenModel(t, g)
	tp := autograd.NewTape()
	out, err := m.Forward(tp, b, false)
	if err != nil {
		t.Fatal(err)
	}
	r1 := tp.GradOf(out.Last).Data()
	for i := range r1 {
		r1[i] = float32(math.Sin(0.1*float64(i) + 0.5))
	}
	r2 := tp.GradOf(out.Pooled).Data()
	for i := range r2 {
		r2[i] = float32(math.Cos(0.2 * float64(i)))
	}
	tp.BackwardFrom()
	if len(g.Grads) != len(m.Params.List()) {
		t.Fatalf("golden has %d gradients, model %d parameters", len(g.Grads), len(m.Params.List()))
	}
	for _, p := range m.Params.List() {
		want, ok := g.Grads[p.Name]
		if !ok {
			t.Fatalf("no golden gradient for %s", p.Name)
		}
		scale := 0.0
		for _, w := range want {
			scale = max(scale, math.Abs(w))
		}
		if d := maxDiff(t, p.Name, p.Grad.Data(), want); d > 1e-4*scale+1e-7 {
			t.Errorf("%s: gradient differs from PyTorch by %g (max |grad| %g)", p.Name, d, scale)
		}
	}
}

// TestBaseForwardMatchesPyTorch runs BERT-base dimensions (12 layers, 768 hidden, 28,996-token
// vocabulary) on one 12-token sequence: within 1e-4 of PyTorch.
func TestBaseForwardMatchesPyTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("BERT-base parity builds 110M weights; skipped with -short")
	}
	g := loadGolden(t, "base.json")
	m, b := goldenModel(t, g)
	out, err := m.Forward(autograd.NoGrad(), b, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, "last hidden", out.Last.Value.Data(), g.LastHidden); d > 1e-4 {
		t.Errorf("last hidden state differs from PyTorch by %g", d)
	}
	if d := maxDiff(t, "pooled", out.Pooled.Value.Data(), g.Pooled); d > 1e-4 {
		t.Errorf("pooled output differs from PyTorch by %g", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ json, want string }{
		{`{"hidden_size": 10, "num_attention_heads": 3}`, "not a multiple"},
		{`{"hidden_act": "relu"}`, `hidden_act "relu"`},
		{`{"vocab_size": 0}`, "vocab_size = 0"},
		{`{"layer_norm_eps": -1}`, "layer_norm_eps"},
		{`{"position_embedding_type": "relative_key"}`, "relative_key"},
		{`{"hidden_size": "big"}`, "hidden_size"},
	} {
		if _, err := ParseConfig([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.json, err, c.want)
		}
	}
	c, err := ParseConfig(DefaultConfig().JSON())
	if err != nil || c != DefaultConfig() {
		t.Fatalf("config JSON round trip: %v %+v", err, c)
	}
}

// TestInferenceMemoryPerLayer: a NoGrad forward gives each layer's intermediates back once the
// layer's output exists, so its peak working memory does not grow with depth (beyond the B·T·H
// hidden state kept per layer), and its outputs equal a recording forward's bit for bit.
func TestInferenceMemoryPerLayer(t *testing.T) {
	inferPeak := map[int]int{}
	peak := func(layers int) (int, *Output, *Output) {
		cfg := DefaultConfig()
		cfg.VocabSize, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize = 50, 32, 2, 128
		cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings = layers, 64
		m, err := New(cfg, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		b := Batch{B: 4, T: 64, IDs: make([]int32, 256), TypeIDs: make([]int32, 256), Mask: make([]float32, 256)}
		for i := range b.IDs {
			b.IDs[i], b.Mask[i] = int32(i%47+1), 1
		}
		tp := autograd.NoGrad()
		out, err := m.Forward(tp, b, false)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := m.Forward(autograd.NewTape(), b, false)
		if err != nil {
			t.Fatal(err)
		}
		// Infer keeps only the last hidden state: its peak must not grow with depth at all.
		itp := autograd.NoGrad()
		inf, err := m.Infer(itp, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(inf.Hidden) != 1 || !eq(inf.Last.Value.ToHost(), out.Last.Value.ToHost()) || inf.Pooled.Value.Data()[0] != out.Pooled.Value.Data()[0] {
			t.Fatalf("%d layers: Infer's outputs differ from Forward's (or it kept %d hidden states)", layers, len(inf.Hidden))
		}
		inferPeak[layers] = itp.PoolPeakLive()
		return tp.PoolPeakLive(), out, rec
	}
	p1, _, _ := peak(1)
	p8, out, rec := peak(8)
	if inferPeak[8] > inferPeak[1] {
		t.Errorf("Infer peaks at %d floats with 8 layers, %d with 1: hidden states are kept", inferPeak[8], inferPeak[1])
	}
	hidden := 4 * 64 * 32
	t.Logf("peak live floats: 1 layer %d, 8 layers %d (hidden state %d)", p1, p8, hidden)
	if p8 > p1+8*hidden+hidden {
		t.Errorf("8 layers peak at %d floats, 1 layer at %d: intermediates are kept across layers", p8, p1)
	}
	for i := range out.Hidden {
		a, b := out.Hidden[i].Value.Data(), rec.Hidden[i].Value.Data()
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("hidden state %d [%d]: %g after release, %g recorded", i, j, a[j], b[j])
			}
		}
	}
	if out.Pooled == nil || out.Pooled.Value.Data()[0] != rec.Pooled.Value.Data()[0] {
		t.Error("pooled output differs")
	}
}
