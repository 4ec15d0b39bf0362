package corpus

import (
	"fmt"
	"sort"
	"strings"
)

// Span is one annotated entity mention.
//
// Start and End are byte offsets into the owning Document's Text, half-open
// [Start,End), and Text is always Document.Text[Start:End].
//
// A discontinuous annotation (brat "start end;start end" whose pieces are
// more than one character apart) is kept as one Span: Start and End are
// then the extent from the first piece's start to the last piece's end
// (so the Text invariant still holds, and Text includes the gap), and
// Fragments lists the pieces as byte ranges [start,end), sorted and
// disjoint, at least two of them. Fragments is nil for a contiguous span.
// Pieces returns the ranges in both cases; code that tags tokens should
// tag the pieces, not the gap.
type Span struct {
	Start, End int
	Type       string
	Text       string
	Fragments  [][2]int
}

// Pieces returns the byte ranges the span covers: Fragments for a
// discontinuous span, else the single range {Start, End}.
func (s Span) Pieces() [][2]int {
	if len(s.Fragments) > 0 {
		return s.Fragments
	}
	return [][2]int{{s.Start, s.End}}
}

// Len returns the number of bytes the span covers, gaps excluded.
func (s Span) Len() int {
	n := 0
	for _, p := range s.Pieces() {
		n += p[1] - p[0]
	}
	return n
}

// Key identifies a span by its pieces and type; two spans with equal keys
// are the same annotation.
func (s Span) Key() string {
	var b strings.Builder
	for _, p := range s.Pieces() {
		fmt.Fprintf(&b, "%d-%d,", p[0], p[1])
	}
	b.WriteString(s.Type)
	return b.String()
}

// overlaps reports whether any piece of s intersects any piece of t.
func (s Span) overlaps(t Span) bool {
	if s.End <= t.Start || t.End <= s.Start {
		return false
	}
	for _, p := range s.Pieces() {
		for _, q := range t.Pieces() {
			if p[0] < q[1] && q[0] < p[1] {
				return true
			}
		}
	}
	return false
}

// Document is one unit of annotated text: a file, or a sentence for CoNLL
// input. Spans are sorted by (Start, End, Type).
type Document struct {
	// ID names the document: the file's base name without extensions for
	// file formats, "file:line" of the first token for CoNLL sentences.
	ID string
	// Text is the raw text, valid UTF-8.
	Text string
	// Spans are the entity annotations, byte offsets into Text.
	Spans []Span
	// Source is the file the document was read from.
	Source string
}

// Check verifies the document's invariants: valid offsets, Text equal to
// the document text at every span's offsets, fragments sorted, disjoint and
// inside the extent. It returns the first violation.
func (d *Document) Check() error {
	for i, s := range d.Spans {
		if s.Start < 0 || s.End > len(d.Text) || s.Start >= s.End {
			return fmt.Errorf("%s: span %d [%d,%d) out of range (text has %d bytes)", d.ID, i, s.Start, s.End, len(d.Text))
		}
		if d.Text[s.Start:s.End] != s.Text {
			return fmt.Errorf("%s: span %d [%d,%d) Text %q != document text %q", d.ID, i, s.Start, s.End, s.Text, d.Text[s.Start:s.End])
		}
		if s.Fragments != nil {
			if len(s.Fragments) < 2 {
				return fmt.Errorf("%s: span %d has %d fragments, want 0 or >= 2", d.ID, i, len(s.Fragments))
			}
			if s.Fragments[0][0] != s.Start || s.Fragments[len(s.Fragments)-1][1] != s.End {
				return fmt.Errorf("%s: span %d fragments %v do not match extent [%d,%d)", d.ID, i, s.Fragments, s.Start, s.End)
			}
			for j, f := range s.Fragments {
				if f[0] >= f[1] || (j > 0 && f[0] <= s.Fragments[j-1][1]) {
					return fmt.Errorf("%s: span %d fragments %v not sorted, disjoint and non-empty", d.ID, i, s.Fragments)
				}
			}
		}
	}
	return nil
}

// SortSpans sorts spans by (Start, End, Type, pieces).
func SortSpans(spans []Span) {
	sort.SliceStable(spans, func(i, j int) bool {
		a, b := spans[i], spans[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.End != b.End {
			return a.End < b.End
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.Key() < b.Key()
	})
}

// Pair is one sentence pair for entailment (Label) or similarity (Score).
type Pair struct {
	// ID is the corpus's pair id, or "file:line" where the corpus has none.
	ID string
	// TextA and TextB are the two sentences (MedRQE: the consumer health
	// question and the FAQ).
	TextA, TextB string
	// Label is the class for entailment corpora ("entailment", "true"...).
	Label string
	// Score is the similarity score; meaningful only when HasScore.
	Score float64
	// HasScore says whether Score was read.
	HasScore bool
	// Source is the file the pair was read from.
	Source string
}

// ReadStats counts what a document reader saw and did, so that nothing is
// changed silently.
type ReadStats struct {
	// Documents and Spans count what was returned.
	Documents, Spans int
	// IllFormed counts CoNLL entities that began with I- (or E-) without a
	// preceding B- of the same type; they start a new entity, as in
	// seqeval.
	IllFormed int
	// MergedFragments counts brat discontinuous annotations whose pieces
	// were at most one character apart and were merged into one
	// contiguous span.
	MergedFragments int
	// Fragmented counts spans kept discontinuous (Span.Fragments set).
	Fragmented int
	// SkippedTags counts XML tags (by element name) not kept by the
	// i2b2-2012 tag filter.
	SkippedTags map[string]int
	// Text counts what the raw-text reader skipped or changed (format text).
	Text TextStats
}

func (s *ReadStats) Add(o ReadStats) {
	s.Text.add(o.Text)
	s.Documents += o.Documents
	s.Spans += o.Spans
	s.IllFormed += o.IllFormed
	s.MergedFragments += o.MergedFragments
	s.Fragmented += o.Fragmented
	for k, v := range o.SkippedTags {
		if s.SkippedTags == nil {
			s.SkippedTags = map[string]int{}
		}
		s.SkippedTags[k] += v
	}
}

// CountTypes returns the number of spans of each type over docs.
func CountTypes(docs []Document) map[string]int {
	m := map[string]int{}
	for _, d := range docs {
		for _, s := range d.Spans {
			m[s.Type]++
		}
	}
	return m
}

// cutLine splits s at its first line break: the line without "\n" or "\r\n", and the rest.
func cutLine(s string) (line, rest string) {
	line, rest, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r"), rest
}
