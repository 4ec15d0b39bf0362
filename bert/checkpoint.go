package bert

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"unsafe"

	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// Checkpoint file names inside a Hugging Face model directory.
const (
	ConfigFile      = "config.json"
	SafetensorsFile = "model.safetensors"
	TorchBinFile    = "pytorch_model.bin"
	VocabFile       = "vocab.txt"
)

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
	m, canon, src, err := load(dir, canonicalName, false, 0)
	if err != nil {
		return nil, err
	}
	if err := m.SetWeights(canon, src); err != nil {
		return nil, err
	}
	return m, nil
}

// TorchBinMargin is what a pytorch_model.bin load may allocate beyond twice the float32 bytes
// of the model its config describes (each storage read once plus each needed tensor
// materialised once).
const TorchBinMargin = 1 << 20

// load reads dir's config (validated, so its size is within MaxModelBytes before anything is
// built), builds the model (with a pooler when the checkpoint has one, and with an MLM head
// drawn from mlmSeed when mlm is set) and returns it with the checkpoint tensors it needs,
// renamed with canonical, without setting its weights. Keys canonical maps to "" and keys
// the model has no parameter for are never read; a needed tensor's shape is checked against
// the model's before it is read. A pytorch_model.bin is read within a budget of twice the
// model's float32 bytes plus TorchBinMargin, so a small file whose views expand (zero strides,
// overlapping or repeated views of one storage) fails with an error instead of allocating.
func load(dir string, canonical func(string) string, mlm bool, mlmSeed uint64) (_ *Model, _ map[string]nn.SafeTensor, _ string, err error) {
	cfg, err := LoadConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, nil, "", err
	}
	var (
		names []string
		shape func(name string) ([]int, bool)
		get   func(name string) (nn.SafeTensor, error)
		src   string
	)
	var mapped *nn.Mapping
	if st := filepath.Join(dir, SafetensorsFile); fileExists(st) {
		var f *nn.SafeFile
		if cfg.Quantization == Int8 {
			// An int8 model only runs inference: its word-embedding table can stay in the
			// file's pages, resident only where a batch reads it (SetWeights).
			f, mapped, err = nn.MapSafetensors(st)
			defer func() {
				if err != nil {
					mapped.Close()
				}
			}()
		} else {
			f, err = nn.LoadSafetensors(st)
		}
		if err != nil {
			return nil, nil, "", err
		}
		src = st
		for k := range f.Tensors {
			names = append(names, k)
		}
		shape = func(k string) ([]int, bool) { t, ok := f.Tensors[k]; return t.Shape, ok }
		get = func(k string) (nn.SafeTensor, error) { return f.Tensors[k], nil }
	} else if bin := filepath.Join(dir, TorchBinFile); fileExists(bin) {
		fh, err := os.Open(bin)
		if err != nil {
			return nil, nil, "", err
		}
		defer fh.Close()
		fi, err := fh.Stat()
		if err != nil {
			return nil, nil, "", err
		}
		tb, err := OpenTorchBin(fh, fi.Size())
		if err != nil {
			return nil, nil, "", fmt.Errorf("%s: %w", bin, err)
		}
		tb.Budget = int64(2*cfg.ParamBytes()) + TorchBinMargin
		src = bin
		names, shape = tb.Names(), tb.Shape
		get = func(k string) (nn.SafeTensor, error) {
			t, err := tb.Tensor(k)
			if err != nil {
				return t, fmt.Errorf("%s: %w", bin, err)
			}
			return t, nil
		}
	} else {
		return nil, nil, "", fmt.Errorf("%s: no %s or %s", dir, SafetensorsFile, TorchBinFile)
	}
	keys := map[string]string{} // canonical name -> checkpoint key
	for _, k := range names {
		if c := canonical(k); c != "" {
			if _, dup := keys[c]; dup {
				return nil, nil, "", fmt.Errorf("%s: tensor %q appears twice (with and without the bert. prefix)", src, c)
			}
			keys[c] = k
		}
	}
	_, pooler := keys["pooler.dense.weight"]
	m, err := New(cfg, 0, pooler)
	if err != nil {
		return nil, nil, "", err
	}
	if mlm {
		if _, err := m.AddMLMHead(mlmSeed); err != nil {
			return nil, nil, "", err
		}
	}
	m.pendingMap = mapped
	canon := map[string]nn.SafeTensor{}
	if cfg.Quantization == Int8 {
		if err := m.readInt8(keys, shape, get, src, canon); err != nil {
			return nil, nil, "", err
		}
	}
	for _, p := range m.Params.List() {
		k, ok := keys[p.Name]
		if !ok {
			continue // SetWeights names it (or LoadMaskedLM initialises it)
		}
		if s, _ := shape(k); !slices.Equal(s, p.Shape()) {
			return nil, nil, "", fmt.Errorf("%s: tensor %q has shape %v, the model expects %v", src, k, s, p.Shape())
		}
		t, err := get(k)
		if err != nil {
			return nil, nil, "", err
		}
		canon[p.Name] = t
	}
	return m, canon, src, nil
}

// readInt8 reads the int8 weights and scales of every encoder linear layer of an int8
// checkpoint (keys maps canonical names to checkpoint keys) into m.pendingInt8, and gives each
// layer's (0, in) float weight an empty tensor in canon.
func (m *Model) readInt8(keys map[string]string, shape func(string) ([]int, bool), get func(string) (nn.SafeTensor, error), src string, canon map[string]nn.SafeTensor) error {
	m.pendingInt8 = nil
	for _, l := range m.Linears() {
		in, out := l.W.Shape()[1], l.B.Shape()[0]
		wn, sn := int8Names(l)
		if in >= kernels.MaxQuantizedK {
			return fmt.Errorf("%s: int8 layer %q has %d inputs, more than the int8 kernels sum exactly (%d)", src, wn, in, kernels.MaxQuantizedK-1)
		}
		wk, ok1 := keys[wn]
		sk, ok2 := keys[sn]
		if !ok1 || !ok2 {
			return fmt.Errorf("%s: int8 checkpoint (mtbert_quantization) without %q and %q", src, wn, sn)
		}
		if s, _ := shape(wk); !slices.Equal(s, []int{out, in}) {
			return fmt.Errorf("%s: tensor %q has shape %v, the model expects %v", src, wk, s, []int{out, in})
		}
		if s, _ := shape(sk); !slices.Equal(s, []int{out}) {
			return fmt.Errorf("%s: tensor %q has shape %v, the model expects %v", src, sk, s, []int{out})
		}
		wt, err := get(wk)
		if err != nil {
			return err
		}
		st, err := get(sk)
		if err != nil {
			return err
		}
		q, err := wt.Int8()
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", src, wk, err)
		}
		scale, err := st.Float32()
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", src, sk, err)
		}
		for j, v := range q {
			if v == -128 {
				return fmt.Errorf("%s: tensor %q: value -128 at %d (int8 weights are in [-127, 127])", src, wk, j)
			}
		}
		for j, s := range scale {
			if !(s >= 0) || math.IsInf(float64(s), 0) {
				return fmt.Errorf("%s: tensor %q: scale %v at %d (want finite, >= 0)", src, sk, s, j)
			}
		}
		m.pendingInt8 = append(m.pendingInt8, kernels.NewQuantizedB(q, scale, out, in))
		canon[l.W.Name] = nn.SafeTensor{DType: kernels.F32, Shape: []int{0, in}}
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// SetWeights copies tensors (BertModel names) into the model's parameters, converting F16 and
// BF16 to float32. Every parameter must be present with its exact shape; the error names the
// key and both shapes. Extra tensors are ignored.
func (m *Model) SetWeights(tensors map[string]nn.SafeTensor, source string) error {
	if err := m.Params.SetFrom(tensors, source); err != nil {
		if m.pendingMap != nil {
			m.pendingMap.Close()
			m.pendingMap = nil
		}
		return err
	}
	if m.pendingInt8 != nil {
		for i, l := range m.Linears() {
			l.SetQuantized(m.pendingInt8[i])
		}
		m.pendingInt8 = nil
	}
	if mp := m.pendingMap; mp != nil {
		m.pendingMap = nil
		m.mapWordEmbeddings(tensors[m.Word.W.Name], mp)
	}
	return nil
}

// mapWordEmbeddings makes the word-embedding table of an int8 model read its rows from the
// mapped checkpoint t (the tensor SetWeights just copied) instead of the copy, so that only the
// pages of the rows a batch uses are resident; the loader's reads of every other page are
// then evicted. The mapping lives as long as the table's storage. Where t cannot be read in
// place (not float32, not 4-byte aligned, a big-endian host), the copy stays and the mapping
// is closed.
func (m *Model) mapWordEmbeddings(t nn.SafeTensor, mp *nn.Mapping) {
	w := m.Word.W
	n := w.Value.Len()
	if t.DType != kernels.F32 || len(t.Data) != 4*n || n == 0 || !littleEndian ||
		uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))%4 != 0 {
		mp.Close()
		return
	}
	view := tensor.FromSlice(unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(t.Data))), n), w.Shape()...)
	runtime.AddCleanup(view.Storage(), func(mp *nn.Mapping) { mp.Close() }, mp)
	w.Value = view
	// Lookups read rows from the file (pread), not through the mapping, whose faults would map
	// the cached pages around each row; the source holds the storage, so the mapping and the
	// file stay open while it is in use.
	if rows, err := mp.Rows(t, view.Storage()); err == nil {
		m.Word.Rows = rows
	}
	mp.Evict()
	m.wordMapped = true
	debug.FreeOSMemory() // the copy SetWeights made
}

// WordEmbeddingsMapped reports whether the word-embedding table reads from the mapped
// checkpoint (an int8 model loaded from model.safetensors; see Load).
func (m *Model) WordEmbeddingsMapped() bool { return m.wordMapped }

// littleEndian reports whether the host stores float32 as safetensors does.
var littleEndian = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()

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
	sd, err := m.saveStateDict()
	if err != nil {
		return err
	}
	if err := nn.SaveSafetensors(filepath.Join(dir, SafetensorsFile), sd, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if vocab != nil {
		return vocab.Save(filepath.Join(dir, VocabFile))
	}
	return nil
}

// WriteFileAtomic writes path through write into a temporary file beside it
// (.NAME.tmp-RANDOM), readable by all (0644: os.CreateTemp makes 0600), synced, then renamed
// over path, and the folder synced, so that after a crash path holds either its old or its new
// content, never a mix or nothing. On any error path is left as it was and the temporary is
// removed; a temporary left by a crash is removed by RemoveStaleTemps.
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
	crashPoint("file: temporary written and synced")
	if err = os.Rename(f.Name(), path); err != nil {
		return err
	}
	crashPoint("file: renamed into place")
	return syncDir(filepath.Dir(path))
}

// syncDir fsyncs a folder, making the renames and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncTree fsyncs every file of the folder dir, then dir itself.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// Names of the temporaries of WriteDirAtomic beside a folder NAME: .NAME.tmp-X while it is
// filled, .NAME.new-X once complete and synced, .NAME.old-X for the folder it replaces.
const (
	tmpTag = ".tmp-"
	newTag = ".new-"
	oldTag = ".old-"
)

// WriteDirAtomic fills a new temporary folder beside dir with fill, then moves it to dir,
// replacing what was there, so that a crash at any point leaves either the old or the new
// folder, complete, or a state RecoverDir restores one of them from:
//
//  1. fill .NAME.tmp-X (0755), fsync its files and itself;
//  2. rename it to .NAME.new-X (complete), fsync the parent;
//  3. rename dir to .NAME.old-X, rename .NAME.new-X to dir, fsync the parent;
//  4. remove .NAME.old-X.
//
// It starts with RecoverDir, so a swap a crash left half-done is finished first. On any
// error dir is left as it was and the temporary is removed.
func WriteDirAtomic(dir string, fill func(tmp string) error) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	if err := RecoverDir(dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+tmpTag)
	if err != nil {
		return err
	}
	suffix := strings.TrimPrefix(filepath.Base(tmp), "."+base+tmpTag)
	ready := filepath.Join(parent, "."+base+newTag+suffix)
	fail := func(err error) error {
		os.RemoveAll(tmp)
		os.RemoveAll(ready)
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes 0700; the files are 0644
		return fail(err)
	}
	if err := fill(tmp); err != nil {
		return fail(err)
	}
	if err := syncTree(tmp); err != nil {
		return fail(err)
	}
	crashPoint("folder: temporary filled and synced")
	if err := os.Rename(tmp, ready); err != nil {
		return fail(err)
	}
	if err := syncDir(parent); err != nil {
		return fail(err)
	}
	crashPoint("folder: temporary marked complete")
	var old string
	if _, err := os.Lstat(dir); err == nil {
		old = filepath.Join(parent, "."+base+oldTag+suffix)
		if err := os.Rename(dir, old); err != nil {
			return fail(err)
		}
		crashPoint("folder: old moved aside")
	}
	if err := os.Rename(ready, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return fail(err)
	}
	if err := syncDir(parent); err != nil {
		return err
	}
	crashPoint("folder: new renamed into place")
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return err
		}
		crashPoint("folder: old removed")
	}
	return nil
}

// RecoverDir finishes or undoes a WriteDirAtomic of dir that a crash interrupted: when dir is
// missing, the complete new folder (.NAME.new-X) or else the old one (.NAME.old-X) is renamed
// back to dir; then every temporary of dir is removed (an unfinished .NAME.tmp-X, a
// superseded .NAME.new-X or .NAME.old-X). A missing parent folder is not an error.
func RecoverDir(dir string) error {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var news, olds, temps []string
	for _, e := range entries {
		n := e.Name()
		switch {
		case strings.HasPrefix(n, "."+base+newTag):
			news = append(news, n)
		case strings.HasPrefix(n, "."+base+oldTag):
			olds = append(olds, n)
		case strings.HasPrefix(n, "."+base+tmpTag):
			temps = append(temps, n)
		default:
			continue
		}
	}
	if len(news)+len(olds)+len(temps) == 0 {
		return nil
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		// One writer at a time leaves at most one of each; prefer the newer content.
		var from string
		if len(news) > 0 {
			from, news = news[len(news)-1], news[:len(news)-1]
		} else if len(olds) > 0 {
			from, olds = olds[len(olds)-1], olds[:len(olds)-1]
		}
		if from != "" {
			if err := os.Rename(filepath.Join(parent, from), dir); err != nil {
				return err
			}
		}
	}
	for _, n := range append(append(news, olds...), temps...) {
		if err := os.RemoveAll(filepath.Join(parent, n)); err != nil {
			return err
		}
	}
	return syncDir(parent)
}

// RemoveStaleTemps removes the temporaries a crash may have left of WriteFileAtomic(path)
// (.NAME.tmp-X beside path).
func RemoveStaleTemps(path string) error {
	parent, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "."+base+tmpTag) {
			if err := os.RemoveAll(filepath.Join(parent, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
