package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/bulk"
)

func init() {
	register("predict", "run a multitask checkpoint over notes and sentence pairs, writing JSONL, brat or BioC", runPredict)
}

const predictHelp = `Input: one input per line, from -in or standard input (gzip or zstd accepted):
  a raw note (any line that does not start with '{'; its id is its line number),
  {"id": ..., "text": "..."}  for the ner tasks, or
  {"id": ..., "text_a": "...", "text_b": "..."}  for the sentence-level tasks.
Output: one JSON line per input, in order:
  {"id", "line", "entities": {task: [{type, start, end, byte_start, byte_end, text, score}]}}
  {"id", "line", "pairs": {task: {label, probs} | {score}}}
start/end are character (Unicode code point) offsets, byte_start/byte_end UTF-8 byte offsets;
text is the note at both. The input is UTF-8 (a byte-order mark is dropped; UTF-16 with a mark
is decoded). An input that cannot be read (bad JSON, invalid UTF-8, a NUL byte as UTF-16
without a mark has, missing fields) gets {"id", "line", "error"} and the others go on; the
command then exits 1.

Bulk runs:
  -shard i/N keeps the inputs whose id hashes to i: FNV-1a (64-bit) of the id string
    (the output's "id": the JSON id, or the line number of a raw note or unreadable line)
    modulo N. A shard is thus stable when the input is reordered or split into files (as
    long as raw notes keep their line numbers), and the N shards of one input together
    cover every input exactly once: run i = 0..N-1 (e.g. as a Kubernetes indexed Job) and
    merge the outputs with mtbert merge (in input order; it checks that every input is
    there once and names the shards to run again with -resume). Ids should be unique.
  -shard auto takes i and N from the scheduler running the command, and says which on
    standard error: a Slurm job array (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, or
    SLURM_ARRAY_TASK_MIN/MAX: --array=0-3 and 1-4 both give shards 0..3 of 4) or a
    Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with N from -shards N or MTBERT_SHARDS,
    since Kubernetes does not export the Job's completions). Neither present is an error.
    Under Slurm, -shards N makes the task id the shard, so one task re-run alone
    (sbatch --array=2) is still shard 2 of N.
  SIGTERM (scancel, a time limit, a pod's end) stops like Ctrl-C: the finished prefix is
    kept, and -resume goes on from it.
  -workers W runs W goroutines over batches of -batch inputs (notes of a batch share
    forward passes); the output stays in input order and is byte for byte that of -workers 1.
  -resume, with -out FILE existing, reads the ids already in FILE, skips those inputs and
    appends the new lines: FILE's old content plus the new lines go to a temporary file that
    is renamed over FILE at the end, so a failed run never loses the old output. An
    interrupted run (Ctrl-C) keeps what it finished: the results of a prefix of the inputs,
    in order, are put in place before it exits 1, and -resume goes on from there.
  -out FILE.gz writes gzip, -out FILE.zst zstd (a resumed file gets a new stream appended,
    which gzip and zstd readers, and -in, read as one).

Formats (-format):
  jsonl  the default, above.
  brat   -out names a folder (created if needed) that gets, per note, ID.txt (the note) and
         ID.ann (brat standoff): per entity a T line "T1<TAB>Type start end<TAB>text" with
         character offsets, and a note "#1<TAB>AnnotatorNotes T1<TAB>task=... type=... score=..."
         with its task, exact type and score. An entity that spans a line break is written as
         a discontinuous span "start end;start end" (brat shows no span across lines). When
         several ner tasks are written, each type is prefixed with its task: ncbi_disease-Disease
         (the task's '-' become '_'; characters brat does not take in types become '_').
         ID is the input id with every byte but letters, digits, '-', '_' and a non-leading
         '.' escaped as a percent sign and two upper-case hex digits ("a/b" gives a%2Fb.ann).
         Each file is written whole then renamed into place, the .ann last; -resume skips
         the inputs whose ID.ann exists.
  bioc   one BioC JSON collection (as bioc / PubTator read it) to -out FILE or standard
         output: per note a document with one passage (offset 0, the note) and per entity an
         annotation {id, infons: {type, task, score}, text, locations: [{offset, length}]},
         offsets and lengths in characters (code points), as start/end. Written whole: -out FILE
         is renamed into place at the end (so -resume does not apply; split work with -shard
         instead). .gz or .zst compresses.
  Sentence pairs have no brat or BioC form: with those formats they are errors. Inputs with
  errors are reported on standard error (there is no output line for them) and the command
  exits 1. -shard and -workers work with every format.

Progress (-progress): on standard error, redrawn when it is a terminal (the default there),
a line every 10 seconds otherwise (-progress forces it, -progress=false turns it off): input
lines done (of the total when the input is an uncompressed file), results written, notes/s,
elapsed time and ETA (from the lines, or the bytes read of a compressed input). Standard
output only ever holds results.
`

func runPredict(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("predict", "predict -model DIR [-tasks a,b] [-in FILE] [-out FILE|DIR] [-format jsonl|brat|bioc] [-shard i/N|auto [-shards N]] [-workers W] [-resume] [-progress]", stderr)
	dev := addDeviceFlag(fs)
	model := fs.String("model", "", "checkpoint folder written by mtbert train (e.g. RUN/best) (required)")
	tasks := fs.String("tasks", "", "comma-separated tasks to run (default: all)")
	in := fs.String("in", "-", "input file ('-' for standard input)")
	out := fs.String("out", "-", "output JSONL file ('-' for standard output; a file is written whole, then renamed into place; .gz or .zst compresses)")
	batch := fs.Int("batch", 8, "windows per forward pass, and inputs per batch of work")
	shardFlag := fs.String("shard", "", "i/N: process only the inputs whose id hashes to shard i of N (FNV-1a of the id modulo N); auto: i and N from a Slurm job array or a Kubernetes Indexed Job")
	shardsFlag := fs.Int("shards", 0, "with -shard auto under a Kubernetes Indexed Job: the shard count, the Job's completions (else MTBERT_SHARDS)")
	workers := fs.Int("workers", 1, "goroutines processing batches of inputs concurrently (output stays in input order)")
	int8 := int8Flag(fs)
	resume := fs.Bool("resume", false, "skip the inputs whose ids are already in -out and append to it (brat: whose ID.ann exists)")
	format := fs.String("format", "jsonl", "output format: jsonl, brat (a folder of .txt/.ann pairs) or bioc (one BioC JSON collection)")
	progressFlag := fs.Bool("progress", false, "show progress on standard error (default: when it is a terminal)")
	decodeFlag := addDecodeFlag(fs)
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, "\n"+predictHelp) }
	if err := parse(fs, args); err != nil {
		return err
	}
	gpu, err := openDevice(*dev, true, stderr)
	if err != nil {
		return err
	}
	decode, err := mtl.ParseNERDecoding(*decodeFlag)
	if *model == "" || *batch < 1 || *workers < 1 || err != nil {
		fs.Usage()
		return errUsage
	}
	opts := bulk.Options{Batch: *batch, Workers: *workers, Resume: *resume, Format: bulk.Format(*format),
		Source: "mtbert predict -model " + *model, Warn: func(msg string) { fmt.Fprintf(stderr, "mtbert predict: %s\n", msg) }}
	if *shardFlag == "auto" {
		se, err := bulk.ShardFromEnv(os.Getenv, *shardsFlag)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "mtbert predict: shard %d/%d from the %s\n", se.Shard, se.Shards, se.Source)
		*shardFlag = fmt.Sprintf("%d/%d", se.Shard, se.Shards)
	} else if *shardsFlag != 0 {
		fmt.Fprintln(stderr, "mtbert predict: -shards goes with -shard auto (-shard i/N names the count)")
		fs.Usage()
		return errUsage
	}
	if msg := checkPredictFlags(&opts, *shardFlag, *out); msg != "" {
		fmt.Fprintln(stderr, "mtbert predict: "+msg)
		fs.Usage()
		return errUsage
	}
	for _, n := range strings.Split(*tasks, ",") {
		if n = strings.TrimSpace(n); n != "" {
			opts.Tasks = append(opts.Tasks, n)
		}
	}
	opts.ProgressTTY = isTerminal(stderr)
	showProgress := opts.ProgressTTY
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "progress" {
			showProgress = *progressFlag
		}
	})
	if showProgress {
		opts.Progress = stderr
	}
	ex, genc, err := loadExtractor(*model, gpu, *int8)
	if err != nil {
		return err
	}
	if genc != nil {
		defer genc.Close()
	}
	ex.Batch, ex.Decoding = *batch, decode
	var src io.Reader = os.Stdin
	opts.Name = "standard input"
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src, opts.Name = f, *in
	}
	// SIGTERM too: what Slurm (scancel, the time limit) and Kubernetes (a pod's end) send.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var st bulk.Stats
	if *out == "-" {
		st, err = bulk.Run(ctx, ex, src, stdout, opts)
	} else {
		st, err = bulk.RunFile(ctx, ex, src, *out, opts)
	}
	switch {
	case errors.Is(err, bulk.ErrInterrupted) && opts.Format != bulk.BioC:
		return fmt.Errorf("%w; rerun with -resume to go on", err)
	case err != nil:
		return err
	case st.Failed > 0:
		return fmt.Errorf("%s: %d of %d inputs failed (see the error field of their output lines)", opts.Name, st.Failed, st.Written)
	}
	return nil
}

// checkPredictFlags sets the shard of opts from -shard and checks that the flags go
// together; it returns what is wrong, or "".
func checkPredictFlags(opts *bulk.Options, shard, out string) string {
	if shard != "" {
		var err error
		if opts.Shard, opts.Shards, err = bulk.ParseShard(shard); err != nil {
			return fmt.Sprintf("-shard %q: want i/N with integers 0 <= i < N", shard)
		}
	}
	switch {
	case opts.Resume && out == "-":
		return "-resume needs -out FILE"
	case opts.Format == bulk.Brat && out == "-":
		return "-format brat needs -out DIR (a folder for the .txt and .ann files)"
	case opts.Format == bulk.BioC && opts.Resume:
		return "-resume does not apply to -format bioc: a BioC collection is written whole (split the work with -shard instead)"
	case opts.Format != bulk.JSONL && opts.Format != bulk.Brat && opts.Format != bulk.BioC:
		return fmt.Sprintf("-format %q: want jsonl, brat or bioc", string(opts.Format))
	}
	return ""
}

// isTerminal says whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
