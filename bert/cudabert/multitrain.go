package cudabert

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/nn"
)

// MultiTrainer takes the training steps of a multitask model on the GPU: the encoder and any
// task head (TaskHead: token tagging, classification, regression, masked LM) forward and
// backward, clipping by the global gradient norm, and the fused multi-tensor Adam/AdamW
// kernel over float32 master weights and moments kept on the device. It mirrors an nn.Adam
// over every parameter of the model (encoder and all heads): a step updates only the
// parameters it is given (the encoder and the stepped task's head), each with its own step
// count for the bias correction, as nn.Adam.StepParams does. Sync writes weights, moments and
// step counts back into the model's parameters and the nn.Adam, so that checkpoints are the
// CPU's; a trainer made from an nn.Adam with state (a resumed run) continues from it.
//
// The encoder's pooler (unused by the GPU heads) is never updated, as on the CPU when no
// task reads it.
type MultiTrainer struct {
	e      *Encoder
	opt    *nn.Adam
	params []*autograd.Var
	index  map[*autograd.Var]int
	grads  map[*autograd.Var]cuda.Buffer
	mom    map[*autograd.Var]cuda.Buffer
	vel    map[*autograd.Var]cuda.Buffer
	steps  []int
	// owned are the parameters whose device weights (added), ownedBF16 whose bf16 copies the
	// trainer made; Close removes them from the encoder.
	owned, ownedBF16 []*autograd.Var
	tables           map[string]*cuda.AdamTable
	gnorm            cuda.Buffer
	skip             map[*autograd.Var]bool
}

// NewMultiTrainer puts every parameter of opt (the model's encoder and heads), its gradient
// and its moments (opt's, zero before a parameter's first step) on e's device.
func NewMultiTrainer(e *Encoder, opt *nn.Adam) (*MultiTrainer, error) {
	t := &MultiTrainer{e: e, opt: opt, params: opt.Params(), index: map[*autograd.Var]int{},
		grads: map[*autograd.Var]cuda.Buffer{}, mom: map[*autograd.Var]cuda.Buffer{}, vel: map[*autograd.Var]cuda.Buffer{},
		tables: map[string]*cuda.AdamTable{}, skip: map[*autograd.Var]bool{}}
	t.steps = make([]int, len(t.params))
	if pl := e.m.Pooler; pl != nil {
		t.skip[pl.W], t.skip[pl.B] = true, true
	}
	zeroed := func(n int) (cuda.Buffer, error) {
		buf, err := e.c.Alloc(4 * n)
		if err == nil {
			err = e.s.MemsetD8(buf.Ptr, 0, buf.Size)
		}
		return buf, err
	}
	fail := func(err error) (*MultiTrainer, error) {
		t.Close()
		return nil, fmt.Errorf("cudabert: GPU trainer: %w", err)
	}
	var err error
	if t.gnorm, err = zeroed(1); err != nil {
		return fail(err)
	}
	for i, p := range t.params {
		t.index[p] = i
		n := p.Value.Len()
		if _, ok := e.w[p]; !ok {
			buf, err := zeroed(n)
			if err == nil {
				err = cuda.Upload(e.s, buf, p.Value.Contiguous().Data())
			}
			if err != nil {
				return fail(err)
			}
			e.w[p] = buf
			t.owned = append(t.owned, p)
		}
		g, err1 := zeroed(n)
		m, err2 := zeroed(n)
		v, err3 := zeroed(n)
		t.grads[p], t.mom[p], t.vel[p] = g, m, v
		if err := errors.Join(err1, err2, err3); err != nil {
			return fail(err)
		}
		if mv, vv, step := opt.State(i); mv != nil {
			if err := errors.Join(cuda.Upload(e.s, m, mv), cuda.Upload(e.s, v, vv)); err != nil {
				return fail(err)
			}
			t.steps[i] = step
		}
	}
	if e.wb != nil {
		if mlm := e.m.MLMHead(); mlm != nil && e.wb[mlm.Decoder].Ptr == 0 {
			if err := e.addBF16(mlm.Decoder); err != nil {
				return fail(err)
			}
			t.ownedBF16 = append(t.ownedBF16, mlm.Decoder)
		}
	}
	return t, nil
}

// Step takes one optimiser step of the task whose head is h over batches bs (gradient
// accumulation: each batch's loss weighted by its share of total, the targets of all of
// them, so that the step's loss is the mean over all their targets), updating params (the
// encoder's and h's; the pooler's are skipped) with learning rate lr after clipping their
// global gradient norm to clip (0: no clipping). It returns the step's loss and whether it
// updated anything (a masked-LM step whose batches mask nothing does not, as on the CPU).
func (t *MultiTrainer) Step(h TaskHead, bs []TaskBatch, total int, params []*autograd.Var, lr, clip float64) (float64, bool, error) {
	e := t.e
	var stepped []*autograd.Var
	for _, p := range params {
		if _, ok := t.index[p]; !ok {
			return 0, false, fmt.Errorf("cudabert: GPU trainer: parameter %q is not the optimiser's", p.Name)
		}
		if !t.skip[p] {
			stepped = append(stepped, p)
		}
	}
	for _, p := range stepped {
		if err := e.s.MemsetD8(t.grads[p].Ptr, 0, t.grads[p].Size); err != nil {
			return 0, false, err
		}
	}
	scale := 1 / float32(max(1, total))
	var sum float64
	for k := range bs {
		l, err := e.taskBackward(&bs[k], h, scale, t.grads)
		if err != nil {
			return 0, false, err
		}
		sum += l
	}
	loss := sum / float64(max(1, total))
	if h.Kind == MaskedLMHead && total == 0 {
		return 0, false, nil
	}
	// One AdamW launch per step count (the encoder's, the head's), the norm over all.
	var gnorm cuda.Buffer
	if clip > 0 {
		all, err := t.table(stepped)
		if err == nil {
			err = e.s.GradNorm(t.gnorm, all)
		}
		if err != nil {
			return 0, false, err
		}
		gnorm = t.gnorm
	}
	groups := map[int][]*autograd.Var{}
	for _, p := range stepped {
		s := t.steps[t.index[p]] + 1
		groups[s] = append(groups[s], p)
	}
	keys := make([]int, 0, len(groups))
	for s := range groups {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	o := t.opt
	for _, s := range keys {
		tab, err := t.table(groups[s])
		if err == nil {
			hp := kernels.AdamParams{LR: lr, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: o.WeightDecay, Decoupled: o.Decoupled, Step: s}
			err = e.s.AdamW(tab, hp, 1, gnorm, float32(clip))
		}
		if err != nil {
			return 0, false, fmt.Errorf("cudabert: GPU AdamW: %w", err)
		}
	}
	for _, p := range stepped {
		t.steps[t.index[p]]++
	}
	return loss, true, nil
}

// table returns the (cached) AdamW table of ps.
func (t *MultiTrainer) table(ps []*autograd.Var) (*cuda.AdamTable, error) {
	var key strings.Builder
	for _, p := range ps {
		key.WriteString(strconv.Itoa(t.index[p]))
		key.WriteByte(',')
	}
	if tab, ok := t.tables[key.String()]; ok {
		return tab, nil
	}
	o := t.opt
	ts := make([]cuda.AdamTensor, len(ps))
	for i, p := range ps {
		decay := o.WeightDecay != 0 && (o.NoDecay == nil || !o.NoDecay(p.Name))
		ts[i] = cuda.AdamTensor{P: t.e.w[p], PBF16: t.e.wb[p], G: t.grads[p], M: t.mom[p], V: t.vel[p], N: p.Value.Len(), Decay: decay}
	}
	tab, err := t.e.c.NewAdamTable(ts)
	if err != nil {
		return nil, err
	}
	t.tables[key.String()] = tab
	return tab, nil
}

// Sync copies the device weights into the model's parameters and the moments and step counts
// into the nn.Adam (for parameters that have taken a step).
func (t *MultiTrainer) Sync() error {
	s := t.e.s
	for i, p := range t.params {
		if err := cuda.Download(s, p.Value.Data(), t.e.w[p]); err != nil {
			return err
		}
		if t.steps[i] == 0 {
			continue
		}
		n := p.Value.Len()
		m, v := make([]float32, n), make([]float32, n)
		if err := errors.Join(cuda.Download(s, m, t.mom[p]), cuda.Download(s, v, t.vel[p])); err != nil {
			return err
		}
		if err := t.opt.SetState(i, m, v, t.steps[i]); err != nil {
			return err
		}
	}
	return nil
}

// Encoder returns the encoder the trainer steps (its device weights are the trainer's).
func (t *MultiTrainer) Encoder() *Encoder { return t.e }

// Close frees the trainer's device memory and removes the weights it added from the encoder.
func (t *MultiTrainer) Close() {
	for _, tab := range t.tables {
		tab.Free()
	}
	for _, m := range []map[*autograd.Var]cuda.Buffer{t.grads, t.mom, t.vel} {
		for _, b := range m {
			b.Free()
		}
	}
	if t.gnorm.Ptr != 0 {
		t.gnorm.Free()
	}
	for _, p := range t.owned {
		t.e.w[p].Free()
		delete(t.e.w, p)
	}
	for _, p := range t.ownedBF16 {
		t.e.wb[p].Free()
		delete(t.e.wb, p)
	}
	t.tables, t.grads, t.mom, t.vel, t.owned, t.ownedBF16 = nil, nil, nil, nil, nil, nil
}
