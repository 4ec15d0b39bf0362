package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"
)

const dataCfgDir = "../../mtl/testdata/config"

// dataSummary is the part of `mtbert data -json` the tests read.
type dataSummary struct {
	VocabSize int  `json:"vocab_size"`
	LowerCase bool `json:"lower_case"`
	Tasks     []struct {
		Name   string
		Labels []string
		Splits []struct {
			Split                                                     string
			Error                                                     string
			Documents, Sentences, Pairs, Subwords, Windows, Truncated int
			MaxSubwords                                               int `json:"max_subwords"`
			Entities                                                  map[string]int
			SpanTotals                                                map[string]int `json:"span_totals"`
			Labels                                                    map[string]int
		}
	}
}

func runDataJSON(t *testing.T, args ...string) dataSummary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"data", "-json"}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var s dataSummary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	return s
}

func TestDataFixtures(t *testing.T) {
	s := runDataJSON(t, "-config", filepath.Join(dataCfgDir, "good.yaml"))
	if s.VocabSize != 24 || s.LowerCase || len(s.Tasks) != 4 {
		t.Fatalf("summary %+v", s)
	}
	ct := s.Tasks[0].Splits[0]
	if ct.Documents != 3 || ct.Subwords != 15 || ct.Windows != 6 || ct.Labels["B-Problem"] != 2 {
		t.Errorf("conll train %+v", ct)
	}
	if dev := s.Tasks[0].Splits[1]; dev.Documents != 6 || dev.Windows != 12 {
		t.Errorf("conll dev %+v", dev)
	}
	nt := s.Tasks[1].Splits[0]
	if nt.SpanTotals["input"] != 4 || nt.SpanTotals["exact"] != 2 || nt.SpanTotals["changed_boundary"] != 1 || nt.SpanTotals["dropped_overlap"] != 1 {
		t.Errorf("brat span totals %v", nt.SpanTotals)
	}
	if got := strings.Join(s.Tasks[2].Labels, ","); got != "contradiction,entailment,neutral" {
		t.Errorf("nli labels %s", got)
	}
	// The text form.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"data", "-config", filepath.Join(dataCfgDir, "good.yaml")}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "notes (ner, brat, BILOU, max length 8, stride 3, overlap keep-longest): 13 labels") {
		t.Errorf("exit %d: %s%s", code, stdout.String(), stderr.String())
	}
}

func TestDataErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"data"}, &stdout, &stderr); code != 2 {
		t.Errorf("no -config: exit %d", code)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("encoder:\n  vocab: v.txt\ntasks:\n  - name: a\n    kind: ner\n    format: conl\n    train: x\n"), 0o644)
	stderr.Reset()
	if code := run([]string{"data", "-config", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "encoder.vocab: stat") {
		t.Errorf("bad config: exit %d: %s", code, stderr.String())
	}
	// An unreadable split: the summary is printed and the command fails.
	abs, _ := filepath.Abs(dataCfgDir)
	os.WriteFile(bad, []byte("data_root: "+abs+"\nencoder:\n  vocab: "+filepath.Join(abs, "vocab.txt")+"\ntasks:\n  - name: a\n    kind: ner\n    format: conll\n    train: nli.jsonl\n"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"data", "-config", bad}, &stdout, &stderr); code != 1 || !strings.Contains(stdout.String(), "train: ERROR") || !strings.Contains(stderr.String(), "1 split(s)") {
		t.Errorf("bad split: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	// The reason, with its file:line, is on stderr too, not only in the summary.
	if want := "mtbert data: task a, train: " + filepath.Join(abs, "nli.jsonl") + ":1: want 2 tab-separated columns (token, tag), got 1\n"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
}

// TestDataShared summarises the public corpora of ../shared/data with the real cased vocabulary.
func TestDataShared(t *testing.T) {
	root := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(filepath.Join(root, "vocab", "bert-base-cased-vocab.txt")); err != nil {
		t.Skipf("shared data absent (%v): skipping", err)
	}
	s := runDataJSON(t, "-config", filepath.Join(dataCfgDir, "shared.yaml"), "-data-root", root)
	if s.VocabSize != 28996 {
		t.Fatalf("vocab %d", s.VocabSize)
	}
	byName := map[string]int{}
	for i, tk := range s.Tasks {
		byName[tk.Name] = i
		for _, sp := range tk.Splits {
			if sp.Error != "" {
				t.Errorf("%s %s: %s", tk.Name, sp.Split, sp.Error)
			}
		}
	}
	ncbi := s.Tasks[byName["ncbi"]].Splits[0]
	if ncbi.Documents != 5424 || ncbi.Sentences != 5424 || ncbi.Entities["Disease"] != 5134 || ncbi.SpanTotals["exact"] != 5134 || ncbi.Subwords != 184081 || ncbi.Windows != 5424 {
		t.Errorf("ncbi train %+v", ncbi)
	}
	q := s.Tasks[byName["quaero"]].Splits[0] // drop-both
	if q.Documents != 844 || q.SpanTotals["input"] != 5689 || q.SpanTotals["dropped_overlap"] != 1971 || q.SpanTotals["exact"] != 3717 || q.SpanTotals["duplicates"] != 1 || q.Truncated != 0 {
		t.Errorf("quaero train %+v", q)
	}
	m := s.Tasks[byName["meddocan"]].Splits[0]
	if m.Documents != 500 || m.SpanTotals["input"] != 11333 || m.SpanTotals["exact"] != 11324 || m.SpanTotals["changed_boundary"] != 9 {
		t.Errorf("meddocan train %+v", m)
	}
	r := s.Tasks[byName["medrqe"]]
	if r.Splits[0].Pairs != 8588 || r.Splits[0].Labels["true"] != 4655 || r.Splits[1].Pairs != 302 {
		t.Errorf("medrqe %+v", r)
	}
	if b := s.Tasks[byName["biosses"]].Splits[0]; b.Pairs != 100 {
		t.Errorf("biosses %+v", b)
	}
}

// TestDataUTF16AndEmpty: a UTF-16 CoNLL file with a byte-order mark is read as its text (it
// used to be "invalid UTF-8 at byte 0"), and an empty dev file is an error on stderr naming
// it (it used to be 0 documents and exit 0).
func TestDataUTF16AndEmpty(t *testing.T) {
	abs, _ := filepath.Abs(dataCfgDir)
	src, err := os.ReadFile(filepath.Join(abs, "ner.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	u16 := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(string(src))) {
		u16 = append(u16, byte(u), byte(u>>8))
	}
	os.WriteFile(filepath.Join(dir, "ner16.tsv"), u16, 0o644)
	os.WriteFile(filepath.Join(dir, "empty.tsv"), nil, 0o644)
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("encoder: {vocab: "+filepath.Join(abs, "vocab.txt")+", max_position: 64}\ntasks:\n  - {name: a, kind: ner, format: conll, train: ner16.tsv, dev: empty.tsv, max_length: 16}\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run([]string{"data", "-config", cfg}, &stdout, &stderr)
	want := "mtbert data: task a, dev: " + filepath.Join(dir, "empty.tsv") + ": no sentences: the file is empty\n"
	if code != 1 || !strings.Contains(stderr.String(), want) || strings.Contains(stdout.String()+stderr.String(), "UTF-8") {
		t.Errorf("exit %d, want 1 and %q:\n%s%s", code, want, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`(?m)^\s+a\s+train\s+3\s+3\s`).MatchString(stdout.String()) {
		t.Errorf("the UTF-16 train split is not 3 sentences:\n%s", stdout.String())
	}
}
