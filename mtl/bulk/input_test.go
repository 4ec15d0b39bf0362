package bulk

import (
	"strings"
	"testing"
)

// TestShardOf checks ShardOf against FNV-1a (64-bit) values computed by hand from its
// definition (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
func TestShardOf(t *testing.T) {
	for _, c := range []struct {
		id      string
		hash    uint64
		n, want int
	}{
		{"", 0xcbf29ce484222325, 7, 2},
		{"a", 0xaf63dc4c8601ec8c, 7, 5},
		{"n1", 0x08b37b07b558d4c0, 4, 0},
		{"7000", 0xf858f1e1867f8402, 4, 2},
		{"7000", 0xf858f1e1867f8402, 1, 0},
	} {
		if int(c.hash%uint64(c.n)) != c.want {
			t.Fatalf("table: %#x mod %d is not %d", c.hash, c.n, c.want)
		}
		if got := ShardOf(c.id, c.n); got != c.want {
			t.Errorf("ShardOf(%q, %d) = %d, want %d", c.id, c.n, got, c.want)
		}
	}
}

func TestParseShard(t *testing.T) {
	for s, want := range map[string][2]int{"0/1": {0, 1}, "2/3": {2, 3}, "0/16": {0, 16}} {
		if i, n, err := ParseShard(s); err != nil || i != want[0] || n != want[1] {
			t.Errorf("ParseShard(%q) = %d, %d, %v", s, i, n, err)
		}
	}
	for _, s := range []string{"3/3", "-1/3", "a/3", "1", "0/0", "1/2/3", "1/-2", " 1/3", ""} {
		if _, _, err := ParseShard(s); err == nil || !strings.Contains(err.Error(), "0 <= i < N") {
			t.Errorf("ParseShard(%q): %v", s, err)
		}
	}
}

// TestParseLine reads each kind of input line: its id, what it runs, or its error.
func TestParseLine(t *testing.T) {
	for _, c := range []struct {
		raw, id, text, a, b, err string
		pair                     bool
	}{
		{raw: "a raw note .", id: "7", text: "a raw note ."},
		{raw: "", id: "7", text: ""},
		{raw: `{"id": "x", "text": "t"}`, id: "x", text: "t"},
		{raw: ` {"id": 12.50, "text": ""}`, id: "12.50", text: ""},
		{raw: `{"id": null, "text": "t"}`, id: "7", text: "t"},
		{raw: `{"text": "t"}`, id: "7", text: "t"},
		{raw: `{"id": 3, "text_a": "p", "text_b": "q"}`, id: "3", a: "p", b: "q", pair: true},
		{raw: `{"id": 3, "text_a": "p"}`, id: "3", a: "p", pair: true},
		{raw: `{"id": [1], "text": "t"}`, id: "7", err: `line 7: "id" is not a string or a number`},
		{raw: `{"id": "x", "text": "t", "text_a": "p"}`, id: "x", err: `line 7: give "text" or "text_a"/"text_b", not both`},
		{raw: `{"id": "x"}`, id: "x", err: `line 7: want "text" or "text_a" (and "text_b")`},
		{raw: `{"id": "x", "text": }`, id: "7", err: "line 7: bad JSON: invalid character '}' looking for beginning of value"},
		{raw: "caf\xe9", id: "7", err: "line 7: not valid UTF-8"},
	} {
		it := parseLine(c.raw, 7)
		if it.res.ID != c.id || it.res.Line != 7 || it.res.Error != c.err || it.isPair != c.pair {
			t.Errorf("%q: %+v", c.raw, it)
			continue
		}
		if c.err == "" && (it.text != c.text && !c.pair || it.a != c.a || it.b != c.b) {
			t.Errorf("%q: text %q, a %q, b %q", c.raw, it.text, it.a, it.b)
		}
	}
}
