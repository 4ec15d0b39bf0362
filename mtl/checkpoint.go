package mtl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/nn"
)

// Files of a multitask checkpoint directory beyond a Hugging Face BERT's own.
const (
	HeadsFile        = "heads.safetensors"
	TasksFile        = "tasks.json"
	TokenizerConfig  = "tokenizer_config.json"
	TrainerTensors   = "trainer.safetensors"
	TrainerStateFile = "trainer.json"
	ChecksumsFile    = "checksums.json"
)

// trainerFile is the JSON part of the trainer state.
type trainerFile struct {
	State TrainState `json:"state"`
	Seed  uint64     `json:"seed"`
	// Steps is each parameter's Adam step count, by name.
	Steps map[string]int `json:"adam_steps"`
}

// SaveCheckpoint writes a multitask checkpoint to dir: the encoder as a Hugging Face BERT
// directory (config.json, model.safetensors, vocab.txt, tokenizer_config.json), the heads
// (heads.safetensors, tasks.json) and, when tr is not nil, the trainer state (optimiser moments
// and steps, position, dropout counters) for -resume. Every file's sha256 goes to
// checksums.json. The directory is written beside dir and renamed into place.
func SaveCheckpoint(dir string, m *Model, tok *bert.Tokenizer, tr *Trainer) error {
	return bert.WriteDirAtomic(dir, func(tmp string) error {
		var vocab *bert.Vocab
		if tok != nil {
			vocab = tok.Vocab()
		}
		if err := m.Encoder.WriteFiles(tmp, vocab); err != nil {
			return err
		}
		if tok != nil {
			tc, _ := json.Marshal(map[string]any{"do_lower_case": tok.LowerCase(), "tokenizer_class": "BertTokenizer"})
			if err := os.WriteFile(filepath.Join(tmp, TokenizerConfig), append(tc, '\n'), 0o644); err != nil {
				return err
			}
		}
		if err := nn.SaveSafetensors(filepath.Join(tmp, HeadsFile), m.HeadParams.StateDict(), nil); err != nil {
			return err
		}
		if err := WriteJSON(filepath.Join(tmp, TasksFile), m.Specs()); err != nil {
			return err
		}
		if tr != nil {
			if err := saveTrainer(tmp, tr); err != nil {
				return err
			}
		}
		return WriteChecksums(tmp)
	})
}

func saveTrainer(dir string, tr *Trainer) error {
	tr.SyncState()
	moments := map[string]nn.SafeTensor{}
	steps := map[string]int{}
	for i, p := range tr.Opt.Params() {
		mv, vv, step := tr.Opt.State(i)
		if mv == nil {
			continue
		}
		moments["m."+p.Name] = nn.F32Tensor(append([]int(nil), p.Shape()...), mv)
		moments["v."+p.Name] = nn.F32Tensor(append([]int(nil), p.Shape()...), vv)
		steps[p.Name] = step
	}
	if err := nn.SaveSafetensors(filepath.Join(dir, TrainerTensors), moments, nil); err != nil {
		return err
	}
	return WriteJSON(filepath.Join(dir, TrainerStateFile), trainerFile{State: tr.State, Seed: tr.Seed, Steps: steps})
}

// WriteJSON writes v to path as indented JSON with a final newline.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// WriteChecksums writes checksums.json: the sha256 of every other file of the checkpoint
// folder dir (after a tool has rewritten one of them, for example).
func WriteChecksums(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	sums := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || e.Name() == ChecksumsFile {
			continue
		}
		s, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		sums[e.Name()] = s
	}
	return WriteJSON(filepath.Join(dir, ChecksumsFile), sums)
}

// VerifyChecksums checks every file listed in dir/checksums.json; a missing or altered file
// is an error naming it.
func VerifyChecksums(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, ChecksumsFile))
	if err != nil {
		return fmt.Errorf("%s: %w (not a multitask checkpoint?)", dir, err)
	}
	var sums map[string]string
	if err := json.Unmarshal(raw, &sums); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, ChecksumsFile), err)
	}
	names := make([]string, 0, len(sums))
	for n := range sums {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		got, err := fileSHA256(filepath.Join(dir, filepath.Base(n)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		if got != sums[n] {
			errs = append(errs, fmt.Errorf("%s: checksum mismatch (file corrupted or changed since it was saved)", filepath.Join(dir, n)))
		}
	}
	return errors.Join(errs...)
}

// LoadCheckpoint reads a multitask checkpoint written by SaveCheckpoint, verifying checksums.
// lowerDefault applies when the directory has no tokenizer_config.json.
func LoadCheckpoint(dir string, lowerDefault bool) (*Model, *bert.Tokenizer, error) {
	if err := VerifyChecksums(dir); err != nil {
		return nil, nil, err
	}
	var specs []TaskSpec
	raw, err := os.ReadFile(filepath.Join(dir, TasksFile))
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(raw, &specs); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, TasksFile), err)
	}
	// The heads' sizes come from tasks.json: checked with the encoder's against the limit
	// before either is built.
	cfg, err := bert.LoadConfig(filepath.Join(dir, bert.ConfigFile))
	if err != nil {
		return nil, nil, err
	}
	if err := checkHeadSizes(specs, cfg); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, TasksFile), err)
	}
	var enc *bert.Model
	if slices.ContainsFunc(specs, func(s TaskSpec) bool { return s.Kind.MaskedLM() }) {
		enc, _, err = bert.LoadMaskedLM(dir, 0)
	} else {
		enc, err = bert.Load(dir)
	}
	if err != nil {
		return nil, nil, err
	}
	tok, err := bert.LoadTokenizer(dir, lowerDefault)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewModel(enc, specs, 0, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, TasksFile), err)
	}
	if err := m.loadHeads(dir); err != nil {
		return nil, nil, err
	}
	return m, tok, nil
}

// maxTasks bounds the tasks of a checkpoint.
const maxTasks = 1024

// checkHeadSizes checks the heads that specs describe, with the encoder of cfg, against
// bert.MaxModelBytes: a hostile tasks.json with millions of labels is an error naming the
// task, not an allocation.
func checkHeadSizes(specs []TaskSpec, cfg bert.Config) error {
	if len(specs) > maxTasks {
		return fmt.Errorf("%d tasks, more than %d", len(specs), maxTasks)
	}
	total := cfg.ParamBytes()
	h := float64(cfg.HiddenSize)
	for _, s := range specs {
		total += 4 * (h + 1) * float64(s.Outputs())
		if total > float64(bert.MaxModelBytes) {
			return fmt.Errorf("task %q has %d labels: with the encoder the model takes %.4g bytes of float32 parameters, more than the limit of %d bytes (raise it with -max-model-bytes)",
				s.Name, s.Outputs(), total, bert.MaxModelBytes)
		}
	}
	return nil
}

// loadHeads copies dir/heads.safetensors into the heads.
func (m *Model) loadHeads(dir string) error {
	path := filepath.Join(dir, HeadsFile)
	hf, err := nn.LoadSafetensors(path)
	if err != nil {
		return err
	}
	return m.HeadParams.SetFrom(hf.Tensors, path)
}

// LoadWeights copies a checkpoint's encoder and head weights into m, whose tasks and encoder
// configuration must match it (for -resume: the model is rebuilt from the run's config, with
// its seeds, and then takes the saved weights).
func (m *Model) LoadWeights(dir string) error {
	if err := VerifyChecksums(dir); err != nil {
		return err
	}
	path := filepath.Join(dir, bert.SafetensorsFile)
	f, err := nn.LoadSafetensors(path)
	if err != nil {
		return err
	}
	canon := make(map[string]nn.SafeTensor, len(f.Tensors))
	for k, t := range f.Tensors {
		if c := bert.CanonicalKey(k); c != "" {
			canon[c] = t
		}
	}
	if err := m.Encoder.Params.SetFrom(canon, path); err != nil {
		return err
	}
	return m.loadHeads(dir)
}

// LoadTrainerState restores the optimiser moments and the position saved in dir into tr,
// whose model must already hold the checkpoint's weights.
func LoadTrainerState(dir string, tr *Trainer) error {
	raw, err := os.ReadFile(filepath.Join(dir, TrainerStateFile))
	if err != nil {
		return fmt.Errorf("%w (the checkpoint has no trainer state to resume from)", err)
	}
	var tf trainerFile
	if err := json.Unmarshal(raw, &tf); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, TrainerStateFile), err)
	}
	mf, err := nn.LoadSafetensors(filepath.Join(dir, TrainerTensors))
	if err != nil {
		return err
	}
	for i, p := range tr.Opt.Params() {
		step, ok := tf.Steps[p.Name]
		if !ok {
			continue
		}
		if step < 0 {
			return fmt.Errorf("%s: adam_steps[%q] = %d, must not be negative", filepath.Join(dir, TrainerStateFile), p.Name, step)
		}
		mt, ok1 := mf.Tensors["m."+p.Name]
		vt, ok2 := mf.Tensors["v."+p.Name]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: moments of %q missing", filepath.Join(dir, TrainerTensors), p.Name)
		}
		mv, err1 := mt.Float32()
		vv, err2 := vt.Float32()
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%s: %q: %w", filepath.Join(dir, TrainerTensors), p.Name, err)
		}
		if err := tr.Opt.SetState(i, mv, vv, step); err != nil {
			return err
		}
	}
	if tf.Seed != tr.Seed {
		return fmt.Errorf("%s: saved with seed %d, the run has seed %d", filepath.Join(dir, TrainerStateFile), tf.Seed, tr.Seed)
	}
	if err := tr.RestoreState(tf.State); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, TrainerStateFile), err)
	}
	return nil
}
