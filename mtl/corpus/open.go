package corpus

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
)

// Magic numbers of the compressed formats Open recognises.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Open opens path for reading and decompresses it transparently when its
// first bytes are the gzip (1f 8b) or zstd (28 b5 2f fd) magic number,
// whatever the file's name. Other files are returned as they are.
// Closing the result closes the file.
func Open(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rc, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &stackCloser{Reader: rc, closers: []io.Closer{rc, f}}, nil
}

type stackCloser struct {
	io.Reader
	closers []io.Closer
}

// Close closes the decompressor, then the file.
func (s *stackCloser) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// readText reads a whole file through Open and checks that it is valid
// UTF-8, naming the first bad line otherwise. A leading UTF-8 byte order
// mark is kept (offsets in the corpora count it, if present).
func readText(path string) ([]byte, error) {
	rc, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !utf8.Valid(data) {
		off := FirstInvalid(string(data))
		return nil, fmt.Errorf("%s:%d: invalid UTF-8 at byte %d", path, lineOf(data, off), off)
	}
	return data, nil
}

// lineOf returns the 1-based line number of byte offset off in data.
func lineOf(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

// runeToByte returns a table t with t[i] the byte offset of the i-th code
// point of s, and t[RuneCount(s)] = len(s).
func runeToByte(s string) []int {
	t := make([]int, 0, len(s)+1)
	for i := range s {
		t = append(t, i)
	}
	return append(t, len(s))
}

// compressedExt lists the file-name suffixes of compressed files that the
// folder readers strip before matching .txt with .ann (or .con) files.
var compressedExt = []string{".gz", ".zst", ".zstd"}

// baseName strips a compression suffix and then ext from name; ok is false
// when the name does not end in ext.
func baseName(name, ext string) (string, bool) {
	for _, c := range compressedExt {
		if strings.HasSuffix(name, c) {
			name = strings.TrimSuffix(name, c)
			break
		}
	}
	if !strings.HasSuffix(name, ext) {
		return "", false
	}
	return strings.TrimSuffix(name, ext), true
}

// listByExt returns, for a folder, the map from base name to path of the
// files ending in ext (optionally compressed).
func listByExt(dir, ext string) (map[string]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if b, ok := baseName(e.Name(), ext); ok {
			if prev, dup := m[b]; dup {
				return nil, fmt.Errorf("%s: both %s and %s present", dir, filepath.Base(prev), e.Name())
			}
			m[b] = filepath.Join(dir, e.Name())
		}
	}
	return m, nil
}

// FirstInvalid returns the byte offset of the first invalid UTF-8 sequence of s.
func FirstInvalid(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return len(s)
}

// NewReader returns r decompressed when it starts with the gzip or zstd magic number (as
// Open does for files), else r as it is. Closing the result releases the decompressor (not
// r).
func NewReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdReadCloser{zr}, nil
	}
	return io.NopCloser(br), nil
}

// zstdReadCloser is a zstd decoder as an io.ReadCloser.
type zstdReadCloser struct{ *zstd.Decoder }

// Close releases the decoder.
func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }
