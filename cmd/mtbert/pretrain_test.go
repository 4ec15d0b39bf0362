package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPretrainAndFill: mtbert pretrain on a tiny folder of .txt notes (one with an empty line,
// one binary file beside them), interrupted and resumed; the run's checkpoint is a
// BertForMaskedLM directory that mtbert fill reads; mtbert data counts what the reader skipped;
// a config with a supervised task is refused.
func TestPretrainAndFill(t *testing.T) {
	dir := t.TempDir()
	vocab, _ := filepath.Abs("../../mtl/testdata/train/vocab.txt")
	corpus := filepath.Join(dir, "corpus")
	os.MkdirAll(corpus, 0o755)
	os.WriteFile(filepath.Join(corpus, "a.txt"), []byte("the patient took aspirin for fever .\n\nno chest pain , no cough .\n"), 0o644)
	os.WriteFile(filepath.Join(corpus, "b.txt"), []byte("the patient took insulin daily and is stable .\n"), 0o644)
	os.WriteFile(filepath.Join(corpus, "blob.txt"), []byte("\x00\x01\x02 not text"), 0o644)
	cfg := filepath.Join(dir, "pretrain.yaml")
	body := `encoder:
  vocab: ` + vocab + `
  lower_case: false
  layers: 1
  hidden: 32
  heads: 2
  intermediate: 64
  max_position: 32
tasks:
  - name: lm
    kind: mlm
    format: text
    train: corpus
    dev: corpus
    max_length: 16
    batch_size: 2
training:
  steps: 6
  accumulate: 2
  optimizer: adamw
  lr: 1e-3
  eval_every: 3
`
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	// -max-steps ends the run at step 3 (of 6): the progress and its ETA count to 3.
	_, stderr := runCmd(t, 0, "pretrain", "-config", cfg, "-out", out, "-max-steps", "3")
	if !strings.Contains(stderr, "pretraining 1 task(s)") || !strings.Contains(stderr, "to step 3 (-max-steps) of 6") || !strings.Contains(stderr, "step 3/3 ") || strings.Contains(stderr, "/6 ") {
		t.Errorf("-max-steps run: %q", stderr)
	}
	stdout, stderr := runCmd(t, 0, "pretrain", "-config", cfg, "-out", out, "-resume")
	for _, s := range []string{"perplexity", "accuracy", "BertForMaskedLM", "mtbert fill -model"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if !strings.Contains(stderr, "dev: lm accuracy") {
		t.Errorf("stderr: %q", stderr)
	}
	var sum struct {
		Steps int
		Tasks []struct {
			Dev struct{ Metrics map[string]float64 }
		}
	}
	raw, _ := os.ReadFile(filepath.Join(out, "summary.json"))
	if err := json.Unmarshal(raw, &sum); err != nil || sum.Steps != 6 || sum.Tasks[0].Dev.Metrics["perplexity"] <= 1 {
		t.Errorf("summary.json %s (%v)", raw, err)
	}
	in := filepath.Join(dir, "masked.txt")
	os.WriteFile(in, []byte("the patient took [MASK] for fever .\n"), 0o644)
	stdout, _ = runCmd(t, 0, "fill", "-model", filepath.Join(out, "last"), "-in", in, "-k", "3")
	var fill struct {
		Masks []struct {
			Predictions []struct{ Token string }
		}
	}
	if err := json.Unmarshal([]byte(stdout), &fill); err != nil || len(fill.Masks) != 1 || len(fill.Masks[0].Predictions) != 3 {
		t.Errorf("fill: %s (%v)", stdout, err)
	}
	// The data summary counts what the text reader skipped.
	stdout, _ = runCmd(t, 0, "data", "-config", cfg)
	if !strings.Contains(stdout, "2 files, 1 binary files skipped, 1 empty lines skipped") {
		t.Errorf("data summary:\n%s", stdout)
	}
	// A supervised task is refused by pretrain.
	_, stderr = runCmd(t, 1, "pretrain", "-config", trainCfg, "-out", filepath.Join(dir, "x"))
	if !strings.Contains(stderr, "pretrain takes only mlm tasks") {
		t.Errorf("supervised config: %q", stderr)
	}
}
