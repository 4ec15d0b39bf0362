package mtl_test

import (
	"math"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/tensor"
)

// TestMLMLossReadsMaskedRows checks that an mlm task's training loss, which Model.Loss
// computes with the encoder's last layer run only at the masked positions
// (bert.Model.ForwardRows), equals bit for bit the loss from the whole encoder's output, with
// hidden and attention dropout on, and that every parameter's gradient agrees within
// 1e-5·max|grad| per tensor (the last layer's weight gradients sum over fewer rows, which may
// round differently). Only mlm reads rows; a batch with nothing masked still gives a zero loss.
func TestMLMLossReadsMaskedRows(t *testing.T) {
	for _, k := range mtl.Kinds() {
		if got := mtl.KindBehaviours(k)["rows"]; got != (k == mtl.MLM) {
			t.Errorf("%s: reads rows only = %v", k, got)
		}
	}
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads = 97, 48, 2, 3
	cfg.IntermediateSize, cfg.MaxPositionEmbeddings, cfg.InitializerRange = 96, 32, 0.2
	enc, err := bert.New(cfg, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mtl.NewModel(enc, []mtl.TaskSpec{
		{Name: "tag", Kind: mtl.NER, Labels: []string{"O", "B-X", "I-X"}, Scheme: "BIO", MaxLength: 16},
		{Name: "lm", Kind: mtl.MLM, MaxLength: 16},
	}, 2, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 3, 16
	g := tensor.NewRNG(5)
	b := mtl.Batch{Enc: bert.Batch{B: B, T: T, IDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}, Tags: make([]int32, B*T)}
	masked := 0
	for i := range b.Tags {
		b.Enc.IDs[i], b.Enc.Mask[i], b.Tags[i] = int32(5+g.IntN(cfg.VocabSize-5)), 1, mtl.IgnoreLabel
		if i%T == 2 || g.IntN(6) == 0 {
			b.Tags[i], b.Enc.IDs[i] = b.Enc.IDs[i], 4
			masked++
		}
	}
	h := m.Head("lm")
	params := m.AllParams()
	run := func(whole bool, b *mtl.Batch) (float32, [][]float32) {
		for _, p := range params {
			p.ZeroGrad()
		}
		enc.Dropout.SetCalls(0)
		tp := autograd.NewTape()
		defer tp.Reset()
		var loss *autograd.Var
		var err error
		if whole {
			loss, err = m.LossWholeEncoder(tp, h, b, true)
		} else {
			loss, err = m.Loss(tp, h, b, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		if loss.RequiresGrad() {
			tp.Backward(loss)
		}
		gs := make([][]float32, len(params))
		for i, p := range params {
			gs[i] = make([]float32, p.Value.Len())
			if p.Grad != nil {
				copy(gs[i], p.Grad.Data())
			}
		}
		return loss.Value.Item(), gs
	}
	wantLoss, want := run(true, &b)
	gotLoss, got := run(false, &b)
	if gotLoss != wantLoss {
		t.Errorf("loss %v at %d masked positions, from the whole encoder %v", gotLoss, masked, wantLoss)
	}
	nonzero := 0
	for i, p := range params {
		scale, d := 0.0, 0.0
		for j, w := range want[i] {
			scale = max(scale, math.Abs(float64(w)))
			d = max(d, math.Abs(float64(got[i][j])-float64(w)))
		}
		if scale > 0 {
			nonzero++
		}
		if d > 1e-5*scale {
			t.Errorf("%s: gradient differs by %g (max |grad| %g)", p.Name, d, scale)
		}
	}
	if nonzero < len(enc.Params.List()) {
		t.Errorf("%d parameters with a gradient, want at least the encoder's and head's %d", nonzero, len(enc.Params.List()))
	}

	none := b
	none.Tags = make([]int32, B*T)
	for i := range none.Tags {
		none.Tags[i] = mtl.IgnoreLabel
	}
	if l, _ := run(false, &none); l != 0 {
		t.Errorf("loss %v with nothing masked, want 0", l)
	}
}
