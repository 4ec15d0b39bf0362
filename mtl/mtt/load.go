package mtt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/nn"
)

// The head classes of multitasking_transformers/heads/heads.py that mtbert reads and writes.
const (
	SubwordClassificationHead = "SubwordClassificationHead"
	CLSClassificationHead     = "CLSClassificationHead"
	CLSRegressionHead         = "CLSRegressionHead"
)

// headKinds maps a head class to the kind of mtl head it is.
var headKinds = map[string]mtl.Kind{
	SubwordClassificationHead: mtl.NER,
	CLSClassificationHead:     mtl.PairClassification,
	CLSRegressionHead:         mtl.Regression,
}

// The reference's sequence lengths: predict_ner.py chunks notes into 512 sub-words, the
// sentence-pair datasets truncate pairs to 128 (both capped at the encoder's positions).
const (
	NERMaxLength  = 512
	PairMaxLength = 128
)

// Head parameter names in a head's state dict (its nn.Linear is called classifier).
const (
	weightKey = "classifier.weight"
	biasKey   = "classifier.bias"
)

// headFileRE matches a head's config file name: {HeadClass}_{task}.json.
var headFileRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*Head)_(.+)\.json$`)

// headConfig is a head's JSON (TransformerHeadConfig).
type headConfig struct {
	HeadName          string   `json:"head_name"`
	HeadTask          string   `json:"head_task"`
	Labels            []string `json:"labels"`
	HiddenSize        *int     `json:"hidden_size"`
	HiddenDropoutProb *float64 `json:"hidden_dropout_prob"`
}

// IsReleased reports whether dir holds a checkpoint in the reference's layout: a config.json,
// at least one {HeadClass}_{task}.json beside it, and no mtbert tasks.json.
func IsReleased(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, bert.ConfigFile)); err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, mtl.TasksFile)); err == nil {
		return false
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !e.IsDir() && headFileRE.MatchString(e.Name()) {
			return true
		}
	}
	return false
}

// TaskReport is one head found in a reference checkpoint (or written to one).
type TaskReport struct {
	Task   string   `json:"task"`
	Class  string   `json:"head_class"`
	Kind   mtl.Kind `json:"kind"`
	Labels []string `json:"labels,omitempty"`
	// Weights is the head's .pt file and Format its torch format ("zip" or "legacy").
	Weights string `json:"weights"`
	Format  string `json:"format"`
}

// Report says what Load found or Export wrote.
type Report struct {
	Dir     string       `json:"dir"`
	Encoder string       `json:"encoder"`
	Format  string       `json:"encoder_format"`
	Tasks   []TaskReport `json:"tasks"`
	// LowerCase is the tokenizer's casing and Casing where it came from.
	LowerCase bool     `json:"lower_case"`
	Casing    string   `json:"casing"`
	Notes     []string `json:"notes,omitempty"`
}

// Write prints the report as a few aligned lines.
func (r *Report) Write(w io.Writer) {
	fmt.Fprintf(w, "%s\n  encoder: %s (%s)\n  tokenizer: lower_case=%v (%s)\n  %d tasks:\n", r.Dir, r.Encoder, r.Format, r.LowerCase, r.Casing, len(r.Tasks))
	for _, t := range r.Tasks {
		fmt.Fprintf(w, "    %-14s %-20s %-26s %s (%s)\n", t.Task, t.Kind, t.Class, t.Weights, t.Format)
		if len(t.Labels) > 0 {
			fmt.Fprintf(w, "      %d labels: %s\n", len(t.Labels), strings.Join(t.Labels, " "))
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// torchFormat names the format of a torch.save file: "zip" or "legacy".
func torchFormat(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	var b [2]byte
	if _, err := io.ReadFull(f, b[:]); err == nil && b == [2]byte{'P', 'K'} {
		return "zip"
	}
	return "legacy"
}

// Load builds an mtl.Model and its tokenizer from a checkpoint in the reference's layout
// (see the package comment): the encoder from config.json and pytorch_model.bin (or
// model.safetensors), one head per {HeadClass}_{task}.json with its .pt, and the tokenizer
// from vocab.txt lower-cased as the reference tokenises (a tokenizer_config.json, which the
// reference never writes, is honoured). Tasks are in the order of their file names. An
// unknown head class, a config whose names disagree with its file name or whose hidden_size
// disagrees with the encoder, and a .pt with missing, extra or misshapen tensors are errors
// naming the file.
func Load(dir string) (*mtl.Model, *bert.Tokenizer, *Report, error) {
	enc, err := bert.Load(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := enc.Cfg
	rep := &Report{Dir: dir, Encoder: fmt.Sprintf("BertModel, %d layers, hidden %d, %d heads, vocabulary %d, %d positions",
		cfg.NumHiddenLayers, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.VocabSize, cfg.MaxPositionEmbeddings)}
	if bin := filepath.Join(dir, bert.TorchBinFile); fileExists(bin) && !fileExists(filepath.Join(dir, bert.SafetensorsFile)) {
		rep.Format = bert.TorchBinFile + ", " + torchFormat(bin)
	} else {
		rep.Format = bert.SafetensorsFile
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	var specs []mtl.TaskSpec
	weights := map[string]nn.SafeTensor{}
	for _, e := range entries {
		m := headFileRE.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			continue
		}
		spec, w, b, tr, err := readHead(dir, e.Name(), m[1], m[2], cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		specs = append(specs, spec)
		weights[spec.Name+".weight"], weights[spec.Name+".bias"] = w, b
		rep.Tasks = append(rep.Tasks, tr)
	}
	if len(specs) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: no {HeadClass}_{task}.json head files", dir)
	}
	model, err := mtl.NewModel(enc, specs, 0, 0)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	if err := model.HeadParams.SetFrom(weights, dir); err != nil {
		return nil, nil, nil, err
	}
	tok, err := bert.LoadTokenizer(dir, true)
	if err != nil {
		return nil, nil, nil, err
	}
	rep.LowerCase = tok.LowerCase()
	if fileExists(filepath.Join(dir, mtl.TokenizerConfig)) {
		rep.Casing = "from " + mtl.TokenizerConfig
	} else {
		rep.Casing = "as the reference tokenises: BertWordPieceTokenizer(vocab.txt, lowercase=True)"
	}
	rep.Notes = append(rep.Notes, "ner heads label [CLS], [SEP] and non-first sub-words "+mtl.ReferenceSubwordLabel+"; predicted at a word's first sub-word it reads as O")
	return model, tok, rep, nil
}

// readHead reads one head's JSON and .pt and checks them against the encoder's config.
func readHead(dir, name, class, task string, cfg bert.Config) (mtl.TaskSpec, nn.SafeTensor, nn.SafeTensor, TaskReport, error) {
	var none nn.SafeTensor
	path := filepath.Join(dir, name)
	fail := func(format string, a ...any) (mtl.TaskSpec, nn.SafeTensor, nn.SafeTensor, TaskReport, error) {
		return mtl.TaskSpec{}, none, none, TaskReport{}, fmt.Errorf("%s: "+format, append([]any{path}, a...)...)
	}
	kind, ok := headKinds[class]
	if !ok {
		known := slices.Sorted(maps.Keys(headKinds))
		return fail("unknown head class %q (mtbert reads %s)", class, strings.Join(known, ", "))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fail("%v", err)
	}
	var hc headConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&hc); err != nil {
		return fail("%v", err)
	}
	switch {
	case hc.HeadName != class:
		return fail("head_name is %q, the file name says %q", hc.HeadName, class)
	case strings.ReplaceAll(hc.HeadTask, " ", "_") != task:
		return fail("head_task is %q, the file name says %q", hc.HeadTask, task)
	case hc.HiddenSize == nil:
		return fail("no hidden_size")
	case *hc.HiddenSize != cfg.HiddenSize:
		return fail("hidden_size %d disagrees with the encoder's hidden_size %d (%s)", *hc.HiddenSize, cfg.HiddenSize, bert.ConfigFile)
	}
	spec := mtl.TaskSpec{Name: task, Kind: kind, MaxLength: min(PairMaxLength, cfg.MaxPositionEmbeddings)}
	switch kind {
	case mtl.NER:
		spec.Labels, spec.Scheme, spec.LabelAllSubwords = hc.Labels, "BILOU", true
		spec.MaxLength = min(NERMaxLength, cfg.MaxPositionEmbeddings)
	case mtl.PairClassification:
		spec.Labels = hc.Labels
	}
	if err := spec.Validate(); err != nil {
		return fail("%v", err)
	}
	pt := strings.TrimSuffix(path, ".json") + ".pt"
	tensors, err := bert.ReadTorchBin(pt)
	if err != nil {
		return fail("weights %s: %v", filepath.Base(pt), err)
	}
	shapes := map[string][]int{weightKey: {spec.Outputs(), cfg.HiddenSize}, biasKey: {spec.Outputs()}}
	var problems []string
	for _, k := range []string{weightKey, biasKey} {
		t, ok := tensors[k]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing key %q", k))
		case !slices.Equal(t.Shape, shapes[k]):
			problems = append(problems, fmt.Sprintf("%q has shape %v, want %v (%d outputs, hidden_size %d)", k, t.Shape, shapes[k], spec.Outputs(), cfg.HiddenSize))
		}
	}
	var extra []string
	for k := range tensors {
		if _, ok := shapes[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		problems = append(problems, fmt.Sprintf("unexpected keys %q (a %s holds %s and %s)", extra, class, weightKey, biasKey))
	}
	if len(problems) > 0 {
		return mtl.TaskSpec{}, none, none, TaskReport{}, fmt.Errorf("%s: %s", pt, strings.Join(problems, "; "))
	}
	tr := TaskReport{Task: task, Class: class, Kind: kind, Labels: spec.Labels, Weights: filepath.Base(pt), Format: torchFormat(pt)}
	return spec, tensors[weightKey], tensors[biasKey], tr, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Import converts the reference checkpoint in src to an mtbert checkpoint in dst
// (mtl.SaveCheckpoint: the encoder, tasks.json, heads.safetensors, tokenizer_config.json,
// checksums.json) and returns what it found.
func Import(src, dst string) (*Report, error) {
	m, tok, rep, err := Load(src)
	if err != nil {
		return nil, err
	}
	if err := mtl.SaveCheckpoint(dst, m, tok, nil); err != nil {
		return nil, err
	}
	return rep, nil
}
