package train

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// Summary describes every task and split of a config as the model will see
// them: what was read, how it tokenises and what alignment kept, changed
// and dropped. It is the output of `mtbert data`.
type Summary struct {
	// Config is the config file; DataRoot the folder task paths resolved
	// against.
	Config   string `json:"config"`
	DataRoot string `json:"data_root"`
	// VocabSize and LowerCase describe the tokenizer used.
	VocabSize int  `json:"vocab_size"`
	LowerCase bool `json:"lower_case"`
	// Tasks parallels Config.Tasks.
	Tasks []TaskSummary `json:"tasks"`
}

// TaskSummary is one task of a Summary.
type TaskSummary struct {
	Name   string   `json:"name"`
	Kind   mtl.Kind `json:"kind"`
	Format string   `json:"format"`
	// Scheme, MaxLength and Stride are the alignment settings (ner), or
	// the pair length limit.
	Scheme    string `json:"scheme,omitempty"`
	MaxLength int    `json:"max_length"`
	Stride    int    `json:"stride,omitempty"`
	Overlap   string `json:"overlap,omitempty"`
	// Labels is the label set (ner tags or classes) the task would train.
	Labels []string `json:"labels,omitempty"`
	// Error says why the label set could not be built.
	Error string `json:"error,omitempty"`
	// Splits are the splits in the order train, dev, test.
	Splits []SplitSummary `json:"splits"`
}

// ScoreStats summarises regression targets.
type ScoreStats struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// SplitSummary is one split of a task.
type SplitSummary struct {
	Split string   `json:"split"`
	Paths []string `json:"paths"`
	// Error is set when the split could not be read or aligned; the
	// counts are then those known before the failure.
	Error string `json:"error,omitempty"`
	// Documents read (ner). For CoNLL a document is a sentence.
	Documents int `json:"documents,omitempty"`
	// Sentences: for CoNLL the sentences (= documents); for the other ner
	// formats the non-blank lines of the texts (clinical notes and brat
	// files hold about one sentence or list item per line; no sentence
	// splitter is run).
	Sentences int `json:"sentences,omitempty"`
	// Pairs read (sentence-pair tasks).
	Pairs int `json:"pairs,omitempty"`
	// SubWords and Words count tokenizer output over the split (for pairs:
	// both texts, specials excluded); MaxSubWords is the longest document
	// or pair.
	SubWords    int `json:"subwords"`
	Words       int `json:"words,omitempty"`
	MaxSubWords int `json:"max_subwords"`
	// Windows counts the ner model inputs, and the packed sequences of an
	// mlm task.
	Windows int `json:"windows,omitempty"`
	// Text is what the raw-text reader skipped or changed (mlm tasks).
	Text *corpus.TextStats `json:"text,omitempty"`
	// Truncated counts, for ner, sub-words in no window (always 0: windows
	// cover every document); for pairs, the pairs longer than max_length
	// that training truncates (longest first).
	Truncated int `json:"truncated"`
	// Entities counts the spans read per type; Spans what alignment did to
	// them per type, and SpanTotals over types.
	Entities   map[string]int            `json:"entities,omitempty"`
	Spans      map[string]mtl.SpanCounts `json:"spans,omitempty"`
	SpanTotals *mtl.SpanCounts           `json:"span_totals,omitempty"`
	// IllFormed, MergedFragments, Fragmented and SkippedTags are the
	// readers' counts (see ReadStats).
	IllFormed       int            `json:"ill_formed,omitempty"`
	MergedFragments int            `json:"merged_fragments,omitempty"`
	Fragmented      int            `json:"fragmented,omitempty"`
	SkippedTags     map[string]int `json:"skipped_tags,omitempty"`
	// Labels is the label distribution: for ner the trained sub-words per
	// tag, for classification the pairs per class.
	Labels map[string]int `json:"labels,omitempty"`
	// Scores summarises regression targets.
	Scores *ScoreStats `json:"scores,omitempty"`
}

// Errors returns the number of splits and tasks with an error.
func (s *Summary) Errors() int { return len(s.ErrorList()) }

// ErrorList returns the error of every task and split that has one, each naming its task and
// split (a reader's error names the file and line too), in config order.
func (s *Summary) ErrorList() []string {
	var out []string
	for _, t := range s.Tasks {
		if t.Error != "" {
			out = append(out, fmt.Sprintf("task %s: %s", t.Name, t.Error))
		}
		for _, sp := range t.Splits {
			if sp.Error != "" {
				msg := sp.Error
				if prefix := fmt.Sprintf("task %s, %s: ", t.Name, sp.Split); !strings.HasPrefix(msg, prefix) {
					msg = prefix + msg
				}
				out = append(out, msg)
			}
		}
	}
	return out
}

// Summarize reads every split of every task of cfg and aligns the ner
// tasks with tok. A split that cannot be read or aligned is reported in its
// Error field and the others are still summarised, so one bad file does
// not hide the rest.
func Summarize(cfg *Config, tok *bert.Tokenizer) *Summary {
	s := &Summary{Config: cfg.Path, DataRoot: cfg.DataRoot, VocabSize: tok.Vocab().Len(), LowerCase: tok.LowerCase()}
	for i := range cfg.Tasks {
		s.Tasks = append(s.Tasks, summarizeTask(&cfg.Tasks[i], tok))
	}
	return s
}

func summarizeTask(t *TaskConfig, tok *bert.Tokenizer) TaskSummary {
	ts := TaskSummary{Name: t.Name, Kind: t.Kind, Format: t.Format, MaxLength: t.MaxLength}
	if t.Kind.ReadsSpans() {
		ts.Scheme, ts.Stride, ts.Overlap = t.Scheme, t.Stride, t.Overlap
	}
	lt := &LoadedTask{Task: t}
	errs := map[string]string{}
	for _, sp := range t.Splits() {
		sd, err := t.ReadSplit(sp.Name)
		if err != nil {
			errs[sp.Name] = err.Error()
		}
		lt.Splits = append(lt.Splits, sd)
	}
	labels, err := lt.LabelSet()
	if err != nil {
		ts.Error = err.Error()
	}
	if labels != nil {
		ts.Labels = labels.Names
	}
	for _, sd := range lt.Splits {
		ss := SplitSummary{Split: sd.Split, Paths: sd.Paths, Error: errs[sd.Split]}
		if ss.Error == "" {
			if err := summarizeSplit(&ss, t, &sd, tok, labels); err != nil {
				ss.Error = err.Error()
			}
		}
		ts.Splits = append(ts.Splits, ss)
	}
	return ts
}

func summarizeSplit(ss *SplitSummary, t *TaskConfig, sd *SplitData, tok *bert.Tokenizer, labels *mtl.Labels) error {
	if t.Kind.ReadsText() {
		ss.Documents = len(sd.Docs)
		ts := sd.Read.Text
		ss.Text = &ts
		for _, d := range sd.Docs {
			n := len(tok.Tokenize(d.Text))
			ss.SubWords += n
			ss.MaxSubWords = max(ss.MaxSubWords, n)
		}
		exs, err := mtl.PackText(tok, sd.Docs, t.MaxLength)
		ss.Windows = len(exs)
		return err
	}
	if !t.Kind.ReadsSpans() {
		return summarizePairs(ss, t, sd, tok)
	}
	ss.Documents = len(sd.Docs)
	for _, d := range sd.Docs {
		if t.Format == FormatCoNLL {
			ss.Sentences++
			continue
		}
		for _, l := range strings.Split(d.Text, "\n") {
			if strings.TrimSpace(l) != "" {
				ss.Sentences++
			}
		}
	}
	ss.Entities = corpus.CountTypes(sd.Docs)
	ss.IllFormed, ss.MergedFragments, ss.Fragmented = sd.Read.IllFormed, sd.Read.MergedFragments, sd.Read.Fragmented
	ss.SkippedTags = sd.Read.SkippedTags
	if labels == nil {
		return fmt.Errorf("no label set")
	}
	opts, err := t.AlignOptions()
	if err != nil {
		return err
	}
	a, err := mtl.Align(tok, sd.Docs, labels, opts)
	if err != nil {
		return err
	}
	ss.SubWords, ss.Words, ss.Windows, ss.Truncated = a.Stats.SubWords, a.Stats.Words, a.Stats.Windows, a.Stats.Truncated
	ss.Spans = a.Stats.Types
	tot := a.Stats.Total()
	ss.SpanTotals = &tot
	ss.Labels = map[string]int{}
	for _, d := range a.Docs {
		ss.MaxSubWords = max(ss.MaxSubWords, len(d.Tokens))
		for _, l := range d.Labels {
			if l != mtl.IgnoreLabel {
				ss.Labels[labels.Name(int(l))]++
			}
		}
	}
	return nil
}

func summarizePairs(ss *SplitSummary, t *TaskConfig, sd *SplitData, tok *bert.Tokenizer) error {
	ss.Pairs = len(sd.Pairs)
	if t.Kind.Scored() {
		if len(sd.Pairs) > 0 {
			sc := ScoreStats{Min: math.Inf(1), Max: math.Inf(-1)}
			for _, p := range sd.Pairs {
				sc.Min, sc.Max = min(sc.Min, p.Score), max(sc.Max, p.Score)
				sc.Mean += p.Score
			}
			sc.Mean /= float64(len(sd.Pairs))
			ss.Scores = &sc
		}
	} else {
		ss.Labels = map[string]int{}
		for _, p := range sd.Pairs {
			ss.Labels[p.Label]++
		}
	}
	for _, p := range sd.Pairs {
		n := len(tok.Tokenize(p.TextA)) + len(tok.Tokenize(p.TextB))
		ss.SubWords += n
		ss.MaxSubWords = max(ss.MaxSubWords, n)
		if n+3 > t.MaxLength { // [CLS] a [SEP] b [SEP]
			ss.Truncated++
		}
	}
	return nil
}

// WriteText renders the summary as aligned text tables: one row per task
// and split, then per task the spans per type and the label distribution.
func (s *Summary) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "config %s, data root %s, vocabulary %d tokens, lower case %v\n\n", s.Config, s.DataRoot, s.VocabSize, s.LowerCase)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "task\tsplit\tdocs\tsentences\tpairs\tsubwords\tmax\twindows\ttruncated\tspans\texact\tboundary\tfragmented\tduplicates\toverlap\tcollision\tno-tokens\t")
	for _, t := range s.Tasks {
		for _, sp := range t.Splits {
			c := mtl.SpanCounts{}
			if sp.SpanTotals != nil {
				c = *sp.SpanTotals
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Name, sp.Split,
				sp.Documents, sp.Sentences, sp.Pairs, sp.SubWords, sp.MaxSubWords, sp.Windows, sp.Truncated,
				c.Input, c.Exact, c.Boundary, c.Fragmented, c.Duplicates, c.Overlap, c.Collision, c.NoTokens)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range s.Tasks {
		fmt.Fprintf(w, "\n%s (%s, %s", t.Name, t.Kind, t.Format)
		if t.Kind.ReadsSpans() {
			fmt.Fprintf(w, ", %s, max length %d, stride %d, overlap %s", t.Scheme, t.MaxLength, t.Stride, t.Overlap)
		} else {
			fmt.Fprintf(w, ", max length %d", t.MaxLength)
		}
		fmt.Fprintf(w, "): %d labels\n", len(t.Labels))
		if t.Error != "" {
			fmt.Fprintf(w, "  ERROR %s\n", t.Error)
		}
		for _, sp := range t.Splits {
			if sp.Error != "" {
				fmt.Fprintf(w, "  %s: ERROR %s\n", sp.Split, sp.Error)
			}
		}
		if t.Kind.ReadsSpans() {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "  type\tsplit\tinput\texact\tboundary\tfragmented\tduplicates\toverlap\tcollision\tno-tokens\t")
			for _, sp := range t.Splits {
				for _, ty := range slices.Sorted(maps.Keys(sp.Spans)) {
					c := sp.Spans[ty]
					fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", ty, sp.Split, c.Input, c.Exact, c.Boundary, c.Fragmented, c.Duplicates, c.Overlap, c.Collision, c.NoTokens)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		for _, sp := range t.Splits {
			if len(sp.Labels) > 0 {
				var parts []string
				for _, l := range slices.Sorted(maps.Keys(sp.Labels)) {
					parts = append(parts, fmt.Sprintf("%s %d", l, sp.Labels[l]))
				}
				fmt.Fprintf(w, "  %s labels: %s\n", sp.Split, strings.Join(parts, ", "))
			}
			if sp.Scores != nil {
				fmt.Fprintf(w, "  %s scores: min %.3g, max %.3g, mean %.3g\n", sp.Split, sp.Scores.Min, sp.Scores.Max, sp.Scores.Mean)
			}
			if tx := sp.Text; tx != nil {
				fmt.Fprintf(w, "  %s text: %d files, %d binary files skipped, %d empty lines skipped, %d long lines split, %d documents with invalid UTF-8 replaced\n",
					sp.Split, tx.Files, tx.BinaryFiles, tx.EmptyLines, tx.SplitLines, tx.InvalidUTF8)
			}
			if sp.IllFormed+sp.MergedFragments+sp.Fragmented > 0 || len(sp.SkippedTags) > 0 {
				fmt.Fprintf(w, "  %s read: ill-formed %d, merged fragments %d, fragmented %d", sp.Split, sp.IllFormed, sp.MergedFragments, sp.Fragmented)
				if len(sp.SkippedTags) > 0 {
					var parts []string
					for _, tag := range slices.Sorted(maps.Keys(sp.SkippedTags)) {
						parts = append(parts, fmt.Sprintf("%s %d", tag, sp.SkippedTags[tag]))
					}
					fmt.Fprintf(w, ", skipped tags: %s", strings.Join(parts, ", "))
				}
				fmt.Fprintln(w)
			}
		}
	}
	return nil
}
