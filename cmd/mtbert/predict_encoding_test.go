package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestPredictInputEncodings: predict reads its input as corpus.NewReader gives it. A UTF-8
// byte-order mark is dropped (it used to stay in the first note's first token) and a UTF-16
// input with a mark is decoded: both give the output of the plain UTF-8 input, offsets
// included. UTF-16 without a mark (NUL bytes) is refused line by line instead of being
// predicted as "t\u0000u\u0000m...".
func TestPredictInputEncodings(t *testing.T) {
	dir := t.TempDir()
	runCmd(t, 0, "train", "-config", trainCfg, "-out", filepath.Join(dir, "run"), "-quiet")
	model := filepath.Join(dir, "run", "best")
	text := "Patient took aspirin daily for chest pain .\nno fever after 5mg insulin .\n"
	le := func(s string, bom bool) []byte {
		var b []byte
		if bom {
			b = []byte{0xff, 0xfe}
		}
		for _, u := range utf16.Encode([]rune(s)) {
			b = append(b, byte(u), byte(u>>8))
		}
		return b
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	want, _ := runCmd(t, 0, "predict", "-model", model, "-in", write("plain.txt", []byte(text)))
	if ls := outLines(want); len(ls) != 2 || !strings.Contains(ls[0], `"entities"`) || strings.Contains(want, `"error"`) {
		t.Fatalf("plain output: %s", want)
	}
	for name, b := range map[string][]byte{
		"bom8.txt":  append([]byte("\ufeff"), text...),
		"bom16.txt": le(text, true),
	} {
		if got, _ := runCmd(t, 0, "predict", "-model", model, "-in", write(name, b)); got != want {
			t.Errorf("%s: output differs from the plain input's:\n got %s\nwant %s", name, got, want)
		}
	}
	got, stderr := runCmd(t, 1, "predict", "-model", model, "-in", write("nomark16.txt", le(text, false)))
	// Three lines: the last "\n" is followed by its NUL half.
	if !strings.Contains(stderr, "3 of 3 inputs failed") || strings.Count(got, "NUL byte at byte") != 3 || !strings.Contains(got, "UTF-16 without a byte-order mark") {
		t.Errorf("UTF-16 without a mark:\nstdout %s\nstderr %s", got, stderr)
	}
}
