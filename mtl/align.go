package mtl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// IgnoreLabel is the label of a sub-word that is not trained: [CLS], [SEP],
// padding and, unless AlignOptions.LabelAllSubwords, every sub-word of a
// word but its first. It is PyTorch's CrossEntropyLoss ignore_index
// (autograd.IgnoreIndex).
const IgnoreLabel = -100

// DefaultMaxLen is the default window length in sub-words, [CLS] and [SEP]
// included: BERT's 512 positions.
const DefaultMaxLen = 512

// DefaultStride returns the default stride for windows of maxLen sub-words:
// half a window, (maxLen-2)/2 (at least 1), so that every sub-word of a long
// document lies in the central half of some window and MergeWindows can
// take its label from a window where it has at least a quarter window of
// context on both sides (except near the document's ends).
func DefaultStride(maxLen int) int {
	return max(1, (maxLen-2)/2)
}

// ParseScheme parses "BIO" or "BILOU" (case-insensitive; "IOB2" is BIO and
// "IOBES" is BILOU).
func ParseScheme(s string) (corpus.Scheme, error) {
	switch strings.ToUpper(s) {
	case "BIO", "IOB2":
		return corpus.BIO, nil
	case "BILOU", "IOBES":
		return corpus.BILOU, nil
	}
	return 0, fmt.Errorf("mtl: unknown tagging scheme %q (want BIO or BILOU)", s)
}

// AlignOptions control how entity spans become sub-word labels.
type AlignOptions struct {
	// Scheme is the tagging scheme (BIO or BILOU).
	Scheme corpus.Scheme
	// LabelAllSubwords gives every sub-word of a word the word's tag, as
	// the reference code does (a word tagged B-X has B-X on each of its
	// sub-words: the tag is copied, not re-derived per sub-word, so that
	// the first sub-word carries the word's tag either way). When false
	// (the default), only the first sub-word of each word is trained and
	// the others get IgnoreLabel. Decoding always reads the first
	// sub-word of each word.
	LabelAllSubwords bool
	// MaxLen is the window length in sub-words including [CLS] and [SEP];
	// 0 means DefaultMaxLen. At least 3.
	MaxLen int
	// Stride is the number of sub-words between the starts of consecutive
	// windows; 0 means DefaultStride(MaxLen). 1 <= Stride <= MaxLen-2
	// (Stride = MaxLen-2 gives windows without overlap).
	Stride int
	// Overlap is the policy ResolveOverlaps applies before alignment, and
	// again to spans that collide once widened to whole words.
	Overlap corpus.OverlapPolicy
}

// withDefaults fills zero fields and checks the others.
func (o AlignOptions) withDefaults() (AlignOptions, error) {
	if o.MaxLen == 0 {
		o.MaxLen = DefaultMaxLen
	}
	if o.MaxLen < 3 {
		return o, fmt.Errorf("mtl: max length %d is below 3 ([CLS], one sub-word, [SEP])", o.MaxLen)
	}
	if o.Stride == 0 {
		o.Stride = DefaultStride(o.MaxLen)
	}
	if o.Stride < 1 || o.Stride > o.MaxLen-2 {
		return o, fmt.Errorf("mtl: stride %d out of range [1, %d] for max length %d", o.Stride, o.MaxLen-2, o.MaxLen)
	}
	if o.Scheme != corpus.BIO && o.Scheme != corpus.BILOU {
		return o, fmt.Errorf("mtl: unknown scheme %v", o.Scheme)
	}
	if o.Overlap < corpus.KeepLongest || o.Overlap > corpus.DropBoth {
		return o, fmt.Errorf("mtl: unknown overlap policy %v", o.Overlap)
	}
	return o, nil
}

// Labels is an ordered label set: label id i is Names[i].
type Labels struct {
	// Names are the labels; for NER "O" then P-TYPE tags.
	Names []string
	index map[string]int
}

// NewLabels returns the label set names (copied), checking that no name is
// empty or repeated.
func NewLabels(names []string) (*Labels, error) {
	l := &Labels{Names: append([]string(nil), names...), index: make(map[string]int, len(names))}
	for i, n := range l.Names {
		if n == "" {
			return nil, fmt.Errorf("mtl: label %d is empty", i)
		}
		if j, dup := l.index[n]; dup {
			return nil, fmt.Errorf("mtl: label %q repeated (ids %d and %d)", n, j, i)
		}
		l.index[n] = i
	}
	return l, nil
}

// SchemeLabels returns the NER label set of a scheme over the given entity
// types, deterministically: "O" first, then for each type in sorted order
// B-T, I-T and, for BILOU, L-T, U-T. Repeated types count once.
func SchemeLabels(scheme corpus.Scheme, types []string) *Labels {
	ts := append([]string(nil), types...)
	sort.Strings(ts)
	names := []string{"O"}
	prefixes := []string{"B-", "I-"}
	if scheme == corpus.BILOU {
		prefixes = append(prefixes, "L-", "U-")
	}
	for i, t := range ts {
		if i > 0 && ts[i-1] == t {
			continue
		}
		for _, p := range prefixes {
			names = append(names, p+t)
		}
	}
	l, err := NewLabels(names)
	if err != nil {
		panic("mtl: SchemeLabels: " + err.Error()) // unreachable: names are unique
	}
	return l
}

// Len returns the number of labels.
func (l *Labels) Len() int { return len(l.Names) }

// Index returns the id of a label name.
func (l *Labels) Index(name string) (int, bool) {
	if l.index == nil {
		for i, n := range l.Names {
			if n == name {
				return i, true
			}
		}
		return 0, false
	}
	i, ok := l.index[name]
	return i, ok
}

// Name returns the name of label id, or "" when id is out of range.
func (l *Labels) Name(id int) string {
	if id < 0 || id >= len(l.Names) {
		return ""
	}
	return l.Names[id]
}

// CheckType reports an error unless every tag the scheme needs for type t
// is in the set.
func (l *Labels) CheckType(scheme corpus.Scheme, t string) error {
	prefixes := []string{"B-", "I-"}
	if scheme == corpus.BILOU {
		prefixes = append(prefixes, "L-", "U-")
	}
	for _, p := range prefixes {
		if _, ok := l.Index(p + t); !ok {
			return fmt.Errorf("label %q not in the label set", p+t)
		}
	}
	return nil
}

// Word is one word of the tokenizer: a sub-word whose text does not begin
// with "##" and the "##" continuations that follow it (a whitespace- and
// punctuation-delimited piece of BERT's BasicTokenizer).
type Word struct {
	// FirstSub and EndSub delimit the word's sub-words [FirstSub, EndSub)
	// in AlignedDoc.Tokens.
	FirstSub, EndSub int
	// Start and End are byte offsets into the document text: the first
	// sub-word's Start and the last sub-word's End.
	Start, End int
}

// SpanCounts counts what alignment did to the spans of one entity type.
// Input = Duplicates + Overlap + Exact + Boundary + Fragmented + Collision
// + NoTokens.
type SpanCounts struct {
	// Input counts the spans read.
	Input int `json:"input"`
	// Duplicates are exact duplicates (same pieces and type) collapsed.
	Duplicates int `json:"duplicates"`
	// Overlap are spans dropped by the overlap policy (ResolveOverlaps).
	Overlap int `json:"dropped_overlap"`
	// Exact are kept spans whose boundaries fall on word boundaries: they
	// decode back to the same span.
	Exact int `json:"exact"`
	// Boundary are kept contiguous spans that start or end inside a word
	// ("5" of "5mg"): they are tagged over the words that cover them and
	// decode to that wider span.
	Boundary int `json:"changed_boundary"`
	// Fragmented are kept discontinuous spans (Span.Fragments). Tags
	// cannot express a gap, so each piece is tagged as its own entity
	// over the words covering it (pieces sharing a word are merged): the
	// gap stays O, and the span decodes as one contiguous span per piece.
	Fragmented int `json:"changed_fragmented"`
	// Collision are spans dropped because, once widened to whole words,
	// they shared a word with another kept span; the overlap policy picks
	// the survivor among the widened spans.
	Collision int `json:"dropped_collision"`
	// NoTokens are spans dropped because no sub-word overlaps them (text
	// the tokenizer removes: whitespace, control characters).
	NoTokens int `json:"dropped_no_tokens"`
}

func (c *SpanCounts) add(o SpanCounts) {
	c.Input += o.Input
	c.Duplicates += o.Duplicates
	c.Overlap += o.Overlap
	c.Exact += o.Exact
	c.Boundary += o.Boundary
	c.Fragmented += o.Fragmented
	c.Collision += o.Collision
	c.NoTokens += o.NoTokens
}

// Kept returns the number of spans that are tagged: Exact + Boundary +
// Fragmented.
func (c SpanCounts) Kept() int { return c.Exact + c.Boundary + c.Fragmented }

// AlignStats counts what alignment saw and did over one or more documents.
type AlignStats struct {
	// Documents aligned.
	Documents int `json:"documents"`
	// SubWords and Words count the tokenizer's output.
	SubWords int `json:"subwords"`
	Words    int `json:"words"`
	// Windows counts the [CLS] ... [SEP] windows made.
	Windows int `json:"windows"`
	// Truncated counts sub-words in no window. Windows cover every
	// sub-word, so it is 0; it is reported to show that nothing is cut.
	Truncated int `json:"truncated_subwords"`
	// Types counts spans per entity type.
	Types map[string]SpanCounts `json:"types"`
}

// Total returns the span counts summed over types.
func (s AlignStats) Total() SpanCounts {
	var t SpanCounts
	for _, c := range s.Types {
		t.add(c)
	}
	return t
}

func (s *AlignStats) add(o AlignStats) {
	s.Documents += o.Documents
	s.SubWords += o.SubWords
	s.Words += o.Words
	s.Windows += o.Windows
	s.Truncated += o.Truncated
	for t, c := range o.Types {
		if s.Types == nil {
			s.Types = map[string]SpanCounts{}
		}
		x := s.Types[t]
		x.add(c)
		s.Types[t] = x
	}
}

func (s *AlignStats) count(t string, f func(*SpanCounts)) {
	if s.Types == nil {
		s.Types = map[string]SpanCounts{}
	}
	c := s.Types[t]
	f(&c)
	s.Types[t] = c
}

// Window is one model input cut from a document: [CLS], at most MaxLen-2
// consecutive sub-words of the document, [SEP]. No padding is added.
type Window struct {
	// Doc is the index of the document in the aligned set.
	Doc int
	// First is the index, in the document's sub-words, of the window's
	// first sub-word (the one after [CLS]).
	First int
	// IDs are the token ids, [CLS] and [SEP] included.
	IDs []int32
	// Labels are the label ids parallel to IDs, IgnoreLabel at [CLS],
	// [SEP] and untrained sub-words.
	Labels []int32
}

// Len returns the number of document sub-words in the window (the specials
// excluded).
func (w Window) Len() int { return len(w.IDs) - 2 }

// AlignedDoc is one document turned into sub-words and labels.
type AlignedDoc struct {
	// ID and Text are the document's.
	ID   string
	Text string
	// Tokens are the sub-words of Text (bert.Tokenizer.Tokenize).
	Tokens []bert.Token
	// IDs are the token ids of Tokens, as int32.
	IDs []int32
	// Words groups Tokens into words; WordOf[i] is the word of Tokens[i].
	Words  []Word
	WordOf []int32
	// Labels is the gold label id of each sub-word, IgnoreLabel where not
	// trained.
	Labels []int32
	// WordTags is the gold tag of each word (for TokenF1).
	WordTags []string
	// Spans are the spans as tagged, sorted: exact spans unchanged,
	// changed ones widened to whole words, fragmented ones split into one
	// span per piece. Decode of Labels gives back exactly these.
	Spans []corpus.Span
	// Windows are the document's model inputs.
	Windows []Window
	// Stats counts this document alone.
	Stats AlignStats
}

// Aligned is the result of Align over a set of documents.
type Aligned struct {
	// Docs parallels the input documents.
	Docs []AlignedDoc
	// Labels is the label set used.
	Labels *Labels
	// Options are the options used, defaults filled in.
	Options AlignOptions
	// Stats sums the documents' stats.
	Stats AlignStats
	// Overlap is the report of the overlap policy over all documents
	// (before words were considered).
	Overlap corpus.OverlapReport
}

// Windows returns the windows of every document, in document order.
func (a *Aligned) Windows() []Window {
	var out []Window
	for i := range a.Docs {
		out = append(out, a.Docs[i].Windows...)
	}
	return out
}

// Align turns documents into sub-word label sequences and windows.
//
// For each document (the caller's documents are not modified): exact
// duplicate spans are collapsed and overlaps resolved by opts.Overlap
// (ResolveOverlaps). Each kept span is mapped to the words whose sub-words
// overlap its pieces (Span.Pieces). A contiguous span whose first and last
// bytes are a word's first and last bytes is Exact; one that starts or
// ends inside a word is widened to the covering words (Boundary); a
// discontinuous span is tagged piece by piece (Fragmented: each piece,
// widened to words, is an entity of its own, pieces sharing a word
// merged). Widened spans that now share a word with another are resolved
// again by the same policy (the loser counts as Collision); a span no
// sub-word overlaps is dropped (NoTokens). Every case is counted per type
// in the stats; nothing is dropped silently.
//
// The word tags follow opts.Scheme (EncodeTags); a word's tag goes on its
// first sub-word, and on the others too when opts.LabelAllSubwords, else
// they get IgnoreLabel. Then each document's sub-words are cut into
// windows (see AlignedDoc.MakeWindows). A document without sub-words has
// no window.
//
// labels nil means SchemeLabels over the types of docs. With a given label
// set, a span type whose tags are not all in it is an error naming the
// document and the type.
func Align(tok *bert.Tokenizer, docs []corpus.Document, labels *Labels, opts AlignOptions) (*Aligned, error) {
	if tok == nil {
		return nil, fmt.Errorf("mtl: Align: nil tokenizer")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if labels == nil {
		var types []string
		for t := range corpus.CountTypes(docs) {
			types = append(types, t)
		}
		labels = SchemeLabels(opts.Scheme, types)
	}
	sp := tok.Vocab().Specials()
	out := &Aligned{
		Docs:    make([]AlignedDoc, len(docs)),
		Labels:  labels,
		Options: opts,
		Overlap: corpus.OverlapReport{Policy: opts.Overlap, Input: map[string]int{}, Kept: map[string]int{}, Duplicates: map[string]int{}, Dropped: map[string]map[string]int{}},
	}
	for i := range docs {
		ad, rep, err := alignDoc(tok, docs[i], labels, opts)
		if err != nil {
			return nil, err
		}
		ad.Windows, err = ad.MakeWindows(i, sp.Cls, sp.Sep, opts.MaxLen, opts.Stride)
		if err != nil {
			return nil, err
		}
		ad.Stats.Windows = len(ad.Windows)
		ad.Stats.Truncated = uncovered(len(ad.Tokens), ad.Windows)
		out.Docs[i] = ad
		out.Stats.add(ad.Stats)
		mergeReport(&out.Overlap, rep)
	}
	return out, nil
}

// mergeReport adds r into dst.
func mergeReport(dst *corpus.OverlapReport, r corpus.OverlapReport) {
	for t, n := range r.Input {
		dst.Input[t] += n
	}
	for t, n := range r.Kept {
		dst.Kept[t] += n
	}
	for t, n := range r.Duplicates {
		dst.Duplicates[t] += n
	}
	for reason, m := range r.Dropped {
		if dst.Dropped[reason] == nil {
			dst.Dropped[reason] = map[string]int{}
		}
		for t, n := range m {
			dst.Dropped[reason][t] += n
		}
	}
	dst.Drops = append(dst.Drops, r.Drops...)
}

// uncovered counts sub-words in [0,n) that no window holds.
func uncovered(n int, ws []Window) int {
	covered := make([]bool, n)
	for _, w := range ws {
		for j := w.First; j < w.First+w.Len() && j < n; j++ {
			covered[j] = true
		}
	}
	c := 0
	for _, ok := range covered {
		if !ok {
			c++
		}
	}
	return c
}

// words groups sub-words into words: a sub-word whose text begins with
// "##" continues the word before it.
func words(toks []bert.Token) ([]Word, []int32) {
	var ws []Word
	of := make([]int32, len(toks))
	for i, t := range toks {
		if i > 0 && strings.HasPrefix(t.Text, "##") {
			w := &ws[len(ws)-1]
			w.EndSub = i + 1
			w.End = max(w.End, t.End)
		} else {
			ws = append(ws, Word{FirstSub: i, EndSub: i + 1, Start: t.Start, End: t.End})
		}
		of[i] = int32(len(ws) - 1)
	}
	return ws, of
}

// wordRange returns the words [lo, hi) that overlap bytes [a, b); lo == hi
// when none does.
func wordRange(ws []Word, a, b int) (int, int) {
	lo := sort.Search(len(ws), func(i int) bool { return ws[i].End > a })
	hi := lo
	for hi < len(ws) && ws[hi].Start < b {
		hi++
	}
	// Words are ordered and each overlaps [a,b) iff End > a and Start < b.
	for lo < hi && ws[lo].Start >= ws[lo].End { // an empty word overlaps nothing
		lo++
	}
	return lo, hi
}

// unit is a kept span in word coordinates: one or more disjoint word
// ranges.
type unit struct {
	orig   int // index in the document's kept spans
	groups [][2]int
}

func alignDoc(tok *bert.Tokenizer, doc corpus.Document, labels *Labels, opts AlignOptions) (AlignedDoc, corpus.OverlapReport, error) {
	ad := AlignedDoc{ID: doc.ID, Text: doc.Text}
	for _, s := range doc.Spans {
		if err := labels.CheckType(opts.Scheme, s.Type); err != nil {
			return ad, corpus.OverlapReport{}, fmt.Errorf("mtl: document %s: entity type %q: %v", doc.ID, s.Type, err)
		}
	}
	ad.Tokens = tok.Tokenize(doc.Text)
	ad.IDs = make([]int32, len(ad.Tokens))
	for i, t := range ad.Tokens {
		ad.IDs[i] = int32(t.ID)
	}
	ad.Words, ad.WordOf = words(ad.Tokens)
	st := &ad.Stats
	st.Documents, st.SubWords, st.Words = 1, len(ad.Tokens), len(ad.Words)

	one := []corpus.Document{doc} // a copy: ResolveOverlaps replaces one[0].Spans only
	rep := corpus.ResolveOverlaps(one, opts.Overlap)
	for t, n := range rep.Input {
		st.count(t, func(c *SpanCounts) { c.Input += n })
	}
	for t, n := range rep.Duplicates {
		st.count(t, func(c *SpanCounts) { c.Duplicates += n })
	}
	for _, m := range rep.Dropped {
		for t, n := range m {
			st.count(t, func(c *SpanCounts) { c.Overlap += n })
		}
	}
	kept := one[0].Spans

	// Map kept spans to word ranges.
	var units []unit
	var widened []corpus.Span
	for i, s := range kept {
		var groups [][2]int
		for _, p := range s.Pieces() {
			lo, hi := wordRange(ad.Words, p[0], p[1])
			if lo == hi {
				continue
			}
			if n := len(groups); n > 0 && lo < groups[n-1][1] {
				groups[n-1][1] = max(groups[n-1][1], hi)
				continue
			}
			groups = append(groups, [2]int{lo, hi})
		}
		if len(groups) == 0 {
			st.count(s.Type, func(c *SpanCounts) { c.NoTokens++ })
			continue
		}
		u := unit{orig: i, groups: groups}
		w := corpus.Span{Start: ad.Words[groups[0][0]].Start, End: ad.Words[groups[len(groups)-1][1]-1].End,
			Type: fmt.Sprintf("%s\x00%08d", s.Type, len(units))}
		if len(groups) > 1 {
			for _, g := range groups {
				w.Fragments = append(w.Fragments, [2]int{ad.Words[g[0]].Start, ad.Words[g[1]-1].End})
			}
		}
		units = append(units, u)
		widened = append(widened, w)
	}
	// Resolve collisions between widened spans with the same policy. The
	// unit index in the type makes every widened span distinct.
	wd := []corpus.Document{{ID: doc.ID, Spans: widened}}
	corpus.ResolveOverlaps(wd, opts.Overlap)
	keep := make([]bool, len(units))
	for _, w := range wd[0].Spans {
		var ui int
		fmt.Sscanf(w.Type[strings.LastIndexByte(w.Type, 0)+1:], "%d", &ui)
		keep[ui] = true
	}
	var tagSpans []corpus.TagSpan
	for ui, u := range units {
		s := kept[u.orig]
		if !keep[ui] {
			st.count(s.Type, func(c *SpanCounts) { c.Collision++ })
			continue
		}
		switch {
		case len(s.Fragments) > 0:
			st.count(s.Type, func(c *SpanCounts) { c.Fragmented++ })
		case ad.Words[u.groups[0][0]].Start == s.Start && ad.Words[u.groups[0][1]-1].End == s.End:
			st.count(s.Type, func(c *SpanCounts) { c.Exact++ })
		default:
			st.count(s.Type, func(c *SpanCounts) { c.Boundary++ })
		}
		for _, g := range u.groups {
			tagSpans = append(tagSpans, corpus.TagSpan{Start: g[0], End: g[1], Type: s.Type})
			a, b := ad.Words[g[0]].Start, ad.Words[g[1]-1].End
			ad.Spans = append(ad.Spans, corpus.Span{Start: a, End: b, Type: s.Type, Text: doc.Text[a:b]})
		}
	}
	corpus.SortSpans(ad.Spans)
	sort.Slice(tagSpans, func(i, j int) bool { return tagSpans[i].Start < tagSpans[j].Start })
	tags, err := corpus.EncodeTags(len(ad.Words), tagSpans, opts.Scheme)
	if err != nil {
		return ad, rep, fmt.Errorf("mtl: document %s: %v", doc.ID, err) // unreachable after collision resolution
	}
	ad.WordTags = tags
	ad.Labels = make([]int32, len(ad.Tokens))
	for wi, w := range ad.Words {
		id, ok := labels.Index(tags[wi])
		if !ok {
			return ad, rep, fmt.Errorf("mtl: document %s: label %q not in the label set", doc.ID, tags[wi])
		}
		for j := w.FirstSub; j < w.EndSub; j++ {
			if j == w.FirstSub || opts.LabelAllSubwords {
				ad.Labels[j] = int32(id)
			} else {
				ad.Labels[j] = IgnoreLabel
			}
		}
	}
	return ad, rep, nil
}

// MakeWindows cuts the document's sub-words into windows for document
// index doc: content windows of at most maxLen-2 sub-words starting at 0,
// stride, 2*stride, ... while a window would stop short of the end, then
// one last window that ends at the document's last sub-word (it starts at
// max(0, n-(maxLen-2)), so it is full length unless the document is
// shorter, and may overlap the previous window by more than the others
// do). Each window is [CLS] content [SEP] with IgnoreLabel on the
// specials. A document of n <= maxLen-2 sub-words is one window; one of
// none has no window.
func (a *AlignedDoc) MakeWindows(doc, cls, sep, maxLen, stride int) ([]Window, error) {
	if maxLen < 3 || stride < 1 || stride > maxLen-2 {
		return nil, fmt.Errorf("mtl: windows: max length %d and stride %d (need max length >= 3, 1 <= stride <= max length - 2)", maxLen, stride)
	}
	n, l := len(a.Tokens), maxLen-2
	if n == 0 {
		return nil, nil
	}
	var starts []int
	s := 0
	for ; s+l < n; s += stride {
		starts = append(starts, s)
	}
	starts = append(starts, max(0, n-l))
	ws := make([]Window, len(starts))
	for i, s := range starts {
		e := min(n, s+l)
		w := Window{Doc: doc, First: s, IDs: make([]int32, 0, e-s+2), Labels: make([]int32, 0, e-s+2)}
		w.IDs = append(append(append(w.IDs, int32(cls)), a.IDs[s:e]...), int32(sep))
		w.Labels = append(append(append(w.Labels, IgnoreLabel), a.Labels[s:e]...), IgnoreLabel)
		ws[i] = w
	}
	return ws, nil
}

// MergeWindows joins per-window predictions back into one label per
// sub-word of a document of n sub-words. preds[i] parallels windows[i].IDs
// ([CLS] and [SEP] positions included, their values unused). Each sub-word
// takes its label from the window in which it is most central: the one
// that maximises min(distance to the window's first content sub-word,
// distance to its last), ties going to the earlier window. Windows must
// all belong to one document and cover every sub-word; anything else is an
// error.
func MergeWindows(n int, windows []Window, preds [][]int32) ([]int32, error) {
	if len(preds) != len(windows) {
		return nil, fmt.Errorf("mtl: MergeWindows: %d windows, %d predictions", len(windows), len(preds))
	}
	out := make([]int32, n)
	best := make([]int, n)
	for i := range best {
		best[i] = -1
	}
	for i, w := range windows {
		if w.Doc != windows[0].Doc {
			return nil, fmt.Errorf("mtl: MergeWindows: window %d is of document %d, window 0 of %d", i, w.Doc, windows[0].Doc)
		}
		if len(preds[i]) != len(w.IDs) {
			return nil, fmt.Errorf("mtl: MergeWindows: window %d has %d tokens, %d predictions", i, len(w.IDs), len(preds[i]))
		}
		k := w.Len()
		if w.First < 0 || k < 0 || w.First+k > n {
			return nil, fmt.Errorf("mtl: MergeWindows: window %d [%d,%d) outside the document's %d sub-words", i, w.First, w.First+k, n)
		}
		for q := 0; q < k; q++ {
			c := min(q, k-1-q)
			if c > best[w.First+q] {
				best[w.First+q] = c
				out[w.First+q] = preds[i][q+1]
			}
		}
	}
	for j, b := range best {
		if b < 0 {
			return nil, fmt.Errorf("mtl: MergeWindows: sub-word %d of %d is in no window", j, n)
		}
	}
	return out, nil
}

// WordTagsOf returns the tag of each word from per-sub-word label ids
// (gold, or merged predictions): the label of the word's first sub-word.
// It is the word-level sequence TokenF1 takes. A first sub-word labelled
// IgnoreLabel or out of range is an error.
func (a *AlignedDoc) WordTagsOf(sub []int32, labels *Labels) ([]string, error) {
	if len(sub) != len(a.Tokens) {
		return nil, fmt.Errorf("mtl: document %s: %d labels for %d sub-words", a.ID, len(sub), len(a.Tokens))
	}
	tags := make([]string, len(a.Words))
	for i, w := range a.Words {
		id := sub[w.FirstSub]
		name := labels.Name(int(id))
		if name == "" {
			return nil, fmt.Errorf("mtl: document %s: sub-word %d has label id %d (label set has %d)", a.ID, w.FirstSub, id, labels.Len())
		}
		tags[i] = name
	}
	return tags, nil
}

// Decode turns per-sub-word label ids (gold, or merged predictions) into
// spans of the original text. The tag of each word is its first
// sub-word's (WordTagsOf); the word tags are decoded with DecodeTags, so
// an ill-formed sequence is read as seqeval reads it (an I- or L- after O
// or after another type starts a new entity; a change of type ends one).
// An entity over words [i, j) becomes the span from Words[i].Start to
// Words[j-1].End, with Text = Text[Start:End] exactly. Spans are sorted by
// (Start, End, Type).
func (a *AlignedDoc) Decode(sub []int32, labels *Labels) ([]corpus.Span, error) {
	tags, err := a.WordTagsOf(sub, labels)
	if err != nil {
		return nil, err
	}
	return a.SpansOfWordTags(tags), nil
}

// SpansOfWordTags decodes one tag per word (see Decode).
func (a *AlignedDoc) SpansOfWordTags(tags []string) []corpus.Span {
	var out []corpus.Span
	for _, e := range corpus.DecodeTags(tags, corpus.BILOU) {
		if e.Type == "" {
			continue // a bare "B" or "I" without type
		}
		s, t := a.Words[e.Start].Start, a.Words[e.End-1].End
		out = append(out, corpus.Span{Start: s, End: t, Type: e.Type, Text: a.Text[s:t]})
	}
	corpus.SortSpans(out)
	return out
}
