package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
)

const vocabNote1 = "Started metoprolol 25 mg PO BID for atrial fibrillation.\nWarfarin 5 mg PO daily; INR 2.4.\n"
const vocabNote2 = "Metoprolol held for bradycardia. Follow up with Dr. Okafor on 03/14/2019.\n"

// TestVocabCommand builds a vocabulary from a folder (two .txt files, one gzipped, and an
// .ann file that must be ignored) and checks the file: specials first, loadable, and the
// texts tokenised without [UNK].
func TestVocabCommand(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus")
	if err := os.MkdirAll(filepath.Join(corpus, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(corpus, "a.txt"), []byte(vocabNote1))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(vocabNote2))
	zw.Close()
	write(filepath.Join(corpus, "sub", "b.txt.gz"), gz.Bytes())
	write(filepath.Join(corpus, "a.ann"), []byte("T1\tDrug 8 18\tmetoprolol\nZZZZZZ qqqqqq\n"))

	out := filepath.Join(dir, "vocab.txt")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"vocab", "-in", corpus, "-size", "120", "-out", out, "-min-freq", "1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "read 2 file(s)") || !strings.Contains(stderr.String(), "120 tokens") {
		t.Errorf("report: %s", stderr.String())
	}
	v, err := bert.LoadVocab(out)
	if err != nil {
		t.Fatal(err)
	}
	if v.Len() != 120 {
		t.Errorf("%d tokens, want 120", v.Len())
	}
	for i, s := range bert.DefaultSpecialTokens {
		if v.Token(i) != s {
			t.Errorf("token %d = %q, want %q", i, v.Token(i), s)
		}
	}
	if _, ok := v.ID("Z"); ok {
		t.Error("the .ann file was read")
	}
	tok := bert.NewTokenizer(v, bert.TokenizerOptions{LowerCase: false})
	for _, s := range []string{vocabNote1, vocabNote2} {
		for _, tk := range tok.Tokenize(s) {
			if tk.ID == v.Specials().Unk {
				t.Errorf("[UNK] for %q", s[tk.Start:tk.End])
			}
		}
	}

	// -lower-case: no uppercase letter in the vocabulary.
	if code := run([]string{"vocab", "-in", filepath.Join(corpus, "a.txt"), "-size", "60", "-out", out, "-lower-case", "-score", "frequency"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	data, _ := os.ReadFile(out)
	body := strings.Join(strings.Split(string(data), "\n")[5:], "\n")
	if strings.ContainsAny(body, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		t.Errorf("lowercased vocabulary has uppercase tokens:\n%s", body)
	}
}

func TestVocabCommandErrors(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(txt, []byte(vocabNote1), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	out := filepath.Join(dir, "v.txt")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-out", out}, 2, "Usage: mtbert vocab"},
		{[]string{"-in", txt}, 2, "Usage: mtbert vocab"},
		{[]string{"-in", filepath.Join(dir, "missing.txt"), "-out", out}, 1, "missing.txt"},
		{[]string{"-in", empty, "-out", out}, 1, "no *.txt file"},
		{[]string{"-in", txt, "-out", out, "-size", "10"}, 1, "use at least"},
		{[]string{"-in", txt, "-out", out, "-score", "bpe"}, 1, "unknown merge score"},
		{[]string{"-in", txt, "-out", out, "-min-freq", "0"}, 1, "at least 1"},
		{[]string{"-in", txt, "-out", filepath.Join(dir, "no", "such", "v.txt")}, 1, "no such file"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"vocab"}, tc.args...), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
