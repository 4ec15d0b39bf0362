package corpus

import (
	"fmt"
	"sort"
	"strings"
)

// OverlapPolicy says which spans survive when spans of a document overlap
// (share at least one byte; for discontinuous spans, when any pieces
// intersect). A token tagger gives each token one tag, so nested and
// crossing spans cannot all be represented.
type OverlapPolicy int

const (
	// KeepLongest (the default) keeps, of overlapping spans, the one that
	// covers the most bytes; ties go to the earliest start, then to the
	// type name in byte order. Spans are taken greedily in that order and
	// one is kept when it overlaps no span kept before it, so of a chain
	// A⊃B, B∩C, C disjoint from A, both A and C are kept.
	KeepLongest OverlapPolicy = iota
	// KeepFirst keeps the span that starts first; ties go to the longer,
	// then to the type name. Greedy in that order as KeepLongest.
	KeepFirst
	// DropBoth drops every span that overlaps any other span: the
	// reference code's behaviour ("overlapping annotations are both
	// dropped").
	DropBoth
)

// String names the policy.
func (p OverlapPolicy) String() string {
	switch p {
	case KeepLongest:
		return "keep-longest"
	case KeepFirst:
		return "keep-first"
	case DropBoth:
		return "drop-both"
	}
	return fmt.Sprintf("OverlapPolicy(%d)", int(p))
}

// ParseOverlapPolicy parses the names String gives.
func ParseOverlapPolicy(s string) (OverlapPolicy, error) {
	for _, p := range []OverlapPolicy{KeepLongest, KeepFirst, DropBoth} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("mtl: unknown overlap policy %q (want keep-longest, keep-first or drop-both)", s)
}

// Reasons a span is dropped, the keys of OverlapReport.Dropped.
const (
	// ReasonShorter: it overlapped a longer (or tie-winning) span
	// (KeepLongest).
	ReasonShorter = "overlaps-longer"
	// ReasonLater: it overlapped a span that starts earlier (or wins the
	// tie) (KeepFirst).
	ReasonLater = "overlaps-earlier"
	// ReasonOverlap: it overlapped another span (DropBoth).
	ReasonOverlap = "overlaps"
)

// OverlapDrop records one dropped span and the kept span it lost to (for
// DropBoth, one of the spans it overlapped).
type OverlapDrop struct {
	DocID   string
	Span    Span
	Against Span
	Reason  string
}

// OverlapReport is the record of ResolveOverlaps: nothing is dropped
// without a count here.
type OverlapReport struct {
	Policy OverlapPolicy
	// Input counts spans per type before resolution.
	Input map[string]int
	// Kept counts spans per type after resolution.
	Kept map[string]int
	// Duplicates counts, per type, exact duplicates (same pieces, same
	// type) collapsed into one span before overlaps were resolved.
	Duplicates map[string]int
	// Dropped counts dropped spans per reason, then per type.
	Dropped map[string]map[string]int
	// Drops lists every dropped span (not duplicates).
	Drops []OverlapDrop
}

// TotalDropped returns the number of spans dropped for overlapping.
func (r OverlapReport) TotalDropped() int {
	return len(r.Drops)
}

// String renders the report as one line per type.
func (r OverlapReport) String() string {
	types := map[string]bool{}
	for t := range r.Input {
		types[t] = true
	}
	var names []string
	for t := range types {
		names = append(names, t)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "overlap policy %s: %d spans dropped\n", r.Policy, len(r.Drops))
	for _, t := range names {
		drop := 0
		for _, m := range r.Dropped {
			drop += m[t]
		}
		fmt.Fprintf(&b, "%-24s input %6d  duplicates %5d  dropped %5d  kept %6d\n", t, r.Input[t], r.Duplicates[t], drop, r.Kept[t])
	}
	return b.String()
}

// ResolveOverlaps collapses exact duplicate spans and then removes
// overlaps in every document according to policy, in place (each
// document's Spans is replaced, sorted by Start, End, Type). Spans of
// different documents never interact. For every type,
// Input = Kept + Duplicates + sum of Dropped.
// It panics on a policy that is not one of the constants.
func ResolveOverlaps(docs []Document, policy OverlapPolicy) OverlapReport {
	rep := OverlapReport{
		Policy:     policy,
		Input:      map[string]int{},
		Kept:       map[string]int{},
		Duplicates: map[string]int{},
		Dropped:    map[string]map[string]int{},
	}
	if policy < KeepLongest || policy > DropBoth {
		panic("mtl: ResolveOverlaps: unknown overlap policy")
	}
	drop := func(doc string, s, against Span, reason string) {
		if rep.Dropped[reason] == nil {
			rep.Dropped[reason] = map[string]int{}
		}
		rep.Dropped[reason][s.Type]++
		rep.Drops = append(rep.Drops, OverlapDrop{DocID: doc, Span: s, Against: against, Reason: reason})
	}
	for di := range docs {
		d := &docs[di]
		seen := map[string]bool{}
		var uniq []Span
		for _, s := range d.Spans {
			rep.Input[s.Type]++
			k := s.Key()
			if seen[k] {
				rep.Duplicates[s.Type]++
				continue
			}
			seen[k] = true
			uniq = append(uniq, s)
		}
		var kept []Span
		switch policy {
		case DropBoth:
			for i, s := range uniq {
				lost := -1
				for j, t := range uniq {
					if i != j && s.overlaps(t) {
						lost = j
						break
					}
				}
				if lost >= 0 {
					drop(d.ID, s, uniq[lost], ReasonOverlap)
				} else {
					kept = append(kept, s)
				}
			}
		default:
			order := append([]Span(nil), uniq...)
			less := func(a, b Span) bool {
				if policy == KeepLongest && a.Len() != b.Len() {
					return a.Len() > b.Len()
				}
				if a.Start != b.Start {
					return a.Start < b.Start
				}
				if a.Len() != b.Len() {
					return a.Len() > b.Len()
				}
				if a.Type != b.Type {
					return a.Type < b.Type
				}
				return a.Key() < b.Key()
			}
			sort.SliceStable(order, func(i, j int) bool { return less(order[i], order[j]) })
			reason := ReasonShorter
			if policy == KeepFirst {
				reason = ReasonLater
			}
			for _, s := range order {
				lost := -1
				for j, t := range kept {
					if s.overlaps(t) {
						lost = j
						break
					}
				}
				if lost >= 0 {
					drop(d.ID, s, kept[lost], reason)
				} else {
					kept = append(kept, s)
				}
			}
		}
		SortSpans(kept)
		for _, s := range kept {
			rep.Kept[s.Type]++
		}
		d.Spans = kept
	}
	return rep
}
