package bulk

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mtbert/mtbert/mtl/corpus"
)

// ShardGap is a shard whose output lacks some of its inputs.
type ShardGap struct {
	// Shard is the shard's index; Path its output.
	Shard int
	Path  string
	// Absent says the output file does not exist at all.
	Absent bool
	// Missing counts its inputs with no output line; FirstID is the first of them.
	Missing int
	FirstID string
}

// MergeReport says what Merge found.
type MergeReport struct {
	// Inputs is the number of input lines; Written the number of lines written.
	Inputs, Written int
	// Gaps lists the shards with missing inputs, by index.
	Gaps []ShardGap
}

// ErrIncomplete is wrapped by Merge's error when some inputs have no output line: the
// MergeReport's Gaps say which shards to run again (with -resume).
var ErrIncomplete = errors.New("shard outputs incomplete")

// Merge writes the JSONL outputs of the len(parts) shards of one input (parts[i] is the
// output of shard i of len(parts), as written by RunFile; a path that does not exist is a
// shard not run) to w, in input order: the lines are those of one unsharded run, byte for
// byte. It reads in (plain, gzip or zstd) for the order: the id of each input line, as Run
// parses it, names its shard (ShardOf), whose output must hold it as its next line (a
// shard's output is in input order, also after -resume, which appends to a prefix).
//
// Every input id must be present exactly once. An input missing from its shard's output is
// counted in the report's Gaps and the error wraps ErrIncomplete; a line that is not the
// next input of its shard (an id twice, one not in the input, or out of order) is an error
// naming the file and line. w has then received a prefix: write to a temporary file
// (MergeFile does).
func Merge(in io.Reader, parts []string, w io.Writer) (MergeReport, error) {
	var rep MergeReport
	if len(parts) == 0 {
		return rep, errors.New("bulk: Merge: no shard outputs")
	}
	rc, err := corpus.NewReader(in)
	if err != nil {
		return rep, err
	}
	defer rc.Close()
	outs := make([]*partReader, len(parts))
	gaps := make([]ShardGap, len(parts))
	for i, p := range parts {
		gaps[i] = ShardGap{Shard: i, Path: p}
		pr, err := openPart(p)
		if errors.Is(err, os.ErrNotExist) {
			gaps[i].Absent = true
			continue
		}
		if err != nil {
			return rep, err
		}
		defer pr.close()
		outs[i] = pr
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	br := bufio.NewReader(rc)
	for line := 1; ; line++ {
		raw, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			return rep, fmt.Errorf("input:%d: %w", line, rerr)
		}
		if rerr == io.EOF && raw == "" {
			break
		}
		rep.Inputs++
		id := parseLine(strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r"), line).res.ID
		s := ShardOf(id, len(parts))
		pr := outs[s]
		ok := false
		if pr != nil {
			if ok, err = pr.take(id); err != nil {
				return rep, err
			}
		}
		if ok {
			bw.Write(pr.cur)
			bw.WriteByte('\n')
			rep.Written++
		} else {
			if gaps[s].Missing == 0 {
				gaps[s].FirstID = id
			}
			gaps[s].Missing++
		}
		if rerr == io.EOF {
			break
		}
	}
	for i, pr := range outs {
		if pr == nil {
			continue
		}
		if pr.pending {
			return rep, fmt.Errorf("%s:%d: id %q is not the next input of shard %d of %d (an id twice, one not in the input, an output of another shard count, or lines out of input order)", pr.path, pr.n, pr.id, i, len(parts))
		}
		if _, err := pr.next(); err != nil {
			return rep, err
		} else if pr.pending {
			return rep, fmt.Errorf("%s:%d: id %q is not an input of shard %d of %d, or comes after the end of the input", pr.path, pr.n, pr.id, i, len(parts))
		}
	}
	if err := bw.Flush(); err != nil {
		return rep, err
	}
	for _, g := range gaps {
		if g.Absent || g.Missing > 0 {
			rep.Gaps = append(rep.Gaps, g)
		}
	}
	if len(rep.Gaps) > 0 {
		return rep, fmt.Errorf("%w: %d of %d inputs have no output line", ErrIncomplete, rep.Inputs-rep.Written, rep.Inputs)
	}
	return rep, nil
}

// MergeFile is Merge writing to path through a temporary file beside it, renamed into place
// only when the merge is complete.
func MergeFile(in io.Reader, parts []string, path string) (MergeReport, error) {
	f, err := os.CreateTemp(dirOf(path), ".merge-tmp-")
	if err != nil {
		return MergeReport{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := f.Chmod(0o644); err != nil {
		return MergeReport{}, err
	}
	rep, err := Merge(in, parts, f)
	if err != nil {
		return rep, err
	}
	if err := f.Close(); err != nil {
		return rep, err
	}
	return rep, os.Rename(f.Name(), path)
}

func dirOf(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i+1]
	}
	return "."
}

// partReader reads one shard's output a line at a time, holding the line not yet taken.
type partReader struct {
	path    string
	f       *os.File
	rc      io.ReadCloser
	sc      *bufio.Scanner
	n       int    // line number of cur
	cur     []byte // the current line
	id      string // its id
	pending bool   // cur is read and not yet taken
}

func openPart(path string) (*partReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rc, err := corpus.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64*1024), 1<<30)
	return &partReader{path: path, f: f, rc: rc, sc: sc}, nil
}

func (p *partReader) close() { p.rc.Close(); p.f.Close() }

// next reads the next non-blank line into cur, unless one is pending; it reports whether a
// line is there.
func (p *partReader) next() (bool, error) {
	if p.pending {
		return true, nil
	}
	for p.sc.Scan() {
		p.n++
		b := p.sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var o struct {
			ID *string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil || o.ID == nil {
			return false, fmt.Errorf("%s:%d: not an mtbert predict output line", p.path, p.n)
		}
		p.cur, p.id, p.pending = append(p.cur[:0], b...), *o.ID, true
		return true, nil
	}
	if err := p.sc.Err(); err != nil {
		return false, fmt.Errorf("%s: %w", p.path, err)
	}
	return false, nil
}

// take consumes the pending line when its id is id.
func (p *partReader) take(id string) (bool, error) {
	ok, err := p.next()
	if err != nil || !ok || p.id != id {
		return false, err
	}
	p.pending = false
	return true, nil
}
