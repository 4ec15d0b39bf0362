// Package cudamtl runs the multitask trainer's steps (mtl.Trainer) on a CUDA device: it is the
// mtl.DeviceStep of bert/cudabert's MultiTrainer, translating the multitask layer's heads and
// batches into the GPU's (every head kind: token tagging, pair and single-text
// classification, regression, masked LM). Package mtl itself imports no CUDA.
package cudamtl

import (
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert/cudabert"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/train"
)

// Stepper is an mtl.DeviceStep on a CUDA device.
type Stepper struct {
	enc *cudabert.Encoder
	mt  *cudabert.MultiTrainer
}

var _ mtl.DeviceStep = (*Stepper)(nil)

// New puts tr's model (encoder and heads) and optimiser state on c's device, in mixed
// precision (bf16 GEMM inputs, float32 master weights) when bf16 is set. Attach it with
// tr.Device = s; Close it when the run ends. Heads that read the pooler are refused.
func New(c *cuda.Context, tr *mtl.Trainer, bf16 bool) (*Stepper, error) {
	for _, h := range tr.Model.Heads {
		if h.Spec.UsePooler {
			return nil, fmt.Errorf("task %s: use_pooler is not implemented on the GPU training path (train it with -device cpu)", h.Spec.Name)
		}
	}
	enc, err := cudabert.New(c, tr.Model.Encoder)
	if err != nil {
		return nil, err
	}
	if bf16 {
		if err := enc.UseBF16(); err != nil {
			enc.Close()
			return nil, err
		}
	}
	mt, err := cudabert.NewMultiTrainer(enc, tr.Opt)
	if err != nil {
		enc.Close()
		return nil, err
	}
	return &Stepper{enc: enc, mt: mt}, nil
}

// Head returns the GPU form of a multitask head.
func Head(h *mtl.Head) cudabert.TaskHead {
	k := h.Spec.Kind
	switch {
	case k.MaskedLM():
		return cudabert.TaskHead{Kind: cudabert.MaskedLMHead, MLM: h.MLM}
	case k.PerToken():
		return cudabert.TaskHead{Kind: cudabert.TokenHead, Linear: h.Linear, Drop: h.Drop}
	case k.Scored():
		return cudabert.TaskHead{Kind: cudabert.ScoreHead, Linear: h.Linear, Drop: h.Drop}
	}
	return cudabert.TaskHead{Kind: cudabert.ClassHead, Linear: h.Linear, Drop: h.Drop}
}

// Batch returns the GPU form of a multitask batch.
func Batch(b *mtl.Batch) cudabert.TaskBatch {
	return cudabert.TaskBatch{Enc: b.Enc, Tags: b.Tags, Classes: b.Classes, Scores: b.Scores, Ignore: mtl.IgnoreLabel}
}

// Step implements mtl.DeviceStep.
func (s *Stepper) Step(h *mtl.Head, bs []mtl.Batch, total int, params []*autograd.Var, lr, clip float64) (float64, bool, error) {
	tbs := make([]cudabert.TaskBatch, len(bs))
	for i := range bs {
		tbs[i] = Batch(&bs[i])
	}
	return s.mt.Step(Head(h), tbs, total, params, lr, clip)
}

// Sync implements mtl.DeviceStep.
func (s *Stepper) Sync() error { return s.mt.Sync() }

// Encoder returns the GPU encoder, whose device weights are the trainer's.
func (s *Stepper) Encoder() *cudabert.Encoder { return s.enc }

// Close frees the device memory.
func (s *Stepper) Close() {
	s.mt.Close()
	s.enc.Close()
}

// Device returns a train.Options.Device that steps a run on c (mixed precision when bf16).
func Device(c *cuda.Context, bf16 bool) func(r *train.Run) (mtl.DeviceStep, func(), error) {
	return func(r *train.Run) (mtl.DeviceStep, func(), error) {
		s, err := New(c, r.Trainer, bf16)
		if err != nil {
			return nil, nil, err
		}
		return s, s.Close, nil
	}
}
