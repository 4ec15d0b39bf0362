package bench

import (
	"fmt"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/tensor"
)

// MTOptions sets up the multitask-versus-single-task inference comparison: K token-tagging
// heads of Labels labels over one encoder, on Batch notes of Seq sub-words.
type MTOptions struct {
	K, Labels                  int
	Layers, Hidden, Batch, Seq int
	Reps                       int
}

// MTResult is one line of `mtbert bench mt`.
type MTResult struct {
	K int `json:"k"`
	// MultiMs is one encoder pass feeding all K heads; SingleMs is K single-task models (one
	// encoder pass and one head each) on the same notes. Medians over Reps.
	MultiMs  float64 `json:"multitask_ms"`
	SingleMs float64 `json:"single_task_ms"`
	Speedup  float64 `json:"speedup"`
	// TokensPerS is the multitask model's throughput.
	TokensPerS float64 `json:"multitask_tokens_per_s"`
	Layers     int     `json:"layers"`
	Hidden     int     `json:"hidden"`
	Batch      int     `json:"batch"`
	Seq        int     `json:"seq"`
	Threads    int     `json:"threads"`
}

// MT measures the inference speed-up of one multitask model over K single-task models. Every
// single-task model has the encoder's size; they share one set of weights here, which changes
// the memory but not the computation.
func MT(o MTOptions) (MTResult, error) {
	if o.K <= 0 || o.Labels < 2 || o.Reps <= 0 || o.Hidden%64 != 0 {
		return MTResult{}, fmt.Errorf("bench mt: need k >= 1, labels >= 2, reps >= 1 and hidden a multiple of 64 (have %+v)", o)
	}
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.NumHiddenLayers, cfg.HiddenSize = 28996, o.Layers, o.Hidden
	cfg.NumAttentionHeads, cfg.IntermediateSize = o.Hidden/64, 4*o.Hidden
	cfg.MaxPositionEmbeddings = max(512, o.Seq)
	enc, err := bert.New(cfg, 1, false)
	if err != nil {
		return MTResult{}, err
	}
	labels := make([]string, o.Labels)
	for i := range labels {
		labels[i] = fmt.Sprintf("L%d", i)
	}
	specs := make([]mtl.TaskSpec, o.K)
	for i := range specs {
		specs[i] = mtl.TaskSpec{Name: fmt.Sprintf("task%d", i), Kind: mtl.NER, Labels: labels, Scheme: "BIO", MaxLength: o.Seq}
	}
	m, err := mtl.NewModel(enc, specs, 2, 0)
	if err != nil {
		return MTResult{}, err
	}
	g := tensor.NewRNG(3)
	n := o.Batch * o.Seq
	b := bert.Batch{B: o.Batch, T: o.Seq, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	for i := range b.IDs {
		b.IDs[i], b.Mask[i] = int32(g.IntN(cfg.VocabSize)), 1
	}
	multi := func() error { _, err := m.Predict(b, m.Heads); return err }
	single := func() error {
		for _, h := range m.Heads {
			if _, err := m.Predict(b, []*mtl.Head{h}); err != nil {
				return err
			}
		}
		return nil
	}
	// median warms f up once, then returns its median time over o.Reps in milliseconds.
	median := func(f func() error) (float64, error) {
		if err := f(); err != nil {
			return 0, err
		}
		med, _, err := timeSteps(o.Reps, f)
		return med * 1e3, err
	}
	mm, err := median(multi)
	if err != nil {
		return MTResult{}, err
	}
	sm, err := median(single)
	if err != nil {
		return MTResult{}, err
	}
	return MTResult{K: o.K, MultiMs: mm, SingleMs: sm, Speedup: sm / mm, TokensPerS: float64(n) / mm * 1e3,
		Layers: o.Layers, Hidden: o.Hidden, Batch: o.Batch, Seq: o.Seq, Threads: kernels.Threads()}, nil
}
