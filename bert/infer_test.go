package bert

import (
	"math"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// inferBatch is a seeded batch of b sequences of t tokens, the last two of the last sequence
// padding.
func inferBatch(cfg Config, b, t int, seed uint64) Batch {
	g := tensor.NewRNG(seed)
	n := b * t
	bt := Batch{B: b, T: t, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	for i := range bt.IDs {
		bt.IDs[i] = int32(g.IntN(cfg.VocabSize))
		bt.Mask[i] = 1
	}
	if t > 2 {
		bt.Mask[n-1], bt.Mask[n-2] = 0, 0
	}
	return bt
}

func lastHidden(t *testing.T, m *Model, b Batch) []float32 {
	t.Helper()
	tp := autograd.NoGrad()
	defer tp.Reset()
	out, err := m.Forward(tp, b, false)
	if err != nil {
		t.Fatal(err)
	}
	return out.Last.Value.ToHost()
}

// TestPackedInferenceBitIdentical checks that packing the linear weights (PackForInference)
// and the fused in-place GELU and residual+LayerNorm of the inference path change no bit of the
// output, at an awkward size (hidden 96, intermediate 200, 7 tokens), against the training
// path's composition (a recording tape), on every GEMM path.
func TestPackedInferenceBitIdentical(t *testing.T) {
	old := kernels.GemmPath()
	defer kernels.SetGemmPath(old)
	for _, path := range []string{"generic", old} {
		if err := kernels.SetGemmPath(path); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = 50, 96, 2, 3, 200
		m, err := New(cfg, 7, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Params.List() { // non-zero biases and LayerNorm parameters
			if p.Value.Rank() == 1 {
				p.Value.FillNormal(tensor.NewRNG(uint64(len(p.Name))), 0.1, 0.05)
			}
		}
		b := inferBatch(cfg, 2, 7, 3)
		// The reference: a recording tape runs the unfused composition (Linear, GELU, Add,
		// LayerNorm).
		tp := autograd.NewTape()
		ref, err := m.Forward(tp, b, false)
		if err != nil {
			t.Fatal(err)
		}
		want := ref.Last.Value.ToHost()
		tp.Reset()
		plain := lastHidden(t, m, b)
		m.PackForInference()
		if !m.Layers[0].qkv.Packed() {
			t.Fatalf("%s: PackForInference did not stack Q, K and V", path)
		}
		packed := lastHidden(t, m, b)
		for i := range want {
			if plain[i] != want[i] || packed[i] != want[i] {
				t.Fatalf("%s: element %d: fused %v, packed %v, reference %v", path, i, plain[i], packed[i], want[i])
			}
		}
		// A modified weight bypasses the stale pack.
		w := m.Layers[0].Query.W
		w.Value.Data()[0] += 1
		w.Modified()
		m.Linears()[0].Unpack()
		fresh := lastHidden(t, m, b)
		m.PackForInference()
		w.Value.Data()[1] += 1
		w.Modified()
		if m.Layers[0].qkv.Packed() {
			t.Fatalf("%s: the stacked Q, K, V copy is still used after W changed", path)
		}
		stale := lastHidden(t, m, b)
		m.PackForInference()
		repacked := lastHidden(t, m, b)
		if eq(fresh, stale) {
			t.Fatalf("%s: modifying W after packing did not change the output", path)
		}
		if !eq(stale, repacked) {
			t.Fatalf("%s: a bypassed pack and a fresh pack disagree", path)
		}
	}
}

func eq(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestInt8HiddenCosine checks the int8 encoder against fp32 on BERT-base dimensions (hidden
// 768, 12 heads, intermediate 3072, weights drawn with BERT's initializer_range 0.02): the
// cosine similarity of every token's last hidden state must be >= 0.99. Four layers and 2×16
// tokens keep it fast; -short runs a narrower model.
func TestInt8HiddenCosine(t *testing.T) {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.NumHiddenLayers = 1000, 4
	if testing.Short() {
		cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.NumHiddenLayers = 192, 3, 768, 2
	}
	m, err := New(cfg, 11, false)
	if err != nil {
		t.Fatal(err)
	}
	b := inferBatch(cfg, 2, 16, 5)
	want := lastHidden(t, m, b)
	m.QuantizeForInference()
	got := lastHidden(t, m, b)
	h := cfg.HiddenSize
	worst := 1.0
	for tok := range b.B * b.T {
		c := cosine(got[tok*h:(tok+1)*h], want[tok*h:(tok+1)*h])
		worst = math.Min(worst, c)
	}
	t.Logf("hidden %d, %d layers: worst per-token cosine int8 vs fp32 = %.5f", h, cfg.NumHiddenLayers, worst)
	if worst < 0.99 {
		t.Fatalf("worst per-token cosine %.5f < 0.99", worst)
	}
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// TestPackForInferenceOnly checks the inference-only packing of predict and serve: the same
// output bit for bit as the float model, the float weights of every encoder linear layer
// gone (so packing costs no second copy), and the operations that need them refused.
func TestPackForInferenceOnly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = 50, 64, 2, 2, 128
	m, err := New(cfg, 9, false)
	if err != nil {
		t.Fatal(err)
	}
	b := inferBatch(cfg, 2, 9, 4)
	want := lastHidden(t, m, b)
	floatBytes := 0
	for _, l := range m.Linears() {
		floatBytes += 4 * l.W.Value.Len()
	}
	m.PackForInferenceOnly()
	if !m.InferenceOnly() {
		t.Fatal("InferenceOnly is false after PackForInferenceOnly")
	}
	for _, l := range m.Linears() {
		if n := l.W.Value.Len(); n != 0 {
			t.Fatalf("%s keeps %d float weights", l.W.Name, n)
		}
	}
	// The packed copies pad each output dimension to the micro-kernel's strip width at most.
	if pb := m.PackedBytes(); pb < floatBytes || pb > floatBytes*5/4 {
		t.Fatalf("packed copies hold %d bytes for %d bytes of float weights", pb, floatBytes)
	}
	got := lastHidden(t, m, b)
	if !eq(got, want) {
		t.Fatal("inference-only packed output differs from the float model's")
	}
	m.PackForInference() // a no-op now: nothing to pack from
	if got := lastHidden(t, m, b); !eq(got, want) {
		t.Fatal("PackForInference after PackForInferenceOnly changed the output")
	}
	if err := m.Save(t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "inference only") {
		t.Fatalf("Save of an inference-only model: %v, want a refusal", err)
	}
}
