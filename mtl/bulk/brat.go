package bulk

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
)

// BratAnn renders a note's entities as brat standoff, task by task in the order of tasks
// (then any other task, sorted): per entity a T line "T1<TAB>Type start end<TAB>text" with
// character (code point) offsets and a note "#1<TAB>AnnotatorNotes T1<TAB>task=... type=...
// score=..." with its task, exact type and score. An entity that spans a line break is
// written as a discontinuous span "start end;start end" (brat shows no span across lines),
// white space at the edges of each piece left out. Types are BratType(task, type, prefix).
func BratAnn(note string, ents map[string][]mtl.Entity, tasks []string, prefix bool) []byte {
	var b bytes.Buffer
	n := 0
	for _, task := range sortedTasks(ents, tasks) {
		for _, e := range ents[task] {
			n++
			frags, texts := bratFragments(note, e)
			var offs []string
			for _, f := range frags {
				offs = append(offs, fmt.Sprintf("%d %d", f[0], f[1]))
			}
			fmt.Fprintf(&b, "T%d\t%s %s\t%s\n", n, BratType(task, e.Type, prefix), strings.Join(offs, ";"), strings.Join(texts, " "))
			fmt.Fprintf(&b, "#%d\tAnnotatorNotes T%d\ttask=%s type=%s score=%s\n", n, n, task,
				strings.Map(func(r rune) rune {
					if r == '\n' || r == '\r' || r == '\t' {
						return ' '
					}
					return r
				}, e.Type), strconv.FormatFloat(e.Score, 'f', 4, 64))
		}
	}
	return b.Bytes()
}

// BratFileName maps a document id to a file name stem: letters, digits, '-' and '_' stay,
// '.' too except in first place, and every other byte becomes %XX (two upper-case hex
// digits), so distinct ids give distinct names and no id escapes the folder ("a/b" gives
// a%2Fb). An empty id, or one over 240 bytes once escaped, is an error.
func BratFileName(id string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 || b.Len() > 240 {
		return "", fmt.Errorf("id %q cannot be a file name (empty, or over 240 bytes once escaped)", id)
	}
	return b.String(), nil
}

// BratType is the brat type of an entity: its type, with every character but letters,
// digits, '_' and '-' replaced by '_'; prefixed with its task (every '-' of the task name
// replaced by '_') and '-' when prefix says several ner tasks are written, e.g.
// ncbi_disease-Disease.
func BratType(task, typ string, prefix bool) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' {
				return r
			}
			return '_'
		}, s)
	}
	t := clean(typ)
	if t == "" {
		t = "_"
	}
	if prefix {
		return strings.ReplaceAll(clean(task), "-", "_") + "-" + t
	}
	return t
}

// sortedTasks returns the keys of ents in the order of tasks (the model's order), then any
// others sorted.
func sortedTasks(ents map[string][]mtl.Entity, tasks []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range tasks {
		if _, ok := ents[t]; ok {
			out = append(out, t)
			seen[t] = true
		}
	}
	var rest []string
	for t := range ents {
		if !seen[t] {
			rest = append(rest, t)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// bratFragments splits an entity into the pieces brat can show: line breaks end a piece, and
// white space at the edges of a piece is dropped. It returns character offsets [start, end)
// and the pieces' texts.
func bratFragments(note string, e mtl.Entity) ([][2]int, []string) {
	var frags [][2]int
	var texts []string
	s := e.ByteStart
	for s < e.ByteEnd {
		end := s
		for end < e.ByteEnd && note[end] != '\n' && note[end] != '\r' {
			end++
		}
		a, b := s, end
		for a < b && isSpaceByte(note[a]) {
			a++
		}
		for b > a && isSpaceByte(note[b-1]) {
			b--
		}
		if a < b {
			cs := e.Start + utf8.RuneCountInString(note[e.ByteStart:a])
			frags = append(frags, [2]int{cs, cs + utf8.RuneCountInString(note[a:b])})
			texts = append(texts, note[a:b])
		}
		s = end + 1
	}
	if len(frags) == 0 { // no piece without white space: keep the entity as it is
		return [][2]int{{e.Start, e.End}}, []string{e.Text}
	}
	return frags, texts
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// bratSink writes ID.txt and ID.ann per note into a folder: the .txt first, then the .ann,
// each through a temporary file renamed into place, so an .ann that exists is complete (what
// Resume checks).
type bratSink struct {
	dir    string
	tasks  []string
	prefix bool
	warn   func(format string, a ...any)
	names  map[string]string // file name -> id, to refuse two ids that would share files
}

func (s *bratSink) put(it *item, o *Result, _ []byte) (bool, error) {
	if o.Error != "" {
		s.warn("id %s: %s", o.ID, o.Error)
		return false, nil // already counted
	}
	name, err := BratFileName(o.ID)
	if err == nil {
		if other, dup := s.names[name]; dup {
			err = fmt.Errorf("ids %q and %q would both write %s.ann (ids must be unique): skipped", other, o.ID, name)
		}
	}
	if err != nil {
		s.warn("line %d: %v", o.Line, err)
		return true, nil
	}
	s.names[name] = o.ID
	if err := writeBytes(filepath.Join(s.dir, name+".txt"), []byte(it.text)); err != nil {
		return false, err
	}
	return false, writeBytes(filepath.Join(s.dir, name+".ann"), BratAnn(it.text, o.Entities, s.tasks, s.prefix))
}

func (s *bratSink) finish() error { return nil }

// bratDone says whether the .ann of id exists in dir (Resume with brat).
func bratDone(dir, id string) bool {
	name, err := BratFileName(id)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, name+".ann"))
	return err == nil
}

// writeBytes writes data to path atomically (bert.WriteFileAtomic).
func writeBytes(path string, data []byte) error {
	return bert.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}
