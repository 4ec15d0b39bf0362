package mtl

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// MLMHeadSeedOffset is xored into a model's seed to seed a new MLM head (one a checkpoint
// lacks), in NewModel and when training loads a checkpoint.
const MLMHeadSeedOffset = 0x6d6c6d

// Kind is what a task's head computes.
type Kind string

// The head kinds of MT-Clinical BERT, plus single-text classification.
const (
	// NER tags every sub-word: a linear layer on the last hidden state, cross-entropy over the
	// trained sub-words.
	NER Kind = "ner"
	// PairClassification labels a sentence pair ([CLS] a [SEP] b [SEP]) from the [CLS] vector.
	PairClassification Kind = "pair-classification"
	// Classification labels a single text from the [CLS] vector.
	Classification Kind = "classification"
	// Regression predicts a score for a sentence pair from the [CLS] vector (mean-squared error).
	Regression Kind = "regression"
	// MLM is masked-language modelling on raw text: BERT's prediction head (dense, activation,
	// LayerNorm, decoder tied to the word embeddings) at the masked positions. It trains the
	// encoder; it predicts nothing at inference.
	MLM Kind = "mlm"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case NER, PairClassification, Classification, Regression, MLM:
		return true
	}
	return false
}

// TaskSpec is what a checkpoint records of a task (tasks.json): enough to rebuild its head and
// decode its outputs.
type TaskSpec struct {
	Name   string   `json:"name"`
	Kind   Kind     `json:"kind"`
	Labels []string `json:"labels,omitempty"`
	// Scheme is the tagging scheme of an NER task ("BIO" or "BILOU").
	Scheme           string `json:"scheme,omitempty"`
	LabelAllSubwords bool   `json:"label_all_subwords,omitempty"`
	MaxLength        int    `json:"max_length"`
	// Stride (ner) is the number of sub-words between the starts of consecutive windows of a
	// long note, as trained; 0 (checkpoints written before it was saved) means
	// DefaultStride(MaxLength). Evaluation, prediction and serving window notes with it.
	Stride int `json:"stride,omitempty"`
	// UsePooler feeds the pooler output instead of the raw [CLS] vector to a sentence head.
	UsePooler bool `json:"use_pooler,omitempty"`
}

// Outputs returns the width of the head: the number of labels, or 1 for regression.
func (s TaskSpec) Outputs() int {
	switch s.Kind {
	case Regression:
		return 1
	case MLM:
		return 0
	}
	return len(s.Labels)
}

var taskNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_\-]*$`)

// reservedNames are the first components of BERT's own parameter names, which a head's
// parameters ("<task>.weight") must not collide with.
var reservedNames = map[string]bool{"embeddings": true, "encoder": true, "pooler": true, "cls": true}

// CheckTaskName checks a task name: a letter then letters, digits, _ or -, and not one of
// BERT's own parameter prefixes.
func CheckTaskName(name string) error {
	switch {
	case !taskNameRE.MatchString(name):
		return fmt.Errorf("%q: want a letter then letters, digits, _ or -", name)
	case reservedNames[name]:
		return fmt.Errorf("%q is reserved for BERT's own parameters", name)
	}
	return nil
}

// Validate checks a spec.
func (s TaskSpec) Validate() error {
	if err := CheckTaskName(s.Name); err != nil {
		return fmt.Errorf("task name %w", err)
	}
	switch {
	case !s.Kind.Valid():
		return fmt.Errorf("task %s: unknown kind %q", s.Name, s.Kind)
	case s.Kind == MLM && len(s.Labels) > 0:
		return fmt.Errorf("task %s: an mlm head has no labels", s.Name)
	case s.Kind != Regression && s.Kind != MLM && len(s.Labels) < 2:
		return fmt.Errorf("task %s: a %s head needs at least 2 labels, have %d", s.Name, s.Kind, len(s.Labels))
	case s.MaxLength < 3:
		return fmt.Errorf("task %s: max_length %d is too short", s.Name, s.MaxLength)
	}
	return nil
}

// Head is one task's layer over the shared encoder: Linear and Drop, or for an mlm task MLM,
// the encoder's own prediction head (its parameters live in the encoder's Params, under
// BertForMaskedLM's names, so that the encoder saves as a masked language model).
type Head struct {
	Spec   TaskSpec
	Linear *nn.Linear
	Drop   *nn.Dropout
	MLM    *bert.MLMHead
}

// Params returns the head's parameters (for an mlm head: the transform and the output bias;
// the decoder is the word-embedding matrix, an encoder parameter).
func (h *Head) Params() []*autograd.Var {
	if h.MLM != nil {
		return []*autograd.Var{h.MLM.Dense.W, h.MLM.Dense.B, h.MLM.LN.Gamma, h.MLM.LN.Beta, h.MLM.Bias}
	}
	return []*autograd.Var{h.Linear.W, h.Linear.B}
}

// Model is the shared encoder with one head per task.
type Model struct {
	Encoder *bert.Model
	Heads   []*Head
	// HeadParams holds the heads' parameters, named "<task>.weight" and "<task>.bias".
	HeadParams *nn.Params
	byName     map[string]*Head
	// enc, when set by UseEncoder, runs Predict's encoder pass; encMu serialises its use.
	enc   bert.Encoder
	encMu sync.Mutex
}

// UseEncoder makes Predict (and so prediction, evaluation and serving) run the encoder pass
// with e, for example a GPU encoder of m.Encoder (package bert/cudabert); the heads, small,
// stay on the CPU. Calls to e are serialised. The GPU encoder needs right-padded batches, as
// the collators make them. Training is unaffected; nil returns to m.Encoder.Forward.
func (m *Model) UseEncoder(e bert.Encoder) {
	m.encMu.Lock()
	m.enc = e
	m.encMu.Unlock()
}

// NewModel puts heads for specs on enc, initialised as transformers initialises a linear
// layer (normal with initializer_range, zero bias) from seed. dropout is the rate before each
// head.
func NewModel(enc *bert.Model, specs []TaskSpec, seed uint64, dropout float64) (*Model, error) {
	m := &Model{Encoder: enc, HeadParams: nn.NewParams(), byName: map[string]*Head{}}
	g := tensor.NewRNG(seed)
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if _, dup := m.byName[s.Name]; dup {
			return nil, fmt.Errorf("task %s appears twice", s.Name)
		}
		if s.UsePooler && enc.Pooler == nil {
			return nil, fmt.Errorf("task %s: use_pooler set but the encoder has no pooler", s.Name)
		}
		if s.Kind == MLM {
			if !enc.HasMLMHead() {
				if _, err := enc.AddMLMHead(seed ^ MLMHeadSeedOffset); err != nil {
					return nil, err
				}
			}
			h := &Head{Spec: s, MLM: enc.MLMHead()}
			m.Heads = append(m.Heads, h)
			m.byName[s.Name] = h
			continue
		}
		h := &Head{
			Spec:   s,
			Linear: nn.NewLinear(nn.Root(m.HeadParams).Sub(s.Name), g, enc.Cfg.HiddenSize, s.Outputs(), true, enc.Cfg.InitializerRange),
			Drop:   nn.NewDropout(float32(dropout), seed+uint64(i)*0x9e37),
		}
		m.Heads = append(m.Heads, h)
		m.byName[s.Name] = h
	}
	return m, nil
}

// Head returns the head of the named task, or nil.
func (m *Model) Head(name string) *Head { return m.byName[name] }

// Specs returns the task specs in head order.
func (m *Model) Specs() []TaskSpec {
	out := make([]TaskSpec, len(m.Heads))
	for i, h := range m.Heads {
		out[i] = h.Spec
	}
	return out
}

// Batch is one padded batch of one task. Enc holds the model inputs; the targets are Tags
// (NER: one label id per sub-word, IgnoreLabel where untrained), Classes (one label id per
// sequence) or Scores (one per sequence, regression).
type Batch struct {
	Enc     bert.Batch
	Tags    []int32
	Classes []int32
	Scores  []float32
}

// logits runs h on the encoder output: (B, T, L) for NER, (B, L) otherwise.
func (m *Model) logits(tp *autograd.Tape, h *Head, out *bert.Output, train bool) *autograd.Var {
	if h.Spec.Kind == NER {
		return h.Linear.Forward(tp, h.Drop.Forward(tp, out.Last, train))
	}
	x := out.Pooled
	if !h.Spec.UsePooler || x == nil {
		x = tp.Select(out.Last, 1, 0)
	}
	return h.Linear.Forward(tp, h.Drop.Forward(tp, x, train))
}

// Loss runs the encoder and the head of task on b and returns the task's loss: cross-entropy
// averaged over trained sub-words (NER) or sequences, or the mean-squared error (regression).
func (m *Model) Loss(tp *autograd.Tape, h *Head, b *Batch, train bool) (*autograd.Var, error) {
	out, err := m.Encoder.Forward(tp, b.Enc, train)
	if err != nil {
		return nil, err
	}
	if h.Spec.Kind == MLM {
		if len(b.Tags) != b.Enc.B*b.Enc.T {
			return nil, fmt.Errorf("task %s: %d masked labels for a %dx%d batch", h.Spec.Name, len(b.Tags), b.Enc.B, b.Enc.T)
		}
		loss, n := h.MLM.Loss(tp, out.Last, b.Tags)
		if n == 0 {
			// Nothing was masked (a batch of very short sequences): a zero loss, no gradient.
			return autograd.Constant(tensor.New(1)), nil
		}
		return loss, nil
	}
	z := m.logits(tp, h, out, train)
	n := b.Enc.B
	switch h.Spec.Kind {
	case NER:
		if len(b.Tags) != n*b.Enc.T {
			return nil, fmt.Errorf("task %s: %d tags for a %dx%d batch", h.Spec.Name, len(b.Tags), n, b.Enc.T)
		}
		return tp.CrossEntropy(z, b.Tags, IgnoreLabel), nil
	case Regression:
		if len(b.Scores) != n {
			return nil, fmt.Errorf("task %s: %d scores for %d sequences", h.Spec.Name, len(b.Scores), n)
		}
		return tp.MSE(z, b.Scores), nil
	default:
		if len(b.Classes) != n {
			return nil, fmt.Errorf("task %s: %d labels for %d sequences", h.Spec.Name, len(b.Classes), n)
		}
		return tp.CrossEntropy(z, b.Classes, IgnoreLabel), nil
	}
}

// Predict runs the encoder once on enc and every head in heads on its output, returning each
// head's outputs as host slices: (B, T, L) logits for NER, (B, L) logits for classification,
// (B) scores for regression.
func (m *Model) Predict(enc bert.Batch, heads []*Head) (map[string][]float32, error) {
	tp := autograd.NoGrad()
	defer tp.Reset()
	out, err := m.infer(tp, enc)
	if err != nil {
		return nil, err
	}
	res := make(map[string][]float32, len(heads))
	for _, h := range heads {
		res[h.Spec.Name] = m.logits(tp, h, out, false).Value.ToHost()
	}
	return res, nil
}

// infer runs the encoder in inference mode: with the encoder of UseEncoder, else on tp.
func (m *Model) infer(tp *autograd.Tape, enc bert.Batch) (*bert.Output, error) {
	m.encMu.Lock()
	if m.enc == nil {
		m.encMu.Unlock()
		return m.Encoder.Forward(tp, enc, false)
	}
	defer m.encMu.Unlock()
	return m.enc.Encode(enc)
}
