package bert

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpickle feeds arbitrary bytes to the checkpoint unpickler, as ReadTorchBin runs it on
// data.pkl. It must never panic, loop or allocate beyond the input's size; the committed seed
// corpus is in testdata/fuzz/FuzzUnpickle, and the pickle of testdata/torchbin/golden.bin is
// added here.
func FuzzUnpickle(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "torchbin", "golden.bin")); err == nil {
		if zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err == nil {
			for _, zf := range zr.File {
				if filepath.Base(zf.Name) == "data.pkl" {
					if rc, err := zf.Open(); err == nil {
						p, _ := io.ReadAll(rc)
						rc.Close()
						f.Add(p)
					}
				}
			}
		}
	}
	f.Add(tensorPickle("x", "FloatStorage", "0", 6, 1, []int{2, 2}, []int{1, 2}))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := unpickleStateDict(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.t == nil || e.t.storage == nil || len(e.t.size) != len(e.t.stride) {
				t.Fatalf("entry %q: inconsistent tensor", e.name)
			}
			// Materialising against an all-zero storage of the declared size must either
			// succeed or fail cleanly; keep it small.
			st := e.t.storage
			n := int64(1)
			for _, d := range e.t.size {
				if d > 1<<16 {
					n = 1 << 17
					break
				}
				n *= d
				if n > 1<<16 {
					break
				}
			}
			if st.known && st.numel <= 1<<16 && n <= 1<<16 {
				_, _ = materialise(e.t, make([]byte, st.numel*int64(st.dtype.Size())))
			}
		}
	})
}

// FuzzLegacyBin feeds arbitrary bytes to the legacy torch.save reader. It must never panic,
// loop or allocate beyond the input's size; the committed seed corpus is in
// testdata/fuzz/FuzzLegacyBin, and testdata/torchbin/legacy_golden.bin is added here.
func FuzzLegacyBin(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "torchbin", "legacy_golden.bin")); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !isLegacyTorchSave(bytes.NewReader(data), int64(len(data))) {
			return
		}
		lf, err := parseLegacy(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, e := range lf.entries {
			st := e.t.storage
			if st == nil || len(e.t.size) != len(e.t.stride) {
				t.Fatalf("entry %q: inconsistent tensor", e.name)
			}
			if !st.known {
				continue
			}
			b, err := lf.load(st)
			if err != nil {
				t.Fatalf("entry %q: storage %q passed parseLegacy but does not load: %v", e.name, st.key, err)
			}
			if int64(len(b)) != st.numel*int64(st.dtype.Size()) || len(b) > len(data) {
				t.Fatalf("entry %q: storage %q of %d elements loaded as %d bytes from a %d-byte file", e.name, st.key, st.numel, len(b), len(data))
			}
			// Materialise only small views: an expanded (zero-stride) view may legitimately
			// ask for up to MaxExpandedTensorBytes.
			n := int64(1)
			for _, d := range e.t.size {
				if d > 1<<16 {
					n = 1 << 17
					break
				}
				if n *= d; n > 1<<16 {
					break
				}
			}
			if n <= 1<<16 {
				_, _ = materialise(e.t, b)
			}
		}
	})
}
