package corpus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxLineBytes is the longest line ReadText keeps whole: a longer one is split, at
// whitespace where it can be, into documents of at most this many bytes.
const DefaultMaxLineBytes = 1 << 20

// TextStats counts what ReadText skipped or changed, so that nothing is dropped silently.
type TextStats struct {
	// Files read, and BinaryFiles skipped (a NUL byte in the first 8 KiB, or more than 10%
	// of that prefix not valid UTF-8).
	Files, BinaryFiles int
	// EmptyLines skipped (nothing but white space).
	EmptyLines int
	// SplitLines counts lines longer than the limit; each gave several documents.
	SplitLines int
	// InvalidUTF8 counts documents in which invalid bytes were replaced by U+FFFD.
	InvalidUTF8 int
}

func (s *TextStats) add(o TextStats) {
	s.Files += o.Files
	s.BinaryFiles += o.BinaryFiles
	s.EmptyLines += o.EmptyLines
	s.SplitLines += o.SplitLines
	s.InvalidUTF8 += o.InvalidUTF8
}

// ReadText reads raw text for masked-language-model training: a file holds one document per
// line; a folder is walked (sorted, recursively) for .txt files (optionally .gz or .zst
// compressed), each of which is one document whose lines are joined by spaces. gzip and zstd
// are recognised by their magic bytes. Nothing makes it fail but an I/O error: binary files
// are skipped, empty lines skipped, lines over maxLine bytes (<= 0: DefaultMaxLineBytes)
// split, invalid UTF-8 replaced, each counted in the stats. Document IDs are "file:line" or,
// for a folder's files, the path relative to the folder.
func ReadText(path string, maxLine int) ([]Document, TextStats, error) {
	if maxLine <= 0 {
		maxLine = DefaultMaxLineBytes
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, TextStats{}, err
	}
	if !fi.IsDir() {
		return readTextLines(path, maxLine)
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if _, ok := baseName(d.Name(), ".txt"); ok && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, TextStats{}, err
	}
	sort.Strings(files)
	var docs []Document
	var st TextStats
	for _, f := range files {
		rel, _ := filepath.Rel(path, f)
		d, s, err := readTextFile(f, rel, maxLine)
		if err != nil {
			return nil, st, err
		}
		docs = append(docs, d...)
		st.add(s)
	}
	return docs, st, nil
}

// readTextLines reads a file of one document per line.
func readTextLines(path string, maxLine int) ([]Document, TextStats, error) {
	var docs []Document
	st, err := scanText(path, maxLine, func(line int, text string) {
		docs = append(docs, Document{ID: fmt.Sprintf("%s:%d", filepath.Base(path), line), Text: text, Source: path})
	})
	return docs, st, err
}

// readTextFile reads a whole file as one document (or several when it exceeds maxLine).
func readTextFile(path, id string, maxLine int) ([]Document, TextStats, error) {
	var parts []string
	var size int
	var docs []Document
	flush := func() {
		if len(parts) > 0 {
			docs = append(docs, Document{ID: id, Text: strings.Join(parts, " "), Source: path})
			parts, size = nil, 0
		}
	}
	st, err := scanText(path, maxLine, func(_ int, text string) {
		if size+len(text)+1 > maxLine {
			flush()
		}
		parts = append(parts, text)
		size += len(text) + 1
	})
	flush()
	if len(docs) > 1 {
		for i := range docs {
			docs[i].ID = fmt.Sprintf("%s#%d", id, i+1)
		}
	}
	return docs, st, err
}

// scanText calls emit with each non-empty line of path (1-based line number, valid UTF-8,
// white space trimmed), pieces of at most maxLine bytes for longer lines. It reads through a
// bounded buffer: a line of any length costs at most maxLine bytes of memory at a time.
func scanText(path string, maxLine int, emit func(line int, text string)) (TextStats, error) {
	st := TextStats{Files: 1}
	rc, err := Open(path)
	if err != nil {
		return st, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	head, _ := br.Peek(8 << 10)
	if isBinary(head) {
		st.Files, st.BinaryFiles = 0, 1
		return st, nil
	}
	line := 0
	var cur []byte // the current line's unemitted bytes (< maxLine + one read)
	split := false
	out := func(b []byte) {
		s := strings.TrimSpace(string(b))
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
			st.InvalidUTF8++
		}
		if s != "" {
			emit(line, s)
		}
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if len(cur) == 0 && !split {
				line++
			}
			cur = append(cur, chunk...)
			for len(cur) > maxLine {
				cut := cutPoint(cur, maxLine)
				out(cur[:cut])
				cur = append(cur[:0], cur[cut:]...)
				split = true
			}
			if !errors.Is(err, bufio.ErrBufferFull) { // the line ended (or the file did)
				if split {
					st.SplitLines++
					out(cur)
				} else if len(bytes.TrimSpace(cur)) == 0 {
					st.EmptyLines++
				} else {
					out(cur)
				}
				cur, split = cur[:0], false
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case errors.Is(err, io.EOF):
			return st, nil
		default:
			return st, fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

// cutPoint returns where to cut b (longer than max): after the last white space within the
// first max bytes when there is one in its second half, else at the last rune boundary at or
// before max.
func cutPoint(b []byte, max int) int {
	for i := max; i > max/2; i-- {
		if b[i-1] == ' ' || b[i-1] == '\t' {
			return i
		}
	}
	i := max
	for i > 0 && !utf8.RuneStart(b[i]) {
		i--
	}
	if i == 0 {
		return max
	}
	return i
}

// isBinary reports whether a file's first bytes look binary: a NUL byte, or more than 10% of
// invalid UTF-8 or control characters other than white space.
func isBinary(head []byte) bool {
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	bad := 0
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n == 1 {
			if len(head)-i < utf8.UTFMax && !utf8.FullRune(head[i:]) {
				break // a rune cut by the end of the peek
			}
			bad++
		} else if r < 0x20 && !unicode.IsSpace(r) {
			bad++
		}
		i += n
	}
	return bad*10 > len(head)
}
