package corpus

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

func TestReadI2B2ConFixture(t *testing.T) {
	for _, args := range [][2]string{
		{"../testdata/i2b2-2010/record-1.txt", "../testdata/i2b2-2010/record-1.con"},
		{"../testdata/i2b2-2010", "../testdata/i2b2-2010"},
	} {
		docs, st, err := ReadI2B2Con(args[0], args[1])
		if err != nil {
			t.Fatal(err)
		}
		checkDocs(t, docs)
		if len(docs) != 1 || docs[0].ID != "record-1" || st.Spans != 3 {
			t.Fatalf("got %d docs, %+v", len(docs), st)
		}
		// Line 4 starts at byte 57; "chest  pain" has two spaces in the
		// .txt and one in the .con.
		want := []Span{
			{73, 84, "problem", "chest  pain", nil},
			{89, 108, "problem", "shortness of breath", nil},
			{124, 131, "treatment", "aspirin", nil},
		}
		if !reflect.DeepEqual(docs[0].Spans, want) {
			t.Errorf("spans %+v, want %+v", docs[0].Spans, want)
		}
	}
}

func TestReadI2B2ConErrors(t *testing.T) {
	dir := t.TempDir()
	txt := mtltest.WriteFile(t, dir, "r.txt", "Pain in chest .\nNo fever .\n")
	cases := []struct {
		con   string
		parts []string
	}{
		{"c=\"pain\" 1:0 1:0||t=\"problem\"\nc=\"fever\" 2:0 2:0||t=\"problem\"\n", []string{"r.con:2:", "does not match"}},
		{"c=\"fever\" 4:1 4:1||t=\"problem\"\n", []string{"r.con:1:", "line 4 out of range"}},
		{"c=\"fever\" 2:5 2:5||t=\"problem\"\n", []string{"r.con:1:", "token 5 out of range"}},
		{"c=\"fever\" 2:1 2:1\n", []string{"r.con:1:", "is not c="}},
		{"c=\"in chest\" 1:2 1:1||t=\"problem\"\n", []string{"r.con:1:", "before start"}},
	}
	for _, c := range cases {
		con := mtltest.WriteFile(t, dir, "r.con", c.con)
		_, _, err := ReadI2B2Con(txt, con)
		mtltest.WantErr(t, err, c.parts...)
	}
	// Case-insensitive match, concept over two lines.
	con := mtltest.WriteFile(t, dir, "r.con", "c=\"pain in chest . no\" 1:0 2:0||t=\"problem\"\n")
	docs, _, err := ReadI2B2Con(txt, con)
	if err != nil {
		t.Fatal(err)
	}
	if s := docs[0].Spans[0]; s.Start != 0 || s.End != 18 || s.Text != "Pain in chest .\nNo" {
		t.Errorf("span %+v", s)
	}
}

func TestReadI2B2XML2012(t *testing.T) {
	docs, st, err := ReadI2B2XML("../testdata/i2b2-2012/record-2.xml", I2B2Events)
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, docs)
	want := []Span{
		{1, 10, "OCCURRENCE", "Admission", nil},
		{37, 53, "PROBLEM", "chest pain & SOB", nil}, // raw '&' in the text attribute
		{62, 65, "TREATMENT", "asa", nil},
		{70, 74, "PROBLEM", "pain", nil},
	}
	if len(docs) != 1 || docs[0].ID != "record-2" || !reflect.DeepEqual(docs[0].Spans, want) {
		t.Fatalf("got %+v, want spans %+v", docs, want)
	}
	if !strings.HasPrefix(docs[0].Text, "\nAdmission Date :\n") {
		t.Errorf("text %q does not start with the CDATA's newline", docs[0].Text)
	}
	if want := map[string]int{"TIMEX3": 1, "TLINK": 1, "SECTIME": 1}; !reflect.DeepEqual(st.SkippedTags, want) {
		t.Errorf("skipped %v, want %v", st.SkippedTags, want)
	}
	// Keeping TIMEX3 too.
	docs, _, err = ReadI2B2XML("../testdata/i2b2-2012/record-2.xml", XMLOptions{Keep: []string{"EVENT", "TIMEX3"}})
	if err != nil || len(docs[0].Spans) != 5 || docs[0].Spans[1].Type != "DATE" {
		t.Errorf("EVENT+TIMEX3: %+v, %v", docs, err)
	}
}

func TestReadI2B2XML2014(t *testing.T) {
	docs, st, err := ReadI2B2XML("../testdata/i2b2-2014", I2B2PHI)
	if err != nil {
		t.Fatal(err)
	}
	checkDocs(t, docs)
	// Character offsets 33-44 etc. converted to bytes (é ü í Ñ ñ é are 2
	// bytes each).
	want := []Span{
		{13, 23, "DATE", "2088-07-03", nil},
		{33, 46, "PATIENT", "José Müller", nil},
		{48, 50, "AGE", "67", nil},
		{70, 86, "HOSPITAL", "Clínica Ñuñoa", nil},
		{94, 106, "DOCTOR", "Renée Ortiz", nil},
	}
	if len(docs) != 1 || docs[0].ID != "110-01" || !reflect.DeepEqual(docs[0].Spans, want) || st.Spans != 5 {
		t.Fatalf("got %+v, want %+v", docs, want)
	}
}

func TestReadI2B2XMLErrors(t *testing.T) {
	good, err := os.ReadFile("../testdata/i2b2-2014/110-01.xml")
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	dir := t.TempDir()
	cut := strings.Index(g, `<NAME id="P4"`)
	cases := []struct {
		name, content string
		parts         []string
	}{
		{"trunc-text.xml", g[:strings.Index(g, "]]>")], []string{"trunc-text.xml:3:", "never closed"}},
		{"trunc-tags.xml", g[:cut], []string{"trunc-tags.xml:11:", "truncated"}},
		{"trunc-mid.xml", g[:cut+20], []string{"trunc-mid.xml:11:", "truncated"}},
		{"notext.xml", "<a><TAGS/></a>", []string{"notext.xml:1:", "no <TEXT>"}},
		{"mismatch.xml", strings.Replace(g, `text="67"`, `text="68"`, 1), []string{"mismatch.xml:9:", `id="P2"`, "does not match"}},
		{"range.xml", strings.Replace(g, `end="100"`, `end="1000"`, 1), []string{"range.xml:11:", "out of range"}},
		{"noint.xml", strings.Replace(g, `start="46"`, `start="x"`, 1), []string{"noint.xml:9:", "not integers"}},
	}
	for _, c := range cases {
		_, _, err := ReadI2B2XML(mtltest.WriteFile(t, dir, c.name, c.content), I2B2PHI)
		mtltest.WantErr(t, err, c.parts...)
	}
}

// TestMeddocanXMLMatchesBrat reads MEDDOCAN in both of its layouts, the
// i2b2-2014 XML and brat, and checks that every document has the same text
// and the same spans in both; counts from grep -c '^T' over the .ann files.
func TestMeddocanXMLMatchesBrat(t *testing.T) {
	for _, c := range []struct {
		split       string
		docs, spans int
	}{{"train", 500, 11333}, {"dev", 250, 5801}, {"test", 250, 5661}} {
		dir := mtltest.DataPath(t, filepath.Join("meddocan", c.split))
		xdocs, xst, err := ReadI2B2XML(filepath.Join(dir, "xml"), I2B2PHI)
		if err != nil {
			t.Fatal(err)
		}
		bdocs, bst, err := ReadBrat(filepath.Join(dir, "brat"))
		if err != nil {
			t.Fatal(err)
		}
		checkDocs(t, xdocs)
		checkDocs(t, bdocs)
		if len(xdocs) != c.docs || len(bdocs) != c.docs || xst.Spans != c.spans || bst.Spans != c.spans {
			t.Fatalf("%s: xml %d docs %d spans, brat %d docs %d spans; want %d, %d", c.split, len(xdocs), xst.Spans, len(bdocs), bst.Spans, c.docs, c.spans)
		}
		for i := range xdocs {
			x, b := xdocs[i], bdocs[i]
			if x.ID != b.ID || x.Text != b.Text || !reflect.DeepEqual(x.Spans, b.Spans) {
				t.Fatalf("%s: document %s (xml) and %s (brat) differ", c.split, x.ID, b.ID)
			}
		}
		if len(xst.SkippedTags) != 0 {
			t.Errorf("%s: skipped %v", c.split, xst.SkippedTags)
		}
	}
}
