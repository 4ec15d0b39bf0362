package bert

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Regression tests for loading a model directory someone else made (issue 14, items 1 and 2):
// hostile pytorch_model.bin files stay within a budget derived from config.json, and
// config.json sizes are checked before anything is built.

// tinyHostileConfig is a BERT of 1 layer, width 4 and 10 tokens: about 2 kB of parameters.
func tinyHostileConfig() Config {
	c := DefaultConfig()
	c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads = 10, 4, 1, 1
	c.IntermediateSize, c.MaxPositionEmbeddings, c.TypeVocabSize = 8, 8, 2
	return c
}

// binEntry is one tensor of a hostile state dict: a view of storage key (numel float32
// elements).
type binEntry struct {
	name, key    string
	numel        int
	offset       int
	size, stride []int
}

// statePickle is the pickle of a state dict of entries, as torch 1.13 writes it.
func statePickle(entries []binEntry) []byte {
	tup := func(v []int) string {
		s := "("
		for _, x := range v {
			s += "J" + string(binary.LittleEndian.AppendUint32(nil, uint32(x)))
		}
		return s + "t"
	}
	var b strings.Builder
	b.WriteString("\x80\x02ccollections\nOrderedDict\n)R(")
	for _, e := range entries {
		b.WriteString(uni(e.name) + "ctorch._utils\n_rebuild_tensor_v2\n((" + uni("storage") + "ctorch\nFloatStorage\n" +
			uni(e.key) + uni("cpu") + "J" + string(binary.LittleEndian.AppendUint32(nil, uint32(e.numel))) + "tQ" +
			"J" + string(binary.LittleEndian.AppendUint32(nil, uint32(e.offset))) + tup(e.size) + tup(e.stride) +
			"\x89ccollections\nOrderedDict\n)RtR")
	}
	b.WriteString("u.")
	return []byte(b.String())
}

// hostileDir writes config.json (the tiny config) and a pytorch_model.bin of entries over
// the given storages.
func hostileDir(t *testing.T, entries []binEntry, storages map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), tinyHostileConfig().JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TorchBinFile), buildZip(t, statePickle(entries), storages), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// allocDuring returns the bytes allocated while f runs.
func allocDuring(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// modelEntries gives every parameter of the tiny model (with a pooler) as a view of storage
// "0" with the given strides of zero: a well-shaped but expanded checkpoint.
func modelEntries(t *testing.T) []binEntry {
	t.Helper()
	m, err := New(tinyHostileConfig(), 0, true)
	if err != nil {
		t.Fatal(err)
	}
	var out []binEntry
	for _, p := range m.Params.List() {
		s := p.Shape()
		out = append(out, binEntry{name: "bert." + p.Name, key: "0", numel: 1, size: s, stride: make([]int, len(s))})
	}
	return out
}

func TestLoadTorchBinHostileViewsBounded(t *testing.T) {
	one := f32le(0.5)
	tests := []struct {
		name     string
		entries  []binEntry
		storages map[string][]byte
		err      string // "" for a load that must succeed
		bound    uint64 // bytes the load may allocate
	}{
		{
			// 16 zero-stride views of one 4-byte storage, 16 MiB each, under keys the
			// model does not hold: nothing of them may be read.
			name: "unneeded zero-stride views",
			entries: func() []binEntry {
				es := modelEntries(t)
				for i := range 16 {
					es = append(es, binEntry{name: fmt.Sprintf("cls.hostile.%d", i), key: "0", numel: 1, size: []int{2048, 2048}, stride: []int{0, 0}})
				}
				return es
			}(),
			storages: map[string][]byte{"0": one},
			bound:    4 << 20,
		},
		{
			// 2,000 overlapping views of one 256 kB storage (each the whole storage, from
			// a sliding offset) under keys the model does not hold.
			name: "thousands of views of one storage",
			entries: func() []binEntry {
				es := modelEntries(t)
				for i := range 2000 {
					es = append(es, binEntry{name: fmt.Sprintf("encoder.layer.0.extra.%d", i), key: "1", numel: 1 << 16, offset: i % 1536, size: []int{64, 1000}, stride: []int{1000, 1}})
				}
				return es
			}(),
			storages: map[string][]byte{"0": one, "1": make([]byte, 4<<16)},
			bound:    8 << 20,
		},
		{
			// A needed key whose zero-stride view is far larger than the config says:
			// refused by the shape check, before anything is read.
			name: "needed key expanded past its shape",
			entries: func() []binEntry {
				es := modelEntries(t)
				es[0].size, es[0].stride = []int{1 << 14, 1 << 12}, []int{0, 0}
				return es
			}(),
			storages: map[string][]byte{"0": one},
			err:      `has shape [16384 4096], the model expects [10 4]`,
			bound:    2 << 20,
		},
		{
			// Every parameter a zero-stride view of one element: well-shaped, so it
			// loads, within the budget.
			name:     "well-shaped expanded views",
			entries:  modelEntries(t),
			storages: map[string][]byte{"0": one},
			bound:    2 << 20,
		},
		{
			// A needed tensor over a 16 MiB storage: the storage alone exceeds the
			// budget (twice the model's bytes plus 1 MiB), refused before it is read.
			name: "storage beyond the budget",
			entries: func() []binEntry {
				es := modelEntries(t)
				es[0].key, es[0].numel, es[0].stride = "2", 4<<20, []int{4, 1}
				return es
			}(),
			storages: map[string][]byte{"0": one, "2": make([]byte, 16<<20)},
			err:      "more than its budget",
			bound:    4 << 20,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := hostileDir(t, tc.entries, tc.storages)
			var err error
			got := allocDuring(func() { _, err = Load(dir) })
			if tc.err == "" && err != nil {
				t.Fatalf("load: %v", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("load: error %v, want one containing %q", err, tc.err)
			}
			if got > tc.bound {
				t.Errorf("load allocated %d bytes, want at most %d", got, tc.bound)
			}
		})
	}
}

func TestConfigSizeLimits(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"vocab 2^62", `{"vocab_size": 4611686018427387904, "hidden_size": 4, "num_attention_heads": 1}`, "vocab_size 4611686018427387904 is more than"},
		{"huge vocab", `{"vocab_size": 60000000, "hidden_size": 1024, "num_attention_heads": 1}`, "vocab_size 60000000 (with hidden_size 1024"},
		{"huge hidden", `{"hidden_size": 8000000, "num_attention_heads": 1}`, "more than the limit of 4294967296 bytes (raise it with -max-model-bytes)"},
		{"many layers", `{"num_hidden_layers": 10000}`, "num_hidden_layers 10000"},
		{"huge intermediate", `{"intermediate_size": 67108864}`, "num_hidden_layers 12"},
		{"huge positions", `{"max_position_embeddings": 67108864}`, "max_position_embeddings 67108864"},
	}
	for _, tc := range tests {
		if _, err := ParseConfig([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	// New refuses the same config without panicking or allocating it.
	c := DefaultConfig()
	c.VocabSize, c.HiddenSize, c.NumAttentionHeads = 1<<62, 4, 1
	if _, err := New(c, 0, false); err == nil || !strings.Contains(err.Error(), "vocab_size") {
		t.Errorf("New with vocab_size 2^62: %v", err)
	}
	// LoadConfig names the file; the limit is adjustable.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"vocab_size": 60000000, "hidden_size": 1024, "num_attention_heads": 1}`), 0o644)
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "config.json: vocab_size 60000000") {
		t.Errorf("LoadConfig: %v", err)
	}
	defer func(v int64) { MaxModelBytes = v }(MaxModelBytes)
	MaxModelBytes = 1 << 40
	if _, err := LoadConfig(dir); err != nil {
		t.Errorf("LoadConfig with a 1 TiB limit: %v", err)
	}
	// BERT-large fits the default.
	MaxModelBytes = DefaultMaxModelBytes
	c = DefaultConfig()
	c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize = 1024, 24, 16, 4096
	if err := c.Validate(); err != nil {
		t.Errorf("BERT-large: %v", err)
	}
}
