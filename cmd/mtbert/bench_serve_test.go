package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bench"
)

// TestBenchServe runs `mtbert bench serve` on a tiny random model: the table on stdout, the
// report in -json, and usage errors.
func TestBenchServe(t *testing.T) {
	js := filepath.Join(t.TempDir(), "serve.json")
	stdout, stderr := runCmd(t, 0, "bench", "serve", "-layers", "1", "-hidden", "64", "-k", "2", "-synth-notes", "4", "-synth-words", "30",
		"-concurrency", "1,2", "-requests", "4", "-overload-requests", "20", "-max-queue", "2", "-json", js)
	for _, s := range []string{"batching", "notes/s", "p99 ms", "speedup", "overload: 4.0x", "200:", "503:", "413:", "lost: 0", "duplicated: 0", "VmHWM"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, stdout)
		}
	}
	if !strings.Contains(stderr, "batching on  concurrency   2") {
		t.Errorf("progress lines: %s", stderr)
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.ServeResult
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Phases) != 4 || len(r.Speedup) != 2 || r.Overload == nil || r.Overload.Sent != 20 || r.Overload.Answered+r.Overload.TransportErrs != 20 || r.Overload.Lost != 0 {
		t.Errorf("report %s", b)
	}
	for _, args := range [][]string{{"-concurrency", "0"}, {"-concurrency", "a"}, {"-batching", "maybe"}, {"-requests", "-1"}, {"-max-queue", "0"}} {
		runCmd(t, 2, append([]string{"bench", "serve"}, args...)...)
	}
	if _, stderr := runCmd(t, 0, "bench", "serve", "-h"); !strings.Contains(stderr, "-overload") || !strings.Contains(stderr, "X-Request-Id") {
		t.Errorf("bench serve -h: %s", stderr)
	}
}
