package mtl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedData is where the project's public corpora live, relative to this
// package's folder (see ../../shared/data/README.md).
const sharedData = "../../shared/data"

// dataPath returns the path of a corpus under sharedData, skipping the test
// with a message when it is absent (a fresh clone has no ../shared).
func dataPath(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedData, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real data %s absent (%v); skipping", p, err)
	}
	return p
}

// checkDocs asserts every span's Text equals the document text at its
// offsets, and the other invariants of Document.Check.
func checkDocs(t *testing.T, docs []Document) {
	t.Helper()
	for i := range docs {
		if err := docs[i].Check(); err != nil {
			t.Fatal(err)
		}
	}
}

// writeFile writes content to name under dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
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

// wantErr asserts err is non-nil and contains every one of parts (file
// name, line, field...).
func wantErr(t *testing.T, err error, parts ...string) {
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

func TestDocumentCheck(t *testing.T) {
	d := Document{ID: "d", Text: "héllo world", Spans: []Span{{Start: 0, End: 6, Type: "X", Text: "héllo"}}}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	d.Spans[0].Text = "hello"
	wantErr(t, d.Check(), "d:", "span 0")
	d.Spans[0] = Span{Start: 0, End: 12, Type: "X", Text: "héllo world"}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	d.Spans[0].Fragments = [][2]int{{0, 6}, {5, 12}}
	wantErr(t, d.Check(), "not sorted, disjoint")
	d.Spans[0].Fragments = [][2]int{{0, 6}, {7, 12}}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	if got := d.Spans[0].Len(); got != 11 {
		t.Errorf("Len = %d, want 11 (gap excluded)", got)
	}
	d.Spans[0].End = 13
	wantErr(t, d.Check(), "out of range")
}
