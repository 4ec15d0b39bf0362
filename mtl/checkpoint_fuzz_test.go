package mtl_test

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/train"
)

// rssMB returns the process's resident set in MiB from /proc (0 where it is absent).
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// FuzzLoadCheckpoint loads whole model directories built from a saved fixture checkpoint
// (with trainer state) whose config.json, weights, tasks.json and trainer.json are the fuzzed
// inputs; the weights go in as model.safetensors or, with the flag's low bit, as
// pytorch_model.bin (seeded with bert's hostile and golden .bin files). The checksums are
// rewritten so that loading gets past them. Each directory is loaded as serve and predict
// do (LoadCheckpoint) and as -resume does (LoadWeights and LoadTrainerState into the fixture's
// prepared run), under a model budget of 64 MiB (bert.MaxModelBytes), a soft memory limit of
// 1 GiB (debug.SetMemoryLimit) and two checks per input: no panic, and a load that allocates
// in all at most 4 × the budget + 8 × its input + 32 MiB, with the process's RSS under 1.5 GiB.
func FuzzLoadCheckpoint(f *testing.F) {
	r := fixture.Prepare(f, func(c *train.Config) { c.Training.Epochs = 1 })
	seed := filepath.Join(f.TempDir(), "ckpt")
	if err := mtl.SaveCheckpoint(seed, r.Model, r.Tokenizer, r.Trainer); err != nil {
		f.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(seed, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	fixed := map[string][]byte{}
	for _, n := range []string{bert.VocabFile, mtl.HeadsFile, mtl.TokenizerConfig, mtl.TrainerTensors} {
		fixed[n] = read(n)
	}
	cfg, weights, tasks, state := read(bert.ConfigFile), read(bert.SafetensorsFile), read(mtl.TasksFile), read(mtl.TrainerStateFile)
	f.Add(cfg, weights, tasks, state, uint8(0))
	for _, bin := range []string{"golden.bin", "hostile.bin", "hostile_stack.bin", "legacy_hostile.bin"} {
		if b, err := os.ReadFile(filepath.Join("..", "bert", "testdata", "torchbin", bin)); err == nil {
			f.Add(cfg, b, tasks, state, uint8(1))
		}
	}
	old := bert.MaxModelBytes
	bert.MaxModelBytes = 64 << 20
	oldLimit := debug.SetMemoryLimit(1 << 30)
	f.Cleanup(func() { bert.MaxModelBytes = old; debug.SetMemoryLimit(oldLimit) })
	f.Fuzz(func(t *testing.T, cfg, weights, tasks, state []byte, flags uint8) {
		dir := t.TempDir()
		files := map[string][]byte{bert.ConfigFile: cfg, mtl.TasksFile: tasks, mtl.TrainerStateFile: state}
		if flags&1 == 0 {
			files[bert.SafetensorsFile] = weights
		} else {
			files["pytorch_model.bin"] = weights
		}
		for n, b := range fixed {
			files[n] = b
		}
		in := 0
		for n, b := range files {
			in += len(b)
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := mtl.WriteChecksums(dir); err != nil {
			t.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		m, tok, err := mtl.LoadCheckpoint(dir, false)
		if err == nil && (m == nil || tok == nil) {
			t.Fatal("LoadCheckpoint: no model and no error")
		}
		if err := r.Model.LoadWeights(dir); err == nil {
			_ = mtl.LoadTrainerState(dir, r.Trainer)
		}
		runtime.ReadMemStats(&m1)
		limit := 4*uint64(bert.MaxModelBytes) + 8*uint64(in) + 32<<20
		if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > limit {
			t.Fatalf("loading allocated %d bytes, over %d (4 x the model budget + 8 x the %d input bytes + 32 MiB)", alloc, limit, in)
		}
		if rss := rssMB(); rss > 1536 {
			t.Fatalf("RSS %.0f MiB after a load, over 1.5 GiB", rss)
		}
	})
}
