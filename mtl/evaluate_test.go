package mtl_test

import (
	"math"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/internal/mtltest"
	"github.com/mtbert/mtbert/mtl/train"
)

// constantHead makes a head ignore its input: zero weights, and a bias that picks label (or,
// for regression, outputs value).
func constantHead(h *mtl.Head, label int, value float32) {
	clear(h.Linear.W.Value.Data())
	b := h.Linear.B.Value.Data()
	clear(b)
	if h.Spec.Kind == mtl.Regression {
		b[0] = value
		return
	}
	b[label] = 10
}

// TestEvaluateHandChecked scores heads that predict a constant on hand-made splits; every
// expected value is worked out in the comments.
func TestEvaluateHandChecked(t *testing.T) {
	r := fixture.Prepare(t, nil)
	m, tok := r.Model, r.Tokenizer
	ner := m.Head("ner")
	uDrug, _ := mtl.NewLabels(ner.Spec.Labels)
	id, _ := uDrug.Index("U-Drug")
	constantHead(ner, id, 0)
	constantHead(m.Head("nli"), 1, 0) // "entailment"
	constantHead(m.Head("sts"), 0, 1)

	// Every word is predicted as a one-word Drug.
	// doc a: 6 words; gold aspirin (Drug) and fever (Problem): span TP 1, FP 5, FN 1.
	// doc b: "took aspirins": gold "aspirin" ends inside the word "aspirins", so alignment
	// widens it; scored honestly against the gold as read it cannot match: TP 0, FP 2, FN 1.
	// Spans: P = 1/8, R = 1/3, F1 = 2/11. Words (the aligned tags): a gives TP 1, FP 5 and FN 1
	// (fever), b gives TP 1 (aspirins, widened) and FP 1: P = 2/8, R = 2/3, F1 = 4/11.
	a := "patient took aspirin for fever ."
	b := "took aspirins"
	docs := []corpus.Document{
		{ID: "a", Text: a, Spans: []corpus.Span{{Start: 13, End: 20, Type: "Drug", Text: "aspirin"}, {Start: 25, End: 30, Type: "Problem", Text: "fever"}}},
		{ID: "b", Text: b, Spans: []corpus.Span{{Start: 5, End: 12, Type: "Drug", Text: "aspirin"}}},
	}
	nerTask := *r.Loaded[0].Task
	lt := &train.LoadedTask{Task: &nerTask, Splits: []train.SplitData{{Split: train.SplitDev, Docs: docs}}}
	tm, err := train.EvaluateTask(m, tok, lt, train.SplitDev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"span_precision": 1.0 / 8, "span_recall": 1.0 / 3, "span_f1": 2.0 / 11,
		"token_precision": 2.0 / 8, "token_recall": 2.0 / 3, "token_f1": 4.0 / 11, "gold_spans": 3, "predicted_spans": 8}
	for k, v := range want {
		if !mtltest.Near(tm.Metrics[k], v) {
			t.Errorf("%s = %v, want %v", k, tm.Metrics[k], v)
		}
	}
	if tm.Main != "span_f1" || !mtltest.Near(tm.Value, 2.0/11) || tm.Count != 2 {
		t.Errorf("main %s %v, count %d", tm.Main, tm.Value, tm.Count)
	}
	// Drug: TP 1, FP 7, FN 1 -> P 1/8, R 1/2, F1 1/5; Problem: FN 1 only.
	if d := tm.PerType["Drug"]; d.TP != 1 || d.FP != 7 || d.FN != 1 || !mtltest.Near(d.F1, 0.2) {
		t.Errorf("Drug %+v", d)
	}
	if p := tm.PerType["Problem"]; p.TP != 0 || p.FN != 1 || p.F1 != 0 {
		t.Errorf("Problem %+v", p)
	}

	// Pairs: always "entailment". Gold entailment x2, neutral, contradiction: accuracy 1/2;
	// per class F1: entailment 2/3 (P 1/2, R 1), the others 0; macro 2/9.
	nliTask := *r.Loaded[1].Task
	pairs := []corpus.Pair{{ID: "1", TextA: "patient has fever .", TextB: "the patient has fever .", Label: "entailment"},
		{ID: "2", TextA: "patient has rash .", TextB: "the patient has rash .", Label: "entailment"},
		{ID: "3", TextA: "patient has rash .", TextB: "patient took insulin .", Label: "neutral"},
		{ID: "4", TextA: "patient has rash .", TextB: "patient has no rash .", Label: "contradiction"}}
	tm, err = train.EvaluateTask(m, tok, &train.LoadedTask{Task: &nliTask, Splits: []train.SplitData{{Split: train.SplitTest, Pairs: pairs}}}, train.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if !mtltest.Near(tm.Metrics["accuracy"], 0.5) || !mtltest.Near(tm.Metrics["macro_f1"], 2.0/9) || tm.Value != 0.5 {
		t.Errorf("nli %+v", tm)
	}

	// Regression: always 1 against 0, 2, 4: mse (1+1+9)/3; Pearson undefined (constant).
	stsTask := *r.Loaded[2].Task
	sp := []corpus.Pair{{ID: "1", TextA: "a", TextB: "b", Score: 0, HasScore: true}, {ID: "2", TextA: "fever", TextB: "rash", Score: 2, HasScore: true},
		{ID: "3", TextA: "the", TextB: "cough", Score: 4, HasScore: true}}
	tm, err = train.EvaluateTask(m, tok, &train.LoadedTask{Task: &stsTask, Splits: []train.SplitData{{Split: train.SplitTest, Pairs: sp}}}, train.SplitTest)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(tm.Metrics["mse"]-11.0/3) > 1e-6 || len(tm.Notes) != 2 || !strings.Contains(tm.Notes[0], "pearson undefined") {
		t.Errorf("sts %+v", tm)
	}
	if _, ok := tm.Metrics["pearson"]; ok || tm.Value != 0 {
		t.Errorf("sts pearson should be absent: %+v", tm)
	}

	// A split the task lacks is skipped; a task the model lacks is an error.
	if tm, err := train.EvaluateTask(m, tok, lt, train.SplitTest); tm != nil || err != nil {
		t.Errorf("missing split: %v %v", tm, err)
	}
	other := nerTask
	other.Name = "other"
	if _, err := train.EvaluateTask(m, tok, &train.LoadedTask{Task: &other, Splits: lt.Splits}, train.SplitDev); err == nil || !strings.Contains(err.Error(), "no head") {
		t.Errorf("unknown task: %v", err)
	}
}
