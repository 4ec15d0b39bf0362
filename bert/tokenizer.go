package bert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultLowerCase is Hugging Face BertTokenizer's default for do_lower_case (true), used when
// a checkpoint ships no tokenizer_config.json.
//
// Pitfall: Bio+Clinical BERT (emilyalsentzer/Bio_ClinicalBERT) ships a CASED vocabulary (the
// bert-base-cased one, 28,996 ids) and no tokenizer_config.json, so
// AutoTokenizer.from_pretrained lowercases (and strips accents from) its input, and every
// capitalised word is then split into lowercase pieces of a cased vocabulary. The MT-Clinical
// BERT reference code inherits this. Matching the published numbers means keeping the default;
// tokenising as the vocabulary was built means lowerCase=false. A command that loads such a
// checkpoint should state which one its flag default picks.
const DefaultLowerCase = true

// DefaultMaxInputCharsPerWord is WordpieceTokenizer's max_input_chars_per_word: a word with
// more runes than this becomes a single [UNK].
const DefaultMaxInputCharsPerWord = 100

// TokenizerOptions are the BertTokenizer constructor arguments that change tokenisation.
type TokenizerOptions struct {
	// LowerCase lowercases the input (Python str.lower per character) except special tokens.
	LowerCase bool
	// StripAccents removes accents (NFD, then drop category Mn). nil follows LowerCase, as in
	// Hugging Face; a non-nil false keeps accents even when lowercasing.
	StripAccents *bool
	// TokenizeChineseChars puts spaces around CJK ideographs. nil means true (the default).
	TokenizeChineseChars *bool
	// MaxInputCharsPerWord is the longest word, in runes, that WordPiece segments; <= 0 means
	// DefaultMaxInputCharsPerWord.
	MaxInputCharsPerWord int
	// NeverSplit lists tokens that are never lowercased, accent-stripped, split on punctuation
	// or WordPiece-segmented when a whitespace-delimited word (after lowercasing, when on) equals
	// one of them (Hugging Face's never_split). Such a token keeps its text and gets its vocab
	// id, or [UNK]'s id when it is not in the vocabulary.
	NeverSplit []string
}

// Token is one sub-word of the input. Start and End are BYTE offsets into the original input
// string, so text[Start:End] is the source of the token (use RuneOffsets for character
// offsets). A continuation piece has Text "##..." and a span without the "##"; an [UNK] spans
// the whole word it replaces; a piece produced from part of one source character (a Hangul
// syllable decomposed by accent stripping, say) spans that whole character.
type Token struct {
	Text       string
	ID         int
	Start, End int
}

// Encoding is a model input: [CLS] a [SEP] or [CLS] a [SEP] b [SEP].
type Encoding struct {
	IDs           []int    // token ids
	TypeIDs       []int    // token type (segment) ids: 0 up to and including the first [SEP], then 1
	AttentionMask []int    // 1 for every token (no padding is added)
	Offsets       [][2]int // byte offsets [start, end) into the sequence's own text; [0,0] for specials
	Tokens        []string // token texts
	SequenceIDs   []int    // -1 for specials, else 0 (text a) or 1 (text b)
}

// Len returns the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

// Tokenizer is Hugging Face's (slow, Python) BertTokenizer: special-token splitting, the
// BasicTokenizer and the WordpieceTokenizer, with byte offsets into the input. It is safe for
// concurrent use.
type Tokenizer struct {
	vocab    *Vocab
	lower    bool
	strip    bool
	cjk      bool
	maxChars int

	neverSplit   map[string]struct{} // the user's never_split
	noSplit      map[string]struct{} // never_split ∪ the special tokens (BasicTokenizer's set)
	noSplitBytes int                 // longest entry of noSplit, in bytes
	longWord     int                 // a word of this many characters is streamed (flushLong)

	cont      map[string]int // "##x" -> id, keyed by "x"
	maxFull   int            // longest non-## token, in bytes
	maxCont   int            // longest ## token without the ##, in bytes
	specials  [5]specialToken
	unkID     int
	unkString string
}

type specialToken struct {
	text string
	id   int
}

// NewTokenizer returns a tokenizer over v with the given options.
func NewTokenizer(v *Vocab, opts TokenizerOptions) *Tokenizer {
	if v == nil {
		panic("bert: NewTokenizer: nil vocab")
	}
	t := &Tokenizer{
		vocab:     v,
		lower:     opts.LowerCase,
		strip:     opts.LowerCase,
		cjk:       true,
		maxChars:  opts.MaxInputCharsPerWord,
		unkID:     v.special.Unk,
		unkString: UnkToken,
	}
	if opts.StripAccents != nil {
		t.strip = *opts.StripAccents
	}
	if opts.TokenizeChineseChars != nil {
		t.cjk = *opts.TokenizeChineseChars
	}
	if t.maxChars <= 0 {
		t.maxChars = DefaultMaxInputCharsPerWord
	}
	t.neverSplit = make(map[string]struct{}, len(opts.NeverSplit))
	t.noSplit = make(map[string]struct{}, len(opts.NeverSplit)+5)
	for _, s := range opts.NeverSplit {
		t.neverSplit[s] = struct{}{}
		t.noSplit[s] = struct{}{}
	}
	// Hugging Face splits the raw text on all_special_tokens (sorted order is irrelevant: none of
	// these can overlap another) and adds them to BasicTokenizer's never_split.
	for i, s := range [5]string{ClsToken, MaskToken, PadToken, SepToken, UnkToken} {
		id, ok := v.ids[s]
		if !ok {
			id = t.unkID
		}
		t.specials[i] = specialToken{s, id}
		t.noSplit[s] = struct{}{}
	}
	for s := range t.noSplit {
		t.noSplitBytes = max(t.noSplitBytes, len(s))
	}
	t.longWord = max(4096, 4*(max(t.maxChars, t.noSplitBytes)+2))
	t.cont = make(map[string]int)
	for id, tok := range v.tokens {
		if rest, ok := strings.CutPrefix(tok, "##"); ok {
			if v.ids[tok] == id { // the id load_vocab keeps for a duplicate
				t.cont[rest] = id
			}
			t.maxCont = max(t.maxCont, len(rest))
		}
		t.maxFull = max(t.maxFull, len(tok))
	}
	return t
}

// Vocab returns the tokenizer's vocabulary.
func (t *Tokenizer) Vocab() *Vocab { return t.vocab }

// LowerCase reports whether the tokenizer lowercases its input.
func (t *Tokenizer) LowerCase() bool { return t.lower }

// tokenizerConfig holds the tokenizer_config.json keys LoadTokenizer reads.
type tokenizerConfig struct {
	DoLowerCase          *bool     `json:"do_lower_case"`
	StripAccents         *bool     `json:"strip_accents"`
	TokenizeChineseChars *bool     `json:"tokenize_chinese_chars"`
	NeverSplit           *[]string `json:"never_split"`
	DoBasicTokenize      *bool     `json:"do_basic_tokenize"`
}

// LoadTokenizer reads dir/vocab.txt and, when present, dir/tokenizer_config.json (keys
// do_lower_case, strip_accents, tokenize_chinese_chars, never_split; other keys are ignored,
// and do_basic_tokenize=false is refused). lowerCaseDefault is used when there is no config
// file or it has no do_lower_case key; pass DefaultLowerCase to get what Hugging Face's
// BertTokenizer does.
//
// Bio+Clinical BERT (emilyalsentzer/Bio_ClinicalBERT) has a cased vocabulary and no
// tokenizer_config.json, so Hugging Face lowercases its input; see DefaultLowerCase.
func LoadTokenizer(dir string, lowerCaseDefault bool) (*Tokenizer, error) {
	v, err := LoadVocab(filepath.Join(dir, "vocab.txt"))
	if err != nil {
		return nil, err
	}
	opts := TokenizerOptions{LowerCase: lowerCaseDefault}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(cfgPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return NewTokenizer(v, opts), nil
	case err != nil:
		return nil, fmt.Errorf("bert: load tokenizer: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("bert: %s: %w", cfgPath, err)
	}
	var cfg tokenizerConfig
	for key, dst := range map[string]any{
		"do_lower_case":          &cfg.DoLowerCase,
		"strip_accents":          &cfg.StripAccents,
		"tokenize_chinese_chars": &cfg.TokenizeChineseChars,
		"never_split":            &cfg.NeverSplit,
		"do_basic_tokenize":      &cfg.DoBasicTokenize,
	} {
		msg, ok := raw[key]
		if !ok {
			continue
		}
		if err := json.Unmarshal(msg, dst); err != nil {
			return nil, fmt.Errorf("bert: %s: field %q: %s is not a valid value: %w", cfgPath, key, msg, err)
		}
	}
	if cfg.DoBasicTokenize != nil && !*cfg.DoBasicTokenize {
		return nil, fmt.Errorf("bert: %s: field \"do_basic_tokenize\": false is not supported", cfgPath)
	}
	if cfg.DoLowerCase != nil {
		opts.LowerCase = *cfg.DoLowerCase
	}
	opts.StripAccents = cfg.StripAccents
	opts.TokenizeChineseChars = cfg.TokenizeChineseChars
	if cfg.NeverSplit != nil {
		opts.NeverSplit = *cfg.NeverSplit
	}
	return NewTokenizer(v, opts), nil
}

// char is one character of a word under normalisation, with the byte span [start, end) of the
// source character it came from.
type char struct {
	r          rune
	start, end int
}

// scratch holds one Tokenize call's buffers.
type scratch struct {
	word  []char // the current whitespace-delimited word, cleaned
	norm  []char // the word after lowercasing / accent stripping
	tmp   []char
	ccc   []uint8
	buf   []byte // UTF-8 of a piece
	pos   []int  // byte offset in buf of each rune of a piece, then len(buf)
	runeb [utf8.UTFMax]byte
	nfd   []byte
	// partial says that part of the current word was already emitted or compressed
	// (flushLong), so it cannot match never_split as a whole; long, that the piece holding
	// the character at byte longAt is longer than any never_split entry and MaxInputCharsPerWord
	// (its middle dropped); flushAt is the word length at which flushLong runs next.
	partial, long   bool
	longAt, flushAt int
	// limited stops the tokenisation once more than limit tokens are out.
	limited bool
	limit   int
}

// Tokenize splits text into sub-words exactly as Hugging Face's BertTokenizer.tokenize does,
// without special tokens added, each with its id and byte span in text.
//
// The steps, in Hugging Face's order: the raw text is split at the special tokens [CLS],
// [SEP], [PAD], [UNK], [MASK] (matched case-sensitively, kept as tokens). The rest is cleaned
// (U+0000, U+FFFD and every character of category C* other than \t \n \r dropped; \t \n \r and
// Zs become spaces), CJK ideographs are surrounded by spaces, and the text is split on
// whitespace (spaces, and U+2028/U+2029 which Python's str.split also splits on). Each word is
// lowercased (Python str.lower, per character) when LowerCase, kept whole if it is in the
// never-split set, accent-stripped (NFD, drop Mn) when StripAccents, and split around every
// punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*). Each piece is then
// segmented by greedy longest-match-first WordPiece with "##" continuations; a piece longer than
// MaxInputCharsPerWord runes, or with no full segmentation, becomes one [UNK].
//
// Invalid UTF-8 bytes are treated as U+FFFD (Python's errors="replace") and so dropped.
func (t *Tokenizer) Tokenize(text string) []Token {
	out, _ := t.tokenize(text, -1)
	return out
}

// TokenizeN returns the first n tokens of Tokenize(text) (all of them when there are fewer)
// and whether there are more. It stops once it has found n+1, so its work and memory are
// bounded by n tokens (plus the word in progress) whatever the length of text: callers that
// refuse or truncate long inputs use it to stop early. n < 0 means no limit.
func (t *Tokenizer) TokenizeN(text string, n int) (toks []Token, more bool) {
	out, _ := t.tokenize(text, n)
	if n >= 0 && len(out) > n {
		return out[:n:n], true
	}
	return out, false
}

// tokenize is Tokenize stopping once it has more than limit tokens (limit < 0: no limit).
func (t *Tokenizer) tokenize(text string, limit int) ([]Token, bool) {
	guess := min(len(text)/4+1, 4096) // a guess; a huge text grows by append
	if limit >= 0 {
		guess = min(guess, limit+1)
	}
	out := make([]Token, 0, guess)
	s := scratch{limited: limit >= 0, limit: limit}
	seg := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '[' {
			continue
		}
		for _, sp := range t.specials {
			if strings.HasPrefix(text[i:], sp.text) {
				out = t.basic(&s, text, seg, i, out)
				if s.full(out) {
					return out, true
				}
				out = append(out, Token{Text: sp.text, ID: sp.id, Start: i, End: i + len(sp.text)})
				seg = i + len(sp.text)
				i = seg - 1
				break
			}
		}
	}
	out = t.basic(&s, text, seg, len(text), out)
	return out, s.full(out)
}

// full says whether out holds more tokens than the scratch's limit.
func (s *scratch) full(out []Token) bool { return s.limited && len(out) > s.limit }

// basic runs the BasicTokenizer and WordPiece over text[a:b], appending to out.
func (t *Tokenizer) basic(s *scratch, text string, a, b int, out []Token) []Token {
	s.word = s.word[:0]
	for i := a; i < b; {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:b])
		}
		c := char{r, i, i + size}
		i += size
		switch {
		case r == 0 || r == utf8.RuneError || isControl(r):
			// dropped by _clean_text
		case isWhitespace(r) || r == '\u2028' || r == '\u2029':
			if out = t.word(s, out); s.full(out) {
				return out
			}
		case t.cjk && isChineseChar(r):
			out = t.word(s, out)
			s.word = append(s.word, c)
			if out = t.word(s, out); s.full(out) {
				return out
			}
		default:
			if s.word = append(s.word, c); len(s.word) >= max(s.flushAt, t.longWord) {
				if out = t.flushLong(s, out); s.full(out) {
					return out
				}
			}
		}
	}
	return t.word(s, out)
}

// flushLong bounds the memory of a long word (a 16 MiB body without spaces would otherwise
// be held as 24 bytes a character, several times over) without changing the tokens. It emits
// the word up to its last ASCII punctuation character followed by an ASCII character: both
// are unchanged by lowercasing and accent stripping and stop canonical reordering, and the
// punctuation ends a piece, so those pieces are the whole word's, once the part emitted is
// too long for the word to be a never_split entry. Then a trailing run of letters and digits
// longer than MaxInputCharsPerWord and every never_split entry is shortened to its first and
// last characters: each letter or digit stays at least one character that is no punctuation,
// so the piece holding the run is an [UNK] from its first character to its last whatever
// follows (piece is told so by s.long). When neither applies the next try waits until the
// word has doubled, so the work stays linear.
func (t *Tokenizer) flushLong(s *scratch, out []Token) []Token {
	w := s.word
	k := 0
	for i := len(w) - 1; i >= 1; i-- {
		if w[i].r < utf8.RuneSelf && w[i-1].r < utf8.RuneSelf && isPunct(w[i-1].r) {
			k = i
			break
		}
	}
	if k > 0 && (s.partial || t.normLonger(s, w[:k])) {
		out = t.wordChars(s, w[:k], out)
		if s.long && s.longAt < w[k].start {
			s.long = false // the shortened run was in the part emitted
		}
		s.word = s.word[:copy(s.word, w[k:])]
		s.partial = true
		w = s.word
	}
	j := len(w)
	for j > 0 && (unicode.IsLetter(w[j-1].r) || unicode.IsDigit(w[j-1].r)) {
		j--
	}
	same := s.long && len(w)-j >= 2 && w[j].start == s.longAt
	if same || !s.long && len(w)-j > max(t.maxChars, t.noSplitBytes)+1 {
		w[j+1] = w[len(w)-1]
		s.word = w[:j+2]
		s.long, s.longAt, s.partial = true, w[j].start, true
	}
	s.flushAt = 2 * len(s.word)
	return out
}

// normLonger says whether the word w, lowercased and accent-stripped as word does, has more
// characters than the longest never_split entry has bytes, before and after the stripping.
func (t *Tokenizer) normLonger(s *scratch, w []char) bool {
	if len(w) <= t.noSplitBytes { // lowercasing never shortens a word
		return false
	}
	if !t.strip {
		return true
	}
	if t.lower {
		w = t.lowerChars(s, w)
	}
	return len(t.stripAccents(s, w)) > t.noSplitBytes
}

// word processes the whitespace-delimited word in s.word and empties it.
func (t *Tokenizer) word(s *scratch, out []Token) []Token {
	if len(s.word) > 0 {
		out = t.wordChars(s, s.word, out)
	}
	s.word = s.word[:0]
	s.partial, s.long, s.flushAt = false, false, 0
	return out
}

// lowerChars returns w lowercased as Python's str.lower does, in s.norm.
func (t *Tokenizer) lowerChars(s *scratch, w []char) []char {
	s.norm = s.norm[:0]
	for _, c := range w {
		switch {
		case c.r < utf8.RuneSelf:
			if 'A' <= c.r && c.r <= 'Z' {
				c.r += 'a' - 'A'
			}
		case c.r == '\u0130': // Python: "İ".lower() == "i\u0307"
			s.norm = append(s.norm, char{'i', c.start, c.end})
			c.r = '\u0307'
		default:
			c.r = unicode.ToLower(c.r)
		}
		s.norm = append(s.norm, c)
	}
	return s.norm
}

// wordChars processes the word (or, when s.partial, the rest of a word) w.
func (t *Tokenizer) wordChars(s *scratch, w []char, out []Token) []Token {
	if t.lower {
		w = t.lowerChars(s, w)
	}
	if !s.partial && t.inNoSplit(s, w) {
		return t.piece(s, w, out)
	}
	if t.strip {
		w = t.stripAccents(s, w)
		if len(w) == 0 {
			return out
		}
		if !s.partial && t.inNoSplit(s, w) {
			return t.piece(s, w, out)
		}
	}
	start := 0
	for i, c := range w {
		if isPunct(c.r) {
			if start < i {
				out = t.piece(s, w[start:i], out)
			}
			out = t.piece(s, w[i:i+1], out)
			start = i + 1
		}
	}
	if start < len(w) {
		out = t.piece(s, w[start:], out)
	}
	return out
}

// encode writes the UTF-8 of w to s.buf and the rune boundaries to s.pos.
func encode(s *scratch, w []char) {
	s.buf, s.pos = s.buf[:0], s.pos[:0]
	for _, c := range w {
		s.pos = append(s.pos, len(s.buf))
		s.buf = utf8.AppendRune(s.buf, c.r)
	}
	s.pos = append(s.pos, len(s.buf))
}

// inNoSplit reports whether the word w is in the never-split set (never_split ∪ specials).
func (t *Tokenizer) inNoSplit(s *scratch, w []char) bool {
	if len(w) > t.noSplitBytes {
		return false
	}
	encode(s, w)
	if len(s.buf) > t.noSplitBytes {
		return false
	}
	_, ok := t.noSplit[string(s.buf)]
	return ok
}

// stripAccents is _run_strip_accents: NFD (each character decomposed, then the canonical
// ordering of combining marks), then every character of category Mn dropped. Characters
// produced from one source character keep its span; combining marks that canonical ordering
// moves past each other take the union of their spans, so spans stay non-decreasing.
func (t *Tokenizer) stripAccents(s *scratch, w []char) []char {
	d := s.tmp[:0]
	ccc := s.ccc[:0]
	reorder := false
	for _, c := range w {
		if c.r < 0xC0 { // nothing below U+00C0 decomposes or combines
			d = append(d, c)
			ccc = append(ccc, 0)
			continue
		}
		src := utf8.AppendRune(s.runeb[:0], c.r)
		s.nfd = norm.NFD.Append(s.nfd[:0], src...)
		for k := 0; k < len(s.nfd); {
			r, size := utf8.DecodeRune(s.nfd[k:])
			cc := norm.NFD.Properties(s.nfd[k:]).CCC()
			if cc != 0 && len(ccc) > 0 && ccc[len(ccc)-1] > cc {
				reorder = true
			}
			d = append(d, char{r, c.start, c.end})
			ccc = append(ccc, cc)
			k += size
		}
	}
	if reorder { // canonical ordering: stable sort of each run of non-starters by ccc
		for k := 1; k < len(d); k++ {
			cc := ccc[k]
			if cc == 0 {
				continue
			}
			for j := k; j > 0 && ccc[j-1] > cc; j-- {
				lo, hi := min(d[j-1].start, d[j].start), max(d[j-1].end, d[j].end)
				d[j-1], d[j] = d[j], d[j-1]
				ccc[j-1], ccc[j] = ccc[j], ccc[j-1]
				d[j-1].start, d[j-1].end, d[j].start, d[j].end = lo, hi, lo, hi
			}
		}
	}
	n := 0
	for _, c := range d {
		if c.r >= 0x300 && unicode.Is(unicode.Mn, c.r) {
			continue
		}
		d[n] = c
		n++
	}
	s.tmp, s.ccc = d, ccc
	return d[:n]
}

// piece emits one punctuation-split piece: kept whole when in never_split, else WordPiece.
func (t *Tokenizer) piece(s *scratch, w []char, out []Token) []Token {
	start, end := w[0].start, w[len(w)-1].end
	if s.long && start <= s.longAt && s.longAt < end {
		return append(out, Token{Text: t.unkString, ID: t.unkID, Start: start, End: end})
	}
	encode(s, w)
	if len(t.neverSplit) > 0 {
		if _, ok := t.neverSplit[string(s.buf)]; ok {
			id, ok := t.vocab.ids[string(s.buf)]
			if !ok {
				id = t.unkID
			}
			return append(out, Token{Text: string(s.buf), ID: id, Start: start, End: end})
		}
	}
	if len(w) > t.maxChars {
		return append(out, Token{Text: t.unkString, ID: t.unkID, Start: start, End: end})
	}
	// Greedy longest-match-first. A candidate longer (in bytes) than every vocabulary entry of
	// its kind cannot match, so the search starts at the longest that could.
	n0 := len(out)
	for i := 0; i < len(w); {
		limit, table := t.maxFull, t.vocab.ids
		if i > 0 {
			limit, table = t.maxCont, t.cont
		}
		j := len(w)
		for j > i && s.pos[j]-s.pos[i] > limit {
			j--
		}
		id := -1
		for ; j > i; j-- {
			if v, ok := table[string(s.buf[s.pos[i]:s.pos[j]])]; ok {
				id = v
				break
			}
		}
		if id < 0 {
			return append(out[:n0], Token{Text: t.unkString, ID: t.unkID, Start: start, End: end})
		}
		out = append(out, Token{Text: t.vocab.tokens[id], ID: id, Start: w[i].start, End: w[j-1].end})
		i = j
	}
	return out
}

// isControl is Hugging Face's _is_control: every category C* character (Cc, Cf, Cs, Co and
// unassigned Cn) except \t, \n and \r. (The original BERT code tested only Cc and Cf; the
// transformers version tests cat.startswith("C").)
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7F
	}
	if unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z) {
		return false
	}
	return true // C*, or unassigned (Cn)
}

// isWhitespace is Hugging Face's _is_whitespace: space, \t, \n, \r or category Zs.
func isWhitespace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}
	return unicode.Is(unicode.Zs, r)
}

// isPunct is Hugging Face's _is_punctuation: every non-letter, non-digit printable ASCII
// character, and Unicode category P*.
func isPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= 33 && r <= 47) || (r >= 58 && r <= 64) || (r >= 91 && r <= 96) || (r >= 123 && r <= 126)
	}
	return unicode.IsPunct(r)
}

// isChineseChar is Hugging Face's _is_chinese_char: the CJK Unified Ideographs blocks and
// extensions A-E and the compatibility ideographs (not Hangul, Hiragana or Katakana).
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// Encode returns [CLS] text [SEP] as model input. When maxLen > 0 and the result would be
// longer, tokens are removed from the end of text as Hugging Face's truncate_sequences does
// for a single sequence: only when text keeps at least one token, that is when maxLen >= 3;
// for maxLen 1 or 2 Hugging Face logs an error and returns the sequence untruncated, and so
// does Encode. maxLen <= 0 means no truncation.
func (t *Tokenizer) Encode(text string, maxLen int) Encoding {
	var a []Token
	if maxLen >= 3 {
		a, _ = t.TokenizeN(text, maxLen-1) // enough to know whether to truncate
	} else {
		a = t.Tokenize(text)
	}
	if maxLen > 0 {
		if remove := len(a) + 2 - maxLen; remove > 0 && len(a) > remove {
			a = a[:len(a)-remove]
		}
	}
	return t.build(a, nil, false)
}

// EncodePair returns [CLS] a [SEP] b [SEP] with token type ids 0 for "[CLS] a [SEP]" and 1 for
// "b [SEP]". When maxLen > 0 and the result is longer, Hugging Face's longest_first strategy
// removes one token at a time from the end of the longer sequence, from b when the lengths are
// equal, until it fits (or both are empty, for maxLen < 3). Offsets of a's tokens index a and
// those of b's tokens index b. maxLen <= 0 means no truncation.
func (t *Tokenizer) EncodePair(a, b string, maxLen int) Encoding {
	var ta, tb []Token
	if maxLen > 0 {
		// Longest-first truncation to maxLen-3 tokens passes through the state where neither
		// side has more than maxLen, so the first maxLen tokens of each give the same result.
		ta, _ = t.TokenizeN(a, maxLen)
		tb, _ = t.TokenizeN(b, maxLen)
	} else {
		ta, tb = t.Tokenize(a), t.Tokenize(b)
	}
	if maxLen > 0 {
		ta, tb = truncateLongestFirst(ta, tb, len(ta)+len(tb)+3-maxLen)
	}
	return t.build(ta, tb, true)
}

// truncateLongestFirst is truncate_sequences with longest_first for a pair: remove times, drop
// the last token of a if len(a) > len(b), else of b.
func truncateLongestFirst(a, b []Token, remove int) ([]Token, []Token) {
	for ; remove > 0; remove-- {
		if len(a) > len(b) {
			a = a[:len(a)-1]
		} else if len(b) > 0 {
			b = b[:len(b)-1]
		}
	}
	return a, b
}

func (t *Tokenizer) build(a, b []Token, pair bool) Encoding {
	n := len(a) + 2
	if pair {
		n += len(b) + 1
	}
	e := Encoding{
		IDs:           make([]int, 0, n),
		TypeIDs:       make([]int, 0, n),
		AttentionMask: make([]int, 0, n),
		Offsets:       make([][2]int, 0, n),
		Tokens:        make([]string, 0, n),
		SequenceIDs:   make([]int, 0, n),
	}
	sp := t.vocab.special
	add := func(text string, id, typ, seq, start, end int) {
		e.IDs = append(e.IDs, id)
		e.TypeIDs = append(e.TypeIDs, typ)
		e.AttentionMask = append(e.AttentionMask, 1)
		e.Offsets = append(e.Offsets, [2]int{start, end})
		e.Tokens = append(e.Tokens, text)
		e.SequenceIDs = append(e.SequenceIDs, seq)
	}
	add(ClsToken, sp.Cls, 0, -1, 0, 0)
	for _, tk := range a {
		add(tk.Text, tk.ID, 0, 0, tk.Start, tk.End)
	}
	add(SepToken, sp.Sep, 0, -1, 0, 0)
	if pair {
		for _, tk := range b {
			add(tk.Text, tk.ID, 1, 1, tk.Start, tk.End)
		}
		add(SepToken, sp.Sep, 1, -1, 0, 0)
	}
	return e
}

// Decode is Hugging Face's convert_tokens_to_string over the ids' tokens: tokens joined by
// spaces with every " ##" removed. It does not apply clean_up_tokenization_spaces. Ids outside
// the vocabulary decode as [UNK]; special tokens are skipped when skipSpecial.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	var sb strings.Builder
	sp := t.vocab.special
	for _, id := range ids {
		if skipSpecial && (id == sp.Cls || id == sp.Sep || id == sp.Pad || id == sp.Unk || id == sp.Mask) {
			continue
		}
		tok := t.vocab.Token(id)
		if id < 0 || id >= t.vocab.Len() {
			tok = t.unkString
		}
		if rest, ok := strings.CutPrefix(tok, "##"); ok && sb.Len() > 0 {
			sb.WriteString(rest)
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(tok)
	}
	return strings.TrimSpace(sb.String())
}

// RuneOffsets converts byte offsets into text (as in Token and Encoding.Offsets) into rune
// (Unicode code point) offsets, which is what Python's character offsets count for valid UTF-8.
// Each invalid byte counts as one rune, as utf8.DecodeRuneInString decodes it. Offsets must lie
// on rune boundaries within text; [0,0] maps to [0,0].
func RuneOffsets(text string, offsets [][2]int) [][2]int {
	// runeAt[i] is the number of runes in text[:i] at every rune boundary i.
	runeAt := make([]int32, len(text)+1)
	n := int32(0)
	for i := range text {
		runeAt[i] = n
		n++
	}
	runeAt[len(text)] = n
	// range over a string yields the start of each rune, including each invalid byte.
	out := make([][2]int, len(offsets))
	for k, o := range offsets {
		out[k] = [2]int{int(runeAt[o[0]]), int(runeAt[o[1]])}
	}
	return out
}
