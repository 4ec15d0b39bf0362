// Package mtltest holds the helpers that the tests of mtl and its sub-packages share: the
// public corpora under ../shared/data, temporary files, compressed copies and error checks.
package mtltest

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Root returns the repository's root folder (the one holding go.mod).
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// SharedData is where the project's public corpora live (see ../shared/data/README.md).
func SharedData() string { return filepath.Join(Root(), "..", "shared", "data") }

// DataPath returns the path of a corpus under SharedData, skipping the test with a message
// when it is absent (a fresh clone has no ../shared).
func DataPath(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(SharedData(), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real data %s absent (%v); skipping", p, err)
	}
	return p
}

// Testdata returns the path of a fixture under mtl/testdata.
func Testdata(rel string) string { return filepath.Join(Root(), "mtl", "testdata", rel) }

// WriteFile writes content to dir/name (making the folders it needs) and returns the path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// WantErr fails the test unless err is non-nil and its message contains every part.
func WantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// Compress writes data to path compressed as gzip ("gz") or zstd ("zst").
func Compress(t testing.TB, path, kind string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	switch kind {
	case "gz":
		w := gzip.NewWriter(&buf)
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "zst":
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("mtltest: unknown compression %q", kind)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Near reports whether a and b agree within 1e-12 (hand-computed metric values).
func Near(a, b float64) bool { return math.Abs(a-b) <= 1e-12 }
