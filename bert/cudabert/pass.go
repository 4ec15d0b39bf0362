package cudabert

import (
	"errors"
	"fmt"
	"math"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/nn"
)

// layerSaved is what the backward pass of one layer needs from its forward pass. In
// inference every layer shares one set, overwritten layer by layer.
type layerSaved struct {
	xin, ctx, x1, hg                                          pair
	qb, kb, vb, lse, s1, mean1, rstd1, hPre, s2, mean2, rstd2 cuda.Buffer
	// Seeds of the attention-probability dropout and of the dropout after the attention
	// output and the feed-forward output, drawn as the CPU's Forward draws them.
	attSeed, aSeed, oSeed uint64
}

// pass is one batch's encoder pass on the GPU: its inputs, activations and, in training,
// what the backward needs. Forward and the training step both run it.
type pass struct {
	e                 *Encoder
	s                 *cuda.Stream
	b                 bert.Batch
	train, bf16       bool
	N, H, I           int
	pos, types        []int32
	bufs              []cuda.Buffer
	allocErr          error
	ids, posIDs, tIDs cuda.Buffer
	emb, s0, tmp      cuda.Buffer
	mean0, rstd0      cuda.Buffer
	x                 pair
	saved             []layerSaved
	att               cuda.FlashAttention
	// pH and pA are the hidden and attention dropout (training only); embSeed the seed of the
	// dropout after the embeddings.
	pH, pA  float32
	embSeed uint64
}

// newPass checks b, allocates the pass's buffers (zeroed), uploads the inputs and, in training,
// draws the dropout seeds from the model's stream in the order of the CPU's Forward.
func (e *Encoder) newPass(b bert.Batch, train bool) (*pass, error) {
	if err := e.m.Validate(b); err != nil {
		return nil, err
	}
	valid, err := rightPadding(b)
	if err != nil {
		return nil, err
	}
	cfg := e.m.Cfg
	p := &pass{e: e, s: e.s, b: b, train: train, bf16: e.wb != nil, N: b.B * b.T, H: cfg.HiddenSize, I: cfg.IntermediateSize}
	p.pos, p.types = positions(b)
	N, H, I, B, T, nh := p.N, p.H, p.I, b.B, b.T, cfg.NumAttentionHeads
	D := H / nh
	p.ids, p.posIDs, p.tIDs = p.f32(N), p.f32(N), p.f32(N)
	vl := p.f32(B)
	p.emb, p.s0, p.tmp, p.mean0, p.rstd0 = p.f32(N*H), p.f32(N*H), p.f32(N*H), p.f32(N), p.f32(N)
	p.x = p.act(N * H)
	slot := func() layerSaved {
		return layerSaved{xin: p.act(N * H), qb: p.alloc(2 * N * H), kb: p.alloc(2 * N * H), vb: p.alloc(2 * N * H),
			ctx: p.act(N * H), lse: p.f32(B * nh * T), s1: p.f32(N * H), mean1: p.f32(N), rstd1: p.f32(N), x1: p.act(N * H),
			hPre: p.f32(N * I), hg: p.act(N * I), s2: p.f32(N * H), mean2: p.f32(N), rstd2: p.f32(N)}
	}
	p.saved = make([]layerSaved, len(e.m.Layers))
	var shared layerSaved
	if !train {
		shared = slot()
	}
	for i := range p.saved {
		if train {
			p.saved[i] = slot()
		} else {
			p.saved[i] = shared
		}
	}
	if p.allocErr != nil {
		p.free()
		return nil, p.allocErr
	}
	p.att = cuda.FlashAttention{B: B, H: nh, T: T, D: D, Scale: float32(1 / math.Sqrt(float64(D))), ValidLen: vl,
		QSB: T * H, QSH: D, QST: H, OSB: T * H, OSH: D, OST: H, GSB: T * H, GSH: D, GST: H}
	if train {
		p.pH, p.pA = e.m.Dropout.P, float32(cfg.AttentionProbsDropoutProb)
		if p.pA > 0 && D != 32 && D != 64 {
			p.free()
			return nil, fmt.Errorf("cudabert: GPU encoder: attention dropout needs heads of 32 or 64 dimensions, not %d", D)
		}
		if p.pH > 0 {
			p.embSeed = e.m.Dropout.NextSeed()
		}
		for i := range p.saved {
			p.saved[i].attSeed = e.m.Dropout.NextSeed()
			if p.pH > 0 {
				p.saved[i].aSeed, p.saved[i].oSeed = e.m.Dropout.NextSeed(), e.m.Dropout.NextSeed()
			}
		}
	}
	if err := errors.Join(cuda.Upload(p.s, p.ids, b.IDs), cuda.Upload(p.s, p.posIDs, p.pos),
		cuda.Upload(p.s, p.tIDs, p.types), cuda.Upload(p.s, vl, valid)); err != nil {
		p.free()
		return nil, err
	}
	return p, nil
}

// alloc returns a zeroed device buffer freed with the pass (the first error is kept).
func (p *pass) alloc(bytes int) cuda.Buffer {
	buf, err := p.e.c.Alloc(bytes)
	if err == nil {
		err = p.s.MemsetD8(buf.Ptr, 0, bytes)
	}
	if err != nil && p.allocErr == nil {
		p.allocErr = err
	}
	p.bufs = append(p.bufs, buf)
	return buf
}

func (p *pass) f32(n int) cuda.Buffer { return p.alloc(4 * n) }

// act allocates a float32 activation and, in bf16 mode, its bf16 copy.
func (p *pass) act(n int) pair {
	a := pair{f: p.f32(n)}
	if p.bf16 {
		a.b = p.alloc(2 * n)
	}
	return a
}

func (p *pass) free() {
	for _, b := range p.bufs {
		b.Free()
	}
	p.bufs = nil
}

// linear computes out = in·Wᵀ + bias over the pass's N rows, with a bf16 copy when outBF16 is
// set.
func (p *pass) linear(out, outBF16 cuda.Buffer, in, w pair, bias cuda.Buffer, inC, outC int) error {
	return errors.Join(p.e.mm(cuda.Gemm{M: p.N, N: outC, K: inC, TransB: true}, in, w, out), p.s.BiasAdd(out, outBF16, out, bias, p.N, outC))
}

// lin is linear for one of the model's layers.
func (p *pass) lin(out, outBF16 cuda.Buffer, in pair, l *nn.Linear, inC, outC int) error {
	return p.linear(out, outBF16, in, p.e.weight(l.W), p.e.w[l.B], inC, outC)
}

// drop applies the hidden dropout with seed to buf in place (training only).
func (p *pass) drop(buf cuda.Buffer, seed uint64) error {
	if p.pH == 0 {
		return nil
	}
	return p.s.DropoutForwardSplitMix(buf, cuda.Buffer{}, buf, p.N*p.H, p.pH, seed, 0)
}

// toBF16 refreshes a's bf16 copy of n values (bf16 mode only).
func (p *pass) toBF16(a pair, n int) error {
	if !p.bf16 {
		return nil
	}
	return p.s.F32ToBF16(a.b, a.f, n)
}

// copyPair copies n values of src into dst, with the bf16 copy in bf16 mode.
func (p *pass) copyPair(dst, src pair, n int) error {
	if err := p.s.CopyDtoDAsync(dst.f.Ptr, src.f.Ptr, 4*n); err != nil || !p.bf16 {
		return err
	}
	return p.s.CopyDtoDAsync(dst.b.Ptr, src.b.Ptr, 2*n)
}

// forward runs the embeddings and every layer; p.x holds the last hidden state after it. In
// training it keeps each layer's input and intermediates and applies dropout. When tr is not
// nil, each stage's hidden state is copied into it as bert.Model.Trace records it.
func (p *pass) forward(tr *bert.Trace) error {
	err := p.embeddings()
	if err == nil && tr != nil {
		tr.Embeddings, err = p.download(p.x.f)
	}
	for li := range p.e.m.Layers {
		if err == nil {
			err = p.attentionBlock(li)
		}
		if err == nil && tr != nil {
			var a []float32
			a, err = p.download(p.saved[li].x1.f)
			tr.Attention = append(tr.Attention, a)
		}
		if err == nil {
			err = p.feedForwardBlock(li)
		}
		if err == nil && tr != nil {
			var o []float32
			o, err = p.download(p.x.f)
			tr.Layers = append(tr.Layers, o)
		}
	}
	return err
}

// download copies a (B·T, H) float32 activation to the host.
func (p *pass) download(buf cuda.Buffer) ([]float32, error) {
	host := make([]float32, p.N*p.H)
	return host, cuda.Download(p.s, host, buf)
}

// embeddings writes LayerNorm(word + position + token type embeddings) into p.x, with the
// dropout after it in training.
func (p *pass) embeddings() error {
	m, s, N, H := p.e.m, p.s, p.N, p.H
	w := func(v *autograd.Var) cuda.Buffer { return p.e.w[v] }
	var none cuda.Buffer
	err := errors.Join(
		s.EmbeddingForward(p.emb, w(m.Word.W), p.ids, N, H, false),
		s.EmbeddingForward(p.emb, w(m.Position.W), p.posIDs, N, H, true),
		s.EmbeddingForward(p.emb, w(m.TokenType.W), p.tIDs, N, H, true),
		s.LayerNormForward(p.x.f, p.x.b, p.s0, p.mean0, p.rstd0, p.emb, none, w(m.EmbLN.Gamma), w(m.EmbLN.Beta), N, H, float32(m.Cfg.LayerNormEps)))
	if err == nil && p.pH > 0 {
		err = errors.Join(p.drop(p.x.f, p.embSeed), p.toBF16(p.x, N*H))
	}
	return err
}

// attentionBlock runs layer li's self-attention on p.x: x1 = LayerNorm(dropout(AttnOut(
// attention(Q, K, V))) + x), into the layer's saved x1 (its input saved first in training).
func (p *pass) attentionBlock(li int) error {
	l, sv, s, N, H := p.e.m.Layers[li], p.saved[li], p.s, p.N, p.H
	att := p.att
	att.DropP, att.Seed = p.pA, sv.attSeed
	var err error
	if p.train {
		err = p.copyPair(sv.xin, p.x, N*H)
	}
	var none cuda.Buffer
	return errors.Join(err,
		p.lin(p.tmp, sv.qb, p.x, l.Query, H, H), p.lin(p.tmp, sv.kb, p.x, l.Key, H, H), p.lin(p.tmp, sv.vb, p.x, l.Value, H, H),
		s.FlashAttentionForward(att, sv.qb, sv.kb, sv.vb, sv.ctx.b, sv.ctx.f, sv.lse),
		p.lin(p.tmp, none, sv.ctx, l.AttnOut, H, H),
		p.drop(p.tmp, sv.aSeed),
		s.LayerNormForward(sv.x1.f, sv.x1.b, sv.s1, sv.mean1, sv.rstd1, p.tmp, p.x.f, p.e.w[l.AttnLN.Gamma], p.e.w[l.AttnLN.Beta], N, H, float32(p.e.m.Cfg.LayerNormEps)))
}

// feedForwardBlock runs layer li's feed-forward block on its x1: p.x = LayerNorm(dropout(
// Output(GELU(Intermediate(x1)))) + x1).
func (p *pass) feedForwardBlock(li int) error {
	l, sv, s, N, H, I := p.e.m.Layers[li], p.saved[li], p.s, p.N, p.H, p.I
	var none cuda.Buffer
	return errors.Join(
		p.e.mm(cuda.Gemm{M: N, N: I, K: H, TransB: true}, sv.x1, p.e.weight(l.Intermediate.W), sv.hPre),
		s.BiasGeluForward(sv.hPre, sv.hg.f, sv.hg.b, sv.hPre, p.e.w[l.Intermediate.B], N, I),
		p.lin(p.tmp, none, sv.hg, l.Output, I, H),
		p.drop(p.tmp, sv.oSeed),
		s.LayerNormForward(p.x.f, p.x.b, sv.s2, sv.mean2, sv.rstd2, p.tmp, sv.x1.f, p.e.w[l.OutLN.Gamma], p.e.w[l.OutLN.Beta], N, H, float32(p.e.m.Cfg.LayerNormEps)))
}
