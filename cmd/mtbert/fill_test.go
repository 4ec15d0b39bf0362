package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
)

// fillModelDir saves a tiny BertForMaskedLM (2 layers, hidden 32, 16 positions) whose head
// outputs cls.predictions.bias whatever the input (its LayerNorm zeroed), with "fever" 4,
// "pain" 2 and 0 elsewhere; with head false it saves the encoder alone.
func fillModelDir(t *testing.T, head bool) string {
	t.Helper()
	words := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "patient", "denies", "chest", "pain", "fever", "and", "."}
	v, err := bert.ReadVocab(strings.NewReader(strings.Join(words, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = v.Len(), 32, 2, 4, 64
	cfg.MaxPositionEmbeddings = 16
	m, err := bert.New(cfg, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if head {
		h, err := m.AddMLMHead(2)
		if err != nil {
			t.Fatal(err)
		}
		h.LN.Gamma.Value.Fill(0)
		h.LN.Beta.Value.Fill(0)
		h.Bias.Value.Data()[9], h.Bias.Value.Data()[8] = 4, 2
	}
	dir := filepath.Join(t.TempDir(), "mlm")
	if err := m.Save(dir, v); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFillCommand runs `mtbert fill` on a file with a good line (two masks), a line without
// [MASK] and one too long, then on standard input, and checks the JSON lines and exit codes.
func TestFillCommand(t *testing.T) {
	dir := fillModelDir(t, true)
	in := filepath.Join(t.TempDir(), "in.txt")
	long := "[MASK]" + strings.Repeat(" pain", 20)
	good := "Patient denies [MASK] and [MASK]."
	if err := os.WriteFile(in, []byte(good+"\n\npatient denies pain\n"+long+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"fill", "-model", dir, "-in", in, "-k", "2"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "2 of 3 lines failed") {
		t.Errorf("stderr: %s", stderr.String())
	}
	type line struct {
		Text  string
		Error string
		Masks []struct {
			Offset      int
			Predictions []struct {
				Token string
				Prob  float64
			}
		}
	}
	var got []line
	for _, s := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		got = append(got, l)
	}
	if len(got) != 3 {
		t.Fatalf("%d output lines, want 3:\n%s", len(got), stdout.String())
	}
	z := math.Exp(4) + math.Exp(2) + 10
	g := got[0]
	if g.Text != good || g.Error != "" || len(g.Masks) != 2 {
		t.Fatalf("good line: %+v", g)
	}
	for i, mk := range g.Masks {
		if want := []int{15, 26}[i]; mk.Offset != want {
			t.Errorf("mask %d at offset %d, want %d", i, mk.Offset, want)
		}
		p := mk.Predictions
		if len(p) != 2 || p[0].Token != "fever" || p[1].Token != "pain" || math.Abs(p[0].Prob-math.Exp(4)/z) > 1e-6 || math.Abs(p[1].Prob-math.Exp(2)/z) > 1e-6 {
			t.Errorf("mask %d predictions %+v", i, p)
		}
	}
	if got[1].Text != "patient denies pain" || !strings.Contains(got[1].Error, "no [MASK]") || got[1].Masks != nil {
		t.Errorf("line without mask: %+v", got[1])
	}
	if got[2].Text != long || !strings.Contains(got[2].Error, "max_position_embeddings 16") {
		t.Errorf("long line: %+v", got[2])
	}

	// Standard input, every line good: exit 0.
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.WriteFile(in, []byte("[MASK] denies pain\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"fill", "-model", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("stdin: exit %d; stderr:\n%s", code, stderr.String())
	}
	if s := stdout.String(); !strings.HasPrefix(s, `{"text":"[MASK] denies pain","masks":[{"offset":0,"predictions":[{"token":"fever","prob":`) || strings.Count(s, `"token"`) != 5 {
		t.Errorf("stdin output: %s", s)
	}
}

// TestFillCommandUsage checks -h, a missing -model and a checkpoint without an MLM head.
func TestFillCommandUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"fill", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "Usage: mtbert fill") || !strings.Contains(stderr.String(), "-k") {
		t.Errorf("-h: exit %d, stderr:\n%s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"fill"}, &stdout, &stderr); code != 2 {
		t.Errorf("no -model: exit %d", code)
	}
	stderr.Reset()
	if code := run([]string{"fill", "-model", fillModelDir(t, false)}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no MLM head") {
		t.Errorf("no head: exit %d, stderr:\n%s", code, stderr.String())
	}
}
