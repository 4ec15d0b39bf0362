package bench

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// MLMOptions sets up `mtbert bench mlm`: one randomly initialised encoder (Layers, Hidden;
// Hidden/64 heads, 4·Hidden intermediate, the 28,996-token Bio+Clinical BERT vocabulary) with
// a 9-label token-tagging head and BERT's MLM head, trained on Batch full sequences of Seq
// sub-words.
type MLMOptions struct {
	Layers, Hidden, Batch, Seq int
	Reps                       int
	Dropout                    float64
}

// MLMResult compares one masked-LM training step with one fine-tuning (token-tagging) step on
// the same encoder, batch and sequence length, measured in the same run: each is forward,
// loss, backward and an AdamW step over every parameter the step trains. Tokens are all
// Batch·Seq positions (no padding in either); medians over Reps after one warm-up each.
type MLMResult struct {
	MLMTokensPerS      float64 `json:"mlm_tokens_per_s"`
	FinetuneTokensPerS float64 `json:"finetune_tokens_per_s"`
	// Ratio is MLM tokens/s over fine-tuning tokens/s.
	Ratio float64 `json:"ratio"`
	// Masked is the number of masked positions of the MLM batch (15% of the tokens).
	Masked     int     `json:"masked"`
	MLMMs      float64 `json:"mlm_ms_per_step"`
	FinetuneMs float64 `json:"finetune_ms_per_step"`
	Layers     int     `json:"layers"`
	Hidden     int     `json:"hidden"`
	Batch      int     `json:"batch"`
	Seq        int     `json:"seq"`
	Threads    int     `json:"threads"`
}

// MLM runs the comparison. The two steps alternate rep by rep, so that both see the same
// machine load.
func MLM(o MLMOptions) (MLMResult, error) {
	if o.Hidden%64 != 0 || o.Hidden <= 0 || o.Layers <= 0 || o.Batch <= 0 || o.Seq < 3 || o.Reps <= 0 {
		return MLMResult{}, fmt.Errorf("bench mlm: need positive layers, batch, reps, seq >= 3 and hidden a multiple of 64 (have %+v)", o)
	}
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.NumHiddenLayers, cfg.HiddenSize = 28996, o.Layers, o.Hidden
	cfg.NumAttentionHeads, cfg.IntermediateSize = o.Hidden/64, 4*o.Hidden
	cfg.MaxPositionEmbeddings = max(512, o.Seq)
	cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = o.Dropout, o.Dropout
	enc, err := bert.New(cfg, 1, false)
	if err != nil {
		return MLMResult{}, err
	}
	labels := []string{"O", "B-A", "I-A", "B-B", "I-B", "B-C", "I-C", "B-D", "I-D"}
	m, err := mtl.NewModel(enc, []mtl.TaskSpec{
		{Name: "tag", Kind: mtl.NER, Labels: labels, Scheme: "BIO", MaxLength: o.Seq},
		{Name: "lm", Kind: mtl.MLM, MaxLength: o.Seq},
	}, 2, o.Dropout)
	if err != nil {
		return MLMResult{}, err
	}
	g := tensor.NewRNG(3)
	n := o.Batch * o.Seq
	mk, err := bert.NewMaskingIDs(cfg.VocabSize, 103, []int32{0, 100, 101, 102, 103}, nil, 4, false)
	if err != nil {
		return MLMResult{}, err
	}
	enc0 := bert.Batch{B: o.Batch, T: o.Seq, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	for i := range enc0.IDs {
		enc0.IDs[i], enc0.Mask[i] = int32(1000+g.IntN(cfg.VocabSize-1000)), 1
		if i%o.Seq == 0 {
			enc0.IDs[i] = 101
		}
	}
	tags := make([]int32, n)
	for i := range tags {
		tags[i] = int32(g.IntN(len(labels)))
	}
	tagBatch := mtl.Batch{Enc: enc0, Tags: tags}
	masked, lmLabels, err := mk.MaskBatch(enc0, 1)
	if err != nil {
		return MLMResult{}, err
	}
	lmBatch := mtl.Batch{Enc: masked, Tags: lmLabels}
	nMasked := 0
	for _, l := range lmLabels {
		if l != mtl.IgnoreLabel {
			nMasked++
		}
	}
	opt := nn.NewAdamW(m.AllParams(), 1e-4, 0.01)
	tp := autograd.NewTape()
	step := func(h *mtl.Head, b *mtl.Batch) error {
		defer tp.Reset()
		loss, err := m.Loss(tp, h, b, o.Dropout > 0)
		if err != nil {
			return err
		}
		tp.Backward(loss)
		var ps []*autograd.Var
		for _, p := range m.Encoder.Params.List() {
			if !strings.HasPrefix(p.Name, "cls.") { // the MLM head's own: in h.Params()
				ps = append(ps, p)
			}
		}
		ps = append(ps, h.Params()...)
		opt.StepParams(ps)
		for _, p := range ps {
			p.ZeroGrad()
		}
		return nil
	}
	tag, lm := m.Head("tag"), m.Head("lm")
	for _, f := range []func() error{func() error { return step(tag, &tagBatch) }, func() error { return step(lm, &lmBatch) }} {
		if err := f(); err != nil { // warm-up
			return MLMResult{}, err
		}
	}
	ft, ml := make([]float64, o.Reps), make([]float64, o.Reps)
	for i := 0; i < o.Reps; i++ {
		t0 := time.Now()
		if err := step(tag, &tagBatch); err != nil {
			return MLMResult{}, err
		}
		ft[i] = time.Since(t0).Seconds() * 1e3
		t0 = time.Now()
		if err := step(lm, &lmBatch); err != nil {
			return MLMResult{}, err
		}
		ml[i] = time.Since(t0).Seconds() * 1e3
	}
	sort.Float64s(ft)
	sort.Float64s(ml)
	fm, mm := ft[len(ft)/2], ml[len(ml)/2]
	return MLMResult{MLMTokensPerS: float64(n) / mm * 1e3, FinetuneTokensPerS: float64(n) / fm * 1e3, Ratio: fm / mm,
		Masked: nMasked, MLMMs: mm, FinetuneMs: fm, Layers: o.Layers, Hidden: o.Hidden, Batch: o.Batch, Seq: o.Seq, Threads: kernels.Threads()}, nil
}
