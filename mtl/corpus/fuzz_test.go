package corpus

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzBratAnn feeds arbitrary text and .ann content to the brat parser:
// it must never panic, and whatever it accepts must satisfy the Document
// invariants (byte offsets in range, Text equal to the text at the
// offsets, fragments sorted and disjoint). Seeds: testdata/fuzz/FuzzBratAnn
// and the cases below.
func FuzzBratAnn(f *testing.F) {
	f.Add("Le cœur bat.\n", "T1\tANAT 3 7\tcœur\n")
	f.Add("hépatite C chronique", "T1\tDISO 11 20;0 8\tchronique hépatite\nR1\tIsa Arg1:T1 Arg2:T1\n#1\tAnnotatorNotes T1\tC0019158\n")
	f.Add("virus VIH - 2", "T1\tLIVB 0 5;6 13\tvirus VIH - 2\n")
	f.Add("abc", "T1\tX 0 1;1 2;2 3\ta b c\r\n")
	f.Fuzz(func(t *testing.T, text, ann string) {
		if !utf8.ValidString(text) {
			return // readText rejects invalid UTF-8 before parsing
		}
		spans, st, err := parseAnn("fuzz.ann", text, []byte(ann))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.ann:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		d := Document{ID: "fuzz", Text: text, Spans: spans}
		if err := d.Check(); err != nil {
			t.Fatal(err)
		}
		if st.Spans != len(spans) {
			t.Fatalf("stats count %d spans, got %d", st.Spans, len(spans))
		}
	})
}

// FuzzCoNLL feeds arbitrary bytes to the CoNLL parser: no panic, errors
// name file:line, and accepted input gives documents whose spans satisfy
// the Document invariants and whose texts are the tokens joined by
// spaces. Seeds: testdata/fuzz/FuzzCoNLL and the cases below.
func FuzzCoNLL(f *testing.F) {
	f.Add([]byte("-DOCSTART-\tO\n\nA\tB-X\nb\tI-X\n\nc\tI-Y\nd\tO\n"))
	f.Add([]byte("Café\tU-Chemical\r\nx\tL-Chemical\n\n\n"))
	f.Add([]byte("a\tB-X\tz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		docs, st, err := parseCoNLL("fuzz.tsv", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.tsv:") {
				t.Fatalf("error without file:line: %v", err)
			}
			return
		}
		n := 0
		for i := range docs {
			if err := docs[i].Check(); err != nil {
				t.Fatal(err)
			}
			if docs[i].Text == "" || strings.Contains(docs[i].Text, "  ") {
				t.Fatalf("doc %s text %q", docs[i].ID, docs[i].Text)
			}
			n += len(docs[i].Spans)
		}
		if st.Spans != n || st.Documents != len(docs) {
			t.Fatalf("stats %+v for %d docs %d spans", st, len(docs), n)
		}
	})
}
