package nn

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels"
)

// TestMapSafetensorsMatchesLoad checks that a mapped file gives the tensors a read gives, byte
// for byte, that they read the same after the mapping's pages are evicted (read back from the
// file), and that a damaged file is refused with LoadSafetensors' error, path first.
func TestMapSafetensorsMatchesLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	tensors := map[string]SafeTensor{
		"a": F32Tensor([]int{2, 3}, []float32{1, -2, 3.5, 0, 7, -0.25}),
		"b": I8Tensor([]int{5}, []int8{-127, 0, 1, 127, 3}),
		"c": F32Tensor([]int{0}, nil),
	}
	if err := SaveSafetensors(path, tensors, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	want, err := LoadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	got, m, err := MapSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	same := func(when string) {
		t.Helper()
		if len(got.Tensors) != len(want.Tensors) || got.Metadata["k"] != "v" {
			t.Fatalf("%s: mapped file has %d tensors and metadata %v", when, len(got.Tensors), got.Metadata)
		}
		for k, w := range want.Tensors {
			g := got.Tensors[k]
			if g.DType != w.DType || !bytes.Equal(g.Data, w.Data) || len(g.Shape) != len(w.Shape) {
				t.Fatalf("%s: tensor %q mapped as %v %v %v, read as %v %v %v", when, k, g.DType, g.Shape, g.Data, w.DType, w.Shape, w.Data)
			}
		}
	}
	same("mapped")
	if err := m.Evict(); err != nil {
		t.Fatal(err)
	}
	same("after Evict")
	if got.Tensors["a"].DType != kernels.F32 {
		t.Fatal("dtype lost")
	}
	// A header that claims more data than the file has.
	raw, _ := os.ReadFile(path)
	bad := filepath.Join(dir, "bad.safetensors")
	if err := os.WriteFile(bad, raw[:len(raw)-4], 0o644); err != nil {
		t.Fatal(err)
	}
	_, errLoad := LoadSafetensors(bad)
	_, mb, errMap := MapSafetensors(bad)
	if errLoad == nil || errMap == nil || errMap.Error() != errLoad.Error() || mb != nil || !strings.HasPrefix(errMap.Error(), bad) {
		t.Fatalf("damaged file: mapped error %v (mapping %v), read error %v", errMap, mb, errLoad)
	}
}
