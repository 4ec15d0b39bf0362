package bulk

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonInput is one JSONL input line.
type jsonInput struct {
	ID    json.RawMessage `json:"id"`
	Text  *string         `json:"text"`
	TextA *string         `json:"text_a"`
	TextB *string         `json:"text_b"`
}

// item is one parsed input line: res carries its id and line (and its error, when it could
// not be read); the rest says what to run.
type item struct {
	res     Result
	isPair  bool
	text    string
	a, b    string
	entDone bool
}

// parseLine reads one input line: its id, and its note or pair (or its error). A raw note's
// id is its line number; a JSON id is kept as a string (a number as written).
func parseLine(raw string, line int) item {
	it := item{res: Result{ID: strconv.Itoa(line), Line: line}}
	fail := func(format string, a ...any) item {
		it.res.Error = fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, a...)
		return it
	}
	if !utf8.ValidString(raw) {
		return fail("not valid UTF-8")
	}
	if i := strings.IndexByte(raw, 0); i >= 0 {
		return fail("NUL byte at byte %d (UTF-16 without a byte-order mark? convert the input to UTF-8)", i)
	}
	it.text = raw
	if strings.HasPrefix(strings.TrimSpace(raw), "{") {
		var in jsonInput
		if err := json.Unmarshal([]byte(raw), &in); err != nil {
			return fail("bad JSON: %v", err)
		}
		if len(in.ID) > 0 && string(in.ID) != "null" {
			var s string
			if json.Unmarshal(in.ID, &s) == nil {
				it.res.ID = s
			} else if _, err := strconv.ParseFloat(string(in.ID), 64); err == nil {
				it.res.ID = string(in.ID)
			} else {
				return fail(`"id" is not a string or a number`)
			}
		}
		switch {
		case in.Text != nil && (in.TextA != nil || in.TextB != nil):
			return fail(`give "text" or "text_a"/"text_b", not both`)
		case in.Text != nil:
			it.text = *in.Text
		case in.TextA != nil:
			it.isPair, it.a = true, *in.TextA
			if in.TextB != nil {
				it.b = *in.TextB
			}
		default:
			return fail(`want "text" or "text_a" (and "text_b")`)
		}
	}
	return it
}

// ShardOf is the shard of an input id among n: FNV-1a (64-bit) of the id modulo n. It
// depends on the id alone, so a shard is stable when the input is reordered or split into
// files, and the n shards of one input together hold every input exactly once.
func ShardOf(id string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(n))
}

// ParseShard parses "i/N" with integers 0 <= i < N.
func ParseShard(s string) (i, n int, err error) {
	bad := fmt.Errorf("shard %q: want i/N with integers 0 <= i < N", s)
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, bad
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, bad
	}
	return i, n, nil
}
