package nn

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadSafetensors feeds arbitrary bytes to ReadSafetensors. It must never panic; a file it
// accepts must survive a write and a second read unchanged. The committed seed corpus is in
// testdata/fuzz/FuzzReadSafetensors.
func FuzzReadSafetensors(f *testing.F) {
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1, 2)))
	f.Add(stFile(`{"__metadata__":{"k":"v"}}`, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, sf.Tensors, sf.Metadata); err != nil {
			if _, bad := sf.Tensors["__metadata__"]; bad {
				return
			}
			t.Fatalf("rewrite of an accepted file failed: %v", err)
		}
		sf2, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("reread failed: %v", err)
		}
		if len(sf.Metadata) == 0 && len(sf2.Metadata) == 0 {
			sf.Metadata, sf2.Metadata = nil, nil
		}
		if !reflect.DeepEqual(sf.Metadata, sf2.Metadata) || len(sf.Tensors) != len(sf2.Tensors) {
			t.Fatalf("reread differs: %v vs %v", sf.Metadata, sf2.Metadata)
		}
		for k, a := range sf.Tensors {
			b := sf2.Tensors[k]
			if a.DType != b.DType || !bytes.Equal(a.Data, b.Data) || len(a.Shape) != len(b.Shape) {
				t.Fatalf("tensor %q differs after rewrite", k)
			}
		}
	})
}
