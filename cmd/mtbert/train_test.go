package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const trainCfg = "../../mtl/testdata/train/config.yaml"

func runCmd(t *testing.T, wantCode int, args ...string) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, &stdout, &stderr); code != wantCode {
		t.Fatalf("mtbert %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

// TestTrainEvalPredict is the tiny end to end: train the fixture config, check the run folder,
// evaluate the best checkpoint, predict, and resume an interrupted run to bit-identical
// weights.
func TestTrainEvalPredict(t *testing.T) {
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	stdout, stderr := runCmd(t, 0, "train", "-config", trainCfg, "-out", straight)
	if !strings.Contains(stderr, "\rstep ") || !strings.Contains(stderr, "ETA") || !strings.Contains(stderr, "tok/s") || !strings.Contains(stderr, "dev: ner span_f1") {
		t.Errorf("progress on stderr: %q", stderr)
	}
	for _, s := range []string{"task", "ner", "span_f1", "token_f1", "nli", "accuracy", "sts", "pearson"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("summary table lacks %q:\n%s", s, stdout)
		}
	}
	for _, d := range []string{"last", "best"} {
		for _, f := range []string{"config.json", "vocab.txt", "model.safetensors", "heads.safetensors", "tasks.json", "checksums.json"} {
			if _, err := os.Stat(filepath.Join(straight, d, f)); err != nil {
				t.Errorf("%s/%s: %v", d, f, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(straight, "last", "trainer.json")); err != nil {
		t.Errorf("last has no trainer state: %v", err)
	}
	// metrics.jsonl: step lines then evaluation lines.
	raw, err := os.ReadFile(filepath.Join(straight, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	steps, evals := 0, map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		if m["split"] == "dev" {
			evals[m["task"].(string)]++
			if _, ok := m[m["main"].(string)]; !ok {
				t.Errorf("evaluation line without its main metric: %s", l)
			}
			continue
		}
		for _, k := range []string{"step", "epoch", "task", "loss", "lr", "tokens", "seconds"} {
			if _, ok := m[k]; !ok {
				t.Errorf("step line lacks %s: %s", k, l)
			}
		}
		steps++
	}
	var sum struct {
		Steps int
		Model string
		Tasks []struct {
			Task      string
			Dev, Test *struct{ Metrics map[string]float64 }
		}
	}
	b, _ := os.ReadFile(filepath.Join(straight, "summary.json"))
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if steps != sum.Steps || sum.Steps == 0 || evals["ner"] != 2 || evals["nli"] != 2 || evals["sts"] != 2 || sum.Model != "best" || len(sum.Tasks) != 3 || sum.Tasks[2].Test == nil {
		t.Errorf("%d step lines, evaluations %v, summary %+v", steps, evals, sum)
	}

	// eval -json has every task, with its main metric.
	stdout, _ = runCmd(t, 0, "eval", "-model", filepath.Join(straight, "best"), "-config", trainCfg, "-split", "test", "-json")
	var ms []struct {
		Task, Main, Split string
		Metrics           map[string]float64
	}
	if err := json.Unmarshal([]byte(stdout), &ms); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if len(ms) != 3 || ms[0].Task != "ner" || ms[1].Task != "nli" || ms[2].Task != "sts" || ms[0].Split != "test" {
		t.Fatalf("eval json %s", stdout)
	}
	for _, m := range ms {
		if _, ok := m.Metrics[m.Main]; !ok && m.Main != "pearson" {
			t.Errorf("%s lacks %s: %v", m.Task, m.Main, m.Metrics)
		}
	}
	stdout, _ = runCmd(t, 0, "eval", "-model", filepath.Join(straight, "best"), "-config", trainCfg)
	if !strings.Contains(stdout, "span_f1") || !strings.Contains(stdout, "strict span scores per type") || !strings.Contains(stdout, "Drug") {
		t.Errorf("eval table:\n%s", stdout)
	}

	// predict: notes, JSONL notes and pairs, a bad line and an empty note.
	note := "patient took\u00a0aspirin for fever ."
	in := filepath.Join(dir, "in.jsonl")
	lines := []string{
		note,
		`{"id": "n2", "text": "no chest pain after insulin ."}`,
		`{"id": 7, "text_a": "patient has fever .", "text_b": "patient has no fever ."}`,
		`{"id": "bad", "text": }`,
		"",
		"took \xffaspirin",
	}
	os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	outFile := filepath.Join(dir, "out.jsonl")
	_, stderr = runCmd(t, 1, "predict", "-model", filepath.Join(straight, "best"), "-in", in, "-out", outFile)
	if !strings.Contains(stderr, "2 of 6 inputs failed") {
		t.Errorf("stderr %s", stderr)
	}
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	outs := strings.Split(strings.TrimSpace(string(got)), "\n")
	if len(outs) != 6 {
		t.Fatalf("%d output lines:\n%s", len(outs), got)
	}
	var o []predLine
	for _, l := range outs {
		var x predLine
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		o = append(o, x)
	}
	texts := []string{note, "no chest pain after insulin ."}
	for i, txt := range texts {
		es := o[i].Entities["ner"]
		if len(es) == 0 {
			t.Errorf("line %d: no entities: %s", i+1, outs[i])
		}
		for _, e := range es {
			if txt[e.BStart:e.BEnd] != e.Text || string([]rune(txt)[e.Start:e.End]) != e.Text {
				t.Errorf("line %d: entity %+v not at its offsets", i+1, e)
			}
		}
	}
	if o[0].ID != "1" || o[1].ID != "n2" || o[2].ID != "7" {
		t.Errorf("ids %q %q %q", o[0].ID, o[1].ID, o[2].ID)
	}
	if p := o[2].Pairs; len(p["nli"].Probs) != 3 || p["sts"].Score == nil {
		t.Errorf("pairs %s", outs[2])
	}
	if !strings.Contains(o[3].Error, "line 4: bad JSON") || !strings.Contains(o[5].Error, "UTF-8") || o[4].Error != "" || o[4].Entities["ner"] == nil || len(o[4].Entities["ner"]) != 0 {
		t.Errorf("bad lines: %s | %s | %s", outs[3], outs[4], outs[5])
	}
	// -tasks selects; an unknown task is an error.
	stdout, _ = runCmd(t, 0, "predict", "-model", filepath.Join(straight, "best"), "-tasks", "nli", "-in", filepath.Join(dir, "one.txt"+mustWrite(t, filepath.Join(dir, "one.txt"), `{"text_a": "a", "text_b": "b"}`+"\n")))
	if !strings.Contains(stdout, `"nli"`) || strings.Contains(stdout, `"sts"`) {
		t.Errorf("-tasks nli: %s", stdout)
	}
	_, stderr = runCmd(t, 1, "predict", "-model", filepath.Join(straight, "best"), "-tasks", "nope", "-in", in)
	if !strings.Contains(stderr, `no task "nope"`) {
		t.Errorf("unknown task: %s", stderr)
	}

	// Ended by -max-steps after one epoch (of two), a finished run (exit 0, summary, plots),
	// then resumed: bit-identical to the straight run.
	split := filepath.Join(dir, "split")
	perEpoch := sum.Steps / 2
	stdout, _ = runCmd(t, 0, "train", "-config", trainCfg, "-out", split, "-max-steps", itoa(perEpoch), "-quiet")
	if want := "stopped at max steps " + itoa(perEpoch) + " of the config's " + itoa(sum.Steps) + " (continue with -resume)"; !strings.Contains(stdout, want) || !strings.Contains(stdout, "plots: ") {
		t.Errorf("-max-steps run, stdout lacks %q or the plots:\n%s", want, stdout)
	}
	for _, f := range []string{"summary.json", "loss.png", "dev.png"} {
		if fi, err := os.Stat(filepath.Join(split, f)); err != nil || fi.Size() == 0 {
			t.Errorf("-max-steps run: %s: %v", f, err)
		}
	}
	runCmd(t, 1, "train", "-config", trainCfg, "-out", split, "-quiet") // refuses to overwrite
	runCmd(t, 0, "train", "-config", trainCfg, "-out", split, "-resume", "-quiet")
	for _, f := range []string{"model.safetensors", "heads.safetensors", "trainer.safetensors"} {
		a, _ := os.ReadFile(filepath.Join(straight, "last", f))
		b, _ := os.ReadFile(filepath.Join(split, "last", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("last/%s differs between the straight and the resumed run", f)
		}
	}
}

// predLine is an output line of mtbert predict.
type predLine struct {
	ID       string
	Line     int
	Entities map[string][]struct {
		Type       string
		Start, End int
		BStart     int `json:"byte_start"`
		BEnd       int `json:"byte_end"`
		Text       string
		Score      float64
	}
	Pairs map[string]struct {
		Label string
		Probs map[string]float64
		Score *float64
	}
	Error string
}

func mustWrite(t *testing.T, path, s string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return ""
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestTrainEvalPredictErrors(t *testing.T) {
	for _, c := range [][]string{{"train"}, {"eval", "-model", "x"}, {"predict"}, {"eval", "-model", "x", "-config", "y", "-split", "train"}} {
		runCmd(t, 2, c...)
	}
	for _, c := range []string{"train", "eval", "predict"} {
		_, stderr := runCmd(t, 0, c, "-h")
		if !strings.Contains(stderr, "Usage: mtbert "+c) {
			t.Errorf("%s -h: %s", c, stderr)
		}
	}
	_, stderr := runCmd(t, 1, "predict", "-model", t.TempDir())
	if !strings.Contains(stderr, "checksums.json") {
		t.Errorf("predict on a folder without a checkpoint: %s", stderr)
	}
	_, stderr = runCmd(t, 1, "train", "-config", trainCfg, "-task", "nope", "-out", t.TempDir())
	if !strings.Contains(stderr, `no task "nope"`) {
		t.Errorf("train -task nope: %s", stderr)
	}
	_, stderr = runCmd(t, 1, "train", "-config", filepath.Join(t.TempDir(), "missing.yaml"))
	if !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("missing config: %s", stderr)
	}
}

// TestTrainSingleTask trains one task of the multitask config alone (the baseline).
func TestTrainSingleTask(t *testing.T) {
	out := filepath.Join(t.TempDir(), "nli")
	stdout, _ := runCmd(t, 0, "train", "-config", trainCfg, "-task", "nli", "-out", out, "-quiet")
	if !strings.Contains(stdout, "nli") || strings.Contains(stdout, "sts") {
		t.Errorf("single-task summary:\n%s", stdout)
	}
	b, err := os.ReadFile(filepath.Join(out, "best", "tasks.json"))
	if err != nil || strings.Contains(string(b), `"ner"`) || !strings.Contains(string(b), `"nli"`) {
		t.Errorf("tasks.json %s %v", b, err)
	}
}
