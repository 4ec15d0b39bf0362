package bert

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// Int8 is Config.Quantization's value for int8 encoder linear layers.
const Int8 = "int8"

// Int8 suffixes of a quantised linear layer's tensors in model.safetensors, replacing "weight".
const (
	int8WeightSuffix = "weight_int8"
	int8ScaleSuffix  = "weight_scale"
)

// Model is BERT as transformers.BertModel: embeddings, a stack of post-LayerNorm encoder
// layers and an optional pooler, with parameters named as Hugging Face names them.
type Model struct {
	Cfg    Config
	Params *nn.Params

	Word, Position, TokenType *nn.Embedding
	EmbLN                     *nn.LayerNorm
	Layers                    []*Layer
	// Pooler is dense + tanh on the [CLS] vector; nil for a model without one.
	Pooler *nn.Linear

	// Dropout is the hidden dropout; its draw counter is part of a resumable training state.
	Dropout *nn.Dropout

	// pendingInt8 holds the int8 weights read by load, installed by SetWeights (after the
	// float parameters, whose loading bumps the versions the int8 copies are checked against).
	pendingInt8 []*kernels.QuantizedB
	// pendingMap is the mapped checkpoint of an int8 load, for SetWeights (mapWordEmbeddings);
	// wordMapped says the word embeddings read from it.
	pendingMap *nn.Mapping
	wordMapped bool
	// inferenceOnly is set by PackForInferenceOnly: the float weights of the packed layers are
	// gone.
	inferenceOnly bool
}

// Layer is one encoder layer.
type Layer struct {
	Query, Key, Value, AttnOut *nn.Linear
	AttnLN                     *nn.LayerNorm
	Intermediate, Output       *nn.Linear
	OutLN                      *nn.LayerNorm

	// qkv is Query, Key and Value as one product at inference (PackForInference).
	qkv *nn.Fused
}

// New builds a model with weights initialised as transformers does (normal with
// initializer_range, zero biases, unit LayerNorm, the padding row of the word embeddings
// zeroed), drawn from seed. withPooler adds the pooler.
//
// With cfg.Quantization == Int8 the encoder's linear layers get no float weights: their W has
// shape (0, in), and the int8 weights come from a checkpoint (Load) or QuantizeInt8; such a
// model is for inference only.
func New(cfg Config, seed uint64, withPooler bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bert: %w", err)
	}
	g := tensor.NewRNG(seed)
	p := nn.NewParams()
	root := nn.Root(p)
	std := cfg.InitializerRange
	h, eps := cfg.HiddenSize, float32(cfg.LayerNormEps)
	m := &Model{Cfg: cfg, Params: p, Dropout: nn.NewDropout(float32(cfg.HiddenDropoutProb), seed^0x5eed)}
	emb := root.Sub("embeddings")
	m.Word = nn.NewEmbedding(emb.Sub("word_embeddings"), g, cfg.VocabSize, h, std)
	m.Position = nn.NewEmbedding(emb.Sub("position_embeddings"), g, cfg.MaxPositionEmbeddings, h, std)
	m.TokenType = nn.NewEmbedding(emb.Sub("token_type_embeddings"), g, cfg.TypeVocabSize, h, std)
	clear(m.Word.W.Value.Data()[cfg.PadTokenID*h : (cfg.PadTokenID+1)*h])
	m.EmbLN = nn.NewLayerNorm(emb.Sub("LayerNorm"), h, eps)
	linear := func(s nn.Scope, in, out int) *nn.Linear {
		if cfg.Quantization == Int8 {
			return &nn.Linear{W: s.Param("weight", 0, in), B: s.Param("bias", out)}
		}
		return nn.NewLinear(s, g, in, out, true, std)
	}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		s := root.Sub("encoder").Sub("layer").Sub(strconv.Itoa(i))
		l := &Layer{
			Query:        linear(s.Sub("attention.self.query"), h, h),
			Key:          linear(s.Sub("attention.self.key"), h, h),
			Value:        linear(s.Sub("attention.self.value"), h, h),
			AttnOut:      linear(s.Sub("attention.output.dense"), h, h),
			AttnLN:       nn.NewLayerNorm(s.Sub("attention.output.LayerNorm"), h, eps),
			Intermediate: linear(s.Sub("intermediate.dense"), h, cfg.IntermediateSize),
			Output:       linear(s.Sub("output.dense"), cfg.IntermediateSize, h),
			OutLN:        nn.NewLayerNorm(s.Sub("output.LayerNorm"), h, eps),
		}
		l.qkv = nn.NewFused(l.Query, l.Key, l.Value)
		m.Layers = append(m.Layers, l)
	}
	if withPooler {
		m.Pooler = nn.NewLinear(root.Sub("pooler.dense"), g, h, h, true, std)
	}
	return m, nil
}

// Linears returns the encoder's linear layers (Q, K, V, attention output, intermediate and
// output of every layer), the ones PackForInference and QuantizeForInference prepare.
func (m *Model) Linears() []*nn.Linear {
	var ls []*nn.Linear
	for _, l := range m.Layers {
		ls = append(ls, l.Query, l.Key, l.Value, l.AttnOut, l.Intermediate, l.Output)
	}
	return ls
}

// PackForInference packs the encoder's linear weights once into the GEMM's panel layout
// (nn.Linear.Pack): inference passes (Embed, Forward on a NoGrad tape) then skip packing them
// on every call, with bit-identical results. Training is unaffected (a recording tape uses W)
// and a packed weight that the optimiser or a load modifies is bypassed (Var.Modified).
//
// Each layer's Q, K and V weights are packed stacked, as one (3H, H) product (nn.Fused), and
// not on their own: one pass packs the layer's input once and splits one wide product over
// the threads. Where that copy is bypassed (a weight modified), Q, K and V run unpacked.
func (m *Model) PackForInference() {
	if m.inferenceOnly {
		return // packed already, and the float weights to pack again are gone
	}
	for _, l := range m.Layers {
		l.pack()
	}
}

// pack packs the layer's linear weights for inference (see PackForInference).
func (l *Layer) pack() {
	if l.Query.Quantized() == nil && l.Key.Quantized() == nil && l.Value.Quantized() == nil {
		l.qkv.Pack()
	}
	for _, lin := range []*nn.Linear{l.Query, l.Key, l.Value, l.AttnOut, l.Intermediate, l.Output} {
		switch {
		case lin.Quantized() != nil:
		case l.qkv.Packed() && (lin == l.Query || lin == l.Key || lin == l.Value):
			lin.Unpack()
		default:
			lin.Pack()
		}
	}
}

// PackForInferenceOnly packs as PackForInference, then lets go of the float weights the packed
// copies replace (nn.Linear.DropFloat; for Q, K and V the stacked copy is the only one), so an
// inference-only process (predict, serve) runs the packed products at the memory of the
// unpacked model. The model can then only run inference on the CPU: InferenceOnly reports it,
// and Save, training and the GPU encoder refuse it. Int8 layers are left as they are.
//
// Layer by layer, with a collection after each, so that the float weights a layer gives up
// are reused by the next layer's packed copies: loading then packing peaks at one layer above
// the float model, not at twice it.
func (m *Model) PackForInferenceOnly() {
	if m.inferenceOnly {
		return
	}
	for _, l := range m.Layers {
		l.pack()
		l.qkv.DropFloat() // Q, K, V: the stacked copy is their packed one
		for _, lin := range []*nn.Linear{l.Query, l.Key, l.Value, l.AttnOut, l.Intermediate, l.Output} {
			lin.DropFloat()
		}
		runtime.GC()
	}
	m.inferenceOnly = true
}

// InferenceOnly reports whether PackForInferenceOnly has dropped the encoder's float weights.
func (m *Model) InferenceOnly() bool { return m.inferenceOnly }

// PackedBytes returns the memory the encoder's packed and quantised weights hold.
func (m *Model) PackedBytes() int {
	n := 0
	for _, l := range m.Layers {
		n += l.qkv.PackedBytes()
	}
	for _, l := range m.Linears() {
		n += l.PackedBytes()
	}
	return n
}

// QuantizeForInference quantises the encoder's linear layers to int8 (nn.Linear.Quantize):
// weights per output channel, activations per token at run time, int32 accumulation.
// Embeddings, LayerNorm, attention's softmax and products, the pooler and task heads stay
// float32.
func (m *Model) QuantizeForInference() {
	if m.inferenceOnly {
		panic("bert: QuantizeForInference after PackForInferenceOnly: the float weights are gone")
	}
	for _, l := range m.Layers {
		l.qkv.Unpack() // the int8 copies replace the stacked fp32 one
	}
	for _, l := range m.Linears() {
		if l.Quantized() == nil || l.W.Shape()[0] != 0 {
			l.Quantize()
		}
	}
}

// QuantizeInt8 makes m an int8 model for inference, as an int8 checkpoint loads
// (Cfg.Quantization = Int8): the encoder's linear layers are quantised (QuantizeForInference)
// and their float weights dropped (W becomes (0, in)), so only the int8 copies stay resident.
// Save then writes the int8 checkpoint. Training such a model is not possible.
func (m *Model) QuantizeInt8() {
	m.QuantizeForInference()
	for _, l := range m.Linears() {
		q := l.Quantized()
		l.W.Value = tensor.New(0, q.K)
		l.SetQuantized(q)
	}
	m.Cfg.Quantization = Int8
}

// IsInt8 reports whether the encoder's linear layers are int8 without float weights (an int8
// checkpoint, or QuantizeInt8).
func (m *Model) IsInt8() bool { return m.Cfg.Quantization == Int8 }

// int8Names returns the names of a linear layer's int8 weight and scale tensors.
func int8Names(l *nn.Linear) (weight, scale string) {
	base := strings.TrimSuffix(l.W.Name, "weight")
	return base + int8WeightSuffix, base + int8ScaleSuffix
}

// Batch is a padded batch of B sequences of T sub-words. IDs and TypeIDs are (B, T); Mask is
// (B, T) with 1 for real tokens and 0 for padding (nil means no padding).
type Batch struct {
	B, T    int
	IDs     []int32
	TypeIDs []int32
	Mask    []float32
}

// Validate checks the batch against the model's limits.
func (m *Model) Validate(b Batch) error {
	n := b.B * b.T
	switch {
	case b.B <= 0 || b.T <= 0:
		return fmt.Errorf("bert: empty batch %dx%d", b.B, b.T)
	case len(b.IDs) != n:
		return fmt.Errorf("bert: %d input ids for a %dx%d batch", len(b.IDs), b.B, b.T)
	case b.TypeIDs != nil && len(b.TypeIDs) != n:
		return fmt.Errorf("bert: %d token type ids for a %dx%d batch", len(b.TypeIDs), b.B, b.T)
	case b.Mask != nil && len(b.Mask) != n:
		return fmt.Errorf("bert: %d mask values for a %dx%d batch", len(b.Mask), b.B, b.T)
	case b.T > m.Cfg.MaxPositionEmbeddings:
		return fmt.Errorf("bert: sequence length %d exceeds max_position_embeddings %d", b.T, m.Cfg.MaxPositionEmbeddings)
	}
	for i, id := range b.IDs {
		if id < 0 || int(id) >= m.Cfg.VocabSize {
			return fmt.Errorf("bert: input id %d at position %d outside vocabulary of %d", id, i, m.Cfg.VocabSize)
		}
	}
	for i, id := range b.TypeIDs {
		if id < 0 || int(id) >= m.Cfg.TypeVocabSize {
			return fmt.Errorf("bert: token type id %d at position %d outside type_vocab_size %d", id, i, m.Cfg.TypeVocabSize)
		}
	}
	return nil
}

// Output holds a forward pass: Hidden[0] is the embedding output and Hidden[i] layer i's;
// Last is Hidden[len-1], (B, T, H); Pooled is (B, H) when the model has a pooler.
//
// After ForwardRows, Rows holds the flat positions (b·T + t) the pass was asked for, and Last
// (so Hidden[len-1]) is (len(Rows), H): row r is the last layer's output at Rows[r]. The other
// entries of Hidden are whole (B, T, H) states, and Pooled is nil. Rows is nil otherwise.
type Output struct {
	Hidden []*autograd.Var
	Last   *autograd.Var
	Pooled *autograd.Var
	Rows   []int32
}

// Forward runs the encoder on a batch. Dropout is active only when train is set. All values
// live on tp until tp.Reset.
func (m *Model) Forward(tp *autograd.Tape, b Batch, train bool) (*Output, error) {
	return m.forward(tp, b, train, nil, nil, false)
}

// Infer runs the encoder in inference mode on tp, a tape that does not record, for a caller
// that reads only the last layer: Output.Hidden holds just Last, and each layer's input is
// given back to the pool as soon as the layer's output exists, so a pass holds one layer's
// working memory and one hidden state rather than every layer's (thirteen B·T·H states at
// BERT-base: 40 MB at 8 x 128). The values are Forward's bit for bit.
func (m *Model) Infer(tp *autograd.Tape, b Batch) (*Output, error) {
	if tp.Recording() {
		return nil, fmt.Errorf("bert: Infer needs a tape that does not record (autograd.NoGrad)")
	}
	return m.forward(tp, b, false, nil, nil, true)
}

// ForwardRows is Forward for a caller that reads the last layer's output only at the flat
// positions rows (b·T + t, each in [0, B·T); any order, MaskedPositions gives them ascending):
// the masked-LM loss. The embeddings and every layer but the last run on the whole batch, as
// does the last layer's attention (its queries, keys and values need every position); from the
// attention context on, the last layer is row-wise (output projection, residual LayerNorm,
// feed-forward, residual LayerNorm), so it runs on the selected rows of the context and of its
// input only. Out.Last is (len(rows), H) and its row r equals, bit for bit, row rows[r] of
// Forward's Last: the row-wise kernels compute each row alone, and the hidden dropout draws
// for each gathered element the mask Forward draws for it (nn.Dropout.ForwardRows), taking the
// same seeds from the model's counter. Gradients agree with Forward's up to rounding: the
// last layer's weight gradients sum over len(rows) rows instead of B·T (the others being
// zero), in another blocking. No pooler is computed (Out.Pooled is nil), since it needs every
// sequence's row 0. rows must not be empty.
func (m *Model) ForwardRows(tp *autograd.Tape, b Batch, train bool, rows []int32) (*Output, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("bert: ForwardRows with no rows")
	}
	for i, r := range rows {
		if r < 0 || int(r) >= b.B*b.T {
			return nil, fmt.Errorf("bert: row %d (entry %d) outside a %dx%d batch", r, i, b.B, b.T)
		}
	}
	return m.forward(tp, b, train, nil, rows, false)
}

// Trace is the hidden state after every stage of an encoder pass, each (B, T, H) row-major on
// the host: Embeddings after the embeddings' LayerNorm, and for layer i, Attention[i] after
// the attention block's residual LayerNorm and Layers[i] after the feed-forward block's (the
// layer's output). Embeddings and Layers are Hugging Face's output_hidden_states.
type Trace struct {
	Embeddings []float32
	Attention  [][]float32
	Layers     [][]float32
}

// Trace runs the encoder in inference mode, as Embed does, and returns every stage's hidden
// state: the reference that another implementation of the encoder (package bert/cudabert) is
// compared with stage by stage.
func (m *Model) Trace(b Batch) (*Trace, error) {
	tp := autograd.NoGrad()
	defer tp.Reset()
	tr := &Trace{}
	if _, err := m.forward(tp, b, false, tr, nil, false); err != nil {
		return nil, err
	}
	return tr, nil
}

// forward is Forward, copying each stage's hidden state into tr when tr is not nil, and
// ForwardRows when rows is not nil (tr must then be nil).
//
// lastOnly (Infer) keeps only the last hidden state: each layer releases everything since the
// pass began but its output.
func (m *Model) forward(tp *autograd.Tape, b Batch, train bool, tr *Trace, rows []int32, lastOnly bool) (*Output, error) {
	if err := m.Validate(b); err != nil {
		return nil, err
	}
	cfg := m.Cfg
	pos := make([]int32, b.B*b.T)
	for i := range pos {
		pos[i] = int32(i % b.T)
	}
	types := b.TypeIDs
	if types == nil {
		types = make([]int32, b.B*b.T)
	}
	// Inference (a NoGrad tape) gives each stage's intermediates back as soon as the stage's
	// output exists, so a pass holds one layer's working memory, not every layer's.
	release := func(mark int, keep *autograd.Var) {
		if !tp.Recording() {
			tp.ReleaseSince(mark, keep)
		}
	}
	mark := tp.Mark()
	start := mark
	x := tp.Add(tp.Add(m.Word.Forward(tp, b.IDs, b.B, b.T), m.Position.Forward(tp, pos, b.B, b.T)), m.TokenType.Forward(tp, types, b.B, b.T))
	x = m.Dropout.Forward(tp, m.EmbLN.Forward(tp, x), train)
	release(mark, x)
	if tr != nil {
		tr.Embeddings = x.Value.ToHost()
	}
	out := &Output{Hidden: []*autograd.Var{x}}
	attnDrop := float32(0)
	if train {
		attnDrop = float32(cfg.AttentionProbsDropoutProb)
	}
	for i, l := range m.Layers {
		mark := tp.Mark()
		var seed uint64
		if train {
			seed = m.Dropout.NextSeed()
		}
		var ctx *autograd.Var
		if qkv := l.qkv.Forward(tp, x); qkv != nil && attnDrop == 0 {
			ctx = tp.AttentionQKV(qkv, cfg.NumAttentionHeads, b.Mask)
		} else {
			q, k, v := l.Query.Forward(tp, x), l.Key.Forward(tp, x), l.Value.Forward(tp, x)
			ctx = tp.AttentionAt(q, k, v, cfg.NumAttentionHeads, b.Mask, attnDrop, seed, m.Dropout.Row0)
		}
		drop := func(y *autograd.Var) *autograd.Var { return m.Dropout.Forward(tp, y, train) }
		if rows != nil && i == len(m.Layers)-1 {
			// The rest of the layer is row-wise: run it on the selected rows of the context and
			// of the residual input. Embedding over a (B·T, H) view is a row gather whose
			// backward scatter-adds.
			n, h := b.B*b.T, cfg.HiddenSize
			ctx = tp.Embedding(tp.Reshape(ctx, n, h), rows, len(rows))
			x = tp.Embedding(tp.Reshape(x, n, h), rows, len(rows))
			drop = func(y *autograd.Var) *autograd.Var { return m.Dropout.ForwardRows(tp, y, rows, b.T, train) }
		}
		a := drop(l.AttnOut.Forward(tp, ctx))
		x1 := l.AttnLN.ForwardResidual(tp, a, x)
		if tr != nil {
			tr.Attention = append(tr.Attention, x1.Value.ToHost())
		}
		hmid := l.Intermediate.ForwardGELU(tp, x1, cfg.HiddenAct == "gelu")
		o := drop(l.Output.Forward(tp, hmid))
		x = l.OutLN.ForwardResidual(tp, o, x1)
		if lastOnly {
			release(start, x) // the layer's input too: nothing reads it again
		} else {
			release(mark, x)
			out.Hidden = append(out.Hidden, x)
		}
		if tr != nil {
			tr.Layers = append(tr.Layers, x.Value.ToHost())
		}
	}
	if lastOnly {
		out.Hidden = []*autograd.Var{x}
	}
	out.Last, out.Rows = x, rows
	if m.Pooler != nil && rows == nil {
		out.Pooled = tp.Tanh(m.Pooler.Forward(tp, tp.Select(x, 1, 0)))
	}
	return out, nil
}
