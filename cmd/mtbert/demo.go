package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/synth"
	"github.com/mtbert/mtbert/mtl/train"
)

func init() {
	register("demo", "generate a synthetic clinical corpus, train a small multitask model on it, and show what it extracts", runDemo)
}

const demoDisclaimer = `This is a tour of the pipeline on SYNTHETIC notes generated from templates: the figures say the
pipeline learns, not how well mtbert does on real clinical text.`

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [-out DIR] [-notes N] [-pairs N] [-epochs E] [-seed S]", stderr)
	dev := addDeviceFlag(fs)
	out := fs.String("out", "", "folder for the corpus, the runs and the checkpoints (default: a temporary folder, removed at the end)")
	notes := fs.Int("notes", 400, "synthetic notes (a tenth each for dev and test)")
	pairs := fs.Int("pairs", 1200, "synthetic sentence pairs per pair task (a tenth each for dev and test)")
	epochs := fs.Int("epochs", 6, "epochs over the largest task (about 25 s each with the defaults on 2 cores)")
	seed := fs.Uint64("seed", 1, "seed of the corpus (training uses the config's)")
	quiet := fs.Bool("quiet", false, "no progress line on standard error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := useDevice(*dev, stderr); err != nil {
		return err
	}
	if *notes < 10 || *pairs < 10 || *epochs < 1 {
		fs.Usage()
		return errUsage
	}
	dir := *out
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mtbert-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fmt.Fprintln(stdout, demoDisclaimer)
	cfgPath, err := synth.WriteCorpus(filepath.Join(dir, "data"), *seed, *notes, *pairs)
	if err != nil {
		return err
	}
	cfg, err := train.LoadConfig(cfgPath, "")
	if err != nil {
		return err
	}
	cfg.Training.Epochs = *epochs
	r, err := train.Prepare(cfg)
	if err != nil {
		return err
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	enc := cfg.Encoder
	fmt.Fprintf(stdout, "\ncorpus: %d notes, %d pairs per pair task, in %s\n", *notes, *pairs, filepath.Join(dir, "data"))
	fmt.Fprintf(stdout, "model: random BERT of %d layers, hidden %d, %d heads; %d task heads; %d steps (%d epochs)\n\n",
		enc.Layers, enc.Hidden, enc.Heads, len(r.Data), r.TotalSteps, cfg.Training.Epochs)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	runDir := filepath.Join(dir, "run")
	sum, err := train.Train(ctx, r, train.Options{Out: runDir, Progress: progress})
	if err != nil {
		return err
	}
	if err := sum.WriteText(stdout); err != nil {
		return err
	}
	if err := train.PlotRun(runDir, 25); err != nil {
		return err
	}
	if *out != "" {
		fmt.Fprintf(stdout, "plots: %s, %s\n", filepath.Join(runDir, train.LossPlotFile), filepath.Join(runDir, train.DevPlotFile))
	}
	ckpt := filepath.Join(runDir, train.BestDir)
	if _, err := os.Stat(ckpt); err != nil {
		ckpt = filepath.Join(runDir, train.LastDir)
	}
	ex, err := mtl.LoadExtractor(ckpt)
	if err != nil {
		return err
	}
	return demoSample(ctx, stdout, ex, r)
}

// demoSample prints the extraction on the first held-out note and the pair heads' answers on
// the first held-out pairs.
func demoSample(ctx context.Context, w io.Writer, ex *mtl.Extractor, r *train.Run) error {
	var note string
	var pairA, pairB string
	for _, lt := range r.Loaded {
		test := lt.Split(train.SplitTest)
		if test == nil {
			continue
		}
		if note == "" && len(test.Docs) > 0 {
			note = test.Docs[0].Text
		}
		if pairA == "" && len(test.Pairs) > 0 {
			pairA, pairB = test.Pairs[0].TextA, test.Pairs[0].TextB
		}
	}
	if note == "" {
		return nil
	}
	res, err := ex.Extract(ctx, note, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nA held-out note:\n\n  %s\n\nWhat the NER heads found (one encoder pass for all of them):\n", strings.ReplaceAll(strings.TrimSpace(note), "\n", "\n  "))
	tasks := make([]string, 0, len(res.Entities))
	for t := range res.Entities {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  task\ttype\tcharacters\ttext\tscore\t")
	for _, t := range tasks {
		for _, e := range res.Entities[t] {
			fmt.Fprintf(tw, "  %s\t%s\t%d-%d\t%q\t%.2f\t\n", t, e.Type, e.Start, e.End, e.Text, e.Score)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pairA == "" {
		return nil
	}
	_, sentence, err := ex.SplitTasks(nil)
	if err != nil || len(sentence) == 0 {
		return err
	}
	fmt.Fprintf(w, "\nA held-out pair:\n  a: %s\n  b: %s\n", pairA, pairB)
	pr, err := ex.Pair(ctx, pairA, pairB, sentence)
	if err != nil {
		return err
	}
	for _, t := range sentence {
		p := pr[t]
		if p.Score != nil {
			fmt.Fprintf(w, "  %s: score %.2f\n", t, *p.Score)
		} else {
			fmt.Fprintf(w, "  %s: %s (p = %.2f)\n", t, p.Label, p.Probs[p.Label])
		}
	}
	return nil
}
