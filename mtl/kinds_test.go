package mtl_test

import (
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/train"
)

// TestKindTable walks every registered kind and checks its entry is complete and coherent,
// and that Valid, Validate and the properties agree with the table.
func TestKindTable(t *testing.T) {
	if len(mtl.Kinds()) == 0 {
		t.Fatal("no kinds registered")
	}
	seen := map[mtl.Kind]bool{}
	for _, k := range mtl.Kinds() {
		if seen[k] {
			t.Errorf("%s registered twice", k)
		}
		seen[k] = true
		if !k.Valid() {
			t.Errorf("%s: registered but not Valid", k)
		}
		b := mtl.KindBehaviours(k)
		for _, name := range []string{"outputs", "newHead", "loss", "eval", "labels", "input"} {
			if !b[name] {
				t.Errorf("%s: no %s in its table entry", k, name)
			}
		}
		// Heads that predict per sequence decode pairs; the others must not claim to.
		if want := k.Predicts() && !k.PerToken(); b["decodePair"] != want {
			t.Errorf("%s: decodePair set = %v, want %v (predicts %v, per token %v)", k, b["decodePair"], want, k.Predicts(), k.PerToken())
		}
		reads := 0
		for _, r := range []bool{k.ReadsSpans(), k.ReadsPairs(), k.ReadsText()} {
			if r {
				reads++
			}
		}
		if reads != 1 {
			t.Errorf("%s: reads %d kinds of input, want exactly 1", k, reads)
		}
		if k.Labeled() && k.Scored() {
			t.Errorf("%s: both labelled and scored", k)
		}
		if k.MainMetric() == "" || k.SecondaryMetric() == "" || k.MainMetric() == k.SecondaryMetric() {
			t.Errorf("%s: main metric %q, secondary %q", k, k.MainMetric(), k.SecondaryMetric())
		}
		if mtl.MainMetric(k) != k.MainMetric() {
			t.Errorf("%s: MainMetric %q, method %q", k, mtl.MainMetric(k), k.MainMetric())
		}
		if k.DefaultBatchSize() < 1 || k.DefaultMaxLength() < 3 {
			t.Errorf("%s: defaults batch %d, max length %d", k, k.DefaultBatchSize(), k.DefaultMaxLength())
		}
		// Validate accepts the kind with the labels it asks for, and says when it wants others.
		labels := []string{"a", "b"}
		if !k.Labeled() && !k.Scored() {
			labels = nil
		}
		s := mtl.TaskSpec{Name: "t", Kind: k, Labels: labels, MaxLength: 8}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", k, err)
		}
		if k.Labeled() && s.Outputs() != len(labels) {
			t.Errorf("%s: %d outputs for %d labels", k, s.Outputs(), len(labels))
		}
		s.Labels = []string{"a"}
		if err := s.Validate(); (err != nil) != (k.Labeled() || !k.Scored()) {
			t.Errorf("%s with one label: %v", k, err)
		}
	}
	for _, k := range []mtl.Kind{"", "NER", "span", "ner "} {
		if k.Valid() || mtl.KindBehaviours(k) != nil || k.MainMetric() != "" || k.Predicts() || k.PerToken() || k.ReadsSpans() || k.ReadsPairs() || k.ReadsText() {
			t.Errorf("%q: unknown kind has properties", k)
		}
		err := mtl.TaskSpec{Name: "t", Kind: k, Labels: []string{"a", "b"}, MaxLength: 8}.Validate()
		if err == nil || !strings.Contains(err.Error(), "unknown kind") {
			t.Errorf("%q: Validate gives %v, want an unknown kind", k, err)
		}
	}
}

// TestKindsEndToEnd trains nothing but runs every registered kind through the fixture: a
// loss on a training batch, the dev split's evaluation (whose metrics must hold the kind's
// main and secondary metric), and SplitTasks. A new kind must join the fixture here.
func TestKindsEndToEnd(t *testing.T) {
	r := mlmFixture(t, true, func(c *train.Config) {
		cls := c.Tasks[1]
		cls.Name, cls.Kind = "topic", mtl.Classification
		c.Tasks = append(c.Tasks, cls)
	})
	covered := map[mtl.Kind]bool{}
	ex := mtl.NewExtractor(r.Model, r.Tokenizer)
	ner, sentence, err := ex.SplitTasks(nil)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(ner, ",") + ";" + strings.Join(sentence, ",")
	for i, lt := range r.Loaded {
		k := lt.Task.Kind
		covered[k] = true
		if b := mtl.KindBehaviours(k); !b["loss"] || !b["eval"] {
			t.Errorf("%s: incomplete table entry %v", k, b)
			continue
		}
		h := r.Model.Heads[i]
		if h.Spec.Kind != k {
			t.Fatalf("head %d is %s, task %s", i, h.Spec.Kind, k)
		}
		td := r.Data[i]
		b := mtl.Collate(td.Train[:min(2, len(td.Train))], k, mtl.PadID(r.Tokenizer))
		tp := autograd.NewTape()
		loss, err := r.Model.Loss(tp, h, &b, false)
		if err != nil {
			t.Errorf("%s: loss: %v", k, err)
		} else if v := loss.Value.ToHost(); len(v) != 1 || v[0] != v[0] {
			t.Errorf("%s: loss %v", k, v)
		}
		tp.Reset()
		tm, err := train.EvaluateTask(r.Model, r.Tokenizer, lt, train.SplitDev)
		if err != nil {
			t.Errorf("%s: evaluate: %v", k, err)
			continue
		}
		if tm.Main != k.MainMetric() {
			t.Errorf("%s: evaluation's main metric %q, the kind's %q", k, tm.Main, k.MainMetric())
		}
		for _, name := range []string{k.MainMetric(), k.SecondaryMetric()} {
			if _, ok := tm.Metrics[name]; !ok && !strings.Contains(strings.Join(tm.Notes, "; "), name+" undefined") {
				t.Errorf("%s: evaluation has no %s (metrics %v, notes %v)", k, name, tm.Metrics, tm.Notes)
			}
		}
		inNER := strings.Contains(","+strings.Join(ner, ",")+",", ","+lt.Task.Name+",")
		inSent := strings.Contains(","+strings.Join(sentence, ",")+",", ","+lt.Task.Name+",")
		if inNER != (k.Predicts() && k.PerToken()) || inSent != (k.Predicts() && !k.PerToken()) {
			t.Errorf("%s: task %s in SplitTasks %q", k, lt.Task.Name, all)
		}
	}
	for _, k := range mtl.Kinds() {
		if !covered[k] {
			t.Errorf("kind %s has no task in this test's fixture", k)
		}
	}
}
