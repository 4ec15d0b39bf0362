package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
)

// TestQuantize trains the fixture, writes an int8 checkpoint with mtbert quantize and checks
// that eval and predict give the same output from it as from the float checkpoint with -int8
// (quantised at load), that the int8 checkpoint is smaller, and that -device cuda refuses it.
func TestQuantize(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	runCmd(t, 0, "train", "-config", trainCfg, "-out", run)
	float, q := filepath.Join(run, "best"), filepath.Join(dir, "int8")
	stdout, _ := runCmd(t, 0, "quantize", "-model", float, "-out", q)
	if !strings.Contains(stdout, "6 linear layers") {
		t.Errorf("quantize: %q", stdout)
	}
	cfg, err := bert.LoadConfig(q)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Quantization != bert.Int8 {
		t.Fatalf("config.json of the int8 checkpoint: mtbert_quantization %q", cfg.Quantization)
	}
	fi, _ := os.Stat(filepath.Join(float, bert.SafetensorsFile))
	qi, _ := os.Stat(filepath.Join(q, bert.SafetensorsFile))
	if qi.Size() >= fi.Size() {
		t.Errorf("int8 model.safetensors %d bytes, float %d", qi.Size(), fi.Size())
	}
	evalInt8, _ := runCmd(t, 0, "eval", "-config", trainCfg, "-model", q, "-json")
	evalAtLoad, _ := runCmd(t, 0, "eval", "-config", trainCfg, "-model", float, "-json", "-int8")
	if evalInt8 != evalAtLoad || !strings.Contains(evalInt8, "span_f1") {
		t.Errorf("eval: int8 checkpoint\n%s\nfloat with -int8\n%s", evalInt8, evalAtLoad)
	}
	in := filepath.Join(dir, "notes.jsonl")
	notes := `{"id":"a","text":"Patient was given aspirin for the headache ."}
{"id":"b","text":"No fever . Started ibuprofen and metformin ."}
`
	if err := os.WriteFile(in, []byte(notes), 0o644); err != nil {
		t.Fatal(err)
	}
	p1, _ := runCmd(t, 0, "predict", "-model", q, "-in", in)
	p2, _ := runCmd(t, 0, "predict", "-model", float, "-in", in, "-int8")
	if p1 != p2 || strings.Count(p1, "\n") != 2 {
		t.Errorf("predict: int8 checkpoint\n%s\nfloat with -int8\n%s", p1, p2)
	}
	runCmd(t, 2, "quantize", "-model", float)
	_, stderr := runCmd(t, 1, "quantize", "-model", float, "-out", float)
	if !strings.Contains(stderr, "is the -model folder") {
		t.Errorf("quantize onto itself: %q", stderr)
	}
}
