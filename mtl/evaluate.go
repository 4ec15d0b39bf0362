package mtl

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/score"
)

// TypeScore is precision, recall and F1 of one entity type, with its counts.
type TypeScore struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
}

func typeScore(p score.PRF) TypeScore {
	return TypeScore{Precision: p.Precision, Recall: p.Recall, F1: p.F1, TP: p.TP, FP: p.FP, FN: p.FN}
}

// TaskMetrics are one task's scores on one split.
//
// NER (Metrics keys): span_f1, span_precision, span_recall (strict span matching, micro over
// types, against the gold spans as read after the task's overlap policy: a gold span that
// alignment widened, split or dropped cannot be matched exactly and counts as missed);
// token_f1, token_precision, token_recall (the paper's word-level measure, TokenF1 over the
// aligned gold word tags); gold_spans and predicted_spans. PerType holds the strict span
// scores per type. Pair and single-text classification: accuracy, macro_f1. Regression:
// pearson, spearman, mse (a correlation that is undefined, e.g. constant predictions, is
// left out and explained in Notes).
type TaskMetrics struct {
	Task  string `json:"task"`
	Kind  Kind   `json:"kind"`
	Split string `json:"split"`
	// Count is the number of documents (ner) or pairs evaluated.
	Count int `json:"count"`
	// Main names the task's main metric (MainMetric) and Value is its value (0 when
	// undefined).
	Main    string               `json:"main"`
	Value   float64              `json:"value"`
	Metrics map[string]float64   `json:"metrics"`
	PerType map[string]TypeScore `json:"per_type,omitempty"`
	Notes   []string             `json:"notes,omitempty"`
}

// MainMetric names the metric a kind of task is compared and selected by (Kind.MainMetric):
// span_f1 for ner, accuracy for classification, pearson for regression, accuracy (of the
// masked tokens) for mlm.
func MainMetric(k Kind) string { return k.MainMetric() }

// EvalSet is one task's split as evaluation needs it: the gold documents (ner, mlm) or
// pairs (sentence tasks), how the gold spans are tagged, and the batch size.
type EvalSet struct {
	Task, Split string
	Kind        Kind
	Docs        []corpus.Document
	Pairs       []corpus.Pair
	// Align gives the gold spans' scheme and overlap policy (ner); its window geometry is
	// not used: predictions are windowed with the head's saved geometry, as Extract does.
	Align AlignOptions
	// BatchSize is the number of sequences per forward pass.
	BatchSize int
	// WholeWordMasking masks whole words in mlm evaluation.
	WholeWordMasking bool
}

// Evaluate scores m's head for the set's task on the set. Predictions take the path of
// Extract and Pair (PlanNote or PlanPair, Run, Decode) with the head's saved window
// geometry, so what evaluation scores is exactly what predict and serve return: ner spans
// by strict span F1 against the gold spans after the overlap policy, the word tags by the
// reference's token F1; pairs by accuracy and macro-F1 or Pearson and Spearman; mlm by
// masked-token accuracy and perplexity.
func Evaluate(m *Model, tok *bert.Tokenizer, set EvalSet) (*TaskMetrics, error) {
	h := m.Head(set.Task)
	if h == nil {
		return nil, fmt.Errorf("task %s: the model has no head for it", set.Task)
	}
	if h.Spec.Kind != set.Kind {
		return nil, fmt.Errorf("task %s: the model's head is %s, the data is for %s", set.Task, h.Spec.Kind, set.Kind)
	}
	tm := &TaskMetrics{Task: set.Task, Kind: set.Kind, Split: set.Split, Main: MainMetric(set.Kind), Metrics: map[string]float64{}}
	if err := set.Kind.hk().eval(m, h, tok, &set, tm); err != nil {
		return nil, fmt.Errorf("task %s, %s: %w", set.Task, set.Split, err)
	}
	tm.Value = tm.Metrics[tm.Main]
	return tm, nil
}

func evalNER(m *Model, h *Head, tok *bert.Tokenizer, sd *EvalSet, tm *TaskMetrics) error {
	labels, err := NewLabels(h.Spec.Labels)
	if err != nil {
		return err
	}
	opts := sd.Align
	// Gold: the spans as read, after the overlap policy.
	gold := make([]corpus.Document, len(sd.Docs))
	copy(gold, sd.Docs)
	corpus.ResolveOverlaps(gold, opts.Overlap)
	// Alignment needs every type in the label set; spans of unknown types stay in gold (as
	// misses) but are left out of the aligned input.
	docs := make([]corpus.Document, len(sd.Docs))
	unknown := map[string]int{}
	for i, d := range sd.Docs {
		docs[i] = d
		docs[i].Spans = nil
		for _, s := range d.Spans {
			if labels.CheckType(opts.Scheme, s.Type) != nil {
				unknown[s.Type]++
				continue
			}
			docs[i].Spans = append(docs[i].Spans, s)
		}
	}
	for _, ty := range slices.Sorted(maps.Keys(unknown)) {
		tm.Notes = append(tm.Notes, fmt.Sprintf("%d gold spans of type %s, which the model does not know", unknown[ty], ty))
	}
	al, err := Align(tok, docs, labels, opts)
	if err != nil {
		return err
	}
	// Predictions: the path of Extract, with the head's saved window geometry.
	ex := NewExtractor(m, tok)
	plans := make([]*NotePlan, len(sd.Docs))
	var seqs []Sequence
	for i, d := range sd.Docs {
		if plans[i], err = ex.planNote(d.Text, []*Head{h}, -1); err != nil {
			return fmt.Errorf("document %s: %w", d.ID, err)
		}
		seqs = append(seqs, plans[i].Sequences()...)
	}
	out, err := ex.Run(context.Background(), seqs, PassLimits{MaxSeqs: sd.BatchSize}, nil)
	if err != nil {
		return err
	}
	predSpans := make([][]corpus.Span, len(al.Docs))
	goldSpans := make([][]corpus.Span, len(al.Docs))
	var goldTags, predTags [][]string
	k := 0
	nGold, nPred := 0, 0
	for i := range al.Docs {
		ad := &al.Docs[i]
		goldSpans[i] = gold[i].Spans
		nGold += len(gold[i].Spans)
		n := plans[i].Len()
		o := out[k : k+n]
		k += n
		res, err := plans[i].Decode(o)
		if err != nil {
			return err
		}
		for _, e := range res.Entities[h.Spec.Name] {
			predSpans[i] = append(predSpans[i], corpus.Span{Start: e.ByteStart, End: e.ByteEnd, Type: e.Type, Text: e.Text})
		}
		nPred += len(predSpans[i])
		if n == 0 {
			continue
		}
		tags, _, err := plans[i].WordTags(o)
		if err != nil {
			return err
		}
		if len(tags[h.Spec.Name]) != len(ad.WordTags) {
			return fmt.Errorf("document %s: %d predicted word tags for %d words", ad.ID, len(tags[h.Spec.Name]), len(ad.WordTags))
		}
		goldTags = append(goldTags, ad.WordTags)
		predTags = append(predTags, tags[h.Spec.Name])
	}
	spans, err := score.SpanF1(goldSpans, predSpans)
	if err != nil {
		return err
	}
	toks, err := score.TokenF1(goldTags, predTags)
	if err != nil {
		return err
	}
	tm.Count = len(al.Docs)
	tm.Metrics["span_f1"], tm.Metrics["span_precision"], tm.Metrics["span_recall"] = spans.Micro.F1, spans.Micro.Precision, spans.Micro.Recall
	tm.Metrics["token_f1"], tm.Metrics["token_precision"], tm.Metrics["token_recall"] = toks.Micro.F1, toks.Micro.Precision, toks.Micro.Recall
	tm.Metrics["gold_spans"], tm.Metrics["predicted_spans"] = float64(nGold), float64(nPred)
	tm.PerType = map[string]TypeScore{}
	for ty, p := range spans.PerType {
		tm.PerType[ty] = typeScore(p)
	}
	return nil
}

// predictPairs runs h on every pair of the set by the path of Pair (PlanPair, Run, Decode)
// and sets tm.Count; no pairs is a note and no results.
func predictPairs(m *Model, h *Head, tok *bert.Tokenizer, sd *EvalSet, tm *TaskMetrics) ([]PairResult, error) {
	if len(sd.Pairs) == 0 {
		tm.Notes = append(tm.Notes, "no pairs")
		return nil, nil
	}
	ex := NewExtractor(m, tok)
	plans := make([]*PairPlan, len(sd.Pairs))
	var seqs []Sequence
	for i, p := range sd.Pairs {
		var err error
		if plans[i], err = ex.planPair(p.TextA, p.TextB, []*Head{h}); err != nil {
			return nil, fmt.Errorf("pair %s: %w", p.ID, err)
		}
		seqs = append(seqs, plans[i].Sequences()...)
	}
	out, err := ex.Run(context.Background(), seqs, PassLimits{MaxSeqs: sd.BatchSize}, nil)
	if err != nil {
		return nil, err
	}
	res := make([]PairResult, len(sd.Pairs))
	k := 0
	for i, p := range plans {
		n := len(p.Sequences())
		r, err := p.Decode(out[k : k+n])
		if err != nil {
			return nil, err
		}
		k += n
		res[i] = r[h.Spec.Name]
	}
	tm.Count = len(sd.Pairs)
	return res, nil
}

// evalScores scores a regression head: mse, pearson, spearman.
func evalScores(m *Model, h *Head, tok *bert.Tokenizer, sd *EvalSet, tm *TaskMetrics) error {
	res, err := predictPairs(m, h, tok, sd, tm)
	if err != nil || res == nil {
		return err
	}
	gold, pred := make([]float64, len(sd.Pairs)), make([]float64, len(sd.Pairs))
	mse := 0.0
	for i, p := range sd.Pairs {
		if !p.HasScore {
			return fmt.Errorf("pair %s has no score", p.ID)
		}
		if res[i].Score == nil {
			return fmt.Errorf("pair %s: no prediction (both texts empty)", p.ID)
		}
		gold[i], pred[i] = p.Score, *res[i].Score
		mse += (gold[i] - pred[i]) * (gold[i] - pred[i])
	}
	tm.Metrics["mse"] = mse / float64(len(gold))
	for _, c := range []struct {
		name string
		f    func(x, y []float64) (float64, error)
	}{{"pearson", score.Pearson}, {"spearman", score.Spearman}} {
		v, err := c.f(gold, pred)
		if err != nil {
			tm.Notes = append(tm.Notes, fmt.Sprintf("%s undefined: %v", c.name, err))
			continue
		}
		tm.Metrics[c.name] = v
	}
	return nil
}

// evalClasses scores a pair or single-text classification head: accuracy, macro_f1.
func evalClasses(m *Model, h *Head, tok *bert.Tokenizer, sd *EvalSet, tm *TaskMetrics) error {
	res, err := predictPairs(m, h, tok, sd, tm)
	if err != nil || res == nil {
		return err
	}
	gold, pred := make([]string, len(sd.Pairs)), make([]string, len(sd.Pairs))
	for i, p := range sd.Pairs {
		gold[i] = p.Label
		pred[i] = res[i].Label
	}
	acc, err := score.Accuracy(gold, pred)
	if err != nil {
		return err
	}
	f1, err := score.MacroF1(gold, pred)
	if err != nil {
		return err
	}
	tm.Metrics["accuracy"], tm.Metrics["macro_f1"] = acc, f1
	return nil
}

// EvalMaskSeed seeds the masks of mlm evaluation: fixed, so every evaluation of a run (and of
// any run on the same text) scores the same masked positions.
const EvalMaskSeed = 0xe7a1

// evalMLM scores masked-language modelling on a split's text, packed as in training and masked
// once with EvalMaskSeed (sequence i with key i): accuracy (argmax equals the original token),
// loss (mean cross-entropy in nats over the masked tokens), perplexity (e^loss), and the
// counts of masked tokens and sequences.
func evalMLM(m *Model, h *Head, tok *bert.Tokenizer, sd *EvalSet, tm *TaskMetrics) error {
	exs, err := PackText(tok, sd.Docs, h.Spec.MaxLength)
	if err != nil {
		return err
	}
	mk, err := bert.NewMasking(tok.Vocab(), EvalMaskSeed, sd.WholeWordMasking)
	if err != nil {
		return err
	}
	bs := max(1, sd.BatchSize)
	var sumLoss float64
	correct, n := 0, 0
	for lo := 0; lo < len(exs); lo += bs {
		hi := min(len(exs), lo+bs)
		b := Collate(exs[lo:hi], h.Spec.Kind, PadID(tok))
		maskRows(mk, &b, func(r int) uint64 { return uint64(lo + r) })
		pos, targets := bert.MaskedPositions(b.Tags)
		if len(pos) == 0 {
			continue
		}
		tp := autograd.NoGrad()
		out, err := m.infer(tp, b.Enc)
		if err != nil {
			return err
		}
		logits := h.MLM.Logits(tp, out.Last, pos).Value.ToHost()
		tp.Reset()
		V := len(logits) / len(pos)
		for i, t := range targets {
			row := logits[i*V : (i+1)*V]
			k, _ := argmax(row)
			if k == t {
				correct++
			}
			sumLoss -= logSoftmaxAt(row, int(t))
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no token was masked (%d sequences)", len(exs))
	}
	loss := sumLoss / float64(n)
	tm.Metrics["accuracy"] = float64(correct) / float64(n)
	tm.Metrics["loss"] = loss
	tm.Metrics["perplexity"] = math.Exp(loss)
	tm.Metrics["masked"] = float64(n)
	tm.Metrics["sequences"] = float64(len(exs))
	return nil
}
