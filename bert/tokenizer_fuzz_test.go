package bert

import (
	"os"
	"sync"
	"testing"
)

var (
	fuzzTokOnce sync.Once
	fuzzToks    [4]*Tokenizer
)

// fuzzTokenizers returns tokenizers over the shared cased vocabulary, or over a small
// vocabulary (transformers' test vocabulary plus ASCII letters and their ## forms) when the
// shared data is absent, in four casing/accent modes.
func fuzzTokenizers(t testing.TB) [4]*Tokenizer {
	fuzzTokOnce.Do(func() {
		var v *Vocab
		if _, err := os.Stat(casedVocabPath); err == nil {
			v, err = LoadVocab(casedVocabPath)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			toks := append([]string{}, hfTestVocab...)
			for c := 'a'; c <= 'z'; c++ {
				toks = append(toks, string(c), "##"+string(c))
			}
			v = vocabOf(t, toks...)
		}
		fa, tr := false, true
		fuzzToks = [4]*Tokenizer{
			NewTokenizer(v, TokenizerOptions{}),
			NewTokenizer(v, TokenizerOptions{LowerCase: true}),
			NewTokenizer(v, TokenizerOptions{LowerCase: true, StripAccents: &fa, MaxInputCharsPerWord: 8}),
			NewTokenizer(v, TokenizerOptions{StripAccents: &tr, TokenizeChineseChars: &fa, NeverSplit: []string{"s/p"}}),
		}
	})
	return fuzzToks
}

// FuzzTokenize checks that Tokenize never panics and that its output always satisfies the
// offset invariants of checkTokens (spans in range, on character boundaries, non-decreasing,
// normalising back to the token texts; ids in the vocabulary), and that EncodePair with
// truncation stays within maxLen whenever HF's longest_first can reach it.
func FuzzTokenize(f *testing.F) {
	for _, s := range []string{"", " ", "Patient takes 5mg b.i.d. s/p CABG", "[**2151-7-16**]", "café Müller",
		"İstanbul", "中文", "a[SEP]b", "x\U0001D16D\U0001D165\u0301", "pa\u200bt\x00\xffient", clinicalNote[:200]} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, text string, mode uint8) {
		tk := fuzzTokenizers(t)[mode%4]
		toks := tk.Tokenize(text)
		for _, tok := range toks {
			// never-split words keep their own text, which checkTokens cannot normalise to
			if _, ok := tk.neverSplit[tok.Text]; ok {
				return
			}
		}
		checkTokens(t, tk, text, toks)
		maxLen := 3 + int(mode/4)%16
		e := tk.EncodePair(text, text, maxLen)
		if len(e.IDs) > maxLen {
			t.Fatalf("EncodePair(%q, %q, %d) has %d tokens", text, text, maxLen, len(e.IDs))
		}
	})
}
