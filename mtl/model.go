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

// Outputs returns the width of the head: the number of labels, 1 for regression, 0 for mlm
// (whose width is the vocabulary's).
func (s TaskSpec) Outputs() int {
	if !s.Kind.Valid() {
		return len(s.Labels)
	}
	return s.Kind.hk().outputs(s)
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
	if !s.Kind.Valid() {
		return fmt.Errorf("task %s: unknown kind %q", s.Name, s.Kind)
	}
	if err := s.checkLabels(); err != nil {
		return err
	}
	if s.MaxLength < 3 {
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
		h, err := s.Kind.hk().newHead(headInit{enc: enc, params: m.HeadParams, rng: g, seed: seed, index: i, dropout: dropout}, s)
		if err != nil {
			return nil, err
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

// logits runs h's linear head on the encoder output: (B, T, L) for a per-token kind, (B, L)
// from the [CLS] vector (or the pooler's) otherwise.
func (m *Model) logits(tp *autograd.Tape, h *Head, out *bert.Output, train bool) *autograd.Var {
	if h.Spec.Kind.PerToken() {
		return h.Linear.Forward(tp, h.Drop.Forward(tp, out.Last, train))
	}
	x := out.Pooled
	if !h.Spec.UsePooler || x == nil {
		x = tp.Select(out.Last, 1, 0)
	}
	return h.Linear.Forward(tp, h.Drop.Forward(tp, x, train))
}

// Loss runs the encoder and the head of task on b and returns the task's loss (its kind's):
// cross-entropy averaged over trained sub-words (ner), masked positions (mlm) or sequences,
// or the mean-squared error (regression). For a kind whose loss reads the encoder's output at
// some positions only (mlm: the masked ones), the encoder's last layer runs only there
// (bert.Model.ForwardRows): the same loss, less work.
func (m *Model) Loss(tp *autograd.Tape, h *Head, b *Batch, train bool) (*autograd.Var, error) {
	hk := h.Spec.Kind.hk()
	var rows []int32
	if hk.rows != nil {
		rows = hk.rows(b)
	}
	var out *bert.Output
	var err error
	if len(rows) > 0 {
		out, err = m.Encoder.ForwardRows(tp, b.Enc, train, rows)
	} else {
		out, err = m.Encoder.Forward(tp, b.Enc, train)
	}
	if err != nil {
		return nil, err
	}
	return hk.loss(tp, m, h, out, b, train)
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
		return m.Encoder.Infer(tp, enc)
	}
	defer m.encMu.Unlock()
	return m.enc.Encode(enc)
}
