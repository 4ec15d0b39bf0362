package bert

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// mlmPrefix names the masked-language-model head's parameters as BertForMaskedLM's state dict
// does.
const mlmPrefix = "cls.predictions."

// MLMHead is BertForMaskedLM's prediction head: dense (H×H) + hidden_act + LayerNorm, then a
// decoder whose weight is the word-embedding matrix itself (tied, never copied) plus a bias of
// one value per vocabulary entry. Its parameters live in the model's Params under the names
// cls.predictions.transform.dense.{weight,bias}, cls.predictions.transform.LayerNorm.{weight,bias}
// and cls.predictions.bias, so an optimiser over Model.Params trains them.
type MLMHead struct {
	Dense *nn.Linear
	LN    *nn.LayerNorm
	// Bias is cls.predictions.bias (V); Decoder is embeddings.word_embeddings.weight (V, H).
	Bias, Decoder *autograd.Var
	act           string
}

// AddMLMHead registers a freshly initialised MLM head in m.Params (dense weight drawn from
// N(0, initializer_range²) with seed, zero biases, unit LayerNorm, as transformers initialises
// it) and returns it. It fails when the model already has one.
func (m *Model) AddMLMHead(seed uint64) (*MLMHead, error) {
	if m.HasMLMHead() {
		return nil, fmt.Errorf("bert: the model already has an MLM head")
	}
	cfg := m.Cfg
	g := tensor.NewRNG(seed)
	s := nn.Root(m.Params).Sub("cls.predictions")
	h := cfg.HiddenSize
	nn.NewLinear(s.Sub("transform.dense"), g, h, h, true, cfg.InitializerRange)
	nn.NewLayerNorm(s.Sub("transform.LayerNorm"), h, float32(cfg.LayerNormEps))
	s.Param("bias", cfg.VocabSize)
	return m.MLMHead(), nil
}

// HasMLMHead reports whether the model holds an MLM head.
func (m *Model) HasMLMHead() bool { return m.Params.Get(mlmPrefix+"bias") != nil }

// MLMHead returns the model's MLM head, or nil when it has none. The returned value is a view
// over m.Params: calling it again gives the same parameters.
func (m *Model) MLMHead() *MLMHead {
	if !m.HasMLMHead() {
		return nil
	}
	p := m.Params
	t := mlmPrefix + "transform."
	return &MLMHead{
		Dense:   &nn.Linear{W: p.Get(t + "dense.weight"), B: p.Get(t + "dense.bias")},
		LN:      &nn.LayerNorm{Gamma: p.Get(t + "LayerNorm.weight"), Beta: p.Get(t + "LayerNorm.bias"), Eps: float32(m.Cfg.LayerNormEps)},
		Bias:    p.Get(mlmPrefix + "bias"),
		Decoder: m.Word.W,
		act:     m.Cfg.HiddenAct,
	}
}

// Transform applies dense, hidden_act and LayerNorm to x (..., H).
func (h *MLMHead) Transform(tp *autograd.Tape, x *autograd.Var) *autograd.Var {
	x = h.Dense.Forward(tp, x)
	if h.act == "gelu" {
		x = tp.GELU(x)
	} else {
		x = tp.GELUTanh(x)
	}
	return h.LN.Forward(tp, x)
}

// Logits returns the vocabulary logits (M, V) at the given flat positions (b·T + t) of hidden
// (B, T, H), or at every position ((B·T, V)) when positions is nil. Only the selected rows are
// transformed and projected: the decoder is tp.Linear with the word-embedding matrix (V, H) as
// its weight, which is exactly x·Wᵀ + b with no transposed copy.
func (h *MLMHead) Logits(tp *autograd.Tape, hidden *autograd.Var, positions []int32) *autograd.Var {
	hs := hidden.Shape()
	H := hs[len(hs)-1]
	n := hidden.Value.Len() / H
	x := tp.Reshape(hidden, n, H)
	if positions != nil {
		for i, p := range positions {
			if p < 0 || int(p) >= n {
				panic(fmt.Sprintf("bert: MLM position %d (entry %d) outside %d rows", p, i, n))
			}
		}
		// Embedding over the (B·T, H) hidden states is a row gather whose backward scatter-adds.
		x = tp.Embedding(x, positions, len(positions))
	}
	return tp.Linear(h.Transform(tp, x), h.Decoder, h.Bias)
}

// MaskedPositions returns the flat positions whose label is not autograd.IgnoreIndex and the
// labels there.
func MaskedPositions(labels []int32) (positions, targets []int32) {
	for i, l := range labels {
		if l != autograd.IgnoreIndex {
			positions = append(positions, int32(i))
			targets = append(targets, l)
		}
	}
	return positions, targets
}

// Loss returns the mean softmax cross-entropy over the masked positions of hidden (B, T, H)
// (labels (B·T): the original id at a masked position, autograd.IgnoreIndex elsewhere) and
// how many positions it averages. Hidden states are gathered at those M positions first, so
// the logits are (M, V), never (B·T, V), and the vocabulary projection is fused with the
// softmax cross-entropy (autograd's LinearCrossEntropy: one (M, V) buffer, reused for the
// gradient). With no masked position it returns (nil, 0): there is nothing to back-propagate.
func (h *MLMHead) Loss(tp *autograd.Tape, hidden *autograd.Var, labels []int32) (*autograd.Var, int) {
	if len(labels)*h.Decoder.Shape()[1] != hidden.Value.Len() {
		panic(fmt.Sprintf("bert: MLM loss: %d labels for hidden states %v", len(labels), hidden.Shape()))
	}
	pos, targets := MaskedPositions(labels)
	if len(pos) == 0 {
		return nil, 0
	}
	h.checkTargets(pos, targets)
	hs := hidden.Shape()
	H := hs[len(hs)-1]
	x := tp.Embedding(tp.Reshape(hidden, hidden.Value.Len()/H, H), pos, len(pos))
	return h.lossRows(tp, x, targets), len(pos)
}

// LossRows is Loss on hidden states already gathered at the masked positions: rows (M, H),
// as Model.ForwardRows returns them for MaskedPositions' positions, and targets (M) the labels
// there (MaskedPositions' second result, each a vocabulary id). It is what Loss computes
// after its gather, so the same rows give the same loss bit for bit.
func (h *MLMHead) LossRows(tp *autograd.Tape, rows *autograd.Var, targets []int32) *autograd.Var {
	if rs := rows.Shape(); len(rs) != 2 || rs[0] != len(targets) || rs[1] != h.Decoder.Shape()[1] {
		panic(fmt.Sprintf("bert: MLM loss: %d targets for hidden rows %v", len(targets), rows.Shape()))
	}
	h.checkTargets(nil, targets)
	return h.lossRows(tp, rows, targets)
}

// lossRows is LossRows without the checks.
func (h *MLMHead) lossRows(tp *autograd.Tape, rows *autograd.Var, targets []int32) *autograd.Var {
	return tp.LinearCrossEntropy(h.Transform(tp, rows), h.Decoder, h.Bias, targets, autograd.IgnoreIndex)
}

// checkTargets panics on a target outside the vocabulary, naming its flat position when pos
// is given (else its entry).
func (h *MLMHead) checkTargets(pos, targets []int32) {
	for i, t := range targets {
		if t < 0 || int(t) >= h.Decoder.Shape()[0] {
			at := fmt.Sprintf("entry %d", i)
			if pos != nil {
				at = fmt.Sprintf("position %d", pos[i])
			}
			panic(fmt.Sprintf("bert: MLM label %d at %s outside vocabulary of %d", t, at, h.Decoder.Shape()[0]))
		}
	}
}

// MLMLoss runs the encoder on b and returns the MLM loss over labels (B·T) and the number of
// masked positions; see MLMHead.Loss. The encoder's last layer runs only at the masked
// positions (ForwardRows): the loss is the one Forward then Loss give, bit for bit, and its
// gradients agree up to rounding. The model must have an MLM head.
func (m *Model) MLMLoss(tp *autograd.Tape, b Batch, labels []int32, train bool) (*autograd.Var, int, error) {
	h := m.MLMHead()
	if h == nil {
		return nil, 0, fmt.Errorf("bert: the model has no MLM head")
	}
	if len(labels) != b.B*b.T {
		return nil, 0, fmt.Errorf("bert: %d MLM labels for a %dx%d batch", len(labels), b.B, b.T)
	}
	for i, l := range labels {
		if l != autograd.IgnoreIndex && (l < 0 || int(l) >= m.Cfg.VocabSize) {
			return nil, 0, fmt.Errorf("bert: MLM label %d at position %d outside vocabulary of %d", l, i, m.Cfg.VocabSize)
		}
	}
	pos, targets := MaskedPositions(labels)
	if len(pos) == 0 {
		// Nothing to predict; the pass still runs (and draws its dropout seeds) as before.
		if _, err := m.Forward(tp, b, train); err != nil {
			return nil, 0, err
		}
		return nil, 0, nil
	}
	out, err := m.ForwardRows(tp, b, train, pos)
	if err != nil {
		return nil, 0, err
	}
	return h.LossRows(tp, out.Last, targets), len(pos), nil
}

// mlmCanonicalName maps a checkpoint key to the name the model holds when it has an MLM head:
// BertModel names as canonicalName gives them, plus cls.predictions.bias and
// cls.predictions.transform.* (gamma/beta renamed). The decoder weight (tied to the word
// embeddings) and decoder bias (the same tensor as cls.predictions.bias) are skipped.
func mlmCanonicalName(k string) string {
	if c := canonicalName(k); c != "" {
		return c
	}
	if k != mlmPrefix+"bias" && !strings.HasPrefix(k, mlmPrefix+"transform.") {
		return ""
	}
	if strings.HasSuffix(k, "LayerNorm.gamma") {
		k = strings.TrimSuffix(k, "gamma") + "weight"
	} else if strings.HasSuffix(k, "LayerNorm.beta") {
		k = strings.TrimSuffix(k, "beta") + "bias"
	}
	return k
}

// LoadMaskedLM builds a model with an MLM head from a Hugging Face BERT directory. The head
// is read from the checkpoint's cls.predictions.* tensors when it has them (a BertForMaskedLM
// or BertForPreTraining checkpoint); otherwise (a BertModel checkpoint, to continue
// pretraining) each missing head tensor is initialised from seed as AddMLMHead does. fromCkpt
// reports whether the transform weights came from the checkpoint.
func LoadMaskedLM(dir string, seed uint64) (m *Model, fromCkpt bool, err error) {
	m, canon, src, err := load(dir, mlmCanonicalName, true, seed)
	if err != nil {
		return nil, false, err
	}
	_, fromCkpt = canon[mlmPrefix+"transform.dense.weight"]
	for _, p := range m.Params.List() {
		if _, ok := canon[p.Name]; !ok && strings.HasPrefix(p.Name, mlmPrefix) {
			canon[p.Name] = nn.F32Tensor(p.Shape(), p.Value.Data())
		}
	}
	if err := m.SetWeights(canon, src); err != nil {
		return nil, false, err
	}
	return m, fromCkpt, nil
}

// CanonicalKey maps a checkpoint key (BertModel, BertForMaskedLM or BertForPreTraining names,
// old gamma/beta spellings) to the name the model's Params use, or "" for a key the model does
// not hold (the tied decoder weight, next-sentence head, ...).
func CanonicalKey(k string) string { return mlmCanonicalName(k) }

// saveStateDict returns the tensors Save writes: BertModel names for a model without an MLM
// head; for one with it, BertForMaskedLM's layout ("bert." before the encoder's names, the
// cls.predictions.* tensors as they are, the tied decoder weight left out as transformers
// itself leaves it out of model.safetensors).
//
// An int8 model (IsInt8) has each encoder linear layer's NAME.weight replaced by
// NAME.weight_int8 (I8) and NAME.weight_scale (F32).
func (m *Model) saveStateDict() (map[string]nn.SafeTensor, error) {
	if m.inferenceOnly {
		return nil, fmt.Errorf("bert: save: the model was packed for inference only (PackForInferenceOnly): its float weights are gone")
	}
	sd := m.StateDict()
	if m.IsInt8() {
		for _, l := range m.Linears() {
			q := l.Quantized()
			if q == nil {
				return nil, fmt.Errorf("bert: save: int8 model whose layer %q has no int8 weights (modified after QuantizeInt8?)", l.W.Name)
			}
			wn, sn := int8Names(l)
			delete(sd, l.W.Name)
			sd[wn] = nn.I8Tensor([]int{q.N, q.K}, q.Q())
			sd[sn] = nn.F32Tensor([]int{q.N}, q.Scale)
		}
	}
	if !m.HasMLMHead() {
		return sd, nil
	}
	out := make(map[string]nn.SafeTensor, len(sd))
	for k, v := range sd {
		if !strings.HasPrefix(k, "cls.") {
			k = "bert." + k
		}
		out[k] = v
	}
	return out, nil
}

// configJSON is Config.JSON with architectures naming BertForMaskedLM when the model has an
// MLM head.
func (m *Model) configJSON() []byte {
	if !m.HasMLMHead() {
		return m.Cfg.JSON()
	}
	type out struct {
		Architectures []string `json:"architectures"`
		ModelType     string   `json:"model_type"`
		Config
	}
	b, err := json.MarshalIndent(out{[]string{"BertForMaskedLM"}, "bert", m.Cfg}, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
