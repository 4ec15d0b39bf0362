package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
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
    concatenate the outputs. Ids should be unique.
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

// predictInput is one JSONL input line.
type predictInput struct {
	ID    json.RawMessage `json:"id"`
	Text  *string         `json:"text"`
	TextA *string         `json:"text_a"`
	TextB *string         `json:"text_b"`
}

// predictOutput is one output line.
type predictOutput struct {
	ID       string                    `json:"id"`
	Line     int                       `json:"line"`
	Entities map[string][]mtl.Entity   `json:"entities,omitempty"`
	Pairs    map[string]mtl.PairResult `json:"pairs,omitempty"`
	Error    string                    `json:"error,omitempty"`
}

func runPredict(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("predict", "predict -model DIR [-tasks a,b] [-in FILE] [-out FILE|DIR] [-format jsonl|brat|bioc] [-shard i/N] [-workers W] [-resume] [-progress]", stderr)
	dev := addDeviceFlag(fs)
	model := fs.String("model", "", "checkpoint folder written by mtbert train (e.g. RUN/best) (required)")
	tasks := fs.String("tasks", "", "comma-separated tasks to run (default: all)")
	in := fs.String("in", "-", "input file ('-' for standard input)")
	out := fs.String("out", "-", "output JSONL file ('-' for standard output; a file is written whole, then renamed into place; .gz or .zst compresses)")
	batch := fs.Int("batch", 8, "windows per forward pass, and inputs per batch of work")
	shardFlag := fs.String("shard", "", "i/N: process only the inputs whose id hashes to shard i of N (FNV-1a of the id modulo N)")
	workers := fs.Int("workers", 1, "goroutines processing batches of inputs concurrently (output stays in input order)")
	resume := fs.Bool("resume", false, "skip the inputs whose ids are already in -out and append to it (brat: whose ID.ann exists)")
	format := fs.String("format", "jsonl", "output format: jsonl, brat (a folder of .txt/.ann pairs) or bioc (one BioC JSON collection)")
	progressFlag := fs.Bool("progress", false, "show progress on standard error (default: when it is a terminal)")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, "\n"+predictHelp) }
	if err := parse(fs, args); err != nil {
		return err
	}
	gpu, err := openDevice(*dev, true, stderr)
	if err != nil {
		return err
	}
	if *model == "" || *batch < 1 || *workers < 1 {
		fs.Usage()
		return errUsage
	}
	shard, nShards := 0, 1
	if *shardFlag != "" {
		var ok bool
		if shard, nShards, ok = parseShard(*shardFlag); !ok {
			fmt.Fprintf(stderr, "mtbert predict: -shard %q: want i/N with integers 0 <= i < N\n", *shardFlag)
			fs.Usage()
			return errUsage
		}
	}
	if *resume && *out == "-" {
		fmt.Fprintln(stderr, "mtbert predict: -resume needs -out FILE")
		fs.Usage()
		return errUsage
	}
	switch *format {
	case "jsonl":
	case "brat":
		if *out == "-" {
			fmt.Fprintln(stderr, "mtbert predict: -format brat needs -out DIR (a folder for the .txt and .ann files)")
			fs.Usage()
			return errUsage
		}
	case "bioc":
		if *resume {
			fmt.Fprintln(stderr, "mtbert predict: -resume does not apply to -format bioc: a BioC collection is written whole (split the work with -shard instead)")
			fs.Usage()
			return errUsage
		}
	default:
		fmt.Fprintf(stderr, "mtbert predict: -format %q: want jsonl, brat or bioc\n", *format)
		fs.Usage()
		return errUsage
	}
	showProgress := isTerminal(stderr)
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "progress" {
			showProgress = *progressFlag
		}
	})
	ex, genc, err := loadExtractor(*model, gpu)
	if err != nil {
		return err
	}
	if genc != nil {
		defer genc.Close()
	}
	ex.Batch = *batch
	var names []string
	if *tasks != "" {
		for _, n := range strings.Split(*tasks, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	nerTasks, pairTasks, err := ex.SplitTasks(names)
	if err != nil {
		return err
	}

	// -resume: the ids already done, and the old output to carry over.
	var done map[string]bool
	var old []byte
	if *format == "brat" {
		if fi, err := os.Stat(*out); err == nil && !fi.IsDir() {
			return fmt.Errorf("-format brat: %s is a file, not a folder", *out)
		}
		if err := os.MkdirAll(*out, 0o755); err != nil {
			return err
		}
	}
	skip := func(id string) bool { return done[id] }
	if *resume && *format == "brat" {
		skip = func(id string) bool { return bratDone(*out, id) }
	} else if *resume {
		if old, err = os.ReadFile(*out); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if done, err = predictedIDs(old); err != nil {
			return fmt.Errorf("-resume: %s: %w", *out, err)
		}
	}

	var src io.Reader = os.Stdin
	name := "standard input"
	var prog *progress
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src, name = f, *in
		if showProgress {
			var lines, size int64
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				size = fi.Size()
				if n, ok := countLines(*in); ok {
					lines = n
				}
			}
			cr := &countingReader{r: f}
			src = cr
			prog = newProgress(stderr, isTerminal(stderr), lines, size, cr)
		}
	} else if showProgress {
		prog = newProgress(stderr, isTerminal(stderr), 0, 0, nil)
	}
	if prog != nil {
		defer prog.finish(false)
	}
	rc, err := corpus.NewReader(src)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer rc.Close()

	w := stdout
	var tmp *os.File
	var comp io.WriteCloser
	if *out != "-" && *format != "brat" {
		tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp-")
		if err != nil {
			return err
		}
		if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600; the output is shared
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if len(old) > 0 {
			if _, err := tmp.Write(old); err != nil {
				return err
			}
			if !isCompressed(*out) && old[len(old)-1] != '\n' {
				if _, err := tmp.Write([]byte{'\n'}); err != nil {
					return err
				}
			}
		}
		w = tmp
		switch {
		case strings.HasSuffix(*out, ".gz"):
			comp = gzip.NewWriter(tmp)
		case strings.HasSuffix(*out, ".zst"):
			if comp, err = zstd.NewWriter(tmp); err != nil {
				return err
			}
		}
		if comp != nil {
			w = comp
		}
	}
	bw := bufio.NewWriter(w)
	var sink predictSink = &jsonlSink{bw}
	var taskOrder []string
	for _, t := range ex.Tasks() {
		taskOrder = append(taskOrder, t.Name)
	}
	switch *format {
	case "brat":
		sink = &bratSink{dir: *out, tasks: taskOrder, prefix: len(nerTasks) > 1, stderr: stderr, names: map[string]string{}}
	case "bioc":
		bs := &biocSink{w: bw, tasks: taskOrder, stderr: stderr, source: "mtbert predict -model " + *model}
		if err := bs.head(); err != nil {
			return err
		}
		sink = bs
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	// The pipeline: this goroutine reads batches of inputs, W workers run them, and a writer
	// puts their lines out in input order. At most 2W+2 batches are in flight (read, not yet
	// written), which bounds the reorder buffer.
	jobs := make(chan *predictJob)
	results := make(chan *predictJob)
	slots := make(chan struct{}, 2**workers+2)
	var wg sync.WaitGroup
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.run(ctx, ex, names != nil, nerTasks, pairTasks)
				results <- j
			}
		}()
	}
	failed, total := 0, 0
	var werr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		pending := map[int]*predictJob{}
		next := 0
		halted := false
		for j := range results {
			pending[j.seq] = j
			for p, ok := pending[next]; ok; p, ok = pending[next] {
				delete(pending, next)
				next++
				// After an interrupt, the output stops before the first batch it cut short:
				// what is written is a prefix of the full output, in input order.
				if halted = halted || p.canceled || werr != nil; halted {
					<-slots
					continue
				}
				total += len(p.out)
				failed += p.failed
				for k, b := range p.out {
					if werr != nil {
						break
					}
					var bad bool
					bad, werr = sink.put(&p.items[k], &p.res[k], b)
					if bad {
						failed++
					}
				}
				if prog != nil && len(p.items) > 0 {
					prog.written.Add(int64(len(p.items)))
					prog.lines.Store(int64(p.items[len(p.items)-1].o.Line))
				}
				if predictInterruptAfter > 0 && total >= predictInterruptAfter {
					stop()
				}
				<-slots
			}
		}
	}()

	br := bufio.NewReader(rc)
	var rerrFinal error
	seq := 0
	cur := &predictJob{}
	flush := func() {
		if len(cur.items) == 0 {
			return
		}
		cur.seq = seq
		seq++
		slots <- struct{}{}
		jobs <- cur
		cur = &predictJob{}
	}
	for line := 1; ctx.Err() == nil; line++ {
		raw, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			rerrFinal = fmt.Errorf("%s:%d: %w", name, line, rerr)
			break
		}
		if rerr == io.EOF && raw == "" {
			break
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		it := parsePredictLine(raw, line)
		if it.isPair && it.o.Error == "" && *format != "jsonl" {
			it.o.Error = fmt.Sprintf("line %d: a sentence pair has no %s form (use -format jsonl)", line, *format)
		}
		if (nShards == 1 || shardOf(it.o.ID, nShards) == shard) && !skip(it.o.ID) {
			cur.items = append(cur.items, it)
			if len(cur.items) >= *batch {
				flush()
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	flush()
	close(jobs)
	wg.Wait()
	close(results)
	<-writerDone
	if rerrFinal != nil {
		return rerrFinal
	}
	if werr != nil {
		return werr
	}
	interrupted := ctx.Err() != nil
	if interrupted && *format == "bioc" {
		return fmt.Errorf("%s: interrupted: a BioC collection is written whole, so nothing was kept", name)
	}
	if !interrupted {
		if err := sink.finish(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if tmp != nil {
		if comp != nil {
			if err := comp.Close(); err != nil {
				return err
			}
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return err
		}
	}
	if interrupted {
		return fmt.Errorf("%s: interrupted: the results of the first %d inputs were written (in input order); rerun with -resume to go on", name, total)
	}
	if prog != nil {
		prog.finish(true)
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d inputs failed (see the error field of their output lines)", name, failed, total)
	}
	return nil
}

// parseShard parses "i/N" with 0 <= i < N.
func parseShard(s string) (i, n int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, false
	}
	return i, n, true
}

// shardOf is the shard of an input id: FNV-1a (64-bit) of the id modulo n.
func shardOf(id string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(n))
}

// isCompressed says whether an output file name asks for compression.
func isCompressed(name string) bool {
	return strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".zst")
}

// predictedIDs reads the ids of an existing output (plain, gzip or zstd; possibly empty).
func predictedIDs(b []byte) (map[string]bool, error) {
	done := map[string]bool{}
	if len(b) == 0 {
		return done, nil
	}
	rc, err := corpus.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64*1024), 1<<30)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var o struct {
			ID *string `json:"id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil || o.ID == nil {
			return nil, fmt.Errorf("line %d is not an mtbert predict output line", n)
		}
		done[*o.ID] = true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return done, nil
}

// predictItem is one parsed input line: o carries its id and line (and its error, when it
// could not be read); the rest says what to run.
type predictItem struct {
	o       predictOutput
	isPair  bool
	text    string
	a, b    string
	entDone bool
}

// predictJob is a batch of inputs and, once run, their output lines.
type predictJob struct {
	seq    int
	items  []predictItem
	out    [][]byte
	res    []predictOutput
	failed int
	// canceled says the run was interrupted before the batch was done: its results are not
	// written.
	canceled bool
}

// run runs a batch: its notes go through ExtractMany together (each result equals
// Extract's), falling back to one Extract a note when the batch fails, so that a bad note
// gets its own error.
func (j *predictJob) run(ctx context.Context, ex *mtl.Extractor, selected bool, nerTasks, pairTasks []string) {
	var texts []string
	var idx []int
	for k := range j.items {
		it := &j.items[k]
		if it.o.Error != "" || it.isPair || (selected && len(nerTasks) == 0) {
			continue
		}
		texts = append(texts, it.text)
		idx = append(idx, k)
	}
	if len(texts) > 1 {
		if res, err := ex.ExtractMany(ctx, texts, nerTasks); err == nil {
			for n, k := range idx {
				j.items[k].o.Entities = res[n].Entities
				j.items[k].entDone = true
			}
		}
	}
	j.out = make([][]byte, len(j.items))
	j.res = make([]predictOutput, len(j.items))
	for k := range j.items {
		o := runPredictItem(ctx, ex, &j.items[k], selected, nerTasks, pairTasks)
		j.res[k] = o
		if o.Error != "" {
			j.failed++
		}
		b, err := json.Marshal(o)
		if err != nil {
			b, _ = json.Marshal(predictOutput{ID: o.ID, Line: o.Line, Error: err.Error()})
			j.failed++
		}
		j.out[k] = append(b, '\n')
	}
	j.canceled = ctx.Err() != nil
}

// predictInterruptAfter, when positive (tests), interrupts predict as Ctrl-C would once that
// many results were written.
var predictInterruptAfter int

// parsePredictLine reads one input line: its id, and its note or pair (or its error).
func parsePredictLine(raw string, line int) predictItem {
	it := predictItem{o: predictOutput{ID: strconv.Itoa(line), Line: line}}
	fail := func(format string, a ...any) predictItem {
		it.o.Error = fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, a...)
		return it
	}
	if !utf8.ValidString(raw) {
		return fail("not valid UTF-8")
	}
	if i := strings.IndexByte(raw, 0); i >= 0 {
		return fail("NUL byte at byte %d (UTF-16 without a byte-order mark? convert the input to UTF-8)", i)
	}
	it.text = raw
	if strings.HasPrefix(strings.TrimSpace(raw), "{") {
		var in predictInput
		if err := json.Unmarshal([]byte(raw), &in); err != nil {
			return fail("bad JSON: %v", err)
		}
		if len(in.ID) > 0 && string(in.ID) != "null" {
			var s string
			if json.Unmarshal(in.ID, &s) == nil {
				it.o.ID = s
			} else if _, err := strconv.ParseFloat(string(in.ID), 64); err == nil {
				it.o.ID = string(in.ID)
			} else {
				return fail(`"id" is not a string or a number`)
			}
		}
		switch {
		case in.Text != nil && (in.TextA != nil || in.TextB != nil):
			return fail(`give "text" or "text_a"/"text_b", not both`)
		case in.Text != nil:
			it.text = *in.Text
		case in.TextA != nil:
			it.isPair, it.a = true, *in.TextA
			if in.TextB != nil {
				it.b = *in.TextB
			}
		default:
			return fail(`want "text" or "text_a" (and "text_b")`)
		}
	}
	return it
}

// runPredictItem runs a parsed input (its entities may be already there: entDone). selected
// says whether -tasks chose the tasks (an empty list then means none of that kind, not all).
func runPredictItem(ctx context.Context, ex *mtl.Extractor, it *predictItem, selected bool, nerTasks, pairTasks []string) predictOutput {
	o := it.o
	if o.Error != "" {
		return o
	}
	fail := func(format string, a ...any) predictOutput {
		o.Error = fmt.Sprintf("line %d: ", o.Line) + fmt.Sprintf(format, a...)
		return o
	}
	var err error
	if it.isPair {
		o.Pairs = map[string]mtl.PairResult{}
		if selected && len(pairTasks) == 0 {
			return o
		}
		if o.Pairs, err = ex.Pair(ctx, it.a, it.b, pairTasks); err != nil {
			return fail("%v", err)
		}
		return o
	}
	if it.entDone {
		return o
	}
	o.Entities = map[string][]mtl.Entity{}
	if selected && len(nerTasks) == 0 {
		return o
	}
	res, err := ex.Extract(ctx, it.text, nerTasks)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return o
		}
		return fail("%v", err)
	}
	o.Entities = res.Entities
	return o
}
