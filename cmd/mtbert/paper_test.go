package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/train"
)

// paperConfig copies examples/mt-clinical-bert.yaml unchanged into a folder beside a stub of
// its encoder.pretrained (a BERT-base config.json and the fixtures' small vocab.txt: the
// real Bio+Clinical BERT is not here) and returns the copy's path.
func paperConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	raw, err := os.ReadFile("../../examples/mt-clinical-bert.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "mt-clinical-bert.yaml")
	enc := filepath.Join(dir, "models", "Bio_ClinicalBERT")
	vocab, err := os.ReadFile("../../mtl/testdata/train/vocab.txt")
	if err != nil {
		t.Fatal(err)
	}
	bc := bert.DefaultConfig()
	bc.VocabSize = strings.Count(string(vocab), "\n")
	if err := os.MkdirAll(enc, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{cfgPath: raw, filepath.Join(enc, "vocab.txt"): vocab, filepath.Join(enc, "config.json"): bc.JSON()} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath
}

// TestPaperConfigSettings checks the paper's settings in examples/mt-clinical-bert.yaml: the
// eight tasks with the reference's names, kinds and distributed formats, batch 25 and 512
// sub-words for ner, 40 and 128 for pairs, and the gin config's training (6 epochs, seed 5,
// Adam at a constant 5e-5, no weight decay, warm-up or clipping).
func TestPaperConfigSettings(t *testing.T) {
	cfg, err := train.LoadConfig(paperConfig(t), "../../mtl/testdata/paper")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tc := range cfg.Tasks {
		got = append(got, strings.Join([]string{tc.Name, string(tc.Kind), tc.Format}, " "))
		ner := tc.Kind == "ner"
		if (ner && (tc.BatchSize != 25 || tc.MaxLength != 512 || tc.Stride != 510 || !tc.LabelAllSubwords)) || (!ner && (tc.BatchSize != 40 || tc.MaxLength != 128)) {
			t.Errorf("%s: batch %d, max length %d, stride %d", tc.Name, tc.BatchSize, tc.MaxLength, tc.Stride)
		}
	}
	want := []string{"i2b2_2010 ner i2b2-2010", "n2c2_2018 ner brat", "i2b2_2012 ner i2b2-2012", "i2b2_2014 ner i2b2-2014",
		"quaero_2014 ner brat", "n2c2_2019 regression sts", "mednli_2018 pair-classification mednli", "medrqe_2016 pair-classification medrqe"}
	if !slices.Equal(got, want) {
		t.Errorf("tasks\n%v\nwant\n%v", got, want)
	}
	tr := cfg.Training
	if tr.Epochs != 6 || tr.Seed != 5 || tr.LR != 5e-5 || tr.Optimizer != "adam" || tr.WeightDecay != 0 || tr.WarmupSteps != 0 || tr.Schedule != "constant" || tr.ClipNorm != 0 {
		t.Errorf("training %+v", tr)
	}
	if cfg.Encoder.LowerCase == nil || !*cfg.Encoder.LowerCase {
		t.Error("encoder.lower_case: want true, as the reference tokenised")
	}
}

// TestPaperConfigReadsFixtures runs mtbert data on the config with -data-root at the
// hand-made fixtures of mtl/testdata/paper (each format laid out as its distributor ships
// it): all eight tasks read, every split has documents or pairs, and the entity types of
// each format come through.
func TestPaperConfigReadsFixtures(t *testing.T) {
	out, _ := runCmd(t, 0, "data", "-config", paperConfig(t), "-data-root", "../../mtl/testdata/paper", "-json")
	var sum struct {
		Tasks []struct {
			Name   string `json:"name"`
			Splits []struct {
				Split     string         `json:"split"`
				Documents int            `json:"documents"`
				Pairs     int            `json:"pairs"`
				Entities  map[string]int `json:"entities"`
			} `json:"splits"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Tasks) != 8 {
		t.Fatalf("%d tasks read", len(sum.Tasks))
	}
	types := map[string][]string{}
	for _, task := range sum.Tasks {
		var splits []string
		for _, s := range task.Splits {
			splits = append(splits, s.Split)
			if s.Documents+s.Pairs == 0 {
				t.Errorf("%s %s: nothing read", task.Name, s.Split)
			}
			if s.Split == "train" {
				for ty := range s.Entities {
					types[task.Name] = append(types[task.Name], ty)
				}
				slices.Sort(types[task.Name])
			}
		}
		if !slices.Contains(splits, "train") || !slices.Contains(splits, "test") {
			t.Errorf("%s: splits %v", task.Name, splits)
		}
	}
	for task, want := range map[string][]string{
		"i2b2_2010": {"problem", "treatment"}, "n2c2_2018": {"ADE", "Drug", "Frequency", "Reason", "Route", "Strength"},
		"i2b2_2012": {"OCCURRENCE", "PROBLEM", "TREATMENT"}, "i2b2_2014": {"AGE", "DATE", "DOCTOR", "HOSPITAL", "PATIENT"},
		"quaero_2014": {"DISO"},
	} {
		if !slices.Equal(types[task], want) {
			t.Errorf("%s train types %v, want %v", task, types[task], want)
		}
	}
}

// TestPaperConfigInPlace reads examples/mt-clinical-bert.yaml where it is, before Bio+Clinical
// BERT is downloaded: with -vocab, mtbert data reads all eight tasks from the fixtures and
// says on stderr that encoder.pretrained is missing; without it, the missing folder is an
// error naming the field.
func TestPaperConfigInPlace(t *testing.T) {
	const cfg, root = "../../examples/mt-clinical-bert.yaml", "../../mtl/testdata/paper"
	out, stderr := runCmd(t, 0, "data", "-config", cfg, "-data-root", root, "-vocab", "../../mtl/testdata/train/vocab.txt", "-json")
	var sum struct {
		Tasks []struct {
			Name string `json:"name"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Tasks) != 8 {
		t.Fatalf("%d tasks read, want the paper's 8", len(sum.Tasks))
	}
	if !strings.Contains(stderr, "encoder.pretrained") || !strings.Contains(stderr, "not found") {
		t.Errorf("stderr does not say the encoder folder is missing: %q", stderr)
	}
	_, stderr = runCmd(t, 1, "data", "-config", cfg, "-data-root", root)
	if !strings.Contains(stderr, "encoder.pretrained") {
		t.Errorf("without -vocab: %q, want an error naming encoder.pretrained", stderr)
	}
}
