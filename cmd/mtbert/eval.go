package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/mtbert/mtbert/bert/cudabert"
	"github.com/mtbert/mtbert/mtl/train"
)

func init() {
	register("eval", "score a multitask checkpoint on the dev or test split of every task of a config", runEval)
}

func runEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "eval -model DIR -config FILE [-split dev|test] [-data-root DIR] [-json]", stderr)
	dev := addDeviceFlag(fs)
	model := fs.String("model", "", "checkpoint folder written by mtbert train (e.g. RUN/best) (required)")
	config := fs.String("config", "", "the config whose tasks' splits are scored (required)")
	split := fs.String("split", train.SplitDev, "split to score: dev or test")
	dataRoot := fs.String("data-root", "", "folder that relative task paths resolve against (default: the config's data_root, else the config's folder)")
	int8 := int8Flag(fs)
	asJSON := fs.Bool("json", false, "print only the metrics as one JSON array (one object per task)")
	if err := parse(fs, args); err != nil {
		return err
	}
	gpu, err := openDevice(*dev, true, stderr)
	if err != nil {
		return err
	}
	if *model == "" || *config == "" || (*split != train.SplitDev && *split != train.SplitTest) {
		fs.Usage()
		return errUsage
	}
	cfg, err := train.LoadConfig(*config, *dataRoot)
	if err != nil {
		return err
	}
	m, tok, err := loadModel(*model)
	if err != nil {
		return err
	}
	if err := prepareInference(m.Encoder, *int8, gpu); err != nil {
		return err
	}
	if gpu != nil {
		e, err := cudabert.New(gpu, m.Encoder)
		if err != nil {
			return err
		}
		defer e.Close()
		m.UseEncoder(e)
	}
	loaded, err := cfg.LoadAll()
	if err != nil {
		return err
	}
	ms, err := train.EvaluateTasks(m, tok, loaded, *split)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return fmt.Errorf("no task of %s has a %s split", *config, *split)
	}
	if *asJSON {
		return printJSON(stdout, ms)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "task\tkind\tsplit\tcount\tmetric\tvalue\t\n")
	for _, t := range ms {
		names := make([]string, 0, len(t.Metrics))
		for k := range t.Metrics {
			names = append(names, k)
		}
		sort.Strings(names)
		first := true
		for _, k := range names {
			task, kind, split, count := "", "", "", ""
			if first {
				task, kind, split, count = t.Task, string(t.Kind), t.Split, fmt.Sprint(t.Count)
				first = false
			}
			mark := ""
			if k == t.Main {
				mark = " *"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.4f%s\t\n", task, kind, split, count, k, t.Metrics[k], mark)
		}
		for _, n := range t.Notes {
			fmt.Fprintf(tw, "%s\t\t\t\tnote\t%s\t\n", t.Task, n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range ms {
		if len(t.PerType) == 0 {
			continue
		}
		fmt.Fprintf(stdout, "\n%s (%s): strict span scores per type\n", t.Task, t.Split)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "type\tprecision\trecall\tf1\ttp\tfp\tfn\t\n")
		types := make([]string, 0, len(t.PerType))
		for ty := range t.PerType {
			types = append(types, ty)
		}
		sort.Strings(types)
		for _, ty := range types {
			p := t.PerType[ty]
			fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%d\t%d\t%d\t\n", ty, p.Precision, p.Recall, p.F1, p.TP, p.FP, p.FN)
		}
		tw.Flush()
	}
	fmt.Fprintln(stdout, "\n* the task's main metric; JSON with -json")
	return nil
}
