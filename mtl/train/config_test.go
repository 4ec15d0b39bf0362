package train

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

var cfgDir = mtltest.Testdata("config")

func TestLoadConfigGood(t *testing.T) {
	c, err := LoadConfig(filepath.Join(cfgDir, "good.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataRoot != cfgDir {
		t.Errorf("data root %q", c.DataRoot)
	}
	e := c.Encoder
	if e.Vocab != filepath.Join(cfgDir, "vocab.txt") || e.Layers != 2 || e.Hidden != 128 || e.MaxPosition != 128 || e.LowerCase == nil || *e.LowerCase {
		t.Errorf("encoder %+v", e)
	}
	ner := c.Tasks[0]
	if !reflect.DeepEqual(ner.Dev, Paths{filepath.Join(cfgDir, "ner.tsv"), filepath.Join(cfgDir, "ner.tsv")}) ||
		ner.BatchSize != 25 || ner.MaxLength != 6 || ner.Stride != 2 || ner.Scheme != "BIO" || ner.Overlap != "keep-longest" {
		t.Errorf("task 0 %+v", ner)
	}
	// Defaults of an ner task: batch 25, max length 512, stride 255, BILOU.
	if b := c.Tasks[1]; b.BatchSize != 25 || b.MaxLength != 8 || b.Stride != 3 || b.Scheme != "BILOU" || b.LabelAllSubwords {
		t.Errorf("task 1 %+v", b)
	}
	// Pair defaults: batch 40, max length 128 (the paper).
	if p := c.Tasks[2]; p.BatchSize != 40 || p.MaxLength != 128 || p.Stride != 0 || p.Scheme != "" {
		t.Errorf("task 2 %+v", p)
	}
	if s := c.Tasks[3]; s.TestScores != filepath.Join(cfgDir, "sts-test-scores.txt") {
		t.Errorf("task 3 %+v", s)
	}
	want := TrainingConfig{Epochs: 2, Accumulate: 1, Optimizer: "adam", LR: 3e-5, Schedule: "constant", Seed: 0, Dropout: 0.1, BestMetric: "nli"}
	if c.Training != want {
		t.Errorf("training %+v\nwant %+v", c.Training, want)
	}
	all, err := c.LoadAll()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(all[0].Split(SplitDev).Docs); n != 6 {
		t.Errorf("conll dev: %d documents (two copies of 3), want 6", n)
	}
	if all[0].Split(SplitTest) != nil {
		t.Error("conll has no test split")
	}
	l, err := all[0].LabelSet()
	if err != nil || strings.Join(l.Names, " ") != "O B-Dose I-Dose B-Drug I-Drug B-Freq I-Freq B-Problem I-Problem" {
		t.Errorf("labels %v, %v", l, err)
	}
	l, _ = all[2].LabelSet()
	if strings.Join(l.Names, " ") != "contradiction entailment neutral" {
		t.Errorf("classes %v", l.Names)
	}
	if sc := all[3].Split(SplitTest).Pairs; len(sc) != 2 || sc[1].Score != 3 {
		t.Errorf("sts test %+v", sc)
	}
	opts, err := c.Tasks[0].AlignOptions()
	if err != nil || opts != (mtl.AlignOptions{Scheme: corpus.BIO, MaxLen: 6, Stride: 2, Overlap: corpus.KeepLongest}) {
		t.Errorf("align options %+v %v", opts, err)
	}
	tok, err := c.Tokenizer()
	if err != nil || tok.LowerCase() || tok.Vocab().Len() != 24 {
		t.Errorf("tokenizer: %v", err)
	}
}

// minimal is a valid config body; cases edit it.
const minimal = `encoder:
  vocab: vocab.txt
tasks:
  - name: a
    kind: ner
    format: conll
    train: ner.tsv
`

func TestLoadConfigDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(minimal), filepath.Join(cfgDir, "x.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	e := c.Encoder
	if e.Layers != 12 || e.Hidden != 768 || e.Heads != 12 || e.Intermediate != 3072 || e.MaxPosition != 512 || e.LowerCase != nil {
		t.Errorf("encoder defaults %+v", e)
	}
	if a := c.Tasks[0]; a.BatchSize != 25 || a.MaxLength != 512 || a.Stride != 255 || a.Scheme != "BILOU" || a.Overlap != "keep-longest" {
		t.Errorf("task defaults %+v", a)
	}
	want := TrainingConfig{Epochs: 3, Accumulate: 1, Optimizer: "adam", LR: 5e-5, Schedule: "constant", Seed: 1, Dropout: 0.1, BestMetric: "mean"}
	if c.Training != want {
		t.Errorf("training defaults %+v", c.Training)
	}
	// JSON is YAML.
	j := `{"encoder": {"vocab": "vocab.txt"}, "tasks": [{"name": "a", "kind": "ner", "format": "conll", "train": "ner.tsv"}], "training": {"dropout": 0}}`
	c, err = ParseConfig([]byte(j), filepath.Join(cfgDir, "x.json"), "")
	if err != nil || c.Training.Dropout != 0 {
		t.Errorf("json: %v %+v", err, c)
	}
}

func TestLoadConfigPaths(t *testing.T) {
	// -data-root wins over data_root; data_root resolves against the config's folder.
	body := "data_root: brat\n" + strings.Replace(minimal, "format: conll\n    train: ner.tsv", "format: brat\n    train: a.txt", 1)
	c, err := ParseConfig([]byte(body), filepath.Join(cfgDir, "x.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	if c.DataRoot != filepath.Join(cfgDir, "brat") || c.Tasks[0].Train[0] != filepath.Join(cfgDir, "brat", "a.txt") {
		t.Errorf("data_root: %q %q", c.DataRoot, c.Tasks[0].Train)
	}
	abs, _ := filepath.Abs(filepath.Join(cfgDir, "brat"))
	c, err = ParseConfig([]byte("data_root: nowhere\n"+minimal), filepath.Join(cfgDir, "x.yaml"), cfgDir)
	if err != nil || c.Tasks[0].Train[0] != filepath.Join(cfgDir, "ner.tsv") {
		t.Errorf("-data-root: %v", err)
	}
	// Absolute paths stay as they are.
	body = strings.Replace(minimal, "format: conll\n    train: ner.tsv", "format: brat\n    train: "+abs, 1)
	c, err = ParseConfig([]byte(body), filepath.Join(cfgDir, "x.yaml"), "")
	if err != nil || c.Tasks[0].Train[0] != abs {
		t.Errorf("absolute: %v", err)
	}
	// A pretrained folder: sizes from its config.json, tokenizer from its vocab.txt.
	dir := t.TempDir()
	bc := bert.DefaultConfig()
	bc.NumHiddenLayers, bc.MaxPositionEmbeddings = 3, 64
	os.WriteFile(filepath.Join(dir, "config.json"), bc.JSON(), 0o644)
	vb, _ := os.ReadFile(filepath.Join(cfgDir, "vocab.txt"))
	os.WriteFile(filepath.Join(dir, "vocab.txt"), vb, 0o644)
	body = strings.Replace(minimal, "vocab: vocab.txt", "pretrained: "+dir, 1) + "    max_length: 64\n"
	c, err = ParseConfig([]byte(body), filepath.Join(cfgDir, "x.yaml"), "")
	if err != nil || c.Encoder.Layers != 3 || c.Encoder.MaxPosition != 64 || c.Tasks[0].Stride != 31 {
		t.Fatalf("pretrained: %v %+v", err, c)
	}
	tok, err := c.Tokenizer()
	if err != nil || !tok.LowerCase() {
		t.Errorf("pretrained tokenizer: lower %v, %v (want the Hugging Face default, true)", tok.LowerCase(), err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	repl := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			panic(old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	for _, tc := range []struct{ body, field, msg string }{
		{"", "", "empty config"},
		{"- a\n", "", "want a mapping"},
		{minimal + "extra: 1\n", "extra", "unknown field"},
		{minimal + "training:\n  epoch: 3\n", "training.epoch", "unknown field (want one of epochs, "},
		{repl("    train:", "    trian: x\n    train:"), "tasks[0].trian", "unknown field"},
		{repl("kind: ner", "kind: ner\n    kind: ner"), "tasks[0].kind", "line 6: repeated (first at line 5)"},
		{minimal + "training:\n  epochs: three\n", "training.epochs", "cannot unmarshal !!str `three` into int"},
		{minimal + "    batch_size: [1]\n", "tasks[0].batch_size", "cannot unmarshal"},
		{minimal + "    labels: O\n", "tasks[0].labels", "cannot unmarshal"},
		{"encoder:\n  vocab: vocab.txt\ntasks: 3\n", "tasks", "want a list"},
		{"tasks: []\nencoder:\n  vocab: vocab.txt\n", "tasks", "need at least one task"},
		{strings.Replace(minimal, "encoder:\n  vocab: vocab.txt\n", "", 1), "encoder", "required"},
		{repl("vocab: vocab.txt", "vocab: nope.txt"), "encoder.vocab", "no such file"},
		{repl("vocab: vocab.txt", "vocab: vocab.txt\n  pretrained: brat"), "encoder.vocab", "set together with encoder.pretrained"},
		{repl("vocab: vocab.txt", "vocab: vocab.txt\n  hidden: 100\n  heads: 3"), "encoder.hidden", "not a multiple of encoder.heads 3"},
		{repl("vocab: vocab.txt", "vocab: vocab.txt\n  layers: 0"), "encoder.layers", "must be positive"},
		{repl("vocab: vocab.txt", "pretrained: brat\n  layers: 2"), "encoder.layers", "not allowed with encoder.pretrained"},
		{repl("vocab: vocab.txt", "pretrained: brat"), "encoder.pretrained", "vocab.txt: no such file"},
		{repl("  - name: a\n    kind", "  - kind"), "tasks[0].name", "required"},
		{repl("    train: ner.tsv\n", ""), "tasks[0].train", "required"},
		{repl("format: conll", "format: conl"), "tasks[0].format", `unknown format "conl" (want conll, brat, i2b2-2010, i2b2-2012, i2b2-2014, mednli, medrqe, sts, stsb, biosses, text)`},
		{repl("kind: ner", "kind: tagging"), "tasks[0].kind", `unknown kind "tagging"`},
		{repl("format: conll", "format: mednli"), "tasks[0].format", "does not serve kind ner"},
		{repl("train: ner.tsv", "train: missing.tsv"), "tasks[0].train", "missing.tsv: no such file"},
		{minimal + "    dev: [ner.tsv, gone.tsv]\n", "tasks[0].dev", "gone.tsv: no such file"},
		{minimal + "    test: []\n", "tasks[0].test", "empty list"},
		{minimal + "  - name: a\n    kind: ner\n    format: conll\n    train: ner.tsv\n", "tasks[1].name", `duplicate task name "a" (also tasks[0])`},
		{repl("name: a", "name: 1a"), "tasks[0].name", "want a letter"},
		{repl("name: a", "name: encoder"), "tasks[0].name", "reserved"},
		{minimal + "    scheme: IOB\n", "tasks[0].scheme", `unknown scheme "IOB"`},
		{minimal + "    overlap: longest\n", "tasks[0].overlap", `unknown overlap policy "longest"`},
		{minimal + "    max_length: 600\n", "tasks[0].max_length", "out of range [3, 512]"},
		{minimal + "    max_length: 10\n    stride: 9\n", "tasks[0].stride", "out of range [1, 8]"},
		{minimal + "    batch_size: 0\n", "tasks[0].batch_size", "at least 1"},
		{minimal + "    labels: [O, B-X]\n", "tasks[0].labels", `label "I-X" not in the label set`},
		{minimal + "    labels: [B-X, I-X, L-X, U-X]\n", "tasks[0].labels", `no "O" label`},
		{minimal + "    labels: [O, X]\n", "tasks[0].labels", `label "X" is not O or P-TYPE`},
		{minimal + "    test_scores: ner.tsv\n", "tasks[0].test_scores", "only for format sts"},
		{minimal + "  - name: b\n    kind: regression\n    format: biosses\n    train: ner.tsv\n    scheme: BIO\n", "tasks[1].scheme", "only for ner tasks"},
		{minimal + "  - name: b\n    kind: regression\n    format: biosses\n    train: ner.tsv\n    labels: [a, b]\n", "tasks[1].labels", "not for regression"},
		{minimal + "  - name: b\n    kind: classification\n    format: mednli\n    train: nli.jsonl\n    labels: [a]\n", "tasks[1].labels", "at least 2"},
		{minimal + "training:\n  optimizer: sgd\n", "training.optimizer", `unknown optimizer "sgd" (want adam or adamw)`},
		{minimal + "training:\n  lr: 0\n", "training.lr", "must be positive"},
		{minimal + "training:\n  schedule: cosine\n", "training.schedule", "unknown schedule"},
		{minimal + "training:\n  dropout: 1\n", "training.dropout", "in [0, 1)"},
		{minimal + "training:\n  epochs: 0\n", "training.epochs", "at least 1"},
		{minimal + "training:\n  best_metric: b\n", "training.best_metric", "neither mean nor a task name"},
		{minimal + "data_root: nowhere\n", "data_root", "no such file"},
		{minimal + "training:\n  steps: 10\n  epochs: 2\n", "training.steps", "set together with training.epochs"},
		{minimal + "training:\n  steps: 0\n", "training.steps", "at least 1"},
		{minimal + "training:\n  accumulate: 0\n", "training.accumulate", "at least 1"},
		{minimal + "    whole_word_masking: true\n", "tasks[0].whole_word_masking", "only for mlm tasks"},
		{minimal + "  - name: b\n    kind: mlm\n    format: text\n    train: ner.tsv\n    labels: [a, b]\n", "tasks[1].labels", "not for mlm"},
		{minimal + "  - name: b\n    kind: mlm\n    format: text\n    train: ner.tsv\n    stride: 4\n", "tasks[1].stride", "only for ner tasks"},
		{minimal + "  - name: b\n    kind: mlm\n    format: conll\n    train: ner.tsv\n", "tasks[1].format", "does not serve kind mlm"},
	} {
		_, err := ParseConfig([]byte(tc.body), filepath.Join(cfgDir, "x.yaml"), "")
		var ce *ConfigError
		if err == nil || !errors.As(err, &ce) {
			t.Errorf("%q: err = %v, want a ConfigError", tc.body, err)
			continue
		}
		if ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), filepath.Join(cfgDir, "x.yaml")+": ") {
			t.Errorf("%q:\n got %v (field %q)\nwant field %q and %q", tc.body, err, ce.Field, tc.field, tc.msg)
		}
	}
	if _, err := LoadConfig(filepath.Join(cfgDir, "absent.yaml"), ""); err == nil {
		t.Error("missing file accepted")
	}
}

// TestEmptySplit: a 0-byte data file of every format, a file of blank lines and an empty brat
// folder are each an error naming the task, the split and the path, where they used to give 0
// documents and a later, indirect failure ("a ner head needs at least 2 labels, have 1").
func TestEmptySplit(t *testing.T) {
	dir := t.TempDir()
	vocab := filepath.Join(cfgDir, "vocab.txt")
	empty := mtltest.WriteFile(t, dir, "empty", "")
	blank := mtltest.WriteFile(t, dir, "blank", "\n\n\n")
	folder := filepath.Join(dir, "folder")
	os.Mkdir(folder, 0o755)
	for _, c := range []struct {
		kind, format, path, want string
	}{
		{"ner", "conll", empty, "task t, train: " + empty + ": no sentences: the file is empty"},
		{"ner", "conll", blank, "task t, train: " + blank + ": no sentences in the file"},
		{"ner", "brat", folder, "task t, train: " + folder + ": no documents: the folder holds no files of format brat"},
		{"ner", "i2b2-2014", folder, "task t, train: " + folder + ": no documents: the folder holds no files of format i2b2-2014"},
		{"pair-classification", "mednli", empty, "task t, train: " + empty + ": no pairs: the file is empty"},
		{"pair-classification", "medrqe", empty, "task t, train: " + empty + ": no pairs: the file is empty"},
		{"regression", "sts", empty, "task t, train: " + empty + ": no pairs: the file is empty"},
		{"regression", "stsb", empty, "task t, train: " + empty + ": no pairs: the file is empty"},
		{"regression", "biosses", empty, "task t, train: " + empty + ":1: empty file, want a header"},
		{"mlm", "text", blank, "task t, train: " + blank + ": no documents in the file"},
	} {
		yaml := "encoder: {vocab: " + vocab + ", layers: 1, hidden: 8, heads: 2, intermediate: 8, max_position: 64}\n" +
			"tasks:\n  - {name: t, kind: " + c.kind + ", format: " + c.format + ", train: " + c.path + ", max_length: 16}\n"
		cfg, err := ParseConfig([]byte(yaml), filepath.Join(dir, "c.yaml"), "")
		if err != nil {
			t.Fatalf("%s: %v", c.format, err)
		}
		_, err = cfg.LoadAll()
		if err == nil || err.Error() != c.want {
			t.Errorf("%s %s:\n got %v\nwant %s", c.format, filepath.Base(c.path), err, c.want)
		}
	}
}

// TestSTSBConfig trains nothing but reads format stsb through a config: the benchmark's .csv
// as train and GLUE's .tsv as dev, scores as in the files.
func TestSTSBConfig(t *testing.T) {
	data := mtltest.Testdata("stsb")
	yaml := "encoder: {vocab: " + filepath.Join(cfgDir, "vocab.txt") + ", layers: 1, hidden: 8, heads: 2, intermediate: 8, max_position: 128}\n" +
		"tasks:\n  - {name: stsb, kind: regression, format: stsb, train: sts-train.csv, dev: train.tsv, test: sts-test.csv}\n"
	cfg, err := ParseConfig([]byte(yaml), filepath.Join(data, "c.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := cfg.Load(0)
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, s := range lt.Splits {
		for _, p := range s.Pairs {
			got = append(got, p.Score)
		}
	}
	if want := []float64{5, 3.8, 0.6, 5, 3.8, 2.5, 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("scores %v, want %v", got, want)
	}
}

// TestDefaultMaxLengthTooLong: an ner task without max_length gets 512, which a small encoder
// cannot take; the error says that 512 was the default and which key to set.
func TestDefaultMaxLengthTooLong(t *testing.T) {
	yaml := "encoder: {vocab: vocab.txt, layers: 1, hidden: 8, heads: 2, intermediate: 8, max_position: 64}\n" +
		"tasks:\n  - {name: a, kind: regression, format: sts, train: sts.tsv, max_length: 16}\n  - {name: b, kind: ner, format: conll, train: ner.tsv}\n"
	_, err := ParseConfig([]byte(yaml), filepath.Join(cfgDir, "small.yaml"), "")
	want := filepath.Join(cfgDir, "small.yaml") + ": tasks[1].max_length: max_length 512 (the default for ner tasks) exceeds the encoder's 64 positions (encoder.max_position); set tasks[1].max_length to at most 64"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	// Set explicitly, the old message stays.
	yaml = strings.Replace(yaml, "train: ner.tsv}", "train: ner.tsv, max_length: 100}", 1)
	_, err = ParseConfig([]byte(yaml), filepath.Join(cfgDir, "small.yaml"), "")
	mtltest.WantErr(t, err, "tasks[1].max_length: 100 out of range [3, 64] (encoder.max_position)")
}
