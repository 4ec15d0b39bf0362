package bert

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
)

// TestLoadTorchBinAndRoundTrip loads the tiny model from the pytorch_model.bin that
// make_golden.py saved with torch.save ("bert." prefix, gamma/beta names, an MLM bias), checks
// it equals the formula weights bit for bit and computes PyTorch's hidden state, then saves it
// as safetensors and loads that back bit for bit.
func TestLoadTorchBinAndRoundTrip(t *testing.T) {
	g := loadGolden(t, "tiny.json")
	want, b := goldenModel(t, g)
	m, err := Load("testdata/golden/tiny_bin")
	if err != nil {
		t.Fatal(err)
	}
	assertSameWeights(t, m, want)
	out, err := m.Forward(autograd.NoGrad(), b, false)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, "last hidden", out.Last.Value.Data(), g.LastHidden); d > 1e-5 {
		t.Fatalf("model loaded from pytorch_model.bin differs from PyTorch by %g", d)
	}
	vocab, err := ReadVocab(strings.NewReader("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfever\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "saved")
	if err := m.Save(dir, vocab); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ConfigFile, SafetensorsFile, VocabFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("saved directory lacks %s", f)
		}
	}
	back, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if back.Cfg != m.Cfg {
		t.Fatalf("config changed in the round trip: %+v vs %+v", back.Cfg, m.Cfg)
	}
	assertSameWeights(t, back, m)
	// Saving over an existing checkpoint replaces it whole.
	if err := back.Save(dir, vocab); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Fatalf("save left %d entries beside the checkpoint", len(entries))
	}
}

func assertSameWeights(t *testing.T, got, want *Model) {
	t.Helper()
	if len(got.Params.List()) != len(want.Params.List()) {
		t.Fatalf("%d parameters, want %d", len(got.Params.List()), len(want.Params.List()))
	}
	for _, p := range want.Params.List() {
		q := got.Params.Get(p.Name)
		if q == nil {
			t.Fatalf("missing %s", p.Name)
		}
		a, b := q.Value.Data(), p.Value.Data()
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s[%d] = %v, want %v", p.Name, i, a[i], b[i])
			}
		}
	}
}

func TestSetWeightsErrorsNameKeyAndShapes(t *testing.T) {
	g := loadGolden(t, "tiny.json")
	m, _ := goldenModel(t, g)
	sd := m.StateDict()
	delete(sd, "encoder.layer.1.output.dense.bias")
	sd["pooler.dense.weight"] = nn.F32Tensor([]int{2, 3}, make([]float32, 6))
	err := m.SetWeights(sd, "ckpt")
	if err == nil {
		t.Fatal("bad state dict accepted")
	}
	for _, want := range []string{`missing tensor "encoder.layer.1.output.dense.bias"`, `"pooler.dense.weight" has shape [2 3], the model expects [32 32]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Fatal("empty directory loaded")
	}
}

// TestWriteFileAtomic: the file is written whole and readable by all; a failing writer leaves
// the old file and no temporary behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	if err := WriteFileAtomic(p, func(w io.Writer) error { _, err := io.WriteString(w, "first"); return err }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	boom := errors.New("boom")
	if err := WriteFileAtomic(p, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Errorf("content %q after a failed write", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries in the folder, want 1 (the temporary was left)", len(ents))
	}
}
