package mtl_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/train"
)

// checkOffsets fails unless every entity's text is the note at its rune and byte offsets.
func checkOffsets(t *testing.T, note string, res mtl.Result) {
	t.Helper()
	runes := []rune(note)
	for task, es := range res.Entities {
		for _, e := range es {
			if note[e.ByteStart:e.ByteEnd] != e.Text || string(runes[e.Start:e.End]) != e.Text {
				t.Fatalf("%s: entity %+v does not match the note at its offsets", task, e)
			}
			if !(e.Score > 0 && e.Score <= 1) {
				t.Fatalf("%s: entity %+v score out of (0,1]", task, e)
			}
		}
	}
}

func TestExtractor(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A training-like sentence with two non-ASCII spaces (U+00A0, 2 bytes; U+2003, 3 bytes) that
	// the tokenizer treats as blanks: rune and byte offsets differ by 3 after them.
	note := "patient\u00a0took\u2003aspirin , heparin , insulin and metformin for chest pain daily ."
	res, err := ex.Extract(ctx, note, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkOffsets(t, note, res)
	var got []string
	for _, e := range res.Entities["ner"] {
		got = append(got, e.Type+":"+e.Text)
	}
	if want := "Drug:aspirin Drug:heparin Drug:insulin Drug:metformin Problem:chest pain"; strings.Join(got, " ") != want {
		t.Errorf("entities %q, want %q", got, want)
	}
	if e := res.Entities["ner"][0]; e.Start != 13 || e.End != 20 || e.ByteStart != 16 || e.ByteEnd != 23 {
		t.Errorf("aspirin offsets %+v", e)
	}

	// Empty notes and notes without tokens give empty lists; invalid UTF-8 is an error.
	for _, n := range []string{"", "   \n\t"} {
		r, err := ex.Extract(ctx, n, []string{"ner"})
		if err != nil || r.Entities["ner"] == nil || len(r.Entities["ner"]) != 0 {
			t.Errorf("note %q: %+v %v", n, r, err)
		}
	}
	if _, err := ex.Extract(ctx, "took \xffaspirin", nil); err == nil || !strings.Contains(err.Error(), "UTF-8") || !strings.Contains(err.Error(), "offset 5") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := ex.Extract(ctx, note, []string{"nli"}); err == nil || !strings.Contains(err.Error(), "not ner") {
		t.Errorf("pair task in Extract: %v", err)
	}
	if _, err := ex.Extract(ctx, note, []string{"nope"}); err == nil || !strings.Contains(err.Error(), "ner, nli, sts") {
		t.Errorf("unknown task: %v", err)
	}

	// Pairs.
	pr, err := ex.Pair(ctx, "patient has fever .", "patient has no fever .", nil)
	if err != nil {
		t.Fatal(err)
	}
	nli := pr["nli"]
	sum := 0.0
	for _, p := range nli.Probs {
		sum += p
	}
	if len(nli.Probs) != 3 || nli.Probs[nli.Label] < 1.0/3 || sum < 0.999999 || sum > 1.000001 || pr["sts"].Score == nil {
		t.Errorf("pair result %+v", pr)
	}
	if _, err := ex.Pair(ctx, "a", "\xfe", nil); err == nil || !strings.Contains(err.Error(), "text_b") {
		t.Errorf("invalid UTF-8 pair: %v", err)
	}
	if r, err := ex.Pair(ctx, "", "", nil); err != nil || len(r) != 0 {
		t.Errorf("empty pair: %v %v", r, err)
	}

	// Concurrent calls give the sequential answer.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				r, err := ex.Extract(ctx, note, nil)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(r, res) {
					errs <- io.ErrUnexpectedEOF
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Extract: %v", err)
	}
}

// TestExtractLongNote runs a 1 MB note: many windows, and every entity is where it says.
func TestExtractLongNote(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	ex.Batch = 256
	unit := "patient took aspirin for fever . "
	note := strings.Repeat(unit, (1<<20)/len(unit)+1)
	t0 := time.Now()
	res, err := ex.Extract(context.Background(), note, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d entities in %v", len(note), len(res.Entities["ner"]), time.Since(t0))
	checkOffsets(t, note, res)
	// The windows (10 sub-words, stride 5) start mid-sentence, unlike training's: the tiny
	// model still finds at least 90% of the mentions.
	hits := 0
	for _, e := range res.Entities["ner"] {
		if e.Type+":"+e.Text == "Drug:aspirin" || e.Type+":"+e.Text == "Problem:fever" {
			hits++
		}
	}
	if want := 2 * strings.Count(note, unit); float64(hits) < 0.9*float64(want) {
		t.Errorf("%d of %d mentions found", hits, want)
	}
	// A cancelled context stops it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ex.Extract(ctx, note, nil); err == nil {
		t.Error("cancelled Extract returned no error")
	}
}

func TestCheckpointErrors(t *testing.T) {
	dir := fixture.TrainedCheckpoint(t)
	cp := func() string {
		d := filepath.Join(t.TempDir(), "copy")
		os.MkdirAll(d, 0o755)
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(d, e.Name()), b, 0o644)
		}
		return d
	}
	missing := cp()
	os.Remove(filepath.Join(missing, mtl.HeadsFile))
	if _, err := mtl.LoadExtractor(missing); err == nil || !strings.Contains(err.Error(), mtl.HeadsFile) {
		t.Errorf("missing file: %v", err)
	}
	bad := cp()
	p := filepath.Join(bad, "model.safetensors")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1
	os.WriteFile(p, b, 0o644)
	if _, err := mtl.LoadExtractor(bad); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("corrupted file: %v", err)
	}
	if _, err := mtl.LoadExtractor(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("missing folder loaded")
	}
}

func TestNewReader(t *testing.T) {
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("note one\nnote two\n"))
	w.Close()
	for _, in := range [][]byte{gz.Bytes(), []byte("note one\nnote two\n")} {
		rc, err := corpus.NewReader(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(got) != "note one\nnote two\n" {
			t.Errorf("got %q, %v", got, err)
		}
	}
}

func TestPrepareConfigErrors(t *testing.T) {
	dir := t.TempDir()
	abs, _ := filepath.Abs("testdata/train")
	cfg := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfg, []byte("encoder:\n  vocab: "+filepath.Join(abs, "vocab.txt")+"\n  layers: 1\n  hidden: 32\n  heads: 2\n  intermediate: 64\n  max_position: 64\n"+
		"tasks:\n  - name: a\n    kind: ner\n    format: conll\n    max_length: 12\n    train: "+filepath.Join(abs, "missing.conll")+"\n"), 0o644)
	if _, err := train.LoadConfig(cfg, ""); err == nil || !strings.Contains(err.Error(), "tasks[0].train") || !strings.Contains(err.Error(), "missing.conll") {
		t.Errorf("missing train file: %v", err)
	}
	// An empty train file: an error naming it (it used to read as 0 documents and fail later,
	// indirectly, as a split with no examples).
	empty := filepath.Join(dir, "empty.conll")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(cfg, []byte("encoder:\n  vocab: "+filepath.Join(abs, "vocab.txt")+"\n  layers: 1\n  hidden: 32\n  heads: 2\n  intermediate: 64\n  max_position: 64\n"+
		"tasks:\n  - name: a\n    kind: ner\n    format: conll\n    max_length: 12\n    train: "+empty+"\n    labels: [O, B-X, I-X, L-X, U-X]\n"), 0o644)
	c, err := train.LoadConfig(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := train.Prepare(c); err == nil || err.Error() != "task a, train: "+empty+": no sentences: the file is empty" {
		t.Errorf("empty train split: %v", err)
	}
}

// TestPlanNoteMax checks that PlanNoteMax refuses exactly the notes whose plan needs more
// padded positions than allowed (windowTokens agrees with the windows built), and plans the
// others as PlanNote does.
func TestPlanNoteMax(t *testing.T) {
	ex, err := mtl.LoadExtractor(fixture.TrainedCheckpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	for n := range 40 {
		note := strings.Repeat("took aspirin , ", n)
		p, err := ex.PlanNote(note, nil)
		if err != nil {
			t.Fatal(err)
		}
		need := p.Tokens()
		for _, lim := range []int{0, need - 1, need, need + 1, 1 << 20} {
			if lim < 0 {
				continue
			}
			q, err := ex.PlanNoteMax(note, nil, lim)
			switch {
			case lim < need && !errors.Is(err, mtl.ErrTooManyTokens):
				t.Fatalf("%d units, limit %d of %d: %v, want mtl.ErrTooManyTokens", n, lim, need, err)
			case lim >= need && (err != nil || !reflect.DeepEqual(q.Sequences(), p.Sequences())):
				t.Fatalf("%d units, limit %d of %d: %v", n, lim, need, err)
			}
		}
	}
}
