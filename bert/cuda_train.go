package bert

import (
	"errors"
	"fmt"
	"math"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/nn"
)

// cudaLayerSaved is what the backward pass of one layer needs from its forward pass.
type cudaLayerSaved struct {
	xin, ctx, x1, hg                                          pair
	qb, kb, vb, lse, s1, mean1, rstd1, hPre, s2, mean2, rstd2 cuda.Buffer
	// Seeds of the attention-probability dropout and of the dropout after the attention
	// output and the feed-forward output, drawn as the CPU's Forward draws them.
	attSeed, aSeed, oSeed uint64
}

// Gradients runs a token-tagging training step's forward and backward passes on the GPU
// (with the model's dropout, drawn from its dropout stream exactly as the CPU's training
// Forward draws it; without the optimiser step): the encoder, then head (labels × H) on
// every position, softmax cross-entropy against tags (B·T, ignore skipped) averaged over the
// counted positions. It returns the loss and the gradient of every encoder parameter and of
// the head's, as host slices. It is the GPU backward checked against the CPU's autograd
// (bert/cuda_test.go); assembling it with the AdamW kernel into a mixed-precision training
// loop is the next step.
func (e *CUDAEncoder) Gradients(b Batch, head *nn.Linear, tags []int32, ignore int32) (float64, map[*autograd.Var][]float32, error) {
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
// encoder's device copies when a CUDATrainer put them there, else they are uploaded.
func (e *CUDAEncoder) backward(b Batch, head *nn.Linear, tags []int32, ignore int32, grads map[*autograd.Var]cuda.Buffer) (float64, error) {
	if err := e.m.validate(b); err != nil {
		return 0, err
	}
	cfg := e.m.Cfg
	B, T, H, I, nh := b.B, b.T, cfg.HiddenSize, cfg.IntermediateSize, cfg.NumAttentionHeads
	N, D, L := B*T, cfg.HiddenSize/cfg.NumAttentionHeads, head.W.Shape()[0]
	if len(tags) != N {
		return 0, fmt.Errorf("bert: GPU gradients: %d tags for a %dx%d batch", len(tags), B, T)
	}
	valid, err := rightPadding(b)
	if err != nil {
		return 0, err
	}
	count := 0
	for _, t := range tags {
		if t != ignore {
			if t < 0 || int(t) >= L {
				return 0, fmt.Errorf("bert: GPU gradients: tag %d outside %d labels", t, L)
			}
			count++
		}
	}
	if count == 0 {
		return 0, errors.New("bert: GPU gradients: every tag is ignored")
	}
	pos, types := positions(b)

	var bufs []cuda.Buffer
	var allocErr error
	s := e.s
	alloc := func(bytes int) cuda.Buffer {
		buf, err := e.c.Alloc(bytes)
		if err == nil {
			err = s.MemsetD8(buf.Ptr, 0, bytes)
		}
		if err != nil && allocErr == nil {
			allocErr = err
		}
		bufs = append(bufs, buf)
		return buf
	}
	defer func() {
		for _, buf := range bufs {
			buf.Free()
		}
	}()
	f32 := func(n int) cuda.Buffer { return alloc(4 * n) }
	bf16 := e.wb != nil
	// act allocates a float32 buffer and, in bf16 mode, its bf16 copy.
	act := func(n int) pair {
		p := pair{f: f32(n)}
		if bf16 {
			p.b = alloc(2 * n)
		}
		return p
	}
	hw, hb, uploadHead := e.w[head.W], e.w[head.B], false
	if hw.Ptr == 0 || hb.Ptr == 0 {
		hw, hb, uploadHead = f32(L*H), f32(L), true
	}
	hwp := pair{f: hw, b: e.wb[head.W]}
	if bf16 && hwp.b.Ptr == 0 {
		hwp.b = alloc(2 * L * H)
	}
	weight := func(p *autograd.Var) pair {
		if p == head.W {
			return hwp
		}
		return e.weight(p)
	}
	w := func(p *autograd.Var) cuda.Buffer {
		switch p {
		case head.W:
			return hw
		case head.B:
			return hb
		}
		return e.w[p]
	}
	g := func(p *autograd.Var) cuda.Buffer { return grads[p] }
	ids, posIDs, typeIDs, vl, tg := f32(N), f32(N), f32(N), f32(B), f32(N)
	emb, s0, mean0, rstd0 := f32(N*H), f32(N*H), f32(N), f32(N)
	saved := make([]cudaLayerSaved, len(e.m.Layers))
	for i := range saved {
		saved[i] = cudaLayerSaved{xin: act(N * H), qb: alloc(2 * N * H), kb: alloc(2 * N * H), vb: alloc(2 * N * H),
			ctx: act(N * H), lse: f32(B * nh * T), s1: f32(N * H), mean1: f32(N), rstd1: f32(N), x1: act(N * H),
			hPre: f32(N * I), hg: act(N * I), s2: f32(N * H), mean2: f32(N), rstd2: f32(N)}
	}
	x, tmp, rowLoss := act(N*H), f32(N*H), f32(N)
	logits := act(N * L)
	dx, dx1, dctx, dctxb, dd := f32(N*H), f32(N*H), f32(N*H), alloc(2*N*H), act(N*H)
	ds, dh, dq, dk, dv := act(N*H), act(N*I), act(N*H), act(N*H), act(N*H)
	if allocErr != nil {
		return 0, allocErr
	}
	var none cuda.Buffer
	eps := float32(cfg.LayerNormEps)
	att := cuda.FlashAttention{B: B, H: nh, T: T, D: D, Scale: float32(1 / math.Sqrt(float64(D))), ValidLen: vl,
		QSB: T * H, QSH: D, QST: H, OSB: T * H, OSH: D, OST: H, GSB: T * H, GSH: D, GST: H}
	// linear: out = in·Wᵀ + bias (bf16 copy when outBF16 is set).
	linear := func(out, outBF16 cuda.Buffer, in pair, l *nn.Linear, inC, outC int) error {
		return errors.Join(e.mm(cuda.Gemm{M: N, N: outC, K: inC, TransB: true}, in, weight(l.W), out), s.BiasAdd(out, outBF16, out, w(l.B), N, outC))
	}
	// linearBack: dW += dOutᵀ·in, db += Σ dOut, and dIn = dIn·beta + dOut·W.
	linearBack := func(dIn cuda.Buffer, dOut, in pair, l *nn.Linear, inC, outC int, beta float32) error {
		return errors.Join(
			e.mm(cuda.Gemm{M: outC, N: inC, K: N, TransA: true, Beta: 1}, dOut, in, g(l.W)),
			s.ColSumF32(g(l.B), dOut.f, N, outC, true),
			e.mm(cuda.Gemm{M: N, N: inC, K: outC, Beta: beta}, dOut, weight(l.W), dIn))
	}
	// toBF16 refreshes p's bf16 copy of n values (bf16 mode only).
	toBF16 := func(p pair, n int) error {
		if !bf16 {
			return nil
		}
		return s.F32ToBF16(p.b, p.f, n)
	}
	copyBuf := func(dst, src cuda.Buffer, n int) error { return s.CopyDtoDAsync(dst.Ptr, src.Ptr, 4*n) }
	copyPair := func(dst, src pair, n int) error {
		if err := copyBuf(dst.f, src.f, n); err != nil || !bf16 {
			return err
		}
		return s.CopyDtoDAsync(dst.b.Ptr, src.b.Ptr, 2*n)
	}

	err = errors.Join(cuda.Upload(s, ids, b.IDs), cuda.Upload(s, posIDs, pos), cuda.Upload(s, typeIDs, types),
		cuda.Upload(s, vl, valid), cuda.Upload(s, tg, tags))
	if err == nil && uploadHead {
		err = errors.Join(cuda.Upload(s, hw, head.W.Value.Contiguous().Data()), cuda.Upload(s, hb, head.B.Value.Contiguous().Data()))
	}
	if err == nil && bf16 && hwp.b.Ptr != e.wb[head.W].Ptr {
		err = s.F32ToBF16(hwp.b, hw, L*H)
	}
	// Dropout as the CPU's training Forward applies it, with the same seeds from the model's
	// dropout stream and the same masks (kernels.DropoutMask's generator).
	pH, pA := e.m.Dropout.P, float32(cfg.AttentionProbsDropoutProb)
	if pA > 0 && D != 32 && D != 64 {
		return 0, fmt.Errorf("bert: GPU gradients: attention dropout needs heads of 32 or 64 dimensions, not %d", D)
	}
	drop := func(buf cuda.Buffer, seed uint64) error {
		if pH == 0 {
			return nil
		}
		return s.DropoutForwardSplitMix(buf, none, buf, N*H, pH, seed, 0)
	}
	// dropBack writes the gradient through a dropout into dd; gradThrough says which pair
	// then holds it (src itself without dropout).
	dropBack := func(src cuda.Buffer, seed uint64) error {
		if pH == 0 {
			return nil
		}
		return errors.Join(s.DropoutBackwardSplitMix(dd.f, src, N*H, pH, seed, 0), toBF16(dd, N*H))
	}
	gradThrough := func(src pair) pair {
		if pH == 0 {
			return src
		}
		return dd
	}
	var embSeed uint64
	if pH > 0 {
		embSeed = e.m.Dropout.NextSeed()
	}
	for i := range saved {
		saved[i].attSeed = e.m.Dropout.NextSeed()
		if pH > 0 {
			saved[i].aSeed, saved[i].oSeed = e.m.Dropout.NextSeed(), e.m.Dropout.NextSeed()
		}
	}
	// Forward, saving what the backward needs.
	if err == nil {
		err = errors.Join(
			s.EmbeddingForward(emb, w(e.m.Word.W), ids, N, H, false),
			s.EmbeddingForward(emb, w(e.m.Position.W), posIDs, N, H, true),
			s.EmbeddingForward(emb, w(e.m.TokenType.W), typeIDs, N, H, true),
			s.LayerNormForward(x.f, x.b, s0, mean0, rstd0, emb, none, w(e.m.EmbLN.Gamma), w(e.m.EmbLN.Beta), N, H, eps))
	}
	if err == nil && pH > 0 {
		err = errors.Join(drop(x.f, embSeed), toBF16(x, N*H))
	}
	for li, l := range e.m.Layers {
		if err != nil {
			break
		}
		sv := saved[li]
		attL := att
		attL.DropP, attL.Seed = pA, sv.attSeed
		err = errors.Join(
			copyPair(sv.xin, x, N*H),
			linear(tmp, sv.qb, x, l.Query, H, H), linear(tmp, sv.kb, x, l.Key, H, H), linear(tmp, sv.vb, x, l.Value, H, H),
			s.FlashAttentionForward(attL, sv.qb, sv.kb, sv.vb, sv.ctx.b, sv.ctx.f, sv.lse),
			linear(tmp, none, sv.ctx, l.AttnOut, H, H),
			drop(tmp, sv.aSeed),
			s.LayerNormForward(sv.x1.f, sv.x1.b, sv.s1, sv.mean1, sv.rstd1, tmp, x.f, w(l.AttnLN.Gamma), w(l.AttnLN.Beta), N, H, eps),
			e.mm(cuda.Gemm{M: N, N: I, K: H, TransB: true}, sv.x1, weight(l.Intermediate.W), sv.hPre),
			s.BiasGeluForward(sv.hPre, sv.hg.f, sv.hg.b, sv.hPre, w(l.Intermediate.B), N, I),
			linear(tmp, none, sv.hg, l.Output, I, H),
			drop(tmp, sv.oSeed),
			s.LayerNormForward(x.f, x.b, sv.s2, sv.mean2, sv.rstd2, tmp, sv.x1.f, w(l.OutLN.Gamma), w(l.OutLN.Beta), N, H, eps))
	}
	// Head and loss; dlogits overwrite the logits.
	if err == nil {
		err = errors.Join(linear(logits.f, none, x, head, H, L),
			s.SoftmaxXent(rowLoss, logits.f, logits.f, tg, N, L, int(ignore), 1/float32(count)),
			toBF16(logits, N*L),
			linearBack(dx, logits, x, head, H, L, 0))
	}
	// Backward through the layers; dx holds the gradient of the current layer's output.
	for li := len(e.m.Layers) - 1; li >= 0 && err == nil; li-- {
		l, sv := e.m.Layers[li], saved[li]
		attL := att
		attL.DropP, attL.Seed = pA, sv.attSeed
		err = errors.Join(
			s.LayerNormBackward(ds.f, ds.b, dx, sv.s2, sv.mean2, sv.rstd2, w(l.OutLN.Gamma), N, H, false),
			s.LayerNormParamsBackward(g(l.OutLN.Gamma), g(l.OutLN.Beta), dx, sv.s2, sv.mean2, sv.rstd2, N, H),
			dropBack(ds.f, sv.oSeed),
			linearBack(dh.f, gradThrough(ds), sv.hg, l.Output, I, H, 0),
			s.BiasGeluBackward(dh.f, dh.b, dh.f, sv.hPre, N, I, false),
			s.ColSumF32(g(l.Intermediate.B), dh.f, N, I, true),
			e.mm(cuda.Gemm{M: I, N: H, K: N, TransA: true, Beta: 1}, dh, sv.x1, g(l.Intermediate.W)),
			copyBuf(dx1, ds.f, N*H),
			e.mm(cuda.Gemm{M: N, N: H, K: I, Beta: 1}, dh, weight(l.Intermediate.W), dx1),
			s.LayerNormBackward(ds.f, ds.b, dx1, sv.s1, sv.mean1, sv.rstd1, w(l.AttnLN.Gamma), N, H, false),
			s.LayerNormParamsBackward(g(l.AttnLN.Gamma), g(l.AttnLN.Beta), dx1, sv.s1, sv.mean1, sv.rstd1, N, H),
			dropBack(ds.f, sv.aSeed),
			linearBack(dctx, gradThrough(ds), sv.ctx, l.AttnOut, H, H, 0),
			s.F32ToBF16(dctxb, dctx, N*H),
			s.FlashAttentionBackward(attL, dq.f, dk.f, dv.f, sv.qb, sv.kb, sv.vb, none, sv.ctx.f, dctxb, sv.lse),
			toBF16(dq, N*H), toBF16(dk, N*H), toBF16(dv, N*H),
			copyBuf(dx, ds.f, N*H),
			linearBack(dx, dq, sv.xin, l.Query, H, H, 1),
			linearBack(dx, dk, sv.xin, l.Key, H, H, 1),
			linearBack(dx, dv, sv.xin, l.Value, H, H, 1))
	}
	if err == nil {
		dIn := dx
		if pH > 0 {
			dIn = dd.f
		}
		err = errors.Join(
			dropBack(dx, embSeed),
			s.LayerNormBackward(ds.f, none, dIn, s0, mean0, rstd0, w(e.m.EmbLN.Gamma), N, H, false),
			s.LayerNormParamsBackward(g(e.m.EmbLN.Gamma), g(e.m.EmbLN.Beta), dIn, s0, mean0, rstd0, N, H),
			s.EmbeddingBackward(g(e.m.Word.W), ds.f, ids, b.IDs, H),
			s.EmbeddingBackward(g(e.m.Position.W), ds.f, posIDs, pos, H),
			s.EmbeddingBackward(g(e.m.TokenType.W), ds.f, typeIDs, types, H))
	}
	if err != nil {
		return 0, fmt.Errorf("bert: GPU gradients: %w", err)
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

// CUDATrainer trains an encoder and a token-tagging head on the GPU: each Step runs
// CUDAEncoder's forward and backward passes and the fused multi-tensor AdamW kernel over
// float32 master weights and moments kept on the device (decoupled weight decay except for
// the parameters noDecay names, as nn.AdamW with NoDecay). Sync copies the weights back into
// the model's parameters. Steps apply the model's dropout as the CPU does.
type CUDATrainer struct {
	e      *CUDAEncoder
	head   *nn.Linear
	grads  map[*autograd.Var]cuda.Buffer
	extra  []cuda.Buffer
	table  *cuda.AdamTable
	params []*autograd.Var
	// HP holds the learning rate, betas, epsilon and weight decay; HP.Step counts the steps.
	HP kernels.AdamParams
}

// NewCUDATrainer puts head's weights, every gradient and the AdamW moments on e's device.
func NewCUDATrainer(e *CUDAEncoder, head *nn.Linear, lr, weightDecay float64, noDecay func(name string) bool) (*CUDATrainer, error) {
	t := &CUDATrainer{e: e, head: head, grads: map[*autograd.Var]cuda.Buffer{},
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
func (t *CUDATrainer) Step(b Batch, tags []int32, ignore int32) (float64, error) {
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
		return 0, fmt.Errorf("bert: GPU AdamW: %w", err)
	}
	return loss, nil
}

// Sync copies the device weights into the model's and the head's parameters.
func (t *CUDATrainer) Sync() error {
	for _, p := range t.params {
		if err := cuda.Download(t.e.s, p.Value.Data(), t.e.w[p]); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the trainer's device memory (the head's weights, gradients, moments, table).
func (t *CUDATrainer) Close() {
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
