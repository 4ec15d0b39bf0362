package mtl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/dist"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// Example is one training sequence of a task: sub-word ids with [CLS]/[SEP] already in place,
// and the target for the task's kind.
type Example struct {
	IDs, TypeIDs []int32
	// Tags holds one label id per sub-word (NER), IgnoreLabel where untrained.
	Tags  []int32
	Class int32
	Score float32
}

// Collate pads examples to the longest with padID and stacks their targets.
func Collate(exs []Example, kind Kind, padID int) Batch {
	t := 0
	for _, e := range exs {
		t = max(t, len(e.IDs))
	}
	n := len(exs)
	b := Batch{Enc: bert.Batch{B: n, T: t, IDs: make([]int32, n*t), TypeIDs: make([]int32, n*t), Mask: make([]float32, n*t)}}
	switch {
	case kind.PerToken():
		b.Tags = make([]int32, n*t)
	case kind.Scored():
		b.Scores = make([]float32, n)
	default:
		b.Classes = make([]int32, n)
	}
	for i, e := range exs {
		for j := 0; j < t; j++ {
			k := i*t + j
			if j >= len(e.IDs) {
				b.Enc.IDs[k] = int32(padID)
				if b.Tags != nil {
					b.Tags[k] = IgnoreLabel
				}
				continue
			}
			b.Enc.IDs[k], b.Enc.Mask[k] = e.IDs[j], 1
			if e.TypeIDs != nil {
				b.Enc.TypeIDs[k] = e.TypeIDs[j]
			}
			if b.Tags != nil {
				b.Tags[k] = IgnoreLabel
				if e.Tags != nil {
					b.Tags[k] = e.Tags[j]
				}
			}
		}
		switch {
		case b.Scores != nil:
			b.Scores[i] = e.Score
		case b.Classes != nil:
			b.Classes[i] = e.Class
		}
	}
	return b
}

// TaskData is one task's training set and batch size.
type TaskData struct {
	Head      *Head
	Train     []Example
	BatchSize int
	// Masking (mlm tasks) masks each batch as it is drawn: example j of pass p is masked with
	// key p·len(Train)+j, so every pass sees a new mask (dynamic masking) and a resumed run
	// the same ones. Collate leaves the Tags of an mlm batch at IgnoreLabel until then.
	Masking *bert.Masking
}

// Batches returns the number of batches in one pass over the task's data.
func (d *TaskData) Batches() int { return (len(d.Train) + d.BatchSize - 1) / d.BatchSize }

// TrainState is the position of a run: enough, with the weights and optimiser moments, to
// continue exactly where it stopped.
type TrainState struct {
	Step  int `json:"step"`
	Epoch int `json:"epoch"`
	// Round is the next round within the epoch.
	Round int `json:"round"`
	// Next is the index of the next task within the round.
	Next int `json:"next"`
	// Passes counts how many times each task's data has been restarted (it seeds the shuffle);
	// Pos is the next batch of each task's current pass.
	Passes []int `json:"passes"`
	Pos    []int `json:"pos"`
	// Dropout holds the draw counters of the encoder's and each head's dropout.
	Dropout []uint64 `json:"dropout"`
	// Ranks is the number of data-parallel ranks that trained (omitted for one); a run
	// resumes only on as many (trainer_dist.go).
	Ranks int `json:"ranks,omitempty"`
}

// Trainer runs Algorithm 1 of MT-Clinical BERT: each round takes one batch of every task in a
// fixed order and, for each, runs the encoder and that task's head forward and backward and
// takes one optimiser step on the encoder and that head. An epoch ends when the task with the
// most batches has used them all; smaller tasks restart, reshuffled, whenever they run out.
// With a single task this is plain fine-tuning, the paper's single-task baseline.
type Trainer struct {
	Model *Model
	Tasks []*TaskData
	Opt   *nn.Adam
	Sched nn.Schedule
	// Clip is the maximum global gradient norm of each step (0: no clipping).
	Clip float64
	// Accumulate is the number of batches of a task whose gradients one optimiser step sums
	// (at least 1): the step's loss is the mean over all their targets (trained sub-words,
	// masked tokens or sequences), so Accumulate batches of n equal one batch of Accumulate·n.
	Accumulate int
	// Seed drives the shuffling; dropout seeds live in the modules.
	Seed  uint64
	PadID int
	State TrainState
	// Dist, when of Size > 1, makes this trainer one rank of a data-parallel run: it runs its
	// share of every batch and sums the gradients over the ranks (trainer_dist.go). nil or
	// dist.Local is one process.
	Dist dist.Collective
	// Device, when set, computes the steps (device.go); the model's parameters and Opt's
	// state are then current only after SyncDevice. Not with Dist (data-parallel runs are on
	// the CPU).
	Device DeviceStep

	tape *autograd.Tape
	// perms caches each task's shuffle for the pass it is in (a function of the seed, the task
	// and State.Passes, so it is derived state, rebuilt after a resume).
	perms    [][]int
	permPass []int
	params   [][]*autograd.Var
	commBuf  []float32
}

// StepInfo reports one optimiser step.
type StepInfo struct {
	Step, Epoch int
	Task        string
	Loss        float64
	LR          float64
	Tokens      int
	Elapsed     time.Duration
	// Comm is the time spent summing gradients over the ranks (0 on one process).
	Comm time.Duration
}

// NewTrainer returns a trainer at step 0. Every task needs data and a positive batch size.
func NewTrainer(m *Model, tasks []*TaskData, opt *nn.Adam, sched nn.Schedule, seed uint64, padID int) (*Trainer, error) {
	for _, t := range tasks {
		if t.BatchSize <= 0 {
			return nil, fmt.Errorf("task %s: batch size %d", t.Head.Spec.Name, t.BatchSize)
		}
		if len(t.Train) == 0 {
			return nil, fmt.Errorf("task %s: no training examples", t.Head.Spec.Name)
		}
	}
	tr := &Trainer{Model: m, Tasks: tasks, Opt: opt, Sched: sched, Seed: seed, PadID: padID, Accumulate: 1, tape: autograd.NewTape()}
	tr.State.Passes = make([]int, len(tasks))
	tr.State.Pos = make([]int, len(tasks))
	return tr, nil
}

// RoundsPerEpoch returns the number of rounds in an epoch: the largest task's batch count
// divided by Accumulate, rounded up.
func (tr *Trainer) RoundsPerEpoch() int {
	n := 0
	for _, t := range tr.Tasks {
		n = max(n, t.Batches())
	}
	acc := max(1, tr.Accumulate)
	return (n + acc - 1) / acc
}

// batch returns task i's next batch and advances its position.
func (tr *Trainer) batch(i int) Batch {
	t := tr.Tasks[i]
	if tr.State.Pos[i] >= t.Batches() {
		tr.State.Passes[i]++
		tr.State.Pos[i] = 0
	}
	perm := tr.perm(i)
	lo := tr.State.Pos[i] * t.BatchSize
	hi := min(len(perm), lo+t.BatchSize)
	exs := make([]Example, 0, hi-lo)
	for _, j := range perm[lo:hi] {
		exs = append(exs, t.Train[j])
	}
	tr.State.Pos[i]++
	b := Collate(exs, t.Head.Spec.Kind, tr.PadID)
	if t.Masking != nil {
		base := uint64(tr.State.Passes[i]) * uint64(len(t.Train))
		maskRows(t.Masking, &b, func(r int) uint64 { return base + uint64(perm[lo+r]) })
	}
	return b
}

// maskRows masks each row r of an mlm batch with key(r), in place: the masked ids into
// b.Enc.IDs and the labels into b.Tags (padding stays unmasked: [PAD] is special).
func maskRows(mk *bert.Masking, b *Batch, key func(r int) uint64) {
	if err := mk.MaskRows(b.Enc.IDs, b.Tags, b.Enc.B, b.Enc.T, key); err != nil {
		panic(err) // ids come from the tokenizer's own vocabulary
	}
}

// targets returns how many targets b's loss averages over: trained sub-words (ner), masked
// tokens (mlm) or sequences.
func (b *Batch) targets() int {
	if b.Tags == nil {
		return b.Enc.B
	}
	n := 0
	for _, t := range b.Tags {
		if t != IgnoreLabel {
			n++
		}
	}
	return n
}

// perm returns task i's shuffle for its current pass, computing it once per pass.
func (tr *Trainer) perm(i int) []int {
	if tr.perms == nil {
		tr.perms, tr.permPass = make([][]int, len(tr.Tasks)), make([]int, len(tr.Tasks))
	}
	pass := tr.State.Passes[i]
	if tr.perms[i] == nil || tr.permPass[i] != pass {
		tr.perms[i] = tensor.NewRNG(tr.Seed ^ uint64(i+1)*0x9e3779b97f4a7c15 ^ uint64(pass)*0xbf58476d1ce4e5b9).Perm(len(tr.Tasks[i].Train))
		tr.permPass[i] = pass
	}
	return tr.perms[i]
}

// stepParams returns the parameters a step of task i updates: the encoder's (without an MLM
// head's, which belong to the mlm task) and the head's.
func (tr *Trainer) stepParams(i int) []*autograd.Var {
	if tr.params == nil {
		tr.params = make([][]*autograd.Var, len(tr.Tasks))
	}
	if tr.params[i] == nil {
		var ps []*autograd.Var
		for _, p := range tr.Model.Encoder.Params.List() {
			if !strings.HasPrefix(p.Name, "cls.") {
				ps = append(ps, p)
			}
		}
		tr.params[i] = append(ps, tr.Tasks[i].Head.Params()...)
	}
	return tr.params[i]
}

// Step takes the next scheduled batch and updates the encoder and that task's head.
func (tr *Trainer) Step() (StepInfo, error) {
	t0 := time.Now()
	st := &tr.State
	i := st.Next
	task := tr.Tasks[i]
	bs := tr.stepBatches(i)
	total, tokens := 0, 0
	for k := range bs {
		total += bs[k].targets()
		tokens += bs[k].Enc.B * bs[k].Enc.T
	}
	if tr.Device != nil {
		if tr.distributed() {
			return StepInfo{}, errors.New("mtl: data-parallel training runs on the CPU only (no -device cuda with -distributed)")
		}
		lv, err := tr.deviceStep(i, bs, total)
		if err != nil {
			return StepInfo{}, err
		}
		return tr.advance(StepInfo{Step: st.Step, Epoch: st.Epoch, Task: task.Head.Spec.Name, Loss: lv, LR: tr.Opt.LR, Tokens: tokens, Elapsed: time.Since(t0)}), nil
	}
	tp := tr.tape
	params := tr.stepParams(i)
	// This rank's rows of each batch (all of them on one process).
	local, row0 := tr.localBatches(bs)
	calls, ran := tr.dropoutCalls(), 0
	lv, grads := 0.0, false
	for k := range local {
		if local[k].Enc.B == 0 {
			continue // a rank's empty share of a short batch
		}
		tr.setRow0(row0[k])
		ran++
		loss, err := tr.Model.Loss(tp, task.Head, &local[k], true)
		if err != nil {
			tp.Reset()
			return StepInfo{}, err
		}
		w := 1.0
		if len(bs) > 1 || tr.distributed() {
			w = float64(local[k].targets()) / float64(max(1, total))
		}
		if w == 0 && tr.distributed() {
			tp.Reset()
			continue // no targets in this rank's rows: no loss, no gradient
		}
		lv += w * float64(loss.Value.Item())
		if loss.RequiresGrad() {
			if w != 1 {
				loss = tp.Scale(loss, float32(w))
			}
			tp.Backward(loss)
			grads = true
		}
		tp.Reset()
	}
	var comm time.Duration
	if tr.distributed() {
		var err error
		if lv, grads, comm, err = tr.allreduce(params, lv, grads, calls, ran, len(bs)); err != nil {
			return StepInfo{}, err
		}
	}
	if grads {
		if tr.Clip > 0 {
			nn.ClipGradNorm(params, tr.Clip)
		}
		tr.Opt.LR = tr.Sched.LR(st.Step)
		tr.Opt.StepParams(params)
		for _, p := range params {
			p.ZeroGrad()
		}
	}
	return tr.advance(StepInfo{Step: st.Step, Epoch: st.Epoch, Task: task.Head.Spec.Name, Loss: lv, LR: tr.Opt.LR, Tokens: tokens, Elapsed: time.Since(t0), Comm: comm}), nil
}

// stepBatches takes the batches of task i's next step: Accumulate of them, fewer at the end of
// a pass.
func (tr *Trainer) stepBatches(i int) []Batch {
	acc := max(1, tr.Accumulate)
	bs := make([]Batch, 0, acc)
	for k := 0; k < acc; k++ {
		if k > 0 && tr.State.Pos[i] >= tr.Tasks[i].Batches() {
			break
		}
		bs = append(bs, tr.batch(i))
	}
	return bs
}

// advance moves the state past the step info reports.
func (tr *Trainer) advance(info StepInfo) StepInfo {
	st := &tr.State
	st.Step++
	st.Next++
	if st.Next == len(tr.Tasks) {
		st.Next = 0
		st.Round++
		if st.Round == tr.RoundsPerEpoch() {
			st.Round = 0
			st.Epoch++
		}
	}
	return info
}

// RunEpochs trains until State.Epoch reaches epochs, calling onStep after every step (it may
// save a checkpoint; an error stops the run). ctx cancels between steps.
func (tr *Trainer) RunEpochs(ctx context.Context, epochs int, onStep func(StepInfo) error) error {
	for tr.State.Epoch < epochs {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := tr.Step()
		if err != nil {
			return err
		}
		if onStep != nil {
			if err := onStep(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// AllParams returns the encoder's and every head's parameters, encoder first.
func (m *Model) AllParams() []*autograd.Var {
	return append(append([]*autograd.Var(nil), m.Encoder.Params.List()...), m.HeadParams.List()...)
}

// Dropouts returns the model's dropout modules in a fixed order: encoder, then heads.
func (m *Model) Dropouts() []*nn.Dropout {
	d := []*nn.Dropout{m.Encoder.Dropout}
	for _, h := range m.Heads {
		if h.Drop != nil {
			d = append(d, h.Drop)
		}
	}
	return d
}

// SyncState copies the dropout counters into State (call before saving).
func (tr *Trainer) SyncState() {
	tr.State.Ranks = 0
	if tr.distributed() {
		tr.State.Ranks = tr.Dist.Size()
	}
	tr.State.Dropout = tr.State.Dropout[:0]
	for _, d := range tr.Model.Dropouts() {
		tr.State.Dropout = append(tr.State.Dropout, d.Calls())
	}
}

// RestoreState sets the position and the dropout counters from s (after loading a checkpoint).
// Every field is checked against the data it indexes; an error names the field (as
// trainer.json spells it).
func (tr *Trainer) RestoreState(s TrainState) error {
	if len(s.Passes) != len(tr.Tasks) || len(s.Pos) != len(tr.Tasks) {
		return fmt.Errorf("state.passes has %d entries and state.pos %d, the run has %d tasks", len(s.Passes), len(s.Pos), len(tr.Tasks))
	}
	rounds := tr.RoundsPerEpoch()
	switch {
	case s.Step < 0:
		return fmt.Errorf("state.step = %d, must not be negative", s.Step)
	case s.Epoch < 0:
		return fmt.Errorf("state.epoch = %d, must not be negative", s.Epoch)
	case s.Round < 0 || s.Round >= rounds:
		return fmt.Errorf("state.round = %d, must be in [0, %d) (rounds per epoch)", s.Round, rounds)
	case s.Next < 0 || s.Next >= len(tr.Tasks):
		return fmt.Errorf("state.next = %d, must be in [0, %d) (tasks)", s.Next, len(tr.Tasks))
	}
	for i, t := range tr.Tasks {
		if s.Passes[i] < 0 {
			return fmt.Errorf("state.passes[%d] = %d (task %s), must not be negative", i, s.Passes[i], t.Head.Spec.Name)
		}
		// Pos may equal the batch count: the next batch then starts a new pass.
		if s.Pos[i] < 0 || s.Pos[i] > t.Batches() {
			return fmt.Errorf("state.pos[%d] = %d (task %s), must be in [0, %d] (batches per pass)", i, s.Pos[i], t.Head.Spec.Name, t.Batches())
		}
	}
	if err := tr.checkRanks(s); err != nil {
		return err
	}
	ds := tr.Model.Dropouts()
	if len(s.Dropout) != len(ds) {
		return fmt.Errorf("trainer state has %d dropout counters, the model %d", len(s.Dropout), len(ds))
	}
	for i, d := range ds {
		d.SetCalls(s.Dropout[i])
	}
	tr.State = s
	return nil
}
