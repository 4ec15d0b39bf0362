package corpus

import (
	"reflect"
	"testing"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

// overlapDoc is "aaaa bbbb cccc dddd" with nested, crossing, duplicate
// and tied spans.
func overlapDoc() []Document {
	text := "aaaa bbbb cccc dddd"
	sp := func(s, e int, typ string) Span { return Span{Start: s, End: e, Type: typ, Text: text[s:e]} }
	return []Document{{ID: "d", Text: text, Spans: []Span{
		sp(0, 9, "DISO"),   // A: longest of the first cluster
		sp(5, 9, "ANAT"),   // B: nested in A
		sp(5, 9, "ANAT"),   // exact duplicate of B
		sp(7, 14, "PROC"),  // C: crosses A
		sp(15, 19, "CHEM"), // D: same extent as E, tie on length and start
		sp(15, 19, "ANAT"), // E
	}}}
}

func TestResolveOverlaps(t *testing.T) {
	text := "aaaa bbbb cccc dddd"
	sp := func(s, e int, typ string) Span { return Span{Start: s, End: e, Type: typ, Text: text[s:e]} }
	// KeepLongest: A (9 bytes) first; C (7) and B (4) overlap it; D and E
	// tie on length and start, ANAT < CHEM by name.
	docs := overlapDoc()
	rep := ResolveOverlaps(docs, KeepLongest)
	if want := []Span{sp(0, 9, "DISO"), sp(15, 19, "ANAT")}; !reflect.DeepEqual(docs[0].Spans, want) {
		t.Errorf("KeepLongest kept %+v, want %+v", docs[0].Spans, want)
	}
	wantDropped := map[string]map[string]int{ReasonShorter: {"ANAT": 1, "PROC": 1, "CHEM": 1}}
	if !reflect.DeepEqual(rep.Dropped, wantDropped) {
		t.Errorf("KeepLongest dropped %v, want %v", rep.Dropped, wantDropped)
	}
	if want := map[string]int{"ANAT": 1}; !reflect.DeepEqual(rep.Duplicates, want) {
		t.Errorf("duplicates %v, want %v", rep.Duplicates, want)
	}
	if want := map[string]int{"DISO": 1, "ANAT": 1}; !reflect.DeepEqual(rep.Kept, want) {
		t.Errorf("kept %v, want %v", rep.Kept, want)
	}
	if want := map[string]int{"DISO": 1, "ANAT": 3, "PROC": 1, "CHEM": 1}; !reflect.DeepEqual(rep.Input, want) {
		t.Errorf("input %v, want %v", rep.Input, want)
	}
	if len(rep.Drops) != 3 || rep.Drops[0].Span.Type != "PROC" || rep.Drops[0].Against.Type != "DISO" || rep.Drops[0].DocID != "d" {
		t.Errorf("drops %+v", rep.Drops)
	}
	balance(t, rep)

	// KeepFirst: A starts first; then B and C overlap it; D/E tie on start
	// and length, ANAT wins by name. Same result here, reason differs.
	docs = overlapDoc()
	docs[0].Spans = append(docs[0].Spans, sp(10, 19, "OBJC")) // starts after A, longer than D/E, overlaps C, D, E
	rep = ResolveOverlaps(docs, KeepFirst)
	if want := []Span{sp(0, 9, "DISO"), sp(10, 19, "OBJC")}; !reflect.DeepEqual(docs[0].Spans, want) {
		t.Errorf("KeepFirst kept %+v, want %+v", docs[0].Spans, want)
	}
	if want := map[string]map[string]int{ReasonLater: {"ANAT": 2, "PROC": 1, "CHEM": 1}}; !reflect.DeepEqual(rep.Dropped, want) {
		t.Errorf("KeepFirst dropped %v, want %v", rep.Dropped, want)
	}
	balance(t, rep)
	// The same input under KeepLongest keeps A (9) and the OBJC span (9):
	// equal length, A starts first, they do not overlap.
	docs = overlapDoc()
	docs[0].Spans = append(docs[0].Spans, sp(10, 19, "OBJC"))
	ResolveOverlaps(docs, KeepLongest)
	if want := []Span{sp(0, 9, "DISO"), sp(10, 19, "OBJC")}; !reflect.DeepEqual(docs[0].Spans, want) {
		t.Errorf("KeepLongest kept %+v, want %+v", docs[0].Spans, want)
	}

	// DropBoth: every span overlapping another goes, duplicates collapse
	// first so a lone duplicated span survives.
	docs = overlapDoc()
	docs = append(docs, Document{ID: "e", Text: "xy", Spans: []Span{{0, 2, "X", "xy", nil}, {0, 2, "X", "xy", nil}}})
	rep = ResolveOverlaps(docs, DropBoth)
	if len(docs[0].Spans) != 0 || len(docs[1].Spans) != 1 {
		t.Errorf("DropBoth kept %+v and %+v", docs[0].Spans, docs[1].Spans)
	}
	if want := map[string]map[string]int{ReasonOverlap: {"DISO": 1, "ANAT": 2, "PROC": 1, "CHEM": 1}}; !reflect.DeepEqual(rep.Dropped, want) {
		t.Errorf("DropBoth dropped %v, want %v", rep.Dropped, want)
	}
	if rep.Duplicates["X"] != 1 || rep.Kept["X"] != 1 {
		t.Errorf("DropBoth duplicates %v kept %v", rep.Duplicates, rep.Kept)
	}
	balance(t, rep)
}

// balance checks Input = Kept + Duplicates + Dropped for every type.
func balance(t *testing.T, r OverlapReport) {
	t.Helper()
	for typ, n := range r.Input {
		d := 0
		for _, m := range r.Dropped {
			d += m[typ]
		}
		if n != r.Kept[typ]+r.Duplicates[typ]+d {
			t.Errorf("%s: input %d != kept %d + duplicates %d + dropped %d", typ, n, r.Kept[typ], r.Duplicates[typ], d)
		}
	}
}

func TestOverlapFragments(t *testing.T) {
	// A discontinuous span whose gap holds another span does not overlap
	// it.
	text := "hepatitis B chronic"
	docs := []Document{{ID: "f", Text: text, Spans: []Span{
		{Start: 0, End: 19, Type: "DISO", Text: text, Fragments: [][2]int{{0, 9}, {12, 19}}},
		{Start: 10, End: 11, Type: "LIVB", Text: "B"},
	}}}
	rep := ResolveOverlaps(docs, DropBoth)
	if len(docs[0].Spans) != 2 || rep.TotalDropped() != 0 {
		t.Errorf("kept %+v, dropped %d", docs[0].Spans, rep.TotalDropped())
	}
	// KeepLongest measures a fragmented span without its gap: 16 bytes.
	docs[0].Spans = append(docs[0].Spans, Span{Start: 0, End: 17, Type: "X", Text: text[:17]})
	ResolveOverlaps(docs, KeepLongest)
	if len(docs[0].Spans) != 1 || docs[0].Spans[0].Type != "X" {
		t.Errorf("kept %+v, want the 17-byte X", docs[0].Spans)
	}
}

func TestParseOverlapPolicy(t *testing.T) {
	for _, p := range []OverlapPolicy{KeepLongest, KeepFirst, DropBoth} {
		q, err := ParseOverlapPolicy(p.String())
		if err != nil || q != p {
			t.Errorf("%v: %v %v", p, q, err)
		}
	}
	if _, err := ParseOverlapPolicy("keep-all"); err == nil {
		t.Error("no error for an unknown policy")
	}
}

// TestOverlapQuaero records what each policy does to QUAERO EMEA train,
// the paper's French training set, whose annotations nest heavily.
func TestOverlapQuaero(t *testing.T) {
	base, _, err := ReadBrat(mtltest.DataPath(t, "quaero/train/EMEA"))
	if err != nil {
		t.Fatal(err)
	}
	// Kept counts measured with this code (no exact duplicates in the
	// set): nested spans are the rule, so DropBoth loses 24% of them.
	wantKept := map[OverlapPolicy]int{KeepLongest: 2333, KeepFirst: 2333, DropBoth: 2048}
	for _, p := range []OverlapPolicy{KeepLongest, KeepFirst, DropBoth} {
		docs := make([]Document, len(base))
		for i, d := range base {
			docs[i] = d
			docs[i].Spans = append([]Span(nil), d.Spans...)
		}
		rep := ResolveOverlaps(docs, p)
		balance(t, rep)
		checkDocs(t, docs)
		kept := 0
		for _, n := range rep.Kept {
			kept += n
		}
		if kept != wantKept[p] || kept+rep.TotalDropped() != 2695 {
			t.Errorf("%v: kept %d, dropped %d of 2695; want kept %d", p, kept, rep.TotalDropped(), wantKept[p])
		}
		for _, d := range docs {
			for i := range d.Spans {
				for j := i + 1; j < len(d.Spans); j++ {
					if d.Spans[i].overlaps(d.Spans[j]) {
						t.Fatalf("%v: %s: spans %+v and %+v still overlap", p, d.ID, d.Spans[i], d.Spans[j])
					}
				}
			}
		}
	}
}
