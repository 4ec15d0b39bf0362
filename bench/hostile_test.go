package bench

import (
	"testing"
	"time"
)

// TestHostile runs the hostile benchmark for a second a phase on a tiny random model: the
// quiet clients are all answered 200 with their own entities; under attack the oversized
// bodies get only 413 (or 503 when the server is full), the slow bodies 408 after the body
// timeout, the well-behaved clients still get answers of their own notes, and the memory
// figures are read. Speed is not asserted (a shared machine).
func TestHostile(t *testing.T) {
	r, err := Hostile(HostileOptions{
		Layers: 1, Hidden: 64, K: 2, Labels: 5, MaxLen: 32, SynthNotes: 6, SynthWords: 40, Seed: 3,
		Clients: 2, Duration: time.Second, MaxQueue: 8, MaxBody: 64 << 10, MaxTokens: 4096,
		BodyTimeout: 300 * time.Millisecond, Oversize: 2, Slow: 2, Abandon: 2, Flood: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	if q := r.Quiet; q.Requests == 0 || q.OK != q.Requests || q.BadAnswers != 0 || !(q.P50Ms <= q.P99Ms) {
		t.Errorf("quiet phase %+v", q)
	}
	if a := r.Attack; a.Requests == 0 || a.OK == 0 || a.BadAnswers != 0 {
		t.Errorf("attack phase %+v", a)
	}
	for code, n := range r.Attackers["oversize"] {
		if code != "413" && code != "503" {
			t.Errorf("oversized bodies answered %s (%d times)", code, n)
		}
	}
	if r.Attackers["oversize"]["413"] == 0 || r.Attackers["slow"]["408"] == 0 || len(r.Attackers["slow"]) != 1 {
		t.Errorf("attackers %v", r.Attackers)
	}
	if !(r.PeakRSSMB >= r.IdleRSSMB && r.PeakHeapMB > 0) {
		t.Errorf("memory %+v", r)
	}
}
