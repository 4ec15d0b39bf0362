package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/bulk"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/serve"
)

// formatNotes writes a JSONL input of notes only (no pairs): non-ASCII characters, line
// breaks inside notes, an empty note, a note of several windows, ids that are not file names.
func formatNotes(t *testing.T, dir string) (string, []string, []string) {
	t.Helper()
	unit := "patient took aspirin for fever . "
	notes := []string{
		"patient took\u00a0aspirin , heparin and insulin for chest pain .",
		"fi\u00e8vre : took aspirin\nfor fever ,\n\n  metformin daily .",
		"",
		"no chest pain after insulin .\r\nheparin stopped .",
		strings.Repeat(unit, 25),
		"\u6e29\u5ea6 normal ; took heparin \u2003 and aspirin .",
		"took metformin .",
	}
	ids := []string{"n1", "notes/2", "3", ".hidden", "long note", "caf\u00e9", "n7"}
	var lines []string
	for i, n := range notes {
		b, _ := json.Marshal(map[string]string{"id": ids[i], "text": n})
		lines = append(lines, string(b))
	}
	in := filepath.Join(dir, "notes.jsonl")
	mustWrite(t, in, strings.Join(lines, "\n")+"\n")
	return in, ids, notes
}

// predictLines maps id -> output line of a JSONL predict output.
func predictLines(t *testing.T, out string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range outLines(out) {
		m[lineID(t, l)] = l
	}
	return m
}

func lineEntities(t *testing.T, l string) map[string][]mtl.Entity {
	t.Helper()
	var o struct {
		Entities map[string][]mtl.Entity
	}
	if err := json.Unmarshal([]byte(l), &o); err != nil {
		t.Fatal(err)
	}
	return o.Entities
}

// testPredictFormats checks -format brat and bioc against the JSONL output, with -shard,
// -workers and -resume, and -progress.
func testPredictFormats(t *testing.T, dir, model, bulkIn, bulkFull string) {
	in, ids, notes := formatNotes(t, dir)
	jsonl, _ := runCmd(t, 0, "predict", "-model", model, "-in", in)
	want := predictLines(t, jsonl)
	if len(want) != len(ids) {
		t.Fatalf("%d output lines for %d notes", len(want), len(ids))
	}
	nEnts := 0
	for _, l := range want {
		nEnts += len(lineEntities(t, l)["ner"])
	}
	if nEnts == 0 {
		t.Fatal("the fixture model found no entity: the comparisons below would be empty")
	}

	t.Run("brat", func(t *testing.T) {
		out := filepath.Join(dir, "brat")
		runCmd(t, 0, "predict", "-model", model, "-in", in, "-format", "brat", "-out", out, "-workers", "2", "-batch", "2")
		docs, _, err := corpus.ReadBrat(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != len(ids) {
			t.Fatalf("%d brat documents, want %d", len(docs), len(ids))
		}
		byName := map[string]corpus.Document{}
		for _, d := range docs {
			byName[d.ID] = d
		}
		for i, id := range ids {
			name, err := bulk.BratFileName(id)
			if err != nil {
				t.Fatal(err)
			}
			d, ok := byName[name]
			if !ok {
				t.Errorf("no %s.ann for id %q", name, id)
				continue
			}
			if d.Text != notes[i] {
				t.Errorf("%s.txt differs from the note", name)
			}
			ents := lineEntities(t, want[id])["ner"]
			if len(d.Spans) != len(ents) {
				t.Errorf("id %q: %d brat spans, %d entities", id, len(d.Spans), len(ents))
				continue
			}
			for k, e := range ents {
				sp := d.Spans[k]
				if sp.Start != e.ByteStart || sp.End != e.ByteEnd || sp.Type != e.Type || sp.Text != e.Text {
					t.Errorf("id %q: brat span %+v, entity %+v", id, sp, e)
				}
			}
		}
		// Four shards into one folder give the same files.
		sharded := filepath.Join(dir, "brat-sharded")
		for i := range 4 {
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-format", "brat", "-out", sharded, "-shard", fmt.Sprintf("%d/4", i))
		}
		if a, b := dirFiles(t, out), dirFiles(t, sharded); !equalMaps(a, b) {
			t.Errorf("sharded brat output differs: %d files, unsharded %d", len(b), len(a))
		}
		// -resume skips the notes whose .ann exists and writes the others.
		n1 := filepath.Join(sharded, "n1.ann")
		mustWrite(t, n1, "T1\tMarker 0 7\tpatient\n")
		os.Remove(filepath.Join(sharded, "n7.ann"))
		os.Remove(filepath.Join(sharded, "long%20note.ann"))
		runCmd(t, 0, "predict", "-model", model, "-in", in, "-format", "brat", "-out", sharded, "-resume")
		got := dirFiles(t, sharded)
		if got["n1.ann"] != "T1\tMarker 0 7\tpatient\n" {
			t.Errorf("-resume rewrote an existing .ann")
		}
		got["n1.ann"] = dirFiles(t, out)["n1.ann"]
		if !equalMaps(got, dirFiles(t, out)) {
			t.Errorf("-resume did not complete the brat folder")
		}
		// Pairs have no brat form: errors on stderr, exit 1, the notes written.
		mixed := filepath.Join(dir, "brat-mixed")
		_, stderr := runCmd(t, 1, "predict", "-model", model, "-in", bulkIn, "-format", "brat", "-out", mixed)
		if strings.Count(stderr, "a sentence pair has no brat form") != 10 || !strings.Contains(stderr, "10 of 40 inputs failed") {
			t.Errorf("pairs with -format brat: %s", stderr)
		}
		if n := len(dirFiles(t, mixed)); n != 60 {
			t.Errorf("%d files for 30 notes", n)
		}
	})

	t.Run("bioc", func(t *testing.T) {
		read := func(path string) bulk.BioCCollection {
			var c bulk.BioCCollection
			dec := json.NewDecoder(strings.NewReader(readOut(t, path)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return c
		}
		out := filepath.Join(dir, "out.bioc.json")
		runCmd(t, 0, "predict", "-model", model, "-in", in, "-format", "bioc", "-out", out, "-workers", "3", "-batch", "1")
		c := read(out)
		if c.Type != "BioCCollection" || c.Key == "" || c.Date == "" || len(c.Docs) != len(ids) {
			t.Fatalf("collection %+v", c)
		}
		for i, d := range c.Docs {
			if d.ID != ids[i] || len(d.Passages) != 1 || d.Passages[0].Offset != 0 || d.Passages[0].Text != notes[i] {
				t.Errorf("document %d: %+v", i, d)
				continue
			}
			ents := lineEntities(t, want[d.ID])["ner"]
			anns := d.Passages[0].Annotations
			if len(anns) != len(ents) {
				t.Errorf("id %q: %d annotations, %d entities", d.ID, len(anns), len(ents))
				continue
			}
			runes := []rune(notes[i])
			for k, a := range anns {
				e, l := ents[k], a.Locations[0]
				if len(a.Locations) != 1 || l.Offset != e.Start || l.Length != e.End-e.Start || a.Text != e.Text ||
					string(runes[l.Offset:l.Offset+l.Length]) != a.Text || a.Infons["type"] != e.Type || a.Infons["task"] != "ner" {
					t.Errorf("id %q: annotation %+v, entity %+v", d.ID, a, e)
				}
			}
		}
		// Four shards, merged, hold the same documents; a .gz output decompresses to the same.
		var merged []bulk.BioCDocument
		for i := range 4 {
			p := filepath.Join(dir, fmt.Sprintf("shard%d.bioc.json.gz", i))
			runCmd(t, 0, "predict", "-model", model, "-in", in, "-format", "bioc", "-out", p, "-shard", fmt.Sprintf("%d/4", i))
			merged = append(merged, read(p).Docs...)
		}
		sort.Slice(merged, func(a, b int) bool { return indexOfStr(ids, merged[a].ID) < indexOfStr(ids, merged[b].ID) })
		if mustJSONString(t, merged) != mustJSONString(t, c.Docs) {
			t.Errorf("merged shards differ from the unsharded collection")
		}
		// To standard output; -resume refused.
		stdout, _ := runCmd(t, 0, "predict", "-model", model, "-in", in, "-format", "bioc")
		var sc bulk.BioCCollection
		if err := json.Unmarshal([]byte(stdout), &sc); err != nil || mustJSONString(t, sc.Docs) != mustJSONString(t, c.Docs) || sc.Source != c.Source {
			t.Errorf("bioc on standard output differs from -out: %v", err)
		}
		_, stderr := runCmd(t, 2, "predict", "-model", model, "-in", in, "-format", "bioc", "-out", out, "-resume")
		if !strings.Contains(stderr, "written whole") {
			t.Errorf("bioc -resume: %s", stderr)
		}
	})

	t.Run("progress", func(t *testing.T) {
		stdout, stderr := runCmd(t, 0, "predict", "-model", model, "-in", bulkIn, "-progress", "-workers", "2")
		if stdout != bulkFull {
			t.Errorf("-progress changed standard output")
		}
		if !strings.Contains(stderr, "predict: 40/40 lines (100.0%), 40 written, ") || !strings.Contains(stderr, "notes/s, elapsed ") || strings.Contains(stderr, "\r") {
			t.Errorf("progress on a non-terminal: %q", stderr)
		}
		gz := filepath.Join(dir, "in.jsonl.gz")
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.Write([]byte(readInput(t, bulkIn)))
		zw.Close()
		mustWrite(t, gz, zb.String())
		_, stderr = runCmd(t, 0, "predict", "-model", model, "-in", gz, "-progress")
		if !strings.Contains(stderr, "predict: 40 lines (100.0% of the input), 40 written") {
			t.Errorf("progress on a compressed input: %q", stderr)
		}
		if _, stderr := runCmd(t, 0, "predict", "-model", model, "-in", bulkIn); strings.Contains(stderr, "predict:") {
			t.Errorf("progress without a terminal nor -progress: %q", stderr)
		}
	})
}

// testShards4 runs 4 shards and merges them back into input order: the unsharded output.
func testShards4(t *testing.T, dir, model, in, full string) {
	fullLines := outLines(full)
	var merged []string
	for i := range 4 {
		out := filepath.Join(dir, fmt.Sprintf("four%d.jsonl.gz", i))
		runCmd(t, 0, "predict", "-model", model, "-in", in, "-out", out, "-shard", fmt.Sprintf("%d/4", i), "-workers", "2", "-batch", "3")
		s := readOut(t, out)
		if s == "" {
			t.Errorf("shard %d/4 is empty", i)
			continue
		}
		merged = append(merged, outLines(s)...)
	}
	sort.SliceStable(merged, func(a, b int) bool { return indexOf(fullLines, merged[a]) < indexOf(fullLines, merged[b]) })
	if strings.Join(merged, "\n")+"\n" != full {
		t.Errorf("4 shards merged (%d lines) differ from the unsharded run (%d lines)", len(merged), len(fullLines))
	}
}

// testServeEqualsPredict serves the model and sends each note of the format notes (one
// request each, and all in one "texts" request): every answer's entity lists are byte for
// byte predict's JSON.
func testServeEqualsPredict(t *testing.T, dir, model string) {
	in, ids, notes := formatNotes(t, dir)
	want := predictLines(t, runCmdOut(t, "predict", "-model", model, "-in", in))
	ex, err := mtl.LoadExtractor(model)
	if err != nil {
		t.Fatal(err)
	}
	s := serve.New(serve.Config{MaxWait: 20 * time.Millisecond})
	s.SetExtractor(ex)
	hs := httptest.NewServer(s.Handler())
	defer s.Close()
	defer hs.Close()
	postJSON := func(v any) string {
		b, _ := json.Marshal(v)
		resp, err := http.Post(hs.URL+"/v1/extract", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		return string(body)
	}
	// predict's line is {"id":...,"line":...,"entities":{...}}: its "entities" member as an
	// object of its own.
	entitiesJSON := func(l string) string {
		i := strings.Index(l, `"entities":`)
		if i < 0 {
			t.Fatalf("no entities in %s", l)
		}
		return "{" + strings.TrimSpace(l[i:])
	}
	for i, n := range notes {
		if got, w := strings.TrimSpace(postJSON(map[string]string{"text": n})), entitiesJSON(want[ids[i]]); got != w {
			t.Errorf("note %q: serve %s\npredict %s", ids[i], got, w)
		}
	}
	var all struct{ Results []json.RawMessage }
	if err := json.Unmarshal([]byte(postJSON(map[string]any{"texts": notes})), &all); err != nil || len(all.Results) != len(notes) {
		t.Fatalf("texts: %d results, %v", len(all.Results), err)
	}
	for i, r := range all.Results {
		if string(r) != entitiesJSON(want[ids[i]]) {
			t.Errorf("texts[%d]: serve %s\npredict %s", i, r, entitiesJSON(want[ids[i]]))
		}
	}
}

func runCmdOut(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := runCmd(t, 0, args...)
	return out
}

func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
		m[e.Name()] = readInput(t, filepath.Join(dir, e.Name()))
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func indexOfStr(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
