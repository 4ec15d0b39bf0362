package score

import (
	"math"
	"reflect"
	"testing"

	"github.com/mtbert/mtbert/mtl/corpus"
	"gonum.org/v1/gonum/stat"
)

// tagSpans turns tag sequences into per-sentence spans over token indices.
func tagSpans(seqs [][]string) [][]corpus.Span {
	out := make([][]corpus.Span, len(seqs))
	for i, s := range seqs {
		for _, e := range corpus.DecodeTags(s, corpus.BIO) {
			out[i] = append(out[i], corpus.Span{Start: e.Start, End: e.End, Type: e.Type})
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }

func TestSpanF1Seqeval(t *testing.T) {
	// seqeval README / f1_score docstring: micro F1 0.50; MISC 0/0/0,
	// PER 1/1/1.
	yTrue := [][]string{{"O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"}, {"B-PER", "I-PER", "O"}}
	yPred := [][]string{{"O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"}, {"B-PER", "I-PER", "O"}}
	s, err := SpanF1(tagSpans(yTrue), tagSpans(yPred))
	if err != nil {
		t.Fatal(err)
	}
	if s.Micro != (PRF{TP: 1, FP: 1, FN: 1, Precision: 0.5, Recall: 0.5, F1: 0.5}) {
		t.Errorf("micro %+v, want 0.5/0.5/0.5", s.Micro)
	}
	if p := s.PerType["PER"]; p.F1 != 1 {
		t.Errorf("PER %+v", p)
	}
	if p := s.PerType["MISC"]; p.F1 != 0 || p.FP != 1 || p.FN != 1 {
		t.Errorf("MISC %+v", p)
	}
	// Hand-computed: gold {A[0,3) X, B[5,8) Y, C[9,10) X}, predicted
	// {A exact, B with the wrong type, C with wrong end, a spurious D}:
	// TP 1, FP 3, FN 2 -> P 1/4, R 1/3, F1 2/7.
	gold := [][]corpus.Span{{{Start: 0, End: 3, Type: "X"}, {Start: 5, End: 8, Type: "Y"}, {Start: 9, End: 10, Type: "X"}}}
	pred := [][]corpus.Span{{{Start: 0, End: 3, Type: "X"}, {Start: 5, End: 8, Type: "X"}, {Start: 9, End: 11, Type: "X"}, {Start: 12, End: 13, Type: "Y"}, {Start: 0, End: 3, Type: "X"}}}
	s, err = SpanF1(gold, pred)
	if err != nil {
		t.Fatal(err)
	}
	if s.Micro.TP != 1 || s.Micro.FP != 3 || s.Micro.FN != 2 || !near(s.Micro.F1, 2.0/7) {
		t.Errorf("micro %+v, want TP 1 FP 3 FN 2 F1 2/7", s.Micro)
	}
	if x := s.PerType["X"]; x.TP != 1 || x.FP != 2 || x.FN != 1 {
		t.Errorf("X %+v", x)
	}
	// Fragments count in the match.
	g := [][]corpus.Span{{{Start: 0, End: 9, Type: "X", Fragments: [][2]int{{0, 2}, {5, 9}}}}}
	p := [][]corpus.Span{{{Start: 0, End: 9, Type: "X"}}}
	if s, _ := SpanF1(g, p); s.Micro.TP != 0 {
		t.Errorf("contiguous span matched a fragmented one")
	}
	if _, err := SpanF1(g, nil); err == nil {
		t.Error("no error for unequal document counts")
	}
}

func TestTokenF1(t *testing.T) {
	// Hand-computed (sklearn micro over entity labels, prefixes stripped):
	// words D D O C O (gold) vs D D D O C (pred): D TP 2 FP 1; C FP 1 FN 1.
	gold := [][]string{{"B-D", "I-D", "O", "B-C", "O", "BERT_TOKEN"}}
	pred := [][]string{{"B-D", "B-D", "B-D", "O", "U-C", "BERT_TOKEN"}}
	s, err := TokenF1(gold, pred, "BERT_TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if s.Micro.TP != 2 || s.Micro.FP != 2 || s.Micro.FN != 1 || !near(s.Micro.F1, 4.0/7) {
		t.Errorf("micro %+v, want TP 2 FP 2 FN 1 F1 4/7", s.Micro)
	}
	if d := s.PerType["D"]; !near(d.F1, 0.8) {
		t.Errorf("D %+v, want F1 0.8", d)
	}
	if _, ok := s.PerType["BERT_TOKEN"]; ok {
		t.Error("ignored label scored")
	}
	// Without ignoring it, matching BERT_TOKENs count as true positives.
	s, _ = TokenF1(gold, pred)
	if s.Micro.TP != 3 {
		t.Errorf("TP %d, want 3", s.Micro.TP)
	}
	if _, err := TokenF1(gold, [][]string{{"O"}}); err == nil {
		t.Error("no error for unequal lengths")
	}
}

func TestClassificationMetrics(t *testing.T) {
	gold := []string{"a", "a", "b", "b", "c"}
	pred := []string{"a", "b", "b", "b", "a"}
	acc, err := Accuracy(gold, pred)
	if err != nil || acc != 0.6 {
		t.Errorf("accuracy %v %v, want 0.6", acc, err)
	}
	// Per class F1: a 1/2, b 4/5, c 0 -> (0.5+0.8+0)/3.
	m, err := MacroF1(gold, pred)
	if err != nil || !near(m, 1.3/3) {
		t.Errorf("macro-F1 %v %v, want %v", m, err, 1.3/3)
	}
	if _, err := Accuracy(gold, pred[:2]); err == nil {
		t.Error("no error for unequal lengths")
	}
	if _, err := MacroF1(nil, nil); err == nil {
		t.Error("no error for empty input")
	}
}

func TestCorrelations(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5}
	y := []float64{2, 4, 5, 4, 5}
	// By hand: sum dx dy = 6, sum dx^2 = 10, sum dy^2 = 6.
	r, err := Pearson(x, y)
	if err != nil || !near(r, 6/math.Sqrt(60)) {
		t.Errorf("Pearson %v %v, want %v", r, err, 6/math.Sqrt(60))
	}
	// Ranks of y with ties averaged: 1 2.5 4.5 2.5 4.5; sum dx dr = 7,
	// sum dr^2 = 9 -> 7/sqrt(90) = 0.7378647873726218 (scipy spearmanr).
	rho, err := Spearman(x, y)
	if err != nil || !near(rho, 7/math.Sqrt(90)) {
		t.Errorf("Spearman %v %v, want %v", rho, err, 7/math.Sqrt(90))
	}
	if want := []float64{1, 2.5, 4.5, 2.5, 4.5}; !reflect.DeepEqual(ranks(y), want) {
		t.Errorf("ranks %v, want %v", ranks(y), want)
	}
	// Spearman of a monotone non-linear relation is 1; Pearson is not.
	sq := []float64{1, 4, 9, 16, 25}
	if rho, _ := Spearman(x, sq); !near(rho, 1) {
		t.Errorf("Spearman monotone %v", rho)
	}
	if r, _ := Pearson(x, sq); !near(r, stat.Correlation(x, sq, nil)) || near(r, 1) {
		t.Errorf("Pearson %v", r)
	}
	for _, bad := range [][2][]float64{{x, y[:3]}, {x[:1], y[:1]}, {x, {1, 1, 1, 1, 1}}, {x, {1, 2, math.NaN(), 4, 5}}} {
		if _, err := Pearson(bad[0], bad[1]); err == nil {
			t.Errorf("Pearson(%v, %v): no error", bad[0], bad[1])
		}
		if _, err := Spearman(bad[0], bad[1]); err == nil {
			t.Errorf("Spearman(%v, %v): no error", bad[0], bad[1])
		}
	}
}
