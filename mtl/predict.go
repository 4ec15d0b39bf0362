package mtl

import (
	"context"
	"fmt"
	"strings"

	"github.com/mtbert/mtbert/bert"
)

// Entity is one extracted mention.
//
// Start and End are CHARACTER offsets: Unicode code points (runes) from the start of the
// note, half-open, as Python's str indexing counts them; ByteStart and ByteEnd are the same
// span as UTF-8 byte offsets (Go's string indexing). Text equals the note at both:
// []rune(note)[Start:End] and note[ByteStart:ByteEnd].
type Entity struct {
	Type      string `json:"type"`
	Start     int    `json:"start"`
	End       int    `json:"end"`
	ByteStart int    `json:"byte_start"`
	ByteEnd   int    `json:"byte_end"`
	Text      string `json:"text"`
	// Score is the mean, over the entity's words, of the softmax probability of the tag
	// predicted on the word's first sub-word.
	Score float64 `json:"score"`
}

// Result is what Extract finds in one note: per selected ner task its entities, in text
// order (an empty list when none).
type Result struct {
	Entities map[string][]Entity `json:"entities"`
}

// PairResult is one sentence-level head's output: Label and Probs (softmax over the labels)
// for classification, Score for regression.
type PairResult struct {
	Label string             `json:"label,omitempty"`
	Probs map[string]float64 `json:"probs,omitempty"`
	Score *float64           `json:"score,omitempty"`
}

// Extractor runs a multitask checkpoint over raw text. It is safe for concurrent use: each
// call runs its own forward passes and the model is only read.
type Extractor struct {
	model *Model
	tok   *bert.Tokenizer
	// Batch is the number of windows per forward pass (default 8).
	Batch int
	// Decoding is how notes' ner predictions become entities (zero value: DecodeStrict).
	Decoding NERDecoding
}

// LoadExtractor loads a checkpoint written by SaveCheckpoint (checksums verified; the
// tokenizer from its tokenizer_config.json).
func LoadExtractor(dir string) (*Extractor, error) {
	m, tok, err := LoadCheckpoint(dir, bert.DefaultLowerCase)
	if err != nil {
		return nil, err
	}
	return NewExtractor(m, tok), nil
}

// NewExtractor wraps a model and its tokenizer.
func NewExtractor(m *Model, tok *bert.Tokenizer) *Extractor {
	return &Extractor{model: m, tok: tok, Batch: 8}
}

// UseEncoder runs the extractor's encoder passes with enc (see Model.UseEncoder).
func (e *Extractor) UseEncoder(enc bert.Encoder) { e.model.UseEncoder(enc) }

// Model returns the extractor's model.
func (e *Extractor) Model() *Model { return e.model }

// Tasks returns the model's task specs in head order.
func (e *Extractor) Tasks() []TaskSpec { return e.model.Specs() }

// heads returns the named heads (every head when names is empty) whose kind ok accepts. A
// name that is not a task, or a task ok refuses, is an error.
func (e *Extractor) heads(names []string, ok func(Kind) bool, what string) ([]*Head, error) {
	if len(names) == 0 {
		var out []*Head
		for _, h := range e.model.Heads {
			if ok(h.Spec.Kind) {
				out = append(out, h)
			}
		}
		return out, nil
	}
	var out []*Head
	seen := map[string]bool{}
	for _, n := range names {
		h := e.model.Head(n)
		if h == nil {
			var have []string
			for _, h := range e.model.Heads {
				have = append(have, h.Spec.Name)
			}
			return nil, fmt.Errorf("mtl: no task %q in the model (tasks: %s)", n, strings.Join(have, ", "))
		}
		if !ok(h.Spec.Kind) {
			return nil, fmt.Errorf("mtl: task %s is %s, not %s", n, h.Spec.Kind, what)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// SplitTasks splits task names into the model's ner tasks and its sentence-level tasks, in
// the given order; an unknown name is an error. Empty names select every task.
func (e *Extractor) SplitTasks(names []string) (ner, sentence []string, err error) {
	if _, err := e.heads(names, func(Kind) bool { return true }, ""); err != nil {
		return nil, nil, err
	}
	for _, h := range e.model.Heads {
		want := len(names) == 0
		for _, n := range names {
			want = want || n == h.Spec.Name
		}
		if !want {
			continue
		}
		switch {
		case extracts(h.Spec.Kind):
			ner = append(ner, h.Spec.Name)
		case pairs(h.Spec.Kind):
			sentence = append(sentence, h.Spec.Name)
		case len(names) > 0:
			return nil, nil, fmt.Errorf("mtl: task %s is %s: it predicts nothing", h.Spec.Name, h.Spec.Kind)
		}
	}
	return ner, sentence, nil
}

// Extract finds the entities of the selected ner tasks (all of them when tasks is empty) in
// one note: PlanNote, Run (at most Batch windows a pass), Decode. The encoder runs ONCE per
// window for all the selected heads that share a window geometry; each word takes every
// head's argmax at its first sub-word from the window where that sub-word is most central.
// Invalid UTF-8 is an error; an empty note (or one without tokens) gives empty lists. ctx is
// checked between forward passes.
//
// Each window is padded to a length that depends on its own length only (PadLength), never
// on the other windows of its forward pass, so a note's result is bit-identical whether it
// runs alone, Batch windows at a time, or batched with other notes (ExtractMany, the server).
func (e *Extractor) Extract(ctx context.Context, text string, tasks []string) (Result, error) {
	res, err := e.ExtractMany(ctx, []string{text}, tasks)
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// ExtractMany runs Extract on several notes at once, sharing forward passes between them:
// the windows of all the notes go through the encoder together, at most Batch windows of one
// padded length (PadLength) a pass. Each result equals Extract's on its note, bit for bit. An
// invalid note is an error that names its index; ctx is checked between passes.
func (e *Extractor) ExtractMany(ctx context.Context, texts []string, tasks []string) ([]Result, error) {
	heads, err := e.heads(tasks, extracts, "ner")
	if err != nil {
		return nil, err
	}
	plans := make([]*NotePlan, len(texts))
	var seqs []Sequence
	for i, t := range texts {
		if plans[i], err = e.planNote(t, heads, -1); err != nil {
			if len(texts) > 1 {
				err = fmt.Errorf("note %d: %w", i, err)
			}
			return nil, err
		}
		seqs = append(seqs, plans[i].Sequences()...)
	}
	out, err := e.Run(ctx, seqs, PassLimits{MaxSeqs: e.Batch}, nil)
	if err != nil {
		return nil, err
	}
	res := make([]Result, len(texts))
	k := 0
	for i, p := range plans {
		n := p.Len()
		if res[i], err = p.Decode(out[k : k+n]); err != nil {
			return nil, err
		}
		k += n
	}
	return res, nil
}

// Pair runs the selected sentence-level tasks (all of them when tasks is empty) on one pair
// of texts: PlanPair, Run, Decode. The pair is encoded once per max length of the selected
// heads ([CLS] a [SEP] b [SEP], or [CLS] a [SEP] when b is empty, truncated to it) and runs
// through one encoder pass for all the heads of that length. Invalid UTF-8 is an error; two
// empty texts give an empty result.
func (e *Extractor) Pair(ctx context.Context, a, b string, tasks []string) (map[string]PairResult, error) {
	p, err := e.PlanPair(a, b, tasks)
	if err != nil {
		return nil, err
	}
	out, err := e.Run(ctx, p.Sequences(), PassLimits{MaxSeqs: e.Batch}, nil)
	if err != nil {
		return nil, err
	}
	return p.Decode(out)
}
