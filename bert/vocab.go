package bert

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"unicode/utf8"
)

// Names of the special tokens of a BERT WordPiece vocabulary, as Hugging Face's BertTokenizer
// names them by default (pad_token, unk_token, cls_token, sep_token, mask_token).
const (
	PadToken  = "[PAD]"
	UnkToken  = "[UNK]"
	ClsToken  = "[CLS]"
	SepToken  = "[SEP]"
	MaskToken = "[MASK]"
)

// SpecialIDs holds the ids of the special tokens of a Vocab. Unk, Cls and Sep are always
// present (ReadVocab fails without them); Pad and Mask are -1 when the vocabulary lacks them.
type SpecialIDs struct {
	Pad, Unk, Cls, Sep, Mask int
}

// Vocab is a WordPiece vocabulary: token i is line i of vocab.txt (0-based).
//
// It follows Hugging Face's load_vocab: lines end at "\n", "\r\n" or a lone "\r" (Python's
// universal newlines), only the line terminator is removed (spaces are kept), a missing final
// newline is tolerated, and an empty line is a token (the empty string) with its own id. When a
// token appears on several lines, ID returns the id of the LAST such line, as load_vocab's
// OrderedDict does; Token(id) still returns the line's text for every id and Len counts lines,
// so Len is the number of rows of the embedding matrix. (Hugging Face's vocab_size counts
// distinct tokens instead; the two differ only for a vocabulary with duplicates.)
type Vocab struct {
	tokens  []string
	ids     map[string]int
	name    string
	special SpecialIDs
}

// LoadVocab reads a vocab.txt file; see ReadVocab. Errors name the file.
func LoadVocab(path string) (*Vocab, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bert: load vocab: %w", err)
	}
	defer f.Close()
	return readVocab(f, path)
}

// ReadVocab reads a vocabulary in vocab.txt format (one UTF-8 token per line, id = line
// number) from r. It fails on invalid UTF-8 (naming the line) and when [UNK], [CLS] or [SEP]
// is missing.
func ReadVocab(r io.Reader) (*Vocab, error) {
	return readVocab(r, "vocab")
}

func readVocab(r io.Reader, name string) (*Vocab, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("bert: read vocab %s: %w", name, err)
	}
	v := &Vocab{name: name, ids: make(map[string]int, bytes.Count(data, []byte{'\n'})+1)}
	for start := 0; start < len(data); {
		end, next := start, len(data)
		for end < len(data) && data[end] != '\n' && data[end] != '\r' {
			end++
		}
		if end < len(data) {
			next = end + 1
			if data[end] == '\r' && next < len(data) && data[next] == '\n' {
				next++
			}
		}
		line := data[start:end]
		if !utf8.Valid(line) {
			return nil, fmt.Errorf("bert: vocab %s:%d: invalid UTF-8 in token %q", name, len(v.tokens)+1, line)
		}
		tok := string(line)
		v.ids[tok] = len(v.tokens)
		v.tokens = append(v.tokens, tok)
		start = next
	}
	look := func(tok string, required bool) (int, error) {
		if id, ok := v.ids[tok]; ok {
			return id, nil
		}
		if required {
			return -1, fmt.Errorf("bert: vocab %s: missing special token %s (%d tokens read)", name, tok, len(v.tokens))
		}
		return -1, nil
	}
	var errs [5]error
	v.special.Pad, errs[0] = look(PadToken, false)
	v.special.Unk, errs[1] = look(UnkToken, true)
	v.special.Cls, errs[2] = look(ClsToken, true)
	v.special.Sep, errs[3] = look(SepToken, true)
	v.special.Mask, errs[4] = look(MaskToken, false)
	for _, e := range errs {
		if e != nil {
			return nil, e
		}
	}
	return v, nil
}

// ID returns the id of tok and whether tok is in the vocabulary. For a token listed on several
// lines it is the last line's id (Hugging Face's load_vocab).
func (v *Vocab) ID(tok string) (int, bool) {
	id, ok := v.ids[tok]
	return id, ok
}

// Token returns the token on line id, or "" when id is out of range [0, Len()).
func (v *Vocab) Token(id int) string {
	if id < 0 || id >= len(v.tokens) {
		return ""
	}
	return v.tokens[id]
}

// Len returns the number of ids (lines), which is the size of the embedding matrix.
func (v *Vocab) Len() int { return len(v.tokens) }

// Specials returns the ids of [PAD], [UNK], [CLS], [SEP] and [MASK].
func (v *Vocab) Specials() SpecialIDs { return v.special }

// Name returns the file the vocabulary was loaded from ("vocab" for ReadVocab).
func (v *Vocab) Name() string { return v.name }

// WriteTo writes the vocabulary in vocab.txt format, each token followed by "\n", in id order.
// A file that used "\n" line ends and ended with a newline round-trips byte for byte; "\r\n"
// line ends are written back as "\n".
func (v *Vocab) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	for _, t := range v.tokens {
		k, err := bw.WriteString(t)
		n += int64(k)
		if err != nil {
			return n, fmt.Errorf("bert: write vocab: %w", err)
		}
		if err := bw.WriteByte('\n'); err != nil {
			return n, fmt.Errorf("bert: write vocab: %w", err)
		}
		n++
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("bert: write vocab: %w", err)
	}
	return n, nil
}

// Save writes the vocabulary to path (see WriteTo), replacing any file there.
func (v *Vocab) Save(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bert: save vocab: %w", err)
	}
	if _, err := v.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("bert: save vocab %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bert: save vocab %s: %w", path, err)
	}
	return nil
}
