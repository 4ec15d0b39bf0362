package corpus

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

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
