package mtl

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/gonum/stat"
)

// Scheme is a tagging scheme for token-level entity labels.
type Scheme int

const (
	// BIO is IOB2: B-X begins an entity of type X, I-X continues it, O is
	// outside.
	BIO Scheme = iota
	// BILOU is BIO plus L-X (last token) and U-X (single-token entity);
	// the same as IOBES with E=L and S=U. The reference code tags with it.
	BILOU
)

// String returns "BIO" or "BILOU".
func (s Scheme) String() string {
	switch s {
	case BIO:
		return "BIO"
	case BILOU:
		return "BILOU"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// TagSpan is an entity found in a tag sequence: tokens [Start,End) of
// type Type.
type TagSpan struct {
	Start, End int
	Type       string
}

// splitTag splits a tag into its prefix letter, normalised to seqeval's
// B I E S O (L -> E, U -> S), and its type. "O" and tags that are not of
// the form P-TYPE or a bare prefix letter are outside ('O').
func splitTag(tag string) (byte, string) {
	if tag == "" || tag == "O" {
		return 'O', ""
	}
	p := tag[0]
	switch p {
	case 'L':
		p = 'E'
	case 'U':
		p = 'S'
	case 'B', 'I', 'E', 'S':
	default:
		return 'O', ""
	}
	if len(tag) == 1 {
		return p, ""
	}
	if tag[1] != '-' {
		return 'O', ""
	}
	return p, tag[2:]
}

// endOfChunk and startOfChunk are seqeval's rules (sequence_labeling.py,
// default mode), over prefixes B I E S O.
func endOfChunk(prevTag, tag byte, prevType, typ string) bool {
	switch {
	case prevTag == 'E', prevTag == 'S':
		return true
	case (prevTag == 'B' || prevTag == 'I') && (tag == 'B' || tag == 'S' || tag == 'O'):
		return true
	}
	return prevTag != 'O' && prevType != typ
}

func startOfChunk(prevTag, tag byte, prevType, typ string) bool {
	switch {
	case tag == 'B', tag == 'S':
		return true
	case (prevTag == 'E' || prevTag == 'S' || prevTag == 'O') && (tag == 'E' || tag == 'I'):
		return true
	}
	return tag != 'O' && prevType != typ
}

// DecodeTags returns the entities of a tag sequence, in order, following
// seqeval's default (non-strict) get_entities, which is the same for BIO
// and BILOU/IOBES tags (the scheme only names what the caller expects):
//
//   - B-X and U-X (S-X) always start an entity; U-X (S-X) and L-X (E-X)
//     end it after the token;
//   - I-X or L-X after O, after an entity that has ended, or after a
//     different type starts a new entity (an ill-formed start);
//   - a change of type always ends the running entity.
//
// Tags that are neither O nor P-TYPE with P in B I L U E S are outside.
// Examples from seqeval's documentation and tests:
// [B-PER I-PER O B-LOC] gives PER 0-2, LOC 3-4; [O O O B-MISC I-MISC
// I-MISC O B-PER I-PER] gives MISC 3-6 and PER 7-9.
func DecodeTags(tags []string, scheme Scheme) []TagSpan {
	spans, _ := decodeTags(tags)
	return spans
}

// decodeTags is DecodeTags that also counts ill-formed starts: entities
// begun by an I- or E- (L-) tag.
func decodeTags(tags []string) ([]TagSpan, int) {
	var out []TagSpan
	ill := 0
	prevTag, prevType := byte('O'), ""
	begin := 0
	for i := 0; i <= len(tags); i++ {
		tag, typ := byte('O'), ""
		if i < len(tags) {
			tag, typ = splitTag(tags[i])
		}
		if endOfChunk(prevTag, tag, prevType, typ) {
			out = append(out, TagSpan{Start: begin, End: i, Type: prevType})
		}
		if startOfChunk(prevTag, tag, prevType, typ) {
			begin = i
			if tag == 'I' || tag == 'E' {
				ill++
			}
		}
		prevTag, prevType = tag, typ
	}
	return out, ill
}

// EncodeTags writes spans over n tokens as tags of the given scheme. Spans
// must be in range, non-empty and non-overlapping (resolve overlaps first).
func EncodeTags(n int, spans []TagSpan, scheme Scheme) ([]string, error) {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = "O"
	}
	for _, s := range spans {
		if s.Start < 0 || s.End > n || s.Start >= s.End {
			return nil, fmt.Errorf("mtl: EncodeTags: span [%d,%d) out of range for %d tokens", s.Start, s.End, n)
		}
		for i := s.Start; i < s.End; i++ {
			if tags[i] != "O" {
				return nil, fmt.Errorf("mtl: EncodeTags: span [%d,%d) %s overlaps another at token %d", s.Start, s.End, s.Type, i)
			}
			p := "I-"
			switch {
			case scheme == BILOU && s.End-s.Start == 1:
				p = "U-"
			case i == s.Start:
				p = "B-"
			case scheme == BILOU && i == s.End-1:
				p = "L-"
			}
			tags[i] = p + s.Type
		}
	}
	return tags, nil
}

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
func SpanF1(gold, pred [][]Span) (Scores, error) {
	if len(gold) != len(pred) {
		return Scores{}, fmt.Errorf("mtl: SpanF1: %d gold documents, %d predicted", len(gold), len(pred))
	}
	per := counter{}
	get := per.get
	for i := range gold {
		g := map[string]string{}
		for _, s := range gold[i] {
			g[s.key()] = s.Type
		}
		p := map[string]string{}
		for _, s := range pred[i] {
			p[s.key()] = s.Type
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

// TagType strips a B-, I-, L-, U-, E- or S- prefix from a tag: the entity
// type the reference code scores tokens by. "O" stays "O".
func TagType(tag string) string {
	p, t := splitTag(tag)
	if p == 'O' {
		return tag
	}
	return t
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
			g, p := TagType(gold[i][j]), TagType(pred[i][j])
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

// FormatScores renders scores as a small table, one type per line then the
// micro average.
func FormatScores(s Scores) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-24s %9s %9s %9s %7s %7s %7s\n", "type", "precision", "recall", "f1", "tp", "fp", "fn")
	row := func(name string, p PRF) {
		fmt.Fprintf(&b, "%-24s %9.4f %9.4f %9.4f %7d %7d %7d\n", name, p.Precision, p.Recall, p.F1, p.TP, p.FP, p.FN)
	}
	for _, t := range s.Types() {
		row(t, s.PerType[t])
	}
	row("micro", s.Micro)
	return b.String()
}
