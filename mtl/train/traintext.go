package train

import (
	"bytes"
	"io"
	"strings"

	"github.com/mtbert/mtbert/bert"
)

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
