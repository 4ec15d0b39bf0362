package corpus

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ReadI2B2Con reads i2b2-2010 concept annotations. txtPath and conPath are
// either one .txt file and its .con file, or two folders in which X.txt
// pairs with X.con (every .txt needs its .con and the reverse). Documents
// are sorted by ID, the .txt base name.
//
// A .con line reads
//
//	c="chest pain" 12:3 12:4||t="problem"
//
// where 12:3 is line 12 (1-based) of the .txt and token 3 (0-based) of
// that line's whitespace-split tokens, the second pair is the last token
// (inclusive), and t is the concept type. The span runs from the first
// byte of the first token to the last byte of the last token. The concept
// text is lowercased in .con files, so it is compared with the .txt
// case-insensitively, whitespace runs counting as one space; a mismatch, a
// line or token out of range, or a malformed line is an error naming the
// .con file and line.
func ReadI2B2Con(txtPath, conPath string) ([]Document, ReadStats, error) {
	var stats ReadStats
	fi, err := os.Stat(txtPath)
	if err != nil {
		return nil, stats, err
	}
	if !fi.IsDir() {
		d, err := readConPair(txtPath, conPath)
		if err != nil {
			return nil, stats, err
		}
		stats.Documents, stats.Spans = 1, len(d.Spans)
		return []Document{d}, stats, nil
	}
	txts, err := listByExt(txtPath, ".txt")
	if err != nil {
		return nil, stats, err
	}
	cons, err := listByExt(conPath, ".con")
	if err != nil {
		return nil, stats, err
	}
	var names []string
	for b := range txts {
		if _, ok := cons[b]; !ok {
			return nil, stats, fmt.Errorf("%s: no .con file for %s", conPath, filepath.Base(txts[b]))
		}
		names = append(names, b)
	}
	for b := range cons {
		if _, ok := txts[b]; !ok {
			return nil, stats, fmt.Errorf("%s: no .txt file for %s", txtPath, filepath.Base(cons[b]))
		}
	}
	sort.Strings(names)
	var docs []Document
	for _, b := range names {
		d, err := readConPair(txts[b], cons[b])
		if err != nil {
			return nil, stats, err
		}
		stats.Documents++
		stats.Spans += len(d.Spans)
		docs = append(docs, d)
	}
	return docs, stats, nil
}

var conLine = regexp.MustCompile(`^c="(.*)" (\d+):(\d+) (\d+):(\d+)\|\|t="([^"]*)"$`)

func readConPair(txtPath, conPath string) (Document, error) {
	txt, err := readText(txtPath)
	if err != nil {
		return Document{}, err
	}
	con, err := readText(conPath)
	if err != nil {
		return Document{}, err
	}
	text := string(txt)
	id, _ := baseName(filepath.Base(txtPath), ".txt")
	if id == "" {
		id = filepath.Base(txtPath)
	}
	// tokens[l] holds the byte ranges of the whitespace-separated tokens of
	// line l+1.
	var tokens [][][2]int
	off := 0
	for _, l := range strings.SplitAfter(text, "\n") {
		var toks [][2]int
		start := -1
		for i := 0; i <= len(l); i++ {
			space := i == len(l) || l[i] == ' ' || l[i] == '\t' || l[i] == '\n' || l[i] == '\r' || l[i] == '\v' || l[i] == '\f'
			if !space && start < 0 {
				start = i
			}
			if space && start >= 0 {
				toks = append(toks, [2]int{off + start, off + i})
				start = -1
			}
		}
		tokens = append(tokens, toks)
		off += len(l)
	}
	doc := Document{ID: id, Text: text, Source: conPath}
	for n, l := range strings.Split(string(con), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		errf := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", conPath, n+1, fmt.Sprintf(format, a...))
		}
		m := conLine.FindStringSubmatch(l)
		if m == nil {
			return Document{}, errf(`line %q is not c="text" L:T L:T||t="type"`, clip(l))
		}
		var v [4]int
		for i := range v {
			v[i], err = strconv.Atoi(m[2+i])
			if err != nil {
				return Document{}, errf("number %q: %v", m[2+i], err)
			}
		}
		tok := func(line, t int) ([2]int, error) {
			if line < 1 || line > len(tokens) {
				return [2]int{}, errf("line %d out of range (%s has %d lines)", line, txtPath, len(tokens))
			}
			if t < 0 || t >= len(tokens[line-1]) {
				return [2]int{}, errf("token %d out of range (line %d of %s has %d tokens)", t, line, txtPath, len(tokens[line-1]))
			}
			return tokens[line-1][t], nil
		}
		a, err := tok(v[0], v[1])
		if err != nil {
			return Document{}, err
		}
		b, err := tok(v[2], v[3])
		if err != nil {
			return Document{}, err
		}
		if b[1] <= a[0] {
			return Document{}, errf("end %d:%d is before start %d:%d", v[2], v[3], v[0], v[1])
		}
		if m[6] == "" {
			return Document{}, errf("empty concept type")
		}
		sp := Span{Start: a[0], End: b[1], Type: m[6], Text: text[a[0]:b[1]]}
		got := strings.Join(strings.Fields(strings.ToLower(m[1])), " ")
		want := strings.Join(strings.Fields(strings.ToLower(sp.Text)), " ")
		if got != want {
			return Document{}, errf("concept text %q does not match the text at %d:%d-%d:%d %q", clip(m[1]), v[0], v[1], v[2], v[3], clip(sp.Text))
		}
		doc.Spans = append(doc.Spans, sp)
	}
	SortSpans(doc.Spans)
	return doc, nil
}

// XMLOptions selects what ReadI2B2XML keeps.
type XMLOptions struct {
	// Keep lists the element names under <TAGS> that become spans (e.g.
	// "EVENT", "TIMEX3"). Empty keeps every element that has start and
	// end attributes. Others are counted in ReadStats.SkippedTags.
	Keep []string
}

// I2B2Events are the options for i2b2-2012: EVENT tags only (the paper's
// "events" task; types OCCURRENCE, EVIDENTIAL, TREATMENT, TEST,
// CLINICAL_DEPT, PROBLEM).
var I2B2Events = XMLOptions{Keep: []string{"EVENT"}}

// I2B2PHI are the options for i2b2-2014 de-identification: every PHI tag
// under <TAGS>, typed by its TYPE attribute.
var I2B2PHI = XMLOptions{}

// ReadI2B2XML reads i2b2-2012 (temporal relations) or i2b2-2014
// (de-identification) XML: one document per file,
//
//	<ROOT><TEXT><![CDATA[...]]></TEXT><TAGS><EVENT start= end= text= type=/>...</TAGS></ROOT>
//
// path is a file or a folder of .xml files (non-recursive; sorted by ID,
// the base name). The text is the CDATA content taken verbatim (no XML
// newline normalisation), so offsets mean what the annotators saw; a
// byte-order mark that starts it (MEDDOCAN's do) is read as a space, which
// keeps the offsets that count it. Tag
// start and end are code-point offsets into it, end exclusive, converted to
// bytes. The span type is the element's type attribute, else TYPE (2014),
// else the element name; the text attribute must equal the text at the
// offsets. opts.Keep filters the elements (I2B2Events for 2012, I2B2PHI for
// 2014).
//
// The 2012 release has bare '&' characters in attribute values, which XML
// forbids: before parsing the TAGS section every '&' that does not begin an
// entity or character reference is escaped as "&amp;". A truncated file,
// missing attributes, offsets out of range and text mismatches are errors
// naming the file and line.
func ReadI2B2XML(path string, opts XMLOptions) ([]Document, ReadStats, error) {
	var stats ReadStats
	files := []string{path}
	if fi, err := os.Stat(path); err != nil {
		return nil, stats, err
	} else if fi.IsDir() {
		m, err := listByExt(path, ".xml")
		if err != nil {
			return nil, stats, err
		}
		files = files[:0]
		for _, p := range m {
			files = append(files, p)
		}
		sort.Strings(files)
	}
	var docs []Document
	for _, f := range files {
		d, st, err := readI2B2XMLFile(f, opts)
		if err != nil {
			return nil, stats, err
		}
		stats.Add(st)
		docs = append(docs, d)
	}
	return docs, stats, nil
}

var (
	textOpen  = regexp.MustCompile(`<TEXT>\s*<!\[CDATA\[`)
	textClose = regexp.MustCompile(`\]\]>\s*</TEXT>`)
	entityRef = regexp.MustCompile(`^&(?:[A-Za-z_][A-Za-z0-9._-]*|#[0-9]+|#x[0-9A-Fa-f]+);`)
)

// escapeStrayAmp escapes every '&' of b that does not start an entity or
// character reference.
func escapeStrayAmp(b []byte) []byte {
	if bytes.IndexByte(b, '&') < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+64)
	for i := 0; i < len(b); i++ {
		if b[i] == '&' && !entityRef.Match(b[i:min(len(b), i+40)]) {
			out = append(out, "&amp;"...)
			continue
		}
		out = append(out, b[i])
	}
	return out
}

func readI2B2XMLFile(path string, opts XMLOptions) (Document, ReadStats, error) {
	var stats ReadStats
	data, err := readText(path)
	if err != nil {
		return Document{}, stats, err
	}
	id, _ := baseName(filepath.Base(path), ".xml")
	if id == "" {
		id = filepath.Base(path)
	}
	o := textOpen.FindIndex(data)
	if o == nil {
		return Document{}, stats, fmt.Errorf("%s:%d: no <TEXT><![CDATA[ found", path, lineOf(data, len(data)))
	}
	c := textClose.FindIndex(data[o[1]:])
	if c == nil {
		return Document{}, stats, fmt.Errorf("%s:%d: <TEXT> CDATA opened here is never closed by ]]></TEXT> (truncated file?)", path, lineOf(data, o[0]))
	}
	text := string(data[o[1] : o[1]+c[0]])
	if t, ok := strings.CutPrefix(text, "\ufeff"); ok {
		text = " " + t // the offsets count the mark (MEDDOCAN): a space keeps them
	}
	rest := o[1] + c[1]
	ts := bytes.Index(data[rest:], []byte("<TAGS"))
	if ts < 0 {
		return Document{}, stats, fmt.Errorf("%s:%d: no <TAGS> section after </TEXT> (truncated file?)", path, lineOf(data, len(data)))
	}
	ts += rest
	tagsLine := lineOf(data, ts)
	section := escapeStrayAmp(data[ts:])
	keep := map[string]bool{}
	for _, k := range opts.Keep {
		keep[k] = true
	}
	r2b := runeToByte(text)
	nchar := len(r2b) - 1
	doc := Document{ID: id, Text: text, Source: path}
	dec := xml.NewDecoder(bytes.NewReader(section))
	depth := 0
	closed := false
	for !closed {
		tok, err := dec.Token()
		line, _ := dec.InputPos()
		line += tagsLine - 1
		if err == io.EOF {
			return Document{}, stats, fmt.Errorf("%s:%d: <TAGS> is never closed (truncated file?)", path, line)
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				if se.Msg == "unexpected EOF" {
					return Document{}, stats, fmt.Errorf("%s:%d: <TAGS> is never closed (truncated file?)", path, se.Line+tagsLine-1)
				}
				return Document{}, stats, fmt.Errorf("%s:%d: XML syntax error in TAGS: %s", path, se.Line+tagsLine-1, se.Msg)
			}
			return Document{}, stats, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth != 2 {
				continue
			}
			name := t.Name.Local
			attrs := map[string]string{}
			for _, a := range t.Attr {
				attrs[a.Name.Local] = a.Value
			}
			_, hasStart := attrs["start"]
			if len(keep) > 0 && !keep[name] || len(keep) == 0 && !hasStart {
				if stats.SkippedTags == nil {
					stats.SkippedTags = map[string]int{}
				}
				stats.SkippedTags[name]++
				continue
			}
			errf := func(format string, a ...any) error {
				return fmt.Errorf("%s:%d: <%s id=%q>: %s", path, line, name, attrs["id"], fmt.Sprintf(format, a...))
			}
			s, err1 := strconv.Atoi(attrs["start"])
			e, err2 := strconv.Atoi(attrs["end"])
			if err1 != nil || err2 != nil {
				return Document{}, stats, errf("start %q / end %q are not integers", attrs["start"], attrs["end"])
			}
			if s < 0 || e <= s || e > nchar {
				return Document{}, stats, errf("offsets %d-%d out of range (empty, reversed or beyond the %d characters of the text)", s, e, nchar)
			}
			typ := attrs["type"]
			if typ == "" {
				typ = attrs["TYPE"]
			}
			if typ == "" {
				typ = name
			}
			sp := Span{Start: r2b[s], End: r2b[e], Type: typ}
			sp.Text = text[sp.Start:sp.End]
			if want, ok := attrs["text"]; ok && want != sp.Text {
				return Document{}, stats, errf("text %q does not match the text at %d-%d %q", clip(want), s, e, clip(sp.Text))
			}
			doc.Spans = append(doc.Spans, sp)
		case xml.EndElement:
			depth--
			if depth == 0 {
				closed = true
			}
		}
	}
	SortSpans(doc.Spans)
	stats.Documents, stats.Spans = 1, len(doc.Spans)
	return doc, stats, nil
}
