package train

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/dist"
	"github.com/mtbert/mtbert/nn"
)

// Seeds derived from training.seed: the encoder's initialisation (and its dropout stream) uses
// the seed itself, the heads and the shuffling get fixed offsets of it, so that a run rebuilt
// from the same config starts from bit-identical weights.
const (
	headSeedOffset    = 0x4ead
	shuffleSeedOffset = 0x5ca11e
	maskSeedOffset    = 0x6d61736b
)

// Files a training run writes into its output folder, beside the checkpoints.
const (
	// LastDir holds the latest checkpoint with its trainer state (for -resume).
	LastDir = "last"
	// BestDir holds the checkpoint with the best dev value of training.best_metric.
	BestDir = "best"
	// MetricsFile has one JSON line per step and one per task and evaluation.
	MetricsFile = "metrics.jsonl"
	// BestFile records the step and value of the best checkpoint.
	BestFile = "best.json"
	// SummaryFile holds the final dev/test metrics of every task (RunSummary).
	SummaryFile = "summary.json"
)

// Run is a training run built from a config by Prepare: the tokenizer, the data, the model
// and the trainer, at step 0.
type Run struct {
	// Config is the run's config.
	Config *Config
	// Tokenizer is the encoder's tokenizer.
	Tokenizer *bert.Tokenizer
	// Loaded parallels Config.Tasks: every split read.
	Loaded []*LoadedTask
	// Labels parallels Config.Tasks: each task's label set (nil for regression).
	Labels []*mtl.Labels
	// Model is the encoder with one head per task, in config order.
	Model *mtl.Model
	// Data parallels Config.Tasks: the training examples and batch size of each task.
	Data []*mtl.TaskData
	// Trainer runs Algorithm 1 over Data.
	Trainer *mtl.Trainer
	// TotalSteps is epochs × rounds per epoch × tasks.
	TotalSteps int
}

// SelectTask returns a copy of cfg with only the named task: the paper's single-task
// baseline, trained from the same seeds as the multitask run. A best_metric naming another
// task becomes "mean".
func (c *Config) SelectTask(name string) (*Config, error) {
	var names []string
	for i := range c.Tasks {
		if c.Tasks[i].Name == name {
			out := *c
			out.Tasks = []TaskConfig{c.Tasks[i]}
			if out.Training.BestMetric != name {
				out.Training.BestMetric = "mean"
			}
			return &out, nil
		}
		names = append(names, c.Tasks[i].Name)
	}
	return nil, fmt.Errorf("%s: no task %q (tasks: %s)", c.Path, name, strings.Join(names, ", "))
}

// Prepare builds a training run from a loaded config: the tokenizer; every task's splits and
// label set; the encoder (encoder.pretrained through bert.Load, else bert.New with the
// config's sizes, the vocabulary's size and training.seed); one head per task (NewModel); the
// training examples (ner: the train split aligned into windows, each window one Example;
// pairs: [CLS] a [SEP] b [SEP] truncated to max_length, or [CLS] a [SEP] when b is empty);
// the optimiser (adam or adamw over every parameter, no weight decay on biases and LayerNorm
// weights), the schedule (constant or linear decay, after optional linear warm-up, over
// epochs × rounds × tasks steps), clipping and seeds. training.dropout replaces the encoder's
// dropout rates (hidden and attention) and is the rate before each head.
func Prepare(cfg *Config) (*Run, error) {
	tok, err := cfg.Tokenizer()
	if err != nil {
		return nil, err
	}
	loaded, err := cfg.LoadAll()
	if err != nil {
		return nil, err
	}
	r := &Run{Config: cfg, Tokenizer: tok, Loaded: loaded}
	tc := cfg.Training
	seed := uint64(tc.Seed)
	enc, err := newEncoder(cfg, tok, seed)
	if err != nil {
		return nil, err
	}
	specs := make([]mtl.TaskSpec, len(loaded))
	for i, lt := range loaded {
		t := lt.Task
		if lt.Split(SplitTrain) == nil {
			return nil, fmt.Errorf("task %s: no train split", t.Name)
		}
		labels, err := lt.LabelSet()
		if err != nil {
			return nil, fmt.Errorf("task %s: %w", t.Name, err)
		}
		r.Labels = append(r.Labels, labels)
		specs[i] = mtl.TaskSpec{Name: t.Name, Kind: t.Kind, MaxLength: t.MaxLength}
		if labels != nil {
			specs[i].Labels = labels.Names
		}
		if t.Kind.ReadsSpans() {
			specs[i].Scheme, specs[i].LabelAllSubwords, specs[i].Stride = t.Scheme, t.LabelAllSubwords, t.Stride
		}
		specs[i].UsePooler = t.UsePooler
	}
	m, err := mtl.NewModel(enc, specs, seed^headSeedOffset, tc.Dropout)
	if err != nil {
		return nil, err
	}
	r.Model = m
	for i, lt := range loaded {
		exs, err := trainExamples(tok, lt, r.Labels[i])
		if err != nil {
			return nil, err
		}
		td := &mtl.TaskData{Head: m.Heads[i], Train: exs, BatchSize: lt.Task.BatchSize}
		if lt.Task.Kind.MaskedLM() {
			if td.Masking, err = bert.NewMasking(tok.Vocab(), seed^maskSeedOffset^uint64(i), lt.Task.WholeWordMasking); err != nil {
				return nil, fmt.Errorf("task %s: %w", lt.Task.Name, err)
			}
		}
		r.Data = append(r.Data, td)
	}
	params := m.AllParams()
	var opt *nn.Adam
	if tc.Optimizer == "adamw" {
		opt = nn.NewAdamW(params, tc.LR, tc.WeightDecay)
	} else {
		opt = nn.NewAdam(params, tc.LR)
		opt.WeightDecay = tc.WeightDecay
	}
	opt.NoDecay = NoDecay
	tr, err := mtl.NewTrainer(m, r.Data, opt, nn.Constant(tc.LR), seed^shuffleSeedOffset, mtl.PadID(tok))
	if err != nil {
		return nil, err
	}
	tr.Clip = tc.ClipNorm
	tr.Accumulate = tc.Accumulate
	r.TotalSteps = tc.Epochs * tr.RoundsPerEpoch() * len(r.Data)
	if tc.Steps > 0 {
		r.TotalSteps = tc.Steps
	}
	switch {
	case tc.Schedule == "linear":
		tr.Sched = nn.LinearWarmup{Peak: tc.LR, Warmup: tc.WarmupSteps, Total: r.TotalSteps}
	case tc.WarmupSteps > 0:
		tr.Sched = warmupConstant{peak: tc.LR, warmup: tc.WarmupSteps}
	}
	r.Trainer = tr
	return r, nil
}

// NoDecay reports whether a parameter is exempt from weight decay: biases and LayerNorm
// weights, as BERT fine-tuning recipes exempt them.
func NoDecay(name string) bool {
	return strings.HasSuffix(name, ".bias") || strings.Contains(name, "LayerNorm")
}

// warmupConstant rises linearly from 0 to peak over warmup steps, then stays at peak.
type warmupConstant struct {
	peak   float64
	warmup int
}

// LR returns the rate of step s.
func (w warmupConstant) LR(s int) float64 {
	if s < w.warmup {
		return w.peak * float64(s) / float64(w.warmup)
	}
	return w.peak
}

// newEncoder loads encoder.pretrained or builds a random encoder of the config's sizes, with
// training.dropout as its dropout rates.
func newEncoder(cfg *Config, tok *bert.Tokenizer, seed uint64) (*bert.Model, error) {
	e := cfg.Encoder
	d := cfg.Training.Dropout
	mlm := false
	for _, t := range cfg.Tasks {
		mlm = mlm || t.Kind.MaskedLM()
	}
	if e.Pretrained != "" {
		load := bert.Load
		if mlm {
			// Keep the checkpoint's MLM head, when it has one, to continue pretraining.
			load = func(dir string) (*bert.Model, error) {
				m, _, err := bert.LoadMaskedLM(dir, seed^mtl.MLMHeadSeedOffset)
				return m, err
			}
		}
		enc, err := load(e.Pretrained)
		if err != nil {
			return nil, fmt.Errorf("%s: encoder.pretrained: %w", cfg.Path, err)
		}
		if n := tok.Vocab().Len(); n > enc.Cfg.VocabSize {
			return nil, fmt.Errorf("%s: encoder.pretrained: vocab.txt has %d tokens, the model's vocab_size is %d", cfg.Path, n, enc.Cfg.VocabSize)
		}
		enc.Cfg.HiddenDropoutProb, enc.Cfg.AttentionProbsDropoutProb = d, d
		enc.Dropout = nn.NewDropout(float32(d), seed^0x5eed)
		return enc, nil
	}
	bc := bert.DefaultConfig()
	bc.VocabSize = tok.Vocab().Len()
	bc.NumHiddenLayers, bc.HiddenSize, bc.NumAttentionHeads = e.Layers, e.Hidden, e.Heads
	bc.IntermediateSize, bc.MaxPositionEmbeddings = e.Intermediate, e.MaxPosition
	bc.HiddenDropoutProb, bc.AttentionProbsDropoutProb = d, d
	bc.PadTokenID = mtl.PadID(tok)
	pooler := false
	for _, t := range cfg.Tasks {
		pooler = pooler || t.UsePooler
	}
	enc, err := bert.New(bc, seed, pooler)
	if err != nil {
		return nil, fmt.Errorf("%s: encoder: %w", cfg.Path, err)
	}
	return enc, nil
}

// trainExamples turns a task's train split into examples.
func trainExamples(tok *bert.Tokenizer, lt *LoadedTask, labels *mtl.Labels) ([]mtl.Example, error) {
	t := lt.Task
	sd := lt.Split(SplitTrain)
	var out []mtl.Example
	if t.Kind.ReadsText() {
		var err error
		if out, err = mtl.PackText(tok, sd.Docs, t.MaxLength); err != nil {
			return nil, fmt.Errorf("task %s, train: %w", t.Name, err)
		}
	} else if t.Kind.ReadsSpans() {
		opts, err := t.AlignOptions()
		if err != nil {
			return nil, err
		}
		al, err := mtl.Align(tok, sd.Docs, labels, opts)
		if err != nil {
			return nil, fmt.Errorf("task %s, train: %w", t.Name, err)
		}
		for _, w := range al.Windows() {
			trained := false
			for _, l := range w.Labels {
				trained = trained || l != mtl.IgnoreLabel
			}
			if trained {
				out = append(out, mtl.Example{IDs: w.IDs, Tags: w.Labels})
			}
		}
	} else {
		for _, p := range sd.Pairs {
			ids, types := mtl.EncodeText(tok, p.TextA, p.TextB, t.MaxLength)
			ex := mtl.Example{IDs: ids, TypeIDs: types}
			if t.Kind.Scored() {
				if !p.HasScore {
					return nil, fmt.Errorf("task %s, train: pair %s has no score", t.Name, p.ID)
				}
				ex.Score = float32(p.Score)
			} else {
				c, ok := labels.Index(p.Label)
				if !ok {
					return nil, fmt.Errorf("task %s, train: pair %s: label %q not in the label set %v", t.Name, p.ID, p.Label, labels.Names)
				}
				ex.Class = int32(c)
			}
			out = append(out, ex)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("task %s: the train split %v has no examples", t.Name, sd.Paths)
	}
	return out, nil
}

// Options control Train.
type Options struct {
	// Out is the output folder (created if needed).
	Out string
	// Resume continues from Out/last exactly: the run's model (rebuilt from the same config)
	// takes its weights and the trainer its state. A checkpoint save a crash interrupted is
	// first finished or undone (bert.RecoverDir) and stale temporaries removed. Without Resume
	// or Force a non-empty Out is an error, so that nothing already written is overwritten.
	Resume bool
	// Force starts a new run in a non-empty Out, removing the files a run writes there (last/,
	// best/, metrics.jsonl, best.json, summary.json, the plots and their temporaries) first.
	Force bool
	// MaxSteps, when positive, ends the run once this many steps are done in total, as the
	// end of training.epochs (or training.steps) does: dev is evaluated (best/ updated), Out/last
	// saved, and the summary measured and written. Train with Resume and a larger MaxSteps, or
	// none, continues the run from there; the evaluation made at MaxSteps stays in its history.
	MaxSteps int
	// Progress receives a progress line (rewritten with \r) and one line per evaluation;
	// nil for none.
	Progress io.Writer
	// Dist, when of Size > 1, makes this process one rank of a data-parallel run (dist.go):
	// rank 0 writes everything, the other ranks only train, and Train returns a nil summary
	// on them. nil is one process.
	Dist dist.Collective
	// Device, when set, is called once the run is prepared (and resumed) and returns what
	// computes its steps (mtl.Trainer.Device; the GPU's is package mtl/cudamtl) and the
	// function that releases it. The weights are synced back before every evaluation and save.
	Device func(r *Run) (mtl.DeviceStep, func(), error)
}

// ErrInterrupted is returned (wrapped) by Train when its context is cancelled: the step in
// flight was finished and Out/last saved.
var ErrInterrupted = errors.New("training interrupted")

// BestInfo records the best checkpoint (Out/best.json).
type BestInfo struct {
	Step   int     `json:"step"`
	Epoch  float64 `json:"epoch"`
	Metric string  `json:"metric"`
	Value  float64 `json:"value"`
}

// TaskResult is one task's row of a RunSummary.
type TaskResult struct {
	Task string           `json:"task"`
	Kind mtl.Kind         `json:"kind"`
	Main string           `json:"main"`
	Dev  *mtl.TaskMetrics `json:"dev,omitempty"`
	Test *mtl.TaskMetrics `json:"test,omitempty"`
}

// RunSummary is the end of a training run (Out/summary.json): the dev and test metrics of
// every task, measured on the best checkpoint when there is one, else on the final model.
type RunSummary struct {
	// Model is "best" or "last": the weights the metrics were measured on.
	Model string `json:"model"`
	// Best is the best checkpoint, when dev metrics selected one.
	Best *BestInfo `json:"best,omitempty"`
	// Steps is the number of steps trained; Seconds the wall time of this invocation.
	Steps int `json:"steps"`
	// PlannedSteps, set only when Options.MaxSteps ended the run early, is the number of steps
	// the config asks for (-resume without -max-steps trains the rest).
	PlannedSteps int          `json:"planned_steps,omitempty"`
	Seconds      float64      `json:"seconds"`
	Tasks        []TaskResult `json:"tasks"`
}

// WriteText renders the summary as a table: one row per task with its main metric on dev and
// test.
func (s *RunSummary) WriteText(w io.Writer) error {
	what := "final model"
	if s.Best != nil && s.Model == "best" {
		what = fmt.Sprintf("best checkpoint (step %d, dev %s %.4f)", s.Best.Step, s.Best.Metric, s.Best.Value)
	}
	fmt.Fprintf(w, "%d steps in %.1fs; metrics of the %s\n", s.Steps, s.Seconds, what)
	if s.PlannedSteps > 0 {
		fmt.Fprintf(w, "stopped at max steps %d of the config's %d (continue with -resume)\n", s.Steps, s.PlannedSteps)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "task\tkind\tmetric\tdev\ttest\t")
	cell := func(m *mtl.TaskMetrics, name string) string {
		if m == nil {
			return "-"
		}
		v, ok := m.Metrics[name]
		if !ok {
			return "n/a"
		}
		return fmt.Sprintf("%.4f", v)
	}
	for _, t := range s.Tasks {
		names := []string{t.Main, t.Kind.SecondaryMetric()}
		for i, n := range names {
			task, kind := t.Task, string(t.Kind)
			if i > 0 {
				task, kind = "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", task, kind, n, cell(t.Dev, n), cell(t.Test, n))
		}
	}
	return tw.Flush()
}

// trainLog is the JSON line of one step in metrics.jsonl.
type trainLog struct {
	Step       int     `json:"step"`
	Epoch      float64 `json:"epoch"`
	Task       string  `json:"task"`
	Loss       float64 `json:"loss"`
	LR         float64 `json:"lr"`
	Tokens     int     `json:"tokens"`
	TokensPerS float64 `json:"tokens_per_s"`
	Seconds    float64 `json:"seconds"`
	// CommSeconds is the time of the step's gradient allreduce (data-parallel runs).
	CommSeconds float64 `json:"comm_seconds,omitempty"`
}

// Train runs r to the end of training.epochs, writing into opts.Out: metrics.jsonl (one line
// per step: step (1-based count of steps done), epoch (fractional), task, loss, lr, tokens,
// tokens_per_s, seconds; and one per task at each evaluation: step, epoch, split "dev", task,
// main, and the task's metrics); Out/last (checkpoint with trainer state) at every evaluation,
// at an interruption and at the end; Out/best and best.json when the dev value of
// training.best_metric improves; at the end summary.json. Evaluation on dev runs every
// training.eval_every steps, else at the end of every epoch; it does not disturb the training
// streams (dropout counters are restored), so the weights do not depend on how often it runs.
//
// opts.MaxSteps ends the run early as its end does (see Options.MaxSteps). Cancelling ctx
// (SIGINT) finishes the step in flight, saves Out/last and returns an error wrapping
// ErrInterrupted. Train with opts.Resume then continues exactly: the weights after the resumed
// run are bit-identical to an uninterrupted run's.
// On resume, metrics.jsonl lines past the checkpoint's step are dropped.
func Train(ctx context.Context, r *Run, opts Options) (*RunSummary, error) {
	if opts.Out == "" {
		return nil, errors.New("mtl: Train: no output folder")
	}
	t0 := time.Now()
	r.Trainer.Dist = opts.Dist
	if follower(opts) {
		return follow(ctx, r, opts)
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	tr := &trainRun{r: r, opts: opts, lastSaved: -1,
		last: filepath.Join(opts.Out, LastDir), best: filepath.Join(opts.Out, BestDir)}
	if err := tr.startOrResume(); err != nil {
		return nil, err
	}
	if err := rendezvous(opts); err != nil {
		return nil, err
	}
	if opts.Device != nil {
		d, release, err := opts.Device(r)
		if err != nil {
			return nil, err
		}
		r.Trainer.Device = d
		defer func() { r.Trainer.Device = nil; release() }()
	}
	if err := tr.openMetrics(); err != nil {
		return nil, err
	}
	defer tr.mf.Close() // on error paths; closeMetrics closes it and checks the error
	defer tr.mw.Flush()
	end := r.TotalSteps // the step this invocation trains to
	if opts.MaxSteps > 0 && opts.MaxSteps < end {
		end = opts.MaxSteps
	}
	tr.prog = newProgress(opts.Progress, r, r.Trainer.State.Step, end)
	if err := tr.loop(ctx, end); err != nil {
		return nil, err
	}
	if err := tr.closeMetrics(); err != nil {
		return nil, err
	}
	sum, err := tr.summarize()
	if err != nil {
		return nil, err
	}
	sum.Seconds = time.Since(t0).Seconds()
	if err := writeJSONAtomic(filepath.Join(opts.Out, SummaryFile), sum); err != nil {
		return nil, err
	}
	return sum, nil
}

// trainRun is one invocation of Train: the run, its output files and what was saved.
type trainRun struct {
	r          *Run
	opts       Options
	last, best string // Out/last, Out/best
	bestInfo   *BestInfo
	lastSaved  int // the step Out/last holds; -1: none of this history
	mf         *os.File
	mw         *bufio.Writer // over mf
	prog       *progress
}

// startOrResume prepares opts.Out: with Resume, recovers it, loads Out/last into the run, reads
// best.json (unless recorded after the checkpoint) and drops the metrics.jsonl lines past the
// checkpoint; without, refuses a non-empty folder unless Force, which clears the previous run.
func (tr *trainRun) startOrResume() error {
	out, t := tr.opts.Out, tr.r.Trainer
	if !tr.opts.Resume {
		names, err := runFiles(out)
		switch {
		case err != nil:
			return err
		case len(names) == 0:
			return nil
		case !tr.opts.Force:
			return fmt.Errorf("%s is not empty (%s): pass -resume to continue the run there, -force to start a new run over it, or choose another output folder",
				out, strings.Join(names, ", "))
		}
		return removeRun(out)
	}
	if err := recoverRun(out); err != nil {
		return fmt.Errorf("resume: recovering %s: %w", out, err)
	}
	if _, err := os.Stat(tr.last); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("resume: %s has no checkpoint to resume from (the run stopped before its first save of %s): start the run again with -force", out, tr.last)
	}
	if err := resume(tr.r, tr.last); err != nil {
		return err
	}
	tr.lastSaved = t.State.Step // Out/last is this state: nothing to save before a step
	if raw, err := os.ReadFile(filepath.Join(out, BestFile)); err == nil {
		tr.bestInfo = &BestInfo{}
		if err := json.Unmarshal(raw, tr.bestInfo); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(out, BestFile), err)
		}
		if tr.bestInfo.Step > t.State.Step {
			tr.bestInfo = nil // recorded by a later step than the checkpoint's: not this history
		}
	}
	return truncateMetrics(filepath.Join(out, MetricsFile), t.State.Step)
}

// openMetrics opens metrics.jsonl for appending.
func (tr *trainRun) openMetrics() error {
	mf, err := os.OpenFile(filepath.Join(tr.opts.Out, MetricsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	tr.mf, tr.mw = mf, bufio.NewWriter(mf)
	return nil
}

// logLine appends v to metrics.jsonl as one JSON line.
func (tr *trainRun) logLine(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tr.mw.Write(append(b, '\n'))
	return nil
}

// syncMetrics flushes metrics.jsonl to disk.
func (tr *trainRun) syncMetrics() error {
	if err := tr.mw.Flush(); err != nil {
		return err
	}
	return tr.mf.Sync()
}

// closeMetrics ends the progress line and flushes, syncs and closes metrics.jsonl.
func (tr *trainRun) closeMetrics() error {
	tr.prog.newline()
	if err := tr.syncMetrics(); err != nil {
		return err
	}
	if err := tr.mf.Close(); err != nil {
		return fmt.Errorf("%s: %w", tr.mf.Name(), err)
	}
	return nil
}

// epochOf returns the fractional epoch after step steps.
func (tr *trainRun) epochOf(step int) float64 {
	return float64(step) / float64(tr.r.Trainer.RoundsPerEpoch()*len(tr.r.Trainer.Tasks))
}

// loop trains to step end (or the end of the epochs), logging every step and evaluating as
// training.eval_every says, then evaluates the final step unless Out/last already holds it.
func (tr *trainRun) loop(ctx context.Context, end int) error {
	t, cfg := tr.r.Trainer, tr.r.Config
	for t.State.Epoch < cfg.Training.Epochs && t.State.Step < end {
		if stop, err := agreeStop(ctx, tr.opts.Dist); err != nil {
			return err
		} else if stop {
			return tr.interrupt("signal")
		}
		info, err := t.Step()
		if err != nil {
			return err
		}
		done := t.State.Step
		sec := info.Elapsed.Seconds()
		if err := tr.logLine(trainLog{Step: done, Epoch: tr.epochOf(done), Task: info.Task, Loss: info.Loss, LR: info.LR,
			Tokens: info.Tokens, TokensPerS: float64(info.Tokens) / max(sec, 1e-9), Seconds: sec, CommSeconds: info.Comm.Seconds()}); err != nil {
			return err
		}
		tr.prog.step(info, done)
		ee := cfg.Training.EvalEvery
		if (ee > 0 && done%ee == 0) || (ee == 0 && t.State.Epoch != info.Epoch) {
			if err := tr.evaluate(); err != nil {
				return err
			}
		}
	}
	if tr.lastSaved != t.State.Step {
		return tr.evaluate()
	}
	return nil
}

// evaluate scores every task on dev, logs the metrics, saves best/ and best.json when
// training.best_metric improved, then last/.
func (tr *trainRun) evaluate() error {
	r, cfg := tr.r, tr.r.Config
	tr.prog.newline()
	step := r.Trainer.State.Step
	if err := r.Trainer.SyncDevice(); err != nil {
		return err
	}
	ms, err := evalKeepingStreams(r, SplitDev)
	if err != nil {
		return err
	}
	for _, m := range ms {
		line := map[string]any{"step": step, "epoch": tr.epochOf(step), "split": SplitDev, "task": m.Task, "main": m.Main}
		for k, v := range m.Metrics {
			line[k] = v
		}
		if err := tr.logLine(line); err != nil {
			return err
		}
	}
	if tr.opts.Progress != nil && len(ms) > 0 {
		var parts []string
		for _, m := range ms {
			parts = append(parts, fmt.Sprintf("%s %s %.4f", m.Task, m.Main, m.Value))
		}
		fmt.Fprintf(tr.opts.Progress, "step %d epoch %.2f dev: %s\n", step, tr.epochOf(step), strings.Join(parts, ", "))
	}
	if err := tr.syncMetrics(); err != nil {
		return err
	}
	// best/ and best.json before last/: a run resumed from last/ at this step has its
	// best as of this step, and one resumed from an earlier last/ repeats this step's
	// decision (a best.json of a later step than last/ is ignored).
	if v, ok := selectValue(ms, cfg.Training.BestMetric); ok && (tr.bestInfo == nil || v > tr.bestInfo.Value) {
		if err := mtl.SaveCheckpoint(tr.best, r.Model, r.Tokenizer, nil); err != nil {
			return err
		}
		tr.bestInfo = &BestInfo{Step: step, Epoch: tr.epochOf(step), Metric: cfg.Training.BestMetric, Value: v}
		if err := writeJSONAtomic(filepath.Join(tr.opts.Out, BestFile), tr.bestInfo); err != nil {
			return err
		}
	}
	if err := mtl.SaveCheckpoint(tr.last, r.Model, r.Tokenizer, r.Trainer); err != nil {
		return err
	}
	tr.lastSaved = step
	return nil
}

// interrupt saves last/ (unless it holds this step) and returns the ErrInterrupted error.
func (tr *trainRun) interrupt(why string) error {
	r := tr.r
	tr.prog.newline()
	if err := errors.Join(tr.syncMetrics(), r.Trainer.SyncDevice()); err != nil {
		return err
	}
	if tr.lastSaved != r.Trainer.State.Step {
		if err := mtl.SaveCheckpoint(tr.last, r.Model, r.Tokenizer, r.Trainer); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w (%s) after step %d of %d; %s saved: continue with -resume", ErrInterrupted, why, r.Trainer.State.Step, r.TotalSteps, tr.last)
}

// summarize measures every task on dev and test with the best checkpoint when there is one,
// else the final model.
func (tr *trainRun) summarize() (*RunSummary, error) {
	r, st := tr.r, tr.r.Trainer.State
	sum := &RunSummary{Model: "last", Best: tr.bestInfo, Steps: st.Step}
	if st.Step < r.TotalSteps && st.Epoch < r.Config.Training.Epochs {
		sum.PlannedSteps = r.TotalSteps
	}
	if tr.bestInfo != nil {
		if err := r.Model.LoadWeights(tr.best); err != nil {
			return nil, err
		}
		sum.Model = "best"
	}
	for _, lt := range r.Loaded {
		row := TaskResult{Task: lt.Task.Name, Kind: lt.Task.Kind, Main: mtl.MainMetric(lt.Task.Kind)}
		var err error
		if row.Dev, err = EvaluateTask(r.Model, r.Tokenizer, lt, SplitDev); err != nil {
			return nil, err
		}
		if row.Test, err = EvaluateTask(r.Model, r.Tokenizer, lt, SplitTest); err != nil {
			return nil, err
		}
		sum.Tasks = append(sum.Tasks, row)
	}
	return sum, nil
}

// resume loads dir's weights and trainer state into r, after checking that the checkpoint's
// tasks are the run's.
func resume(r *Run, dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, mtl.TasksFile))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	var specs []mtl.TaskSpec
	if err := json.Unmarshal(raw, &specs); err != nil {
		return fmt.Errorf("resume: %s: %w", filepath.Join(dir, mtl.TasksFile), err)
	}
	want := r.Model.Specs()
	if len(specs) != len(want) {
		return fmt.Errorf("resume: %s has %d tasks, the config %d", dir, len(specs), len(want))
	}
	for i := range specs {
		a, b := specs[i], want[i]
		if a.Name != b.Name || a.Kind != b.Kind || strings.Join(a.Labels, "\x00") != strings.Join(b.Labels, "\x00") {
			return fmt.Errorf("resume: %s task %d is %s (%s, %d labels), the config's is %s (%s, %d labels)", dir, i, a.Name, a.Kind, len(a.Labels), b.Name, b.Kind, len(b.Labels))
		}
	}
	if err := r.Model.LoadWeights(dir); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if err := mtl.LoadTrainerState(dir, r.Trainer); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}

// runOutputs are the files and folders Train writes into its output folder.
var runOutputs = []string{LastDir, BestDir, MetricsFile, BestFile, SummaryFile, LossPlotFile, DevPlotFile}

// runFiles lists what out holds (hidden temporaries included); a missing out holds nothing.
func runFiles(out string) ([]string, error) {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

// recoverRun puts a run folder a crash interrupted back in order: a half-finished save of
// last/ or best/ is finished or undone, and the temporaries of every file a run writes are
// removed.
func recoverRun(out string) error {
	for _, d := range []string{LastDir, BestDir} {
		if err := bert.RecoverDir(filepath.Join(out, d)); err != nil {
			return err
		}
	}
	for _, f := range runOutputs {
		if err := bert.RemoveStaleTemps(filepath.Join(out, f)); err != nil {
			return err
		}
	}
	return nil
}

// removeRun removes what a run wrote into out (for Force), temporaries first.
func removeRun(out string) error {
	if err := recoverRun(out); err != nil {
		return err
	}
	for _, f := range runOutputs {
		if err := os.RemoveAll(filepath.Join(out, f)); err != nil {
			return err
		}
	}
	return nil
}

// writeJSONAtomic is writeJSON through bert.WriteFileAtomic: a crash leaves the old or the
// new file, never a truncated one.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return bert.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(append(b, '\n')); return err })
}

// truncateMetrics keeps the lines of path whose step is at most step (lines written after the
// checkpoint a run resumes from are dropped), replacing the file atomically. A missing file is
// fine.
func truncateMetrics(path string, step int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep []byte
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		var rec struct {
			Step *int `json:"step"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Step == nil {
			continue // a torn last line
		}
		if *rec.Step <= step {
			keep = append(keep, strings.TrimSuffix(l, "\n")+"\n"...)
		}
	}
	if bytes.Equal(keep, data) {
		return nil
	}
	return bert.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(keep); return err })
}

// evalKeepingStreams evaluates every task on split and then puts the dropout counters back
// (inference draws attention-dropout seeds too), so that evaluating never changes training.
func evalKeepingStreams(r *Run, split string) ([]mtl.TaskMetrics, error) {
	ds := r.Model.Dropouts()
	calls := make([]uint64, len(ds))
	for i, d := range ds {
		calls[i] = d.Calls()
	}
	defer func() {
		for i, d := range ds {
			d.SetCalls(calls[i])
		}
	}()
	return EvaluateTasks(r.Model, r.Tokenizer, r.Loaded, split)
}

// selectValue returns the value best_metric selects by: the named task's main metric, or the
// mean of every evaluated task's.
func selectValue(ms []mtl.TaskMetrics, metric string) (float64, bool) {
	sum, n := 0.0, 0
	for _, m := range ms {
		if metric == "mean" || m.Task == metric {
			sum += m.Value
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// progress draws the training progress line.
type progress struct {
	w        io.Writer
	total    int
	perEpoch int
	epochs   int
	start    time.Time
	first    int
	tokens   int
	loss     map[string]float64
	order    []string
	lastDraw time.Time
	drawn    bool
	width    int
}

// newProgress draws the progress of r from step to total (the ETA counts to total).
func newProgress(w io.Writer, r *Run, step, total int) *progress {
	p := &progress{w: w, total: total, perEpoch: r.Trainer.RoundsPerEpoch() * len(r.Data), epochs: r.Config.Training.Epochs,
		start: time.Now(), first: step, loss: map[string]float64{}}
	for _, d := range r.Data {
		p.order = append(p.order, d.Head.Spec.Name)
	}
	return p
}

// step records one step and redraws the line at most ten times a second (and at the end).
func (p *progress) step(info mtl.StepInfo, done int) {
	if p.w == nil {
		return
	}
	p.tokens += info.Tokens
	if l, ok := p.loss[info.Task]; ok {
		p.loss[info.Task] = 0.9*l + 0.1*info.Loss
	} else {
		p.loss[info.Task] = info.Loss
	}
	now := time.Now()
	if now.Sub(p.lastDraw) < 100*time.Millisecond && done != p.total {
		return
	}
	p.lastDraw = now
	el := now.Sub(p.start).Seconds()
	var b strings.Builder
	if p.epochs == math.MaxInt32 { // sized in steps
		fmt.Fprintf(&b, "\rstep %d/%d epoch %.2f", done, p.total, float64(done)/float64(max(1, p.perEpoch)))
	} else {
		fmt.Fprintf(&b, "\rstep %d/%d epoch %d/%d", done, p.total, min(p.epochs, done/max(1, p.perEpoch)+1), p.epochs)
	}
	for _, t := range p.order {
		if l, ok := p.loss[t]; ok {
			fmt.Fprintf(&b, " %s %.4f", t, l)
		}
	}
	eta := "?"
	if n := done - p.first; n > 0 {
		eta = time.Duration(el / float64(n) * float64(p.total-done) * float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintf(&b, " | %.0f tok/s | ETA %s ", float64(p.tokens)/math.Max(el, 1e-9), eta)
	line := b.String()
	if pad := p.width - len(line); pad > 0 {
		line += strings.Repeat(" ", pad) // erase the rest of a longer previous line
	}
	p.width = len(b.String())
	io.WriteString(p.w, line)
	p.drawn = true
}

// newline ends the progress line, if one is drawn.
func (p *progress) newline() {
	if p.w != nil && p.drawn {
		io.WriteString(p.w, "\n")
		p.drawn, p.width = false, 0
	}
}
