package bulk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// Format is an output format.
type Format string

// The output formats.
const (
	// JSONL writes one Result a line (the default).
	JSONL Format = "jsonl"
	// Brat writes ID.txt (the note) and ID.ann (brat standoff, BratAnn) per note into a
	// folder (RunFile only).
	Brat Format = "brat"
	// BioC writes one BioC JSON collection, a document per note (NewBioCDocument).
	BioC Format = "bioc"
)

// Options says what a bulk run does. The zero value runs every task, 8 inputs a batch, on
// one worker, writing JSONL.
type Options struct {
	// Tasks are the tasks to run; empty runs all of them. When some are named, a note gets
	// only the named ner tasks (none, if none is named) and a pair only the named
	// sentence-level tasks.
	Tasks []string
	// Batch is the number of inputs a batch of work holds (default 8); the notes of a batch
	// go through Extractor.ExtractMany together. (The Extractor's own Batch bounds the
	// windows of one forward pass.)
	Batch int
	// Workers is the number of goroutines running batches concurrently (default 1); the
	// output stays in input order and equals that of one worker, byte for byte.
	Workers int
	// Shard and Shards keep only the inputs whose id hashes to Shard: ShardOf(id, Shards) ==
	// Shard. Shards 0 or 1 keeps every input.
	Shard, Shards int
	// Resume (RunFile only) skips the inputs already in the output: the ids of an existing
	// JSONL file, whose content is kept and appended to, or the notes whose ID.ann exists in
	// a brat folder. It does not apply to BioC, written whole.
	Resume bool
	// Format is the output format (default JSONL). Sentence pairs have no brat or BioC form:
	// with those formats they are failed inputs.
	Format Format
	// Name names the input in errors (default "input").
	Name string
	// Source is the BioC collection's source field.
	Source string
	// Warn, when not nil, receives what the brat and BioC writers could not write (an
	// input's error, an id that cannot be a file name), one message a call; those inputs
	// are counted in Stats.Failed either way. JSONL puts errors in the output lines.
	Warn func(msg string)
	// OnResult, when not nil, is called with each result once it is written, in input
	// order, from one goroutine. Cancelling the run's context from it stops the run after
	// the batch being written.
	OnResult func(Result)
	// Progress, when not nil, receives a progress line every 10 seconds, or one redrawn in
	// place every 250 ms when ProgressTTY says it is a terminal, and a last one at the end:
	//
	//	predict: 40/100 lines (40.0%), 40 written, 12.5 notes/s, elapsed 3s, ETA 5s
	//
	// (input lines done, results written, their rate, the time since the start, the time
	// left). The total and the ETA are there when the input is a regular file (an *os.File):
	// from its lines when it is uncompressed, from the bytes read when it is compressed.
	Progress    io.Writer
	ProgressTTY bool
}

// Result is one output line of the JSONL format: the input's id (its JSON id, or its line
// number) and line, and its entities (a note), its pair results (a pair) or its error.
type Result struct {
	ID       string                    `json:"id"`
	Line     int                       `json:"line"`
	Entities map[string][]mtl.Entity   `json:"entities,omitempty"`
	Pairs    map[string]mtl.PairResult `json:"pairs,omitempty"`
	Error    string                    `json:"error,omitempty"`
}

// Stats counts what a run did.
type Stats struct {
	// Written is the number of results written (failed inputs included).
	Written int
	// Failed is the number of those that failed: an input that could not be read or run
	// (its Result has an Error), or that the brat or BioC writer could not write.
	Failed int
	// Skipped is the number of inputs left out: of another shard, or already done (Resume).
	Skipped int
}

// ErrInterrupted is wrapped by the error of a run whose context ended before every input was
// done. What was written then holds the results of a prefix of the inputs, in input order
// (except for BioC, of which nothing is kept), and a run with Options.Resume goes on from
// there.
var ErrInterrupted = errors.New("interrupted")

// Run reads inputs from in (plain, gzip or zstd) and writes their results to w, as JSONL or
// one BioC collection. Inputs that fail are counted in Stats.Failed, not returned as an
// error; an error says the run itself failed (reading the input, writing w) or was
// interrupted (ErrInterrupted).
func Run(ctx context.Context, ex *mtl.Extractor, in io.Reader, w io.Writer, opts Options) (Stats, error) {
	r, err := newRunner(ex, opts)
	if err != nil {
		return Stats{}, err
	}
	switch {
	case r.opts.Resume:
		return Stats{}, errors.New("bulk: Resume needs an output file (RunFile)")
	case r.opts.Format == Brat:
		return Stats{}, errors.New("bulk: the brat format writes a folder (RunFile)")
	}
	out, err := r.streamOutput(w)
	if err != nil {
		return Stats{}, err
	}
	return r.execute(ctx, in, out)
}

// RunFile is Run writing to path: for JSONL and BioC a file, written to a temporary file
// beside it that is renamed over it at the end (and after an interrupt, for JSONL), gzip-
// or zstd-compressed when path ends in .gz or .zst; for brat a folder (created when needed)
// that gets ID.txt and ID.ann per note, each written whole then renamed into place, the
// .ann last. With Options.Resume, the inputs already in path are skipped and its content is
// kept (a compressed file gets a new stream appended, which gzip and zstd readers read as
// one).
func RunFile(ctx context.Context, ex *mtl.Extractor, in io.Reader, path string, opts Options) (Stats, error) {
	r, err := newRunner(ex, opts)
	if err != nil {
		return Stats{}, err
	}
	var out *output
	if r.opts.Format == Brat {
		out, err = r.bratOutput(path)
	} else {
		out, err = r.fileOutput(path)
	}
	if err != nil {
		return Stats{}, err
	}
	defer out.discard()
	return r.execute(ctx, in, out)
}

// runner is one bulk run: its options (defaults filled in) and its tasks.
type runner struct {
	ex                  *mtl.Extractor
	opts                Options
	selected            bool // Options.Tasks named tasks
	nerTasks, pairTasks []string
	taskOrder           []string // every task of the model, in its order
	skip                func(id string) bool
}

// newRunner checks the options, fills in their defaults and resolves the tasks.
func newRunner(ex *mtl.Extractor, opts Options) (*runner, error) {
	if opts.Batch == 0 {
		opts.Batch = 8
	}
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	if opts.Shards == 0 {
		opts.Shards = 1
	}
	if opts.Format == "" {
		opts.Format = JSONL
	}
	if opts.Name == "" {
		opts.Name = "input"
	}
	switch {
	case opts.Batch < 1 || opts.Workers < 1:
		return nil, fmt.Errorf("bulk: Batch %d and Workers %d must be positive", opts.Batch, opts.Workers)
	case opts.Shards < 1 || opts.Shard < 0 || opts.Shard >= opts.Shards:
		return nil, fmt.Errorf("bulk: shard %d of %d: want 0 <= Shard < Shards", opts.Shard, opts.Shards)
	case opts.Format != JSONL && opts.Format != Brat && opts.Format != BioC:
		return nil, fmt.Errorf("bulk: format %q: want jsonl, brat or bioc", opts.Format)
	case opts.Resume && opts.Format == BioC:
		return nil, errors.New("bulk: Resume does not apply to BioC: a BioC collection is written whole")
	}
	r := &runner{ex: ex, opts: opts, selected: len(opts.Tasks) > 0, skip: func(string) bool { return false }}
	var err error
	if r.nerTasks, r.pairTasks, err = ex.SplitTasks(opts.Tasks); err != nil {
		return nil, err
	}
	for _, t := range ex.Tasks() {
		r.taskOrder = append(r.taskOrder, t.Name)
	}
	return r, nil
}

// keep says whether an input goes into this run: in its shard, and not done already.
func (r *runner) keep(id string) bool {
	return (r.opts.Shards == 1 || ShardOf(id, r.opts.Shards) == r.opts.Shard) && !r.skip(id)
}

// execute runs the pipeline from in to out, then finishes the output and puts it in place:
// the whole of it, or after an interrupt the prefix written (BioC: nothing).
func (r *runner) execute(ctx context.Context, in io.Reader, out *output) (Stats, error) {
	prog, in := r.startProgress(in)
	if prog != nil {
		defer prog.finish(false)
	}
	rc, err := corpus.NewReader(in)
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", r.opts.Name, err)
	}
	defer rc.Close()
	st, err := r.pipeline(ctx, rc, out.sink, prog)
	if err != nil {
		return st, err
	}
	interrupted := ctx.Err() != nil
	if interrupted && r.opts.Format == BioC {
		return st, fmt.Errorf("%s: %w: a BioC collection is written whole, so nothing was kept", r.opts.Name, ErrInterrupted)
	}
	if !interrupted {
		if err := out.sink.finish(); err != nil {
			return st, err
		}
	}
	if err := out.commit(); err != nil {
		return st, err
	}
	if interrupted {
		return st, fmt.Errorf("%s: %w: the results of the first %d inputs were written (in input order)", r.opts.Name, ErrInterrupted, st.Written)
	}
	if prog != nil {
		prog.finish(true)
	}
	return st, nil
}

// startProgress starts the progress line when Options.Progress asks for it, and returns the
// reader to read in through (counting its bytes for a file's share done).
func (r *runner) startProgress(in io.Reader) (*progress, io.Reader) {
	if r.opts.Progress == nil {
		return nil, in
	}
	var lines, size int64
	var read *countingReader
	if f, ok := in.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if off, err := f.Seek(0, io.SeekCurrent); err == nil {
				size = fi.Size() - off
				if n, ok := countLines(io.NewSectionReader(f, off, size)); ok {
					lines = n
				}
			}
		}
		read = &countingReader{r: f}
		in = read
	}
	return newProgress(r.opts.Progress, r.opts.ProgressTTY, lines, size, read), in
}
