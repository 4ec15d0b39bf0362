package corpus

import (
	"testing"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

func checkDocs(t *testing.T, docs []Document) {
	t.Helper()
	for i := range docs {
		if err := docs[i].Check(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDocumentCheck(t *testing.T) {
	d := Document{ID: "d", Text: "héllo world", Spans: []Span{{Start: 0, End: 6, Type: "X", Text: "héllo"}}}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	d.Spans[0].Text = "hello"
	mtltest.WantErr(t, d.Check(), "d:", "span 0")
	d.Spans[0] = Span{Start: 0, End: 12, Type: "X", Text: "héllo world"}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	d.Spans[0].Fragments = [][2]int{{0, 6}, {5, 12}}
	mtltest.WantErr(t, d.Check(), "not sorted, disjoint")
	d.Spans[0].Fragments = [][2]int{{0, 6}, {7, 12}}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}
	if got := d.Spans[0].Len(); got != 11 {
		t.Errorf("Len = %d, want 11 (gap excluded)", got)
	}
	d.Spans[0].End = 13
	mtltest.WantErr(t, d.Check(), "out of range")
}
