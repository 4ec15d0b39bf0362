package cudamtl_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/cudamtl"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/train"
)

// mlmText is a tiny corpus over the words of testdata/train/vocab.txt.
const mlmText = "the patient took aspirin for fever .\nthe patient took insulin daily and is stable .\nno chest pain , no cough , no rash .\n\nthe patient has a fever after metformin .\nnausea and chest pain after heparin .\nthe patient took ibuprofen for chest pain .\n"

// fourTasks prepares the fixture's three tasks (ner, pair classification, regression) plus an
// mlm task, with one attention head of 32 dimensions (the GPU's attention dropout takes 32
// or 64), AdamW with weight decay, warm-up and linear decay, clipping by global norm, and
// edit applied.
func fourTasks(t *testing.T, edit func(*train.Config)) *train.Run {
	t.Helper()
	text := filepath.Join(t.TempDir(), "text.txt")
	if err := os.WriteFile(text, []byte(mlmText), 0o644); err != nil {
		t.Fatal(err)
	}
	return fixture.Prepare(t, func(c *train.Config) {
		c.Tasks = append(c.Tasks, train.TaskConfig{Name: "lm", Kind: mtl.MLM, Format: train.FormatText, Train: train.Paths{text}, Dev: train.Paths{text}, MaxLength: 12, BatchSize: 4})
		c.Encoder.Heads = 1
		c.Training.Optimizer, c.Training.WeightDecay = "adamw", 0.01
		c.Training.Schedule, c.Training.WarmupSteps, c.Training.Steps = "linear", 3, 40
		c.Training.ClipNorm = 1
		c.Training.BestMetric = "mean"
		if edit != nil {
			edit(c)
		}
	})
}

// steps runs n steps of r (on the GPU when c is not nil) and returns their losses, with the
// weights synced to the host.
func steps(t *testing.T, r *train.Run, c *cuda.Context, bf16 bool, n int) []float64 {
	t.Helper()
	if c != nil {
		s, err := cudamtl.New(c, r.Trainer, bf16)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		r.Trainer.Device = s
		defer func() { r.Trainer.Device = nil }()
	}
	var losses []float64
	for range n {
		info, err := r.Trainer.Step()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, info.Loss)
	}
	if err := r.Trainer.SyncDevice(); err != nil {
		t.Fatal(err)
	}
	return losses
}

// maxWeightDiff returns the largest absolute difference between the parameters (encoder and
// heads) and the Adam moments of two runs, but for the attention's key bias: its gradient is
// zero in exact arithmetic (softmax does not see a constant added to every score of a row),
// so each path's rounding noise, normalised by Adam, moves it by up to lr a step in its own
// direction (2.6e-3 after 10 steps at lr 3e-3); it is checked against that bound instead.
func maxWeightDiff(a, b *train.Run) (weights, moments float64) {
	pa, pb := a.Model.AllParams(), b.Model.AllParams()
	for i := range pa {
		if strings.HasSuffix(pa[i].Name, "attention.self.key.bias") {
			for j, v := range pb[i].Value.Data() {
				if math.Abs(float64(v-pa[i].Value.Data()[j])) > 10*a.Config.Training.LR {
					return math.Inf(1), 0
				}
			}
			continue
		}
		x, y := pa[i].Value.Data(), pb[i].Value.Data()
		for j := range x {
			weights = max(weights, math.Abs(float64(x[j]-y[j])))
		}
		ma, _, sa := a.Trainer.Opt.State(i)
		mb, _, sb := b.Trainer.Opt.State(i)
		if sa != sb {
			return math.Inf(1), math.Inf(1)
		}
		for j := range ma {
			moments = max(moments, math.Abs(float64(ma[j]-mb[j])))
		}
	}
	return weights, moments
}

// TestStepsMatchCPU runs 10 steps of the four-task run (ner, pair, regression, mlm: every
// head kind, round-robin, with dropout, AdamW, warm-up, decay and clipping; then with
// gradient accumulation) on the GPU path and on the CPU: the losses agree within 5e-5 in
// float32 and 5e-4 in mixed precision, the weights and moments within the tolerances below.
func TestStepsMatchCPU(t *testing.T) {
	c := cudatest.Open(t)
	for _, tc := range []struct {
		name               string
		bf16               bool
		accumulate         int
		lossTol, weightTol float64
	}{
		// Weights move by about lr (3e-3) a step; an element whose gradient is near zero
		// takes Adam's normalised step in the direction its rounding gives, so the largest
		// difference is a fraction of lr in float32 and a few lr in mixed precision.
		{"float32", false, 1, 5e-5, 5e-4},
		{"mixed", true, 1, 5e-4, 1e-2},
		{"float32 accumulate 2", false, 2, 5e-5, 5e-4},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			edit := func(c *train.Config) { c.Training.Accumulate = tc.accumulate }
			cpu, gpu := fourTasks(t, edit), fourTasks(t, edit)
			want := steps(t, cpu, nil, false, 10)
			got := steps(t, gpu, c, tc.bf16, 10)
			worst := 0.0
			for i := range want {
				d := math.Abs(got[i] - want[i])
				worst = max(worst, d)
				if d > tc.lossTol || math.IsNaN(got[i]) {
					t.Errorf("step %d (%s): loss %.7f on the GPU path, %.7f on the CPU", i, cpu.Trainer.Tasks[i%4].Head.Spec.Name, got[i], want[i])
				}
			}
			w, m := maxWeightDiff(cpu, gpu)
			t.Logf("%s: largest loss difference %.2g over 10 steps; weights %.2g, moments %.2g", tc.name, worst, w, m)
			if w > tc.weightTol || m > tc.weightTol {
				t.Errorf("after 10 steps the weights differ by up to %.3g and the moments by %.3g (tolerance %g)", w, m, tc.weightTol)
			}
			if cpu.Trainer.State.Step != gpu.Trainer.State.Step || cpu.Trainer.Opt.LR != gpu.Trainer.Opt.LR {
				t.Errorf("state: step %d lr %g on the GPU path, step %d lr %g on the CPU", gpu.Trainer.State.Step, gpu.Trainer.Opt.LR, cpu.Trainer.State.Step, cpu.Trainer.Opt.LR)
			}
		})
	}
}
