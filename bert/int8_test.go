package bert

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// int8TestModel is a small model with non-trivial biases and LayerNorm parameters, saved as a
// float checkpoint in a temporary folder.
func int8TestModel(t *testing.T, pooler bool) (Config, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = 60, 96, 2, 3, 200
	m, err := New(cfg, 3, pooler)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params.List() {
		if p.Value.Rank() == 1 {
			p.Value.FillNormal(tensor.NewRNG(uint64(len(p.Name))), 0.1, 0.05)
		}
	}
	dir := filepath.Join(t.TempDir(), "float")
	if err := m.Save(dir, nil); err != nil {
		t.Fatal(err)
	}
	return cfg, dir
}

// TestInt8CheckpointRoundTrip quantises a float checkpoint (QuantizeInt8, as `mtbert quantize`
// does), saves it, loads it and saves it again: the int8 weights and scales are those of
// kernels.QuantizeWeights on the float weights, the two saved model.safetensors are the same
// bytes, the loaded model keeps no float weights for the quantised layers, and its outputs are
// bit-identical to quantising the float checkpoint at load, and to QuantizeForInference (which
// keeps W), on every int8 kernel path.
func TestInt8CheckpointRoundTrip(t *testing.T) {
	for _, pooler := range []bool{false, true} {
		cfg, fdir := int8TestModel(t, pooler)
		atLoad, err := Load(fdir)
		if err != nil {
			t.Fatal(err)
		}
		keep, err := Load(fdir)
		if err != nil {
			t.Fatal(err)
		}
		var want []*kernels.QuantizedB
		for _, l := range atLoad.Linears() {
			want = append(want, kernels.QuantizeWeights(l.W.Value.Data(), l.W.Shape()[0], l.W.Shape()[1]))
		}
		atLoad.QuantizeInt8()
		keep.QuantizeForInference()
		d1 := filepath.Join(t.TempDir(), "int8")
		if err := atLoad.Save(d1, nil); err != nil {
			t.Fatal(err)
		}
		cfgBack, err := LoadConfig(d1)
		if err != nil {
			t.Fatal(err)
		}
		if cfgBack.Quantization != Int8 {
			t.Fatalf("config.json: mtbert_quantization %q, want %q", cfgBack.Quantization, Int8)
		}
		loaded, err := Load(d1)
		if err != nil {
			t.Fatal(err)
		}
		if !loaded.IsInt8() {
			t.Fatal("loaded int8 checkpoint: IsInt8 false")
		}
		// Its word embeddings read from the mapped file (the bytes saved, the values loaded).
		if want := atLoad.Word.W.Value.Data(); !loaded.WordEmbeddingsMapped() || !slices.Equal(loaded.Word.W.Value.Data(), want) {
			t.Fatalf("loaded int8 checkpoint: word embeddings mapped %t, equal to the saved ones %t", loaded.WordEmbeddingsMapped(), slices.Equal(loaded.Word.W.Value.Data(), want))
		}
		if runtime.GOOS == "linux" && loaded.Word.Rows == nil {
			t.Fatal("loaded int8 checkpoint: lookups do not read rows from the file")
		}
		if atLoad.WordEmbeddingsMapped() {
			t.Fatal("a float checkpoint's word embeddings were mapped")
		}
		for i, l := range loaded.Linears() {
			q := l.Quantized()
			if q == nil {
				t.Fatalf("layer %s: no int8 weights after load", l.W.Name)
			}
			if l.W.Value.Len() != 0 {
				t.Fatalf("layer %s: float weight of %d values kept", l.W.Name, l.W.Value.Len())
			}
			if !slices.Equal(q.Q(), want[i].Q()) || !slices.Equal(q.Scale, want[i].Scale) {
				t.Fatalf("layer %s: int8 weights or scales differ from QuantizeWeights", l.W.Name)
			}
		}
		d2 := filepath.Join(t.TempDir(), "int8-again")
		if err := loaded.Save(d2, nil); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{SafetensorsFile, ConfigFile} {
			a, _ := os.ReadFile(filepath.Join(d1, f))
			b, _ := os.ReadFile(filepath.Join(d2, f))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Fatalf("%s differs between the first and the second save (%d and %d bytes)", f, len(a), len(b))
			}
		}
		b := inferBatch(cfg, 2, 9, 4)
		forEachInt8Path(t, func(name string) {
			got, ref, kept := lastHidden(t, loaded, b), lastHidden(t, atLoad, b), lastHidden(t, keep, b)
			for i := range ref {
				if got[i] != ref[i] || kept[i] != ref[i] {
					t.Fatalf("%s pooler=%t: hidden[%d]: loaded int8 %v, quantised at load %v, QuantizeForInference %v", name, pooler, i, got[i], ref[i], kept[i])
				}
			}
		})
	}
}

// TestInt8CheckpointRejects checks that a corrupt int8 checkpoint is an error, not a panic.
func TestInt8CheckpointRejects(t *testing.T) {
	_, fdir := int8TestModel(t, false)
	m, err := Load(fdir)
	if err != nil {
		t.Fatal(err)
	}
	m.QuantizeInt8()
	l0 := m.Linears()[0]
	good := l0.Quantized()
	bad := good.Q()
	bad[5] = -128
	l0.SetQuantized(kernels.NewQuantizedB(bad, good.Scale, good.N, good.K))
	d := filepath.Join(t.TempDir(), "bad")
	if err := m.Save(d, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(d); err == nil {
		t.Fatal("int8 weight -128 accepted")
	}
	l0.SetQuantized(good)
	m.Cfg.Quantization = ""
	if err := m.Save(d, nil); err == nil {
		if _, err := Load(d); err == nil {
			t.Fatal("float checkpoint without NAME.weight accepted")
		}
	}
}

// forEachInt8Path runs f on the int8 kernel in use and on the generic one.
func forEachInt8Path(t *testing.T, f func(name string)) {
	old := kernels.GemmPath()
	defer kernels.SetGemmPath(old)
	for _, p := range []string{old, "generic"} {
		if err := kernels.SetGemmPath(p); err != nil {
			t.Fatal(err)
		}
		f(p + "/" + kernels.QGemmPath())
	}
}

// TestInferenceReusedTape runs two different batches through one no-grad tape (the second
// pass gets the first one's pooled buffers, which the packed and int8 linear layers do not
// zero) and checks the second against a fresh tape, bit for bit.
func TestInferenceReusedTape(t *testing.T) {
	cfg, fdir := int8TestModel(t, false)
	for _, quant := range []bool{false, true} {
		m, err := Load(fdir)
		if err != nil {
			t.Fatal(err)
		}
		if quant {
			m.QuantizeInt8()
		} else {
			m.PackForInference()
		}
		a, b := inferBatch(cfg, 3, 11, 1), inferBatch(cfg, 3, 11, 2)
		tp := autograd.NoGrad()
		if _, err := m.Forward(tp, a, false); err != nil {
			t.Fatal(err)
		}
		tp.Reset()
		out, err := m.Forward(tp, b, false)
		if err != nil {
			t.Fatal(err)
		}
		got := out.Last.Value.ToHost()
		want := lastHidden(t, m, b)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("int8=%t: hidden[%d] %v on a reused tape, %v on a fresh one", quant, i, got[i], want[i])
			}
		}
	}
}
