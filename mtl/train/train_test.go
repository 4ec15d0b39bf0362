package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/internal/mtltest"
)

var trainConfig = mtltest.Testdata("train/config.yaml")

// prepareFixture loads the tiny multitask config of testdata/train, with edit applied to it.
func prepareFixture(t *testing.T, edit func(*Config)) *Run {
	t.Helper()
	cfg, err := LoadConfig(trainConfig, "")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	r, err := Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPrepareFixture(t *testing.T) {
	r := prepareFixture(t, nil)
	if got := len(r.Model.Heads); got != 3 {
		t.Fatalf("%d heads", got)
	}
	// ner: 40 sentences, one window each but those longer than 10 sub-words (two windows).
	if n := len(r.Data[0].Train); n <= 40 || n >= 80 {
		t.Errorf("ner examples %d, want between 41 and 79", n)
	}
	if len(r.Data[1].Train) != 30 || len(r.Data[2].Train) != 24 {
		t.Errorf("pair examples %d, %d", len(r.Data[1].Train), len(r.Data[2].Train))
	}
	if got := strings.Join(r.Model.Heads[0].Spec.Labels, " "); got != "O B-Drug I-Drug L-Drug U-Drug B-Problem I-Problem L-Problem U-Problem" {
		t.Errorf("ner labels %s", got)
	}
	if got := strings.Join(r.Model.Heads[1].Spec.Labels, " "); got != "contradiction entailment neutral" {
		t.Errorf("nli labels %s", got)
	}
	// rounds = the largest task's batches; steps = epochs x rounds x tasks.
	rounds := (len(r.Data[0].Train) + 7) / 8
	if r.Trainer.RoundsPerEpoch() != rounds || r.TotalSteps != 2*rounds*3 {
		t.Errorf("rounds %d, total %d", r.Trainer.RoundsPerEpoch(), r.TotalSteps)
	}
	// A pair example is [CLS] a [SEP] b [SEP] with types 0 then 1.
	ex := r.Data[1].Train[0]
	if ex.IDs[0] != 2 || ex.TypeIDs[0] != 0 || ex.TypeIDs[len(ex.TypeIDs)-1] != 1 || ex.IDs[len(ex.IDs)-1] != 3 {
		t.Errorf("pair example %+v", ex)
	}
	// Same config, same seeds: bit-identical initial weights.
	r2 := prepareFixture(t, nil)
	a, b := r.Model.AllParams(), r2.Model.AllParams()
	for i := range a {
		x, y := a[i].Value.Data(), b[i].Value.Data()
		for j := range x {
			if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
				t.Fatalf("%s differs between two Prepare calls", a[i].Name)
			}
		}
	}
	// Single-task mode.
	one, err := r.Config.SelectTask("nli")
	if err != nil || len(one.Tasks) != 1 || one.Tasks[0].Name != "nli" {
		t.Fatalf("SelectTask: %v %+v", err, one)
	}
	if _, err := r.Config.SelectTask("nope"); err == nil || !strings.Contains(err.Error(), "ner, nli, sts") {
		t.Errorf("SelectTask(nope): %v", err)
	}
}

// TestPipelineLossesFall trains the fixture tasks for 12 epochs: every task's mean loss over
// the last epoch must be well under its first epoch's, and the learnable toy NER task must
// reach a real dev F1.
func TestPipelineLossesFall(t *testing.T) {
	r := prepareFixture(t, func(c *Config) { c.Training.Epochs = 12; c.Training.Dropout = 0 })
	sums := map[int]map[string]float64{}
	counts := map[int]map[string]int{}
	err := r.Trainer.RunEpochs(context.Background(), 12, func(s mtl.StepInfo) error {
		if sums[s.Epoch] == nil {
			sums[s.Epoch], counts[s.Epoch] = map[string]float64{}, map[string]int{}
		}
		sums[s.Epoch][s.Task] += s.Loss
		counts[s.Epoch][s.Task]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range []string{"ner", "nli", "sts"} {
		first := sums[0][task] / float64(counts[0][task])
		last := sums[11][task] / float64(counts[11][task])
		t.Logf("%s: mean loss %.4f in epoch 1, %.4f in epoch 12", task, first, last)
		if !(last < 0.5*first) {
			t.Errorf("%s: loss %.4f -> %.4f did not fall by half", task, first, last)
		}
	}
	ms, err := EvaluateTasks(r.Model, r.Tokenizer, r.Loaded, SplitDev)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		t.Logf("dev %s: %s %.4f %v", m.Task, m.Main, m.Value, m.Metrics)
	}
	if ms[0].Value < 0.8 {
		t.Errorf("ner dev span F1 %.4f after 12 epochs, want >= 0.8", ms[0].Value)
	}
}

// TestTrainResumeExact runs the fixture for 2 epochs straight, and for 1 epoch (MaxSteps)
// then resumed to 2: the last checkpoints' weights must be bit-identical.
func TestTrainResumeExact(t *testing.T) {
	dir := t.TempDir()
	straight, split := filepath.Join(dir, "straight"), filepath.Join(dir, "split")
	r := prepareFixture(t, nil)
	sum, err := Train(context.Background(), r, Options{Out: straight})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != r.TotalSteps || len(sum.Tasks) != 3 || sum.Tasks[0].Dev == nil || sum.Tasks[2].Test == nil {
		t.Fatalf("summary %+v", sum)
	}
	// Interrupted by a signal before the first step, then ended after 1 epoch (MaxSteps), then
	// mid-epoch, each time resumed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, prepareFixture(t, nil), Options{Out: split}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled: want ErrInterrupted, got %v", err)
	}
	half := r.TotalSteps / 2
	for _, stop := range []int{half, half + 4} {
		sum, err := Train(context.Background(), prepareFixture(t, nil), Options{Out: split, MaxSteps: stop, Resume: true})
		if err != nil || sum.Steps != stop || sum.PlannedSteps != r.TotalSteps {
			t.Fatalf("MaxSteps %d: want a summary of %d steps (planned %d), got %+v, %v", stop, stop, r.TotalSteps, sum, err)
		}
	}
	// Without -resume an existing run is not overwritten.
	if _, err := Train(context.Background(), prepareFixture(t, nil), Options{Out: split}); err == nil || !strings.Contains(err.Error(), "-resume") {
		t.Fatalf("second run into the same folder: %v", err)
	}
	r2 := prepareFixture(t, nil)
	if _, err := Train(context.Background(), r2, Options{Out: split, Resume: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.safetensors", "heads.safetensors", "trainer.safetensors"} {
		a, err1 := os.ReadFile(filepath.Join(straight, LastDir, f))
		b, err2 := os.ReadFile(filepath.Join(split, LastDir, f))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if string(a) != string(b) {
			t.Errorf("%s differs between the straight and the resumed run", f)
		}
	}
	// Evaluating every 5 steps instead of every epoch changes nothing in the weights
	// (evaluation puts the dropout streams back).
	often := filepath.Join(dir, "often")
	if _, err := Train(context.Background(), prepareFixture(t, func(c *Config) { c.Training.EvalEvery = 5 }), Options{Out: often}); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(straight, LastDir, "model.safetensors"))
	b, _ := os.ReadFile(filepath.Join(often, LastDir, "model.safetensors"))
	if len(a) == 0 || string(a) != string(b) {
		t.Error("eval_every 5 changed the trained weights")
	}
	if m, _ := os.ReadFile(filepath.Join(often, MetricsFile)); strings.Count(string(m), `"split":"dev"`) != 3*(r.TotalSteps/5+1) {
		t.Errorf("eval_every 5: %d evaluation lines, want %d", strings.Count(string(m), `"split":"dev"`), 3*(r.TotalSteps/5+1))
	}
	// metrics.jsonl: one line per step and one per task and evaluation; the split run has one
	// more evaluation, at its MaxSteps end mid-epoch (half+4; half is an epoch's end).
	a, _ = os.ReadFile(filepath.Join(straight, MetricsFile))
	b, _ = os.ReadFile(filepath.Join(split, MetricsFile))
	na, nb := strings.Count(string(a), "\n"), strings.Count(string(b), "\n")
	if want := r.TotalSteps + 2*3; na != want || nb != want+3 {
		t.Errorf("metrics.jsonl has %d and %d lines, want %d and %d", na, nb, want, want+3)
	}
}

// TestUsePooler checks that use_pooler builds the encoder's pooler, that the head then reads
// it (its gradient flows into pooler.dense), and that the option is refused for NER tasks.
func TestUsePooler(t *testing.T) {
	r := prepareFixture(t, func(c *Config) { c.Tasks[1].UsePooler = true })
	if r.Model.Encoder.Pooler == nil || !r.Model.Heads[1].Spec.UsePooler {
		t.Fatal("use_pooler did not give the encoder a pooler")
	}
	// Train until the pair task (second in the round) has stepped: the pooler must have moved.
	before := append([]float32(nil), r.Model.Encoder.Pooler.W.Value.Data()...)
	for range 2 {
		if _, err := r.Trainer.Step(); err != nil {
			t.Fatal(err)
		}
	}
	moved := false
	for i, v := range r.Model.Encoder.Pooler.W.Value.Data() {
		moved = moved || v != before[i]
	}
	if !moved {
		t.Fatal("the pooler did not train with a use_pooler head")
	}
	cfgText := "encoder: {vocab: vocab.txt, layers: 1, hidden: 32, heads: 2, intermediate: 64, max_position: 64}\n" +
		"tasks:\n  - {name: n, kind: ner, format: conll, train: ner-train.conll, use_pooler: true}\n"
	if _, err := ParseConfig([]byte(cfgText), mtltest.Testdata("train/x.yaml"), ""); err == nil || !strings.Contains(err.Error(), "use_pooler") {
		t.Fatalf("use_pooler on an ner task: %v", err)
	}
}

func TestSelectValue(t *testing.T) {
	ms := []mtl.TaskMetrics{{Task: "a", Value: 0.5}, {Task: "b", Value: 0.7}}
	if v, ok := selectValue(ms, "mean"); !ok || !mtltest.Near(v, 0.6) {
		t.Errorf("mean %v", v)
	}
	if v, ok := selectValue(ms, "b"); !ok || v != 0.7 {
		t.Errorf("b %v", v)
	}
	if _, ok := selectValue(nil, "mean"); ok {
		t.Error("no metrics selected a value")
	}
}

// TestWriteTrainText: the corpus holds the train split's texts (after holdout) once each, and
// none of the held-out text (the ner task alone: the other tasks repeat its sentences).
func TestWriteTrainText(t *testing.T) {
	cfg, err := LoadConfig(trainConfig, "")
	if err != nil {
		t.Fatal(err)
	}
	// Every task: their texts overlap, so some are repeats.
	all, err := WriteTrainText(cfg, filepath.Join(t.TempDir(), "all.txt"))
	if err != nil || all.Repeats == 0 {
		t.Fatalf("all tasks: %+v, %v", all, err)
	}
	// The ner task alone, half its documents held out as dev.
	cfg.Tasks = cfg.Tasks[:1]
	cfg.Tasks[0].Dev = nil
	cfg.Tasks[0].Holdout = &HoldoutConfig{Dev: 0.5, Seed: 1}
	out := filepath.Join(t.TempDir(), "corpus.txt")
	st, err := WriteTrainText(cfg, out)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l] {
			t.Fatalf("%q written twice", l)
		}
		seen[l] = true
	}
	trainSplit, err := cfg.Tasks[0].ReadSplit(SplitTrain)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := cfg.Tasks[0].ReadSplit(SplitDev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, d := range trainSplit.Docs {
		want[strings.Join(strings.Fields(d.Text), " ")] = true
	}
	held := 0
	for _, d := range dev.Docs {
		if s := strings.Join(strings.Fields(d.Text), " "); !want[s] {
			held++
			if seen[s] {
				t.Errorf("held-out text %q is in the corpus", s)
			}
		}
	}
	for s := range want {
		if !seen[s] {
			t.Errorf("train text %q is missing", s)
		}
	}
	if held == 0 || st.Documents != len(lines) || st.Bytes != len(raw) || st.Documents >= all.Documents {
		t.Errorf("held-out texts %d, stats %+v for %d lines of %d bytes", held, st, len(lines), len(raw))
	}
}

// TestMaxStepsEndsTheRun: a run ended by MaxSteps is a finished run: no error, dev evaluated
// at that step, the summary returned and written (with the planned steps), and the progress
// line counts to MaxSteps, not to the config's last step.
func TestMaxStepsEndsTheRun(t *testing.T) {
	out := t.TempDir()
	r := prepareFixture(t, nil)
	var prog strings.Builder
	sum, err := Train(context.Background(), r, Options{Out: out, MaxSteps: 5, Progress: &prog})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != 5 || sum.PlannedSteps != r.TotalSteps || r.TotalSteps <= 5 || len(sum.Tasks) != 3 || sum.Tasks[0].Dev == nil {
		t.Fatalf("summary %+v (total %d)", sum, r.TotalSteps)
	}
	raw, err := os.ReadFile(filepath.Join(out, SummaryFile))
	var disk RunSummary
	if err != nil || json.Unmarshal(raw, &disk) != nil || disk.Steps != 5 || disk.PlannedSteps != r.TotalSteps {
		t.Fatalf("summary.json %s (%v)", raw, err)
	}
	if !strings.Contains(prog.String(), "step 5/5 ") || strings.Contains(prog.String(), fmt.Sprintf("/%d ", r.TotalSteps)) {
		t.Errorf("progress does not count to 5:\n%q", prog.String())
	}
	if !strings.Contains(prog.String(), "step 5 epoch") || !strings.Contains(prog.String(), " dev: ") {
		t.Errorf("no dev evaluation at step 5:\n%q", prog.String())
	}
	var text strings.Builder
	sum.WriteText(&text)
	if want := fmt.Sprintf("stopped at max steps 5 of the config's %d (continue with -resume)", r.TotalSteps); !strings.Contains(text.String(), want) {
		t.Errorf("summary text lacks %q:\n%s", want, text.String())
	}
	// Resumed without MaxSteps, it trains the rest.
	sum, err = Train(context.Background(), prepareFixture(t, nil), Options{Out: out, Resume: true})
	if err != nil || sum.Steps != r.TotalSteps || sum.PlannedSteps != 0 {
		t.Fatalf("resumed: %+v, %v", sum, err)
	}
}
