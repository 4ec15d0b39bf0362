package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
	"github.com/mtbert/mtbert/nn"
)

// tinyModelDir copies the tiny golden model (pytorch_model.bin saved by PyTorch) into a
// temporary directory and gives it a 64-token vocabulary.
func tinyModelDir(t *testing.T) string {
	t.Helper()
	src := "../../bert/testdata/golden/tiny_bin"
	dir := t.TempDir()
	for _, f := range []string{"config.json", "pytorch_model.bin"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	words := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "patient", "fever", "denies", "chest", "pain", "mg", "##s", ".", ","}
	for len(words) < 64 {
		words = append(words, fmt.Sprintf("w%d", len(words)))
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEncodeMatchesPyTorch runs `mtbert encode` on explicit ids equal to the golden batch's
// first sequence and on texts, and checks the saved hidden state against PyTorch's.
func TestEncodeMatchesPyTorch(t *testing.T) {
	dir := tinyModelDir(t)
	raw, err := os.ReadFile("../../bert/testdata/golden/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		T          int
		IDs, Types []float64
		LastHidden []float64 `json:"last_hidden"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	ids, types := make([]int, g.T), make([]int, g.T)
	for i := range ids {
		ids[i], types[i] = int(g.IDs[i]), int(g.Types[i])
	}
	line, _ := json.Marshal(map[string]any{"input_ids": ids, "token_type_ids": types})
	in := filepath.Join(t.TempDir(), "in.jsonl")
	body := string(line) + "\n" + `{"text": "Patient denies chest pain."}` + "\n" + `{"text_a": "fever", "text_b": "pains, 5mgs"}` + "\n"
	if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.safetensors")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"encode", "-model", dir, "-in", in, "-out", out, "-batch", "2", "-lower-case=true"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := nn.LoadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Tensors["last_hidden_state"]
	if len(h.Shape) != 3 || h.Shape[0] != 3 || h.Shape[1] != g.T || h.Shape[2] != 32 {
		t.Fatalf("last_hidden_state shape %v", h.Shape)
	}
	vals, _ := h.Float32()
	for i := 0; i < g.T*32; i++ {
		if d := math.Abs(float64(vals[i]) - g.LastHidden[i]); d > 1e-5 {
			t.Fatalf("element %d differs from PyTorch by %g", i, d)
		}
	}
	mask, _ := f.Tensors["attention_mask"].Int64()
	// "Patient denies chest pain." lowercased: [CLS] patient denies chest pain . [SEP] = 7 of 9.
	var real int64
	for _, m := range mask[g.T : 2*g.T] {
		real += m
	}
	if real != 7 {
		t.Fatalf("second input has %d real tokens, want 7 ([CLS] patient denies chest pain . [SEP])", real)
	}
	if _, ok := f.Tensors["pooler_output"]; !ok {
		t.Fatal("pooler_output missing for a model with a pooler")
	}
}

func TestEncodeBadInputNamesLine(t *testing.T) {
	dir := tinyModelDir(t)
	in := filepath.Join(t.TempDir(), "in.jsonl")
	os.WriteFile(in, []byte(`{"text": "ok"}`+"\n"+`{"input_ids": [1, 999]}`+"\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"encode", "-model", dir, "-in", in, "-out", filepath.Join(t.TempDir(), "o.safetensors")}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "in.jsonl:2: input_ids[1] = 999 outside the vocabulary of 64") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestTokenizeCommand(t *testing.T) {
	dir := tinyModelDir(t)
	in := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(in, []byte("Fever, chest pain.\n"), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"tokenize", "-model", dir, "-in", in}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var got struct {
		Tokens  []string
		IDs     []int
		Offsets [][2]int
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"[CLS]", "fever", ",", "chest", "pain", ".", "[SEP]"}
	if strings.Join(got.Tokens, " ") != strings.Join(want, " ") || got.Offsets[1] != [2]int{0, 5} || got.IDs[1] != 6 {
		t.Fatalf("tokens %v ids %v offsets %v", got.Tokens, got.IDs, got.Offsets)
	}
}

func TestUsageErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"nope"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown command "nope"`) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"encode", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "-batch") {
		t.Fatalf("encode -h: exit %d: %s", code, stderr.String())
	}
}

// TestEncodeOnTheGPUPath runs mtbert encode with -device cuda on the host emulation of the
// driver (or a real GPU with MTBERT_CUDA_REAL=1) and with -device cpu: the hidden states and the
// pooled outputs agree within bf16 tolerance.
func TestEncodeOnTheGPUPath(t *testing.T) {
	cudatest.Use(t)
	dir := tinyModelDir(t)
	in := filepath.Join(t.TempDir(), "in.jsonl")
	body := `{"text": "Patient denies chest pain."}` + "\n" + `{"text_a": "fever", "text_b": "pains, 5mgs and more pains"}` + "\n"
	if err := os.WriteFile(in, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	outs := map[string]map[string][]float32{}
	for _, dev := range []string{"cpu", "cuda"} {
		out := filepath.Join(t.TempDir(), dev+".safetensors")
		runCmd(t, 0, "encode", "-model", dir, "-in", in, "-out", out, "-device", dev)
		f, err := nn.LoadSafetensors(out)
		if err != nil {
			t.Fatal(err)
		}
		outs[dev] = map[string][]float32{}
		for _, k := range []string{"last_hidden_state", "pooler_output"} {
			if outs[dev][k], err = f.Tensors[k].Float32(); err != nil {
				t.Fatal(k, err)
			}
		}
	}
	for _, k := range []string{"last_hidden_state", "pooler_output"} {
		a, b := outs["cpu"][k], outs["cuda"][k]
		if len(a) != len(b) || len(a) == 0 {
			t.Fatalf("%s: %d and %d values", k, len(a), len(b))
		}
		worst := 0.0
		for i := range a {
			worst = max(worst, math.Abs(float64(a[i]-b[i])))
		}
		t.Logf("%s: max |cpu - cuda| %.3g", k, worst)
		if worst > 5e-3 {
			t.Errorf("%s: the GPU path differs from the CPU by %g", k, worst)
		}
	}
}
