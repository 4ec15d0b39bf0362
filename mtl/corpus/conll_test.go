package corpus

import (
	"reflect"
	"testing"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

func TestReadCoNLLFixture(t *testing.T) {
	docs, st, err := ReadCoNLL("../testdata/conll/small.tsv")
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, docs)
	if len(docs) != 3 || st.Documents != 3 {
		t.Fatalf("%d documents, want 3 (DOCSTART skipped, double blank line, no final newline)", len(docs))
	}
	want := []Document{
		{ID: "../testdata/conll/small.tsv:3", Text: "Familial adenomatous polyposis is rare .",
			Spans: []Span{{0, 30, "Disease", "Familial adenomatous polyposis", nil}}},
		{ID: "../testdata/conll/small.tsv:10", Text: "Aspirin causes ulcers and bleeding of the colon",
			Spans: []Span{
				{0, 7, "Chemical", "Aspirin", nil},
				{15, 21, "Disease", "ulcers", nil},      // I- after O: new entity
				{26, 37, "Disease", "bleeding of", nil}, // B- I-
				{38, 41, "Chemical", "the", nil},        // I- of another type: new entity
				{42, 47, "Disease", "colon", nil},
			}},
		{ID: "../testdata/conll/small.tsv:20", Text: "Café", Spans: []Span{{0, 5, "Chemical", "Café", nil}}},
	}
	for i := range want {
		want[i].Source = "../testdata/conll/small.tsv"
		if !reflect.DeepEqual(docs[i], want[i]) {
			t.Errorf("doc %d:\n got %+v\nwant %+v", i, docs[i], want[i])
		}
	}
	if st.IllFormed != 2 || st.Spans != 7 {
		t.Errorf("IllFormed = %d, Spans = %d; want 2, 7", st.IllFormed, st.Spans)
	}
}

func TestReadCoNLLErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, content string
		parts         []string
	}{
		{"cols.tsv", "a\tO\nb\tO\textra\n", []string{"cols.tsv:2:", "2 tab-separated columns", "got 3"}},
		{"one.tsv", "a\tO\n\nb O\n", []string{"one.tsv:3:", "got 1"}},
		{"tag.tsv", "a\tO\nb\tX-Disease\n", []string{"tag.tsv:2:", `"X-Disease"`}},
		{"notype.tsv", "a\tB-\n", []string{"notype.tsv:1:", `"B-"`}},
		{"empty.tsv", "\tO\n", []string{"empty.tsv:1:", "empty"}},
		{"space.tsv", "a b\tO\n", []string{"space.tsv:1:", "space"}},
	}
	for _, c := range cases {
		_, _, err := ReadCoNLL(mtltest.WriteFile(t, dir, c.name, c.content))
		mtltest.WantErr(t, err, c.parts...)
	}
}

// TestReadCoNLLReal checks the mention counts of the NCBI disease and
// BC5CDR corpora (cambridgeltl/MTL-Bioinformatics-2016 IOB2 files): one
// mention per B- tag, no ill-formed I- in these files.
func TestReadCoNLLReal(t *testing.T) {
	cases := []struct {
		file      string
		sentences int
		types     map[string]int
	}{
		{"ncbi-disease/train.tsv", 5424, map[string]int{"Disease": 5134}},
		{"ncbi-disease/devel.tsv", 923, map[string]int{"Disease": 787}},
		{"ncbi-disease/test.tsv", 940, map[string]int{"Disease": 960}},
		{"bc5cdr/train.tsv", 4560, map[string]int{"Chemical": 5203, "Disease": 4182}},
		{"bc5cdr/devel.tsv", 4581, map[string]int{"Chemical": 5347, "Disease": 4246}},
		{"bc5cdr/test.tsv", 4797, map[string]int{"Chemical": 5385, "Disease": 4424}},
	}
	for _, c := range cases {
		docs, st, err := ReadCoNLL(mtltest.DataPath(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		checkDocs(t, docs)
		if len(docs) != c.sentences {
			t.Errorf("%s: %d sentences, want %d", c.file, len(docs), c.sentences)
		}
		if got := CountTypes(docs); !reflect.DeepEqual(got, c.types) {
			t.Errorf("%s: mentions %v, want %v", c.file, got, c.types)
		}
		if st.IllFormed != 0 {
			t.Errorf("%s: %d ill-formed I- starts, want 0", c.file, st.IllFormed)
		}
	}
}
