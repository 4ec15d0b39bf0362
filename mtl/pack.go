package mtl

import (
	"bytes"
	"fmt"
	"io"
	"strings"

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

// TrainTextStats reports WriteTrainText's output.
type TrainTextStats struct {
	Documents, Bytes, Repeats int
}

// WriteTrainText writes the raw text of every task's train split (after any holdout, so no dev
// or test text) to path, one document per line with its line breaks and tabs turned into
// spaces: the texts of ner documents, and each text of a pair as its own document. A text
// already written is not written again. The file is written beside path and renamed into
// place.
func WriteTrainText(cfg *Config, path string) (TrainTextStats, error) {
	var st TrainTextStats
	seen := map[string]bool{}
	var buf bytes.Buffer
	add := func(s string) {
		s = strings.Join(strings.Fields(s), " ")
		if s == "" {
			return
		}
		if seen[s] {
			st.Repeats++
			return
		}
		seen[s] = true
		buf.WriteString(s)
		buf.WriteByte('\n')
		st.Documents++
	}
	for i := range cfg.Tasks {
		sd, err := cfg.Tasks[i].ReadSplit(SplitTrain)
		if err != nil {
			return st, err
		}
		for _, d := range sd.Docs {
			add(d.Text)
		}
		for _, p := range sd.Pairs {
			add(p.TextA)
			add(p.TextB)
		}
	}
	st.Bytes = buf.Len()
	return st, bert.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err })
}
