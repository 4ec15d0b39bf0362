package cudabert

import (
	"errors"
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/nn"
)

// HeadKind is what a task head computes from the encoder's last hidden state, and its loss.
type HeadKind int

const (
	// TokenHead is dropout then a linear layer at every position; softmax cross-entropy over
	// the positions whose tag is not the ignore label (NER).
	TokenHead HeadKind = iota + 1
	// ClassHead is dropout then a linear layer on the [CLS] vector; softmax cross-entropy over
	// the sequences (pair and single-text classification).
	ClassHead
	// ScoreHead is dropout then a linear layer of one output on the [CLS] vector;
	// mean-squared error over the sequences (regression).
	ScoreHead
	// MaskedLMHead is the model's MLM head at the masked positions only: their hidden states
	// are gathered first, then dense, GELU, LayerNorm and the decoder tied to the word
	// embeddings (bias cls.predictions.bias); softmax cross-entropy over the masked positions.
	MaskedLMHead
)

// TaskHead is one task's head for a GPU training step: Linear and Drop (dropout before it,
// drawn from its own stream as the CPU's Dropout.Forward draws it), or MLM.
type TaskHead struct {
	Kind   HeadKind
	Linear *nn.Linear
	Drop   *nn.Dropout
	MLM    *bert.MLMHead
}

// params returns the head's parameters whose gradients the GPU step computes (an MLM
// head's decoder is the word embeddings, an encoder parameter).
func (h TaskHead) params() []*autograd.Var {
	if h.Kind == MaskedLMHead {
		return []*autograd.Var{h.MLM.Dense.W, h.MLM.Dense.B, h.MLM.LN.Gamma, h.MLM.LN.Beta, h.MLM.Bias}
	}
	return []*autograd.Var{h.Linear.W, h.Linear.B}
}

// TaskBatch is one batch of a task with its targets: Tags (B·T, TokenHead and MaskedLMHead,
// Ignore where untrained), Classes (B, ClassHead) or Scores (B, ScoreHead).
type TaskBatch struct {
	Enc     bert.Batch
	Tags    []int32
	Classes []int32
	Scores  []float32
	Ignore  int32
}

// Targets returns how many targets the batch's loss averages over: the tags that are not
// Ignore, or the sequences.
func (tb *TaskBatch) Targets(k HeadKind) int {
	if k != TokenHead && k != MaskedLMHead {
		return tb.Enc.B
	}
	n := 0
	for _, t := range tb.Tags {
		if t != tb.Ignore {
			n++
		}
	}
	return n
}

// check validates the targets against the batch and the head.
func (tb *TaskBatch) check(h TaskHead, V int) error {
	b := tb.Enc
	switch h.Kind {
	case TokenHead, MaskedLMHead:
		if len(tb.Tags) != b.B*b.T {
			return fmt.Errorf("%d tags for a %dx%d batch", len(tb.Tags), b.B, b.T)
		}
		L := V
		if h.Kind == TokenHead {
			L = h.Linear.W.Shape()[0]
		}
		for _, t := range tb.Tags {
			if t != tb.Ignore && (t < 0 || int(t) >= L) {
				return fmt.Errorf("target %d outside %d outputs", t, L)
			}
		}
	case ClassHead:
		if len(tb.Classes) != b.B {
			return fmt.Errorf("%d labels for %d sequences", len(tb.Classes), b.B)
		}
		for _, c := range tb.Classes {
			if c < 0 || int(c) >= h.Linear.W.Shape()[0] {
				return fmt.Errorf("label %d outside %d outputs", c, h.Linear.W.Shape()[0])
			}
		}
	case ScoreHead:
		if len(tb.Scores) != b.B || h.Linear.W.Shape()[0] != 1 {
			return fmt.Errorf("%d scores for %d sequences and a head of %d outputs", len(tb.Scores), b.B, h.Linear.W.Shape()[0])
		}
	default:
		return fmt.Errorf("unknown head kind %d", h.Kind)
	}
	return nil
}

// newLayerBack allocates the backward buffers of the encoder's layers (freed with p).
func newLayerBack(p *pass, grads map[*autograd.Var]cuda.Buffer) (*backPass, error) {
	N, H, I := p.N, p.H, p.I
	bp := &backPass{pass: p, grads: grads}
	bp.dx, bp.dx1, bp.dctx, bp.dctxb, bp.dd = p.f32(N*H), p.f32(N*H), p.f32(N*H), p.alloc(2*N*H), p.act(N*H)
	bp.ds, bp.dh, bp.dq, bp.dk, bp.dv = p.act(N*H), p.act(N*I), p.act(N*H), p.act(N*H), p.act(N*H)
	return bp, p.allocErr
}

// taskBackward runs one batch of a task step: the encoder forward (drawing the model's
// dropout seeds as the CPU's Forward does), head h forward and its loss with gradients scaled
// by scale, and the backward through head and encoder, accumulating every parameter's
// gradient into grads. It returns the sum of the batch's per-target losses. A masked-LM batch
// with nothing masked only draws the encoder's seeds (the CPU's forward draws them, then has
// no loss to back-propagate).
func (e *Encoder) taskBackward(tb *TaskBatch, h TaskHead, scale float32, grads map[*autograd.Var]cuda.Buffer) (float64, error) {
	if err := tb.check(h, e.m.Cfg.VocabSize); err != nil {
		return 0, fmt.Errorf("cudabert: GPU training step: %w", err)
	}
	p, err := e.newPass(tb.Enc, true)
	if err != nil {
		return 0, err
	}
	defer p.free()
	if h.Kind == MaskedLMHead && tb.Targets(h.Kind) == 0 {
		return 0, nil
	}
	bp, err := newLayerBack(p, grads)
	if err != nil {
		return 0, err
	}
	err = p.forward(nil)
	var loss float64
	if err == nil {
		loss, err = bp.headStep(h, tb, scale)
	}
	for li := len(e.m.Layers) - 1; li >= 0 && err == nil; li-- {
		err = errors.Join(bp.feedForwardBackward(li), bp.attentionBackward(li))
	}
	if err == nil {
		err = bp.embeddingsBackward()
	}
	if err != nil {
		return 0, fmt.Errorf("cudabert: GPU training step: %w", err)
	}
	return loss, nil
}

// gemm runs a float32 GEMM (the heads' small products stay in float32 in both modes).
func (bp *backPass) gemm(g cuda.Gemm, a, b, c cuda.Buffer) error {
	g.Alpha = 1
	return bp.s.GemmF32(g, a, b, c)
}

// headStep runs head h on the last hidden state bp.x and its loss, then the head's backward:
// its parameters' gradients, and bp.dx, the last hidden state's gradient. It returns the sum
// of the per-target losses.
func (bp *backPass) headStep(h TaskHead, tb *TaskBatch, scale float32) (float64, error) {
	if h.Kind == MaskedLMHead {
		return bp.mlmStep(h.MLM, tb, scale)
	}
	s, N, H, B, T := bp.s, bp.N, bp.H, tb.Enc.B, tb.Enc.T
	L := h.Linear.W.Shape()[0]
	w, bias := bp.e.w[h.Linear.W], bp.e.w[h.Linear.B]
	gW, gB := bp.g(h.Linear.W), bp.g(h.Linear.B)
	var none cuda.Buffer
	// in is the head's input: every position's hidden state, or the [CLS] rows gathered.
	rows, in := N, bp.x.f
	var idx cuda.Buffer
	var hostIdx []int32
	var err error
	if h.Kind != TokenHead {
		rows, in, idx = B, bp.f32(B*H), bp.f32(B)
		hostIdx = make([]int32, B)
		for r := range hostIdx {
			hostIdx[r] = int32(r * T)
		}
		if bp.allocErr == nil {
			err = errors.Join(cuda.Upload(s, idx, hostIdx), s.EmbeddingForward(in, bp.x.f, idx, B, H, false))
		}
	}
	drop := h.Drop != nil && h.Drop.P > 0
	var seed uint64
	xd := in
	if drop {
		seed = h.Drop.NextSeed()
		xd = bp.f32(rows * H)
	}
	logits, tg, rowLoss := bp.f32(rows*L), bp.f32(rows), bp.f32(rows)
	if bp.allocErr != nil {
		return 0, bp.allocErr
	}
	if drop {
		err = errors.Join(err, s.DropoutForwardSplitMix(xd, none, in, rows*H, h.Drop.P, seed, 0))
	}
	err = errors.Join(err,
		bp.gemm(cuda.Gemm{M: rows, N: L, K: H, TransB: true}, xd, w, logits),
		s.BiasAdd(logits, none, logits, bias, rows, L))
	if err != nil {
		return 0, err
	}
	var loss float64
	switch h.Kind {
	case TokenHead, ClassHead:
		targets := tb.Tags
		if h.Kind == ClassHead {
			targets = tb.Classes
		}
		err = errors.Join(cuda.Upload(s, tg, targets), s.SoftmaxXent(rowLoss, logits, logits, tg, rows, L, int(tb.Ignore), scale))
		if err == nil {
			loss, err = sumDownload(s, rowLoss, rows)
		}
	case ScoreHead:
		// The mean-squared error of B scores, on the host as autograd's MSE computes it.
		z := make([]float32, rows)
		if err = cuda.Download(s, z, logits); err != nil {
			return 0, err
		}
		for i, v := range z {
			d := float64(v) - float64(tb.Scores[i])
			loss += d * d
			z[i] = 2 * scale * (v - tb.Scores[i])
		}
		err = cuda.Upload(s, logits, z)
	}
	// logits now holds dlogits; dxd is the gradient of the linear layer's input, dIn of the
	// head's input (the same buffer without dropout).
	dIn := bp.dx
	if h.Kind != TokenHead {
		dIn = bp.f32(rows * H)
	}
	dxd := dIn
	if drop {
		dxd = bp.f32(rows * H)
	}
	if bp.allocErr != nil {
		return 0, bp.allocErr
	}
	err = errors.Join(err,
		bp.gemm(cuda.Gemm{M: L, N: H, K: rows, TransA: true, Beta: 1}, logits, xd, gW),
		s.ColSumF32(gB, logits, rows, L, true),
		bp.gemm(cuda.Gemm{M: rows, N: H, K: L}, logits, w, dxd))
	if drop {
		err = errors.Join(err, s.DropoutBackwardSplitMix(dIn, dxd, rows*H, h.Drop.P, seed, 0))
	}
	if h.Kind != TokenHead {
		// Scatter the [CLS] rows' gradient into the (otherwise zero) last hidden state's.
		err = errors.Join(err, s.MemsetD8(bp.dx.Ptr, 0, 4*N*H), s.EmbeddingBackward(bp.dx, dIn, idx, hostIdx, H))
	}
	return loss, err
}

// mlmStep is headStep for the MLM head: the masked positions' hidden states are gathered,
// transformed (dense, GELU, LayerNorm) and projected on the vocabulary by the word
// embeddings (bf16 in mixed precision), with softmax cross-entropy; the backward scatters the
// gathered rows' gradient into bp.dx and adds the decoder's into the word embeddings'.
func (bp *backPass) mlmStep(h *bert.MLMHead, tb *TaskBatch, scale float32) (float64, error) {
	s, N, H := bp.s, bp.N, bp.H
	V := h.Decoder.Shape()[0]
	pos, targets := make([]int32, 0, 16), make([]int32, 0, 16)
	for i, t := range tb.Tags {
		if t != tb.Ignore {
			pos, targets = append(pos, int32(i)), append(targets, t)
		}
	}
	M := len(pos)
	w := bp.e.w
	var none cuda.Buffer
	idx, tg, rowLoss := bp.f32(M), bp.f32(M), bp.f32(M)
	hm, hPre, g, sv, mean, rstd := bp.f32(M*H), bp.f32(M*H), bp.f32(M*H), bp.f32(M*H), bp.f32(M), bp.f32(M)
	ln, logits := bp.act(M*H), bp.act(M*V)
	dln, dg, dhm := bp.f32(M*H), bp.f32(M*H), bp.f32(M*H)
	if bp.allocErr != nil {
		return 0, bp.allocErr
	}
	dec := bp.e.weight(h.Decoder)
	if bp.bf16 && dec.b.Ptr == 0 {
		return 0, errors.New("MLM decoder has no bf16 copy (MultiTrainer makes one)")
	}
	err := errors.Join(
		cuda.Upload(s, idx, pos), cuda.Upload(s, tg, targets),
		s.EmbeddingForward(hm, bp.x.f, idx, M, H, false),
		bp.gemm(cuda.Gemm{M: M, N: H, K: H, TransB: true}, hm, w[h.Dense.W], hPre),
		s.BiasGeluForward(hPre, g, none, hPre, w[h.Dense.B], M, H),
		s.LayerNormForward(ln.f, ln.b, sv, mean, rstd, g, none, w[h.LN.Gamma], w[h.LN.Beta], M, H, h.LN.Eps),
		bp.e.mm(cuda.Gemm{M: M, N: V, K: H, TransB: true}, ln, dec, logits.f),
		s.BiasAdd(logits.f, none, logits.f, w[h.Bias], M, V),
		s.SoftmaxXent(rowLoss, logits.f, logits.f, tg, M, V, int(tb.Ignore), scale),
		bp.toBF16(logits, M*V))
	if err != nil {
		return 0, err
	}
	loss, err := sumDownload(s, rowLoss, M)
	return loss, errors.Join(err,
		s.ColSumF32(bp.g(h.Bias), logits.f, M, V, true),
		bp.e.mm(cuda.Gemm{M: V, N: H, K: M, TransA: true, Beta: 1}, logits, ln, bp.g(h.Decoder)),
		bp.e.mm(cuda.Gemm{M: M, N: H, K: V}, logits, dec, dln),
		s.LayerNormBackward(dg, none, dln, sv, mean, rstd, w[h.LN.Gamma], M, H, false),
		s.LayerNormParamsBackward(bp.g(h.LN.Gamma), bp.g(h.LN.Beta), dln, sv, mean, rstd, M, H),
		s.BiasGeluBackward(dg, none, dg, hPre, M, H, false),
		s.ColSumF32(bp.g(h.Dense.B), dg, M, H, true),
		bp.gemm(cuda.Gemm{M: H, N: H, K: M, TransA: true, Beta: 1}, dg, hm, bp.g(h.Dense.W)),
		bp.gemm(cuda.Gemm{M: M, N: H, K: H}, dg, w[h.Dense.W], dhm),
		s.MemsetD8(bp.dx.Ptr, 0, 4*N*H),
		s.EmbeddingBackward(bp.dx, dhm, idx, pos, H))
}

// sumDownload downloads n float32 values and returns their sum.
func sumDownload(s *cuda.Stream, buf cuda.Buffer, n int) (float64, error) {
	host := make([]float32, n)
	if err := cuda.Download(s, host, buf); err != nil {
		return 0, err
	}
	var sum float64
	for _, v := range host {
		sum += float64(v)
	}
	return sum, nil
}
