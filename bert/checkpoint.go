package bert

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtbert/mtbert/nn"
)

// Checkpoint file names inside a Hugging Face model directory.
const (
	ConfigFile      = "config.json"
	SafetensorsFile = "model.safetensors"
	TorchBinFile    = "pytorch_model.bin"
	VocabFile       = "vocab.txt"
)

// ReadWeights reads the tensors of a Hugging Face model directory: model.safetensors when
// present, else pytorch_model.bin (read without executing anything, see ReadTorchBin).
func ReadWeights(dir string) (map[string]nn.SafeTensor, string, error) {
	st := filepath.Join(dir, SafetensorsFile)
	if _, err := os.Stat(st); err == nil {
		f, err := nn.LoadSafetensors(st)
		if err != nil {
			return nil, st, err
		}
		return f.Tensors, st, nil
	}
	bin := filepath.Join(dir, TorchBinFile)
	if _, err := os.Stat(bin); err == nil {
		t, err := ReadTorchBin(bin)
		return t, bin, err
	}
	return nil, dir, fmt.Errorf("%s: no %s or %s", dir, SafetensorsFile, TorchBinFile)
}

// canonicalName maps a checkpoint key to BertModel's name, or "" for a key BertModel does not
// hold: the "bert." prefix of BertFor* checkpoints is dropped, old TensorFlow-era LayerNorm
// names (gamma, beta) are renamed as transformers renames them, and cls.*, other heads and the
// position_ids buffer are ignored.
func canonicalName(k string) string {
	k = strings.TrimPrefix(k, "bert.")
	if !strings.HasPrefix(k, "embeddings.") && !strings.HasPrefix(k, "encoder.") && !strings.HasPrefix(k, "pooler.") {
		return ""
	}
	if strings.HasSuffix(k, "position_ids") {
		return ""
	}
	if strings.HasSuffix(k, "LayerNorm.gamma") {
		k = strings.TrimSuffix(k, "gamma") + "weight"
	} else if strings.HasSuffix(k, "LayerNorm.beta") {
		k = strings.TrimSuffix(k, "beta") + "bias"
	}
	return k
}

// Load builds a model from a Hugging Face BERT directory (config.json plus model.safetensors
// or pytorch_model.bin). The pooler is built when the checkpoint has one; an MLM head is not
// (see LoadMaskedLM).
func Load(dir string) (*Model, error) {
	m, canon, src, err := load(dir, canonicalName)
	if err != nil {
		return nil, err
	}
	if err := m.SetWeights(canon, src); err != nil {
		return nil, err
	}
	return m, nil
}

// load reads dir's config and tensors, renames the tensors with canonical (dropping those it
// maps to ""), and builds the model (with a pooler when the checkpoint has one) without
// setting its weights.
func load(dir string, canonical func(string) string) (*Model, map[string]nn.SafeTensor, string, error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, nil, "", err
	}
	tensors, src, err := ReadWeights(dir)
	if err != nil {
		return nil, nil, "", err
	}
	canon := map[string]nn.SafeTensor{}
	for k, t := range tensors {
		if c := canonical(k); c != "" {
			if _, dup := canon[c]; dup {
				return nil, nil, "", fmt.Errorf("%s: tensor %q appears twice (with and without the bert. prefix)", src, c)
			}
			canon[c] = t
		}
	}
	_, pooler := canon["pooler.dense.weight"]
	m, err := New(cfg, 0, pooler)
	if err != nil {
		return nil, nil, "", err
	}
	return m, canon, src, nil
}

// SetWeights copies tensors (BertModel names) into the model's parameters, converting F16 and
// BF16 to float32. Every parameter must be present with its exact shape; the error names the
// key and both shapes. Extra tensors are ignored.
func (m *Model) SetWeights(tensors map[string]nn.SafeTensor, source string) error {
	return m.Params.SetFrom(tensors, source)
}

// StateDict returns the parameters as float32 tensors under BertModel names (copies).
func (m *Model) StateDict() map[string]nn.SafeTensor { return m.Params.StateDict() }

// Save writes dir as a Hugging Face BERT directory (config.json, model.safetensors with
// BertModel names, vocab.txt) that transformers.BertModel.from_pretrained loads unchanged. A
// model with an MLM head is written in BertForMaskedLM's layout instead ("bert." prefix plus
// cls.predictions.*), which BertForMaskedLM and BertModel both load.
// The files are written into a fresh temporary directory beside dir which then replaces dir,
// so an interrupted save never leaves a half-written checkpoint.
func (m *Model) Save(dir string, vocab *Vocab) error {
	return WriteDirAtomic(dir, func(tmp string) error { return m.WriteFiles(tmp, vocab) })
}

// WriteFiles writes the files of Save (config.json, model.safetensors and, when vocab is not
// nil, vocab.txt) into the existing folder dir, directly: callers that add files of their own
// write the whole folder through WriteDirAtomic, as Save does.
func (m *Model) WriteFiles(dir string, vocab *Vocab) error {
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), m.configJSON(), 0o644); err != nil {
		return err
	}
	if err := nn.SaveSafetensors(filepath.Join(dir, SafetensorsFile), m.saveStateDict(), map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if vocab != nil {
		return vocab.Save(filepath.Join(dir, VocabFile))
	}
	return nil
}

// WriteFileAtomic writes path through write into a temporary file beside it, readable by all
// (0644: os.CreateTemp makes 0600), synced, then renamed over path; on any error path is left
// as it was and the temporary is removed.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteDirAtomic fills a new temporary directory beside dir with fill, then moves it to dir,
// replacing what was there. On any error dir is left as it was and the temporary is removed.
func WriteDirAtomic(dir string, fill func(tmp string) error) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	var old string
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		os.RemoveAll(tmp)
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}
