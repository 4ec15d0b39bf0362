package bulk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/mtbert/mtbert/mtl"
)

// The pipeline: one goroutine reads batches of inputs (readBatches), Workers goroutines run
// them (job.run), and a writer puts their results out in input order (writeInOrder). At most
// 2*Workers+2 batches are in flight (read, not yet written), which bounds the reorder
// buffer.

// job is a batch of inputs and, once run, their results and JSONL lines.
type job struct {
	seq    int
	items  []item
	out    [][]byte
	res    []Result
	failed int
	// canceled says the run was interrupted before the batch was done: its results are not
	// written.
	canceled bool
}

// pipeline runs every input of in through the workers into s, in input order, and returns
// what was written. After an interrupt (ctx done) the output stops before the first batch
// the interrupt cut short, so what is written is a prefix of the full output.
func (r *runner) pipeline(ctx context.Context, in io.Reader, s sink, prog *progress) (Stats, error) {
	jobs := make(chan *job)
	results := make(chan *job)
	slots := make(chan struct{}, 2*r.opts.Workers+2)
	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.run(ctx, r)
				results <- j
			}
		}()
	}
	var st Stats
	var werr error
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		st.Written, st.Failed, werr = r.writeInOrder(results, slots, s, prog)
	}()
	skipped, rerr := r.readBatches(ctx, in, jobs, slots)
	close(jobs)
	wg.Wait()
	close(results)
	<-writerDone
	st.Skipped = skipped
	if rerr != nil {
		return st, rerr
	}
	return st, werr
}

// readBatches reads the inputs, keeps those of this run (keep) and sends them to jobs in
// batches of Options.Batch, taking a slot for each; it stops at the end of the input, at a
// read error (returned) or when ctx is done. It returns the number of inputs left out.
func (r *runner) readBatches(ctx context.Context, in io.Reader, jobs chan<- *job, slots chan<- struct{}) (skipped int, err error) {
	br := bufio.NewReader(in)
	seq := 0
	cur := &job{}
	flush := func() {
		if len(cur.items) == 0 {
			return
		}
		cur.seq = seq
		seq++
		slots <- struct{}{}
		jobs <- cur
		cur = &job{}
	}
	for line := 1; ctx.Err() == nil; line++ {
		raw, rerr := br.ReadString('\n')
		if rerr != nil && rerr != io.EOF {
			err = fmt.Errorf("%s:%d: %w", r.opts.Name, line, rerr)
			break
		}
		if rerr == io.EOF && raw == "" {
			break
		}
		raw = strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		it := parseLine(raw, line)
		if it.isPair && it.res.Error == "" && r.opts.Format != JSONL {
			it.res.Error = fmt.Sprintf("line %d: a sentence pair has no %s form (use -format jsonl)", line, r.opts.Format)
		}
		if r.keep(it.res.ID) {
			cur.items = append(cur.items, it)
			if len(cur.items) >= r.opts.Batch {
				flush()
			}
		} else {
			skipped++
		}
		if rerr == io.EOF {
			break
		}
	}
	flush()
	return skipped, err
}

// writeInOrder receives the batches as the workers finish them and puts them into s in
// input order, freeing a slot per batch; after an interrupt or a write error it only frees
// the slots. It returns the results written, those failed, and the first write error.
func (r *runner) writeInOrder(results <-chan *job, slots <-chan struct{}, s sink, prog *progress) (written, failed int, err error) {
	pending := map[int]*job{}
	next := 0
	halted := false
	for j := range results {
		pending[j.seq] = j
		for p, ok := pending[next]; ok; p, ok = pending[next] {
			delete(pending, next)
			next++
			if halted = halted || p.canceled || err != nil; !halted {
				var f int
				f, err = r.putJob(p, s, prog)
				written += len(p.out)
				failed += f
			}
			<-slots
		}
	}
	return written, failed, err
}

// putJob writes a finished batch into s, reports it to the progress line and OnResult, and
// returns how many of its inputs failed.
func (r *runner) putJob(p *job, s sink, prog *progress) (failed int, err error) {
	failed = p.failed
	for k, line := range p.out {
		bad, err := s.put(&p.items[k], &p.res[k], line)
		if err != nil {
			return failed, err
		}
		if bad {
			failed++
		}
		if r.opts.OnResult != nil {
			r.opts.OnResult(p.res[k])
		}
	}
	if prog != nil && len(p.items) > 0 {
		prog.written.Add(int64(len(p.items)))
		prog.lines.Store(int64(p.items[len(p.items)-1].res.Line))
	}
	return failed, nil
}

// run runs a batch: its notes go through ExtractMany together (each result equals
// Extract's), falling back to one Extract a note when the batch fails, so that a bad note
// gets its own error.
func (j *job) run(ctx context.Context, r *runner) {
	var texts []string
	var idx []int
	for k := range j.items {
		it := &j.items[k]
		if it.res.Error != "" || it.isPair || (r.selected && len(r.nerTasks) == 0) {
			continue
		}
		texts = append(texts, it.text)
		idx = append(idx, k)
	}
	if len(texts) > 1 {
		if res, err := r.ex.ExtractMany(ctx, texts, r.nerTasks); err == nil {
			for n, k := range idx {
				j.items[k].res.Entities = res[n].Entities
				j.items[k].entDone = true
			}
		}
	}
	j.out = make([][]byte, len(j.items))
	j.res = make([]Result, len(j.items))
	for k := range j.items {
		o := r.runItem(ctx, &j.items[k])
		j.res[k] = o
		if o.Error != "" {
			j.failed++
		}
		b, err := json.Marshal(o)
		if err != nil {
			b, _ = json.Marshal(Result{ID: o.ID, Line: o.Line, Error: err.Error()})
			j.failed++
		}
		j.out[k] = append(b, '\n')
	}
	j.canceled = ctx.Err() != nil
}

// runItem runs a parsed input (its entities may be already there: entDone). When
// Options.Tasks named tasks, an empty list of one kind means none of that kind, not all.
func (r *runner) runItem(ctx context.Context, it *item) Result {
	o := it.res
	if o.Error != "" {
		return o
	}
	fail := func(format string, a ...any) Result {
		o.Error = fmt.Sprintf("line %d: ", o.Line) + fmt.Sprintf(format, a...)
		return o
	}
	var err error
	if it.isPair {
		o.Pairs = map[string]mtl.PairResult{}
		if r.selected && len(r.pairTasks) == 0 {
			return o
		}
		if o.Pairs, err = r.ex.Pair(ctx, it.a, it.b, r.pairTasks); err != nil {
			return fail("%v", err)
		}
		return o
	}
	if it.entDone {
		return o
	}
	o.Entities = map[string][]mtl.Entity{}
	if r.selected && len(r.nerTasks) == 0 {
		return o
	}
	res, err := r.ex.Extract(ctx, it.text, r.nerTasks)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return o
		}
		return fail("%v", err)
	}
	o.Entities = res.Entities
	return o
}
