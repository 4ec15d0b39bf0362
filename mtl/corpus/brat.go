package corpus

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ReadBrat reads brat standoff annotations. path is a folder, read
// non-recursively, in which every .txt must have its .ann (and the
// reverse); or one file of a pair (x.txt, x.ann) or their common stem x.
// Compressed files (x.txt.gz, x.ann.zst...) are accepted. Documents are
// sorted by ID, the file's base name.
//
// Only text-bound annotations ("T" lines: ID<TAB>Type start end[;start
// end...]<TAB>text) become spans; relation, event, attribute, note,
// normalisation and equivalence lines (R E A M # N *) are skipped. brat
// offsets count Unicode code points of the .txt and are converted to byte
// offsets. A UTF-8 byte-order mark, which brat counts as a character, is
// read as a space (so the offsets stay right and no token holds it); a
// UTF-16 .txt with a byte-order mark is decoded (the mark not counted). A discontinuous annotation whose consecutive pieces are at most
// one character apart is merged into one contiguous span (counted in
// ReadStats.MergedFragments); otherwise it is kept as one Span with
// Fragments (ReadStats.Fragmented). The annotation's text must equal the
// .txt at its offsets (pieces joined by one space in the order listed, as brat writes them; the pieces are then sorted);
// a mismatch, an offset out of range, an empty or reversed range, or a
// malformed line is an error naming the .ann file and line.
func ReadBrat(path string) ([]Document, ReadStats, error) {
	var stats ReadStats
	fi, err := os.Stat(path)
	if err == nil && fi.IsDir() {
		txts, err := listByExt(path, ".txt")
		if err != nil {
			return nil, stats, err
		}
		anns, err := listByExt(path, ".ann")
		if err != nil {
			return nil, stats, err
		}
		names := make([]string, 0, len(txts))
		for b := range txts {
			if _, ok := anns[b]; !ok {
				return nil, stats, fmt.Errorf("%s: no .ann file for %s", path, filepath.Base(txts[b]))
			}
			names = append(names, b)
		}
		for b := range anns {
			if _, ok := txts[b]; !ok {
				return nil, stats, fmt.Errorf("%s: no .txt file for %s", path, filepath.Base(anns[b]))
			}
		}
		sort.Strings(names)
		docs := make([]Document, 0, len(names))
		for _, b := range names {
			d, st, err := readBratPair(b, txts[b], anns[b])
			if err != nil {
				return nil, stats, err
			}
			stats.Add(st)
			docs = append(docs, d)
		}
		return docs, stats, nil
	}
	txt, ann, id, err := bratPairPaths(path)
	if err != nil {
		return nil, stats, err
	}
	d, st, err := readBratPair(id, txt, ann)
	if err != nil {
		return nil, stats, err
	}
	return []Document{d}, st, nil
}

// bratPairPaths finds the .txt and .ann files of one document from either
// file or their stem.
func bratPairPaths(path string) (txt, ann, id string, err error) {
	dir, name := filepath.Split(path)
	stem := name
	for _, ext := range []string{".txt", ".ann"} {
		if b, ok := baseName(name, ext); ok {
			stem = b
			break
		}
	}
	find := func(ext string) (string, error) {
		for _, suf := range append([]string{""}, compressedExt...) {
			p := filepath.Join(dir, stem+ext+suf)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s: no %s file %s", path, ext, filepath.Join(dir, stem+ext))
	}
	if txt, err = find(".txt"); err != nil {
		return
	}
	if ann, err = find(".ann"); err != nil {
		return
	}
	return txt, ann, stem, nil
}

func readBratPair(id, txtPath, annPath string) (Document, ReadStats, error) {
	text, bom, err := readTextBOM(txtPath)
	if err != nil {
		return Document{}, ReadStats{}, err
	}
	if bom == "UTF-8" {
		// brat reads a .txt as Python's "utf-8" codec does, keeping a UTF-8 byte-order mark
		// as one character that its offsets count: a space in its place keeps the offsets.
		text = append([]byte{' '}, text...)
	}
	ann, err := readText(annPath)
	if err != nil {
		return Document{}, ReadStats{}, err
	}
	spans, st, err := parseAnn(annPath, string(text), ann)
	if err != nil {
		return Document{}, st, err
	}
	st.Documents = 1
	return Document{ID: id, Text: string(text), Spans: spans, Source: annPath}, st, nil
}

// parseAnn parses the .ann content ann of the document text text; name is
// used in errors.
func parseAnn(name, text string, ann []byte) ([]Span, ReadStats, error) {
	var stats ReadStats
	r2b := runeToByte(text)
	nchar := len(r2b) - 1
	var spans []Span
	line := 0
	for rest := string(ann); len(rest) > 0; {
		line++
		var l string
		l, rest = cutLine(rest)
		if strings.TrimSpace(l) == "" {
			continue
		}
		switch l[0] {
		case 'R', 'E', 'A', 'M', '#', 'N', '*':
			continue
		case 'T':
		default:
			return nil, stats, fmt.Errorf("%s:%d: unknown annotation line %q", name, line, clip(l))
		}
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, a...))
		}
		cols := strings.SplitN(l, "\t", 3)
		if len(cols) != 3 {
			return nil, stats, errf("text-bound annotation needs 3 tab-separated fields (id, type+offsets, text), got %d", len(cols))
		}
		typ, offs, ok := strings.Cut(cols[1], " ")
		if !ok || typ == "" {
			return nil, stats, errf("field %q is not \"Type start end\"", cols[1])
		}
		var frags [][2]int // in code points
		for _, part := range strings.Split(offs, ";") {
			a, b, ok := strings.Cut(strings.TrimSpace(part), " ")
			if !ok {
				return nil, stats, errf("offsets %q are not \"start end\"", part)
			}
			s, err1 := strconv.Atoi(a)
			e, err2 := strconv.Atoi(strings.TrimSpace(b))
			if err1 != nil || err2 != nil {
				return nil, stats, errf("offsets %q are not integers", part)
			}
			if s < 0 || e <= s || e > nchar {
				return nil, stats, errf("offsets %d %d out of range (empty, reversed, or beyond the %d characters of the text)", s, e, nchar)
			}
			frags = append(frags, [2]int{s, e})
		}
		// The annotation's text: brat joins the pieces with one space, in
		// the order the offsets are listed (not always ascending).
		var want strings.Builder
		for i, f := range frags {
			if i > 0 {
				want.WriteByte(' ')
			}
			want.WriteString(text[r2b[f[0]]:r2b[f[1]]])
		}
		if got := cols[2]; got != want.String() {
			return nil, stats, errf("%s text %q does not match the text at its offsets %q", cols[0], clip(got), clip(want.String()))
		}
		sort.Slice(frags, func(i, j int) bool { return frags[i][0] < frags[j][0] })
		for i := 1; i < len(frags); i++ {
			if frags[i][0] < frags[i-1][1] {
				return nil, stats, errf("fragments %v overlap", frags)
			}
		}
		// Merge pieces at most one character apart.
		merged := frags[:1]
		for _, f := range frags[1:] {
			last := &merged[len(merged)-1]
			if f[0]-last[1] <= 1 {
				last[1] = f[1]
			} else {
				merged = append(merged, f)
			}
		}
		sp := Span{Start: r2b[merged[0][0]], End: r2b[merged[len(merged)-1][1]], Type: typ}
		sp.Text = text[sp.Start:sp.End]
		if len(frags) > 1 {
			if len(merged) == 1 {
				stats.MergedFragments++
			} else {
				stats.Fragmented++
				for _, f := range merged {
					sp.Fragments = append(sp.Fragments, [2]int{r2b[f[0]], r2b[f[1]]})
				}
			}
		}
		spans = append(spans, sp)
	}
	SortSpans(spans)
	stats.Spans = len(spans)
	return spans, stats, nil
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) <= 80 {
		return s
	}
	r := []rune(s)
	if len(r) <= 80 {
		return s
	}
	return string(r[:77]) + "..."
}
