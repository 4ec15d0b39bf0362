package bert

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hugCorpus is the toy corpus of the Hugging Face course's WordPiece chapter: hug x10, pug x5,
// pun x12, bun x4, hugs x5.
func hugCorpus() []string {
	var out []string
	for _, wc := range []struct {
		w string
		n int
	}{{"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}} {
		out = append(out, strings.Repeat(wc.w+" ", wc.n))
	}
	return out
}

func vocabTokens(v *Vocab) []string {
	out := make([]string, v.Len())
	for i := range out {
		out[i] = v.Token(i)
	}
	return out
}

// TestTrainWordPieceByHand checks the hug corpus against merges worked out by hand with the
// likelihood score freq(ab)/(freq(a)freq(b)) and the byte-order tie-break:
//
//	start  h ##u ##g x10, p ##u ##g x5, p ##u ##n x12, b ##u ##n x4, h ##u ##g ##s x5
//	1  ##g+##s   5/(20*5)   = 0.05   (every other pair scores 1/36)
//	2  ##u+##g   15/(36*15) = 1/36   (six pairs tie at 1/36: "##u","##g" sorts first)
//	3  ##u+##gs  5/(21*5)   = 1/21   (ties with ##u+##n and b+##u; "##gs" < "##n")
//	4  h+##ugs   5/(15*5)   = 1/15
//	5  h+##ug    10/(10*15) = 1/15
//	6  ##u+##n   16/(16*16) = 1/16   (ties with b+##u)
//	7  b+##un    4/(4*16)   = 1/16
//	8  p+##ug    5/(17*5)   = 1/17   (ties with p+##un: "##ug" < "##un")
//	9  p+##un    12/(17*12) = 1/17
func TestTrainWordPieceByHand(t *testing.T) {
	specials := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	// every character as a word start (as Hugging Face's trainer), then the "##" forms seen
	alphabet := []string{"b", "g", "h", "n", "p", "s", "u", "##g", "##n", "##s", "##u"}
	merges := []string{"##gs", "##ug", "##ugs", "hugs", "hug", "##un", "bun", "pug", "pun"}
	for _, tc := range []struct {
		name    string
		opts    WordPieceOptions
		merges  []string
		stop    string
		nMerges int
	}{
		{"all", WordPieceOptions{Size: 100, MinFrequency: 1}, merges, "no-pairs", 9},
		{"size", WordPieceOptions{Size: 18, MinFrequency: 1}, merges[:2], "size", 2},
		// min frequency 13: only pairs seen 13+ times: ##u+##g (20) and then ##u+##n (16/(16*16))
		// beats h+##ug (15/(15*20)); then h+##ug; then every pair is below 13.
		{"min-frequency", WordPieceOptions{Size: 100, MinFrequency: 13}, []string{"##ug", "##un", "hug"}, "min-frequency", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewWordPieceTrainer(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range hugCorpus() {
				tr.Add(s)
			}
			v, st, err := tr.Train()
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Concat(specials, alphabet, tc.merges)
			if got := vocabTokens(v); !slices.Equal(got, want) {
				t.Fatalf("vocab\n got %q\nwant %q", got, want)
			}
			if st.Words != 36 || st.DistinctWords != 5 || st.Alphabet != 11 || st.Specials != 5 || st.Merges != tc.nMerges || st.Stop != tc.stop {
				t.Errorf("stats %+v", st)
			}
			if sp := v.Specials(); sp != (SpecialIDs{Pad: 0, Unk: 1, Cls: 2, Sep: 3, Mask: 4}) {
				t.Errorf("special ids %+v", sp)
			}
		})
	}
}

// TestTrainWordPieceFrequency: with the frequency score (Hugging Face tokenizers'
// WordPieceTrainer, which is its BPE trainer) the merges, worked out by hand, are:
//
//	start  h+##u 15, ##u+##g 20, p+##u 17, ##u+##n 16, b+##u 4, ##g+##s 5
//	1 ##u+##g (20); then h+##ug 15, p+##ug 5, ##ug+##s 5, p+##u 12, ##u+##n 16, b+##u 4
//	2 ##u+##n (16); then p+##un 12, b+##un 4
//	3 h+##ug (15); then hug+##s 5
//	4 p+##un (12)
//	5 hug+##s and p+##ug tie at 5: "hug" < "p", so hugs; 6 pug; 7 bun (4)
func TestTrainWordPieceFrequency(t *testing.T) {
	v, err := TrainWordPiece(hugCorpus(), WordPieceOptions{Size: 100, MinFrequency: 1, Score: FrequencyScore})
	if err != nil {
		t.Fatal(err)
	}
	got := vocabTokens(v)[16:]
	want := []string{"##ug", "##un", "hug", "pun", "hugs", "pug", "bun"}
	if !slices.Equal(got, want) {
		t.Fatalf("merges %q, want %q", got, want)
	}
}

// referenceTrain is the trainer written the slow, obvious way: recount everything after every
// merge and scan all pairs. It defines what Train must return.
func referenceTrain(counts map[string]int, opts WordPieceOptions) []string {
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	slices.Sort(words)
	seqs := make([][]string, len(words))
	var first, inner []string
	seen := map[string]bool{}
	for i, w := range words {
		for j, r := range w {
			s := string(r)
			if j > 0 {
				s = "##" + s
			}
			seqs[i] = append(seqs[i], s)
			if !seen[string(r)] {
				seen[string(r)] = true
				first = append(first, string(r))
			}
			if j > 0 && !seen[s] {
				seen[s] = true
				inner = append(inner, s)
			}
		}
	}
	slices.Sort(first)
	slices.Sort(inner)
	vocab := slices.Concat(opts.SpecialTokens, first, inner)
	have := map[string]bool{}
	for _, s := range vocab {
		have[s] = true
	}
	for len(vocab) < opts.Size {
		freq := map[string]int{}
		pc := map[[2]string]int{}
		for i, seq := range seqs {
			for j, s := range seq {
				freq[s] += counts[words[i]]
				if j > 0 {
					pc[[2]string{seq[j-1], s}] += counts[words[i]]
				}
			}
		}
		var best [2]string
		bestScore := -1.0
		for p, c := range pc {
			if c < opts.MinFrequency {
				continue
			}
			sc := float64(c)
			if opts.Score == LikelihoodScore {
				sc = float64(c) / (float64(freq[p[0]]) * float64(freq[p[1]]))
			}
			if sc > bestScore || sc == bestScore && p[0]+"\x00"+p[1] < best[0]+"\x00"+best[1] {
				best, bestScore = p, sc
			}
		}
		if bestScore < 0 {
			break
		}
		n := best[0] + strings.TrimPrefix(best[1], "##")
		if !have[n] {
			have[n] = true
			vocab = append(vocab, n)
		}
		for i, seq := range seqs {
			out := seq[:0:0]
			for j := 0; j < len(seq); j++ {
				if j+1 < len(seq) && seq[j] == best[0] && seq[j+1] == best[1] {
					out = append(out, n)
					j++
				} else {
					out = append(out, seq[j])
				}
			}
			seqs[i] = out
		}
	}
	return vocab
}

// TestTrainWordPieceMatchesReference compares Train with referenceTrain on random corpora
// drawn from a small alphabet, where many pairs tie and merges reuse existing tokens.
func TestTrainWordPieceMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for trial := range 60 {
		var texts []string
		nWords := 5 + rng.IntN(60)
		letters := "abcab" + "xyz"[:rng.IntN(4)]
		for range nWords {
			var b strings.Builder
			for range 1 + rng.IntN(7) {
				b.WriteByte(letters[rng.IntN(len(letters))])
			}
			texts = append(texts, strings.Repeat(b.String()+" ", 1+rng.IntN(5)))
		}
		opts := WordPieceOptions{Size: 12 + rng.IntN(60), MinFrequency: 1 + rng.IntN(3), Score: MergeScore(trial % 2), SpecialTokens: DefaultSpecialTokens}
		tr, err := NewWordPieceTrainer(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range texts {
			tr.Add(s)
		}
		v, _, err := tr.Train()
		if err != nil {
			if strings.Contains(err.Error(), "smaller than") {
				continue
			}
			t.Fatal(err)
		}
		want := referenceTrain(tr.counts, opts)
		if got := vocabTokens(v); !slices.Equal(got, want) {
			t.Fatalf("trial %d (%+v) on %q:\n got %q\nwant %q", trial, opts, texts, got, want)
		}
	}
}

const clinicalSample = `Patient is a 67-year-old man with hypertension, type 2 diabetes mellitus and
atrial fibrillation on warfarin 5 mg PO daily. Started metoprolol 25 mg PO BID for rate control.
Chest X-ray showed a small left pleural effusion. Troponin was negative x2. Échocardiogramme:
FEVG 35 %. Naïve café Müller İstanbul 中文 [SEP] b.i.d. s/p CABG, q6h PRN. Follow up with
Dr. O'Neil at (617) 555-0123 on 03/14/2019.`

// TestTrainedVocabTokenizesWithoutUnk: a vocabulary trained on a text, used by NewTokenizer
// with the same casing, segments that text with no [UNK], in both casing modes and whatever
// the size (the alphabet alone already covers every word).
func TestTrainedVocabTokenizesWithoutUnk(t *testing.T) {
	for _, lower := range []bool{false, true} {
		for _, size := range []int{0, 40, 200} {
			tr, err := NewWordPieceTrainer(WordPieceOptions{Size: 10000, LowerCase: lower, MinFrequency: 1})
			if err != nil {
				t.Fatal(err)
			}
			tr.Add(clinicalSample)
			v0, st, err := tr.Train()
			if err != nil {
				t.Fatal(err)
			}
			if size > 0 {
				tr, _ = NewWordPieceTrainer(WordPieceOptions{Size: st.Specials + st.Alphabet + size, LowerCase: lower, MinFrequency: 1})
				tr.Add(clinicalSample)
				if v0, _, err = tr.Train(); err != nil {
					t.Fatal(err)
				}
			}
			tok := NewTokenizer(v0, TokenizerOptions{LowerCase: lower})
			toks := tok.Tokenize(clinicalSample)
			nUnk, nSep := 0, 0
			for _, tk := range toks {
				switch tk.Text {
				case UnkToken:
					nUnk++
				case SepToken:
					nSep++
				}
			}
			if nUnk != 0 || nSep != 1 {
				t.Errorf("lower=%v size=%d: %d [UNK] and %d [SEP] in %d tokens, want 0 and 1", lower, size, nUnk, nSep, len(toks))
			}
			// With no size limit every word is one token.
			if size == 0 {
				words := NewBasicTokenizer(TokenizerOptions{LowerCase: lower}).Tokenize(clinicalSample)
				if len(toks) != len(words) {
					t.Errorf("lower=%v: full vocabulary gives %d tokens for %d words", lower, len(toks), len(words))
				}
			}
		}
	}
}

// TestBasicTokenizerMatchesTokenize: when the vocabulary holds every word of the text whole,
// Tokenize returns exactly the BasicTokenizer's words (text and span), on the tokenizer's
// fuzz seeds (accents, CJK, controls, invalid UTF-8, specials...) and in all four casing and
// accent modes.
func TestBasicTokenizerMatchesTokenize(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzTokenize/*")
	inputs := []string{clinicalSample, "x\U0001D16D\U0001D165\u0301 pa\u200bt\x00\xffient a[SEP]b [unk] [UNK]"}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// "go test fuzz v1" files: string("...") on line 2
		for _, l := range strings.Split(string(data), "\n") {
			if s, ok := strings.CutPrefix(l, "string("); ok {
				var q string
				if _, err := fmt.Sscanf(strings.TrimSuffix(s, ")"), "%q", &q); err == nil {
					inputs = append(inputs, q)
				}
			}
		}
	}
	if len(inputs) < 8 {
		t.Fatalf("only %d inputs read", len(inputs))
	}
	no, yes := false, true
	for _, opts := range []TokenizerOptions{{}, {LowerCase: true}, {LowerCase: true, StripAccents: &no}, {StripAccents: &yes}} {
		bt := NewBasicTokenizer(opts)
		for _, in := range inputs {
			words := bt.Tokenize(in)
			toks := slices.Clone(DefaultSpecialTokens)
			for _, w := range words {
				if !w.Special {
					toks = append(toks, w.Text)
				}
			}
			v := vocabOf(t, toks...)
			opts.MaxInputCharsPerWord = 1 << 20
			got := NewTokenizer(v, opts).Tokenize(in)
			if len(got) != len(words) {
				t.Fatalf("%+v %q: %d tokens, %d words\n%v\n%v", opts, in, len(got), len(words), got, words)
			}
			for i, w := range words {
				if got[i].Text != w.Text || got[i].Start != w.Start || got[i].End != w.End {
					t.Fatalf("%+v %q: token %d = %+v, word %+v", opts, in, i, got[i], w)
				}
			}
		}
	}
}

func TestTrainWordPieceDeterministic(t *testing.T) {
	var texts []string
	for i := range 200 {
		texts = append(texts, fmt.Sprintf("%s note %d: metoprolol %d mg q%dh, lisinopril, hyperlipidemia, hypertension", clinicalSample[:40+i%50], i, i%7*25, i%4*6))
	}
	var first []byte
	for rep := range 3 {
		order := slices.Clone(texts)
		if rep == 2 {
			slices.Reverse(order) // counts do not depend on the order of the texts
		}
		v, err := TrainWordPiece(order, WordPieceOptions{Size: 200})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := v.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		if rep == 0 {
			first = b.Bytes()
			if v.Len() != 200 {
				t.Errorf("vocab has %d tokens, want 200", v.Len())
			}
		} else if !bytes.Equal(b.Bytes(), first) {
			t.Fatalf("run %d differs from run 0", rep)
		}
	}
}

func TestTrainWordPieceErrors(t *testing.T) {
	for _, tc := range []struct {
		opts WordPieceOptions
		want string
	}{
		{WordPieceOptions{Size: 5}, "no room after the 5 special tokens"},
		{WordPieceOptions{Size: 100, SpecialTokens: []string{"[UNK]", "[CLS]"}}, "lack [SEP]"},
		{WordPieceOptions{Size: 100, SpecialTokens: []string{"[UNK]", "[CLS]", "[SEP]", "[CLS]"}}, "listed twice"},
		{WordPieceOptions{Size: 100, SpecialTokens: []string{"[UNK]", "[CLS]", "[SEP]", "a\nb"}}, "line break"},
		{WordPieceOptions{Size: 100, Score: 7}, "unknown score"},
	} {
		if _, err := NewWordPieceTrainer(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.opts, err, tc.want)
		}
	}
	// hug corpus: 5 specials + 11 alphabet tokens = 16; size 15 cannot hold them.
	_, err := TrainWordPiece(hugCorpus(), WordPieceOptions{Size: 15})
	if err == nil || !strings.Contains(err.Error(), "use at least 16") {
		t.Errorf("size 15: error %v, want 'use at least 16'", err)
	}
	if _, err := TrainWordPiece([]string{"", "  \n", "[CLS] [SEP]"}, WordPieceOptions{Size: 100}); err == nil || !strings.Contains(err.Error(), "no words") {
		t.Errorf("empty input: error %v", err)
	}
	if _, err := ParseMergeScore("bpe"); err == nil {
		t.Error("ParseMergeScore(bpe): no error")
	}
	// A word over MaxInputCharsPerWord is not counted.
	tr, _ := NewWordPieceTrainer(WordPieceOptions{Size: 100, MaxInputCharsPerWord: 4})
	tr.Add("abcde abcd")
	_, st, err := tr.Train()
	if err != nil || st.SkippedLong != 1 || st.Words != 1 {
		t.Errorf("long word: stats %+v, err %v", st, err)
	}
}

// TestTrainWordPieceSpeed trains on the shared Quaero text (about 2 MB) when it is present
// and reports the time; it fails only when far slower than the few seconds the demo allows.
func TestTrainWordPieceSpeed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	var texts []string
	var n int
	for _, dir := range []string{"../../shared/data/quaero/train/EMEA", "../../shared/data/quaero/train/MEDLINE"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, string(data))
			n += len(data)
		}
	}
	if n == 0 {
		t.Skip("no shared Quaero data")
	}
	start := time.Now()
	tr, err := NewWordPieceTrainer(WordPieceOptions{Size: 8000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range texts {
		tr.Add(s)
	}
	count := time.Since(start)
	v, st, err := tr.Train()
	if err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	t.Logf("%d bytes, %d words (%d distinct), alphabet %d, %d merges (stop: %s): count %v, total %v",
		n, st.Words, st.DistinctWords, st.Alphabet, st.Merges, st.Stop, count, total)
	if v.Len() != 8000 {
		t.Errorf("vocab of %d tokens, asked for 8000", v.Len())
	}
}
