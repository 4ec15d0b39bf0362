package corpus

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// lines splits data into lines without their "\n" or "\r\n"; a final
// newline does not make an extra empty line.
func lines(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimSuffix(l, "\r")
	}
	return ls
}

// ReadMedNLI reads MedNLI JSON lines: one object per line with string
// fields sentence1, sentence2, gold_label (entailment, contradiction or
// neutral) and optionally pairID (the Pair ID; "file:line" when absent).
// Other fields are ignored, blank lines skipped. A line that is not a JSON
// object, a missing or empty sentence or label, or invalid UTF-8 is an error
// naming file:line.
func ReadMedNLI(path string) ([]Pair, error) {
	data, err := readText(path)
	if err != nil {
		return nil, err
	}
	var out []Pair
	for i, l := range lines(data) {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var rec struct {
			Sentence1 *string `json:"sentence1"`
			Sentence2 *string `json:"sentence2"`
			GoldLabel *string `json:"gold_label"`
			PairID    any     `json:"pairID"`
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
		}
		for _, f := range []struct {
			name string
			v    *string
		}{{"sentence1", rec.Sentence1}, {"sentence2", rec.Sentence2}, {"gold_label", rec.GoldLabel}} {
			if f.v == nil || strings.TrimSpace(*f.v) == "" {
				return nil, fmt.Errorf("%s:%d: field %q missing or empty", path, i+1, f.name)
			}
		}
		id := fmt.Sprintf("%s:%d", path, i+1)
		switch v := rec.PairID.(type) {
		case string:
			id = v
		case float64:
			id = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
		default:
			return nil, fmt.Errorf("%s:%d: field \"pairID\" is not a string or number", path, i+1)
		}
		out = append(out, Pair{ID: id, TextA: *rec.Sentence1, TextB: *rec.Sentence2, Label: *rec.GoldLabel, Source: path})
	}
	return out, nil
}

// ReadMedRQE reads the MedRQE (RQE, Ben Abacha & Demner-Fushman 2016)
// XML: <pair pid="1" value="true|false"><chq>...</chq><faq>...</faq></pair>
// under one root element. TextA is the consumer health question (chq),
// TextB the FAQ, both with surrounding whitespace trimmed; Label is the
// value attribute ("true" or "false") and ID the pid. An empty chq or faq
// is kept as an empty string (the training file has one, pid 5860, with an empty
// <faq>, and its published size, 8588, counts them). A pair without pid,
// with another value, without a chq or faq element, or a truncated file is
// an error naming file:line.
func ReadMedRQE(path string) ([]Pair, error) {
	data, err := readText(path)
	if err != nil {
		return nil, err
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out []Pair
	var cur *Pair
	var pairLine int
	var field *string
	var buf strings.Builder
	seen := map[string]bool{}
	for {
		tok, err := dec.Token()
		line, _ := dec.InputPos()
		if err == io.EOF {
			if cur != nil {
				return nil, fmt.Errorf("%s:%d: <pair> opened at line %d is never closed (truncated file?)", path, line, pairLine)
			}
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				if se.Msg == "unexpected EOF" {
					return nil, fmt.Errorf("%s:%d: unexpected end of file (truncated file?)", path, se.Line)
				}
				return nil, fmt.Errorf("%s:%d: XML syntax error: %s", path, se.Line, se.Msg)
			}
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "pair":
				if cur != nil {
					return nil, fmt.Errorf("%s:%d: <pair> inside <pair>", path, line)
				}
				cur = &Pair{Source: path}
				pairLine = line
				seen = map[string]bool{}
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "pid":
						cur.ID = a.Value
					case "value":
						cur.Label = a.Value
					}
				}
				if cur.ID == "" {
					return nil, fmt.Errorf("%s:%d: <pair> without pid", path, line)
				}
				if cur.Label != "true" && cur.Label != "false" {
					return nil, fmt.Errorf("%s:%d: pair %s: value %q is not \"true\" or \"false\"", path, line, cur.ID, cur.Label)
				}
			case "chq", "faq":
				if cur == nil {
					return nil, fmt.Errorf("%s:%d: <%s> outside <pair>", path, line, t.Name.Local)
				}
				if t.Name.Local == "chq" {
					field = &cur.TextA
				} else {
					field = &cur.TextB
				}
				seen[t.Name.Local] = true
				buf.Reset()
			}
		case xml.CharData:
			if field != nil {
				buf.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "chq", "faq":
				if field != nil {
					*field = strings.TrimSpace(buf.String())
					field = nil
				}
			case "pair":
				if !seen["chq"] || !seen["faq"] {
					return nil, fmt.Errorf("%s:%d: pair %s lacks a <chq> or <faq> element", path, pairLine, cur.ID)
				}
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	return out, nil
}

// parseScore parses a similarity score, rejecting NaN and infinities.
func parseScore(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("score %q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("score %q is not finite", s)
	}
	return v, nil
}

// ReadSTS reads n2c2-2019 clinical STS data: one pair per line,
// s1<TAB>s2<TAB>score (sentence 1, sentence 2, score; no header line). When labelsPath is not empty the file has two
// columns (s1<TAB>s2) and the scores come from labelsPath, one per line,
// in the same order (the test set's layout). IDs are "file:line". A wrong
// column count, a bad score, or a labels file with another number of lines
// is an error naming file:line.
func ReadSTS(path, labelsPath string) ([]Pair, error) {
	data, err := readText(path)
	if err != nil {
		return nil, err
	}
	var scores []string
	want := 3
	if labelsPath != "" {
		ld, err := readText(labelsPath)
		if err != nil {
			return nil, err
		}
		scores = lines(ld)
		want = 2
	}
	var out []Pair
	for i, l := range lines(data) {
		if strings.TrimSpace(l) == "" {
			return nil, fmt.Errorf("%s:%d: empty line", path, i+1)
		}
		cols := strings.Split(l, "\t")
		if len(cols) != want {
			return nil, fmt.Errorf("%s:%d: want %d tab-separated columns, got %d", path, i+1, want, len(cols))
		}
		p := Pair{ID: fmt.Sprintf("%s:%d", path, i+1), TextA: cols[0], TextB: cols[1], HasScore: true, Source: path}
		if labelsPath == "" {
			if p.Score, err = parseScore(cols[2]); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, i+1, err)
			}
		} else {
			if len(out) >= len(scores) {
				return nil, fmt.Errorf("%s:%d: no score for this pair: %s has only %d lines", path, i+1, labelsPath, len(scores))
			}
			if p.Score, err = parseScore(scores[len(out)]); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", labelsPath, len(out)+1, err)
			}
		}
		out = append(out, p)
	}
	if labelsPath != "" && len(scores) != len(out) {
		return nil, fmt.Errorf("%s:%d: %d scores for %d pairs of %s", labelsPath, len(out)+1, len(scores), len(out), path)
	}
	return out, nil
}

// ReadBIOSSES reads the BIOSSES TSV: a header naming at least the columns
// sentence1, sentence2 and score (optionally id; other columns, e.g. the
// five annotators' scores, ignored), then one pair per line. The ID is the
// id column or "file:line". A wrong column count or a bad score is an
// error naming file:line.
func ReadBIOSSES(path string) ([]Pair, error) {
	data, err := readText(path)
	if err != nil {
		return nil, err
	}
	ls := lines(data)
	if len(ls) == 0 {
		return nil, fmt.Errorf("%s:1: empty file, want a header", path)
	}
	return readHeadedPairs(path, ls, true)
}

// readHeadedPairs reads a tab-separated file whose first line names the columns: sentence1 and
// sentence2, score (required when scored, else optional: pairs without it have no score), and
// optionally id; other columns are ignored. The ID is the id column or "file:line". A wrong
// column count or a bad score is an error naming file:line.
func readHeadedPairs(path string, ls []string, scored bool) ([]Pair, error) {
	header := strings.Split(ls[0], "\t")
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	need := []string{"sentence1", "sentence2"}
	if scored {
		need = append(need, "score")
	}
	for _, c := range need {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s:1: header lacks column %q", path, c)
		}
	}
	idCol, hasID := col["id"]
	scoreCol, hasScore := col["score"]
	var out []Pair
	for i, l := range ls[1:] {
		n := i + 2
		cols := strings.Split(l, "\t")
		if len(cols) != len(header) {
			return nil, fmt.Errorf("%s:%d: want %d tab-separated columns as the header, got %d", path, n, len(header), len(cols))
		}
		p := Pair{ID: fmt.Sprintf("%s:%d", path, n), TextA: cols[col["sentence1"]], TextB: cols[col["sentence2"]], HasScore: hasScore, Source: path}
		if hasID {
			p.ID = cols[idCol]
		}
		if hasScore {
			var err error
			if p.Score, err = parseScore(cols[scoreCol]); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, n, err)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// ReadSTSB reads the STS benchmark (STS-B, Cer et al. 2017) in either layout it is distributed
// in, told apart by the first line:
//
//   - the benchmark's own files (sts-train.csv, sts-dev.csv, sts-test.csv): tab-separated
//     despite the name, no header, one pair per line as genre, filename, year, index, score,
//     sentence1, sentence2; some lines carry further columns (the sources), which are ignored;
//   - GLUE's files (train.tsv, dev.tsv, test.tsv): a header line naming the columns (index
//     genre filename year old_index source1 source2 sentence1 sentence2 score), then one pair
//     per line with as many columns. GLUE's test.tsv has no score column: its pairs are read
//     without scores (Pair.HasScore false), so it serves prediction, not training or scoring.
//
// Nothing is quoted in either layout (a sentence may hold a '"'). IDs are "file:line". A line
// with too few columns or a bad score is an error naming file:line.
func ReadSTSB(path string) ([]Pair, error) {
	data, err := readText(path)
	if err != nil {
		return nil, err
	}
	ls := lines(data)
	if len(ls) > 0 && strings.HasPrefix(ls[0], "index\t") {
		return readHeadedPairs(path, ls, false) // GLUE's layout
	}
	var out []Pair
	for i, l := range ls {
		n := i + 1
		cols := strings.Split(l, "\t")
		if len(cols) < 7 {
			return nil, fmt.Errorf("%s:%d: want at least 7 tab-separated columns (genre, filename, year, index, score, sentence1, sentence2), got %d", path, n, len(cols))
		}
		p := Pair{ID: fmt.Sprintf("%s:%d", path, n), TextA: cols[5], TextB: cols[6], HasScore: true, Source: path}
		if p.Score, err = parseScore(cols[4]); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		out = append(out, p)
	}
	return out, nil
}
