package bulk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/bulk"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
)

// bulkInput is an input of 40 raw notes, JSONL notes and pairs (ids strings and numbers),
// then one line of bad JSON: 41 inputs.
func bulkInput() string {
	var lines []string
	words := []string{"aspirin", "fever", "insulin", "chest pain", "cough", "metformin"}
	for i := range 40 {
		w, v := words[i%len(words)], words[(i*5+1)%len(words)]
		switch i % 4 {
		case 0:
			lines = append(lines, fmt.Sprintf("patient %d took %s for %s .", i, w, v))
		case 1, 2:
			b, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("n%d", i), "text": fmt.Sprintf("no %s after %s , note %d .", w, v, i)})
			lines = append(lines, string(b))
		default:
			b, _ := json.Marshal(map[string]any{"id": i * 1000, "text_a": "patient has " + w + " .", "text_b": "patient has no " + v + " ."})
			lines = append(lines, string(b))
		}
	}
	lines = append(lines, `{"id": "bad`)
	return strings.Join(lines, "\n") + "\n"
}

// formatNotes is an input of notes only: non-ASCII characters, line breaks inside notes, an
// empty note, a note of several windows, ids that are not file names.
func formatNotes() (in string, ids, notes []string) {
	unit := "patient took aspirin for fever . "
	notes = []string{
		"patient took\u00a0aspirin , heparin and insulin for chest pain .",
		"fi\u00e8vre : took aspirin\nfor fever ,\n\n  metformin daily .",
		"",
		"no chest pain after insulin .\r\nheparin stopped .",
		strings.Repeat(unit, 25),
		"\u6e29\u5ea6 normal ; took heparin \u2003 and aspirin .",
		"took metformin .",
	}
	ids = []string{"n1", "notes/2", "3", ".hidden", "long note", "caf\u00e9", "n7"}
	var lines []string
	for i, n := range notes {
		b, _ := json.Marshal(map[string]string{"id": ids[i], "text": n})
		lines = append(lines, string(b))
	}
	return strings.Join(lines, "\n") + "\n", ids, notes
}

// run runs bulk.Run over in and returns its output.
func run(t *testing.T, ex *mtl.Extractor, in string, opts bulk.Options) (string, bulk.Stats) {
	t.Helper()
	var out bytes.Buffer
	st, err := bulk.Run(context.Background(), ex, strings.NewReader(in), &out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), st
}

// runFile runs bulk.RunFile over in into path.
func runFile(t *testing.T, ex *mtl.Extractor, in, path string, opts bulk.Options) bulk.Stats {
	t.Helper()
	st, err := bulk.RunFile(context.Background(), ex, strings.NewReader(in), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// readOut reads an output file, decompressing it when needed.
func readOut(t *testing.T, path string) string {
	t.Helper()
	rc, err := corpus.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func outLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func parseResult(t *testing.T, l string) bulk.Result {
	t.Helper()
	var r bulk.Result
	if err := json.Unmarshal([]byte(l), &r); err != nil {
		t.Fatalf("output line %q: %v", l, err)
	}
	return r
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBulk(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	in := bulkInput()
	full, st := run(t, ex, in, bulk.Options{})
	fullLines := outLines(full)
	if len(fullLines) != 41 || st != (bulk.Stats{Written: 41, Failed: 1}) {
		t.Fatalf("%d output lines, stats %+v; want 41 lines, 1 failed", len(fullLines), st)
	}

	t.Run("values", func(t *testing.T) { testValues(t, ex, in, fullLines) })
	t.Run("workers", func(t *testing.T) {
		for _, b := range []int{1, 3, 8} {
			if got, _ := run(t, ex, in, bulk.Options{Workers: 3, Batch: b}); got != full {
				t.Errorf("Batch %d, Workers 3: output differs from one worker's", b)
			}
		}
	})
	t.Run("shards", func(t *testing.T) { testShards(t, ex, in, fullLines) })
	t.Run("resume", func(t *testing.T) { testResume(t, ex, in, full) })
	t.Run("interrupt", func(t *testing.T) { testInterrupt(t, ex, in, full) })
	t.Run("on-result", func(t *testing.T) {
		var got []string
		run(t, ex, in, bulk.Options{Workers: 2, Batch: 3, OnResult: func(r bulk.Result) { got = append(got, mustJSON(t, r)) }})
		if !slices.Equal(got, fullLines) {
			t.Errorf("OnResult saw %d results, not the output's %d lines in order", len(got), len(fullLines))
		}
	})
	t.Run("tasks", func(t *testing.T) { testTasks(t, ex, in, fullLines) })
	t.Run("brat", func(t *testing.T) { testBrat(t, ex, in) })
	t.Run("bioc", func(t *testing.T) { testBioC(t, ex) })
	t.Run("progress", func(t *testing.T) { testProgress(t, ex, in, full) })
	t.Run("options", func(t *testing.T) {
		for name, o := range map[string]bulk.Options{
			"resume to a stream": {Resume: true}, "brat to a stream": {Format: bulk.Brat}, "format": {Format: "xml"},
			"shard": {Shard: 3, Shards: 3}, "workers": {Workers: -1}, "task": {Tasks: []string{"nope"}},
		} {
			if _, err := bulk.Run(context.Background(), ex, strings.NewReader(in), io.Discard, o); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		_, err := bulk.RunFile(context.Background(), ex, strings.NewReader(in), filepath.Join(t.TempDir(), "x.json"), bulk.Options{Format: bulk.BioC, Resume: true})
		if err == nil || !strings.Contains(err.Error(), "written whole") {
			t.Errorf("BioC with Resume: %v", err)
		}
	})
}

// testValues checks each output line against the Extractor run on its input alone.
func testValues(t *testing.T, ex *mtl.Extractor, in string, lines []string) {
	ctx := context.Background()
	nEnts := 0
	for i, raw := range outLines(in) {
		r := parseResult(t, lines[i])
		if r.Line != i+1 {
			t.Fatalf("line %d: result of line %d", i+1, r.Line)
		}
		var want bulk.Result
		switch {
		case i == 40:
			if r.ID != "41" || !strings.HasPrefix(r.Error, "line 41: bad JSON") || r.Entities != nil || r.Pairs != nil {
				t.Errorf("bad line: %+v", r)
			}
			continue
		case i%4 == 0:
			res, err := ex.Extract(ctx, raw, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = bulk.Result{ID: fmt.Sprint(i + 1), Line: i + 1, Entities: res.Entities}
			nEnts += len(res.Entities["ner"])
		case i%4 == 3:
			var p struct {
				TextA string `json:"text_a"`
				TextB string `json:"text_b"`
			}
			if err := json.Unmarshal([]byte(raw), &p); err != nil {
				t.Fatal(err)
			}
			pr, err := ex.Pair(ctx, p.TextA, p.TextB, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = bulk.Result{ID: fmt.Sprint(i * 1000), Line: i + 1, Pairs: pr}
			if len(pr) != 2 {
				t.Errorf("pair of line %d: %d tasks", i+1, len(pr))
			}
		default:
			var n struct{ ID, Text string }
			if err := json.Unmarshal([]byte(raw), &n); err != nil {
				t.Fatal(err)
			}
			res, err := ex.Extract(ctx, n.Text, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = bulk.Result{ID: n.ID, Line: i + 1, Entities: res.Entities}
			nEnts += len(res.Entities["ner"])
		}
		if w := mustJSON(t, want); lines[i] != w {
			t.Errorf("line %d: %s\nwant %s", i+1, lines[i], w)
		}
	}
	if nEnts == 0 {
		t.Error("the fixture model found no entity: the comparisons are empty")
	}
}

// testShards runs 4 shards into compressed files: each holds the inputs of its ShardOf, in
// input order, equal to the unsharded lines, and together they hold every input once.
func testShards(t *testing.T, ex *mtl.Extractor, in string, fullLines []string) {
	dir := t.TempDir()
	var merged []string
	for i := range 4 {
		out := filepath.Join(dir, fmt.Sprintf("shard%d.jsonl.gz", i))
		st := runFile(t, ex, in, out, bulk.Options{Shard: i, Shards: 4, Workers: 2, Batch: 3})
		lines := outLines(readOut(t, out))
		if len(lines) == 0 || st.Written != len(lines) || st.Written+st.Skipped != 41 {
			t.Errorf("shard %d/4: %d lines, stats %+v", i, len(lines), st)
		}
		last := -1
		for _, l := range lines {
			k := slices.Index(fullLines, l)
			if k <= last {
				t.Errorf("shard %d/4: line %s is not an unsharded line in input order", i, l)
			}
			last = k
			if id := parseResult(t, l).ID; bulk.ShardOf(id, 4) != i {
				t.Errorf("shard %d/4 holds id %s of shard %d", i, id, bulk.ShardOf(id, 4))
			}
		}
		merged = append(merged, lines...)
	}
	slices.SortFunc(merged, func(a, b string) int { return slices.Index(fullLines, a) - slices.Index(fullLines, b) })
	if !slices.Equal(merged, fullLines) {
		t.Errorf("4 shards merged (%d lines) differ from the unsharded run (%d lines)", len(merged), len(fullLines))
	}
}

// testResume completes partial outputs (plain and compressed) to the full run.
func testResume(t *testing.T, ex *mtl.Extractor, in, full string) {
	dir := t.TempDir()
	partialIn := strings.Join(outLines(in)[:13], "\n") + "\n"
	for _, ext := range []string{".jsonl", ".jsonl.gz", ".jsonl.zst"} {
		out := filepath.Join(dir, "resume"+ext)
		runFile(t, ex, partialIn, out, bulk.Options{})
		st := runFile(t, ex, in, out, bulk.Options{Resume: true, Workers: 3})
		if got := readOut(t, out); got != full || st.Skipped != 13 || st.Written != 28 {
			t.Errorf("%s: resumed output (stats %+v) differs from the full run:\n%s", ext, st, got)
		}
		// Resuming a complete output changes nothing.
		if st := runFile(t, ex, in, out, bulk.Options{Resume: true}); st.Written != 0 || readOut(t, out) != full {
			t.Errorf("%s: resuming a complete output wrote %d", ext, st.Written)
		}
	}
	// A plain partial output whose last line lost its newline.
	out := filepath.Join(dir, "nonl.jsonl")
	mustWrite(t, out, strings.Join(outLines(full)[:5], "\n"))
	runFile(t, ex, in, out, bulk.Options{Resume: true})
	if got := readOut(t, out); got != full {
		t.Errorf("resume after a line without newline:\n%s", got)
	}
	// Resume onto a missing file is a fresh run.
	out = filepath.Join(dir, "fresh.jsonl")
	if runFile(t, ex, in, out, bulk.Options{Resume: true}); readOut(t, out) != full {
		t.Errorf("resume onto a missing file differs from the full run")
	}
	// An output that is not a bulk output is refused and left alone, with no temporary file.
	out = filepath.Join(dir, "other.jsonl")
	mustWrite(t, out, "hello\n")
	_, err := bulk.RunFile(context.Background(), ex, strings.NewReader(in), out, bulk.Options{Resume: true})
	if err == nil || !strings.Contains(err.Error(), "not an mtbert predict output line") || readOut(t, out) != "hello\n" {
		t.Errorf("resume onto a foreign file: %v", err)
	}
	checkNoTemp(t, dir)
}

// testInterrupt cancels the context once 8 results are written: the output holds the
// results of a prefix of the inputs, in order, and Resume completes it with every input
// exactly once. An interrupted BioC run keeps nothing.
func testInterrupt(t *testing.T, ex *mtl.Extractor, in, full string) {
	dir := t.TempDir()
	fullLines := outLines(full)
	cancelAfter := func(n int) (context.Context, bulk.Options) {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		seen := 0
		return ctx, bulk.Options{Batch: 4, Workers: 2, OnResult: func(bulk.Result) {
			if seen++; seen == n {
				cancel()
			}
		}}
	}
	for _, ext := range []string{".jsonl", ".jsonl.zst"} {
		out := filepath.Join(dir, "interrupted"+ext)
		ctx, opts := cancelAfter(8)
		st, err := bulk.RunFile(ctx, ex, strings.NewReader(in), out, opts)
		if !errors.Is(err, bulk.ErrInterrupted) || !strings.Contains(err.Error(), fmt.Sprintf("the first %d inputs", st.Written)) {
			t.Errorf("%s: interrupted run: %v", ext, err)
		}
		part := outLines(readOut(t, out))
		if len(part) < 8 || len(part) >= len(fullLines) || len(part) != st.Written {
			t.Fatalf("%s: %d lines kept, stats %+v", ext, len(part), st)
		}
		if !slices.Equal(part, fullLines[:len(part)]) {
			t.Fatalf("%s: the %d lines kept are not the first lines of the full run", ext, len(part))
		}
		t.Logf("%s: %d of %d results kept at the interrupt", ext, len(part), len(fullLines))
		runFile(t, ex, in, out, bulk.Options{Resume: true, Workers: 3})
		if got := readOut(t, out); got != full {
			t.Errorf("%s: interrupted then resumed output differs from the full run", ext)
		}
	}
	notes, _, _ := formatNotes()
	out := filepath.Join(dir, "interrupted.bioc.json")
	ctx, opts := cancelAfter(2)
	opts.Format, opts.Batch = bulk.BioC, 1
	if _, err := bulk.RunFile(ctx, ex, strings.NewReader(notes), out, opts); !errors.Is(err, bulk.ErrInterrupted) || !strings.Contains(err.Error(), "nothing was kept") {
		t.Errorf("interrupted BioC run: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted BioC run left %s", out)
	}
	checkNoTemp(t, dir)
}

// testTasks selects tasks: a note gets only the named ner tasks (none here), a pair only the
// named sentence-level tasks, with the values of the full run.
func testTasks(t *testing.T, ex *mtl.Extractor, in string, fullLines []string) {
	got, _ := run(t, ex, in, bulk.Options{Tasks: []string{"nli"}})
	for i, l := range outLines(got) {
		r, f := parseResult(t, l), parseResult(t, fullLines[i])
		switch {
		case f.Error != "":
			if r.Error != f.Error {
				t.Errorf("line %d: error %q, want %q", i+1, r.Error, f.Error)
			}
		case f.Pairs != nil:
			if len(r.Pairs) != 1 || mustJSON(t, r.Pairs["nli"]) != mustJSON(t, f.Pairs["nli"]) {
				t.Errorf("line %d: pairs %s, want nli of %s", i+1, mustJSON(t, r.Pairs), mustJSON(t, f.Pairs))
			}
		case len(r.Entities) != 0 || r.Pairs != nil:
			t.Errorf("line %d: entities %s without a ner task", i+1, mustJSON(t, r.Entities))
		}
	}
}

// testBrat writes the format notes as brat, reads the folder back with the brat reader and
// compares it with the JSONL entities; resumes; and counts pairs as failed inputs.
func testBrat(t *testing.T, ex *mtl.Extractor, bulkIn string) {
	in, ids, notes := formatNotes()
	jsonl, _ := run(t, ex, in, bulk.Options{})
	want := map[string]bulk.Result{}
	for _, l := range outLines(jsonl) {
		r := parseResult(t, l)
		want[r.ID] = r
	}
	dir := filepath.Join(t.TempDir(), "brat")
	runFile(t, ex, in, dir, bulk.Options{Format: bulk.Brat, Workers: 2, Batch: 2})
	docs, _, err := corpus.ReadBrat(dir)
	if err != nil || len(docs) != len(ids) {
		t.Fatalf("%d brat documents, want %d: %v", len(docs), len(ids), err)
	}
	nEnts := 0
	for _, d := range docs {
		k := slices.IndexFunc(ids, func(id string) bool { name, _ := bulk.BratFileName(id); return name == d.ID })
		if k < 0 || d.Text != notes[k] {
			t.Errorf("document %s: not a note", d.ID)
			continue
		}
		ents := want[ids[k]].Entities["ner"]
		nEnts += len(ents)
		if len(d.Spans) != len(ents) {
			t.Errorf("id %q: %d brat spans, %d entities", ids[k], len(d.Spans), len(ents))
			continue
		}
		for i, e := range ents {
			if sp := d.Spans[i]; sp.Start != e.ByteStart || sp.End != e.ByteEnd || sp.Type != e.Type || sp.Text != e.Text {
				t.Errorf("id %q: brat span %+v, entity %+v", ids[k], sp, e)
			}
		}
	}
	if nEnts == 0 {
		t.Error("no entity in the brat comparison")
	}
	// Resume skips the notes whose .ann exists.
	mustWrite(t, filepath.Join(dir, "n1.ann"), "T1\tMarker 0 7\tpatient\n")
	os.Remove(filepath.Join(dir, "n7.ann"))
	st := runFile(t, ex, in, dir, bulk.Options{Format: bulk.Brat, Resume: true})
	if st.Written != 1 || st.Skipped != 6 || readOut(t, filepath.Join(dir, "n1.ann")) != "T1\tMarker 0 7\tpatient\n" {
		t.Errorf("brat resume: stats %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "n7.ann")); err != nil {
		t.Errorf("brat resume did not write n7.ann: %v", err)
	}
	checkNoTemp(t, dir)
	// Pairs (and the bad line) have no brat form: failed, reported through Warn.
	var warned []string
	st = runFile(t, ex, bulkIn, filepath.Join(t.TempDir(), "mixed"), bulk.Options{Format: bulk.Brat, Warn: func(m string) { warned = append(warned, m) }})
	if st.Failed != 11 || st.Written != 41 || len(warned) != 11 || !strings.Contains(warned[0], "id 3000: line 4: a sentence pair has no brat form") {
		t.Errorf("pairs as brat: stats %+v, warnings %q", st, warned)
	}
}

// testBioC writes the format notes as one BioC collection and compares it with the JSONL
// entities; 4 shards hold the same documents.
func testBioC(t *testing.T, ex *mtl.Extractor) {
	in, ids, notes := formatNotes()
	jsonl, _ := run(t, ex, in, bulk.Options{})
	read := func(s string) bulk.BioCCollection {
		var c bulk.BioCCollection
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	out, _ := run(t, ex, in, bulk.Options{Format: bulk.BioC, Source: "test", Workers: 3, Batch: 1})
	c := read(out)
	if c.Type != "BioCCollection" || c.Source != "test" || c.Key != "mtbert.key" || len(c.Docs) != len(ids) {
		t.Fatalf("collection %+v", c)
	}
	for i, l := range outLines(jsonl) {
		r := parseResult(t, l)
		if want := mustJSON(t, bulk.NewBioCDocument(r.ID, notes[i], r.Entities, []string{"ner"})); mustJSON(t, c.Docs[i]) != want {
			t.Errorf("document %d: %s\nwant %s", i, mustJSON(t, c.Docs[i]), want)
		}
	}
	var merged []bulk.BioCDocument
	dir := t.TempDir()
	for i := range 4 {
		p := filepath.Join(dir, fmt.Sprintf("shard%d.bioc.json.gz", i))
		runFile(t, ex, in, p, bulk.Options{Format: bulk.BioC, Shard: i, Shards: 4, Source: "test"})
		merged = append(merged, read(readOut(t, p)).Docs...)
	}
	slices.SortFunc(merged, func(a, b bulk.BioCDocument) int { return slices.Index(ids, a.ID) - slices.Index(ids, b.ID) })
	if mustJSON(t, merged) != mustJSON(t, c.Docs) {
		t.Errorf("merged shards differ from the unsharded collection")
	}
}

// testProgress checks the last progress line of a file input (the total known), of a
// compressed file (the share of its bytes) and of a stream; the output is unchanged.
func testProgress(t *testing.T, ex *mtl.Extractor, in, full string) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "in.jsonl")
	mustWrite(t, plain, in)
	gz := filepath.Join(dir, "in.jsonl.gz")
	runFileRaw := func(path string) (string, string) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var out, prog bytes.Buffer
		if _, err := bulk.Run(context.Background(), ex, f, &out, bulk.Options{Progress: &prog, Workers: 2}); err != nil {
			t.Fatal(err)
		}
		return out.String(), prog.String()
	}
	out, prog := runFileRaw(plain)
	if out != full || !strings.HasPrefix(prog, "predict: 41/41 lines (100.0%), 41 written, ") || !strings.Contains(prog, "notes/s, elapsed ") || strings.Contains(prog, "\r") {
		t.Errorf("progress of a file: %q", prog)
	}
	writeGzip(t, gz, in)
	if out, prog = runFileRaw(gz); out != full || !strings.HasPrefix(prog, "predict: 41 lines (100.0% of the input), 41 written") {
		t.Errorf("progress of a compressed file: %q", prog)
	}
	var sb bytes.Buffer
	if _, err := bulk.Run(context.Background(), ex, strings.NewReader(in), io.Discard, bulk.Options{Progress: &sb}); err != nil || !strings.HasPrefix(sb.String(), "predict: 41 lines, 41 written") {
		t.Errorf("progress of a stream: %q, %v", sb.String(), err)
	}
}

func checkNoTemp(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeGzip(t *testing.T, path, s string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, path, b.String())
}
