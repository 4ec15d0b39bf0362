package corpus

import (
	"fmt"
	"strings"
)

// ReadCoNLL reads a CoNLL-style IOB2 file: one token per line as
// token<TAB>tag, a blank line between sentences, -DOCSTART- lines ignored
// (whatever their columns). Tags are O or P-TYPE with P one of B I L U E
// S (BIO or BILOU/IOBES). Each sentence becomes one Document whose ID is
// "file:line" of its first token and whose Text is its tokens joined by
// single spaces; spans are decoded with DecodeTags (seqeval's lenient
// rules: an I- after O or after another type starts a new entity, counted
// in ReadStats.IllFormed) and carry byte offsets into that text.
//
// A line with other than two tab-separated columns, an empty token or
// tag, a token containing a space, a tag of another form or invalid UTF-8
// is an error naming file:line.
func ReadCoNLL(path string) ([]Document, ReadStats, error) {
	data, err := readText(path)
	if err != nil {
		return nil, ReadStats{}, err
	}
	return parseCoNLL(path, data)
}

// validTag reports whether tag is O or P-TYPE with a known prefix letter
// and a non-empty type.
func validTag(tag string) bool {
	if tag == "O" {
		return true
	}
	if len(tag) < 3 || tag[1] != '-' {
		return false
	}
	return strings.IndexByte("BILUES", tag[0]) >= 0
}

func parseCoNLL(path string, data []byte) ([]Document, ReadStats, error) {
	var (
		docs   []Document
		stats  ReadStats
		tokens []string
		tags   []string
		first  int
	)
	flush := func() {
		if len(tokens) == 0 {
			return
		}
		starts := make([]int, len(tokens)+1)
		var b strings.Builder
		for i, t := range tokens {
			if i > 0 {
				b.WriteByte(' ')
			}
			starts[i] = b.Len()
			b.WriteString(t)
		}
		text := b.String()
		ends := func(i int) int { return starts[i] + len(tokens[i]) }
		ents, ill := decodeTags(tags)
		stats.IllFormed += ill
		doc := Document{ID: fmt.Sprintf("%s:%d", path, first), Text: text, Source: path}
		for _, e := range ents {
			s, en := starts[e.Start], ends(e.End-1)
			doc.Spans = append(doc.Spans, Span{Start: s, End: en, Type: e.Type, Text: text[s:en]})
		}
		stats.Documents++
		stats.Spans += len(doc.Spans)
		docs = append(docs, doc)
		tokens, tags = tokens[:0], tags[:0]
	}
	line := 0
	for rest := string(data); len(rest) > 0; {
		line++
		var l string
		l, rest = cutLine(rest)
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if strings.HasPrefix(l, "-DOCSTART-") {
			flush()
			continue
		}
		cols := strings.Split(l, "\t")
		if len(cols) != 2 {
			return nil, stats, fmt.Errorf("%s:%d: want 2 tab-separated columns (token, tag), got %d", path, line, len(cols))
		}
		tok, tag := cols[0], cols[1]
		if tok == "" || strings.Contains(tok, " ") {
			return nil, stats, fmt.Errorf("%s:%d: token %q is empty or contains a space", path, line, tok)
		}
		if !validTag(tag) {
			return nil, stats, fmt.Errorf("%s:%d: tag %q is not O or B-/I-/L-/U-/E-/S-TYPE", path, line, tag)
		}
		if len(tokens) == 0 {
			first = line
		}
		tokens = append(tokens, tok)
		tags = append(tags, tag)
	}
	flush()
	return docs, stats, nil
}
