package bulk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
)

func TestBratFileName(t *testing.T) {
	for id, want := range map[string]string{"n1": "n1", "a.b": "a.b", ".hidden": "%2Ehidden", "../x": "%2E.%2Fx", "a b": "a%20b", "caf\u00e9": "caf%C3%A9", "a%b": "a%25b"} {
		if got, err := BratFileName(id); err != nil || got != want {
			t.Errorf("BratFileName(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	for _, id := range []string{"", strings.Repeat("/", 81)} {
		if _, err := BratFileName(id); err == nil {
			t.Errorf("BratFileName(%q) accepted", id)
		}
	}
}

// TestBratAnnRoundTrip writes entities of two tasks over a note with non-ASCII characters and
// line breaks inside entities, and reads the .ann back with the project's brat reader: the
// same spans (byte offsets), types prefixed with their task.
func TestBratAnnRoundTrip(t *testing.T) {
	note := "Fi\u00e8vre \u6e29 chest\npain ; took\n\n  aspirin daily\r\nok ."
	ent := func(typ, text string, from int) mtl.Entity {
		bs := strings.Index(note[from:], text) + from
		be := bs + len(text)
		return mtl.Entity{Type: typ, Start: len([]rune(note[:bs])), End: len([]rune(note[:be])), ByteStart: bs, ByteEnd: be, Text: text, Score: 0.5}
	}
	ents := map[string][]mtl.Entity{
		"clin-ner": {ent("problem", "Fi\u00e8vre \u6e29 chest\npain", 0)},
		"med":      {ent("Drug name", "took\n\n  aspirin", 0), ent("Drug", "aspirin daily\r\nok", 0)},
	}
	ann := BratAnn(note, ents, []string{"med", "clin-ner"}, true)
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "d.txt"), note)
	mustWrite(t, filepath.Join(dir, "d.ann"), string(ann))
	docs, st, err := corpus.ReadBrat(dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, ann)
	}
	if !strings.Contains(string(ann), "T1\tmed-Drug_name 22 26;30 37\ttook aspirin\n") || !strings.Contains(string(ann), "#1\tAnnotatorNotes T1\ttask=med type=Drug name score=0.5000\n") {
		t.Errorf(".ann:\n%s", ann)
	}
	want := []struct {
		typ  string
		e    mtl.Entity
		frag bool
	}{{"clin_ner-problem", ents["clin-ner"][0], false}, {"med-Drug_name", ents["med"][0], true}, {"med-Drug", ents["med"][1], true}}
	if len(docs) != 1 || len(docs[0].Spans) != 3 || st.Fragmented != 2 || st.MergedFragments != 1 {
		t.Fatalf("read back %+v, stats %+v\n%s", docs, st, ann)
	}
	for i, w := range want {
		sp := docs[0].Spans[i]
		if sp.Type != w.typ || sp.Start != w.e.ByteStart || sp.End != w.e.ByteEnd || (len(sp.Fragments) > 0) != w.frag {
			t.Errorf("span %d: %+v, want %s at %d-%d", i, sp, w.typ, w.e.ByteStart, w.e.ByteEnd)
		}
	}
	// One task: the types as they are.
	if a := string(BratAnn(note, map[string][]mtl.Entity{"med": ents["med"][1:]}, nil, false)); !strings.HasPrefix(a, "T1\tDrug ") {
		t.Errorf("single task .ann: %s", a)
	}
}

// TestBioCDocumentOffsets checks BioC locations count characters, not bytes.
func TestBioCDocumentOffsets(t *testing.T) {
	note := "\u00e9\u00e9 \u6e29 aspirin ."
	bs := strings.Index(note, "aspirin")
	d := NewBioCDocument("x", note, map[string][]mtl.Entity{"med": {{Type: "Drug", Start: 5, End: 12, ByteStart: bs, ByteEnd: bs + 7, Text: "aspirin", Score: 0.25}}}, nil)
	a := d.Passages[0].Annotations[0]
	if l := a.Locations[0]; l.Offset != 5 || l.Length != 7 || string([]rune(note)[l.Offset:l.Offset+l.Length]) != "aspirin" || bs == 5 {
		t.Errorf("location %+v (byte offset %d)", l, bs)
	}
	if a.Infons["type"] != "Drug" || a.Infons["task"] != "med" || a.Infons["score"] != "0.2500" || a.ID != "T1" {
		t.Errorf("annotation %+v", a)
	}
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
