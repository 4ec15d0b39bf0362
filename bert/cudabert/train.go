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
	count, err := countTags(b, tags, head.W.Shape()[0], ignore)
	if err != nil {
		return 0, err
	}
	p, err := e.newPass(b, true)
	if err != nil {
		return 0, err
	}
	defer p.free()
	bp, err := newBackPass(p, head, grads)
	if err != nil {
		return 0, err
	}
	err = bp.upload(tags)
	if err == nil {
		err = p.forward(nil)
	}
	if err == nil {
		err = bp.headBackward(ignore, count)
	}
	// Backward through the layers; bp.dx holds the gradient of the current layer's output.
	for li := len(e.m.Layers) - 1; li >= 0 && err == nil; li-- {
		err = errors.Join(bp.feedForwardBackward(li), bp.attentionBackward(li))
	}
	if err == nil {
		err = bp.embeddingsBackward()
	}
	if err != nil {
		return 0, fmt.Errorf("cudabert: GPU gradients: %w", err)
	}
	return bp.meanLoss(count)
}

// countTags checks tags against a batch of b's size and L labels and returns how many are not
// ignore.
func countTags(b bert.Batch, tags []int32, L int, ignore int32) (int, error) {
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
	return count, nil
}

// backPass is a training pass's backward state: the forward pass, the parameter gradients it
// accumulates into, the head's device weights (L labels), and the activations' gradients.
type backPass struct {
	*pass
	grads map[*autograd.Var]cuda.Buffer
	head  *nn.Linear
	L     int
	// The head's weights and bias; tags, the per-row losses and the logits (dlogits after
	// the loss).
	hw              pair
	hb, tg, rowLoss cuda.Buffer
	logits          pair
	// dx is the gradient of the current layer's output, dx1 of its attention block's output,
	// dctx (and the bf16 dctxb) of the attention context; dd holds a gradient through a
	// hidden dropout, ds a LayerNorm's input gradient, dh the FFN's hidden gradient, dq, dk
	// and dv the attention inputs'.
	dx, dx1, dctx, dctxb   cuda.Buffer
	dd, ds, dh, dq, dk, dv pair
	uploadHead             bool
}

// newBackPass allocates the backward buffers of p (freed with it) and, unless a Trainer put
// them on the device, the head's weights.
func newBackPass(p *pass, head *nn.Linear, grads map[*autograd.Var]cuda.Buffer) (*backPass, error) {
	e, N, H, I := p.e, p.N, p.H, p.I
	L := head.W.Shape()[0]
	bp := &backPass{pass: p, grads: grads, head: head, L: L, hw: pair{f: e.w[head.W], b: e.wb[head.W]}, hb: e.w[head.B]}
	bp.uploadHead = bp.hw.f.Ptr == 0 || bp.hb.Ptr == 0
	if bp.uploadHead {
		bp.hw.f, bp.hb = p.f32(L*H), p.f32(L)
	}
	if p.bf16 && bp.hw.b.Ptr == 0 {
		bp.hw.b = p.alloc(2 * L * H)
	}
	bp.tg, bp.rowLoss, bp.logits = p.f32(N), p.f32(N), p.act(N*L)
	bp.dx, bp.dx1, bp.dctx, bp.dctxb, bp.dd = p.f32(N*H), p.f32(N*H), p.f32(N*H), p.alloc(2*N*H), p.act(N*H)
	bp.ds, bp.dh, bp.dq, bp.dk, bp.dv = p.act(N*H), p.act(N*I), p.act(N*H), p.act(N*H), p.act(N*H)
	if p.allocErr != nil {
		return nil, p.allocErr
	}
	return bp, nil
}

// upload copies the tags and, when newBackPass allocated them, the head's weights to the
// device, with the head's bf16 copy in bf16 mode.
func (bp *backPass) upload(tags []int32) error {
	s, head := bp.s, bp.head
	err := cuda.Upload(s, bp.tg, tags)
	if err == nil && bp.uploadHead {
		err = errors.Join(cuda.Upload(s, bp.hw.f, head.W.Value.Contiguous().Data()), cuda.Upload(s, bp.hb, head.B.Value.Contiguous().Data()))
	}
	if err == nil && bp.bf16 && bp.hw.b.Ptr != bp.e.wb[head.W].Ptr {
		err = s.F32ToBF16(bp.hw.b, bp.hw.f, bp.L*bp.H)
	}
	return err
}

// g returns parameter v's gradient buffer.
func (bp *backPass) g(v *autograd.Var) cuda.Buffer { return bp.grads[v] }

// linearBack accumulates dW += dOutᵀ·in and db += Σ dOut, and sets dIn = dIn·beta + dOut·W.
func (bp *backPass) linearBack(dIn cuda.Buffer, dOut, in, wt pair, dW, dB cuda.Buffer, inC, outC int, beta float32) error {
	N := bp.N
	return errors.Join(
		bp.e.mm(cuda.Gemm{M: outC, N: inC, K: N, TransA: true, Beta: 1}, dOut, in, dW),
		bp.s.ColSumF32(dB, dOut.f, N, outC, true),
		bp.e.mm(cuda.Gemm{M: N, N: inC, K: outC, Beta: beta}, dOut, wt, dIn))
}

// back is linearBack for one of the model's layers.
func (bp *backPass) back(dIn cuda.Buffer, dOut, in pair, l *nn.Linear, inC, outC int, beta float32) error {
	return bp.linearBack(dIn, dOut, in, bp.e.weight(l.W), bp.g(l.W), bp.g(l.B), inC, outC, beta)
}

// dropBack writes the gradient src through a hidden dropout with seed into dd (nothing
// without dropout); through says which pair then holds it.
func (bp *backPass) dropBack(src cuda.Buffer, seed uint64) error {
	if bp.pH == 0 {
		return nil
	}
	return errors.Join(bp.s.DropoutBackwardSplitMix(bp.dd.f, src, bp.N*bp.H, bp.pH, seed, 0), bp.toBF16(bp.dd, bp.N*bp.H))
}

// through is the pair holding a gradient after dropBack: src itself without dropout, else dd.
func (bp *backPass) through(src pair) pair {
	if bp.pH == 0 {
		return src
	}
	return bp.dd
}

// copyBuf copies n float32 values.
func (bp *backPass) copyBuf(dst, src cuda.Buffer, n int) error {
	return bp.s.CopyDtoDAsync(dst.Ptr, src.Ptr, 4*n)
}

// headBackward runs the head on the last hidden state and the softmax cross-entropy averaged
// over count tags (ignore skipped), whose gradient overwrites the logits, then the head's
// backward: its parameters' gradients, and dx, the last hidden state's.
func (bp *backPass) headBackward(ignore int32, count int) error {
	s, N, H, L := bp.s, bp.N, bp.H, bp.L
	var none cuda.Buffer
	return errors.Join(bp.linear(bp.logits.f, none, bp.x, bp.hw, bp.hb, H, L),
		s.SoftmaxXent(bp.rowLoss, bp.logits.f, bp.logits.f, bp.tg, N, L, int(ignore), 1/float32(count)),
		bp.toBF16(bp.logits, N*L),
		bp.linearBack(bp.dx, bp.logits, bp.x, bp.hw, bp.g(bp.head.W), bp.g(bp.head.B), H, L, 0))
}

// feedForwardBackward takes dx, the gradient of layer li's output, back through its output
// LayerNorm, dropout, output dense, GELU and intermediate dense: ds then holds the gradient
// of the attention block's output x1 through the residual, dx1 its total.
func (bp *backPass) feedForwardBackward(li int) error {
	l, sv, s, N, H, I := bp.e.m.Layers[li], bp.saved[li], bp.s, bp.N, bp.H, bp.I
	w := bp.e.w
	return errors.Join(
		s.LayerNormBackward(bp.ds.f, bp.ds.b, bp.dx, sv.s2, sv.mean2, sv.rstd2, w[l.OutLN.Gamma], N, H, false),
		s.LayerNormParamsBackward(bp.g(l.OutLN.Gamma), bp.g(l.OutLN.Beta), bp.dx, sv.s2, sv.mean2, sv.rstd2, N, H),
		bp.dropBack(bp.ds.f, sv.oSeed),
		bp.back(bp.dh.f, bp.through(bp.ds), sv.hg, l.Output, I, H, 0),
		s.BiasGeluBackward(bp.dh.f, bp.dh.b, bp.dh.f, sv.hPre, N, I, false),
		s.ColSumF32(bp.g(l.Intermediate.B), bp.dh.f, N, I, true),
		bp.e.mm(cuda.Gemm{M: I, N: H, K: N, TransA: true, Beta: 1}, bp.dh, sv.x1, bp.g(l.Intermediate.W)),
		bp.copyBuf(bp.dx1, bp.ds.f, N*H),
		bp.e.mm(cuda.Gemm{M: N, N: H, K: I, Beta: 1}, bp.dh, bp.e.weight(l.Intermediate.W), bp.dx1))
}

// attentionBackward takes dx1 back through layer li's attention LayerNorm, dropout, output
// dense, attention and Q, K, V projections: dx then holds the gradient of the layer's input
// (the residual's share plus the three projections').
func (bp *backPass) attentionBackward(li int) error {
	l, sv, s, N, H := bp.e.m.Layers[li], bp.saved[li], bp.s, bp.N, bp.H
	w := bp.e.w
	att := bp.att
	att.DropP, att.Seed = bp.pA, sv.attSeed
	var none cuda.Buffer
	return errors.Join(
		s.LayerNormBackward(bp.ds.f, bp.ds.b, bp.dx1, sv.s1, sv.mean1, sv.rstd1, w[l.AttnLN.Gamma], N, H, false),
		s.LayerNormParamsBackward(bp.g(l.AttnLN.Gamma), bp.g(l.AttnLN.Beta), bp.dx1, sv.s1, sv.mean1, sv.rstd1, N, H),
		bp.dropBack(bp.ds.f, sv.aSeed),
		bp.back(bp.dctx, bp.through(bp.ds), sv.ctx, l.AttnOut, H, H, 0),
		s.F32ToBF16(bp.dctxb, bp.dctx, N*H),
		s.FlashAttentionBackward(att, bp.dq.f, bp.dk.f, bp.dv.f, sv.qb, sv.kb, sv.vb, none, sv.ctx.f, bp.dctxb, sv.lse),
		bp.toBF16(bp.dq, N*H), bp.toBF16(bp.dk, N*H), bp.toBF16(bp.dv, N*H),
		bp.copyBuf(bp.dx, bp.ds.f, N*H),
		bp.back(bp.dx, bp.dq, sv.xin, l.Query, H, H, 1),
		bp.back(bp.dx, bp.dk, sv.xin, l.Key, H, H, 1),
		bp.back(bp.dx, bp.dv, sv.xin, l.Value, H, H, 1))
}

// embeddingsBackward takes dx, the gradient of the embeddings' output, back through their
// dropout and LayerNorm into the word, position and token type tables.
func (bp *backPass) embeddingsBackward() error {
	m, s, N, H := bp.e.m, bp.s, bp.N, bp.H
	w := bp.e.w
	dIn := bp.dx
	if bp.pH > 0 {
		dIn = bp.dd.f
	}
	var none cuda.Buffer
	return errors.Join(
		bp.dropBack(bp.dx, bp.embSeed),
		s.LayerNormBackward(bp.ds.f, none, dIn, bp.s0, bp.mean0, bp.rstd0, w[m.EmbLN.Gamma], N, H, false),
		s.LayerNormParamsBackward(bp.g(m.EmbLN.Gamma), bp.g(m.EmbLN.Beta), dIn, bp.s0, bp.mean0, bp.rstd0, N, H),
		s.EmbeddingBackward(bp.g(m.Word.W), bp.ds.f, bp.ids, bp.b.IDs, H),
		s.EmbeddingBackward(bp.g(m.Position.W), bp.ds.f, bp.posIDs, bp.pos, H),
		s.EmbeddingBackward(bp.g(m.TokenType.W), bp.ds.f, bp.tIDs, bp.types, H))
}

// meanLoss downloads the per-row losses and returns their sum over count.
func (bp *backPass) meanLoss(count int) (float64, error) {
	losses := make([]float32, bp.N)
	if err := cuda.Download(bp.s, losses, bp.rowLoss); err != nil {
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
