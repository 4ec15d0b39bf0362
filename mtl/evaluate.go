package mtl

import (
	"context"
	"errors"
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

// MainMetric names the metric a kind of task is compared and selected by: span_f1 for ner,
// accuracy for classification, pearson for regression, accuracy (of the masked tokens) for
// mlm.
func MainMetric(k Kind) string {
	switch k {
	case NER:
		return "span_f1"
	case Regression:
		return "pearson"
	}
	return "accuracy"
}

// Evaluate scores every loaded task that has the split (the others are skipped) with m, in
// task order. Every task must have a head in m.
func Evaluate(m *Model, tok *bert.Tokenizer, loaded []*LoadedTask, split string) ([]TaskMetrics, error) {
	var out []TaskMetrics
	for _, lt := range loaded {
		tm, err := EvaluateTask(m, tok, lt, split)
		if err != nil {
			return nil, err
		}
		if tm != nil {
			out = append(out, *tm)
		}
	}
	return out, nil
}

// EvaluateTask scores one task on split; nil (and no error) when the task has no such split.
// Inputs are predicted in batches of the task's batch size: ner windows are cut as in
// training (the task's max_length and stride), each sub-word takes the argmax label of the
// window where it is most central (MergeWindows) and word tags decode to spans with their
// exact text (AlignedDoc.Decode).
func EvaluateTask(m *Model, tok *bert.Tokenizer, lt *LoadedTask, split string) (*TaskMetrics, error) {
	t := lt.Task
	sd := lt.Split(split)
	if sd == nil {
		return nil, nil
	}
	h := m.Head(t.Name)
	if h == nil {
		return nil, fmt.Errorf("task %s: the model has no head for it", t.Name)
	}
	if h.Spec.Kind != t.Kind {
		return nil, fmt.Errorf("task %s: the model's head is %s, the config says %s", t.Name, h.Spec.Kind, t.Kind)
	}
	tm := &TaskMetrics{Task: t.Name, Kind: t.Kind, Split: split, Main: MainMetric(t.Kind), Metrics: map[string]float64{}}
	var err error
	if t.Kind == NER {
		err = evalNER(m, h, tok, lt, sd, tm)
	} else if t.Kind == MLM {
		err = evalMLM(m, h, tok, lt, sd, tm)
	} else {
		err = evalPairs(m, h, tok, lt, sd, tm)
	}
	if err != nil {
		return nil, fmt.Errorf("task %s, %s: %w", t.Name, split, err)
	}
	tm.Value = tm.Metrics[tm.Main]
	return tm, nil
}

func evalNER(m *Model, h *Head, tok *bert.Tokenizer, lt *LoadedTask, sd *SplitData, tm *TaskMetrics) error {
	labels, err := NewLabels(h.Spec.Labels)
	if err != nil {
		return err
	}
	opts, err := lt.Task.AlignOptions()
	if err != nil {
		return err
	}
	if opts.MaxLen > m.Encoder.Cfg.MaxPositionEmbeddings {
		return fmt.Errorf("max_length %d exceeds the encoder's %d positions", opts.MaxLen, m.Encoder.Cfg.MaxPositionEmbeddings)
	}
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
			if labels.checkType(opts.Scheme, s.Type) != nil {
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
	wins := al.Windows()
	ids := make([][]int32, len(wins))
	for i, w := range wins {
		ids[i] = w.IDs
	}
	out, err := runSequences(context.Background(), m, []*Head{h}, ids, nil, lt.Task.BatchSize, padID(tok))
	if err != nil {
		return err
	}
	logits := out[h.Spec.Name]
	L := labels.Len()
	preds := make([][]int32, len(wins))
	for i := range wins {
		preds[i] = make([]int32, len(wins[i].IDs))
		for q := range preds[i] {
			preds[i][q], _ = argmax(logits[i][q*L : (q+1)*L])
		}
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
		nw := len(ad.Windows)
		if nw == 0 {
			k += nw
			continue
		}
		merged, err := MergeWindows(len(ad.Tokens), ad.Windows, preds[k:k+nw])
		if err != nil {
			return err
		}
		k += nw
		tags, err := ad.WordTagsOf(merged, labels)
		if err != nil {
			return err
		}
		predSpans[i] = ad.SpansOfWordTags(tags)
		nPred += len(predSpans[i])
		goldTags = append(goldTags, ad.WordTags)
		predTags = append(predTags, tags)
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

func evalPairs(m *Model, h *Head, tok *bert.Tokenizer, lt *LoadedTask, sd *SplitData, tm *TaskMetrics) error {
	if len(sd.Pairs) == 0 {
		tm.Notes = append(tm.Notes, "no pairs")
		return nil
	}
	maxLen := min(lt.Task.MaxLength, m.Encoder.Cfg.MaxPositionEmbeddings)
	ids := make([][]int32, len(sd.Pairs))
	types := make([][]int32, len(sd.Pairs))
	for i, p := range sd.Pairs {
		ids[i], types[i] = EncodeText(tok, p.TextA, p.TextB, maxLen)
	}
	out, err := runSequences(context.Background(), m, []*Head{h}, ids, types, lt.Task.BatchSize, padID(tok))
	if err != nil {
		return err
	}
	res := out[h.Spec.Name]
	tm.Count = len(sd.Pairs)
	if h.Spec.Kind == Regression {
		gold, pred := make([]float64, len(sd.Pairs)), make([]float64, len(sd.Pairs))
		mse := 0.0
		for i, p := range sd.Pairs {
			if !p.HasScore {
				return fmt.Errorf("pair %s has no score", p.ID)
			}
			gold[i], pred[i] = p.Score, float64(res[i][0])
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
	gold, pred := make([]string, len(sd.Pairs)), make([]string, len(sd.Pairs))
	for i, p := range sd.Pairs {
		gold[i] = p.Label
		c, _ := argmax(res[i])
		pred[i] = h.Spec.Labels[c]
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

// argmax returns the index of the largest value (the first on ties) and that value.
func argmax(x []float32) (int32, float32) {
	best, bv := 0, float32(math.Inf(-1))
	for i, v := range x {
		if v > bv {
			best, bv = i, v
		}
	}
	return int32(best), bv
}

// softmaxAt returns the softmax probability of x[k], computed in float64.
func softmaxAt(x []float32, k int) float64 { return math.Exp(logSoftmaxAt(x, k)) }

// logSoftmaxAt returns log softmax(x)[k] in float64, without underflow.
func logSoftmaxAt(x []float32, k int) float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	return float64(x[k]) - mx - math.Log(s)
}

// runSequences runs the encoder once per batch of sequences (padded to the batch's longest)
// and every head on its output, returning per head and per sequence the head's outputs
// unpadded: len(ids[i]) × labels logits (row-major) for ner heads, the label logits for
// classification heads, one score for regression. types may be nil (all 0). ctx is checked
// between batches.
func runSequences(ctx context.Context, m *Model, heads []*Head, ids, types [][]int32, batch, pad int) (map[string][][]float32, error) {
	if batch < 1 {
		batch = 1
	}
	out := make(map[string][][]float32, len(heads))
	for _, h := range heads {
		out[h.Spec.Name] = make([][]float32, len(ids))
	}
	for lo := 0; lo < len(ids); lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(len(ids), lo+batch)
		T := 0
		for _, s := range ids[lo:hi] {
			T = max(T, len(s))
		}
		if T == 0 {
			return nil, errors.New("mtl: empty input sequence")
		}
		n := hi - lo
		b := bert.Batch{B: n, T: T, IDs: make([]int32, n*T), TypeIDs: make([]int32, n*T), Mask: make([]float32, n*T)}
		for i := 0; i < n; i++ {
			s := ids[lo+i]
			for j := 0; j < T; j++ {
				k := i*T + j
				if j >= len(s) {
					b.IDs[k] = int32(pad)
					continue
				}
				b.IDs[k], b.Mask[k] = s[j], 1
				if types != nil {
					b.TypeIDs[k] = types[lo+i][j]
				}
			}
		}
		res, err := m.Predict(b, heads)
		if err != nil {
			return nil, err
		}
		for _, h := range heads {
			r := res[h.Spec.Name]
			w := h.Spec.Outputs()
			for i := 0; i < n; i++ {
				if h.Spec.Kind == NER {
					l := len(ids[lo+i])
					out[h.Spec.Name][lo+i] = append([]float32(nil), r[i*T*w:(i*T+l)*w]...)
				} else {
					out[h.Spec.Name][lo+i] = append([]float32(nil), r[i*w:(i+1)*w]...)
				}
			}
		}
	}
	return out, nil
}

// EvalMaskSeed seeds the masks of mlm evaluation: fixed, so every evaluation of a run (and of
// any run on the same text) scores the same masked positions.
const EvalMaskSeed = 0xe7a1

// evalMLM scores masked-language modelling on a split's text, packed as in training and masked
// once with EvalMaskSeed (sequence i with key i): accuracy (argmax equals the original token),
// loss (mean cross-entropy in nats over the masked tokens), perplexity (e^loss), and the
// counts of masked tokens and sequences.
func evalMLM(m *Model, h *Head, tok *bert.Tokenizer, lt *LoadedTask, sd *SplitData, tm *TaskMetrics) error {
	exs, err := PackText(tok, sd.Docs, h.Spec.MaxLength)
	if err != nil {
		return err
	}
	mk, err := bert.NewMasking(tok.Vocab(), EvalMaskSeed, lt.Task.WholeWordMasking)
	if err != nil {
		return err
	}
	bs := max(1, lt.Task.BatchSize)
	var sumLoss float64
	correct, n := 0, 0
	for lo := 0; lo < len(exs); lo += bs {
		hi := min(len(exs), lo+bs)
		b := Collate(exs[lo:hi], MLM, padID(tok))
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
