package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mtbert/mtbert/bench"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
)

func init() {
	register("bench", "measure kernels and models (bench gemm | bench bert | bench mt | bench mlm | bench serve | bench hostile)", runBench)
}

func runBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "gemm" && args[0] != "bert" && args[0] != "mt" && args[0] != "mlm" && args[0] != "serve" && args[0] != "hostile") {
		fmt.Fprintln(stderr, "Usage: mtbert bench gemm|bert|mt|mlm|serve|hostile [flags]\n\n  gemm   SGEMM GFLOP/s on one shape\n  bert   BERT inference or training-step throughput\n  mt     one multitask model with k heads versus k single-task models (inference)\n  mlm    a masked-LM training step versus a fine-tuning step on the same encoder and length\n  serve  load generator against a local mtbert server: notes/s and latency, batching on and off, overload\n  hostile  well-behaved clients' latency on a local server, quiet and under attack (oversized, slow, abandoned, flood)")
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
	case "mlm":
		return benchMLM(args[1:], stdout, stderr)
	case "serve":
		return benchServe(args[1:], stdout, stderr)
	case "hostile":
		return benchHostile(args[1:], stdout, stderr)
	}
	return benchBert(args[1:], stdout, stderr)
}

func benchGemm(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gemm", "bench gemm -m M -k K -n N [-threads T] [-runs R] [-path P]", stderr)
	c := addBenchFlags(fs)
	m := fs.Int("m", 1024, "rows of A and C")
	k := fs.Int("k", 768, "columns of A, rows of B")
	n := fs.Int("n", 3072, "columns of B and C")
	runs := fs.Int("runs", 7, "timed runs; the median is reported")
	path := fs.String("path", "", "force a kernel path (generic, avx2-fma, avx512f); default: the best this CPU runs")
	if _, err := c.start(fs, args, false, stderr); err != nil {
		return err
	}
	if *path != "" {
		if err := kernels.SetGemmPath(*path); err != nil {
			return err
		}
	}
	r, err := bench.Gemm(*m, *k, *n, *c.threads, *runs)
	if err != nil {
		return err
	}
	return printJSON(stdout, r)
}

func benchBert(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench bert", "bench bert [-layers 12 -hidden 768 -batch 8 -seq 128 -mode infer|train]", stderr)
	c := addBenchFlags(fs)
	o := bench.BertOptions{}
	encoderFlags(fs, &o.Layers, &o.Hidden, &o.Batch, &o.Seq, "sequences")
	fs.StringVar(&o.Mode, "mode", "train", "infer (forward only) or train (forward, backward, AdamW step)")
	fs.IntVar(&o.Reps, "reps", 5, "timed repetitions after one warm-up; the median is reported")
	fs.Float64Var(&o.Dropout, "dropout", 0, "dropout in train mode (0 matches the PyTorch anchor, BERT trains with 0.1)")
	fs.BoolVar(&o.Float32, "float32", false, "with -device cuda: float32 GEMMs instead of mixed precision (bf16 inputs on tensor cores)")
	fs.BoolVar(&o.NoPack, "nopack", false, "infer mode: do not pre-pack the linear weights (the per-call packing baseline)")
	fs.BoolVar(&o.Int8, "int8", false, "infer mode: quantise the encoder's linear layers to int8 (dynamic per-token activations)")
	fs.StringVar(&o.Model, "model", "", "infer mode: load the encoder from this checkpoint folder (float, or int8 from mtbert quantize) instead of a random one")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	gpu, err := c.start(fs, args, true, stderr)
	if err != nil {
		return err
	}
	o.CUDA = gpu
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

// encoderFlags registers the sizes of a random BERT workload: -layers, -hidden, -batch and -seq
// (what names the batch's items).
func encoderFlags(fs *flag.FlagSet, layers, hidden, batch, seq *int, what string) {
	fs.IntVar(layers, "layers", 12, "encoder layers")
	fs.IntVar(hidden, "hidden", 768, "hidden size (a multiple of 64; heads = hidden/64)")
	fs.IntVar(batch, "batch", 8, what+" per batch")
	fs.IntVar(seq, "seq", 128, "sub-words per item of the batch")
}

// benchFlags are the flags every bench takes: -device and -threads.
type benchFlags struct {
	device  *string
	threads *int
}

// addBenchFlags registers -device and -threads on fs.
func addBenchFlags(fs *flag.FlagSet) benchFlags {
	return benchFlags{device: addDeviceFlag(fs), threads: fs.Int("threads", 0, "threads (0: all cores)")}
}

// start parses the bench's flags, resolves -device (gpu: the bench runs on a CUDA device,
// returned; else cuda is refused) and sets the thread count.
func (c benchFlags) start(fs *flag.FlagSet, args []string, gpu bool, stderr io.Writer) (*cuda.Context, error) {
	if err := parse(fs, args); err != nil {
		return nil, err
	}
	ctx, err := openDevice(*c.device, gpu, stderr)
	if err != nil {
		return nil, err
	}
	kernels.SetThreads(*c.threads)
	return ctx, nil
}

func benchMT(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench mt", "bench mt [-k 8 -labels 9 -layers 12 -hidden 768 -batch 8 -seq 128]", stderr)
	c := addBenchFlags(fs)
	o := bench.MTOptions{}
	fs.IntVar(&o.K, "k", 8, "number of tasks (token-tagging heads)")
	fs.IntVar(&o.Labels, "labels", 9, "labels per head")
	encoderFlags(fs, &o.Layers, &o.Hidden, &o.Batch, &o.Seq, "notes")
	fs.IntVar(&o.Reps, "reps", 3, "timed repetitions; the median is reported")
	if _, err := c.start(fs, args, false, stderr); err != nil {
		return err
	}
	r, err := bench.MT(o)
	if err != nil {
		return err
	}
	return printJSON(stdout, r)
}

func benchMLM(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench mlm", "bench mlm [-layers 12 -hidden 768 -batch 8 -seq 128]", stderr)
	c := addBenchFlags(fs)
	o := bench.MLMOptions{}
	encoderFlags(fs, &o.Layers, &o.Hidden, &o.Batch, &o.Seq, "sequences (full: no padding in either step)")
	fs.IntVar(&o.Reps, "reps", 5, "timed repetitions of each step, alternating, after one warm-up each; medians are reported")
	fs.Float64Var(&o.Dropout, "dropout", 0.1, "hidden and attention dropout in both steps")
	if _, err := c.start(fs, args, false, stderr); err != nil {
		return err
	}
	r, err := bench.MLM(o)
	if err != nil {
		return err
	}
	return printJSON(stdout, r)
}

const benchServeHelp = `bench serve starts an mtbert server in this process on 127.0.0.1 (a fresh one per
phase, all on one loaded model) and drives it over HTTP:
  - closed loop: for each -batching mode and -concurrency level, that many clients each send
    a note to POST /v1/extract, wait for the answer, and send the next, for -duration (then
    the requests in flight finish) or until -requests requests were sent. Reported: notes/s,
    p50/p99/max latency of the 200 answers, requests per batch and windows per encoder pass
    (from the server's /metrics), and notes/s with batching over notes/s without at each
    level. Batching off is mtbert serve -max-batch-requests 1: each request runs alone, with
    no wait (its own windows still share passes). These phases admit every client (the
    server's queue is at least the concurrency): they measure speed, not refusals.
  - overload (-overload F > 0): requests arrive open loop at F times the best notes/s
    measured (the capacity) for -overload-duration, each with a unique X-Request-Id the server
    echoes; every -oversize-every-th body is over -max-body. Reported: the answers by status
    (200, 503, 413, other), requests lost, duplicated or answered with another id, 503s
    without Retry-After, and the heap in use (runtime.ReadMemStats every 25ms) and resident
    set (VmRSS sampled; VmHWM, reset before the phase) against the idle figures.
The clients run in the same process: the memory figures include them. Every 200 answer is
checked against its own note (each entity's text at its byte and character offsets).
Without -model the model is random: -layers, -hidden, -k heads of -labels labels, windows
of -max-len sub-words, over a vocabulary built from the notes (or -vocab); without -notes
the notes are synthetic clinical notes of about -synth-words words.
`

func benchServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench serve", "bench serve [-model DIR | -layers 12 -hidden 768 -k 8] [-notes PATH] [-concurrency 1,4,16,64] [-batching on,off] [-duration 10s | -requests N] [-overload 4] [-json FILE]", stderr)
	c := addBenchFlags(fs)
	o := bench.ServeOptions{}
	fs.StringVar(&o.Model, "model", "", "checkpoint folder written by mtbert train (default: a random model, see -layers)")
	fs.BoolVar(&o.Int8, "int8", false, "quantise the encoder's linear layers to int8 at load (an int8 checkpoint is int8 without it)")
	fs.IntVar(&o.Layers, "layers", 12, "random model: encoder layers")
	fs.IntVar(&o.Hidden, "hidden", 768, "random model: hidden size (a multiple of 64)")
	fs.IntVar(&o.K, "k", 8, "random model: token-tagging heads")
	fs.IntVar(&o.Labels, "labels", 9, "random model: labels per head (O and B-/I- tags)")
	fs.IntVar(&o.MaxLen, "max-len", 128, "random model: the heads' max_length (window size in sub-words)")
	fs.StringVar(&o.Vocab, "vocab", "", "random model: vocab.txt to tokenise with (default: one built from the notes, 28,996 entries)")
	notes := fs.String("notes", "", "notes to send: a folder of .txt files, or a file of one note per line (raw or JSONL {\"text\"}; gzip/zstd accepted) (default: synthetic notes)")
	fs.IntVar(&o.SynthNotes, "synth-notes", 200, "synthetic notes to generate")
	fs.IntVar(&o.SynthWords, "synth-words", 150, "words per synthetic note (at least)")
	conc := fs.String("concurrency", "1,4,16,64", "comma-separated numbers of concurrent clients")
	batching := fs.String("batching", "on,off", "comma-separated batching modes to measure (on, off)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each closed-loop phase (ignored with -requests)")
	fs.IntVar(&o.Requests, "requests", 0, "requests per closed-loop phase (0: use -duration)")
	fs.Float64Var(&o.Overload, "overload", 4, "overload phase: offered load as a multiple of the measured capacity (0: no overload phase)")
	fs.DurationVar(&o.OverloadDuration, "overload-duration", 0, "length of the overload phase's arrivals (default: -duration, at least 10s)")
	fs.IntVar(&o.OverloadRequests, "overload-requests", 0, "overload requests to send (0: use -overload-duration)")
	fs.IntVar(&o.OversizeEvery, "oversize-every", 20, "make every n-th overload request a body over -max-body (0: none)")
	fs.IntVar(&o.MaxQueue, "max-queue", 64, "server: requests admitted at once (503 beyond) in the overload phase (closed-loop phases admit at least their concurrency)")
	fs.IntVar(&o.MaxBatchTokens, "max-batch-tokens", 2048, "server: padded sub-words per batch")
	fs.DurationVar(&o.MaxWait, "max-wait", 5*time.Millisecond, "server: longest wait for more requests once a batch has one")
	fs.Int64Var(&o.MaxBody, "max-body", 1<<20, "server: largest request body in bytes (413 beyond)")
	fs.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "server: deadline of each request")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the random model and the synthetic notes")
	jsonOut := fs.String("json", "", "also write the full report as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress lines on standard error")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, "\n"+benchServeHelp) }
	if _, err := c.start(fs, args, false, stderr); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "mtbert bench serve: "+format+"\n", a...)
		fs.Usage()
		return errUsage
	}
	o.Concurrency = nil
	for _, c := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return bad("-concurrency %q: want positive integers separated by commas", *conc)
		}
		o.Concurrency = append(o.Concurrency, n)
	}
	for _, b := range strings.Split(*batching, ",") {
		switch strings.TrimSpace(b) {
		case "on":
			o.Batching = append(o.Batching, true)
		case "off":
			o.Batching = append(o.Batching, false)
		default:
			return bad("-batching %q: want on, off or on,off", *batching)
		}
	}
	if o.Duration <= 0 && o.Requests <= 0 || o.Requests < 0 || o.Overload < 0 || o.MaxQueue < 1 || o.MaxBatchTokens < 1 || o.MaxBody < 1 {
		return bad("-duration or -requests must be positive; -overload, -max-queue, -max-batch-tokens and -max-body not negative")
	}
	if *notes != "" {
		var err error
		if o.Notes, err = bench.LoadNotes(*notes); err != nil {
			return err
		}
	}
	if !*quiet {
		o.Log = stderr
	}
	r, err := bench.Serve(o)
	if err != nil {
		return err
	}
	bench.WriteServeTable(stdout, r)
	if *jsonOut != "" {
		if err := writeReport(*jsonOut, r); err != nil {
			return err
		}
	}
	return nil
}

// writeReport writes a bench's full report to path (-json) as indented JSON.
func writeReport(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
