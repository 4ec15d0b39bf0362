package cudabert

import (
	"errors"
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/nn"
)

// Gradients runs a token-tagging training step's forward and backward passes on the GPU
// (with the model's dropout, drawn from its dropout stream exactly as the CPU's training
// Forward draws it; without the optimiser step): the encoder, then head (labels × H) on
// every position, softmax cross-entropy against tags (B·T, ignore skipped) averaged over the
// counted positions. It returns the loss and the gradient of every encoder parameter and of
// the head's, as host slices. It is the GPU backward checked against the CPU's autograd
// (encoder_test.go); Trainer adds the optimiser step.
func (e *Encoder) Gradients(b bert.Batch, head *nn.Linear, tags []int32, ignore int32) (float64, map[*autograd.Var][]float32, error) {
	grads := map[*autograd.Var]cuda.Buffer{}
	defer func() {
		for _, buf := range grads {
			buf.Free()
		}
	}()
	for _, p := range append(e.m.Params.List(), head.W, head.B) {
		buf, err := e.c.Alloc(4 * p.Value.Len())
		if err == nil {
			err = e.s.MemsetD8(buf.Ptr, 0, buf.Size)
		}
		if err != nil {
			return 0, nil, err
		}
		grads[p] = buf
	}
	loss, err := e.backward(b, head, tags, ignore, grads)
	if err != nil {
		return 0, nil, err
	}
	out := make(map[*autograd.Var][]float32, len(grads))
	for p, buf := range grads {
		host := make([]float32, p.Value.Len())
		if err := cuda.Download(e.s, host, buf); err != nil {
			return 0, nil, err
		}
		out[p] = host
	}
	return loss, out, nil
}

// backward runs the forward and backward passes of Gradients, accumulating every parameter's
// gradient into grads (device buffers, zeroed by the caller). The head's weights come from the
// encoder's device copies when a Trainer put them there, else they are uploaded.
func (e *Encoder) backward(b bert.Batch, head *nn.Linear, tags []int32, ignore int32, grads map[*autograd.Var]cuda.Buffer) (float64, error) {
	L := head.W.Shape()[0]
	if len(tags) != b.B*b.T {
		return 0, fmt.Errorf("cudabert: GPU gradients: %d tags for a %dx%d batch", len(tags), b.B, b.T)
	}
	count := 0
	for _, t := range tags {
		if t != ignore {
			if t < 0 || int(t) >= L {
				return 0, fmt.Errorf("cudabert: GPU gradients: tag %d outside %d labels", t, L)
			}
			count++
		}
	}
	if count == 0 {
		return 0, errors.New("cudabert: GPU gradients: every tag is ignored")
	}
	p, err := e.newPass(b, true)
	if err != nil {
		return 0, err
	}
	defer p.free()
	s, N, H, I := p.s, p.N, p.H, p.I
	// The head's weights: the trainer's device copies, else uploaded for this pass.
	hw := pair{f: e.w[head.W], b: e.wb[head.W]}
	hb := e.w[head.B]
	upload := hw.f.Ptr == 0 || hb.Ptr == 0
	if upload {
		hw.f, hb = p.f32(L*H), p.f32(L)
	}
	if p.bf16 && hw.b.Ptr == 0 {
		hw.b = p.alloc(2 * L * H)
	}
	tg, rowLoss, logits := p.f32(N), p.f32(N), p.act(N*L)
	dx, dx1, dctx, dctxb, dd := p.f32(N*H), p.f32(N*H), p.f32(N*H), p.alloc(2*N*H), p.act(N*H)
	ds, dh, dq, dk, dv := p.act(N*H), p.act(N*I), p.act(N*H), p.act(N*H), p.act(N*H)
	if p.allocErr != nil {
		return 0, p.allocErr
	}
	err = cuda.Upload(s, tg, tags)
	if err == nil && upload {
		err = errors.Join(cuda.Upload(s, hw.f, head.W.Value.Contiguous().Data()), cuda.Upload(s, hb, head.B.Value.Contiguous().Data()))
	}
	if err == nil && p.bf16 && hw.b.Ptr != e.wb[head.W].Ptr {
		err = s.F32ToBF16(hw.b, hw.f, L*H)
	}
	w := func(v *autograd.Var) cuda.Buffer { return e.w[v] }
	g := func(v *autograd.Var) cuda.Buffer { return grads[v] }
	var none cuda.Buffer
	// linearBack: dW += dOutᵀ·in, db += Σ dOut, and dIn = dIn·beta + dOut·W.
	linearBack := func(dIn cuda.Buffer, dOut, in, wt pair, dW, dB cuda.Buffer, inC, outC int, beta float32) error {
		return errors.Join(
			e.mm(cuda.Gemm{M: outC, N: inC, K: N, TransA: true, Beta: 1}, dOut, in, dW),
			s.ColSumF32(dB, dOut.f, N, outC, true),
			e.mm(cuda.Gemm{M: N, N: inC, K: outC, Beta: beta}, dOut, wt, dIn))
	}
	back := func(dIn cuda.Buffer, dOut, in pair, l *nn.Linear, inC, outC int, beta float32) error {
		return linearBack(dIn, dOut, in, e.weight(l.W), g(l.W), g(l.B), inC, outC, beta)
	}
	// dropBack writes the gradient through a hidden dropout into dd; through says which pair
	// then holds it (src itself without dropout).
	dropBack := func(src cuda.Buffer, seed uint64) error {
		if p.pH == 0 {
			return nil
		}
		return errors.Join(s.DropoutBackwardSplitMix(dd.f, src, N*H, p.pH, seed, 0), p.toBF16(dd, N*H))
	}
	through := func(src pair) pair {
		if p.pH == 0 {
			return src
		}
		return dd
	}
	copyBuf := func(dst, src cuda.Buffer, n int) error { return s.CopyDtoDAsync(dst.Ptr, src.Ptr, 4*n) }

	// Forward, the head and its loss (dlogits overwrite the logits).
	if err == nil {
		err = p.forward(nil)
	}
	if err == nil {
		err = errors.Join(p.linear(logits.f, none, p.x, hw, hb, H, L),
			s.SoftmaxXent(rowLoss, logits.f, logits.f, tg, N, L, int(ignore), 1/float32(count)),
			p.toBF16(logits, N*L),
			linearBack(dx, logits, p.x, hw, g(head.W), g(head.B), H, L, 0))
	}
	// Backward through the layers; dx holds the gradient of the current layer's output.
	for li := len(e.m.Layers) - 1; li >= 0 && err == nil; li-- {
		l, sv := e.m.Layers[li], p.saved[li]
		att := p.att
		att.DropP, att.Seed = p.pA, sv.attSeed
		err = errors.Join(
			s.LayerNormBackward(ds.f, ds.b, dx, sv.s2, sv.mean2, sv.rstd2, w(l.OutLN.Gamma), N, H, false),
			s.LayerNormParamsBackward(g(l.OutLN.Gamma), g(l.OutLN.Beta), dx, sv.s2, sv.mean2, sv.rstd2, N, H),
			dropBack(ds.f, sv.oSeed),
			back(dh.f, through(ds), sv.hg, l.Output, I, H, 0),
			s.BiasGeluBackward(dh.f, dh.b, dh.f, sv.hPre, N, I, false),
			s.ColSumF32(g(l.Intermediate.B), dh.f, N, I, true),
			e.mm(cuda.Gemm{M: I, N: H, K: N, TransA: true, Beta: 1}, dh, sv.x1, g(l.Intermediate.W)),
			copyBuf(dx1, ds.f, N*H),
			e.mm(cuda.Gemm{M: N, N: H, K: I, Beta: 1}, dh, e.weight(l.Intermediate.W), dx1),
			s.LayerNormBackward(ds.f, ds.b, dx1, sv.s1, sv.mean1, sv.rstd1, w(l.AttnLN.Gamma), N, H, false),
			s.LayerNormParamsBackward(g(l.AttnLN.Gamma), g(l.AttnLN.Beta), dx1, sv.s1, sv.mean1, sv.rstd1, N, H),
			dropBack(ds.f, sv.aSeed),
			back(dctx, through(ds), sv.ctx, l.AttnOut, H, H, 0),
			s.F32ToBF16(dctxb, dctx, N*H),
			s.FlashAttentionBackward(att, dq.f, dk.f, dv.f, sv.qb, sv.kb, sv.vb, none, sv.ctx.f, dctxb, sv.lse),
			p.toBF16(dq, N*H), p.toBF16(dk, N*H), p.toBF16(dv, N*H),
			copyBuf(dx, ds.f, N*H),
			back(dx, dq, sv.xin, l.Query, H, H, 1),
			back(dx, dk, sv.xin, l.Key, H, H, 1),
			back(dx, dv, sv.xin, l.Value, H, H, 1))
	}
	if err == nil {
		dIn := dx
		if p.pH > 0 {
			dIn = dd.f
		}
		m := e.m
		err = errors.Join(
			dropBack(dx, p.embSeed),
			s.LayerNormBackward(ds.f, none, dIn, p.s0, p.mean0, p.rstd0, w(m.EmbLN.Gamma), N, H, false),
			s.LayerNormParamsBackward(g(m.EmbLN.Gamma), g(m.EmbLN.Beta), dIn, p.s0, p.mean0, p.rstd0, N, H),
			s.EmbeddingBackward(g(m.Word.W), ds.f, p.ids, b.IDs, H),
			s.EmbeddingBackward(g(m.Position.W), ds.f, p.posIDs, p.pos, H),
			s.EmbeddingBackward(g(m.TokenType.W), ds.f, p.tIDs, p.types, H))
	}
	if err != nil {
		return 0, fmt.Errorf("cudabert: GPU gradients: %w", err)
	}
	losses := make([]float32, N)
	if err := cuda.Download(s, losses, rowLoss); err != nil {
		return 0, err
	}
	var loss float64
	for _, v := range losses {
		loss += float64(v)
	}
	return loss / float64(count), nil
}

// Trainer trains an encoder and a token-tagging head on the GPU: each Step runs
// Encoder's forward and backward passes and the fused multi-tensor AdamW kernel over
// float32 master weights and moments kept on the device (decoupled weight decay except for
// the parameters noDecay names, as nn.AdamW with NoDecay). Sync copies the weights back into
// the model's parameters. Steps apply the model's dropout as the CPU does.
type Trainer struct {
	e      *Encoder
	head   *nn.Linear
	grads  map[*autograd.Var]cuda.Buffer
	extra  []cuda.Buffer
	table  *cuda.AdamTable
	params []*autograd.Var
	// HP holds the learning rate, betas, epsilon and weight decay; HP.Step counts the steps.
	HP kernels.AdamParams
}

// NewTrainer puts head's weights, every gradient and the AdamW moments on e's device.
func NewTrainer(e *Encoder, head *nn.Linear, lr, weightDecay float64, noDecay func(name string) bool) (*Trainer, error) {
	t := &Trainer{e: e, head: head, grads: map[*autograd.Var]cuda.Buffer{},
		HP: kernels.AdamParams{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, Decoupled: true}}
	zeroed := func(n int) (cuda.Buffer, error) {
		buf, err := e.c.Alloc(4 * n)
		if err == nil {
			err = e.s.MemsetD8(buf.Ptr, 0, buf.Size)
		}
		if err == nil {
			t.extra = append(t.extra, buf)
		}
		return buf, err
	}
	for _, p := range []*autograd.Var{head.W, head.B} {
		buf, err := zeroed(p.Value.Len())
		if err == nil {
			err = cuda.Upload(e.s, buf, p.Value.Contiguous().Data())
		}
		if err != nil {
			t.Close()
			return nil, err
		}
		e.w[p] = buf
	}
	if e.wb != nil {
		if err := e.addBF16(head.W); err != nil {
			t.Close()
			return nil, err
		}
	}
	t.params = append(e.m.Params.List(), head.W, head.B)
	var ts []cuda.AdamTensor
	for _, p := range t.params {
		n := p.Value.Len()
		g, err1 := zeroed(n)
		m, err2 := zeroed(n)
		v, err3 := zeroed(n)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Close()
			return nil, err
		}
		t.grads[p] = g
		ts = append(ts, cuda.AdamTensor{P: e.w[p], PBF16: e.wb[p], G: g, M: m, V: v, N: n, Decay: noDecay == nil || !noDecay(p.Name)})
	}
	table, err := e.c.NewAdamTable(ts)
	if err != nil {
		t.Close()
		return nil, err
	}
	t.table = table
	return t, nil
}

// Step takes one training step on batch b with tags (ignore skipped) and returns its loss
// (before the update).
func (t *Trainer) Step(b bert.Batch, tags []int32, ignore int32) (float64, error) {
	for _, g := range t.grads {
		if err := t.e.s.MemsetD8(g.Ptr, 0, g.Size); err != nil {
			return 0, err
		}
	}
	loss, err := t.e.backward(b, t.head, tags, ignore, t.grads)
	if err != nil {
		return 0, err
	}
	t.HP.Step++
	if err := t.e.s.AdamW(t.table, t.HP, 1, cuda.Buffer{}, 0); err != nil {
		return 0, fmt.Errorf("cudabert: GPU AdamW: %w", err)
	}
	return loss, nil
}

// Sync copies the device weights into the model's and the head's parameters.
func (t *Trainer) Sync() error {
	for _, p := range t.params {
		if err := cuda.Download(t.e.s, p.Value.Data(), t.e.w[p]); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the trainer's device memory (the head's weights, gradients, moments, table).
func (t *Trainer) Close() {
	if t.table != nil {
		t.table.Free()
	}
	for _, b := range t.extra {
		b.Free()
	}
	if b, ok := t.e.wb[t.head.W]; ok {
		b.Free()
		delete(t.e.wb, t.head.W)
	}
	delete(t.e.w, t.head.W)
	delete(t.e.w, t.head.B)
	t.extra, t.grads = nil, nil
}
