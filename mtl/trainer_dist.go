package mtl

import (
	"fmt"
	"time"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/tensor"
)

// Data-parallel training (Trainer.Dist of Size N > 1). Every rank holds the whole data set
// and draws the same batches (the shuffle is a function of the seed and the position), so
// every rank knows each step's whole batches; rank r runs rows [r·n/N, (r+1)·n/N) of each
// batch of n rows, collated to the whole batch's length. Its loss is weighted by its share
// of the step's targets, so the sum over ranks of the gradients is the gradient of the
// step's mean loss, as one process computes it; one MPI_Allreduce sums them, and every rank
// clips and takes the same optimiser step on the same sums.
//
// Dropout masks are keyed by the row in the whole batch (nn.Dropout.Row0,
// kernels.Attention.Row0), so rank r draws, for its rows, the masks one process draws for
// them. The draw counters advance as one process's would: a rank whose share of a short
// batch is empty runs no forward pass, and the allreduce carries each rank's counter
// advance and forward count, from which every rank sets the counters the whole batches give.
//
// What differs from one process is the order of float32 sums (the gradient sum over the
// batch is split in N partial sums, added by the allreduce), so the weights agree within
// float32 rounding, not bit for bit; a run on N ranks, interrupted and resumed on N ranks, is
// bit-identical to the uninterrupted run on N ranks.

// distributed reports whether the trainer is one rank of several.
func (tr *Trainer) distributed() bool { return tr.Dist != nil && tr.Dist.Size() > 1 }

// localBatches returns this rank's rows of each batch and the index of their first row in
// it; on one process the batches themselves.
func (tr *Trainer) localBatches(bs []Batch) ([]Batch, []int) {
	row0 := make([]int, len(bs))
	if !tr.distributed() {
		return bs, row0
	}
	r, n := tr.Dist.Rank(), tr.Dist.Size()
	out := make([]Batch, len(bs))
	for k, b := range bs {
		lo, hi := r*b.Enc.B/n, (r+1)*b.Enc.B/n
		out[k], row0[k] = b.Rows(lo, hi), lo
	}
	return out, row0
}

// Rows returns rows [lo, hi) of b (sharing its slices).
func (b Batch) Rows(lo, hi int) Batch {
	t := b.Enc.T
	s := Batch{Enc: b.Enc}
	s.Enc.B = hi - lo
	s.Enc.IDs = b.Enc.IDs[lo*t : hi*t]
	if b.Enc.TypeIDs != nil {
		s.Enc.TypeIDs = b.Enc.TypeIDs[lo*t : hi*t]
	}
	if b.Enc.Mask != nil {
		s.Enc.Mask = b.Enc.Mask[lo*t : hi*t]
	}
	if b.Tags != nil {
		s.Tags = b.Tags[lo*t : hi*t]
	}
	if b.Classes != nil {
		s.Classes = b.Classes[lo:hi]
	}
	if b.Scores != nil {
		s.Scores = b.Scores[lo:hi]
	}
	return s
}

// setRow0 keys the dropout masks of the next forward pass by rows row0.. of the whole batch.
func (tr *Trainer) setRow0(row0 int) {
	for _, d := range tr.Model.Dropouts() {
		d.Row0 = row0
	}
}

// dropoutCalls returns the draw counters of the model's dropouts.
func (tr *Trainer) dropoutCalls() []uint64 {
	ds := tr.Model.Dropouts()
	c := make([]uint64, len(ds))
	for i, d := range ds {
		c[i] = d.Calls()
	}
	return c
}

// allreduce sums the step's gradients, loss and gradient flag over the ranks, and sets the
// dropout counters to before plus the advance of nb forward passes. ran is the number of
// forward passes this rank ran. The buffer: every parameter's gradient (zeros when it has
// none), then per parameter 1 when it has one, then the loss, the gradient flag, each
// dropout's counter advance and ran. Counts and advances are small integers, exact in
// float32.
func (tr *Trainer) allreduce(params []*autograd.Var, lv float64, grads bool, before []uint64, ran, nb int) (float64, bool, time.Duration, error) {
	defer tr.setRow0(0)
	n := 0
	for _, p := range params {
		n += p.Value.Len()
	}
	ds := tr.Model.Dropouts()
	size := n + len(params) + 2 + len(ds) + 1
	if cap(tr.commBuf) < size {
		tr.commBuf = make([]float32, size)
	}
	buf := tr.commBuf[:size]
	off := 0
	for j, p := range params {
		m := p.Value.Len()
		if p.Grad != nil {
			copy(buf[off:off+m], p.Grad.Data())
			buf[n+j] = 1
		} else {
			clear(buf[off : off+m])
			buf[n+j] = 0
		}
		off += m
	}
	tail := buf[n+len(params):]
	tail[0] = float32(lv)
	tail[1] = 0
	if grads {
		tail[1] = 1
	}
	for j, d := range ds {
		tail[2+j] = float32(d.Calls() - before[j])
	}
	tail[2+len(ds)] = float32(ran)
	t0 := time.Now()
	if err := tr.Dist.AllreduceSum(buf); err != nil {
		return 0, false, 0, fmt.Errorf("step %d: summing gradients over %d ranks: %w", tr.State.Step, tr.Dist.Size(), err)
	}
	comm := time.Since(t0)
	off = 0
	for j, p := range params {
		m := p.Value.Len()
		if buf[n+j] > 0 {
			if p.Grad == nil {
				p.Grad = tensor.New(p.Value.Shape()...)
			}
			copy(p.Grad.Data(), buf[off:off+m])
		}
		off += m
	}
	if runs := uint64(tail[2+len(ds)]); runs > 0 {
		for j, d := range ds {
			d.SetCalls(before[j] + uint64(tail[2+j])/runs*uint64(nb))
		}
	}
	return float64(tail[0]), tail[1] > 0, comm, nil
}

// checkRanks refuses a trainer state saved by a run on another number of ranks.
func (tr *Trainer) checkRanks(s TrainState) error {
	have, want := max(1, s.Ranks), 1
	if tr.Dist != nil {
		want = tr.Dist.Size()
	}
	if have != want {
		return fmt.Errorf("the checkpoint was trained on %d rank(s), this run has %d: resume on %d (mpirun -np %d, or without mpirun for 1); each rank's share of a batch, and so the float32 sums, depend on the count, and a resumed run is only exact on the same one",
			have, want, have, have)
	}
	return nil
}
