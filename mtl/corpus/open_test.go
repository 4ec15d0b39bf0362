package corpus

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	utf16pkg "unicode/utf16"

	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

func TestOpenDetectsByMagic(t *testing.T) {
	dir := t.TempDir()
	want := []byte("plain text\nwith é\n")
	// Names deliberately lie: detection is by content.
	mtltest.Compress(t, filepath.Join(dir, "a.txt"), "gz", want)
	mtltest.Compress(t, filepath.Join(dir, "b.gz"), "zst", want)
	plain := mtltest.WriteFile(t, dir, "c.zst", string(want))
	for _, p := range []string{filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.gz"), plain} {
		rc, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %q, %v; want %q", p, got, err, want)
		}
	}
	// A corrupt gzip stream is an error naming the file.
	bad := mtltest.WriteFile(t, dir, "bad", "\x1f\x8b\x08garbage")
	if rc, err := Open(bad); err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
		mtltest.WantErr(t, err, "bad")
	} else {
		mtltest.WantErr(t, err, "bad")
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Error("Open of a missing file gave no error")
	}
}

func TestReadersReadCompressed(t *testing.T) {
	dir := t.TempDir()
	for _, kind := range []string{"gz", "zst"} {
		data, err := os.ReadFile("../testdata/conll/small.tsv")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "small.tsv."+kind)
		mtltest.Compress(t, p, kind, data)
		docs, _, err := ReadCoNLL(p)
		if err != nil || len(docs) != 3 {
			t.Fatalf("%s: %d docs, %v; want 3", kind, len(docs), err)
		}
		// A brat pair, both compressed, read as a folder.
		bd := filepath.Join(dir, "brat-"+kind)
		os.Mkdir(bd, 0o755)
		for _, ext := range []string{".txt", ".ann"} {
			data, err := os.ReadFile("../testdata/brat/doc1" + ext)
			if err != nil {
				t.Fatal(err)
			}
			mtltest.Compress(t, filepath.Join(bd, "doc1"+ext+"."+kind), kind, data)
		}
		bdocs, _, err := ReadBrat(bd)
		if err != nil || len(bdocs) != 1 || len(bdocs[0].Spans) != 6 || bdocs[0].ID != "doc1" {
			t.Fatalf("%s brat: %+v, %v", kind, bdocs, err)
		}
		data, err = os.ReadFile("../testdata/pairs/medrqe.xml")
		if err != nil {
			t.Fatal(err)
		}
		p = filepath.Join(dir, "rqe.xml."+kind)
		mtltest.Compress(t, p, kind, data)
		pairs, err := ReadMedRQE(p)
		if err != nil || len(pairs) != 3 {
			t.Fatalf("%s medrqe: %d pairs, %v", kind, len(pairs), err)
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	dir := t.TempDir()
	p := mtltest.WriteFile(t, dir, "bad.tsv", "ok\tO\n\nbad\xff\tO\n")
	_, _, err := ReadCoNLL(p)
	mtltest.WantErr(t, err, "bad.tsv:3:", "invalid UTF-8")
	p = mtltest.WriteFile(t, dir, "bad.jsonl", "{}\n\xc3\n")
	_, err = ReadMedNLI(p)
	mtltest.WantErr(t, err, "bad.jsonl:2:", "invalid UTF-8")
}

// utf16 encodes s as UTF-16 with a byte-order mark.
func utf16(s string, big bool) []byte {
	out := []byte{0xff, 0xfe}
	if big {
		out = []byte{0xfe, 0xff}
	}
	for _, u := range utf16pkg.Encode([]rune(s)) {
		if big {
			out = append(out, byte(u>>8), byte(u))
		} else {
			out = append(out, byte(u), byte(u>>8))
		}
	}
	return out
}

// TestByteOrderMarks: a UTF-16 file with a mark (either byte order, compressed or not) is
// read as its UTF-8 text, a UTF-8 mark is dropped, and the readers see text without it: the
// first CoNLL token and the first STS sentence are clean, brat offsets that count the mark
// still land on their words, and a NUL byte (UTF-16 without a mark) is an error that says so.
func TestByteOrderMarks(t *testing.T) {
	dir := t.TempDir()
	text := "tumor\tB-X\n𝔸é\tO\n"
	for name, data := range map[string][]byte{
		"le.tsv":   utf16(text, false),
		"be.tsv":   utf16(text, true),
		"utf8.tsv": append([]byte("\ufeff"), text...),
		"plain":    []byte(text),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		mtltest.Compress(t, p+".gz", "gz", data)
		for _, q := range []string{p, p + ".gz"} {
			rc, err := Open(q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(got) != text {
				t.Errorf("%s: got %q, %v; want %q", q, got, err, text)
			}
			docs, _, err := ReadCoNLL(q)
			if err != nil || len(docs) != 1 || docs[0].Text != "tumor 𝔸é" || docs[0].Spans[0].Text != "tumor" {
				t.Errorf("%s: ReadCoNLL %+v, %v", q, docs, err)
			}
		}
	}
	sts := mtltest.WriteFile(t, dir, "sts.tsv", "\ufeffNo pain.\tPain free.\t4\n")
	if ps, err := ReadSTS(sts, ""); err != nil || ps[0].TextA != "No pain." {
		t.Errorf("ReadSTS with a UTF-8 mark: %+v, %v", ps, err)
	}
	// brat counts the UTF-8 mark as character 0: "fever" is at 1..6.
	mtltest.WriteFile(t, dir, "b.txt", "\ufefffever today")
	mtltest.WriteFile(t, dir, "b.ann", "T1\tProblem 1 6\tfever\n")
	docs, _, err := ReadBrat(filepath.Join(dir, "b"))
	if err != nil || docs[0].Text != " fever today" || docs[0].Spans[0].Text != "fever" || docs[0].Spans[0].Start != 1 {
		t.Errorf("brat with a UTF-8 mark: %+v, %v", docs, err)
	}
	// UTF-16 without a mark: NUL bytes.
	raw := utf16(text, false)[2:]
	nul := filepath.Join(dir, "nomark.tsv")
	os.WriteFile(nul, raw, 0o644)
	_, _, err = ReadCoNLL(nul)
	mtltest.WantErr(t, err, "nomark.tsv:1: NUL byte at byte 1", "UTF-16 without a byte-order mark")
	// NewReader (predict's input) does the same on a stream.
	rc, err := NewReader(bytes.NewReader(utf16("a\nb\n", false)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if string(got) != "a\nb\n" {
		t.Errorf("NewReader on UTF-16LE: %q", got)
	}
}
