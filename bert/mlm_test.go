package bert

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

type mlmGolden struct {
	Config       json.RawMessage
	B, T         int
	IDs          []float64
	Types        []float64
	Mask         []float64
	Labels       []float64
	Logits       []float64
	MaskedLogits []float64 `json:"masked_logits"`
	Loss         float64
	Grads        map[string][]float64
}

// mlmGoldenModel builds the pooler-less model with an MLM head that make_mlm_golden.py
// describes, with the formula weights, and its batch and labels.
func mlmGoldenModel(t *testing.T) (*Model, Batch, []int32, mlmGolden) {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden/mlm_tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	var g mlmGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(g.Config)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddMLMHead(2); err != nil {
		t.Fatal(err)
	}
	setFormulaWeights(m.Params)
	n := len(g.IDs)
	b := Batch{B: g.B, T: g.T, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	labels := make([]int32, n)
	for i := range g.IDs {
		b.IDs[i], b.TypeIDs[i], b.Mask[i], labels[i] = int32(g.IDs[i]), int32(g.Types[i]), float32(g.Mask[i]), int32(g.Labels[i])
	}
	return m, b, labels, g
}

// TestMLMLogitsMatchPyTorch compares the head with make_mlm_golden.py's PyTorch
// BertForMaskedLM on the tiny config: the logits at all 18 positions (BertForMaskedLM's
// prediction_scores), the logits gathered at the 5 masked positions, and the loss, each within
// 1e-5 absolute.
func TestMLMLogitsMatchPyTorch(t *testing.T) {
	m, b, labels, g := mlmGoldenModel(t)
	tp := autograd.NoGrad()
	out, err := m.Forward(tp, b, false)
	if err != nil {
		t.Fatal(err)
	}
	h := m.MLMHead()
	all := h.Logits(tp, out.Last, nil)
	if s := all.Shape(); s[0] != b.B*b.T || s[1] != m.Cfg.VocabSize {
		t.Fatalf("logits at every position have shape %v", s)
	}
	if d := maxDiff(t, "logits", all.Value.Data(), g.Logits); d > 1e-5 {
		t.Errorf("logits at every position differ from PyTorch by %g", d)
	}
	pos, _ := MaskedPositions(labels)
	if len(pos) != 5 {
		t.Fatalf("%d masked positions, golden has 5", len(pos))
	}
	masked := h.Logits(tp, out.Last, pos)
	if d := maxDiff(t, "masked logits", masked.Value.Data(), g.MaskedLogits); d > 1e-5 {
		t.Errorf("logits at the masked positions differ from PyTorch by %g", d)
	}
	loss, n, err := m.MLMLoss(autograd.NoGrad(), b, labels, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 || math.Abs(float64(loss.Value.Item())-g.Loss) > 1e-5 {
		t.Errorf("MLM loss %v over %d positions, PyTorch %v over 5", loss.Value.Item(), n, g.Loss)
	}
}

// TestMLMGradientsMatchPyTorch checks the gradient of the MLM loss for the head's parameters,
// every embedding tensor (the word embeddings receive both the input and the tied decoder's
// gradient) and one encoder weight: max |got − want| ≤ 1e-4·max|want| per tensor.
func TestMLMGradientsMatchPyTorch(t *testing.T) {
	m, b, labels, g := mlmGoldenModel(t)
	tp := autograd.NewTape()
	loss, _, err := m.MLMLoss(tp, b, labels, false)
	if err != nil {
		t.Fatal(err)
	}
	tp.Backward(loss)
	if len(g.Grads) != 11 {
		t.Fatalf("golden has %d gradients, want 11", len(g.Grads))
	}
	names := make([]string, 0, len(g.Grads))
	for name := range g.Grads {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		want := g.Grads[name]
		p := m.Params.Get(name)
		if p == nil {
			t.Fatalf("no parameter %s", name)
		}
		scale := 0.0
		for _, w := range want {
			scale = max(scale, math.Abs(w))
		}
		if d := maxDiff(t, name, p.Grad.Data(), want); d > 1e-4*scale+1e-7 {
			t.Errorf("%s: gradient differs from PyTorch by %g (max |grad| %g)", name, d, scale)
		} else {
			t.Logf("%s: max |Δgrad| %.2g of max |grad| %.2g", name, d, scale)
		}
	}
}

// TestMLMHeadGradCheck runs the head (gather at masked rows, dense, GELU, LayerNorm, tied
// decoder, bias, cross-entropy) through central differences with GradCheck's tolerances.
func TestMLMHeadGradCheck(t *testing.T) {
	const B, T, H, V = 2, 3, 4, 7
	labels := []int32{-100, 3, -100, 6, 0, -100}
	g := tensor.NewRNG(5)
	in := []*tensor.Tensor{
		tensor.Randn(g, 1, B, T, H), tensor.Randn(g, 0.5, H, H), tensor.Randn(g, 0.1, H),
		tensor.New(H).Fill(1), tensor.Randn(g, 0.1, H), tensor.Randn(g, 0.1, V), tensor.Randn(g, 1, V, H),
	}
	in[3].Data()[1] = 0.7
	f := func(tp *autograd.Tape, v []*autograd.Var) *autograd.Var {
		h := &MLMHead{Dense: &nn.Linear{W: v[1], B: v[2]}, LN: &nn.LayerNorm{Gamma: v[3], Beta: v[4], Eps: 1e-12}, Bias: v[5], Decoder: v[6], act: "gelu"}
		loss, _ := h.Loss(tp, v[0], labels)
		return loss
	}
	if err := autograd.GradCheck(f, in, 1e-2, 2e-3, 2e-2); err != nil {
		t.Fatal(err)
	}
}

// TestMLMCheckpointRoundTrip saves a model with a head in BertForMaskedLM's layout, loads it
// back bit for bit with LoadMaskedLM, loads its encoder alone with Load, and builds a fresh
// head for a checkpoint that lacks one.
func TestMLMCheckpointRoundTrip(t *testing.T) {
	m, _, _, _ := mlmGoldenModel(t)
	if m.MLMHead().Decoder != m.Word.W {
		t.Fatal("the decoder is not the word-embedding parameter itself")
	}
	dir := filepath.Join(t.TempDir(), "mlm")
	if err := m.Save(dir, nil); err != nil {
		t.Fatal(err)
	}
	f, err := nn.LoadSafetensors(filepath.Join(dir, SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(m.Params.List()) {
		t.Fatalf("saved %d tensors, the model has %d parameters", len(f.Tensors), len(m.Params.List()))
	}
	for k := range f.Tensors {
		if !strings.HasPrefix(k, "bert.") && !strings.HasPrefix(k, "cls.predictions.") {
			t.Errorf("saved key %q is not in BertForMaskedLM's layout", k)
		}
	}
	cfgJSON, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if !strings.Contains(string(cfgJSON), `"BertForMaskedLM"`) {
		t.Errorf("config.json does not name BertForMaskedLM:\n%s", cfgJSON)
	}
	back, fromCkpt, err := LoadMaskedLM(dir, 9)
	if err != nil {
		t.Fatal(err)
	}
	if !fromCkpt {
		t.Error("LoadMaskedLM did not read the saved head")
	}
	assertSameWeights(t, back, m)
	enc, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if enc.HasMLMHead() || len(enc.Params.List()) != len(m.Params.List())-5 {
		t.Fatalf("Load kept %d parameters (head: %v)", len(enc.Params.List()), enc.HasMLMHead())
	}
	for _, p := range enc.Params.List() {
		if q := m.Params.Get(p.Name); q == nil || q.Value.Data()[3] != p.Value.Data()[3] {
			t.Fatalf("encoder tensor %s changed", p.Name)
		}
	}
	// tiny_bin is a BertForPreTraining checkpoint with cls.predictions.bias but no transform.
	fresh, fromCkpt, err := LoadMaskedLM("testdata/golden/tiny_bin", 9)
	if err != nil {
		t.Fatal(err)
	}
	if fromCkpt || fresh.MLMHead() == nil || fresh.MLMHead().LN.Gamma.Value.Data()[0] != 1 {
		t.Fatalf("fresh head: fromCkpt %v", fromCkpt)
	}
	if _, err := fresh.AddMLMHead(1); err == nil {
		t.Fatal("a second head was added")
	}
}

// TestMLMMemorises trains a tiny encoder (2 layers, hidden 32, no dropout) with the MLM loss on
// four 12-token sequences (40 words), masked afresh every step (30% selected, then 80/10/10):
// after 800 AdamW steps (lr 2e-3) the training loss is near zero (last 20 steps < 0.1, from
// ≈ ln 40 ≈ 3.7) and, with each word alone replaced by [MASK], the loss is < 0.05 and all 40
// words are predicted. About half a second.
func TestMLMMemorises(t *testing.T) {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = 40, 32, 2, 4, 64
	cfg.MaxPositionEmbeddings, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = 16, 0, 0
	m, err := New(cfg, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddMLMHead(4); err != nil {
		t.Fatal(err)
	}
	// ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK]; every row is [CLS] w1..w10 [SEP].
	const B, T = 4, 12
	ids := make([]int32, B*T)
	for r := 0; r < B; r++ {
		ids[r*T], ids[r*T+T-1] = 2, 3
		for j := 1; j < T-1; j++ {
			ids[r*T+j] = int32(5 + (r*7+j*j*3+j)%35)
		}
	}
	mk, err := NewMaskingIDs(cfg.VocabSize, 4, []int32{0, 1, 2, 3}, nil, 11, false)
	if err != nil {
		t.Fatal(err)
	}
	mk.Prob = 0.3 // more masked positions per step make the few hundred steps go further
	opt := nn.NewAdamW(m.Params.List(), 2e-3, 0)
	tp := autograd.NewTape()
	var first, last float64
	const steps = 800
	for s := 0; s < steps; s++ {
		b, labels, err := mk.MaskBatch(Batch{B: B, T: T, IDs: ids}, uint64(s))
		if err != nil {
			t.Fatal(err)
		}
		loss, n, err := m.MLMLoss(tp, b, labels, true)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			tp.Backward(loss)
			opt.Step()
			v := float64(loss.Value.Item())
			if s == 0 {
				first = v
			}
			if s >= steps-20 {
				last += v / 20
			}
		}
		opt.ZeroGrad()
		tp.Reset()
	}
	// Evaluation: each of the 40 words of the corpus replaced by [MASK] alone, one batch per
	// position j: the model must predict every one.
	var evalLoss float64
	correct := 0
	for j := 1; j < T-1; j++ {
		in := append([]int32(nil), ids...)
		labels := make([]int32, B*T)
		for i := range labels {
			labels[i] = autograd.IgnoreIndex
		}
		for r := 0; r < B; r++ {
			in[r*T+j], labels[r*T+j] = 4, ids[r*T+j]
		}
		nt := autograd.NoGrad()
		b := Batch{B: B, T: T, IDs: in}
		loss, _, err := m.MLMLoss(nt, b, labels, false)
		if err != nil {
			t.Fatal(err)
		}
		evalLoss += float64(loss.Value.Item()) / (T - 2)
		out, _ := m.Forward(nt, b, false)
		pos, targets := MaskedPositions(labels)
		lg := m.MLMHead().Logits(nt, out.Last, pos).Value.Data()
		for i, want := range targets {
			row := lg[i*cfg.VocabSize : (i+1)*cfg.VocabSize]
			best := 0
			for v := range row {
				if row[v] > row[best] {
					best = v
				}
			}
			if int32(best) == want {
				correct++
			}
		}
	}
	t.Logf("MLM loss: first step %.3f, mean of the last 20 steps %.4f; single-[MASK] evaluation loss %.4f, %d/%d words right", first, last, evalLoss, correct, B*(T-2))
	if first < 3 || last > 0.1 || evalLoss > 0.05 || correct != B*(T-2) {
		t.Fatalf("MLM loss went from %.3f to %.4f (evaluation %.4f, %d/%d right), want it near zero", first, last, evalLoss, correct, B*(T-2))
	}
}

// BenchmarkMLMTrainStep compares, on BenchmarkTrainStep's encoder (2 layers, 256 wide, 4x64
// sub-words, AdamW), a step with a 9-way token head on every position ("finetune") and a step
// with the MLM head on the ≈15% masked positions ("mlm"), for a small and a BERT-sized (cased)
// vocabulary. tokens/s counts every input sub-word in both.
func BenchmarkMLMTrainStep(b *testing.B) {
	for _, vocab := range []int{1000, 28996} {
		for _, kind := range []string{"finetune", "mlm"} {
			b.Run(fmt.Sprintf("vocab=%d/%s", vocab, kind), func(b *testing.B) {
				cfg := DefaultConfig()
				cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = vocab, 256, 2, 4, 1024
				m, err := New(cfg, 1, false)
				if err != nil {
					b.Fatal(err)
				}
				g := tensor.NewRNG(2)
				var head *nn.Linear
				if kind == "mlm" {
					if _, err := m.AddMLMHead(3); err != nil {
						b.Fatal(err)
					}
				} else {
					head = nn.NewLinear(nn.Root(m.Params).Sub("head"), g, 256, 9, true, 0.02)
				}
				opt := nn.NewAdamW(m.Params.List(), 1e-4, 0.01)
				bt := Batch{B: 4, T: 64, IDs: make([]int32, 256), Mask: make([]float32, 256)}
				labels := make([]int32, 256)
				for i := range bt.IDs {
					bt.IDs[i], bt.Mask[i], labels[i] = int32(5+g.IntN(vocab-5)), 1, int32(g.IntN(9))
				}
				mk, err := NewMaskingIDs(vocab, 4, []int32{0, 1, 2, 3}, nil, 1, false)
				if err != nil {
					b.Fatal(err)
				}
				tp := autograd.NewTape()
				b.ReportAllocs()
				step := uint64(0)
				for b.Loop() {
					if head != nil {
						out, err := m.Forward(tp, bt, true)
						if err != nil {
							b.Fatal(err)
						}
						tp.Backward(tp.CrossEntropy(head.Forward(tp, out.Last), labels, autograd.IgnoreIndex))
					} else {
						mb, mlabels, err := mk.MaskBatch(bt, step)
						if err != nil {
							b.Fatal(err)
						}
						loss, n, err := m.MLMLoss(tp, mb, mlabels, true)
						if err != nil {
							b.Fatal(err)
						}
						if n > 0 {
							tp.Backward(loss)
						}
					}
					step++
					opt.Step()
					m.Params.ZeroGrad()
					tp.Reset()
				}
				b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
