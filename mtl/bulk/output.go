package bulk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mtbert/mtbert/mtl/corpus"
)

// sink receives the results in input order: one call per input (its item, its result, and
// its JSONL line), then finish once every input was put. put reports an input it could not
// write (through Options.Warn; the run goes on) with failed, and an error that stops the run
// with err.
type sink interface {
	put(it *item, o *Result, line []byte) (failed bool, err error)
	finish() error
}

// output is where a run writes: its sink, the buffered writer under it (nil for brat), and
// what puts the output in place at the end (commit) or drops it after a failure (discard).
type output struct {
	sink sink
	bw   *bufio.Writer
	// done, when not nil, closes and renames what bw writes into place.
	done func() error
	// drop, when not nil, removes what is left after a run that did not commit.
	drop func()
}

// commit flushes the output and puts it in place.
func (o *output) commit() error {
	if o.bw != nil {
		if err := o.bw.Flush(); err != nil {
			return err
		}
	}
	if o.done != nil {
		return o.done()
	}
	return nil
}

// discard removes a temporary file left by a run that failed (a no-op after commit).
func (o *output) discard() {
	if o.drop != nil {
		o.drop()
	}
}

// newSink makes the sink of the run's format over bw.
func (r *runner) newSink(bw *bufio.Writer) (sink, error) {
	if r.opts.Format != BioC {
		return &jsonlSink{bw}, nil
	}
	bs := &biocSink{w: bw, tasks: r.taskOrder, warn: r.warn, source: r.opts.Source}
	if err := bs.head(); err != nil {
		return nil, err
	}
	return bs, nil
}

// warn passes a message to Options.Warn.
func (r *runner) warn(format string, a ...any) {
	if r.opts.Warn != nil {
		r.opts.Warn(fmt.Sprintf(format, a...))
	}
}

// streamOutput writes to w (Run).
func (r *runner) streamOutput(w io.Writer) (*output, error) {
	bw := bufio.NewWriter(w)
	s, err := r.newSink(bw)
	if err != nil {
		return nil, err
	}
	return &output{sink: s, bw: bw}, nil
}

// fileOutput writes a JSONL or BioC file (RunFile): to a temporary file beside path, which
// first gets path's old content when resuming (its ids are then skipped), compressed by
// path's suffix, and renamed over path by commit.
func (r *runner) fileOutput(path string) (*output, error) {
	var old []byte
	if r.opts.Resume {
		var err error
		if old, err = os.ReadFile(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		done, err := doneIDs(old)
		if err != nil {
			return nil, fmt.Errorf("resume: %s: %w", path, err)
		}
		r.skip = func(id string) bool { return done[id] }
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return nil, err
	}
	out := &output{drop: func() { tmp.Close(); os.Remove(tmp.Name()) }}
	fail := func(err error) (*output, error) { out.discard(); return nil, err }
	if err := tmp.Chmod(0o644); err != nil { // CreateTemp makes 0600; the output is shared
		return fail(err)
	}
	if err := writeOld(tmp, old, isCompressed(path)); err != nil {
		return fail(err)
	}
	var w io.Writer = tmp
	var comp io.WriteCloser
	switch {
	case strings.HasSuffix(path, ".gz"):
		comp = gzip.NewWriter(tmp)
	case strings.HasSuffix(path, ".zst"):
		if comp, err = zstd.NewWriter(tmp); err != nil {
			return fail(err)
		}
	}
	if comp != nil {
		w = comp
	}
	out.bw = bufio.NewWriter(w)
	if out.sink, err = r.newSink(out.bw); err != nil {
		return fail(err)
	}
	out.done = func() error {
		if comp != nil {
			if err := comp.Close(); err != nil {
				return err
			}
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	}
	return out, nil
}

// writeOld writes a resumed output's old content, ending a plain file's last line when it
// lacks its newline.
func writeOld(w io.Writer, old []byte, compressed bool) error {
	if len(old) == 0 {
		return nil
	}
	if _, err := w.Write(old); err != nil {
		return err
	}
	if !compressed && old[len(old)-1] != '\n' {
		_, err := w.Write([]byte{'\n'})
		return err
	}
	return nil
}

// bratOutput writes into the folder dir (RunFile with brat), created when needed; when
// resuming, the notes whose .ann exists are skipped.
func (r *runner) bratOutput(dir string) (*output, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("brat output: %s is a file, not a folder", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if r.opts.Resume {
		r.skip = func(id string) bool { return bratDone(dir, id) }
	}
	prefix := len(r.nerTasks) > 1
	return &output{sink: &bratSink{dir: dir, tasks: r.taskOrder, prefix: prefix, warn: r.warn, names: map[string]string{}}}, nil
}

// isCompressed says whether an output file name asks for compression.
func isCompressed(name string) bool {
	return strings.HasSuffix(name, ".gz") || strings.HasSuffix(name, ".zst")
}

// doneIDs reads the ids of an existing JSONL output (plain, gzip or zstd; possibly empty).
func doneIDs(b []byte) (map[string]bool, error) {
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

// jsonlSink writes the JSONL lines.
type jsonlSink struct{ w io.Writer }

func (s *jsonlSink) put(_ *item, _ *Result, line []byte) (bool, error) {
	_, err := s.w.Write(line)
	return false, err
}

func (s *jsonlSink) finish() error { return nil }
