package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoSmall runs the demo end to end on a tiny corpus for one epoch: it must train every
// head, report held-out metrics for each task and print entities whose text is in the note.
func TestDemoSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model; skipped with -short")
	}
	var stdout, stderr bytes.Buffer
	dir := filepath.Join(t.TempDir(), "demo")
	if code := run([]string{"demo", "-out", dir, "-notes", "20", "-pairs", "20", "-epochs", "1", "-quiet"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"SYNTHETIC", "medication", "clinical", "phi", "nli", "sts", "A held-out note:", "A held-out pair:"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
