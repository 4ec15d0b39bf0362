package cudabert

import (
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/tensor"
)

// Encoder runs a model's encoder for inference on a CUDA device, with the kernels of
// kernels/cuda: embedding gathers, float32 GEMMs, the bias adds writing bf16 copies of Q, K and
// V, fused FlashAttention-2 style attention (bf16 inputs, float32 softmax and output), LayerNorm
// fused with the residual add, and bias+GELU. The weights stay in float32 on the device; only
// the attention's inputs are rounded to bf16, so results agree with the CPU within bf16
// tolerances (see UseBF16 for mixed precision, Trainer for training). An Encoder is not safe
// for concurrent use.
type Encoder struct {
	m *bert.Model
	c *cuda.Context
	s *cuda.Stream
	w map[*autograd.Var]cuda.Buffer
	// wb holds bf16 copies of the linear layers' weights once UseBF16 was called: every GEMM
	// then takes bf16 inputs on the tensor-core kernel and accumulates in float32.
	wb map[*autograd.Var]cuda.Buffer
}

// pair is a float32 device buffer and, in bf16 mode, its bf16 copy (a GEMM's input).
type pair struct{ f, b cuda.Buffer }

// UseBF16 switches the encoder to mixed precision: bf16 copies of the linear layers' weights
// (made now, and refreshed by Trainer after every update) and of the activations that feed
// a GEMM, the tensor-core GEMM (bf16 inputs, float32 accumulation and output), float32 master
// weights, LayerNorm, softmax and reductions.
func (e *Encoder) UseBF16() error {
	if e.wb != nil {
		return nil
	}
	e.wb = map[*autograd.Var]cuda.Buffer{}
	var ws []*autograd.Var
	for _, l := range e.m.Layers {
		ws = append(ws, l.Query.W, l.Key.W, l.Value.W, l.AttnOut.W, l.Intermediate.W, l.Output.W)
	}
	for _, p := range ws {
		if err := e.addBF16(p); err != nil {
			return err
		}
	}
	return nil
}

// addBF16 makes the bf16 copy of parameter p's device weights.
func (e *Encoder) addBF16(p *autograd.Var) error {
	n := p.Value.Len()
	b, err := e.c.Alloc(2 * n)
	if err == nil {
		err = e.s.F32ToBF16(b, e.w[p], n)
	}
	if err != nil {
		return fmt.Errorf("cudabert: bf16 copy of %s: %w", p.Name, err)
	}
	e.wb[p] = b
	return nil
}

// weight returns p's device weights (with the bf16 copy in bf16 mode).
func (e *Encoder) weight(p *autograd.Var) pair { return pair{e.w[p], e.wb[p]} }

// mm runs gm (Alpha 1) on a and b into the float32 c: the bf16 tensor-core GEMM on their bf16
// copies in bf16 mode, else the float32 SIMT GEMM.
func (e *Encoder) mm(gm cuda.Gemm, a, b pair, c cuda.Buffer) error {
	gm.Alpha = 1
	if e.wb != nil {
		return e.s.GemmBF16(gm, a.b, b.b, c, cuda.Buffer{})
	}
	return e.s.GemmF32(gm, a.f, b.f, c)
}

// New uploads m's parameters to the device of c. The model must use the erf GELU
// (hidden_act "gelu", BERT's and Bio+Clinical BERT's).
func New(c *cuda.Context, m *bert.Model) (*Encoder, error) {
	if m.Cfg.HiddenAct != "gelu" {
		return nil, fmt.Errorf("cudabert: the GPU encoder implements hidden_act gelu, not %q", m.Cfg.HiddenAct)
	}
	if m.InferenceOnly() {
		return nil, fmt.Errorf("cudabert: the model was packed for CPU inference only (bert.Model.PackForInferenceOnly): its float weights are gone")
	}
	if d := m.Cfg.HiddenSize / m.Cfg.NumAttentionHeads; d > 64 {
		return nil, fmt.Errorf("cudabert: the GPU attention takes heads of at most 64 dimensions, not %d", d)
	}
	e := &Encoder{m: m, c: c, s: c.Stream(), w: map[*autograd.Var]cuda.Buffer{}}
	for _, p := range m.Params.List() {
		b, err := c.Alloc(4 * p.Value.Len())
		if err == nil {
			err = cuda.Upload(e.s, b, p.Value.Contiguous().Data())
		}
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("cudabert: uploading %s: %w", p.Name, err)
		}
		e.w[p] = b
	}
	return e, nil
}

// Close frees the device copies of the weights.
func (e *Encoder) Close() {
	for _, b := range e.w {
		b.Free()
	}
	for _, b := range e.wb {
		b.Free()
	}
	e.w, e.wb = nil, nil
}

// Forward returns the last hidden state (B·T·H float32, row-major) of batch b, whose attention
// mask must be right padding (each row's ones, then zeros): the GPU attention masks keys by
// length.
func (e *Encoder) Forward(b bert.Batch) ([]float32, error) {
	p, err := e.newPass(b, false)
	if err != nil {
		return nil, err
	}
	defer p.free()
	if err := p.forward(nil); err != nil {
		return nil, fmt.Errorf("cudabert: GPU encoder: %w", err)
	}
	last := make([]float32, p.N*p.H)
	if err := cuda.Download(p.s, last, p.x.f); err != nil {
		return nil, fmt.Errorf("cudabert: GPU encoder: %w", err)
	}
	return last, nil
}

// Trace is bert.Model.Trace on the GPU: Forward, copying the hidden state after the
// embeddings and after each layer's attention and feed-forward blocks back to the host.
func (e *Encoder) Trace(b bert.Batch) (*bert.Trace, error) {
	p, err := e.newPass(b, false)
	if err != nil {
		return nil, err
	}
	defer p.free()
	tr := &bert.Trace{}
	if err := p.forward(tr); err != nil {
		return nil, fmt.Errorf("cudabert: GPU encoder: %w", err)
	}
	return tr, nil
}

// Embed is bert.Model.Embed on the GPU: the last hidden state (B, T, H) from Forward and,
// when the model has a pooler, the pooled output (B, H), computed on the CPU by the model's own pooler.
func (e *Encoder) Embed(b bert.Batch) (last, pooled []float32, err error) {
	last, err = e.Forward(b)
	if err != nil || e.m.Pooler == nil {
		return last, nil, err
	}
	// The CPU model's pooler (dense + tanh on [CLS]) over the GPU's last hidden state.
	tp := autograd.NoGrad()
	defer tp.Reset()
	x := autograd.Constant(tensor.FromSlice(last, b.B, b.T, e.m.Cfg.HiddenSize))
	pooled = tp.Tanh(e.m.Pooler.Forward(tp, tp.Select(x, 1, 0))).Value.ToHost()
	return last, pooled, nil
}

var _ bert.Encoder = (*Encoder)(nil)

// Encode is Embed with the results as constants (bert.Encoder): what the multitask layer's
// heads take.
func (e *Encoder) Encode(b bert.Batch) (*bert.Output, error) {
	last, pooled, err := e.Embed(b)
	if err != nil {
		return nil, err
	}
	H := e.m.Cfg.HiddenSize
	out := &bert.Output{Last: autograd.Constant(tensor.FromSlice(last, b.B, b.T, H))}
	if pooled != nil {
		out.Pooled = autograd.Constant(tensor.FromSlice(pooled, b.B, H))
	}
	return out, nil
}

// rightPadding returns each row's count of leading ones of b's attention mask, and an error
// when a row is not right-padded (a one after a zero): the GPU attention masks keys by length.
func rightPadding(b bert.Batch) ([]int32, error) {
	valid := make([]int32, b.B)
	for r := 0; r < b.B; r++ {
		n := 0
		for n < b.T && b.Mask[r*b.T+n] != 0 {
			n++
		}
		for t := n; t < b.T; t++ {
			if b.Mask[r*b.T+t] != 0 {
				return nil, fmt.Errorf("cudabert: GPU encoder: row %d's attention mask is not right padding (a one at %d after a zero)", r, t)
			}
		}
		valid[r] = int32(n)
	}
	return valid, nil
}

// positions returns b's position ids (t for every row) and token type ids (zeros when b has
// none).
func positions(b bert.Batch) (pos, types []int32) {
	pos, types = make([]int32, b.B*b.T), b.TypeIDs
	for i := range pos {
		pos[i] = int32(i % b.T)
	}
	if types == nil {
		types = make([]int32, b.B*b.T)
	}
	return pos, types
}
