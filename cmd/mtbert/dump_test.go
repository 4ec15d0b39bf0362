package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl/train"
	"github.com/mtbert/mtbert/nn"
)

// TestDataDump writes the trajectory config's first 7 steps and reads them back: one JSON line
// and four tensors per step, the step-0 checkpoint, and a refusal to overwrite a dump.
func TestDataDump(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dump")
	cfg := filepath.Join("..", "..", "mtl", "train", "testdata", "trajectory", "config.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"data", "-config", cfg, "-dump", dir, "-dump-steps", "7"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "the first 7 of 50 steps") {
		t.Errorf("stdout: %q", stdout.String())
	}
	f, err := os.Open(filepath.Join(dir, train.DumpStepsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []train.DumpStep
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s train.DumpStep
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, s)
	}
	if len(steps) != 7 || steps[0].Task != "ner" || steps[1].Task != "nli" || steps[2].Task != "sts" || steps[0].LR != 0 {
		t.Fatalf("steps: %+v", steps)
	}
	st, err := nn.LoadSafetensors(filepath.Join(dir, train.DumpBatchesFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tensors) != 4*7 {
		t.Errorf("%d tensors, want 28: %v", len(st.Tensors), st.Names())
	}
	labels, err := st.Tensors["0000.0.labels"].Int64()
	if err != nil {
		t.Fatal(err)
	}
	ignored := 0
	for _, l := range labels {
		if l == -100 {
			ignored++
		}
	}
	if b := steps[0].Batches[0]; len(labels) != b.Rows*b.Length || len(labels)-ignored != b.Targets {
		t.Errorf("step 0 labels: %d values, %d ignored; steps.jsonl says %+v", len(labels), ignored, b)
	}
	if _, err := st.Tensors["0002.0.labels"].Float32(); err != nil {
		t.Errorf("regression labels: %v", err)
	}
	for _, name := range []string{"model.safetensors", "heads.safetensors", "trainer.json"} {
		if _, err := os.Stat(filepath.Join(dir, train.DumpInitialDir, name)); err != nil {
			t.Error(err)
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"data", "-config", cfg, "-dump", dir}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "already holds a dump") {
		t.Errorf("second dump: exit %d, stderr %q", code, stderr.String())
	}
}
