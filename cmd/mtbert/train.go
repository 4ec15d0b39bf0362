package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/mtbert/mtbert/mtl/cudamtl"
	"github.com/mtbert/mtbert/mtl/train"
)

func init() {
	register("train", "train the multitask model of a config (round-robin over its tasks), or one task alone", runTrain)
	register("pretrain", "masked-language-model pretraining on raw text (a config whose tasks are all kind mlm)", runPretrain)
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	return runTraining("train", args, stdout, stderr)
}

func runPretrain(args []string, stdout, stderr io.Writer) error {
	return runTraining("pretrain", args, stdout, stderr)
}

// runTraining is `mtbert train` and `mtbert pretrain`: the same trainer, checkpoints and resumption;
// pretrain refuses a config with other than mlm tasks and says where the masked language model
// is.
func runTraining(name string, args []string, stdout, stderr io.Writer) error {
	synopsis := name + " -config FILE [-out DIR] [-resume | -force] [-data-root DIR] [-task NAME] [-max-steps N] [-device D [-float32]] [-distributed mpi|none|auto] [-quiet]"
	if name == "pretrain" {
		synopsis = name + " -config FILE [-out DIR] [-resume | -force] [-data-root DIR] [-max-steps N] [-device D [-float32]] [-distributed mpi|none|auto] [-quiet]"
	}
	fs := newFlags(name, synopsis, stderr)
	dev := addDeviceFlag(fs)
	config := fs.String("config", "", "YAML or JSON config (required)")
	out := fs.String("out", "run", "output folder: metrics.jsonl, last/ and best/ checkpoints, best.json, summary.json")
	resume := fs.Bool("resume", false, "continue exactly from OUT/last (the model is rebuilt from the same config and takes its weights and trainer state); a save a crash interrupted is finished or undone first")
	force := fs.Bool("force", false, "start a new run in a non-empty OUT, removing the files of the run there (last/, best/, metrics.jsonl, best.json, summary.json, plots)")
	dataRoot := fs.String("data-root", "", "folder that relative task paths resolve against (default: the config's data_root, else the config's folder)")
	task := new(string)
	if name == "train" {
		task = fs.String("task", "", "train only this task of the config (the single-task baseline; same seeds)")
	}
	maxSteps := fs.Int("max-steps", 0, "end the run after this many steps in total, as its end would (dev evaluated, OUT/last, summary.json and plots written; -resume continues past it); 0: no limit")
	quiet := fs.Bool("quiet", false, "no progress line on standard error")
	df := addDistFlags(fs)
	f32 := fs.Bool("float32", false, "with -device cuda: float32 GEMMs instead of mixed precision (bf16 GEMM inputs, float32 master weights and optimiser)")
	if err := parse(fs, args); err != nil {
		return err
	}
	gpu, err := openDevice(*dev, true, stderr)
	if err != nil {
		return err
	}
	if *config == "" || *out == "" || *maxSteps < 0 || (*resume && *force) {
		fs.Usage()
		return errUsage
	}
	cfg, err := train.LoadConfig(*config, *dataRoot)
	if err != nil {
		return err
	}
	if *task != "" {
		if cfg, err = cfg.SelectTask(*task); err != nil {
			return err
		}
	}
	if name == "pretrain" {
		for _, t := range cfg.Tasks {
			if !t.Kind.MaskedLM() {
				return fmt.Errorf("%s: task %s is %s: pretrain takes only mlm tasks (mtbert train runs a mix of mlm and supervised tasks)", cfg.Path, t.Name, t.Kind)
			}
		}
	}
	coll, err := df.open(name, stderr)
	if err != nil {
		return err
	}
	defer coll.Close()
	r, err := train.Prepare(cfg)
	if err != nil {
		return err
	}
	var progress io.Writer = stderr
	if *quiet || coll.Rank() != 0 {
		progress = nil
	}
	if progress != nil {
		span := fmt.Sprintf("%d epochs", cfg.Training.Epochs)
		if cfg.Training.Steps > 0 {
			span = fmt.Sprintf("%.2f epochs", float64(r.TotalSteps)/float64(r.Trainer.RoundsPerEpoch()*len(r.Data)))
		}
		seqs := 0
		for _, d := range r.Data {
			seqs += len(d.Train)
		}
		steps := fmt.Sprintf("%d steps (%s)", r.TotalSteps, span)
		if *maxSteps > 0 && *maxSteps < r.TotalSteps {
			steps = fmt.Sprintf("to step %d (-max-steps) of %d (%s)", *maxSteps, r.TotalSteps, span)
		}
		fmt.Fprintf(progress, "%sing %d task(s) on %d training sequences, %s, into %s\n", name, len(r.Data), seqs, steps, *out)
	}
	// SIGINT: the step in flight finishes, OUT/last is saved, and the command exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := train.Options{Out: *out, Resume: *resume, Force: *force, MaxSteps: *maxSteps, Progress: progress, Dist: coll}
	if gpu != nil {
		// The steps on the GPU (every head kind; weights and moments stay there, synced back
		// before each evaluation and save); evaluation on the CPU.
		opts.Device = cudamtl.Device(gpu, !*f32)
	}
	sum, err := train.Train(ctx, r, opts)
	if err != nil {
		return err // an interruption by a signal (train.ErrInterrupted) says where OUT/last is and exits 1
	}
	if sum == nil {
		return nil // a rank other than 0: rank 0 writes the summary and plots
	}
	if err := sum.WriteText(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "summary: %s\n", filepath.Join(*out, train.SummaryFile))
	if err := train.PlotRun(*out, 50); err != nil {
		return fmt.Errorf("plotting %s: %w", filepath.Join(*out, train.MetricsFile), err)
	}
	fmt.Fprintf(stdout, "plots: %s, %s\n", filepath.Join(*out, train.LossPlotFile), filepath.Join(*out, train.DevPlotFile))
	if name == "pretrain" {
		fmt.Fprintf(stdout, "masked language model (Hugging Face BertForMaskedLM): %s; use it as encoder.pretrained, or try it with mtbert fill -model %s\n",
			filepath.Join(*out, sum.Model), filepath.Join(*out, sum.Model))
	}
	return nil
}
