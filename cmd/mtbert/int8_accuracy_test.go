package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// publicData is ../shared/data seen from this package's folder.
const publicData = "../../../shared/data"

// int8AccuracyConfig trains a small encoder from scratch on two public tasks of
// ../shared/data: NCBI-disease (NER, span F1) and MedRQE (pair classification, accuracy).
const int8AccuracyConfig = `data_root: DATA
encoder:
  vocab: DATA/vocab/bert-base-cased-vocab.txt
  lower_case: false
  layers: 2
  hidden: 128
  heads: 2
  intermediate: 512
  max_position: 128
tasks:
  - name: ncbi-disease
    kind: ner
    format: conll
    train: ncbi-disease/train.tsv
    dev: ncbi-disease/devel.tsv
    test: ncbi-disease/test.tsv
    batch_size: 32
    max_length: 64
    stride: 62
  - name: medrqe
    kind: pair-classification
    format: medrqe
    train: medrqe/RQE_Train_8588_AMIA2016.xml
    test: medrqe/RQE_Test_302_pairs_AMIA2016.xml
    holdout: {dev: 0.1, seed: 1}
    batch_size: 32
    max_length: 64
training:
  steps: 400
  lr: 1e-3
  warmup_steps: 40
  schedule: linear
  seed: 1
  dropout: 0.1
`

// int8Tolerance is the largest change of a metric that int8 may cause: 0.5 points (issue 16).
const int8Tolerance = 0.005

// TestInt8AccuracyPublic trains the model of int8AccuracyConfig (400 steps, about a minute and
// a half on two cores), quantises it with mtbert quantize and checks that every metric of
// every task (span and token F1, accuracy and macro F1) on dev and test is within 0.5 points
// of the float model's. Skipped with -short and without ../shared/data.
func TestInt8AccuracyPublic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model for about a minute and a half")
	}
	data, err := filepath.Abs(publicData)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "ncbi-disease", "train.tsv")); err != nil {
		t.Skipf("no public data: %v (see ../shared/data/README.md)", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(strings.ReplaceAll(int8AccuracyConfig, "DATA", data)), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	runCmd(t, 0, "train", "-config", cfg, "-out", run)
	float, q := filepath.Join(run, "best"), filepath.Join(dir, "int8")
	runCmd(t, 0, "quantize", "-model", float, "-out", q)
	type result struct {
		Task    string             `json:"task"`
		Metrics map[string]float64 `json:"metrics"`
	}
	evalJSON := func(model, split string) []result {
		out, _ := runCmd(t, 0, "eval", "-config", cfg, "-model", model, "-split", split, "-json")
		var rs []result
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	for _, split := range []string{"dev", "test"} {
		fr, qr := evalJSON(float, split), evalJSON(q, split)
		if len(fr) != 2 || len(qr) != 2 {
			t.Fatalf("%s: %d and %d task results, want 2", split, len(fr), len(qr))
		}
		for i := range fr {
			for _, k := range []string{"span_f1", "token_f1", "accuracy", "macro_f1"} {
				f, ok := fr[i].Metrics[k]
				if !ok {
					continue
				}
				g := qr[i].Metrics[k]
				t.Logf("%s %s %s: fp32 %.4f int8 %.4f (%+.2f points)", split, fr[i].Task, k, f, g, 100*(g-f))
				if math.Abs(g-f) > int8Tolerance {
					t.Errorf("%s %s %s: int8 %.4f, fp32 %.4f: more than 0.5 points apart", split, fr[i].Task, k, g, f)
				}
			}
		}
	}
}
