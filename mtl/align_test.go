package mtl

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

// tinyVocab: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, then the words below.
var tinyVocab = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
	"Patient", "took", "5", "##mg", "as", "##pi", "##rin", "##s", "daily", ".", "no", "chest", "pain"}

func tinyTokenizer(t *testing.T) *bert.Tokenizer {
	t.Helper()
	v, err := bert.ReadVocab(strings.NewReader(strings.Join(tinyVocab, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return bert.NewTokenizer(v, bert.TokenizerOptions{LowerCase: false})
}

// doc1 tokenises as Patient took 5 ##mg as ##pi ##rin ##s daily .
// sub-words 0..9, words Patient took 5mg aspirins daily . (0..5).
const doc1Text = "Patient took 5mg aspirins daily."

func mkSpan(text string, a, b int, typ string) corpus.Span {
	return corpus.Span{Start: a, End: b, Type: typ, Text: text[a:b]}
}

func doc1() corpus.Document {
	return corpus.Document{ID: "d1", Text: doc1Text, Spans: []corpus.Span{
		mkSpan(doc1Text, 13, 14, "Dose"),  // "5" inside the word "5mg": boundary
		mkSpan(doc1Text, 17, 25, "Drug"),  // "aspirins": exact
		mkSpan(doc1Text, 26, 31, "Freq"),  // "daily": exact
		mkSpan(doc1Text, 26, 31, "Freq"),  // duplicate
		mkSpan(doc1Text, 17, 31, "Drug"),  // "aspirins daily": overlaps, longest: kept
		mkSpan(doc1Text, 7, 8, "Space"),   // " ": no sub-word
		mkSpan(doc1Text, 14, 16, "Unit"),  // "mg": collides with Dose once widened
		mkSpan(doc1Text, 0, 7, "Patient"), // exact
	}}
}

func TestAlignTiny(t *testing.T) {
	tok := tinyTokenizer(t)
	d := doc1()
	// Without the overlapping long Drug, so that Drug and Freq are both kept.
	d.Spans = append(d.Spans[:4:4], d.Spans[5:]...)
	orig := append([]corpus.Span(nil), d.Spans...)
	for _, tc := range []struct {
		scheme corpus.Scheme
		all    bool
		labels []int32
		names  []string
	}{
		{corpus.BIO, false, []int32{7, 0, 1, IgnoreLabel, 3, IgnoreLabel, IgnoreLabel, IgnoreLabel, 5, 0},
			[]string{"O", "B-Dose", "I-Dose", "B-Drug", "I-Drug", "B-Freq", "I-Freq", "B-Patient", "I-Patient", "B-Space", "I-Space", "B-Unit", "I-Unit"}},
		{corpus.BIO, true, []int32{7, 0, 1, 1, 3, 3, 3, 3, 5, 0}, nil},
		{corpus.BILOU, false, []int32{16, 0, 4, IgnoreLabel, 8, IgnoreLabel, IgnoreLabel, IgnoreLabel, 12, 0},
			[]string{"O", "B-Dose", "I-Dose", "L-Dose", "U-Dose", "B-Drug", "I-Drug", "L-Drug", "U-Drug",
				"B-Freq", "I-Freq", "L-Freq", "U-Freq", "B-Patient", "I-Patient", "L-Patient", "U-Patient",
				"B-Space", "I-Space", "L-Space", "U-Space", "B-Unit", "I-Unit", "L-Unit", "U-Unit"}},
		{corpus.BILOU, true, []int32{16, 0, 4, 4, 8, 8, 8, 8, 12, 0}, nil},
	} {
		name := fmt.Sprintf("%v/all=%v", tc.scheme, tc.all)
		a, err := Align(tok, []corpus.Document{d}, nil, AlignOptions{Scheme: tc.scheme, LabelAllSubwords: tc.all})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(d.Spans, orig) {
			t.Fatalf("%s: Align modified the caller's spans", name)
		}
		if tc.names != nil && !reflect.DeepEqual(a.Labels.Names, tc.names) {
			t.Errorf("%s: labels %v\nwant %v", name, a.Labels.Names, tc.names)
		}
		ad := a.Docs[0]
		if want := []int32{5, 6, 7, 8, 9, 10, 11, 12, 13, 14}; !reflect.DeepEqual(ad.IDs, want) {
			t.Errorf("%s: ids %v, want %v", name, ad.IDs, want)
		}
		if !reflect.DeepEqual(ad.Labels, tc.labels) {
			t.Errorf("%s: labels %v, want %v", name, ad.Labels, tc.labels)
		}
		wantWords := []Word{{0, 1, 0, 7}, {1, 2, 8, 12}, {2, 4, 13, 16}, {4, 8, 17, 25}, {8, 9, 26, 31}, {9, 10, 31, 32}}
		if !reflect.DeepEqual(ad.Words, wantWords) {
			t.Errorf("%s: words %v", name, ad.Words)
		}
		if len(ad.Windows) != 1 {
			t.Fatalf("%s: %d windows", name, len(ad.Windows))
		}
		w := ad.Windows[0]
		if wantIDs := []int32{2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 3}; !reflect.DeepEqual(w.IDs, wantIDs) {
			t.Errorf("%s: window ids %v", name, w.IDs)
		}
		if w.Labels[0] != IgnoreLabel || w.Labels[11] != IgnoreLabel || !reflect.DeepEqual(w.Labels[1:11], tc.labels) {
			t.Errorf("%s: window labels %v", name, w.Labels)
		}
		wantSpans := []corpus.Span{mkSpan(doc1Text, 0, 7, "Patient"), mkSpan(doc1Text, 13, 16, "Dose"),
			mkSpan(doc1Text, 17, 25, "Drug"), mkSpan(doc1Text, 26, 31, "Freq")}
		if !reflect.DeepEqual(ad.Spans, wantSpans) {
			t.Errorf("%s: spans %v", name, ad.Spans)
		}
		got, err := ad.Decode(ad.Labels, a.Labels)
		if err != nil || !reflect.DeepEqual(got, wantSpans) {
			t.Errorf("%s: decode %v, %v", name, got, err)
		}
		st := a.Stats
		if st.SubWords != 10 || st.Words != 6 || st.Windows != 1 || st.Truncated != 0 || st.Documents != 1 {
			t.Errorf("%s: stats %+v", name, st)
		}
		want := map[string]SpanCounts{
			"Dose":    {Input: 1, Boundary: 1},
			"Drug":    {Input: 1, Exact: 1},
			"Freq":    {Input: 2, Duplicates: 1, Exact: 1},
			"Space":   {Input: 1, NoTokens: 1},
			"Unit":    {Input: 1, Collision: 1},
			"Patient": {Input: 1, Exact: 1},
		}
		if !reflect.DeepEqual(st.Types, want) {
			t.Errorf("%s: type stats %+v", name, st.Types)
		}
	}
}

func TestAlignOverlapAndFragments(t *testing.T) {
	tok := tinyTokenizer(t)
	d := doc1()
	// Drug "took ... aspirins" as two pieces, and the long Drug.
	d.Spans = []corpus.Span{
		{Start: 8, End: 25, Type: "Drug", Text: doc1Text[8:25], Fragments: [][2]int{{8, 12}, {17, 25}}},
		mkSpan(doc1Text, 26, 31, "Freq"),
		mkSpan(doc1Text, 17, 31, "Drug"), // overlaps the fragment's second piece: shorter (8+4=12 < 14) so it wins
	}
	a, err := Align(tok, []corpus.Document{d}, nil, AlignOptions{Scheme: corpus.BIO})
	if err != nil {
		t.Fatal(err)
	}
	ad := a.Docs[0]
	if ad.Stats.Types["Drug"] != (SpanCounts{Input: 2, Overlap: 1, Exact: 1}) || ad.Stats.Types["Freq"] != (SpanCounts{Input: 1, Overlap: 1}) {
		t.Errorf("stats %+v", ad.Stats.Types)
	}
	if a.Overlap.TotalDropped() != 2 {
		t.Errorf("overlap report drops %d, want 2", a.Overlap.TotalDropped())
	}
	// Without the long Drug: the fragment is tagged piece by piece.
	d.Spans = d.Spans[:2]
	a, err = Align(tok, []corpus.Document{d}, nil, AlignOptions{Scheme: corpus.BIO})
	if err != nil {
		t.Fatal(err)
	}
	ad = a.Docs[0]
	// O=0 B-Drug=1 I-Drug=2 B-Freq=3 I-Freq=4
	if want := []int32{0, 1, 0, IgnoreLabel, 1, IgnoreLabel, IgnoreLabel, IgnoreLabel, 3, 0}; !reflect.DeepEqual(ad.Labels, want) {
		t.Errorf("labels %v, want %v", ad.Labels, want)
	}
	if ad.Stats.Types["Drug"] != (SpanCounts{Input: 1, Fragmented: 1}) {
		t.Errorf("stats %+v", ad.Stats.Types)
	}
	got, _ := ad.Decode(ad.Labels, a.Labels)
	want := []corpus.Span{mkSpan(doc1Text, 8, 12, "Drug"), mkSpan(doc1Text, 17, 25, "Drug"), mkSpan(doc1Text, 26, 31, "Freq")}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(ad.Spans, want) {
		t.Errorf("decoded %v\nspans %v", got, ad.Spans)
	}
}

func TestAlignMultiWordBILOU(t *testing.T) {
	tok := tinyTokenizer(t)
	text := "no chest pain. Patient took aspirins"
	d := corpus.Document{ID: "d2", Text: text, Spans: []corpus.Span{mkSpan(text, 3, 13, "Problem"), mkSpan(text, 15, 36, "X")}}
	a, err := Align(tok, []corpus.Document{d}, nil, AlignOptions{Scheme: corpus.BILOU, LabelAllSubwords: true})
	if err != nil {
		t.Fatal(err)
	}
	// O, B/I/L/U-Problem = 1..4, B/I/L/U-X = 5..8.
	want := []int32{0, 1, 3, 0, 5, 6, 7, 7, 7, 7}
	if !reflect.DeepEqual(a.Docs[0].Labels, want) {
		t.Errorf("labels %v, want %v", a.Docs[0].Labels, want)
	}
	tags, _ := a.Docs[0].WordTagsOf(a.Docs[0].Labels, a.Labels)
	if strings.Join(tags, " ") != "O B-Problem L-Problem O B-X I-X L-X" {
		t.Errorf("word tags %v", tags)
	}
}

func TestAlignFixedLabels(t *testing.T) {
	tok := tinyTokenizer(t)
	d := doc1()
	_, err := Align(tok, []corpus.Document{d}, SchemeLabels(corpus.BIO, []string{"Drug", "Freq"}), AlignOptions{})
	if err == nil || !strings.Contains(err.Error(), "d1") || !strings.Contains(err.Error(), `"Dose"`) {
		t.Errorf("unknown type: err = %v", err)
	}
	// A BIO label set cannot serve BILOU.
	_, err = Align(tok, []corpus.Document{{ID: "x", Text: "daily", Spans: []corpus.Span{mkSpan("daily", 0, 5, "Freq")}}},
		SchemeLabels(corpus.BIO, []string{"Freq"}), AlignOptions{Scheme: corpus.BILOU})
	if err == nil || !strings.Contains(err.Error(), "L-Freq") {
		t.Errorf("missing L- tag: err = %v", err)
	}
	if _, err := NewLabels([]string{"O", "B-X", "O"}); err == nil {
		t.Error("repeated label accepted")
	}
	for _, o := range []AlignOptions{{MaxLen: 2}, {MaxLen: 10, Stride: 9}, {Stride: -1}, {Scheme: 7}} {
		if _, err := Align(tok, []corpus.Document{d}, nil, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestWindowsAndMerge(t *testing.T) {
	tok := tinyTokenizer(t)
	a, err := Align(tok, []corpus.Document{doc1()}, nil, AlignOptions{Scheme: corpus.BIO, MaxLen: 6, Stride: 3})
	if err != nil {
		t.Fatal(err)
	}
	ad := a.Docs[0]
	// 10 sub-words, 4 per window: starts 0, 3, then the last window ends at 10: start 6.
	var firsts []int
	for _, w := range ad.Windows {
		firsts = append(firsts, w.First)
	}
	if !reflect.DeepEqual(firsts, []int{0, 3, 6}) {
		t.Fatalf("window starts %v", firsts)
	}
	if w := ad.Windows[1]; !reflect.DeepEqual(w.IDs, []int32{2, 8, 9, 10, 11, 3}) {
		t.Errorf("window 1 ids %v", w.IDs)
	}
	if a.Stats.Windows != 3 || a.Stats.Truncated != 0 {
		t.Errorf("stats %+v", a.Stats)
	}
	// Stride 2: starts 0 2 4 6. Predictions = 100*window + position tell
	// which window each sub-word was taken from.
	ws, err := ad.MakeWindows(0, 2, 3, 6, 2)
	if err != nil {
		t.Fatal(err)
	}
	preds := make([][]int32, len(ws))
	for i, w := range ws {
		for j := range w.IDs {
			preds[i] = append(preds[i], int32(100*i+j))
		}
	}
	got, err := MergeWindows(10, ws, preds)
	if err != nil {
		t.Fatal(err)
	}
	// sub-word: 0 1 from w0 (0 is only there; 1: c=1 in w0); 2: w0 c=1 vs w1 c=0 -> w0 (pos 3);
	// 3: w0 c=0, w1 c=1 -> w1 pos 2; 4: w1 c=1 (pos 3) vs w2 c=0; 5: w1 c=0, w2 c=1 -> w2 pos 2;
	// 6: w2 pos 3 (c=1) vs w3 c=0; 7: w3 pos 2; 8: w3 pos 3; 9: w3 pos 4.
	want := []int32{1, 2, 3, 102, 103, 202, 203, 302, 303, 304}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
	if _, err := MergeWindows(11, ws, preds); err == nil {
		t.Error("uncovered sub-word accepted")
	}
	if _, err := MergeWindows(10, ws, preds[:2]); err == nil {
		t.Error("missing predictions accepted")
	}
	if _, err := ad.MakeWindows(0, 2, 3, 6, 5); err == nil {
		t.Error("stride > max length - 2 accepted")
	}
}

func TestDecodeIllFormed(t *testing.T) {
	tok := tinyTokenizer(t)
	a, err := Align(tok, []corpus.Document{doc1()}, SchemeLabels(corpus.BIO, []string{"Dose", "Drug", "Freq", "Patient", "Space", "Unit"}), AlignOptions{Scheme: corpus.BIO})
	if err != nil {
		t.Fatal(err)
	}
	ad := a.Docs[0]
	id := func(n string) int32 { i, _ := a.Labels.Index(n); return int32(i) }
	// Word tags: O I-Drug I-Drug O I-Freq I-Freq. seqeval: I-Drug after O
	// starts Drug over words 1-2; I-Freq after O starts Freq over 4-5. The
	// non-first sub-words' predictions (here B-Unit) are not read.
	sub := []int32{id("O"), id("I-Drug"), id("I-Drug"), id("B-Unit"), id("O"), id("B-Unit"), id("B-Unit"), id("B-Unit"), id("I-Freq"), id("I-Freq")}
	got, err := ad.Decode(sub, a.Labels)
	if err != nil {
		t.Fatal(err)
	}
	want := []corpus.Span{mkSpan(doc1Text, 8, 16, "Drug"), mkSpan(doc1Text, 26, 32, "Freq")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	// I-Dose then I-Drug: a change of type ends Dose and starts Drug.
	sub = []int32{0, 0, id("I-Dose"), 0, id("I-Drug"), 0, 0, 0, 0, 0}
	got, _ = ad.Decode(sub, a.Labels)
	want = []corpus.Span{mkSpan(doc1Text, 13, 16, "Dose"), mkSpan(doc1Text, 17, 25, "Drug")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %v, want %v", got, want)
	}
	sub[4] = IgnoreLabel
	if _, err := ad.Decode(sub, a.Labels); err == nil {
		t.Error("ignore label on a first sub-word accepted")
	}
	if _, err := ad.Decode(sub[:3], a.Labels); err == nil {
		t.Error("short label sequence accepted")
	}
}

// TestAlignRoundTripCorpora aligns every training document of the public
// corpora with the real cased vocabulary, cuts windows at two strides,
// merges the windows' gold labels back and decodes: the result must be
// exactly the spans as tagged, every exact span must come back unchanged,
// and the spans that do not come back must be exactly those the stats
// count as changed or dropped.
func TestAlignRoundTripCorpora(t *testing.T) {
	v, err := bert.LoadVocab(mtltest.DataPath(t, "vocab/bert-base-cased-vocab.txt"))
	root := mtltest.SharedData()
	if err != nil {
		t.Fatal(err)
	}
	tok := bert.NewTokenizer(v, bert.TokenizerOptions{LowerCase: false})
	sp := v.Specials()
	type source struct {
		name string
		read func() ([]corpus.Document, error)
	}
	conll := func(p string) func() ([]corpus.Document, error) {
		return func() ([]corpus.Document, error) {
			d, _, err := corpus.ReadCoNLL(filepath.Join(root, p))
			return d, err
		}
	}
	brat := func(ps ...string) func() ([]corpus.Document, error) {
		return func() ([]corpus.Document, error) {
			var all []corpus.Document
			for _, p := range ps {
				d, _, err := corpus.ReadBrat(filepath.Join(root, p))
				if err != nil {
					return nil, err
				}
				all = append(all, d...)
			}
			return all, nil
		}
	}
	for _, c := range []source{
		{"ncbi-train", conll("ncbi-disease/train.tsv")},
		{"bc5cdr-train", conll("bc5cdr/train.tsv")},
		{"quaero-train", brat("quaero/train/EMEA", "quaero/train/MEDLINE")},
		{"meddocan-train", brat("meddocan/train/brat")},
	} {
		docs, err := c.read()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, scheme := range []corpus.Scheme{corpus.BILOU, corpus.BIO} {
			opts := AlignOptions{Scheme: scheme, LabelAllSubwords: scheme == corpus.BIO, MaxLen: 128, Stride: 64}
			a, err := Align(tok, docs, nil, opts)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			// Independent recount of what came back.
			var exact, lost int
			kept := keptSpans(docs, opts.Overlap)
			windows := 0
			for i := range a.Docs {
				ad := &a.Docs[i]
				for _, g := range [][2]int{{128, 64}, {64, 62}} {
					ws, err := ad.MakeWindows(i, sp.Cls, sp.Sep, g[0], g[1])
					if err != nil {
						t.Fatal(err)
					}
					if g[0] == 128 {
						windows += len(ws)
					}
					preds := make([][]int32, len(ws))
					for j, w := range ws {
						preds[j] = w.Labels
					}
					merged, err := MergeWindows(len(ad.Tokens), ws, preds)
					if err != nil {
						t.Fatalf("%s %s: %v", c.name, ad.ID, err)
					}
					if !reflect.DeepEqual(merged, ad.Labels) && len(merged) > 0 {
						t.Fatalf("%s %s: merged labels differ from the document's", c.name, ad.ID)
					}
					got, err := ad.Decode(merged, a.Labels)
					if err != nil {
						t.Fatalf("%s %s: %v", c.name, ad.ID, err)
					}
					if !reflect.DeepEqual(got, ad.Spans) && len(got)+len(ad.Spans) > 0 {
						t.Fatalf("%s %s: decoded %d spans, tagged %d", c.name, ad.ID, len(got), len(ad.Spans))
					}
					for _, s := range got {
						if s.Text != ad.Text[s.Start:s.End] {
							t.Fatalf("%s %s: span text %q", c.name, ad.ID, s.Text)
						}
					}
				}
				set := map[string]bool{}
				for _, s := range ad.Spans {
					set[s.Key()] = true
				}
				for _, s := range kept[i] {
					if set[s.Key()] {
						exact++
					} else {
						lost++
					}
				}
			}
			tot := a.Stats.Total()
			if exact != tot.Exact {
				t.Errorf("%s %v: %d kept spans decode back unchanged, stats say %d exact", c.name, scheme, exact, tot.Exact)
			}
			if lost != tot.Boundary+tot.Fragmented+tot.Collision+tot.NoTokens {
				t.Errorf("%s %v: %d kept spans do not decode back, stats say boundary %d + fragmented %d + collision %d + no tokens %d",
					c.name, scheme, lost, tot.Boundary, tot.Fragmented, tot.Collision, tot.NoTokens)
			}
			if tot.Input != tot.Duplicates+tot.Overlap+tot.Kept()+tot.Collision+tot.NoTokens {
				t.Errorf("%s: counts do not add up: %+v", c.name, tot)
			}
			if a.Stats.Truncated != 0 || a.Stats.Windows == 0 {
				t.Errorf("%s: truncated %d, windows %d", c.name, a.Stats.Truncated, a.Stats.Windows)
			}
			if windows != a.Stats.Windows {
				t.Errorf("%s: %d windows at 128/64, stats say %d", c.name, windows, a.Stats.Windows)
			}
			t.Logf("%-15s %-5v docs %5d subwords %7d windows(128/64) %5d spans %6d: exact %6d boundary %4d fragmented %3d duplicates %3d overlap %4d collision %3d no-tokens %d",
				c.name, scheme, a.Stats.Documents, a.Stats.SubWords, a.Stats.Windows, tot.Input, tot.Exact, tot.Boundary, tot.Fragmented, tot.Duplicates, tot.Overlap, tot.Collision, tot.NoTokens)
		}
	}
}

// keptSpans returns the spans of each document that the overlap policy
// keeps, without touching docs.
func keptSpans(docs []corpus.Document, p corpus.OverlapPolicy) [][]corpus.Span {
	cp := append([]corpus.Document(nil), docs...)
	corpus.ResolveOverlaps(cp, p)
	out := make([][]corpus.Span, len(cp))
	for i := range cp {
		out[i] = cp[i].Spans
	}
	return out
}
