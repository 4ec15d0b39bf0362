package mtl

import (
	"fmt"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// PackText tokenises docs and packs them into sequences of maxLen sub-words for masked-language
// modelling, as RoBERTa's full-sentences packing: the documents' sub-words follow one another
// with a [SEP] between documents, and are cut every maxLen−2 sub-words into [CLS] … [SEP]
// sequences (the last may be shorter). No sub-word is dropped; a sequence may hold the end of
// one document and the start of the next. maxLen must be at least 3.
func PackText(tok *bert.Tokenizer, docs []corpus.Document, maxLen int) ([]Example, error) {
	if maxLen < 3 {
		return nil, fmt.Errorf("mtl: pack: sequence length %d, need at least 3", maxLen)
	}
	sp := tok.Vocab().Specials()
	if sp.Cls < 0 || sp.Sep < 0 {
		return nil, fmt.Errorf("mtl: pack: vocabulary %s lacks [CLS] or [SEP]", tok.Vocab().Name())
	}
	body := maxLen - 2
	var out []Example
	cur := make([]int32, 0, maxLen)
	flush := func() {
		if len(cur) == 0 {
			return
		}
		ids := make([]int32, 0, len(cur)+2)
		ids = append(append(append(ids, int32(sp.Cls)), cur...), int32(sp.Sep))
		out = append(out, Example{IDs: ids})
		cur = cur[:0]
	}
	push := func(id int32) {
		cur = append(cur, id)
		if len(cur) == body {
			flush()
		}
	}
	started := false
	for _, d := range docs {
		toks := tok.Tokenize(d.Text)
		if len(toks) == 0 {
			continue // nothing but white space or control characters
		}
		if started && len(cur) > 0 {
			push(int32(sp.Sep))
		}
		started = true
		for _, t := range toks {
			push(int32(t.ID))
		}
	}
	flush()
	return out, nil
}

// PadID returns the vocabulary's [PAD] id, or 0 when it has none.
func PadID(tok *bert.Tokenizer) int {
	if p := tok.Vocab().Specials().Pad; p >= 0 {
		return p
	}
	return 0
}

// EncodeText is the model input of a sentence-level task: [CLS] a [SEP] b [SEP] with token
// types 0 then 1, truncated longest-first to maxLen, or [CLS] a [SEP] when b is empty. Training,
// evaluation and prediction all encode with it.
func EncodeText(tok *bert.Tokenizer, a, b string, maxLen int) (ids, types []int32) {
	var e bert.Encoding
	if b == "" {
		e = tok.Encode(a, maxLen)
	} else {
		e = tok.EncodePair(a, b, maxLen)
	}
	ids, types = make([]int32, len(e.IDs)), make([]int32, len(e.IDs))
	for i := range e.IDs {
		ids[i], types[i] = int32(e.IDs[i]), int32(e.TypeIDs[i])
	}
	return ids, types
}
