package score

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/mtbert/mtbert/mtl/corpus"
	"gonum.org/v1/gonum/stat"
)

// PRF holds counts and precision, recall and F1 (0 where undefined, as
// seqeval and scikit-learn's zero_division=0).
type PRF struct {
	TP, FP, FN            int
	Precision, Recall, F1 float64
}

func newPRF(tp, fp, fn int) PRF {
	r := PRF{TP: tp, FP: fp, FN: fn}
	if tp+fp > 0 {
		r.Precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		r.Recall = float64(tp) / float64(tp+fn)
	}
	if r.Precision+r.Recall > 0 {
		r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
	}
	return r
}

// Scores is a micro-averaged PRF and one PRF per type (every type seen in
// gold or predictions).
type Scores struct {
	Micro   PRF
	PerType map[string]PRF
}

// Types returns the type names of PerType, sorted.
func (s Scores) Types() []string {
	t := make([]string, 0, len(s.PerType))
	for k := range s.PerType {
		t = append(t, k)
	}
	sort.Strings(t)
	return t
}

// SpanF1 is strict span matching, the CoNLL evaluation script's and
// seqeval's measure: a predicted span is a true positive when a gold span
// of the same document has the same type and the same pieces (boundaries,
// and fragments for discontinuous spans). Spans are compared as sets per
// document, so duplicates count once. gold[i] and pred[i] are the spans of
// document i.
func SpanF1(gold, pred [][]corpus.Span) (Scores, error) {
	if len(gold) != len(pred) {
		return Scores{}, fmt.Errorf("mtl: SpanF1: %d gold documents, %d predicted", len(gold), len(pred))
	}
	per := counter{}
	get := per.get
	for i := range gold {
		g := map[string]string{}
		for _, s := range gold[i] {
			g[s.Key()] = s.Type
		}
		p := map[string]string{}
		for _, s := range pred[i] {
			p[s.Key()] = s.Type
		}
		for k, t := range p {
			if _, ok := g[k]; ok {
				get(t).tp++
			} else {
				get(t).fp++
			}
		}
		for k, t := range g {
			if _, ok := p[k]; !ok {
				get(t).fn++
			}
		}
	}
	return collect(per), nil
}

// counts are true positives, false positives and false negatives.
type counts struct{ tp, fp, fn int }

// counter holds counts per type.
type counter map[string]*counts

func (m counter) get(t string) *counts {
	c := m[t]
	if c == nil {
		c = &counts{}
		m[t] = c
	}
	return c
}

func collect(per counter) Scores {
	s := Scores{PerType: map[string]PRF{}}
	tp, fp, fn := 0, 0, 0
	for t, c := range per {
		s.PerType[t] = newPRF(c.tp, c.fp, c.fn)
		tp += c.tp
		fp += c.fp
		fn += c.fn
	}
	s.Micro = newPRF(tp, fp, fn)
	return s
}

// TokenF1 is the NER "micro-F1" of the paper's reference code
// (multitasking_transformers/evaluation/evaluate.py, evaluate_ner with
// evaluate_bilou=False): every word-level tag is mapped to its entity type
// by stripping the B/I/L/U prefix (TagType), and scikit-learn's
// f1_score(average="micro") is taken over the entity labels only, O (and
// any tag in ignore, e.g. the reference's "BERT_TOKEN") excluded. So for
// each word with gold type g and predicted type p:
//
//	TP += 1 if g == p and g is an entity label
//	FP += 1 if p is an entity label and p != g
//	FN += 1 if g is an entity label and g != p
//
// O-O words count nowhere; a word tagged B-X in gold and I-X in the
// prediction is a true positive. gold[i] and pred[i] are the tags of
// sentence (or document) i and must have equal lengths. The reference
// computed this over sub-words mapped back to words; here the caller
// passes one tag per word. PerType holds the per-label scores (the
// reference's average=None).
func TokenF1(gold, pred [][]string, ignore ...string) (Scores, error) {
	if len(gold) != len(pred) {
		return Scores{}, fmt.Errorf("mtl: TokenF1: %d gold sequences, %d predicted", len(gold), len(pred))
	}
	skip := map[string]bool{"O": true}
	for _, t := range ignore {
		skip[t] = true
	}
	per := counter{}
	get := per.get
	for i := range gold {
		if len(gold[i]) != len(pred[i]) {
			return Scores{}, fmt.Errorf("mtl: TokenF1: sequence %d: %d gold tags, %d predicted", i, len(gold[i]), len(pred[i]))
		}
		for j := range gold[i] {
			g, p := corpus.TagType(gold[i][j]), corpus.TagType(pred[i][j])
			if g == p {
				if !skip[g] {
					get(g).tp++
				}
				continue
			}
			if !skip[p] {
				get(p).fp++
			}
			if !skip[g] {
				get(g).fn++
			}
		}
	}
	return collect(per), nil
}

// Accuracy returns the fraction of positions where pred equals gold.
func Accuracy(gold, pred []string) (float64, error) {
	if len(gold) != len(pred) || len(gold) == 0 {
		return 0, fmt.Errorf("mtl: Accuracy: %d gold labels, %d predicted (need equal, > 0)", len(gold), len(pred))
	}
	n := 0
	for i := range gold {
		if gold[i] == pred[i] {
			n++
		}
	}
	return float64(n) / float64(len(gold)), nil
}

// MacroF1 returns the unweighted mean over classes of the per-class F1
// (scikit-learn's f1_score(average="macro") with zero_division=0), the
// classes being every label that occurs in gold or pred.
func MacroF1(gold, pred []string) (float64, error) {
	if len(gold) != len(pred) || len(gold) == 0 {
		return 0, fmt.Errorf("mtl: MacroF1: %d gold labels, %d predicted (need equal, > 0)", len(gold), len(pred))
	}
	per := counter{}
	get := per.get
	for i := range gold {
		if gold[i] == pred[i] {
			get(gold[i]).tp++
			continue
		}
		get(pred[i]).fp++
		get(gold[i]).fn++
	}
	s := collect(per)
	sum := 0.0
	for _, t := range s.Types() {
		sum += s.PerType[t].F1
	}
	return sum / float64(len(s.PerType)), nil
}

var errDegenerate = errors.New("a variable is constant")

func checkXY(name string, x, y []float64) error {
	if len(x) != len(y) || len(x) < 2 {
		return fmt.Errorf("mtl: %s: %d and %d values (need equal, >= 2)", name, len(x), len(y))
	}
	for i := range x {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) || math.IsInf(x[i], 0) || math.IsInf(y[i], 0) {
			return fmt.Errorf("mtl: %s: value %d is not finite", name, i)
		}
	}
	return nil
}

// Pearson returns Pearson's correlation coefficient of x and y
// (gonum stat.Correlation, unweighted), the STS metric of the paper. It is
// an error when the lengths differ, fewer than two values are given or a
// variable is constant.
func Pearson(x, y []float64) (float64, error) {
	if err := checkXY("Pearson", x, y); err != nil {
		return 0, err
	}
	r := stat.Correlation(x, y, nil)
	if math.IsNaN(r) {
		return 0, fmt.Errorf("mtl: Pearson: %w", errDegenerate)
	}
	return r, nil
}

// Spearman returns Spearman's rank correlation of x and y: Pearson's
// correlation of their ranks, tied values receiving the average of the
// ranks they span (as scipy.stats.spearmanr).
func Spearman(x, y []float64) (float64, error) {
	if err := checkXY("Spearman", x, y); err != nil {
		return 0, err
	}
	r := stat.Correlation(ranks(x), ranks(y), nil)
	if math.IsNaN(r) {
		return 0, fmt.Errorf("mtl: Spearman: %w", errDegenerate)
	}
	return r, nil
}

// ranks returns 1-based ranks of x with ties given their average rank.
func ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && x[idx[j+1]] == x[idx[i]] {
			j++
		}
		avg := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = avg
		}
		i = j + 1
	}
	return r
}
