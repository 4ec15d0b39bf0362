package mtl

import (
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
)

// StepFeed is what one optimiser step of a Trainer is fed: the task, its batches (Accumulate of
// them, fewer at the end of a pass), the learning rate, and where every dropout module's
// random stream stands.
type StepFeed struct {
	Step, Epoch int
	// Task indexes Trainer.Tasks.
	Task    int
	Batches []Batch
	LR      float64
	// Dropout parallels Model.Dropouts (encoder, then the heads that have one): each module's
	// seed and its draw counter before the step. The step's n-th draw of a module (n = 1, 2,
	// ...) has seed Seed·0x9e3779b97f4a7c15 + Calls + n (nn.Dropout.NextSeed). The encoder
	// draws one seed per layer for the attention probabilities whenever it trains, dropout 0
	// included; the other sites draw only when their rate is positive.
	Dropout []DropoutDraw
}

// DropoutDraw is one dropout module's seed and draw counter.
type DropoutDraw struct {
	Seed  uint64 `json:"seed"`
	Calls uint64 `json:"calls"`
}

// Upcoming returns what the next k steps will be fed, without training: the same batches, in
// the same order, that Step would draw, the schedule's rates, and the dropout counters. It
// leaves the trainer's state as it found it. The dropout counters are found by running the
// encoder and each task's head forward once on that task's first upcoming batch (on a
// throw-away tape; the counters are put back), since how many seeds a forward pass draws is
// the model's business.
func (tr *Trainer) Upcoming(k int) ([]StepFeed, error) {
	if k < 0 {
		return nil, fmt.Errorf("mtl: Upcoming(%d): negative step count", k)
	}
	saved := tr.State
	saved.Passes = append([]int(nil), tr.State.Passes...)
	saved.Pos = append([]int(nil), tr.State.Pos...)
	defer func() { tr.State = saved }()
	st := &tr.State
	st.Passes = append([]int(nil), saved.Passes...)
	st.Pos = append([]int(nil), saved.Pos...)

	ds := tr.Model.Dropouts()
	calls := make([]uint64, len(ds))
	for j, d := range ds {
		calls[j] = d.Calls()
	}
	// draws[i][j]: how many seeds module j draws in one forward pass of task i (nil: not yet
	// measured).
	draws := make([][]uint64, len(tr.Tasks))
	out := make([]StepFeed, 0, k)
	for n := 0; n < k; n++ {
		i := st.Next
		task := tr.Tasks[i]
		bs := tr.stepBatches(i) // as Step draws them
		if draws[i] == nil {
			var err error
			if draws[i], err = tr.probeDraws(task.Head, &bs[0], ds); err != nil {
				return nil, err
			}
		}
		f := StepFeed{Step: st.Step, Epoch: st.Epoch, Task: i, Batches: bs, LR: tr.Sched.LR(st.Step), Dropout: make([]DropoutDraw, len(ds))}
		for j, d := range ds {
			f.Dropout[j] = DropoutDraw{Seed: d.Seed, Calls: calls[j]}
			calls[j] += uint64(len(bs)) * draws[i][j]
		}
		out = append(out, f)
		tr.advance(StepInfo{}) // as Step advances
	}
	return out, nil
}

// probeDraws runs the model forward in training mode on b with head h and returns how many
// seeds each dropout module drew, putting every counter back.
func (tr *Trainer) probeDraws(h *Head, b *Batch, ds []*nn.Dropout) ([]uint64, error) {
	before := make([]uint64, len(ds))
	for j, d := range ds {
		before[j] = d.Calls()
	}
	tp := autograd.NewTape()
	_, err := tr.Model.Loss(tp, h, b, true)
	tp.Reset()
	n := make([]uint64, len(ds))
	for j, d := range ds {
		n[j] = d.Calls() - before[j]
		d.SetCalls(before[j])
	}
	return n, err
}

// BatchTargets returns how many targets b's loss averages over: trained sub-words (ner),
// masked tokens (mlm) or sequences.
func BatchTargets(b *Batch) int { return b.targets() }
