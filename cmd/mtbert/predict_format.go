package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
)

// predictSink receives predict's results in input order: one call per input (its item, its
// output, and its JSONL line), then finish once every input was put. put reports an input
// it could not write (reported on stderr, the run goes on) with failed, and an error that
// stops the run with err.
type predictSink interface {
	put(it *predictItem, o *predictOutput, line []byte) (failed bool, err error)
	finish() error
}

// jsonlSink writes the JSONL lines.
type jsonlSink struct{ w io.Writer }

func (s *jsonlSink) put(_ *predictItem, _ *predictOutput, line []byte) (bool, error) {
	_, err := s.w.Write(line)
	return false, err
}

func (s *jsonlSink) finish() error { return nil }

// reportErr writes an input's error to stderr (brat and BioC have no place for it).
func reportErr(stderr io.Writer, o *predictOutput) {
	fmt.Fprintf(stderr, "mtbert predict: id %s: %s\n", o.ID, o.Error)
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

// bratFileName maps a document id to a file name stem: letters, digits, '-' and '_' stay,
// '.' too except in first place, and every other byte becomes %XX (two upper-case hex
// digits), so distinct ids give distinct names and no id escapes the folder.
func bratFileName(id string) (string, error) {
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

// bratType is the brat type of an entity: its type, with every character but letters,
// digits, '_' and '-' replaced by '_'; prefixed with its task (every '-' of the task name
// replaced by '_') and '-' when several ner tasks are written, e.g. ncbi_disease-Disease.
func bratType(task, typ string, prefix bool) string {
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

// bratAnn renders a note's entities as brat standoff: per entity a T line and a # line
// (AnnotatorNotes) with its task, exact type and score.
func bratAnn(note string, ents map[string][]mtl.Entity, tasks []string, prefix bool) []byte {
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
			fmt.Fprintf(&b, "T%d\t%s %s\t%s\n", n, bratType(task, e.Type, prefix), strings.Join(offs, ";"), strings.Join(texts, " "))
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

// bratSink writes ID.txt and ID.ann per note into a folder: the .txt first, then the .ann,
// each through a temporary file renamed into place, so an .ann that exists is complete (what
// -resume checks).
type bratSink struct {
	dir    string
	tasks  []string
	prefix bool
	stderr io.Writer
	names  map[string]string // file name -> id, to refuse two ids that would share files
}

func (s *bratSink) put(it *predictItem, o *predictOutput, _ []byte) (bool, error) {
	if o.Error != "" {
		reportErr(s.stderr, o)
		return false, nil // already counted
	}
	name, err := bratFileName(o.ID)
	if err == nil {
		if other, dup := s.names[name]; dup {
			err = fmt.Errorf("ids %q and %q would both write %s.ann (ids must be unique): skipped", other, o.ID, name)
		}
	}
	if err != nil {
		fmt.Fprintf(s.stderr, "mtbert predict: line %d: %v\n", o.Line, err)
		return true, nil
	}
	s.names[name] = o.ID
	if err := writeBytes(filepath.Join(s.dir, name+".txt"), []byte(it.text)); err != nil {
		return false, err
	}
	return false, writeBytes(filepath.Join(s.dir, name+".ann"), bratAnn(it.text, o.Entities, s.tasks, s.prefix))
}

func (s *bratSink) finish() error { return nil }

// bratDone says whether the .ann of id exists in dir (-resume with -format brat).
func bratDone(dir, id string) bool {
	name, err := bratFileName(id)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, name+".ann"))
	return err == nil
}

// The BioC JSON structures, as bioc (bionlplab/bioc, biocjson) writes and reads them.
type biocCollection struct {
	Type    string            `json:"bioctype"`
	Source  string            `json:"source"`
	Date    string            `json:"date"`
	Key     string            `json:"key"`
	Version string            `json:"version"`
	Infons  map[string]string `json:"infons"`
	Docs    []biocDocument    `json:"documents"`
}

type biocDocument struct {
	Type        string            `json:"bioctype"`
	ID          string            `json:"id"`
	Infons      map[string]string `json:"infons"`
	Passages    []biocPassage     `json:"passages"`
	Annotations []biocAnnotation  `json:"annotations"`
	Relations   []json.RawMessage `json:"relations"`
}

type biocPassage struct {
	Type        string            `json:"bioctype"`
	Offset      int               `json:"offset"`
	Infons      map[string]string `json:"infons"`
	Text        string            `json:"text"`
	Sentences   []json.RawMessage `json:"sentences"`
	Annotations []biocAnnotation  `json:"annotations"`
	Relations   []json.RawMessage `json:"relations"`
}

type biocAnnotation struct {
	ID        string            `json:"id"`
	Infons    map[string]string `json:"infons"`
	Text      string            `json:"text"`
	Locations []biocLocation    `json:"locations"`
}

type biocLocation struct {
	Offset int `json:"offset"`
	Length int `json:"length"`
}

// biocDoc renders one note as a BioC document: one passage at offset 0 holding the note, an
// annotation per entity with infons type, task and score, and one location whose offset and
// length count characters (Unicode code points), as mtbert's start/end do.
func biocDoc(id, note string, ents map[string][]mtl.Entity, tasks []string) biocDocument {
	p := biocPassage{Type: "BioCPassage", Infons: map[string]string{}, Text: note, Sentences: []json.RawMessage{}, Annotations: []biocAnnotation{}, Relations: []json.RawMessage{}}
	n := 0
	for _, task := range sortedTasks(ents, tasks) {
		for _, e := range ents[task] {
			n++
			p.Annotations = append(p.Annotations, biocAnnotation{
				ID:        "T" + strconv.Itoa(n),
				Infons:    map[string]string{"type": e.Type, "task": task, "score": strconv.FormatFloat(e.Score, 'f', 4, 64)},
				Text:      e.Text,
				Locations: []biocLocation{{Offset: e.Start, Length: e.End - e.Start}},
			})
		}
	}
	return biocDocument{Type: "BioCDocument", ID: id, Infons: map[string]string{}, Passages: []biocPassage{p}, Annotations: []biocAnnotation{}, Relations: []json.RawMessage{}}
}

// biocSink streams one BioC JSON collection to w: the head, each document as it comes, and
// the tail at finish (the file around w is renamed into place only then).
type biocSink struct {
	w      io.Writer
	tasks  []string
	stderr io.Writer
	n      int
	source string
}

func (s *biocSink) head() error {
	b, err := json.Marshal(biocCollection{Type: "BioCCollection", Source: s.source, Date: time.Now().UTC().Format("2006-01-02"),
		Key: "mtbert.key", Version: "1.0", Infons: map[string]string{}, Docs: []biocDocument{}})
	if err != nil {
		return err
	}
	// Cut the empty documents list's "]}" to append documents.
	_, err = s.w.Write(append(bytes.TrimSuffix(b, []byte("]}")), '\n'))
	return err
}

func (s *biocSink) put(it *predictItem, o *predictOutput, _ []byte) (bool, error) {
	if o.Error != "" {
		reportErr(s.stderr, o)
		return false, nil // already counted
	}
	b, err := json.Marshal(biocDoc(o.ID, it.text, o.Entities, s.tasks))
	if err != nil {
		return false, err
	}
	if s.n > 0 {
		if _, err := s.w.Write([]byte(",\n")); err != nil {
			return false, err
		}
	}
	s.n++
	_, err = s.w.Write(b)
	return false, err
}

func (s *biocSink) finish() error {
	_, err := s.w.Write([]byte("\n]}\n"))
	return err
}

// isTerminal says whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countLines counts the lines of an uncompressed regular file (a last line without newline
// counts); ok is false for anything else.
func countLines(path string) (n int64, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	head, _ := br.Peek(4)
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return 0, false
	}
	buf := make([]byte, 1<<20)
	last := byte('\n')
	for {
		k, err := br.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, false
		}
	}
	if last != '\n' {
		n++
	}
	return n, true
}

// progress draws predict's progress on stderr: input lines done (of the total when the input
// is an uncompressed file), results written, notes/s, elapsed time and ETA (from the lines,
// or from the bytes of a compressed file read). On a terminal it redraws one line; elsewhere
// (-progress into a file) it prints a line every 10 seconds. It never writes to stdout.
type progress struct {
	w          io.Writer
	tty        bool
	start      time.Time
	totalLines int64 // 0: unknown
	size       int64 // input file size, 0: unknown
	read       *countingReader
	lines      atomic.Int64 // input lines done (written or skipped)
	written    atomic.Int64
	stop, done chan struct{}
	once       sync.Once
}

func newProgress(w io.Writer, tty bool, totalLines, size int64, read *countingReader) *progress {
	p := &progress{w: w, tty: tty, start: time.Now(), totalLines: totalLines, size: size, read: read, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		every := 10 * time.Second
		if tty {
			every = 250 * time.Millisecond
		}
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				p.draw(false, false)
			}
		}
	}()
	return p
}

// line renders the current state.
func (p *progress) line(final, complete bool) string {
	el := time.Since(p.start)
	lines, written := p.lines.Load(), p.written.Load()
	rate := float64(written) / max(el.Seconds(), 1e-9)
	frac := -1.0
	var b strings.Builder
	b.WriteString("predict: ")
	switch {
	case p.totalLines > 0:
		if complete {
			lines = p.totalLines
		}
		frac = float64(lines) / float64(p.totalLines)
		fmt.Fprintf(&b, "%d/%d lines (%.1f%%)", lines, p.totalLines, 100*frac)
	case p.size > 0 && p.read != nil:
		frac = min(1, float64(p.read.n.Load())/float64(p.size))
		fmt.Fprintf(&b, "%d lines (%.1f%% of the input)", lines, 100*frac)
	default:
		fmt.Fprintf(&b, "%d lines", lines)
	}
	fmt.Fprintf(&b, ", %d written, %.1f notes/s, elapsed %s", written, rate, el.Round(time.Second))
	if !final && frac > 0 && frac < 1 {
		fmt.Fprintf(&b, ", ETA %s", time.Duration(float64(el)*(1-frac)/frac).Round(time.Second))
	}
	return b.String()
}

func (p *progress) draw(final, complete bool) {
	l := p.line(final, complete)
	switch {
	case p.tty && final:
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", l)
	case p.tty:
		fmt.Fprintf(p.w, "\r%s\x1b[K", l)
	default:
		fmt.Fprintln(p.w, l)
	}
}

// finish stops the redraws and prints the final line; complete says the whole input was
// read.
func (p *progress) finish(complete bool) {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.draw(true, complete)
	})
}

// writeBytes writes data to path atomically (bert.WriteFileAtomic).
func writeBytes(path string, data []byte) error {
	return bert.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(data); return err })
}
