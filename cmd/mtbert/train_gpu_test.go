package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
)

// gpuTrainConfig writes the fixture's training config with one attention head of 32
// dimensions (the GPU's attention dropout takes heads of 32 or 64) and returns its path and
// the data root its tasks resolve against.
func gpuTrainConfig(t *testing.T, dir string) (cfg, root string) {
	t.Helper()
	raw, err := os.ReadFile(trainCfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "config.yaml")
	root, _ = filepath.Abs(filepath.Dir(trainCfg))
	body := strings.Replace(string(raw), "heads: 2", "heads: 1", 1)
	body = strings.Replace(body, "vocab: vocab.txt", "vocab: "+filepath.Join(root, "vocab.txt"), 1)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, root
}

// TestTrainOnTheGPUPath: mtbert train -device cuda (mixed precision) runs 4 steps, -resume
// continues it on the CPU, -float32 trains on the GPU path in float32, and pretrain
// -device cuda takes an mlm config, on the host emulation.
func TestTrainOnTheGPUPath(t *testing.T) {
	cudatest.Use(t)
	dir := t.TempDir()
	cfg, root := gpuTrainConfig(t, dir)
	run := filepath.Join(dir, "run")
	runCmd(t, 0, "train", "-config", cfg, "-data-root", root, "-out", run, "-device", "cuda", "-max-steps", "4", "-quiet")
	runCmd(t, 0, "train", "-config", cfg, "-data-root", root, "-out", run, "-device", "cpu", "-max-steps", "6", "-resume", "-quiet")
	runCmd(t, 0, "train", "-config", cfg, "-data-root", root, "-out", filepath.Join(dir, "f32"), "-device", "cuda", "-float32", "-max-steps", "3", "-quiet")

	text := filepath.Join(dir, "text.txt")
	if err := os.WriteFile(text, []byte("the patient took aspirin for fever .\nno chest pain , no cough .\n\nthe patient has a fever after metformin .\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lm := filepath.Join(dir, "lm.yaml")
	body := "encoder: {vocab: " + filepath.Join(root, "vocab.txt") + ", layers: 1, hidden: 32, heads: 1, intermediate: 64, max_position: 64, lower_case: false}\n" +
		"tasks:\n  - {name: lm, kind: mlm, format: text, train: " + text + ", dev: " + text + ", max_length: 12, batch_size: 2}\n" +
		"training: {epochs: 1, lr: 1e-3, seed: 1, dropout: 0.1}\n"
	if err := os.WriteFile(lm, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := runCmd(t, 0, "pretrain", "-config", lm, "-out", filepath.Join(dir, "lm"), "-device", "cuda", "-quiet")
	if !strings.Contains(out, "BertForMaskedLM") {
		t.Errorf("pretrain output: %s", out)
	}
}
