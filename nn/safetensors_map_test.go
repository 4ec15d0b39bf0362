package nn

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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
	// Rows read through the file give the table's rows, in the order asked, repeats allowed.
	tab := got.Tensors["a"]
	rows, err := m.Rows(tab, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 3*3)
	if err := rows.ReadRows(dst, []int32{1, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 7, -0.25, 1, -2, 3.5, 0, 7, -0.25}; !slices.Equal(dst, want) {
		t.Fatalf("ReadRows gave %v, want %v", dst, want)
	}
	if err := rows.ReadRows(dst[:3], []int32{2}); err == nil {
		t.Fatal("ReadRows of row 2 of a 2-row table succeeded")
	}
	if _, err := m.Rows(want.Tensors["a"], nil); err == nil {
		t.Fatal("Rows accepted a tensor read into memory, not one of the mapping")
	}
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
