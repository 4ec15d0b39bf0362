package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mtbert/mtbert/mtl"
)

func init() {
	register("predict", "run a multitask checkpoint over notes and sentence pairs, writing JSONL", runPredict)
}

const predictHelp = `Input: one input per line, from -in or standard input (gzip or zstd accepted):
  a raw note (any line that does not start with '{'; its id is its line number),
  {"id": ..., "text": "..."}  for the ner tasks, or
  {"id": ..., "text_a": "...", "text_b": "..."}  for the sentence-level tasks.
Output: one JSON line per input, in order:
  {"id", "line", "entities": {task: [{type, start, end, byte_start, byte_end, text, score}]}}
  {"id", "line", "pairs": {task: {label, probs} | {score}}}
start/end are character (Unicode code point) offsets, byte_start/byte_end UTF-8 byte offsets;
text is the note at both. An input that cannot be read (bad JSON, invalid UTF-8, missing
fields) gets {"id", "line", "error"} and the others go on; the command then exits 1.
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
	fs := newFlags("predict", "predict -model DIR [-tasks a,b] [-in FILE] [-out FILE]", stderr)
	model := fs.String("model", "", "checkpoint folder written by mtbert train (e.g. RUN/best) (required)")
	tasks := fs.String("tasks", "", "comma-separated tasks to run (default: all)")
	in := fs.String("in", "-", "input file ('-' for standard input)")
	out := fs.String("out", "-", "output JSONL file ('-' for standard output; a file is written whole, then renamed into place)")
	batch := fs.Int("batch", 8, "windows per forward pass")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, "\n"+predictHelp) }
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" || *batch < 1 {
		fs.Usage()
		return errUsage
	}
	ex, err := mtl.LoadExtractor(*model)
	if err != nil {
		return err
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

	var src io.Reader = os.Stdin
	name := "standard input"
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src, name = f, *in
	}
	rc, err := mtl.NewReader(src)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer rc.Close()

	w := stdout
	var tmp *os.File
	if *out != "-" {
		tmp, err = os.CreateTemp(filepath.Dir(*out), "."+filepath.Base(*out)+".tmp-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	bw := bufio.NewWriter(w)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	br := bufio.NewReader(rc)
	failed, total := 0, 0
	for line := 1; ; line++ {
		raw, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("%s:%d: %w", name, line, rerr)
		}
		if rerr == io.EOF && raw == "" {
			break
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		o := predictLine(ctx, ex, raw, line, names != nil, nerTasks, pairTasks)
		if ctx.Err() != nil {
			return fmt.Errorf("%s:%d: interrupted", name, line)
		}
		total++
		if o.Error != "" {
			failed++
		}
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		bw.Write(append(b, '\n'))
		if rerr == io.EOF {
			break
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%s: %d of %d inputs failed (see the error field of their output lines)", name, failed, total)
	}
	return nil
}

// predictLine runs one input line. selected says whether -tasks chose the tasks (an empty
// list then means none of that kind, not all).
func predictLine(ctx context.Context, ex *mtl.Extractor, raw string, line int, selected bool, nerTasks, pairTasks []string) predictOutput {
	o := predictOutput{ID: strconv.Itoa(line), Line: line}
	fail := func(format string, a ...any) predictOutput {
		o.Error = fmt.Sprintf("line %d: ", line) + fmt.Sprintf(format, a...)
		return o
	}
	if !utf8.ValidString(raw) {
		return fail("not valid UTF-8")
	}
	text, isPair := raw, false
	var a, b string
	if strings.HasPrefix(strings.TrimSpace(raw), "{") {
		var in predictInput
		if err := json.Unmarshal([]byte(raw), &in); err != nil {
			return fail("bad JSON: %v", err)
		}
		if len(in.ID) > 0 && string(in.ID) != "null" {
			var s string
			if json.Unmarshal(in.ID, &s) == nil {
				o.ID = s
			} else if _, err := strconv.ParseFloat(string(in.ID), 64); err == nil {
				o.ID = string(in.ID)
			} else {
				return fail(`"id" is not a string or a number`)
			}
		}
		switch {
		case in.Text != nil && (in.TextA != nil || in.TextB != nil):
			return fail(`give "text" or "text_a"/"text_b", not both`)
		case in.Text != nil:
			text = *in.Text
		case in.TextA != nil:
			isPair, a = true, *in.TextA
			if in.TextB != nil {
				b = *in.TextB
			}
		default:
			return fail(`want "text" or "text_a" (and "text_b")`)
		}
	}
	var err error
	if isPair {
		o.Pairs = map[string]mtl.PairResult{}
		if selected && len(pairTasks) == 0 {
			return o
		}
		if o.Pairs, err = ex.Pair(ctx, a, b, pairTasks); err != nil {
			return fail("%v", err)
		}
		return o
	}
	o.Entities = map[string][]mtl.Entity{}
	if selected && len(nerTasks) == 0 {
		return o
	}
	res, err := ex.Extract(ctx, text, nerTasks)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return o
		}
		return fail("%v", err)
	}
	o.Entities = res.Entities
	return o
}
