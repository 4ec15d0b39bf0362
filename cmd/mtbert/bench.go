package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/mtbert/mtbert/bench"
	"github.com/mtbert/mtbert/kernels"
)

func init() {
	register("bench", "measure kernels and models (bench gemm | bench bert | bench mt)", runBench)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "gemm" && args[0] != "bert" && args[0] != "mt") {
		fmt.Fprintln(stderr, "Usage: mtbert bench gemm|bert|mt [flags]\n\n  gemm   SGEMM GFLOP/s on one shape\n  bert   BERT inference or training-step throughput\n  mt     one multitask model with k heads versus k single-task models (inference)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	switch args[0] {
	case "gemm":
		return benchGemm(args[1:], stdout, stderr)
	case "mt":
		return benchMT(args[1:], stdout, stderr)
	}
	return benchBert(args[1:], stdout, stderr)
}

func benchGemm(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gemm", "bench gemm -m M -k K -n N [-threads T] [-runs R] [-path P]", stderr)
	m := fs.Int("m", 1024, "rows of A and C")
	k := fs.Int("k", 768, "columns of A, rows of B")
	n := fs.Int("n", 3072, "columns of B and C")
	threads := fs.Int("threads", 0, "threads (0: all cores)")
	runs := fs.Int("runs", 7, "timed runs; the median is reported")
	path := fs.String("path", "", "force a kernel path (generic, avx2-fma); default: the best this CPU runs")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path != "" {
		if err := kernels.SetGemmPath(*path); err != nil {
			return err
		}
	}
	r, err := bench.Gemm(*m, *k, *n, *threads, *runs)
	if err != nil {
		return err
	}
	return printJSON(stdout, r)
}

func benchBert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench bert", "bench bert [-layers 12 -hidden 768 -batch 8 -seq 128 -mode infer|train]", stderr)
	o := bench.BertOptions{}
	fs.IntVar(&o.Layers, "layers", 12, "encoder layers")
	fs.IntVar(&o.Hidden, "hidden", 768, "hidden size (a multiple of 64; heads = hidden/64)")
	fs.IntVar(&o.Batch, "batch", 8, "sequences per batch")
	fs.IntVar(&o.Seq, "seq", 128, "sub-words per sequence")
	fs.StringVar(&o.Mode, "mode", "train", "infer (forward only) or train (forward, backward, AdamW step)")
	fs.IntVar(&o.Reps, "reps", 5, "timed repetitions after one warm-up; the median is reported")
	fs.Float64Var(&o.Dropout, "dropout", 0, "dropout in train mode (0 matches the PyTorch anchor, BERT trains with 0.1)")
	threads := fs.Int("threads", 0, "threads (0: all cores)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	if err := parse(fs, args); err != nil {
		return err
	}
	kernels.SetThreads(*threads)
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.Bert(o)
	if err != nil {
		return err
	}
	return printJSON(stdout, r)
}

func benchMT(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench mt", "bench mt [-k 8 -labels 9 -layers 12 -hidden 768 -batch 8 -seq 128]", stderr)
	o := bench.MTOptions{}
	fs.IntVar(&o.K, "k", 8, "number of tasks (token-tagging heads)")
	fs.IntVar(&o.Labels, "labels", 9, "labels per head")
	fs.IntVar(&o.Layers, "layers", 12, "encoder layers")
	fs.IntVar(&o.Hidden, "hidden", 768, "hidden size (a multiple of 64)")
	fs.IntVar(&o.Batch, "batch", 8, "notes per batch")
	fs.IntVar(&o.Seq, "seq", 128, "sub-words per note")
	fs.IntVar(&o.Reps, "reps", 3, "timed repetitions; the median is reported")
	threads := fs.Int("threads", 0, "threads (0: all cores)")
	if err := parse(fs, args); err != nil {
		return err
	}
	kernels.SetThreads(*threads)
	r, err := bench.MT(o)
	if err != nil {
		return err
	}
	return printJSON(stdout, r)
}
