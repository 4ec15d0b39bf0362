package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/mtbert/mtbert/mtl"
)

func init() {
	register("train", "train the multitask model of a config (round-robin over its tasks), or one task alone", runTrain)
}

func runTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", "train -config FILE [-out DIR] [-resume] [-data-root DIR] [-task NAME]", stderr)
	config := fs.String("config", "", "YAML or JSON config (required)")
	out := fs.String("out", "run", "output folder: metrics.jsonl, last/ and best/ checkpoints, best.json, summary.json")
	resume := fs.Bool("resume", false, "continue exactly from OUT/last (the model is rebuilt from the same config and takes its weights and trainer state)")
	dataRoot := fs.String("data-root", "", "folder that relative task paths resolve against (default: the config's data_root, else the config's folder)")
	task := fs.String("task", "", "train only this task of the config (the single-task baseline; same seeds)")
	maxSteps := fs.Int("max-steps", 0, "stop after this many steps in total as an interruption would (OUT/last saved; continue with -resume); 0: no limit")
	quiet := fs.Bool("quiet", false, "no progress line on standard error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *config == "" || *out == "" || *maxSteps < 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := mtl.LoadConfig(*config, *dataRoot)
	if err != nil {
		return err
	}
	if *task != "" {
		if cfg, err = cfg.SelectTask(*task); err != nil {
			return err
		}
	}
	r, err := mtl.Prepare(cfg)
	if err != nil {
		return err
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	if progress != nil {
		fmt.Fprintf(progress, "training %d task(s), %d steps (%d epochs), into %s\n", len(r.Data), r.TotalSteps, cfg.Training.Epochs, *out)
	}
	// SIGINT: the step in flight finishes, OUT/last is saved, and the command exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := mtl.Train(ctx, r, mtl.TrainOptions{Out: *out, Resume: *resume, MaxSteps: *maxSteps, Progress: progress})
	if err != nil {
		return err // an interruption (mtl.ErrInterrupted) says where OUT/last is and exits 1
	}
	if err := sum.WriteText(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "summary: %s\n", filepath.Join(*out, mtl.SummaryFile))
	if err := mtl.PlotRun(*out, 50); err != nil {
		return fmt.Errorf("plotting %s: %w", filepath.Join(*out, mtl.MetricsFile), err)
	}
	fmt.Fprintf(stdout, "plots: %s, %s\n", filepath.Join(*out, mtl.LossPlotFile), filepath.Join(*out, mtl.DevPlotFile))
	return nil
}
