package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/nn"
)

// Files of a dump folder (Dump).
const (
	// DumpInitialDir is the step-0 checkpoint: a multitask checkpoint with its trainer state
	// (as OUT/last of a run at step 0), whose model.safetensors and heads.safetensors PyTorch
	// loads.
	DumpInitialDir = "initial"
	// DumpBatchesFile holds every step's tensors, named "SSSS.A.NAME" (step SSSS, batch A of
	// the step, from 0 unless training.accumulate is above 1): input_ids, token_type_ids,
	// attention_mask (I64, (B, T)) and labels (I64 (B, T) for ner and mlm with -100 where
	// untrained, I64 (B) for classification, F32 (B) for regression).
	DumpBatchesFile = "batches.safetensors"
	// DumpStepsFile has one JSON line per step (DumpStep).
	DumpStepsFile = "steps.jsonl"
	// DumpRunFile describes the optimisation (DumpRun).
	DumpRunFile = "run.json"
)

// DumpStep is one line of steps.jsonl.
type DumpStep struct {
	Step  int    `json:"step"`
	Epoch int    `json:"epoch"`
	Task  string `json:"task"`
	Kind  string `json:"kind"`
	// LR is the rate the optimiser step uses (the schedule at Step).
	LR float64 `json:"lr"`
	// Batches gives each batch's rows, padded length and number of targets (trained
	// sub-words, masked tokens or sequences: what its loss averages over).
	Batches []DumpBatch `json:"batches"`
	// Dropout: the seed and draw counter of every dropout module before the step
	// (mtl.StepFeed.Dropout); Modules in DumpRun names them.
	Dropout []mtl.DropoutDraw `json:"dropout"`
}

// DumpBatch is the shape of one batch of a step.
type DumpBatch struct {
	Rows    int `json:"rows"`
	Length  int `json:"length"`
	Targets int `json:"targets"`
}

// DumpRun is run.json: what a replay needs besides the weights and batches.
type DumpRun struct {
	Steps      int    `json:"steps"`
	TotalSteps int    `json:"total_steps"`
	Optimizer  string `json:"optimizer"`
	// Decoupled: AdamW (p ← p·(1 − lr·wd) before the Adam update); else Adam with L2.
	Decoupled   bool    `json:"decoupled"`
	LR          float64 `json:"lr"`
	Beta1       float64 `json:"beta1"`
	Beta2       float64 `json:"beta2"`
	Eps         float64 `json:"eps"`
	WeightDecay float64 `json:"weight_decay"`
	// NoDecay lists the parameters exempt from weight decay (NoDecay: biases and LayerNorm
	// weights).
	NoDecay []string `json:"no_decay"`
	// ClipNorm: gradients of the step's parameters are scaled to this global L2 norm, before
	// the update, when above it (0: none).
	ClipNorm float64 `json:"clip_norm"`
	// Schedule is "constant" or "linear"; Warmup steps of linear warm-up (rate Peak·s/Warmup
	// at 0-based step s), then constant or Peak·(Total−s)/(Total−Warmup).
	Schedule   string  `json:"schedule"`
	Warmup     int     `json:"warmup"`
	Dropout    float64 `json:"dropout"`
	Accumulate int     `json:"accumulate"`
	PadID      int     `json:"pad_id"`
	IgnoreID   int     `json:"ignore_index"`
	// Modules names the dropout modules of DumpStep.Dropout, in order.
	Modules []string `json:"dropout_modules"`
	// Tasks in config order with each head's parameters; a step of a task updates the
	// encoder's parameters (EncoderParams) and its head's.
	Tasks         []DumpTask `json:"tasks"`
	EncoderParams []string   `json:"encoder_params"`
}

// DumpTask is one task of run.json.
type DumpTask struct {
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	Labels    []string `json:"labels,omitempty"`
	UsePooler bool     `json:"use_pooler,omitempty"`
	Params    []string `json:"params"`
}

// Dump writes into dir (created; it must not hold a dump already) exactly what r's trainer will
// be fed in its first steps steps (at most its total), without training: the step-0 checkpoint (DumpInitialDir),
// every step's batches (DumpBatchesFile), one JSON line per step with the task, the rate and
// the dropout counters (DumpStepsFile), and the optimisation settings (DumpRunFile). r must be
// at step 0 as Prepare returns it, or resumed: the dump starts wherever the trainer stands.
func Dump(r *Run, dir string, steps int) error {
	if steps <= 0 {
		return fmt.Errorf("dump: %d steps: want at least 1", steps)
	}
	steps = min(steps, r.TotalSteps) // training ends there
	if _, err := os.Stat(filepath.Join(dir, DumpRunFile)); err == nil {
		return fmt.Errorf("dump: %s already holds a dump (%s)", dir, DumpRunFile)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := r.Trainer
	feeds, err := tr.Upcoming(steps)
	if err != nil {
		return err
	}
	if err := mtl.SaveCheckpoint(filepath.Join(dir, DumpInitialDir), r.Model, r.Tokenizer, tr); err != nil {
		return err
	}
	tensors := map[string]nn.SafeTensor{}
	f, err := os.Create(filepath.Join(dir, DumpStepsFile))
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, fd := range feeds {
		h := tr.Tasks[fd.Task].Head
		line := DumpStep{Step: fd.Step, Epoch: fd.Epoch, Task: h.Spec.Name, Kind: string(h.Spec.Kind), LR: fd.LR, Dropout: fd.Dropout}
		for a := range fd.Batches {
			b := &fd.Batches[a]
			pre := fmt.Sprintf("%04d.%d.", fd.Step, a)
			shape := []int{b.Enc.B, b.Enc.T}
			tensors[pre+"input_ids"] = nn.I64Tensor(shape, widen(b.Enc.IDs))
			tensors[pre+"token_type_ids"] = nn.I64Tensor(shape, widen(b.Enc.TypeIDs))
			mask := make([]int64, len(b.Enc.Mask))
			for k, v := range b.Enc.Mask {
				mask[k] = int64(v)
			}
			tensors[pre+"attention_mask"] = nn.I64Tensor(shape, mask)
			switch {
			case b.Tags != nil:
				tensors[pre+"labels"] = nn.I64Tensor(shape, widen(b.Tags))
			case b.Scores != nil:
				tensors[pre+"labels"] = nn.F32Tensor([]int{b.Enc.B}, b.Scores)
			default:
				tensors[pre+"labels"] = nn.I64Tensor([]int{b.Enc.B}, widen(b.Classes))
			}
			line.Batches = append(line.Batches, DumpBatch{Rows: b.Enc.B, Length: b.Enc.T, Targets: mtl.BatchTargets(b)})
		}
		if err := enc.Encode(line); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := nn.SaveSafetensors(filepath.Join(dir, DumpBatchesFile), tensors, map[string]string{"steps": fmt.Sprint(steps)}); err != nil {
		return err
	}
	return mtl.WriteJSON(filepath.Join(dir, DumpRunFile), dumpRun(r, steps))
}

// dumpRun describes r's optimisation for run.json.
func dumpRun(r *Run, steps int) DumpRun {
	tc := r.Config.Training
	tr := r.Trainer
	o := tr.Opt
	d := DumpRun{
		Steps: steps, TotalSteps: r.TotalSteps, Optimizer: tc.Optimizer, Decoupled: o.Decoupled,
		LR: tc.LR, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay,
		ClipNorm: tr.Clip, Schedule: tc.Schedule, Warmup: tc.WarmupSteps, Dropout: tc.Dropout,
		Accumulate: max(1, tr.Accumulate), PadID: tr.PadID, IgnoreID: mtl.IgnoreLabel,
		NoDecay: []string{}, EncoderParams: []string{},
	}
	for _, p := range o.Params() {
		if o.NoDecay != nil && o.NoDecay(p.Name) {
			d.NoDecay = append(d.NoDecay, p.Name)
		}
	}
	for _, p := range r.Model.Encoder.Params.List() {
		if !strings.HasPrefix(p.Name, "cls.") {
			d.EncoderParams = append(d.EncoderParams, p.Name)
		}
	}
	d.Modules = []string{"encoder"}
	for _, h := range r.Model.Heads {
		if h.Drop != nil {
			d.Modules = append(d.Modules, h.Spec.Name)
		}
	}
	for _, h := range r.Model.Heads {
		t := DumpTask{Name: h.Spec.Name, Kind: string(h.Spec.Kind), Labels: h.Spec.Labels, UsePooler: h.Spec.UsePooler}
		for _, p := range h.Params() {
			t.Params = append(t.Params, p.Name)
		}
		d.Tasks = append(d.Tasks, t)
	}
	return d
}

func widen(v []int32) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
