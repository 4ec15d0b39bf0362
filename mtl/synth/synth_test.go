package synth

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/train"
)

// TestWriteCorpus writes a corpus and reads it back through the config: five tasks, the
// requested counts per split, every span's text at its offsets, every type present, balanced
// labels and scores, held-out notes that differ from the training ones, and a vocabulary that
// tokenises every text without [UNK].
func TestWriteCorpus(t *testing.T) {
	dir := t.TempDir()
	const nNotes, nPairs = 60, 90
	cfgPath, err := WriteCorpus(dir, 42, nNotes, nPairs)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := train.LoadConfig(cfgPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Encoder.Layers != 2 || cfg.Encoder.Hidden != 128 || cfg.Encoder.MaxPosition != 128 {
		t.Errorf("encoder %+v", cfg.Encoder)
	}
	tasks, err := cfg.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, lt := range tasks {
		names = append(names, lt.Task.Name)
	}
	if want := []string{Medication, Clinical, PHI, NLI, STS}; !slices.Equal(names, want) {
		t.Fatalf("tasks %q, want %q", names, want)
	}
	tok, err := cfg.Tokenizer()
	if err != nil {
		t.Fatal(err)
	}
	unk := tok.Vocab().Specials().Unk
	countUnk := func(s string) int {
		n := 0
		for _, tk := range tok.Tokenize(s) {
			if tk.ID == unk {
				n++
			}
		}
		return n
	}
	wantNotes := map[string]int{train.SplitTrain: 48, train.SplitDev: 6, train.SplitTest: 6}
	wantPairs := map[string]int{train.SplitTrain: 72, train.SplitDev: 9, train.SplitTest: 9}
	var trainTexts []string
	for _, lt := range tasks[:3] {
		types := map[string]bool{}
		for _, sd := range lt.Splits {
			if len(sd.Docs) != wantNotes[sd.Split] {
				t.Errorf("%s %s: %d notes, want %d", lt.Task.Name, sd.Split, len(sd.Docs), wantNotes[sd.Split])
			}
			for _, d := range sd.Docs {
				if err := d.Check(); err != nil {
					t.Errorf("%s: %v", lt.Task.Name, err)
				}
				if len(d.Spans) == 0 {
					t.Errorf("%s %s: no span", lt.Task.Name, d.ID)
				}
				for i, s := range d.Spans {
					types[s.Type] = true
					if i > 0 && s.Start < d.Spans[i-1].End {
						t.Errorf("%s %s: spans %v and %v overlap", lt.Task.Name, d.ID, d.Spans[i-1], s)
					}
					if s.Text != strings.TrimSpace(s.Text) || s.Text == "" {
						t.Errorf("%s %s: span text %q", lt.Task.Name, d.ID, s.Text)
					}
				}
				if n := countUnk(d.Text); n > 0 {
					t.Errorf("%s: %d [UNK] in %q", d.ID, n, d.Text)
				}
				if lt.Task.Name == Medication && sd.Split == train.SplitTrain {
					trainTexts = append(trainTexts, d.Text)
				}
				if lt.Task.Name == Medication && sd.Split == train.SplitTest && slices.Contains(trainTexts, d.Text) {
					t.Errorf("test note %s is a copy of a training note", d.ID)
				}
			}
		}
		want := Types[lt.Task.Name]
		got := slices.Sorted(maps.Keys(types))
		if !slices.Equal(got, sortedCopy(want)) {
			t.Errorf("%s: types %q, want %q", lt.Task.Name, got, want)
		}
	}
	// The three NER tasks annotate the same texts.
	for i, d := range tasks[0].Splits[0].Docs {
		if tasks[1].Splits[0].Docs[i].Text != d.Text || tasks[2].Splits[0].Docs[i].Text != d.Text {
			t.Fatalf("note %s differs between tasks", d.ID)
		}
	}
	for _, lt := range tasks[3:] {
		for _, sd := range lt.Splits {
			if len(sd.Pairs) != wantPairs[sd.Split] {
				t.Errorf("%s %s: %d pairs, want %d", lt.Task.Name, sd.Split, len(sd.Pairs), wantPairs[sd.Split])
			}
			for _, p := range sd.Pairs {
				if countUnk(p.TextA)+countUnk(p.TextB) > 0 {
					t.Errorf("%s: [UNK] in %q / %q", p.ID, p.TextA, p.TextB)
				}
			}
		}
	}
	// Balance over the whole corpus: 90 pairs = 30 per NLI label, 15 per STS level.
	labels, levels := map[string]int{}, map[float64]int{}
	for _, sd := range tasks[3].Splits {
		for _, p := range sd.Pairs {
			labels[p.Label]++
		}
	}
	for _, sd := range tasks[4].Splits {
		for _, p := range sd.Pairs {
			levels[p.Score]++
		}
	}
	for _, l := range NLILabels {
		if labels[l] != 30 {
			t.Errorf("NLI labels %v, want 30 each", labels)
			break
		}
	}
	for s := range 6 {
		if levels[float64(s)] != 15 {
			t.Errorf("STS levels %v, want 15 each of 0..5", levels)
			break
		}
	}
	sum := train.Summarize(cfg, tok)
	if n := sum.Errors(); n != 0 {
		var b bytes.Buffer
		sum.WriteText(&b)
		t.Errorf("summary has %d errors:\n%s", n, b.String())
	}
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// readTree returns every file under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteCorpusDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []struct {
		dir  string
		seed uint64
	}{{a, 7}, {b, 7}, {c, 8}} {
		if _, err := WriteCorpus(d.dir, d.seed, 20, 30); err != nil {
			t.Fatal(err)
		}
	}
	ta, tb, tc := readTree(t, a), readTree(t, b), readTree(t, c)
	// 3 tasks x 20 notes x 2 files + 3 jsonl + 3 tsv + vocab + config
	if len(ta) != 3*20*2+8 {
		t.Errorf("%d files, want %d", len(ta), 3*20*2+8)
	}
	if len(ta) != len(tb) {
		t.Fatalf("%d vs %d files", len(ta), len(tb))
	}
	for p, x := range ta {
		if !bytes.Equal(x, tb[p]) {
			t.Errorf("%s differs between two runs with seed 7", p)
		}
	}
	differ := 0
	for p, x := range ta {
		if !bytes.Equal(x, tc[p]) {
			differ++
		}
	}
	if differ < len(ta)/2 {
		t.Errorf("seed 8 changed only %d of %d files", differ, len(ta))
	}
}

func TestWriteCorpusErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteCorpus(dir, 1, 9, 30); err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Errorf("9 notes: %v", err)
	}
	if _, err := WriteCorpus(dir, 1, 30, 5); err == nil || !strings.Contains(err.Error(), "at least 10") {
		t.Errorf("5 pairs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCorpus(dir, 1, 10, 10); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty folder: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "mine" {
		t.Error("existing file changed")
	}
	if _, err := Generate(1, -1, 3); err == nil {
		t.Error("negative count: no error")
	}
}

// TestGenerateVariety: the notes use many of the embedded values and formats, so that a
// model cannot learn a handful of strings.
func TestGenerateVariety(t *testing.T) {
	c, err := Generate(3, 300, 0)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]map[string]bool{}
	for _, docs := range [][]corpus.Document{c.Medication, c.Clinical, c.PHI} {
		for _, d := range docs {
			for _, s := range d.Spans {
				if distinct[s.Type] == nil {
					distinct[s.Type] = map[string]bool{}
				}
				distinct[s.Type][s.Text] = true
			}
		}
	}
	for typ, min := range map[string]int{"Drug": 40, "Strength": 60, "Dosage": 10, "Route": 12, "Frequency": 15,
		"problem": 60, "test": 30, "treatment": 60, "NAME": 150, "DATE": 200, "PHONE": 200, "HOSPITAL": 60, "MRN": 250} {
		if n := len(distinct[typ]); n < min {
			t.Errorf("%s: %d distinct texts, want at least %d", typ, n, min)
		}
	}
	// Dates come in several formats: slashes, dashes and month names.
	var slash, dash, month bool
	for d := range distinct["DATE"] {
		slash = slash || strings.Contains(d, "/")
		dash = dash || strings.Count(d, "-") == 2
		month = month || strings.ContainsAny(d[:1], "ADFJMNOS")
	}
	if !slash || !dash || !month {
		t.Errorf("date formats: slash %v dash %v month %v", slash, dash, month)
	}
}
