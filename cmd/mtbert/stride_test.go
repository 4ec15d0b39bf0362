package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/score"
)

// strideConfig is the fixture's ner task alone, windowed at 8 sub-words with stride 1 (the
// default would be 3), so that most test sentences are cut into several overlapping windows
// whose starts depend on the stride.
const strideConfig = `encoder:
  vocab: %s
  layers: 1
  hidden: 32
  heads: 2
  intermediate: 64
  max_position: 64
  lower_case: false
tasks:
  - name: ner
    kind: ner
    format: conll
    train: ner-train.conll
    dev: ner-dev.conll
    test: ner-test.conll
    max_length: 8
    stride: 1
    batch_size: 8
training:
  epochs: 1
  lr: 2e-3
  seed: 5
  dropout: 0
`

// TestEvalEqualsPredictWithStride trains a model with a non-default stride on documents
// longer than one window, then scores the test split twice: with mtbert eval, and by running
// mtbert predict on the split's raw documents and scoring its output with the same metric
// code (score.SpanF1 against the gold spans after the overlap policy). The two must agree
// exactly: count for count, type by type. Before evaluation and prediction shared one
// planner, eval windowed with the config's stride and predict with the default one: on this
// model (one epoch, seed 5) that is span F1 0.533 (TP 8) for eval against 0.581 (TP 9) for
// predict, so this test failed.
func TestEvalEqualsPredictWithStride(t *testing.T) {
	dir := t.TempDir()
	data, err := filepath.Abs("../../mtl/testdata/train")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(strideConfig, filepath.Join(data, "vocab.txt"))), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	runCmd(t, 0, "train", "-config", cfg, "-data-root", data, "-out", run, "-quiet")
	model := filepath.Join(run, "last")
	var spec []struct {
		Name   string `json:"name"`
		Stride int    `json:"stride"`
	}
	readJSON(t, filepath.Join(model, "tasks.json"), &spec)
	if len(spec) != 1 || spec[0].Stride != 1 {
		t.Fatalf("tasks.json does not keep the stride: %+v", spec)
	}

	// mtbert eval.
	stdout, _ := runCmd(t, 0, "eval", "-model", model, "-config", cfg, "-data-root", data, "-split", "test", "-json")
	var ms []struct {
		Metrics map[string]float64 `json:"metrics"`
		PerType map[string]struct {
			TP int `json:"tp"`
			FP int `json:"fp"`
			FN int `json:"fn"`
		} `json:"per_type"`
	}
	if err := json.Unmarshal([]byte(stdout), &ms); err != nil || len(ms) != 1 {
		t.Fatalf("eval -json: %v\n%s", err, stdout)
	}

	// mtbert predict on the same raw documents, scored by score.SpanF1.
	docs, _, err := corpus.ReadCoNLL(filepath.Join(data, "ner-test.conll"))
	if err != nil {
		t.Fatal(err)
	}
	long := 0
	var in strings.Builder
	for i, d := range docs {
		b, _ := json.Marshal(map[string]string{"id": fmt.Sprint(i), "text": d.Text})
		in.Write(append(b, '\n'))
		if len(strings.Fields(d.Text)) > 6 {
			long++
		}
	}
	if long < 3 {
		t.Fatalf("only %d test documents are longer than one window", long)
	}
	inPath, outPath := filepath.Join(dir, "test.jsonl"), filepath.Join(dir, "pred.jsonl")
	if err := os.WriteFile(inPath, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runCmd(t, 0, "predict", "-model", model, "-in", inPath, "-out", outPath, "-progress=false")
	pred := make([][]corpus.Span, len(docs))
	f, err := os.Open(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var line struct {
			ID       string `json:"id"`
			Entities map[string][]struct {
				Type      string `json:"type"`
				ByteStart int    `json:"byte_start"`
				ByteEnd   int    `json:"byte_end"`
				Text      string `json:"text"`
			} `json:"entities"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		var i int
		fmt.Sscan(line.ID, &i)
		for _, e := range line.Entities["ner"] {
			pred[i] = append(pred[i], corpus.Span{Start: e.ByteStart, End: e.ByteEnd, Type: e.Type, Text: e.Text})
		}
		n++
	}
	if n != len(docs) {
		t.Fatalf("predict wrote %d lines for %d documents", n, len(docs))
	}
	corpus.ResolveOverlaps(docs, corpus.KeepLongest)
	gold := make([][]corpus.Span, len(docs))
	for i, d := range docs {
		gold[i] = d.Spans
	}
	s, err := score.SpanF1(gold, pred)
	if err != nil {
		t.Fatal(err)
	}
	got := ms[0].Metrics
	if got["span_f1"] != s.Micro.F1 || got["span_precision"] != s.Micro.Precision || got["span_recall"] != s.Micro.Recall {
		t.Errorf("eval span P/R/F1 %v/%v/%v, predict's output scores %v/%v/%v", got["span_precision"], got["span_recall"], got["span_f1"], s.Micro.Precision, s.Micro.Recall, s.Micro.F1)
	}
	if int(got["predicted_spans"]) != s.Micro.TP+s.Micro.FP || int(got["gold_spans"]) != s.Micro.TP+s.Micro.FN {
		t.Errorf("eval counts %v predicted, %v gold; predict's output: TP %d FP %d FN %d", got["predicted_spans"], got["gold_spans"], s.Micro.TP, s.Micro.FP, s.Micro.FN)
	}
	for ty, p := range s.PerType {
		e := ms[0].PerType[ty]
		if e.TP != p.TP || e.FP != p.FP || e.FN != p.FN {
			t.Errorf("%s: eval TP/FP/FN %d/%d/%d, predict's output %d/%d/%d", ty, e.TP, e.FP, e.FN, p.TP, p.FP, p.FN)
		}
	}
	t.Logf("span F1 %.4f (TP %d, FP %d, FN %d) on %d documents, %d longer than one window", s.Micro.F1, s.Micro.TP, s.Micro.FP, s.Micro.FN, len(docs), long)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
