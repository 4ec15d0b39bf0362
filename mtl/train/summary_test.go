package train

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl"
)

func TestSummarizeFixtures(t *testing.T) {
	c, err := LoadConfig(filepath.Join(cfgDir, "good.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(c, tok)
	if s.Errors() != 0 || len(s.Tasks) != 4 {
		t.Fatalf("%d errors, %d tasks: %+v", s.Errors(), len(s.Tasks), s)
	}
	// conll train: 3 sentences; sub-words Patient took 5 ##mg as ##pi ##rin ##s daily . | no chest pain . | fever = 15;
	// windows of 4 sub-words every 2: 10 -> starts 0 2 4 6 (4), 4 -> 1, 1 -> 1.
	ct := s.Tasks[0].Splits[0]
	if ct.Documents != 3 || ct.Sentences != 3 || ct.SubWords != 15 || ct.Words != 11 || ct.MaxSubWords != 10 || ct.Windows != 6 || ct.IllFormed != 1 {
		t.Errorf("conll train %+v", ct)
	}
	if want := map[string]int{"O": 5, "B-Dose": 1, "B-Drug": 1, "B-Freq": 1, "B-Problem": 2, "I-Problem": 1}; !reflect.DeepEqual(ct.Labels, want) {
		t.Errorf("conll label distribution %v", ct.Labels)
	}
	// brat: "aspirins daily" (Drug) beats "aspirins" (overlap); "5" is widened to "5mg".
	nt := s.Tasks[1].Splits[0]
	if *nt.SpanTotals != (mtl.SpanCounts{Input: 4, Overlap: 1, Exact: 2, Boundary: 1}) || nt.Sentences != 2 || nt.Windows != 4 {
		t.Errorf("brat %+v %+v", nt, *nt.SpanTotals)
	}
	if nt.Spans["Dose"] != (mtl.SpanCounts{Input: 1, Boundary: 1}) {
		t.Errorf("brat Dose %+v", nt.Spans["Dose"])
	}
	nli := s.Tasks[2].Splits[0]
	if nli.Pairs != 4 || nli.Labels["neutral"] != 2 || nli.Truncated != 0 {
		t.Errorf("nli %+v", nli)
	}
	sim := s.Tasks[3].Splits[1]
	if sim.Split != "test" || sim.Pairs != 2 || *sim.Scores != (ScoreStats{Min: 1, Max: 3, Mean: 2}) {
		t.Errorf("sts test %+v", sim)
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"conll  train     3          3      0        15   10        6", "train labels: contradiction 1, entailment 1, neutral 2", "test scores: min 1, max 3, mean 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text summary lacks %q:\n%s", want, b.String())
		}
	}
}

func TestSummarizeReportsBadSplits(t *testing.T) {
	body := minimal + "    labels: [O, B-Drug, I-Drug, L-Drug, U-Drug]\n    dev: nli.jsonl\n"
	c, err := ParseConfig([]byte(body), filepath.Join(cfgDir, "x.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := c.Tokenizer()
	s := Summarize(c, tok)
	tr, dev := s.Tasks[0].Splits[0], s.Tasks[0].Splits[1]
	// The fixed label set lacks Dose: the train split cannot be aligned; the dev file is not CoNLL.
	if !strings.Contains(tr.Error, `entity type "Dose"`) || !strings.Contains(dev.Error, "nli.jsonl:1") || s.Errors() != 2 {
		t.Errorf("errors: train %q, dev %q, total %d", tr.Error, dev.Error, s.Errors())
	}
	if tr.Documents != 3 || tr.Entities["Problem"] != 2 {
		t.Errorf("counts before the failure: %+v", tr)
	}
}

// TestSummaryReadLine: the readers' counts are printed as words, skipped tags sorted as
// "TAG count" (not Go's map formatting) and left out when there are none.
func TestSummaryReadLine(t *testing.T) {
	s := &Summary{Tasks: []TaskSummary{{Name: "ev", Kind: mtl.NER, Splits: []SplitSummary{
		{Split: "train", IllFormed: 1},
		{Split: "dev", SkippedTags: map[string]int{"TLINK": 3, "TIMEX3": 2}},
	}}}}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  train read: ill-formed 1, merged fragments 0, fragmented 0\n",
		"  dev read: ill-formed 0, merged fragments 0, fragmented 0, skipped tags: TIMEX3 2, TLINK 3\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "map[") {
		t.Errorf("Go map formatting in the summary:\n%s", b.String())
	}
}
