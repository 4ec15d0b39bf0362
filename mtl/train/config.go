package train

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// Config is the YAML (or JSON) configuration shared by `mtbert data` and
// training: the encoder, the tasks and their data, and the training
// hyper-parameters. LoadConfig reads it strictly and fills the defaults
// documented on each field; after LoadConfig every path is resolved (see
// LoadConfig) and every value checked.
type Config struct {
	// Path is the file the config was read from (not a YAML key).
	Path string `yaml:"-" json:"path"`
	// DataRoot is the folder relative task paths resolve against: the
	// dataRoot argument of LoadConfig when not empty, else the data_root
	// key (itself relative to the config file's folder), else the config
	// file's folder. After LoadConfig it holds the folder used.
	DataRoot string `yaml:"data_root" json:"data_root"`
	// Encoder is the shared encoder. Required.
	Encoder EncoderConfig `yaml:"encoder" json:"encoder"`
	// Tasks are the tasks, in the round-robin order of training. At least
	// one; names unique.
	Tasks []TaskConfig `yaml:"tasks" json:"tasks"`
	// Training holds the optimisation settings. Optional (all defaults).
	Training TrainingConfig `yaml:"training" json:"training"`
	// PretrainedMissing is set by LoadDataConfig when encoder.pretrained does not exist: the
	// encoder's sizes are then BERT-base's (512 positions). Not a YAML key.
	PretrainedMissing bool `yaml:"-" json:"pretrained_missing,omitempty"`

	// dataOnly is LoadDataConfig's: the config is read for its data, not to build a model.
	dataOnly bool
}

// EncoderConfig says where the encoder and its tokenizer come from: a Hugging
// Face BERT directory (Pretrained), or a vocabulary file and the sizes of a
// randomly initialised encoder (Vocab). Exactly one of the two is required;
// the size fields are refused with Pretrained (its config.json has them).
// Relative paths resolve against the config file's folder.
type EncoderConfig struct {
	// Pretrained is a Hugging Face BERT directory: config.json, vocab.txt
	// and the weights.
	Pretrained string `yaml:"pretrained" json:"pretrained,omitempty"`
	// Vocab is a vocab.txt for a randomly initialised encoder.
	Vocab string `yaml:"vocab" json:"vocab,omitempty"`
	// Layers, Hidden, Heads, Intermediate and MaxPosition are the sizes of
	// a random encoder; defaults are BERT-base's 12, 768, 12, 3072, 512.
	// With Pretrained they are filled from its config.json.
	Layers       int `yaml:"layers" json:"layers"`
	Hidden       int `yaml:"hidden" json:"hidden"`
	Heads        int `yaml:"heads" json:"heads"`
	Intermediate int `yaml:"intermediate" json:"intermediate"`
	MaxPosition  int `yaml:"max_position" json:"max_position"`
	// LowerCase, when set, forces tokenizer lowercasing (and accent
	// stripping, which follows it) and ignores the model directory's
	// tokenizer_config.json. Unset: the directory's tokenizer_config.json,
	// else bert.DefaultLowerCase (true, as Hugging Face; Bio+Clinical BERT's
	// cased vocabulary is then lowercased, as the reference code did).
	LowerCase *bool `yaml:"lower_case" json:"lower_case,omitempty"`
}

// Paths is one or more files or folders of a split: YAML accepts a single
// string or a list (the splits are read in order and concatenated).
type Paths []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (p *Paths) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*p = Paths{s}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*p = s
		return nil
	}
	return fmt.Errorf("line %d: want a path or a list of paths", n.Line)
}

// Task data formats (TaskConfig.Format).
const (
	FormatCoNLL    = "conll"     // ReadCoNLL; kind ner
	FormatBrat     = "brat"      // ReadBrat; kind ner
	FormatI2B22010 = "i2b2-2010" // ReadI2B2Con; kind ner
	FormatI2B22012 = "i2b2-2012" // ReadI2B2XML with I2B2Events; kind ner
	FormatI2B22014 = "i2b2-2014" // ReadI2B2XML with I2B2PHI; kind ner
	FormatMedNLI   = "mednli"    // ReadMedNLI; kind pair-classification or classification
	FormatMedRQE   = "medrqe"    // ReadMedRQE; kind pair-classification or classification
	FormatSTS      = "sts"       // ReadSTS; kind regression
	FormatSTSB     = "stsb"      // ReadSTSB (the STS benchmark's .csv or GLUE's .tsv); kind regression
	FormatBIOSSES  = "biosses"   // ReadBIOSSES; kind regression
	FormatText     = "text"      // ReadText (one document per line, or folders of .txt); kind mlm
)

// formatKinds lists the formats in documentation order with the kinds each
// may serve.
var formatKinds = []struct {
	format string
	kinds  []mtl.Kind
}{
	{FormatCoNLL, []mtl.Kind{mtl.NER}}, {FormatBrat, []mtl.Kind{mtl.NER}}, {FormatI2B22010, []mtl.Kind{mtl.NER}},
	{FormatI2B22012, []mtl.Kind{mtl.NER}}, {FormatI2B22014, []mtl.Kind{mtl.NER}},
	{FormatMedNLI, []mtl.Kind{mtl.PairClassification, mtl.Classification}}, {FormatMedRQE, []mtl.Kind{mtl.PairClassification, mtl.Classification}},
	{FormatSTS, []mtl.Kind{mtl.Regression}}, {FormatSTSB, []mtl.Kind{mtl.Regression}}, {FormatBIOSSES, []mtl.Kind{mtl.Regression}},
	{FormatText, []mtl.Kind{mtl.MLM}},
}

// TaskConfig is one task. Name, Kind, Format and Train are required.
//
// Paths resolve against Config.DataRoot. A split path is what the format's
// reader takes: a CoNLL, JSONL, XML or TSV file; a brat folder (or one
// document); an i2b2-2012/2014 XML file or folder; for i2b2-2010 a folder
// holding both the .txt and .con files, or holding txt/ and concept/
// sub-folders (the release's layout).
type TaskConfig struct {
	// Name identifies the task (head, checkpoint, reports): a letter then
	// letters, digits, _ or -; not embeddings, encoder, pooler or cls.
	Name string `yaml:"name" json:"name"`
	// Kind is ner, pair-classification, classification, regression or
	// mlm (masked-language modelling on raw text, format text: documents
	// are packed into sequences of max_length sub-words and masked anew in
	// every pass, 15% of tokens: 80% [MASK], 10% random, 10% kept).
	Kind mtl.Kind `yaml:"kind" json:"kind"`
	// Format is the data format; it must suit Kind (see the Format
	// constants).
	Format string `yaml:"format" json:"format"`
	// Train, Dev and Test are the splits; Train is required.
	Train Paths `yaml:"train" json:"train"`
	Dev   Paths `yaml:"dev" json:"dev,omitempty"`
	Test  Paths `yaml:"test" json:"test,omitempty"`
	// TrainScores, DevScores and TestScores are the separate score files
	// of an sts split whose data file has only the two sentences (the
	// n2c2-2019 test layout). Only for format sts, one path per split.
	TrainScores string `yaml:"train_scores" json:"train_scores,omitempty"`
	DevScores   string `yaml:"dev_scores" json:"dev_scores,omitempty"`
	TestScores  string `yaml:"test_scores" json:"test_scores,omitempty"`
	// BatchSize is the number of sequences per step: default 25 for ner,
	// 32 for mlm, 40 otherwise (the paper).
	BatchSize int `yaml:"batch_size" json:"batch_size"`
	// MaxLength is the sequence length in sub-words with the specials:
	// default 512 for ner, 128 otherwise (the paper; for mlm the length
	// documents are packed to). At least 3 and at most the encoder's
	// max_position.
	MaxLength int `yaml:"max_length" json:"max_length"`
	// Stride (ner only) is the number of sub-words between the starts of
	// consecutive windows of a long document; default
	// DefaultStride(MaxLength) = (MaxLength-2)/2. At most MaxLength-2.
	Stride int `yaml:"stride" json:"stride,omitempty"`
	// Scheme (ner only) is BIO or BILOU; default BILOU (the reference
	// code's).
	Scheme string `yaml:"scheme" json:"scheme,omitempty"`
	// LabelAllSubwords (ner only) trains every sub-word of a word with the
	// word's tag; default false (first sub-word only).
	LabelAllSubwords bool `yaml:"label_all_subwords" json:"label_all_subwords,omitempty"`
	// UsePooler (sentence tasks only) feeds the head the pooler output
	// (dense + tanh on [CLS], BERT's next-sentence pooler) instead of the raw
	// [CLS] vector; default false. A randomly initialised encoder then gets a
	// pooler; a pretrained one must have one.
	UsePooler bool `yaml:"use_pooler" json:"use_pooler,omitempty"`
	// Overlap (ner only) is the overlap policy: keep-longest (default),
	// keep-first or drop-both (the reference code's).
	Overlap string `yaml:"overlap" json:"overlap,omitempty"`
	// Labels fixes the label list (ner: "O" and the scheme's tags of every
	// type; classification: the classes). Default: built from every split
	// (SchemeLabels over the sorted types; the sorted classes). Not for
	// regression.
	Labels []string `yaml:"labels" json:"labels,omitempty"`
	// WholeWordMasking (mlm only) masks whole words (a token and its "##"
	// pieces) rather than single sub-words; default false.
	WholeWordMasking bool `yaml:"whole_word_masking" json:"whole_word_masking,omitempty"`
	// Holdout carves a dev and/or test split out of the train data of a
	// task that has none (BIOSSES: one file, no official split). Optional.
	Holdout *HoldoutConfig `yaml:"holdout" json:"holdout,omitempty"`
}

// HoldoutConfig splits a task's train documents (ner; a CoNLL sentence is
// a document) or pairs deterministically: the items read from the train
// paths are shuffled with Seed, the first round(Test·n) go to test, the
// next round(Dev·n) to dev (at least one each when the fraction is
// positive) and the rest, in file order, stay in train. Each held-out
// split keeps the file order too. Dev and Test are in [0, 1) with
// 0 < Dev+Test < 1; a positive fraction is refused when the task has its
// own paths for that split. The held-out splits report the train paths;
// their read statistics count only documents and spans.
type HoldoutConfig struct {
	// Dev and Test are the fractions held out; default 0.
	Dev  float64 `yaml:"dev" json:"dev"`
	Test float64 `yaml:"test" json:"test"`
	// Seed of the shuffle; default 1.
	Seed int64 `yaml:"seed" json:"seed"`
}

// TrainingConfig holds the optimisation settings; every field is optional.
type TrainingConfig struct {
	// Epochs over the largest task; default 3, at least 1.
	Epochs int `yaml:"epochs" json:"epochs"`
	// Steps, when set, is the number of optimiser steps to train for
	// instead of a number of epochs (the usual way to size pretraining);
	// not together with epochs.
	Steps int `yaml:"steps" json:"steps,omitempty"`
	// Accumulate is the number of batches whose gradients each optimiser
	// step sums (gradient accumulation, for large effective batches);
	// default 1. The loss is the mean over all their targets, so
	// accumulate × batch_size behaves as one batch of that size.
	Accumulate int `yaml:"accumulate" json:"accumulate"`
	// Optimizer is adam (default, the paper's) or adamw.
	Optimizer string `yaml:"optimizer" json:"optimizer"`
	// LR is the peak learning rate; default 5e-5 (the paper's), > 0.
	LR float64 `yaml:"lr" json:"lr"`
	// WeightDecay; default 0, >= 0.
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"`
	// WarmupSteps of linear warm-up; default 0.
	WarmupSteps int `yaml:"warmup_steps" json:"warmup_steps"`
	// Schedule after warm-up: constant (default, the paper's) or linear
	// (decay to 0 at the last step).
	Schedule string `yaml:"schedule" json:"schedule"`
	// ClipNorm is the global gradient-norm clip; 0 (default) means none.
	ClipNorm float64 `yaml:"clip_norm" json:"clip_norm"`
	// Seed of initialisation, dropout and shuffling; default 1.
	Seed int64 `yaml:"seed" json:"seed"`
	// Dropout probability of the encoder and heads; default 0.1, in [0,1).
	Dropout float64 `yaml:"dropout" json:"dropout"`
	// EvalEvery evaluates on dev every this many steps; 0 (default) means
	// at the end of every epoch.
	EvalEvery int `yaml:"eval_every" json:"eval_every"`
	// BestMetric picks the checkpoint kept as best: "mean" (default: the
	// mean over tasks of each task's main metric) or a task name (that
	// task's main metric).
	BestMetric string `yaml:"best_metric" json:"best_metric"`
}

// ConfigError is an error about one field of a config file.
type ConfigError struct {
	// File is the config file.
	File string
	// Field is the field's path, e.g. "tasks[1].format".
	Field string
	// Err says what is wrong.
	Err error
}

// Error renders "file: field: message".
func (e *ConfigError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Field, e.Err)
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads a config file strictly: unknown keys, repeated keys,
// values of the wrong type, missing required fields, unknown enum values,
// repeated task names and paths that do not exist are each a
// *ConfigError naming the field (e.g. `tasks[1].format: unknown format
// "conl" (want conll, brat, ...)`). Defaults are then filled as documented
// on the fields.
//
// Relative task paths resolve against dataRoot when it is not empty, else
// against the data_root key (relative to the config file's folder), else
// against the config file's folder. Encoder paths resolve against the
// config file's folder.
func LoadConfig(path, dataRoot string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(data, path, dataRoot, false)
}

// LoadDataConfig is LoadConfig for reading a config's data with another vocabulary (mtbert
// data -vocab): an encoder.pretrained folder that does not exist is not an error but sets
// PretrainedMissing, and the encoder's sizes are then BERT-base's, so that a config such as
// examples/mt-clinical-bert.yaml can be checked against its data before the model is
// downloaded.
func LoadDataConfig(path, dataRoot string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(data, path, dataRoot, true)
}

// ParseConfig is LoadConfig on the bytes of a file named path (used for
// messages and to resolve relative paths).
func ParseConfig(data []byte, path, dataRoot string) (*Config, error) {
	return parseConfig(data, path, dataRoot, false)
}

func parseConfig(data []byte, path, dataRoot string, dataOnly bool) (*Config, error) {
	fail := func(field string, format string, a ...any) error {
		return &ConfigError{File: path, Field: field, Err: fmt.Errorf(format, a...)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fail("", "empty config")
		}
		return nil, fail("", "%v", err)
	}
	if len(doc.Content) != 1 {
		return nil, fail("", "empty config")
	}
	present := map[string]bool{}
	if err := checkNode(doc.Content[0], reflect.TypeFor[Config](), "", present); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	cfg := &Config{dataOnly: dataOnly}
	// The walk above checked every key; decoding again with KnownFields is
	// a second guard.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(cfg); err != nil {
		return nil, fail("", "%v", err)
	}
	cfg.Path = path
	if err := cfg.finish(path, dataRoot, present); err != nil {
		return nil, err
	}
	return cfg, nil
}

// yamlFields returns the yaml keys of a struct type and their field index.
func yamlFields(t reflect.Type) (map[string]int, []string) {
	m := map[string]int{}
	var names []string
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = i
		names = append(names, tag)
	}
	return m, names
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// checkNode checks node n against type t: mappings against struct fields
// (unknown and repeated keys), sequences of structs element by element,
// and every other value by decoding it into a fresh t. It records the
// paths of the keys present (null values count as absent).
func checkNode(n *yaml.Node, t reflect.Type, path string, present map[string]bool) error {
	fail := func(format string, a ...any) error {
		return &ConfigError{Field: path, Err: fmt.Errorf(format, a...)}
	}
	if n.Kind == yaml.AliasNode {
		return fail("line %d: aliases are not supported", n.Line)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(unmarshalerType):
		if n.Kind != yaml.MappingNode {
			return fail("line %d: want a mapping of %s, got %s", n.Line, strings.Join(sortedKeys(t), ", "), nodeKind(n))
		}
		fields, names := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			fi, ok := fields[k.Value]
			if !ok {
				return &ConfigError{Field: sub, Err: fmt.Errorf("line %d: unknown field (want one of %s)", k.Line, strings.Join(names, ", "))}
			}
			if l, dup := seen[k.Value]; dup {
				return &ConfigError{Field: sub, Err: fmt.Errorf("line %d: repeated (first at line %d)", k.Line, l)}
			}
			seen[k.Value] = k.Line
			if v.Tag == "!!null" {
				continue
			}
			present[sub] = true
			if err := checkNode(v, t.Field(fi).Type, sub, present); err != nil {
				return err
			}
		}
		return nil
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			return fail("line %d: want a list, got %s", n.Line, nodeKind(n))
		}
		for i, e := range n.Content {
			if err := checkNode(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), present); err != nil {
				return err
			}
		}
		return nil
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n  ")
		msg = strings.ReplaceAll(msg, "\n  ", "; ")
		return fail("%s", msg)
	}
	return nil
}

func sortedKeys(t reflect.Type) []string {
	_, names := yamlFields(t)
	sort.Strings(names)
	return names
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "nothing"
}

// resolve joins a relative path to base.
func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

// finish resolves paths, checks values and fills defaults.
func (c *Config) finish(path, dataRoot string, present map[string]bool) error {
	fail := func(field string, format string, a ...any) error {
		return &ConfigError{File: path, Field: field, Err: fmt.Errorf(format, a...)}
	}
	dir := filepath.Dir(path)
	switch {
	case dataRoot != "":
		c.DataRoot = dataRoot
	case c.DataRoot != "":
		c.DataRoot = resolve(dir, c.DataRoot)
	default:
		c.DataRoot = dir
	}
	if fi, err := os.Stat(c.DataRoot); err != nil {
		return fail("data_root", "%v", err)
	} else if !fi.IsDir() {
		return fail("data_root", "%s is not a folder", c.DataRoot)
	}

	// Encoder.
	e := &c.Encoder
	if !present["encoder"] {
		return fail("encoder", "required (pretrained: a Hugging Face BERT folder, or vocab: a vocab.txt)")
	}
	sizes := []struct {
		key string
		v   *int
		def int
	}{{"layers", &e.Layers, 12}, {"hidden", &e.Hidden, 768}, {"heads", &e.Heads, 12}, {"intermediate", &e.Intermediate, 3072}, {"max_position", &e.MaxPosition, 512}}
	switch {
	case e.Pretrained != "" && e.Vocab != "":
		return fail("encoder.vocab", "set together with encoder.pretrained (give one: the folder has its own vocab.txt)")
	case e.Pretrained != "":
		for _, s := range sizes {
			if present["encoder."+s.key] {
				return fail("encoder."+s.key, "not allowed with encoder.pretrained (the sizes come from its config.json)")
			}
		}
		e.Pretrained = resolve(dir, e.Pretrained)
		if _, err := os.Stat(filepath.Join(e.Pretrained, "vocab.txt")); err != nil {
			if c.dataOnly && errors.Is(err, os.ErrNotExist) {
				c.PretrainedMissing = true
				for _, s := range sizes {
					*s.v = s.def
				}
				break
			}
			return fail("encoder.pretrained", "%v", err)
		}
		bc, err := bert.LoadConfig(filepath.Join(e.Pretrained, "config.json"))
		if err != nil {
			return fail("encoder.pretrained", "%v", err)
		}
		if bc.Quantization != "" {
			return fail("encoder.pretrained", "%s is a %s checkpoint (mtbert quantize), for inference only: train from the float checkpoint", e.Pretrained, bc.Quantization)
		}
		e.Layers, e.Hidden, e.Heads, e.Intermediate, e.MaxPosition = bc.NumHiddenLayers, bc.HiddenSize, bc.NumAttentionHeads, bc.IntermediateSize, bc.MaxPositionEmbeddings
	case e.Vocab != "":
		e.Vocab = resolve(dir, e.Vocab)
		if fi, err := os.Stat(e.Vocab); err != nil {
			return fail("encoder.vocab", "%v", err)
		} else if fi.IsDir() {
			return fail("encoder.vocab", "%s is a folder, want a vocab.txt file (use encoder.pretrained for a model folder)", e.Vocab)
		}
		for _, s := range sizes {
			if !present["encoder."+s.key] {
				*s.v = s.def
			} else if *s.v <= 0 {
				return fail("encoder."+s.key, "%d, must be positive", *s.v)
			}
		}
		if e.Hidden%e.Heads != 0 {
			return fail("encoder.hidden", "%d is not a multiple of encoder.heads %d", e.Hidden, e.Heads)
		}
	default:
		return fail("encoder", "need pretrained (a Hugging Face BERT folder) or vocab (a vocab.txt)")
	}

	// Tasks.
	if len(c.Tasks) == 0 {
		return fail("tasks", "need at least one task")
	}
	names := map[string]int{}
	for i := range c.Tasks {
		if err := c.finishTask(i, path, present, names); err != nil {
			return err
		}
	}

	// Training.
	tr := &c.Training
	def := func(key string, set func()) {
		if !present["training."+key] {
			set()
		}
	}
	if present["training.steps"] {
		if present["training.epochs"] {
			return fail("training.steps", "set together with training.epochs (give one)")
		}
		if tr.Steps < 1 {
			return fail("training.steps", "%d, must be at least 1", tr.Steps)
		}
		tr.Epochs = math.MaxInt32 // steps end the run
	} else {
		def("epochs", func() { tr.Epochs = 3 })
	}
	def("accumulate", func() { tr.Accumulate = 1 })
	def("optimizer", func() { tr.Optimizer = "adam" })
	def("lr", func() { tr.LR = 5e-5 })
	def("schedule", func() { tr.Schedule = "constant" })
	def("seed", func() { tr.Seed = 1 })
	def("dropout", func() { tr.Dropout = 0.1 })
	def("best_metric", func() { tr.BestMetric = "mean" })
	switch {
	case tr.Epochs < 1:
		return fail("training.epochs", "%d, must be at least 1", tr.Epochs)
	case tr.Accumulate < 1:
		return fail("training.accumulate", "%d, must be at least 1", tr.Accumulate)
	case tr.Optimizer != "adam" && tr.Optimizer != "adamw":
		return fail("training.optimizer", "unknown optimizer %q (want adam or adamw)", tr.Optimizer)
	case !(tr.LR > 0):
		return fail("training.lr", "%g, must be positive", tr.LR)
	case tr.WeightDecay < 0:
		return fail("training.weight_decay", "%g, must not be negative", tr.WeightDecay)
	case tr.WarmupSteps < 0:
		return fail("training.warmup_steps", "%d, must not be negative", tr.WarmupSteps)
	case tr.Schedule != "constant" && tr.Schedule != "linear":
		return fail("training.schedule", "unknown schedule %q (want constant or linear)", tr.Schedule)
	case tr.ClipNorm < 0:
		return fail("training.clip_norm", "%g, must not be negative (0 means no clipping)", tr.ClipNorm)
	case tr.Dropout < 0 || tr.Dropout >= 1:
		return fail("training.dropout", "%g, must be in [0, 1)", tr.Dropout)
	case tr.EvalEvery < 0:
		return fail("training.eval_every", "%d, must not be negative (0 means every epoch)", tr.EvalEvery)
	}
	if _, ok := names[tr.BestMetric]; tr.BestMetric != "mean" && !ok {
		return fail("training.best_metric", "%q is neither mean nor a task name", tr.BestMetric)
	}
	return nil
}

// taskCheck carries what the steps of finishTask share: the task, its field path
// ("tasks[i]") and the keys present in the file.
type taskCheck struct {
	c       *Config
	t       *TaskConfig
	p       string // "tasks[i]"
	file    string
	present map[string]bool
}

// fail returns a *ConfigError about field of the task.
func (k *taskCheck) fail(field string, format string, a ...any) error {
	return &ConfigError{File: k.file, Field: k.p + "." + field, Err: fmt.Errorf(format, a...)}
}

// has reports whether the task's key is present in the file.
func (k *taskCheck) has(key string) bool { return k.present[k.p+"."+key] }

// finishTask checks task i and fills its defaults, in named steps: identity (required keys,
// name, kind and format), paths, keys that only some kinds take, holdout, sizes, and the
// labels and alignment settings of its kind.
func (c *Config) finishTask(i int, path string, present map[string]bool, names map[string]int) error {
	k := &taskCheck{c: c, t: &c.Tasks[i], p: fmt.Sprintf("tasks[%d]", i), file: path, present: present}
	for _, step := range []func() error{
		func() error { return k.checkIdentity(i, names) },
		k.resolvePaths,
		k.checkKindKeys,
		k.finishHoldout,
		k.finishSizes,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	if !k.t.Kind.ReadsSpans() {
		return k.checkClasses()
	}
	return k.finishNER()
}

// checkIdentity checks the required keys, the name (valid, unique: names records it) and that
// the format is known and serves the kind.
func (k *taskCheck) checkIdentity(i int, names map[string]int) error {
	t := k.t
	for _, key := range []string{"name", "kind", "format", "train"} {
		if !k.has(key) {
			return k.fail(key, "required")
		}
	}
	if err := mtl.CheckTaskName(t.Name); err != nil {
		return k.fail("name", "%v", err)
	}
	if j, dup := names[t.Name]; dup {
		return k.fail("name", "duplicate task name %q (also tasks[%d])", t.Name, j)
	}
	names[t.Name] = i
	if !t.Kind.Valid() {
		return k.fail("kind", "unknown kind %q (want ner, pair-classification, classification, regression or mlm)", t.Kind)
	}
	var kinds []mtl.Kind
	var formats []string
	for _, f := range formatKinds {
		formats = append(formats, f.format)
		if f.format == t.Format {
			kinds = f.kinds
		}
	}
	if kinds == nil {
		return k.fail("format", "unknown format %q (want %s)", t.Format, strings.Join(formats, ", "))
	}
	if !slices.Contains(kinds, t.Kind) {
		return k.fail("format", "format %s does not serve kind %s (it serves %v)", t.Format, t.Kind, kinds)
	}
	return nil
}

// resolvePaths resolves the split paths and the sts score files against the data root and
// checks that they exist.
func (k *taskCheck) resolvePaths() error {
	t, root := k.t, k.c.DataRoot
	for _, s := range []struct {
		key   string
		paths Paths
	}{{"train", t.Train}, {"dev", t.Dev}, {"test", t.Test}} {
		if k.has(s.key) && len(s.paths) == 0 {
			return k.fail(s.key, "empty list of paths")
		}
		for j, q := range s.paths {
			if q == "" {
				return k.fail(s.key, "empty path")
			}
			s.paths[j] = resolve(root, q)
			if _, err := os.Stat(s.paths[j]); err != nil {
				return k.fail(s.key, "%v", err)
			}
		}
	}
	for _, s := range []struct {
		key   string
		v     *string
		split Paths
	}{{"train_scores", &t.TrainScores, t.Train}, {"dev_scores", &t.DevScores, t.Dev}, {"test_scores", &t.TestScores, t.Test}} {
		if *s.v == "" {
			continue
		}
		if t.Format != FormatSTS {
			return k.fail(s.key, "only for format sts")
		}
		if len(s.split) != 1 {
			return k.fail(s.key, "needs exactly one %s path, have %d", strings.TrimSuffix(s.key, "_scores"), len(s.split))
		}
		*s.v = resolve(root, *s.v)
		if _, err := os.Stat(*s.v); err != nil {
			return k.fail(s.key, "%v", err)
		}
	}
	return nil
}

// checkKindKeys refuses the keys the task's kind does not take.
func (k *taskCheck) checkKindKeys() error {
	kind := k.t.Kind
	ner := kind.ReadsSpans()
	if kind.PerToken() && k.has("use_pooler") {
		return k.fail("use_pooler", "only for sentence tasks (pair-classification, classification, regression)")
	}
	if !kind.MaskedLM() && k.has("whole_word_masking") {
		return k.fail("whole_word_masking", "only for mlm tasks")
	}
	if kind.MaskedLM() && k.has("labels") {
		return k.fail("labels", "not for mlm tasks")
	}
	if !ner {
		for _, key := range []string{"stride", "scheme", "label_all_subwords", "overlap"} {
			if k.has(key) {
				return k.fail(key, "only for ner tasks")
			}
		}
		if !k.t.Kind.Labeled() && k.has("labels") {
			return k.fail("labels", "not for %s tasks", k.t.Kind)
		}
	}
	return nil
}

// finishHoldout checks the holdout fractions and fills its seed.
func (k *taskCheck) finishHoldout() error {
	if !k.has("holdout") {
		return nil
	}
	t, h := k.t, k.t.Holdout
	for _, f := range []struct {
		key   string
		v     float64
		paths Paths
	}{{"dev", h.Dev, t.Dev}, {"test", h.Test, t.Test}} {
		switch {
		case !(f.v >= 0 && f.v < 1):
			return k.fail("holdout."+f.key, "%g out of range [0, 1)", f.v)
		case f.v > 0 && len(f.paths) > 0:
			return k.fail("holdout."+f.key, "the task has its own %s paths", f.key)
		}
	}
	if !(h.Dev+h.Test > 0 && h.Dev+h.Test < 1) {
		return k.fail("holdout", "dev + test = %g, must be in (0, 1)", h.Dev+h.Test)
	}
	if !k.has("holdout.seed") {
		h.Seed = 1
	}
	return nil
}

// finishSizes fills and checks batch_size and max_length (against the encoder's positions).
func (k *taskCheck) finishSizes() error {
	t, maxPos := k.t, k.c.Encoder.MaxPosition
	if !k.has("batch_size") {
		t.BatchSize = t.Kind.DefaultBatchSize()
	}
	if !k.has("max_length") {
		t.MaxLength = t.Kind.DefaultMaxLength()
	}
	if t.BatchSize < 1 {
		return k.fail("batch_size", "%d, must be at least 1", t.BatchSize)
	}
	if !k.has("max_length") && t.MaxLength > maxPos {
		return k.fail("max_length", "max_length %d (the default for %s tasks) exceeds the encoder's %d positions (encoder.max_position); set %s.max_length to at most %d",
			t.MaxLength, t.Kind, maxPos, k.p, maxPos)
	}
	if t.MaxLength < 3 || t.MaxLength > maxPos {
		return k.fail("max_length", "%d out of range [3, %d] (encoder.max_position)", t.MaxLength, maxPos)
	}
	return nil
}

// checkClasses checks the fixed classes of a sentence task, when given.
func (k *taskCheck) checkClasses() error {
	t := k.t
	if k.has("labels") {
		if _, err := mtl.NewLabels(t.Labels); err != nil || len(t.Labels) < 2 {
			return k.fail("labels", "want at least 2 distinct non-empty classes, have %q", t.Labels)
		}
	}
	return nil
}

// finishNER fills and checks the alignment settings of an ner task (stride, scheme, overlap)
// and its fixed labels, when given.
func (k *taskCheck) finishNER() error {
	t := k.t
	if !k.has("stride") {
		t.Stride = mtl.DefaultStride(t.MaxLength)
	}
	if t.Stride < 1 || t.Stride > t.MaxLength-2 {
		return k.fail("stride", "%d out of range [1, %d] (max_length - 2)", t.Stride, t.MaxLength-2)
	}
	if !k.has("scheme") {
		t.Scheme = "BILOU"
	}
	sch, err := mtl.ParseScheme(t.Scheme)
	if err != nil {
		return k.fail("scheme", "unknown scheme %q (want BIO or BILOU)", t.Scheme)
	}
	t.Scheme = sch.String()
	if !k.has("overlap") {
		t.Overlap = corpus.KeepLongest.String()
	}
	if _, err := corpus.ParseOverlapPolicy(t.Overlap); err != nil {
		return k.fail("overlap", "unknown overlap policy %q (want keep-longest, keep-first or drop-both)", t.Overlap)
	}
	if k.has("labels") {
		if err := checkNERLabels(t.Labels, sch); err != nil {
			return k.fail("labels", "%v", err)
		}
	}
	return nil
}

// checkNERLabels checks a fixed NER label list: distinct, "O" present,
// every other label P-TYPE with P a prefix of the scheme, and every type
// with all its prefixes.
func checkNERLabels(names []string, sch corpus.Scheme) error {
	l, err := mtl.NewLabels(names)
	if err != nil {
		return err
	}
	if _, ok := l.Index("O"); !ok {
		return fmt.Errorf(`no "O" label`)
	}
	prefixes := "BI"
	if sch == corpus.BILOU {
		prefixes = "BILU"
	}
	types := map[string]bool{}
	for _, n := range names {
		if n == "O" {
			continue
		}
		if len(n) < 3 || n[1] != '-' || !strings.ContainsRune(prefixes, rune(n[0])) {
			return fmt.Errorf("label %q is not O or P-TYPE with P in %s", n, prefixes)
		}
		types[n[2:]] = true
	}
	for ty := range types {
		if err := l.CheckType(sch, ty); err != nil {
			return fmt.Errorf("type %s: %v", ty, err)
		}
	}
	return nil
}

// AlignOptions returns the alignment options of an ner task (its scheme,
// sub-word labelling, max length, stride and overlap policy).
func (t *TaskConfig) AlignOptions() (mtl.AlignOptions, error) {
	sch, err := mtl.ParseScheme(t.Scheme)
	if err != nil {
		return mtl.AlignOptions{}, fmt.Errorf("task %s: %w", t.Name, err)
	}
	pol, err := corpus.ParseOverlapPolicy(t.Overlap)
	if err != nil {
		return mtl.AlignOptions{}, fmt.Errorf("task %s: %w", t.Name, err)
	}
	return mtl.AlignOptions{Scheme: sch, LabelAllSubwords: t.LabelAllSubwords, MaxLen: t.MaxLength, Stride: t.Stride, Overlap: pol}, nil
}

// Tokenizer returns the encoder's tokenizer: from encoder.pretrained's
// folder (LoadTokenizer: tokenizer_config.json, else bert.DefaultLowerCase)
// or encoder.vocab, lowercasing as encoder.lower_case says when it is set
// (see EncoderConfig.LowerCase).
func (c *Config) Tokenizer() (*bert.Tokenizer, error) {
	e := c.Encoder
	vocab := e.Vocab
	if e.Pretrained != "" {
		if e.LowerCase == nil {
			return bert.LoadTokenizer(e.Pretrained, bert.DefaultLowerCase)
		}
		vocab = filepath.Join(e.Pretrained, "vocab.txt")
	}
	return TokenizerFromVocab(vocab, e.LowerCase)
}

// TokenizerFromVocab returns a tokenizer over a vocab.txt, lowercasing when
// lower is nil (bert.DefaultLowerCase) or true.
func TokenizerFromVocab(vocab string, lower *bool) (*bert.Tokenizer, error) {
	v, err := bert.LoadVocab(vocab)
	if err != nil {
		return nil, err
	}
	lc := bert.DefaultLowerCase
	if lower != nil {
		lc = *lower
	}
	return bert.NewTokenizer(v, bert.TokenizerOptions{LowerCase: lc}), nil
}

// Split names, in the order splits are read.
const (
	SplitTrain = "train"
	SplitDev   = "dev"
	SplitTest  = "test"
)

// SplitData is one split of a task as read.
type SplitData struct {
	// Split is train, dev or test.
	Split string
	// Paths are the resolved paths read.
	Paths []string
	// Docs are the documents (ner tasks); Pairs the pairs (others).
	Docs  []corpus.Document
	Pairs []corpus.Pair
	// Read sums the readers' stats (ner tasks).
	Read corpus.ReadStats
}

// LoadedTask is a task with its splits read.
type LoadedTask struct {
	// Task is the task's config.
	Task *TaskConfig
	// Splits are the splits the task names, in the order train, dev, test.
	Splits []SplitData
}

// Split returns the named split, or nil.
func (l *LoadedTask) Split(name string) *SplitData {
	for i := range l.Splits {
		if l.Splits[i].Split == name {
			return &l.Splits[i]
		}
	}
	return nil
}

// SplitPaths names one split and its paths.
type SplitPaths struct {
	Name  string
	Paths Paths
}

// Splits returns the task's splits that are set, in the order train, dev,
// test. A split held out of train (TaskConfig.Holdout) has the train paths.
func (t *TaskConfig) Splits() []SplitPaths {
	var out []SplitPaths
	for _, s := range []SplitPaths{{SplitTrain, t.Train}, {SplitDev, t.Dev}, {SplitTest, t.Test}} {
		if len(s.Paths) == 0 && t.heldOut(s.Name) {
			s.Paths = t.Train
		}
		if len(s.Paths) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// heldOut reports whether split is carved out of train by t.Holdout.
func (t *TaskConfig) heldOut(split string) bool {
	h := t.Holdout
	return h != nil && (split == SplitDev && h.Dev > 0 && len(t.Dev) == 0 || split == SplitTest && h.Test > 0 && len(t.Test) == 0)
}

// holdoutParts assigns each of n items to a split (see HoldoutConfig).
func (h *HoldoutConfig) holdoutParts(n int) ([]string, error) {
	count := func(f float64) int {
		if f <= 0 {
			return 0
		}
		return max(1, int(math.Round(f*float64(n))))
	}
	nTest, nDev := count(h.Test), count(h.Dev)
	if nTest+nDev >= n {
		return nil, fmt.Errorf("holdout of %d test and %d dev items leaves no train items out of %d", nTest, nDev, n)
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = SplitTrain
	}
	perm := rand.New(rand.NewPCG(uint64(h.Seed), 0x686f6c646f7574)).Perm(n)
	for k, i := range perm[:nTest+nDev] {
		parts[i] = SplitTest
		if k >= nTest {
			parts[i] = SplitDev
		}
	}
	return parts, nil
}

// ReadSplit reads one split of the task with the reader of its format,
// concatenating its paths in order; with a holdout, train and the held-out
// splits are the parts of the train paths' items. Errors name the task and
// split.
func (t *TaskConfig) ReadSplit(split string) (SplitData, error) {
	if t.Holdout == nil || split != SplitTrain && !t.heldOut(split) {
		return t.readSplit(split)
	}
	all, err := t.readSplit(SplitTrain)
	if err != nil {
		return all, err
	}
	parts, err := t.Holdout.holdoutParts(len(all.Docs) + len(all.Pairs))
	if err != nil {
		return SplitData{}, fmt.Errorf("task %s, %s: %w", t.Name, split, err)
	}
	sd := SplitData{Split: split, Paths: all.Paths}
	if len(all.Docs) > 0 {
		sd.Read.SkippedTags = all.Read.SkippedTags
		for i, d := range all.Docs {
			if parts[i] == split {
				sd.Docs = append(sd.Docs, d)
				sd.Read.Spans += len(d.Spans)
			}
		}
		sd.Read.Documents = len(sd.Docs)
	}
	for i, p := range all.Pairs {
		if parts[i] == split {
			sd.Pairs = append(sd.Pairs, p)
		}
	}
	return sd, nil
}

func (t *TaskConfig) readSplit(split string) (SplitData, error) {
	var paths Paths
	scores := ""
	switch split {
	case SplitTrain:
		paths, scores = t.Train, t.TrainScores
	case SplitDev:
		paths, scores = t.Dev, t.DevScores
	case SplitTest:
		paths, scores = t.Test, t.TestScores
	default:
		return SplitData{}, fmt.Errorf("task %s: unknown split %q", t.Name, split)
	}
	sd := SplitData{Split: split, Paths: paths}
	for _, p := range paths {
		var (
			docs  []corpus.Document
			pairs []corpus.Pair
			st    corpus.ReadStats
			err   error
		)
		switch t.Format {
		case FormatCoNLL:
			docs, st, err = corpus.ReadCoNLL(p)
		case FormatBrat:
			docs, st, err = corpus.ReadBrat(p)
		case FormatI2B22010:
			txt, con := p, p
			if isDir(filepath.Join(p, "txt")) {
				txt = filepath.Join(p, "txt")
				con = filepath.Join(p, "concept")
				if !isDir(con) && isDir(filepath.Join(p, "concepts")) {
					con = filepath.Join(p, "concepts")
				}
			}
			docs, st, err = corpus.ReadI2B2Con(txt, con)
		case FormatI2B22012:
			docs, st, err = corpus.ReadI2B2XML(p, corpus.I2B2Events)
		case FormatI2B22014:
			docs, st, err = corpus.ReadI2B2XML(p, corpus.I2B2PHI)
		case FormatMedNLI:
			pairs, err = corpus.ReadMedNLI(p)
		case FormatMedRQE:
			pairs, err = corpus.ReadMedRQE(p)
		case FormatSTS:
			pairs, err = corpus.ReadSTS(p, scores)
		case FormatSTSB:
			pairs, err = corpus.ReadSTSB(p)
		case FormatBIOSSES:
			pairs, err = corpus.ReadBIOSSES(p)
		case FormatText:
			var ts corpus.TextStats
			docs, ts, err = corpus.ReadText(p, 0)
			st = corpus.ReadStats{Documents: len(docs), Text: ts}
		default:
			err = fmt.Errorf("unknown format %q", t.Format)
		}
		if err != nil {
			return sd, fmt.Errorf("task %s, %s: %w", t.Name, split, err)
		}
		if len(docs) == 0 && len(pairs) == 0 {
			return sd, fmt.Errorf("task %s, %s: %s: %s", t.Name, split, p, emptyWhat(p, t.Format))
		}
		sd.Docs = append(sd.Docs, docs...)
		sd.Pairs = append(sd.Pairs, pairs...)
		sd.Read.Add(st)
	}
	return sd, nil
}

// emptyWhat says why a path of a split gave nothing: an empty split is an error, so that it is
// named here and not found later as a label set too small or a task without examples.
func emptyWhat(p, format string) string {
	what := "documents"
	switch format {
	case FormatMedNLI, FormatMedRQE, FormatSTS, FormatSTSB, FormatBIOSSES:
		what = "pairs"
	case FormatCoNLL:
		what = "sentences"
	}
	fi, err := os.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Sprintf("no %s: the folder holds no files of format %s", what, format)
	case err == nil && fi.Size() == 0:
		return fmt.Sprintf("no %s: the file is empty", what)
	}
	return fmt.Sprintf("no %s in the file", what)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// Load reads every split of task i.
func (c *Config) Load(i int) (*LoadedTask, error) {
	if i < 0 || i >= len(c.Tasks) {
		return nil, fmt.Errorf("mtl: task %d of %d", i, len(c.Tasks))
	}
	t := &c.Tasks[i]
	lt := &LoadedTask{Task: t}
	for _, s := range t.Splits() {
		sd, err := t.ReadSplit(s.Name)
		if err != nil {
			return nil, err
		}
		lt.Splits = append(lt.Splits, sd)
	}
	return lt, nil
}

// LoadAll reads every split of every task, in config order.
func (c *Config) LoadAll() ([]*LoadedTask, error) {
	out := make([]*LoadedTask, len(c.Tasks))
	for i := range c.Tasks {
		lt, err := c.Load(i)
		if err != nil {
			return nil, err
		}
		out[i] = lt
	}
	return out, nil
}

// LabelSet returns the task's label set: the config's labels when given,
// else for ner SchemeLabels over the entity types of every split read, and
// for classification the sorted classes of every split. Regression tasks
// have none (nil).
func (l *LoadedTask) LabelSet() (*mtl.Labels, error) {
	t := l.Task
	if !t.Kind.Labeled() {
		return nil, nil
	}
	if len(t.Labels) > 0 {
		return mtl.NewLabels(t.Labels)
	}
	if t.Kind.ReadsSpans() {
		types := map[string]bool{}
		for _, s := range l.Splits {
			for ty := range corpus.CountTypes(s.Docs) {
				types[ty] = true
			}
		}
		sch, err := mtl.ParseScheme(t.Scheme)
		if err != nil {
			return nil, err
		}
		return mtl.SchemeLabels(sch, slices.Sorted(maps.Keys(types))), nil
	}
	classes := map[string]bool{}
	for _, s := range l.Splits {
		for _, p := range s.Pairs {
			classes[p.Label] = true
		}
	}
	return mtl.NewLabels(slices.Sorted(maps.Keys(classes)))
}
