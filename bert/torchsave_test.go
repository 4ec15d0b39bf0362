package bert

import (
	"bytes"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mtbert/mtbert/nn"
)

// TestWriteTorchZipRoundTrip writes a state dict with WriteTorchZip and reads it back with
// the unpickler: names, shapes, dtypes and bytes come back exactly, and every record's data
// starts 64-byte aligned in the file, as torch.save aligns it.
func TestWriteTorchZipRoundTrip(t *testing.T) {
	tensors := map[string]nn.SafeTensor{
		"classifier.weight": nn.F32Tensor([]int{3, 4}, []float32{1, -2, 3.5, 0, 1e-30, -0, 7, 8, 9, 10, 11, 12}),
		"classifier.bias":   nn.F32Tensor([]int{3}, []float32{0.25, -0.5, 1}),
		"position_ids":      nn.I64Tensor([]int{1, 5}, []int64{0, 1, 2, 3, 1 << 40}),
		"scalar":            nn.F32Tensor([]int{}, []float32{42}),
	}
	names := []string{"classifier.weight", "classifier.bias", "position_ids", "scalar"}
	path := filepath.Join(t.TempDir(), "head.pt")
	if err := SaveTorchZip(path, names, tensors); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTorchBin(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(tensors) {
		t.Fatalf("read %d tensors, wrote %d", len(got), len(tensors))
	}
	for n, want := range tensors {
		g := got[n]
		if g.DType != want.DType || !slices.Equal(g.Shape, want.Shape) || !bytes.Equal(g.Data, want.Data) {
			t.Errorf("%s: read %v %v %x, wrote %v %v %x", n, g.DType, g.Shape, g.Data, want.DType, want.Shape, want.Data)
		}
	}
	var buf bytes.Buffer
	if err := WriteTorchZip(&buf, names, tensors); err != nil {
		t.Fatal(err)
	}
	// The storages' bytes are found at 64-byte aligned offsets.
	raw := buf.Bytes()
	for _, n := range []string{"classifier.weight", "position_ids"} {
		i := bytes.Index(raw, tensors[n].Data)
		if i < 0 || i%torchRecordAlign != 0 {
			t.Errorf("%s: data at offset %d, want a multiple of %d", n, i, torchRecordAlign)
		}
	}
	if err := WriteTorchZip(&buf, []string{"nope"}, tensors); err == nil {
		t.Error("a name without a tensor: no error")
	}
}
