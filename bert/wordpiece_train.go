package bert

import (
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// DefaultMinFrequency is the smallest pair count a merge needs when
// WordPieceOptions.MinFrequency is not set: 2, the default of Hugging Face's
// BertWordPieceTokenizer.train.
const DefaultMinFrequency = 2

// DefaultSpecialTokens are the special tokens a trained vocabulary starts with, in id order:
// [PAD] is 0, as in BERT's own vocabularies.
var DefaultSpecialTokens = []string{PadToken, UnkToken, ClsToken, SepToken, MaskToken}

// MergeScore chooses how the WordPiece trainer ranks candidate merges.
type MergeScore int

const (
	// LikelihoodScore ranks a pair (a, b) by freq(ab) / (freq(a) * freq(b)), the likelihood
	// criterion of WordPiece as the Hugging Face course describes it: it prefers pairs whose
	// parts are rare on their own.
	LikelihoodScore MergeScore = iota
	// FrequencyScore ranks a pair by freq(ab) alone: what Hugging Face tokenizers'
	// WordPieceTrainer actually does (it is its BpeTrainer with the "##" prefix).
	FrequencyScore
)

// String returns "likelihood" or "frequency".
func (m MergeScore) String() string {
	switch m {
	case LikelihoodScore:
		return "likelihood"
	case FrequencyScore:
		return "frequency"
	}
	return fmt.Sprintf("MergeScore(%d)", int(m))
}

// ParseMergeScore parses "likelihood" or "frequency".
func ParseMergeScore(s string) (MergeScore, error) {
	switch s {
	case "likelihood":
		return LikelihoodScore, nil
	case "frequency":
		return FrequencyScore, nil
	}
	return 0, fmt.Errorf("unknown merge score %q (want likelihood or frequency)", s)
}

// WordPieceOptions configures TrainWordPiece.
type WordPieceOptions struct {
	// Size is the number of tokens of the vocabulary, special tokens included. Training stops
	// when it is reached, or earlier when no pair is left to merge. It must leave room for
	// the special tokens and the alphabet (every character seen, and its "##" form when seen
	// inside a word); a smaller Size is an error that says how large it must be.
	Size int
	// LowerCase lowercases and strips accents before counting words, as the tokenizer that
	// will use the vocabulary must then do (TokenizerOptions.LowerCase).
	LowerCase bool
	// MinFrequency is the smallest number of occurrences of a pair for it to be merged;
	// <= 0 means DefaultMinFrequency.
	MinFrequency int
	// SpecialTokens open the vocabulary, in order; nil means DefaultSpecialTokens. They must
	// include [UNK], [CLS] and [SEP] and be distinct. Occurrences in the text are not counted.
	SpecialTokens []string
	// MaxInputCharsPerWord: words with more runes are not counted (the tokenizer turns them
	// into [UNK] whatever the vocabulary); <= 0 means DefaultMaxInputCharsPerWord.
	MaxInputCharsPerWord int
	// Score ranks candidate merges; the zero value is LikelihoodScore.
	Score MergeScore
}

// WordPieceStats reports what training saw and did.
type WordPieceStats struct {
	// Words is the number of words counted (with repetition); DistinctWords without.
	Words, DistinctWords int
	// SkippedLong counts words longer than MaxInputCharsPerWord, not counted.
	SkippedLong int
	// Specials is the number of special tokens, Alphabet the number of single-character
	// tokens ("x" and "##x"), Merges the number of tokens added by merging.
	Specials, Alphabet, Merges int
	// Stop says why training ended: "size" (Size reached), "min-frequency" (every remaining
	// pair occurs fewer than MinFrequency times) or "no-pairs" (every word is one token).
	Stop string
}

// WordPieceTrainer counts words and learns a WordPiece vocabulary from them. Feed it with Add,
// then call Train. It is not safe for concurrent use.
type WordPieceTrainer struct {
	opts   WordPieceOptions
	basic  *BasicTokenizer
	counts map[string]int
	stats  WordPieceStats
}

// NewWordPieceTrainer checks opts and returns an empty trainer.
func NewWordPieceTrainer(opts WordPieceOptions) (*WordPieceTrainer, error) {
	if opts.SpecialTokens == nil {
		opts.SpecialTokens = DefaultSpecialTokens
	}
	if opts.MinFrequency <= 0 {
		opts.MinFrequency = DefaultMinFrequency
	}
	if opts.MaxInputCharsPerWord <= 0 {
		opts.MaxInputCharsPerWord = DefaultMaxInputCharsPerWord
	}
	if opts.Score != LikelihoodScore && opts.Score != FrequencyScore {
		return nil, fmt.Errorf("bert: train wordpiece: unknown score %v", opts.Score)
	}
	seen := map[string]bool{}
	for _, s := range opts.SpecialTokens {
		switch {
		case s == "" || strings.ContainsAny(s, "\r\n") || !utf8.ValidString(s):
			return nil, fmt.Errorf("bert: train wordpiece: special token %q is empty, has a line break or is not UTF-8", s)
		case seen[s]:
			return nil, fmt.Errorf("bert: train wordpiece: special token %q listed twice", s)
		}
		seen[s] = true
	}
	for _, s := range []string{UnkToken, ClsToken, SepToken} {
		if !seen[s] {
			return nil, fmt.Errorf("bert: train wordpiece: special tokens %q lack %s", opts.SpecialTokens, s)
		}
	}
	if opts.Size <= len(opts.SpecialTokens) {
		return nil, fmt.Errorf("bert: train wordpiece: size %d leaves no room after the %d special tokens", opts.Size, len(opts.SpecialTokens))
	}
	return &WordPieceTrainer{
		opts:   opts,
		basic:  NewBasicTokenizer(TokenizerOptions{LowerCase: opts.LowerCase}),
		counts: map[string]int{},
	}, nil
}

// Add pre-tokenises text with the BasicTokenizer (the options' casing) and counts its words.
// Special tokens in the text are skipped. Texts are independent: whether a corpus is added
// line by line or file by file gives the same counts, since words never span a line break.
func (w *WordPieceTrainer) Add(text string) {
	for _, wd := range w.basic.Tokenize(text) {
		if wd.Special {
			continue
		}
		if utf8.RuneCountInString(wd.Text) > w.opts.MaxInputCharsPerWord {
			w.stats.SkippedLong++
			continue
		}
		w.counts[wd.Text]++
		w.stats.Words++
	}
}

// pairKey packs the symbol ids of a pair.
func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// pairInfo is one candidate merge.
type pairInfo struct {
	a, b   int32
	count  int
	score  float64
	pos    int     // index in the heap, -1 when not in it
	where  []int32 // words that contained the pair when its count grew (may be stale)
	listed bool    // in left[a] and right[b]
	mark   int     // de-duplicates list passes
	round  int     // last flush round the pair was queued for
}

// pairHeap is a max-heap of pairs by score, ties broken by the texts of a then b (smaller
// first); each pair knows its index, so a changed score is fixed in place.
type pairHeap struct {
	items []*pairInfo
	texts *[]string
}

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(i, j int) bool {
	p, q := h.items[i], h.items[j]
	if p.score != q.score {
		return p.score > q.score
	}
	t := *h.texts
	if t[p.a] != t[q.a] {
		return t[p.a] < t[q.a]
	}
	return t[p.b] < t[q.b]
}
func (h *pairHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].pos, h.items[j].pos = i, j
}
func (h *pairHeap) Push(x any) {
	p := x.(*pairInfo)
	p.pos = len(h.items)
	h.items = append(h.items, p)
}
func (h *pairHeap) Pop() any {
	n := len(h.items) - 1
	p := h.items[n]
	h.items = h.items[:n]
	p.pos = -1
	return p
}

// Train learns the vocabulary from the words added so far.
//
// Every word starts split into characters, the first as itself and the others with the "##"
// continuation prefix ("word" is w ##o ##r ##d). The alphabet is every character seen, as a
// token of its own (wherever it was seen, as Hugging Face's trainer does, so that a word
// made of any known characters can be segmented), and the "##" form of every character seen
// inside a word. Then, as
// in BPE, the best adjacent pair of symbols over all words (each word weighted by its count)
// is merged into one new symbol ("w" + "##o" = "wo", "##o" + "##r" = "##or") and replaced in
// every word, until the vocabulary has Size tokens or no pair occurs MinFrequency times. The
// best pair is the one of highest score (see MergeScore), ties broken by the smaller
// (a, b) in byte order of the two symbols' texts, so the result depends on the counts only.
// A merge that yields a token already present (two paths to "abc") adds nothing.
//
// The vocabulary lists the special tokens, then the single characters in code point order,
// then their "##" forms in code point order, then the merged tokens in the order learned.
func (w *WordPieceTrainer) Train() (*Vocab, WordPieceStats, error) {
	st := w.stats
	st.DistinctWords = len(w.counts)
	st.Specials = len(w.opts.SpecialTokens)
	if len(w.counts) == 0 {
		return nil, st, errors.New("bert: train wordpiece: no words in the input")
	}
	// Words in a fixed order, so that everything below is deterministic.
	words := make([]string, 0, len(w.counts))
	for s := range w.counts {
		words = append(words, s)
	}
	slices.Sort(words)

	m := newMerger(w.opts)
	nAlpha := m.addAlphabet(words)
	for _, s := range m.texts {
		if !m.special[s] {
			st.Alphabet++
		}
	}
	if need := st.Specials + st.Alphabet; w.opts.Size < need {
		return nil, st, fmt.Errorf("bert: train wordpiece: size %d is smaller than the %d special tokens plus the %d-token alphabet of the input; use at least %d",
			w.opts.Size, st.Specials, st.Alphabet, need)
	}
	m.splitWords(words, w.counts)
	m.countPairs()

	added := []string{}
	size := st.Specials + st.Alphabet
	st.Stop = "no-pairs"
	for size < w.opts.Size {
		if m.h.Len() == 0 {
			if m.anyLivePair() {
				st.Stop = "min-frequency"
			}
			break
		}
		text, isNew, err := m.mergeBest()
		if err != nil {
			return nil, st, err
		}
		if isNew {
			added = append(added, text)
			size++
		}
	}
	if size >= w.opts.Size {
		st.Stop = "size"
	}
	st.Merges = len(added)
	v, err := m.vocab(nAlpha, added)
	return v, st, err
}

// vocab lists the special tokens, the first nAlpha symbols (the alphabet) that are not special
// tokens, and the added tokens, and reads that as a vocabulary.
func (m *merger) vocab(nAlpha int, added []string) (*Vocab, error) {
	var sb strings.Builder
	for _, s := range m.opts.SpecialTokens {
		sb.WriteString(s)
		sb.WriteByte('\n')
	}
	for _, s := range m.texts[:nAlpha] {
		if !m.special[s] {
			sb.WriteString(s)
			sb.WriteByte('\n')
		}
	}
	for _, s := range added {
		sb.WriteString(s)
		sb.WriteByte('\n')
	}
	v, err := ReadVocab(strings.NewReader(sb.String()))
	if err != nil {
		return nil, fmt.Errorf("bert: train wordpiece: %w", err)
	}
	return v, nil
}

// merger is the state of one Train: the symbols, the words as symbol sequences with their
// counts, and the candidate merges (pairs of adjacent symbols) in a heap by score.
type merger struct {
	opts    WordPieceOptions
	special map[string]bool
	texts   []string // symbol id -> token text
	ids     map[string]int32
	freq    []int // symbol id -> occurrences over the corpus
	seqs    [][]int32
	cnt     []int // word -> count
	pairs   map[uint64]*pairInfo
	// left and right list, per symbol id, the pairs it is the left / right part of.
	left, right [][]*pairInfo
	// touched collects the pairs to re-score at the next flush, once each (pairInfo.round).
	touched []*pairInfo
	round   int
	h       *pairHeap
	mark    int   // de-duplicates passes over left and right
	stamp   []int // word -> epoch it was last merged in
	epoch   int
}

func newMerger(opts WordPieceOptions) *merger {
	m := &merger{opts: opts, special: map[string]bool{}, ids: map[string]int32{}, pairs: map[uint64]*pairInfo{}, round: 1}
	for _, s := range opts.SpecialTokens {
		m.special[s] = true
	}
	m.h = &pairHeap{texts: &m.texts}
	return m
}

// symbol returns the id of token text s, adding it when new.
func (m *merger) symbol(s string) int32 {
	if id, ok := m.ids[s]; ok {
		return id
	}
	id := int32(len(m.texts))
	m.ids[s] = id
	m.texts = append(m.texts, s)
	m.freq = append(m.freq, 0)
	return id
}

// addAlphabet adds every character of words as a symbol and the "##" form of every character
// seen inside a word, each group in code point order (ids then follow vocabulary order), and
// returns how many symbols that made.
func (m *merger) addAlphabet(words []string) int {
	var first, inner []rune
	seenFirst, seenInner := map[rune]bool{}, map[rune]bool{}
	for _, s := range words {
		for i, r := range s {
			if !seenFirst[r] {
				seenFirst[r] = true
				first = append(first, r)
			}
			if i > 0 && !seenInner[r] {
				seenInner[r] = true
				inner = append(inner, r)
			}
		}
	}
	slices.Sort(first)
	slices.Sort(inner)
	for _, r := range first {
		m.symbol(string(r))
	}
	for _, r := range inner {
		m.symbol("##" + string(r))
	}
	return len(first) + len(inner)
}

// splitWords turns each word into its sequence of alphabet symbols ("word" is w ##o ##r ##d)
// and counts the symbols' frequencies, each word weighted by its count.
func (m *merger) splitWords(words []string, counts map[string]int) {
	m.seqs = make([][]int32, len(words))
	m.cnt = make([]int, len(words))
	m.stamp = make([]int, len(words))
	for i, s := range words {
		m.cnt[i] = counts[s]
		seq := make([]int32, 0, len(s))
		for j, r := range s {
			if j == 0 {
				seq = append(seq, m.ids[string(r)])
			} else {
				seq = append(seq, m.ids["##"+string(r)])
			}
		}
		for _, id := range seq {
			m.freq[id] += m.cnt[i]
		}
		m.seqs[i] = seq
	}
}

// grow extends left and right to every symbol.
func (m *merger) grow() {
	for len(m.left) < len(m.texts) {
		m.left = append(m.left, nil)
		m.right = append(m.right, nil)
	}
}

// touch queues p for re-scoring at the next flush.
func (m *merger) touch(p *pairInfo) {
	if p.round != m.round {
		p.round = m.round
		m.touched = append(m.touched, p)
	}
}

// addPair adds delta occurrences of (a, b) in word wi.
func (m *merger) addPair(a, b int32, delta int, wi int32) {
	k := pairKey(a, b)
	p := m.pairs[k]
	if p == nil {
		p = &pairInfo{a: a, b: b, pos: -1}
		m.pairs[k] = p
	}
	p.count += delta
	if delta > 0 {
		if n := len(p.where); n == 0 || p.where[n-1] != wi {
			p.where = append(p.where, wi)
		}
		if !p.listed {
			p.listed = true
			m.left[a] = append(m.left[a], p)
			m.right[b] = append(m.right[b], p)
		}
	}
	m.touch(p)
}

// countPairs counts every adjacent pair of every word and fills the heap.
func (m *merger) countPairs() {
	m.grow()
	for wi, seq := range m.seqs {
		for j := 1; j < len(seq); j++ {
			m.addPair(seq[j-1], seq[j], m.cnt[wi], int32(wi))
		}
	}
	m.flush()
}

// score is p's rank as a merge (see MergeScore).
func (m *merger) score(p *pairInfo) float64 {
	if m.opts.Score == FrequencyScore {
		return float64(p.count)
	}
	return float64(p.count) / (float64(m.freq[p.a]) * float64(m.freq[p.b]))
}

// update puts pair p in the heap at its current score, or out of it when too rare.
func (m *merger) update(p *pairInfo) {
	switch {
	case p.count < m.opts.MinFrequency:
		if p.pos >= 0 {
			heap.Remove(m.h, p.pos)
		}
	case p.pos < 0:
		p.score = m.score(p)
		heap.Push(m.h, p)
	default:
		p.score = m.score(p)
		heap.Fix(m.h, p.pos)
	}
}

// rescoreSymbol marks every live pair of symbol id for re-scoring (its frequency changed),
// dropping dead pairs from its lists; a dead pair is listed again if it comes back.
func (m *merger) rescoreSymbol(id int32) {
	if m.opts.Score == FrequencyScore {
		return // scores do not depend on the parts' frequencies
	}
	for _, lists := range []*[]*pairInfo{&m.left[id], &m.right[id]} {
		m.mark++
		l := (*lists)[:0]
		for _, p := range *lists {
			if p.count <= 0 {
				p.listed = false
				continue
			}
			if p.mark == m.mark {
				continue // listed twice after coming back
			}
			p.mark = m.mark
			l = append(l, p)
			m.touch(p)
		}
		*lists = l
	}
}

// flush re-scores the touched pairs. The order does not matter: Less is a total order (the
// texts of two different pairs differ), so the heap's top is the same.
func (m *merger) flush() {
	for _, p := range m.touched {
		m.update(p)
	}
	m.touched = m.touched[:0]
	m.round++
}

// anyLivePair reports whether some pair still occurs (then too rarely to be in the heap).
func (m *merger) anyLivePair() bool {
	for _, p := range m.pairs {
		if p.count > 0 {
			return true
		}
	}
	return false
}

// mergeBest merges the heap's best pair (a, b) into the symbol a + b without b's "##" in
// every word that holds it and re-scores what changed. It returns the merged text and whether
// it is a new token (neither present before nor a special token).
func (m *merger) mergeBest() (string, bool, error) {
	best := m.h.items[0]
	a, b := best.a, best.b
	text := m.texts[a] + strings.TrimPrefix(m.texts[b], "##")
	_, existed := m.ids[text]
	n := m.symbol(text)
	m.grow()
	if m.replace(best, n) == 0 {
		return "", false, fmt.Errorf("bert: train wordpiece: internal error: pair (%q, %q) of count %d found in no word", m.texts[a], m.texts[b], best.count)
	}
	m.rescoreSymbol(a)
	if b != a {
		m.rescoreSymbol(b)
	}
	m.rescoreSymbol(n)
	m.flush()
	return text, !existed && !m.special[text], nil
}

// replace puts n for pair p's (a, b) in every word that holds it, moving the pair counts and
// symbol frequencies, and returns how many occurrences it merged (words weighted by count).
func (m *merger) replace(p *pairInfo, n int32) int {
	a, b := p.a, p.b
	m.epoch++
	where := p.where
	p.where = nil
	merged := 0
	for _, wi := range where {
		if m.stamp[wi] == m.epoch {
			continue
		}
		m.stamp[wi] = m.epoch
		seq := m.seqs[wi]
		has := false
		for j := 1; j < len(seq); j++ {
			if seq[j-1] == a && seq[j] == b {
				has = true
				break
			}
		}
		if !has {
			continue
		}
		c := m.cnt[wi]
		for j := 1; j < len(seq); j++ {
			m.addPair(seq[j-1], seq[j], -c, wi)
		}
		out := seq[:0]
		for j := 0; j < len(seq); j++ {
			if j+1 < len(seq) && seq[j] == a && seq[j+1] == b {
				out = append(out, n)
				m.freq[a] -= c
				m.freq[b] -= c
				m.freq[n] += c
				merged += c
				j++
				continue
			}
			out = append(out, seq[j])
		}
		m.seqs[wi] = out
		for j := 1; j < len(out); j++ {
			m.addPair(out[j-1], out[j], c, wi)
		}
	}
	return merged
}

// TrainWordPiece learns a WordPiece vocabulary from texts; see WordPieceTrainer.Train.
func TrainWordPiece(texts []string, opts WordPieceOptions) (*Vocab, error) {
	t, err := NewWordPieceTrainer(opts)
	if err != nil {
		return nil, err
	}
	for _, s := range texts {
		t.Add(s)
	}
	v, _, err := t.Train()
	return v, err
}
