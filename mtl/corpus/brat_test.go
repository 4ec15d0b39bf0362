package corpus

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

func TestReadBratFixture(t *testing.T) {
	docs, st, err := ReadBrat("../testdata/brat")
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, docs)
	if len(docs) != 2 || docs[0].ID != "doc1" || docs[1].ID != "doc2" {
		t.Fatalf("got %d docs, want doc1, doc2", len(docs))
	}
	// Byte offsets worked out by hand: é is 2 bytes, line 1 is 38
	// characters and 40 bytes.
	want := []Span{
		{0, 10, "PROC", "Traitement", nil},
		{15, 38, "DISO", "métastases hépatiques", nil},
		{15, 38, "DISO", "métastases hépatiques", nil}, // T6, an exact duplicate (kept by the reader)
		{27, 38, "ANAT", "hépatiques", nil},
		{43, 56, "LIVB", "virus VIH - 2", nil},                                 // 41 46;47 54: gap of one character, merged
		{62, 83, "DISO", "hépatite C chronique", [][2]int{{62, 71}, {74, 83}}}, // listed 71 80;60 68
	}
	if !reflect.DeepEqual(docs[0].Spans, want) {
		t.Errorf("doc1 spans:\n got %+v\nwant %+v", docs[0].Spans, want)
	}
	if want := []Span{{0, 7, "DISO", "Ædème", nil}}; !reflect.DeepEqual(docs[1].Spans, want) {
		t.Errorf("doc2 spans %+v, want %+v", docs[1].Spans, want)
	}
	if st.MergedFragments != 1 || st.Fragmented != 1 || st.Spans != 7 || st.Documents != 2 {
		t.Errorf("stats %+v, want 1 merged, 1 fragmented, 7 spans, 2 documents", st)
	}
	// One pair, named by either file or the stem.
	for _, p := range []string{"../testdata/brat/doc2.ann", "../testdata/brat/doc2.txt", "../testdata/brat/doc2"} {
		d, _, err := ReadBrat(p)
		if err != nil || len(d) != 1 || d[0].ID != "doc2" || len(d[0].Spans) != 1 {
			t.Errorf("ReadBrat(%s) = %+v, %v", p, d, err)
		}
	}
}

func TestReadBratErrors(t *testing.T) {
	dir := t.TempDir()
	text := "Le cœur bat.\n" // 13 characters, œ is 2 bytes
	cases := []struct {
		ann   string
		parts []string
	}{
		{"T1\tANAT 3 7\tcœur\nT2\tANAT 3 8\tcœur\n", []string{"x.ann:2:", "T2", "does not match"}},
		{"T1\tANAT 3 14\tcœur\n", []string{"x.ann:1:", "out of range"}},
		{"T1\tANAT 7 3\tcœur\n", []string{"x.ann:1:", "out of range"}},
		{"T1\tANAT 3 7\n", []string{"x.ann:1:", "3 tab-separated"}},
		{"T1\tANAT 3 x\tcœur\n", []string{"x.ann:1:", "not integers"}},
		{"T1\tANAT\tcœur\n", []string{"x.ann:1:", "Type start end"}},
		{"\nQ1\tsomething\n", []string{"x.ann:2:", "unknown annotation line"}},
		{"T1\tANAT 0 7;3 11\tLe cœur cœur bat\n", []string{"x.ann:1:", "overlap"}},
		{"T1\tANAT 0 2;8 11\tLe  bat\n", []string{"x.ann:1:", "does not match"}},
	}
	for _, c := range cases {
		mtltest.WriteFile(t, dir, "x.txt", text)
		mtltest.WriteFile(t, dir, "x.ann", c.ann)
		_, _, err := ReadBrat(filepath.Join(dir, "x.ann"))
		mtltest.WantErr(t, err, c.parts...)
	}
	// The good version of the first case, to show the fixture is right.
	mtltest.WriteFile(t, dir, "x.ann", "T1\tANAT 3 7\tcœur\nT2\tANAT 0 2;8 11\tLe bat\n")
	docs, _, err := ReadBrat(filepath.Join(dir, "x.ann"))
	if err != nil {
		t.Fatal(err)
	}
	if s := docs[0].Spans; len(s) != 2 || s[1].Start != 3 || s[1].End != 8 || s[0].Fragments[1] != [2]int{9, 12} {
		t.Errorf("spans %+v", s)
	}
	// A folder with a .txt and no .ann.
	d2 := t.TempDir()
	mtltest.WriteFile(t, d2, "a.txt", "x")
	_, _, err = ReadBrat(d2)
	mtltest.WantErr(t, err, "no .ann file for a.txt")
}

// TestReadBratQuaero reads the QUAERO French medical corpus (CLEF eHealth
// release). Counts measured on the files (grep -c '^T', ls): the EMEA
// train/dev entity counts, 2695 and 2260, are the train/test sizes of
// Table 1 of the paper. All 141 discontinuous annotations have pieces
// more than one character apart, so none is merged.
func TestReadBratQuaero(t *testing.T) {
	cases := []struct {
		dir                    string
		docs, spans, fragments int
	}{
		{"quaero/train/MEDLINE", 833, 2994, 13},
		{"quaero/train/EMEA", 11, 2695, 27},
		{"quaero/dev/MEDLINE", 832, 2977, 21},
		{"quaero/dev/EMEA", 12, 2260, 15},
		{"quaero/test/MEDLINE", 833, 3103, 23},
		{"quaero/test/EMEA", 15, 2204, 42},
	}
	types := map[string]bool{}
	for _, c := range cases {
		docs, st, err := ReadBrat(mtltest.DataPath(t, c.dir))
		if err != nil {
			t.Fatal(err)
		}
		checkDocs(t, docs)
		if len(docs) != c.docs || st.Spans != c.spans || st.Fragmented != c.fragments || st.MergedFragments != 0 {
			t.Errorf("%s: %d docs, %d spans, %d fragmented, %d merged; want %d, %d, %d, 0",
				c.dir, len(docs), st.Spans, st.Fragmented, st.MergedFragments, c.docs, c.spans, c.fragments)
		}
		for k := range CountTypes(docs) {
			types[k] = true
		}
	}
	want := map[string]bool{}
	for _, k := range []string{"ANAT", "CHEM", "DEVI", "DISO", "GEOG", "LIVB", "OBJC", "PHEN", "PHYS", "PROC"} {
		want[k] = true
	}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("types %v, want the 10 UMLS groups", types)
	}
}
