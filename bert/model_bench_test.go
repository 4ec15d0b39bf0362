package bert

import (
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// BenchmarkTrainStep is one training step of a 2-layer, 256-wide BERT on 4x64 sub-words:
// forward, cross-entropy on a token head, backward, AdamW. Its allocs/op show that the tape's
// pool leaves only small per-op records (closures, Var headers) to the garbage collector.
func BenchmarkTrainStep(b *testing.B) {
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = 1000, 256, 2, 4, 1024
	m, err := New(cfg, 1, false)
	if err != nil {
		b.Fatal(err)
	}
	g := tensor.NewRNG(2)
	head := nn.NewLinear(nn.Root(m.Params).Sub("head"), g, 256, 9, true, 0.02)
	opt := nn.NewAdamW(m.Params.List(), 1e-4, 0.01)
	bt := Batch{B: 4, T: 64, IDs: make([]int32, 256), Mask: make([]float32, 256)}
	labels := make([]int32, 256)
	for i := range bt.IDs {
		bt.IDs[i], bt.Mask[i], labels[i] = int32(g.IntN(1000)), 1, int32(g.IntN(9))
	}
	tp := autograd.NewTape()
	b.ReportAllocs()
	for b.Loop() {
		out, err := m.Forward(tp, bt, true)
		if err != nil {
			b.Fatal(err)
		}
		tp.Backward(tp.CrossEntropy(head.Forward(tp, out.Last), labels, autograd.IgnoreIndex))
		opt.Step()
		m.Params.ZeroGrad()
		tp.Reset()
	}
	b.ReportMetric(float64(256*b.N)/b.Elapsed().Seconds(), "tokens/s")
}
