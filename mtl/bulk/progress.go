package bulk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countLines counts the lines of an uncompressed input (a last line without newline
// counts); ok is false for a gzip or zstd stream, or a read error.
func countLines(r io.Reader) (n int64, ok bool) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(4)
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		return 0, false
	}
	buf := make([]byte, 1<<20)
	last := byte('\n')
	for {
		k, err := br.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, false
		}
	}
	if last != '\n' {
		n++
	}
	return n, true
}

// progress draws a run's progress: input lines done (of the total when the input is an
// uncompressed file), results written, notes/s, elapsed time and ETA (from the lines, or
// from the bytes of a compressed file read), as
//
//	predict: 40/100 lines (40.0%), 40 written, 12.5 notes/s, elapsed 3s, ETA 5s
//
// On a terminal (tty) it redraws one line every 250 ms; elsewhere it prints a line every 10
// seconds.
type progress struct {
	w          io.Writer
	tty        bool
	start      time.Time
	totalLines int64 // 0: unknown
	size       int64 // input file size, 0: unknown
	read       *countingReader
	lines      atomic.Int64 // input lines done (written or skipped)
	written    atomic.Int64
	stop, done chan struct{}
	once       sync.Once
}

func newProgress(w io.Writer, tty bool, totalLines, size int64, read *countingReader) *progress {
	p := &progress{w: w, tty: tty, start: time.Now(), totalLines: totalLines, size: size, read: read, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		every := 10 * time.Second
		if tty {
			every = 250 * time.Millisecond
		}
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tk.C:
				p.draw(false, false)
			}
		}
	}()
	return p
}

// line renders the current state.
func (p *progress) line(final, complete bool) string {
	el := time.Since(p.start)
	lines, written := p.lines.Load(), p.written.Load()
	rate := float64(written) / max(el.Seconds(), 1e-9)
	frac := -1.0
	var b strings.Builder
	b.WriteString("predict: ")
	switch {
	case p.totalLines > 0:
		if complete {
			lines = p.totalLines
		}
		frac = float64(lines) / float64(p.totalLines)
		fmt.Fprintf(&b, "%d/%d lines (%.1f%%)", lines, p.totalLines, 100*frac)
	case p.size > 0 && p.read != nil:
		frac = min(1, float64(p.read.n.Load())/float64(p.size))
		fmt.Fprintf(&b, "%d lines (%.1f%% of the input)", lines, 100*frac)
	default:
		fmt.Fprintf(&b, "%d lines", lines)
	}
	fmt.Fprintf(&b, ", %d written, %.1f notes/s, elapsed %s", written, rate, el.Round(time.Second))
	if !final && frac > 0 && frac < 1 {
		fmt.Fprintf(&b, ", ETA %s", time.Duration(float64(el)*(1-frac)/frac).Round(time.Second))
	}
	return b.String()
}

func (p *progress) draw(final, complete bool) {
	l := p.line(final, complete)
	switch {
	case p.tty && final:
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", l)
	case p.tty:
		fmt.Fprintf(p.w, "\r%s\x1b[K", l)
	default:
		fmt.Fprintln(p.w, l)
	}
}

// finish stops the redraws and prints the final line; complete says the whole input was
// read.
func (p *progress) finish(complete bool) {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.draw(true, complete)
	})
}
