package bert

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Word is one word of the BasicTokenizer's output: what WordPiece then segments.
type Word struct {
	// Text is the word as WordPiece sees it: cleaned, lowercased and accent-stripped as the
	// options say. For a special token matched in the text it is the token itself.
	Text string
	// Start and End are the byte span of the word's source in the input.
	Start, End int
	// Special is true for an occurrence of [CLS], [SEP], [PAD], [UNK] or [MASK] in the input
	// (Hugging Face splits these out before the BasicTokenizer and never segments them).
	Special bool
}

// BasicTokenizer is the part of Tokenizer that runs before WordPiece: special-token splitting,
// cleaning, CJK spacing, whitespace splitting, lowercasing, accent stripping and punctuation
// splitting. It needs no vocabulary, which is what a vocabulary trainer wants. It is safe for
// concurrent use.
type BasicTokenizer struct {
	t *Tokenizer
}

// basicVocab holds only the special tokens, so that every word the BasicTokenizer produces
// reaches WordPiece, fails to match and comes back as one [UNK] spanning the word's source.
const basicVocab = PadToken + "\n" + UnkToken + "\n" + ClsToken + "\n" + SepToken + "\n" + MaskToken + "\n"

// NewBasicTokenizer returns the BasicTokenizer of NewTokenizer(v, opts) for any v: the same
// words, with the same normalisation, that Tokenizer.Tokenize hands to WordPiece.
// MaxInputCharsPerWord is ignored (no word is replaced by [UNK]).
func NewBasicTokenizer(opts TokenizerOptions) *BasicTokenizer {
	v, err := ReadVocab(strings.NewReader(basicVocab))
	if err != nil {
		panic("bert: NewBasicTokenizer: built-in vocabulary: " + err.Error())
	}
	opts.MaxInputCharsPerWord = math.MaxInt
	return &BasicTokenizer{t: NewTokenizer(v, opts)}
}

// Tokenize splits text into words exactly as Tokenizer.Tokenize does before WordPiece
// segmentation (see Tokenize for the steps), with each word's normalised text and byte span.
//
// It is built on Tokenize itself over a vocabulary of the special tokens only, so that every
// word comes back as one [UNK] spanning its source; the word's text is then the source span
// normalised character by character with the tokenizer's own rules (drop U+0000, U+FFFD and
// control characters, lowercase, strip accents), which is what Tokenize did to it.
func (b *BasicTokenizer) Tokenize(text string) []Word {
	t := b.t
	toks := t.Tokenize(text)
	out := make([]Word, 0, len(toks))
	var s scratch
	for _, tk := range toks {
		src := text[tk.Start:tk.End]
		switch {
		case tk.Text != UnkToken:
			// a never-split word keeps its own text; a special token in the text too
			out = append(out, Word{Text: tk.Text, Start: tk.Start, End: tk.End, Special: src == tk.Text && isSpecialToken(src)})
		case src == UnkToken:
			out = append(out, Word{Text: src, Start: tk.Start, End: tk.End, Special: true})
		default:
			if w := t.normalizeWord(&s, src, tk.Start); w != "" {
				out = append(out, Word{Text: w, Start: tk.Start, End: tk.End})
			}
		}
	}
	return out
}

// isSpecialToken reports whether s is one of the five special tokens.
func isSpecialToken(s string) bool {
	switch s {
	case PadToken, UnkToken, ClsToken, SepToken, MaskToken:
		return true
	}
	return false
}

// normalizeWord returns the normalised text of one punctuation-split piece whose source is src
// (starting at byte base of the input): the cleaning of basic, the lowercasing of word and
// stripAccents, in that order.
func (t *Tokenizer) normalizeWord(s *scratch, src string, base int) string {
	w := s.word[:0]
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		c := char{r, base + i, base + i + size}
		i += size
		if r == 0 || r == utf8.RuneError || isControl(r) {
			continue
		}
		if t.lower {
			switch {
			case r < utf8.RuneSelf:
				if 'A' <= r && r <= 'Z' {
					c.r += 'a' - 'A'
				}
			case r == '\u0130': // Python: "İ".lower() == "i\u0307"
				w = append(w, char{'i', c.start, c.end})
				c.r = '\u0307'
			default:
				c.r = unicode.ToLower(r)
			}
		}
		w = append(w, c)
	}
	s.word = w
	if t.strip {
		w = t.stripAccents(s, w)
	}
	encode(s, w)
	return string(s.buf)
}
