package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeAccounting runs the load generator on a tiny random model with a small queue:
// every closed-loop request is answered 200 with entities that belong to its own note; with
// batching off every batch holds one request; and under a 4x overload every request sent gets
// exactly one answer (200, 503 with Retry-After, or 413 for the oversized bodies), echoing
// its own id. Speed is not asserted (a shared machine); `mtbert bench serve` measures it.
func TestServeAccounting(t *testing.T) {
	var log bytes.Buffer
	o := ServeOptions{
		Layers: 1, Hidden: 64, K: 2, Labels: 5, MaxLen: 32, SynthNotes: 6, SynthWords: 40, Seed: 7,
		Concurrency: []int{1, 3}, Batching: []bool{true, false}, Requests: 6,
		MaxQueue: 3, MaxWait: 2 * time.Millisecond, MaxBody: 4096,
		Overload: 4, OverloadRequests: 60, OversizeEvery: 10, Log: &log,
	}
	r, err := Serve(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 4 || len(r.Speedup) != 2 || r.Notes != 6 || r.Layers != 1 || r.Hidden != 64 || r.NERHeads != 2 || !(r.MeanSubwords > 40) {
		t.Fatalf("result %+v", r)
	}
	for _, p := range r.Phases {
		if p.Requests != 6 || p.OK != 6 || p.Failed != 0 || p.BadAnswers != 0 || !(p.NotesPerS > 0) || !(p.P50Ms <= p.P99Ms && p.P99Ms <= p.MaxMs) || p.Passes < 1 {
			t.Errorf("phase %+v", p)
		}
		if !p.Batching && p.MeanBatchRequests != 1 {
			t.Errorf("batching off, concurrency %d: %.2f requests per batch, want 1", p.Concurrency, p.MeanBatchRequests)
		}
		if p.Batching && p.Concurrency == 1 && p.MeanBatchRequests != 1 {
			t.Errorf("one client: %.2f requests per batch", p.MeanBatchRequests)
		}
	}
	ov := r.Overload
	if ov == nil {
		t.Fatal("no overload phase")
	}
	if ov.Sent != 60 || ov.OversizeSent != 6 || ov.Answered+ov.TransportErrs != ov.Sent || ov.TransportErrs != 0 {
		t.Errorf("sent %d (%d oversized), answered %d, transport errors %d", ov.Sent, ov.OversizeSent, ov.Answered, ov.TransportErrs)
	}
	if ov.Status200+ov.Status503+ov.Status413+ov.StatusOther != ov.Answered || ov.StatusOther != 0 || ov.Status200 < 1 || ov.Status413 > ov.OversizeSent {
		t.Errorf("statuses 200 %d, 503 %d, 413 %d, other %d %v of %d answers", ov.Status200, ov.Status503, ov.Status413, ov.StatusOther, ov.OtherCodes, ov.Answered)
	}
	if ov.Lost != 0 || ov.Duplicated != 0 || ov.WrongID != 0 || ov.No503Retry != 0 || ov.BadAnswers != 0 {
		t.Errorf("lost %d, duplicated %d, wrong id %d, 503 without Retry-After %d, bad answers %d", ov.Lost, ov.Duplicated, ov.WrongID, ov.No503Retry, ov.BadAnswers)
	}
	if !(ov.IdleHeapMB > 0 && ov.PeakHeapMB >= ov.IdleHeapMB) || ov.Factor != 4 || !(ov.CapacityPerS > 0) {
		t.Errorf("overload %+v", ov)
	}
	var tbl bytes.Buffer
	WriteServeTable(&tbl, r)
	for _, s := range []string{"batching", "speedup", "overload: 4.0x", "503:", "VmHWM"} {
		if !strings.Contains(tbl.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tbl.String())
		}
	}
	t.Logf("\n%s\n%s", log.String(), tbl.String())
}

func TestAnswerMatches(t *testing.T) {
	note := "fi\u00e8vre , aspirin"
	ok := `{"entities":{"a":[{"type":"X","start":9,"end":16,"byte_start":10,"byte_end":17,"text":"aspirin","score":0.5}]}}`
	if !answerMatches([]byte(ok), note) {
		t.Error("a right answer refused")
	}
	for _, bad := range []string{
		`{"entities":{"a":[{"type":"X","start":10,"end":17,"byte_start":10,"byte_end":17,"text":"aspirin","score":0.5}]}}`,
		`{"entities":{"a":[{"type":"X","start":9,"end":16,"byte_start":9,"byte_end":16,"text":"aspirin","score":0.5}]}}`,
		`{"entities":{"a":[{"type":"X","start":9,"end":16,"byte_start":10,"byte_end":99,"text":"aspirin","score":0.5}]}}`,
		`{"error":"x"}`, `nope`,
	} {
		if answerMatches([]byte(bad), note) {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestLoadNotes(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notes.jsonl")
	if err := os.WriteFile(p, []byte("{\"id\": 1, \"text\": \"took aspirin\\nfor fever\"}\nraw note line\n\n   \n{\"text\": \"x\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notes, err := LoadNotes(p)
	if err != nil || len(notes) != 3 || notes[0] != "took aspirin\nfor fever" || notes[1] != "raw note line" || notes[2] != "x" {
		t.Fatalf("%q %v", notes, err)
	}
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("second\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("first\nnote\n"), 0o644)
	if notes, err := LoadNotes(dir); err != nil || len(notes) != 2 || notes[0] != "first\nnote\n" {
		t.Fatalf("folder: %q %v", notes, err)
	}
	if _, err := LoadNotes(filepath.Join(dir, "none")); err == nil {
		t.Error("a missing path accepted")
	}
	// The public MEDDOCAN clinical cases, one note per .txt, when present.
	real := "../../shared/data/meddocan/dev/brat"
	if _, err := os.Stat(real); err != nil {
		t.Skipf("%s absent: %v", real, err)
	}
	notes, err = LoadNotes(real)
	if err != nil || len(notes) < 100 {
		t.Fatalf("MEDDOCAN dev: %d notes, %v", len(notes), err)
	}
}
