package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/corpus"
)

// bulkInput writes an input of raw notes, JSONL notes and pairs.
func bulkInput(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	words := []string{"aspirin", "fever", "insulin", "chest pain", "cough", "metformin"}
	for i := 0; i < 40; i++ {
		w, v := words[i%len(words)], words[(i*5+1)%len(words)]
		switch i % 4 {
		case 0:
			lines = append(lines, fmt.Sprintf("patient %d took %s for %s .", i, w, v))
		case 1, 2:
			b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("n%d", i), "text": fmt.Sprintf("no %s after %s , note %d .", w, v, i)})
			lines = append(lines, string(b))
		default:
			b, _ := json.Marshal(map[string]any{"id": i * 1000, "text_a": "patient has " + w + " .", "text_b": "patient has no " + v + " ."})
			lines = append(lines, string(b))
		}
	}
	in := filepath.Join(dir, "in.jsonl")
	mustWrite(t, in, strings.Join(lines, "\n")+"\n")
	return in
}

// readOut reads an output file, decompressing it when needed.
func readOut(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := corpus.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func outLines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func lineID(t *testing.T, l string) string {
	t.Helper()
	var o struct{ ID string }
	if err := json.Unmarshal([]byte(l), &o); err != nil {
		t.Fatalf("output line %q: %v", l, err)
	}
	return o.ID
}

func TestPredictBulk(t *testing.T) {
	dir := t.TempDir()
	runCmd(t, 0, "train", "-config", trainCfg, "-out", filepath.Join(dir, "run"), "-quiet")
	model := filepath.Join(dir, "run", "best")
	in := bulkInput(t, dir)
	full, _ := runCmd(t, 0, "predict", "-model", model, "-in", in)
	fullLines := outLines(full)
	if len(fullLines) != 40 {
		t.Fatalf("%d output lines, want 40", len(fullLines))
	}
	byID := map[string]string{}
	for _, l := range fullLines {
		byID[lineID(t, l)] = l
	}
	if len(byID) != 40 {
		t.Fatalf("%d distinct ids, want 40", len(byID))
	}

	t.Run("workers", func(t *testing.T) {
		for _, b := range []string{"1", "3", "8"} {
			got, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-workers", "3", "-batch", b)
			one, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-workers", "1", "-batch", b)
			if got != one {
				t.Errorf("-batch %s: -workers 3 output differs from -workers 1", b)
			}
		}
		// Batches of notes through ExtractMany equal one Extract a note.
		if one, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-batch", "1"); one != full {
			t.Errorf("-batch 1 output differs from -batch 8")
		}
		got, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-workers", "3")
		if got != full {
			t.Errorf("-workers 3 output differs from the default run")
		}
	})

	t.Run("shards", func(t *testing.T) {
		seen := map[string]int{}
		for i := 0; i < 3; i++ {
			out := filepath.Join(dir, fmt.Sprintf("shard%d.jsonl", i))
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-shard", fmt.Sprintf("%d/3", i), "-workers", "2")
			got := readOut(t, out)
			if got == "" {
				t.Errorf("shard %d/3 is empty", i)
				continue
			}
			last := -1
			for _, l := range outLines(got) {
				id := lineID(t, l)
				seen[id]++
				if byID[id] != l {
					t.Errorf("shard %d/3, id %s: %s, unsharded %s", i, id, l, byID[id])
				}
				k := indexOf(fullLines, l)
				if k <= last {
					t.Errorf("shard %d/3 is not in input order at id %s", i, id)
				}
				last = k
			}
		}
		for id := range byID {
			if seen[id] != 1 {
				t.Errorf("id %s is in %d shards", id, seen[id])
			}
		}
		if len(seen) != len(byID) {
			t.Errorf("shards hold %d ids, want %d", len(seen), len(byID))
		}
	})

	t.Run("resume", func(t *testing.T) {
		for _, ext := range []string{".jsonl", ".jsonl.gz", ".jsonl.zst"} {
			out := filepath.Join(dir, "resume"+ext)
			// A partial output: the first 13 lines, written by an earlier (interrupted) run.
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out)
			partial := filepath.Join(dir, "partial.jsonl")
			mustWrite(t, partial, strings.Join(strings.Split(readInput(t, in), "\n")[:13], "\n")+"\n")
			runCmd(t, 0, "predict", "-model", model, "-in", partial, "-out", out)
			if got := outLines(readOut(t, out)); len(got) != 13 {
				t.Fatalf("%s: partial output has %d lines", ext, len(got))
			}
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-resume", "-workers", "3")
			if got := readOut(t, out); got != full {
				t.Errorf("%s: resumed output differs from the full run:\n%s", ext, got)
			}
			// Resuming a complete output changes nothing.
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-resume")
			if got := readOut(t, out); got != full {
				t.Errorf("%s: resuming a complete output changed it", ext)
			}
		}
		// A plain partial output whose last line lost its newline.
		out := filepath.Join(dir, "nonl.jsonl")
		mustWrite(t, out, strings.Join(fullLines[:5], "\n"))
		runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-resume")
		if got := readOut(t, out); got != full {
			t.Errorf("resume after a line without newline:\n%s", got)
		}
		// -resume on a missing file is a fresh run.
		out = filepath.Join(dir, "fresh.jsonl")
		runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-resume")
		if got := readOut(t, out); got != full {
			t.Errorf("resume onto a missing file differs from the full run")
		}
		// An output that is not mtbert's is refused and left alone.
		out = filepath.Join(dir, "other.jsonl")
		mustWrite(t, out, "hello\n")
		_, stderr := runCmd(t, 1, "predict", "-model", model, "-in", in, "-out", out, "-resume")
		if !strings.Contains(stderr, "not an mtbert predict output line") || readInput(t, out) != "hello\n" {
			t.Errorf("resume onto a foreign file: %s", stderr)
		}
	})

	t.Run("shards4", func(t *testing.T) { testShards4(t, dir, model, in, full) })
	t.Run("formats", func(t *testing.T) { testPredictFormats(t, dir, model, in, full) })
	t.Run("serve-equals-predict", func(t *testing.T) { testServeEqualsPredict(t, dir, model) })

	t.Run("compressed", func(t *testing.T) {
		for _, ext := range []string{".gz", ".zst"} {
			out := filepath.Join(dir, "out.jsonl"+ext)
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-workers", "2")
			raw := readInput(t, out)
			magic := map[string][]byte{".gz": {0x1f, 0x8b}, ".zst": {0x28, 0xb5, 0x2f, 0xfd}}[ext]
			if !bytes.HasPrefix([]byte(raw), magic) {
				t.Errorf("%s output is not compressed", ext)
			}
			if got := readOut(t, out); got != full {
				t.Errorf("%s output decompresses to something else than the plain output", ext)
			}
		}
	})
}

func TestPredictBulkUsage(t *testing.T) {
	for _, s := range []string{"3/3", "-1/3", "a/3", "1", "0/0", "1/2/3", "1/-2", " 1/3"} {
		_, stderr := runCmd(t, 2, "predict", "-model", "x", "-shard", s)
		if !strings.Contains(stderr, "-shard") || !strings.Contains(stderr, "0 <= i < N") {
			t.Errorf("-shard %q: %s", s, stderr)
		}
	}
	for _, c := range [][]string{{"-workers", "0"}, {"-resume"}, {"-format", "xml"}, {"-format", "brat"}, {"-format", "bioc", "-out", "x.json", "-resume"}} {
		runCmd(t, 2, append([]string{"predict", "-model", "x"}, c...)...)
	}
	_, stderr := runCmd(t, 0, "predict", "-h")
	for _, s := range []string{"-shard", "-workers", "-resume", "FNV-1a", ".zst", "-format", "brat", "bioc", "AnnotatorNotes", "-progress", "ETA"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("predict -h lacks %q", s)
		}
	}
}

func indexOf(lines []string, l string) int {
	for i, x := range lines {
		if x == l {
			return i
		}
	}
	return -1
}

func readInput(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
