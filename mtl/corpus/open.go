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
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Magic numbers of the compressed formats Open recognises.
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// Byte-order marks: the text a file starts with decides its encoding.
var (
	bomUTF8    = []byte{0xef, 0xbb, 0xbf}
	bomUTF16LE = []byte{0xff, 0xfe}
	bomUTF16BE = []byte{0xfe, 0xff}
)

// Open opens path for reading as NewReader reads: decompressed when its
// first bytes are the gzip (1f 8b) or zstd (28 b5 2f fd) magic number,
// whatever the file's name, and as UTF-8 text without a byte-order mark.
// Closing the result closes the file.
func Open(path string) (io.ReadCloser, error) {
	rc, _, err := openBOM(path)
	return rc, err
}

// openBOM is Open that also says which byte-order mark the (decompressed)
// file started with: "", "UTF-8", "UTF-16LE" or "UTF-16BE".
func openBOM(path string) (io.ReadCloser, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	rc, bom, err := newReader(f)
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return &stackCloser{Reader: rc, closers: []io.Closer{rc, f}}, bom, nil
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

// readText reads a whole file through Open (decompressed, UTF-16 with a
// byte-order mark decoded, a byte-order mark removed) and checks that it is
// valid UTF-8 without NUL bytes, naming the first bad line otherwise.
func readText(path string) ([]byte, error) {
	data, _, err := readTextBOM(path)
	return data, err
}

// readTextBOM is readText that also says which byte-order mark the file
// started with ("", "UTF-8", "UTF-16LE" or "UTF-16BE"), for formats whose
// offsets count it.
func readTextBOM(path string) ([]byte, string, error) {
	rc, bom, err := openBOM(path)
	if err != nil {
		return nil, "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	nul := bytes.IndexByte(data, 0)
	if !utf8.Valid(data) {
		if off := FirstInvalid(string(data)); nul < 0 || off < nul {
			return nil, "", fmt.Errorf("%s:%d: invalid UTF-8 at byte %d", path, lineOf(data, off), off)
		}
	}
	if nul >= 0 {
		return nil, "", fmt.Errorf("%s:%d: NUL byte at byte %d (UTF-16 without a byte-order mark? convert the file to UTF-8)", path, lineOf(data, nul), nul)
	}
	return data, bom, nil
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

// NewReader returns r as UTF-8 text: decompressed when it starts with the gzip or zstd magic
// number (as Open does for files), then, when the (decompressed) text starts with a byte-order
// mark, without it: after a UTF-8 mark the bytes as they are, after a UTF-16 mark (ff fe
// little-endian, fe ff big-endian) the text decoded to UTF-8 (an unpaired surrogate becomes
// U+FFFD). Text without a mark is returned as it is. Closing the result releases the
// decompressor (not r).
func NewReader(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := newReader(r)
	return rc, err
}

// newReader is NewReader that also says which byte-order mark it removed: "", "UTF-8",
// "UTF-16LE" or "UTF-16BE".
func newReader(r io.Reader) (io.ReadCloser, string, error) {
	rc, err := decompress(r)
	if err != nil {
		return nil, "", err
	}
	br := bufio.NewReader(rc)
	head, _ := br.Peek(3)
	var enc unicode.Endianness
	bom := ""
	switch {
	case bytes.HasPrefix(head, bomUTF8):
		br.Discard(len(bomUTF8))
		return readCloser{br, rc}, "UTF-8", nil
	case bytes.HasPrefix(head, bomUTF16LE):
		enc, bom = unicode.LittleEndian, "UTF-16LE"
	case bytes.HasPrefix(head, bomUTF16BE):
		enc, bom = unicode.BigEndian, "UTF-16BE"
	default:
		return readCloser{br, rc}, "", nil
	}
	dec := unicode.UTF16(enc, unicode.ExpectBOM).NewDecoder() // consumes the mark
	return readCloser{transform.NewReader(br, dec), rc}, bom, nil
}

// readCloser reads from Reader and closes Closer.
type readCloser struct {
	io.Reader
	io.Closer
}

// decompress returns r decompressed when it starts with the gzip or zstd magic number, else
// r as it is.
func decompress(r io.Reader) (io.ReadCloser, error) {
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
