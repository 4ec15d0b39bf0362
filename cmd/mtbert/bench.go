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
	register("bench", "measure kernels and models (bench gemm | bench bert)", runBench)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "gemm" && args[0] != "bert") {
		fmt.Fprintln(stderr, "Usage: mtbert bench gemm|bert [flags]\n\n  gemm   SGEMM GFLOP/s on one shape\n  bert   BERT inference or training-step throughput")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errUsage
	}
	if args[0] == "gemm" {
		return benchGemm(args[1:], stdout, stderr)
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
