package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
)

// TestHelperTrain is not a test: TestCrashAtEverySavePoint runs the test binary again with
// MTBERT_HELPER_ARGS set, and this runs mtbert with those arguments in that process, where
// MTBERT_CRASH_AT stops it (see bert/crash.go).
func TestHelperTrain(t *testing.T) {
	raw := os.Getenv("MTBERT_HELPER_ARGS")
	if raw == "" {
		t.Skip("helper process for TestCrashAtEverySavePoint")
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(run(args, os.Stdout, os.Stderr))
}

// helper runs mtbert args in a child process with the extra environment env and returns its
// exit status and output.
func helper(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperTrain$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), "MTBERT_HELPER_ARGS="+string(a)), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

// crashConfig writes a small two-task config over the fixtures of mtl/testdata/train: 6 steps,
// evaluated every 2, so that last/, best/ and best.json are each saved several times.
func crashConfig(t *testing.T) string {
	t.Helper()
	data, err := filepath.Abs("../../mtl/testdata/train")
	if err != nil {
		t.Fatal(err)
	}
	p := func(f string) string { return filepath.Join(data, f) }
	cfg := fmt.Sprintf(`encoder: {vocab: %s, layers: 1, hidden: 16, heads: 2, intermediate: 32, max_position: 64, lower_case: false}
tasks:
  - {name: nli, kind: pair-classification, format: mednli, train: %s, dev: %s, max_length: 32, batch_size: 8}
  - {name: sts, kind: regression, format: sts, train: %s, dev: %s, max_length: 32, batch_size: 8}
training: {steps: 6, eval_every: 2, lr: 3e-3, seed: 5, dropout: 0.1}
`, p("vocab.txt"), p("nli-train.jsonl"), p("nli-dev.jsonl"), p("sts-train.tsv"), p("sts-dev.tsv"))
	path := filepath.Join(t.TempDir(), "crash.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runState is what a finished run leaves in its folder, less wall-clock times.
func runState(t *testing.T, out string) map[string]string {
	t.Helper()
	st := map[string]string{}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		st["entry "+e.Name()] = ""
	}
	for _, d := range []string{"last", "best"} {
		ents, _ := os.ReadDir(filepath.Join(out, d))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(out, d, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			st[d+"/"+e.Name()] = string(b)
		}
	}
	for _, f := range []string{"best.json", "loss.png", "dev.png"} {
		b, _ := os.ReadFile(filepath.Join(out, f))
		st[f] = string(b)
	}
	// metrics.jsonl and summary.json without their timings.
	var lines []string
	raw, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("metrics.jsonl line %q: %v", l, err)
		}
		delete(m, "seconds")
		delete(m, "tokens_per_s")
		b, _ := json.Marshal(m)
		lines = append(lines, string(b))
	}
	st["metrics.jsonl"] = strings.Join(lines, "\n")
	var sum map[string]any
	raw, _ = os.ReadFile(filepath.Join(out, "summary.json"))
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	delete(sum, "seconds")
	b, _ := json.Marshal(sum)
	st["summary.json"] = string(b)
	return st
}

func diffState(a, b map[string]string) string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k)
		}
	}
	return strings.Join(d, ", ")
}

// TestCrashAtEverySavePoint (issue 14, item 8) kills a training run at every point between
// two file-system operations of its saves (checkpoint folders, best.json, summary.json, the
// plots), then recovers: -resume, or -force when the run stopped before its first checkpoint.
// Every point must end in the bit-identical result of an uninterrupted run: the same
// checkpoints, best.json, plots, summary and metrics.jsonl lines (timings aside), and no
// temporary left behind.
func TestCrashAtEverySavePoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the tiny training about 60 times")
	}
	cfg := crashConfig(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	trace := filepath.Join(dir, "trace")
	if code, out := helper(t, []string{"MTBERT_CRASH_TRACE=" + trace}, "train", "-config", cfg, "-out", ref, "-quiet"); code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, out)
	}
	want := runState(t, ref)
	for _, d := range []string{"last", "best"} {
		if st, err := os.Stat(filepath.Join(ref, d)); err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want a 0755 folder", d, st.Mode(), err)
		}
	}
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	points := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(points) < 20 {
		t.Fatalf("only %d crash points:\n%s", len(points), raw)
	}
	resumed, forced := 0, 0
	for n := 1; n <= len(points); n++ {
		out := filepath.Join(dir, fmt.Sprint("crash", n))
		code, log := helper(t, []string{fmt.Sprint("MTBERT_CRASH_AT=", n)}, "train", "-config", cfg, "-out", out, "-quiet")
		if code != bert.CrashExitCode {
			t.Fatalf("point %s: exit %d, want %d\n%s", points[n-1], code, bert.CrashExitCode, log)
		}
		// A new run into the folder is refused.
		var stdout, stderr bytes.Buffer
		if c := run([]string{"train", "-config", cfg, "-out", out, "-quiet"}, &stdout, &stderr); c != 1 || !strings.Contains(stderr.String(), "is not empty") {
			t.Fatalf("point %s: a new run into the crashed folder: exit %d: %s", points[n-1], c, stderr.String())
		}
		stderr.Reset()
		c := run([]string{"train", "-config", cfg, "-out", out, "-resume", "-quiet"}, &stdout, &stderr)
		if c != 0 {
			if !strings.Contains(stderr.String(), "no checkpoint to resume from") {
				t.Fatalf("point %s: -resume: exit %d: %s", points[n-1], c, stderr.String())
			}
			stderr.Reset()
			if c := run([]string{"train", "-config", cfg, "-out", out, "-force", "-quiet"}, &stdout, &stderr); c != 0 {
				t.Fatalf("point %s: -force: exit %d: %s", points[n-1], c, stderr.String())
			}
			forced++
		} else {
			resumed++
		}
		if got := runState(t, out); !reflect.DeepEqual(got, want) {
			t.Errorf("point %s: the recovered run differs from the uninterrupted one in: %s", points[n-1], diffState(got, want))
		}
	}
	t.Logf("%d crash points: %d resumed, %d restarted with -force", len(points), resumed, forced)
}
