package mtl

import (
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

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

// A head kind is one entry of kinds: everything that differs between kinds of task lives
// there, and the rest of the package (and the packages above it) asks a Kind's methods
// instead of naming kinds. Adding a kind is one constant above and one entry in kinds (plus,
// when no existing function fits, its loss or evaluation), and a row in kinds_test.go.

// input is what a task of a kind reads.
type input int

const (
	// inputSpans is documents with labelled spans, aligned to sub-words and cut into
	// windows (the ner options: scheme, stride, overlap, label_all_subwords).
	inputSpans input = iota + 1
	// inputPairs is sentence pairs (text_a, text_b) with a label or a score.
	inputPairs
	// inputText is raw text, packed into sequences.
	inputText
)

// labelRule is what a kind asks of TaskSpec.Labels.
type labelRule int

const (
	// classLabels: at least 2 labels (the head's outputs).
	classLabels labelRule = iota + 1
	// anyLabels: not checked (regression: the head has one output whatever they are).
	anyLabels
	// noLabels: none allowed.
	noLabels
)

// headKind is the behaviour of one kind of head.
type headKind struct {
	kind  Kind
	input input
	// perToken: the head outputs (and its batches carry targets) per sub-word; otherwise per
	// sequence, from the [CLS] vector or the pooler.
	perToken bool
	// predicts: the head returns something at inference (Extract, Pair, Evaluate's
	// prediction path); mlm only trains the encoder.
	predicts bool
	// scored: the targets are real-valued scores (Example.Score, Batch.Scores), not label ids.
	scored bool
	// maskedLM: the head is the encoder's own masked-language-model head: the checkpoint
	// loads as BertForMaskedLM and its batches are masked as they are drawn.
	maskedLM bool
	labels   labelRule
	// main is the metric tasks of the kind are compared and selected by; secondary the one
	// the run's summary table shows beside it. Both are keys eval writes.
	main, secondary string
	// batchSize and maxLength are the config's defaults for a task of the kind.
	batchSize, maxLength int

	// outputs is the width of the head's output for s.
	outputs func(s TaskSpec) int
	// newHead builds the head of spec s, the in-th task of the model.
	newHead func(in headInit, s TaskSpec) (*Head, error)
	// loss is the task's loss on a batch, given the encoder's output.
	loss func(tp *autograd.Tape, m *Model, h *Head, out *bert.Output, b *Batch, train bool) (*autograd.Var, error)
	// rows, when set, names the flat positions (b·T + t) of the encoder's output that loss
	// reads from b; Model.Loss then runs the encoder's last layer only there
	// (bert.Model.ForwardRows) and loss gets an Output whose Rows are them. No rows (or a nil
	// rows) runs the whole encoder.
	rows func(b *Batch) []int32
	// decodePair turns one sequence's outputs into a PairResult (kinds that predict per
	// sequence; nil otherwise).
	decodePair func(s TaskSpec, v []float32) PairResult
	// eval scores the head on an evaluation set, filling tm.Count, Metrics and Notes.
	eval func(m *Model, h *Head, tok *bert.Tokenizer, set *EvalSet, tm *TaskMetrics) error
}

// headInit is what NewModel hands a kind's newHead.
type headInit struct {
	enc     *bert.Model
	params  *nn.Params
	rng     *tensor.RNG
	seed    uint64
	index   int
	dropout float64
}

// kinds lists every kind in documentation order, and kindOf finds one. They are set in init
// because the behaviours refer back (through evaluation and the planner) to Kind's methods.
var (
	kinds  []*headKind
	kindOf map[Kind]*headKind
)

func init() {
	kinds = []*headKind{
		{
			kind: NER, input: inputSpans, perToken: true, predicts: true, labels: classLabels,
			main: "span_f1", secondary: "token_f1", batchSize: 25, maxLength: 512,
			outputs: labelOutputs, newHead: linearHead, loss: tagLoss, eval: evalNER,
		},
		{
			kind: PairClassification, input: inputPairs, predicts: true, labels: classLabels,
			main: "accuracy", secondary: "macro_f1", batchSize: 40, maxLength: 128,
			outputs: labelOutputs, newHead: linearHead, loss: classLoss, decodePair: decodeClass, eval: evalClasses,
		},
		{
			kind: Classification, input: inputPairs, predicts: true, labels: classLabels,
			main: "accuracy", secondary: "macro_f1", batchSize: 40, maxLength: 128,
			outputs: labelOutputs, newHead: linearHead, loss: classLoss, decodePair: decodeClass, eval: evalClasses,
		},
		{
			kind: Regression, input: inputPairs, predicts: true, scored: true, labels: anyLabels,
			main: "pearson", secondary: "spearman", batchSize: 40, maxLength: 128,
			outputs: func(TaskSpec) int { return 1 }, newHead: linearHead, loss: scoreLoss, decodePair: decodeScore, eval: evalScores,
		},
		{
			kind: MLM, input: inputText, perToken: true, maskedLM: true, labels: noLabels,
			main: "accuracy", secondary: "perplexity", batchSize: 32, maxLength: 128,
			outputs: func(TaskSpec) int { return 0 }, newHead: mlmHead, loss: mlmLoss, rows: mlmRows, eval: evalMLM,
		},
	}
	kindOf = make(map[Kind]*headKind, len(kinds))
	for _, k := range kinds {
		kindOf[k.kind] = k
	}
}

// Kinds returns every known kind, in documentation order.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for i, k := range kinds {
		out[i] = k.kind
	}
	return out
}

// hk returns k's entry, or a zero entry (every property false) for an unknown kind.
func (k Kind) hk() *headKind {
	if h, ok := kindOf[k]; ok {
		return h
	}
	return &headKind{}
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { _, ok := kindOf[k]; return ok }

// PerToken reports whether a head of kind k outputs per sub-word (ner tags, mlm tokens)
// rather than per sequence from the [CLS] vector or the pooler (and so whether use_pooler
// applies).
func (k Kind) PerToken() bool { return k.hk().perToken }

// Predicts reports whether a head of kind k returns anything at inference; an mlm head
// only trains the encoder.
func (k Kind) Predicts() bool { return k.hk().predicts }

// ReadsSpans reports whether a task of kind k reads documents with labelled spans, aligned
// to sub-words and windowed (the ner options scheme, stride, overlap and
// label_all_subwords; the label set from the span types).
func (k Kind) ReadsSpans() bool { return k.hk().input == inputSpans }

// ReadsPairs reports whether a task of kind k reads sentence pairs.
func (k Kind) ReadsPairs() bool { return k.hk().input == inputPairs }

// ReadsText reports whether a task of kind k reads raw text, packed into sequences.
func (k Kind) ReadsText() bool { return k.hk().input == inputText }

// Labeled reports whether a task of kind k has a label set (its head's outputs).
func (k Kind) Labeled() bool { return k.hk().labels == classLabels }

// Scored reports whether a task of kind k learns real-valued scores rather than labels.
func (k Kind) Scored() bool { return k.hk().scored }

// MaskedLM reports whether the head of kind k is the encoder's masked-language-model head:
// the checkpoint loads as BertForMaskedLM, the batches are masked as drawn, and the task is
// one pretraining takes.
func (k Kind) MaskedLM() bool { return k.hk().maskedLM }

// MainMetric names the metric tasks of kind k are compared and selected by: span_f1 for
// ner, accuracy for classification, pearson for regression, accuracy (of the masked tokens)
// for mlm; "" for an unknown kind.
func (k Kind) MainMetric() string { return k.hk().main }

// SecondaryMetric names the metric a run's summary shows beside the main one: token_f1,
// macro_f1, spearman, perplexity; "" for an unknown kind.
func (k Kind) SecondaryMetric() string { return k.hk().secondary }

// DefaultBatchSize is a task's batch size when its config gives none.
func (k Kind) DefaultBatchSize() int { return k.hk().batchSize }

// DefaultMaxLength is a task's max_length when its config gives none.
func (k Kind) DefaultMaxLength() int { return k.hk().maxLength }

// extracts reports whether heads of kind k tag notes (Extract, PlanNote).
func extracts(k Kind) bool { return k.Predicts() && k.PerToken() }

// pairs reports whether heads of kind k label sentence pairs (Pair, PlanPair).
func pairs(k Kind) bool { return k.Predicts() && !k.PerToken() }

// checkLabels checks s.Labels against the kind's rule.
func (s TaskSpec) checkLabels() error {
	switch s.Kind.hk().labels {
	case noLabels:
		if len(s.Labels) > 0 {
			return fmt.Errorf("task %s: an %s head has no labels", s.Name, s.Kind)
		}
	case classLabels:
		if len(s.Labels) < 2 {
			return fmt.Errorf("task %s: a %s head needs at least 2 labels, have %d", s.Name, s.Kind, len(s.Labels))
		}
	}
	return nil
}

func labelOutputs(s TaskSpec) int { return len(s.Labels) }

// linearHead is dropout then a linear layer, initialised as transformers initialises one
// (normal with initializer_range, zero bias).
func linearHead(in headInit, s TaskSpec) (*Head, error) {
	return &Head{
		Spec:   s,
		Linear: nn.NewLinear(nn.Root(in.params).Sub(s.Name), in.rng, in.enc.Cfg.HiddenSize, s.Outputs(), true, in.enc.Cfg.InitializerRange),
		Drop:   nn.NewDropout(float32(in.dropout), in.seed+uint64(in.index)*0x9e37),
	}, nil
}

// mlmHead is the encoder's prediction head, added (seeded with seed^MLMHeadSeedOffset) when
// the encoder has none.
func mlmHead(in headInit, s TaskSpec) (*Head, error) {
	if !in.enc.HasMLMHead() {
		if _, err := in.enc.AddMLMHead(in.seed ^ MLMHeadSeedOffset); err != nil {
			return nil, err
		}
	}
	return &Head{Spec: s, MLM: in.enc.MLMHead()}, nil
}

// tagLoss is cross-entropy averaged over the trained sub-words.
func tagLoss(tp *autograd.Tape, m *Model, h *Head, out *bert.Output, b *Batch, train bool) (*autograd.Var, error) {
	z := m.logits(tp, h, out, train)
	if len(b.Tags) != b.Enc.B*b.Enc.T {
		return nil, fmt.Errorf("task %s: %d tags for a %dx%d batch", h.Spec.Name, len(b.Tags), b.Enc.B, b.Enc.T)
	}
	return tp.CrossEntropy(z, b.Tags, IgnoreLabel), nil
}

// classLoss is cross-entropy averaged over the sequences.
func classLoss(tp *autograd.Tape, m *Model, h *Head, out *bert.Output, b *Batch, train bool) (*autograd.Var, error) {
	z := m.logits(tp, h, out, train)
	if len(b.Classes) != b.Enc.B {
		return nil, fmt.Errorf("task %s: %d labels for %d sequences", h.Spec.Name, len(b.Classes), b.Enc.B)
	}
	return tp.CrossEntropy(z, b.Classes, IgnoreLabel), nil
}

// scoreLoss is the mean-squared error over the sequences.
func scoreLoss(tp *autograd.Tape, m *Model, h *Head, out *bert.Output, b *Batch, train bool) (*autograd.Var, error) {
	z := m.logits(tp, h, out, train)
	if len(b.Scores) != b.Enc.B {
		return nil, fmt.Errorf("task %s: %d scores for %d sequences", h.Spec.Name, len(b.Scores), b.Enc.B)
	}
	return tp.MSE(z, b.Scores), nil
}

// mlmLoss is cross-entropy over the masked positions (b.Tags, IgnoreLabel elsewhere), from
// the encoder's output at those positions only when Model.Loss ran it so (out.Rows, mlmRows).
func mlmLoss(tp *autograd.Tape, m *Model, h *Head, out *bert.Output, b *Batch, train bool) (*autograd.Var, error) {
	if len(b.Tags) != b.Enc.B*b.Enc.T {
		return nil, fmt.Errorf("task %s: %d masked labels for a %dx%d batch", h.Spec.Name, len(b.Tags), b.Enc.B, b.Enc.T)
	}
	if out.Rows != nil {
		targets := make([]int32, len(out.Rows))
		for i, r := range out.Rows {
			targets[i] = b.Tags[r]
		}
		return h.MLM.LossRows(tp, out.Last, targets), nil
	}
	loss, n := h.MLM.Loss(tp, out.Last, b.Tags)
	if n == 0 {
		// Nothing was masked (a batch of very short sequences): a zero loss, no gradient.
		return autograd.Constant(tensor.New(1)), nil
	}
	return loss, nil
}

// mlmRows is the masked positions of b, the only rows mlmLoss reads; none when b's labels do
// not match its size (mlmLoss then reports it).
func mlmRows(b *Batch) []int32 {
	if len(b.Tags) != b.Enc.B*b.Enc.T {
		return nil
	}
	pos, _ := bert.MaskedPositions(b.Tags)
	return pos
}

// decodeClass is the argmax label and the softmax over the labels.
func decodeClass(s TaskSpec, v []float32) PairResult {
	k, _ := argmax(v)
	pr := PairResult{Label: s.Labels[k], Probs: make(map[string]float64, len(v))}
	for j, l := range s.Labels {
		pr.Probs[l] = softmaxAt(v, j)
	}
	return pr
}

// decodeScore is the head's single output.
func decodeScore(_ TaskSpec, v []float32) PairResult {
	sc := float64(v[0])
	return PairResult{Score: &sc}
}
