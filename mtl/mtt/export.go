package mtt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/nn"
)

// headClass returns the reference's head class for a task spec, or an error saying why the
// reference has none.
func headClass(s mtl.TaskSpec) (string, error) {
	switch {
	case s.Kind == mtl.NER:
		return SubwordClassificationHead, nil
	case s.UsePooler:
		return "", fmt.Errorf("task %s reads the pooler output (use_pooler); the reference's CLS heads read the raw [CLS] hidden state", s.Name)
	case s.Kind == mtl.PairClassification || s.Kind == mtl.Classification:
		return CLSClassificationHead, nil
	case s.Kind == mtl.Regression:
		return CLSRegressionHead, nil
	}
	return "", fmt.Errorf("task %s is %s, which has no head class in the reference layout", s.Name, s.Kind)
}

// bertModelKey reports whether an encoder parameter belongs to BertModel's state dict (not
// to an MLM head).
func bertModelKey(k string) bool {
	return strings.HasPrefix(k, "embeddings.") || strings.HasPrefix(k, "encoder.") || strings.HasPrefix(k, "pooler.")
}

// Export writes m and tok to dir (which must not exist, as MultiTaskingBert.save_checkpoint
// requires) in the reference's layout: config.json, vocab.txt, pytorch_model.bin (BertModel's
// state dict in torch's zip format, in BertModel's parameter order), a tokenizer_config.json
// with the tokenizer's casing, and per task {HeadClass}_{task}.json (as
// TransformerHeadConfig.to_json_file writes it; hidden_dropout_prob is the encoder's) and
// {HeadClass}_{task}.pt (classifier.weight and .bias). An mlm task is skipped (the
// reference's MaskedLMHead is not in the released layout), with a note; a task that reads
// the pooler is an error.
func Export(dir string, m *mtl.Model, tok *bert.Tokenizer) (*Report, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, fmt.Errorf("%s already exists (the reference refuses to save a checkpoint over an existing folder)", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	cfg := m.Encoder.Cfg
	rep := &Report{Dir: dir, Format: bert.TorchBinFile + ", zip", LowerCase: tok.LowerCase(), Casing: "from the model's tokenizer, written to " + mtl.TokenizerConfig,
		Encoder: fmt.Sprintf("BertModel, %d layers, hidden %d, %d heads, vocabulary %d, %d positions",
			cfg.NumHiddenLayers, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.VocabSize, cfg.MaxPositionEmbeddings)}
	if !tok.LowerCase() {
		rep.Notes = append(rep.Notes, "the model tokenises cased, the reference's code lower-cases: its predictions there will differ")
	}
	type headOut struct {
		class string
		spec  mtl.TaskSpec
	}
	var heads []headOut
	for _, h := range m.Heads {
		if h.Spec.Kind == mtl.MLM {
			rep.Notes = append(rep.Notes, fmt.Sprintf("task %s (mlm) is not exported: its prediction head is not part of the reference layout", h.Spec.Name))
			continue
		}
		class, err := headClass(h.Spec)
		if err != nil {
			return nil, err
		}
		heads = append(heads, headOut{class, h.Spec})
	}
	err := bert.WriteDirAtomic(dir, func(tmp string) error {
		if err := os.WriteFile(filepath.Join(tmp, bert.ConfigFile), cfg.JSON(), 0o644); err != nil {
			return err
		}
		if err := tok.Vocab().Save(filepath.Join(tmp, bert.VocabFile)); err != nil {
			return err
		}
		tc, err := pyJSON(map[string]any{"do_lower_case": tok.LowerCase(), "tokenizer_class": "BertTokenizer"})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, mtl.TokenizerConfig), tc, 0o644); err != nil {
			return err
		}
		sd := m.Encoder.StateDict()
		var names []string
		for _, p := range m.Encoder.Params.List() {
			if bertModelKey(p.Name) {
				names = append(names, p.Name)
			} else {
				delete(sd, p.Name)
			}
		}
		if err := bert.SaveTorchZip(filepath.Join(tmp, bert.TorchBinFile), names, sd); err != nil {
			return err
		}
		hp := m.HeadParams.StateDict()
		for _, h := range heads {
			base := h.class + "_" + strings.ReplaceAll(h.spec.Name, " ", "_")
			var labels any
			if h.spec.Kind != mtl.Regression {
				labels = h.spec.Labels
			}
			conf := map[string]any{
				"head_name":           h.class,
				"head_task":           h.spec.Name,
				"labels":              labels,
				"hidden_size":         cfg.HiddenSize,
				"hidden_dropout_prob": cfg.HiddenDropoutProb,
			}
			if h.class == SubwordClassificationHead {
				conf["evaluate_biluo"] = false
			}
			js, err := pyJSON(conf)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(tmp, base+".json"), js, 0o644); err != nil {
				return err
			}
			tensors := map[string]nn.SafeTensor{weightKey: hp[h.spec.Name+".weight"], biasKey: hp[h.spec.Name+".bias"]}
			if err := bert.SaveTorchZip(filepath.Join(tmp, base+".pt"), []string{weightKey, biasKey}, tensors); err != nil {
				return err
			}
			rep.Tasks = append(rep.Tasks, TaskReport{Task: h.spec.Name, Class: h.class, Kind: h.spec.Kind, Labels: h.spec.Labels, Weights: base + ".pt", Format: "zip"})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}
