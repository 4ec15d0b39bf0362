package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mtbert/mtbert/mtl/bulk"
)

func init() {
	register("merge", "merge the JSONL outputs of predict -shard i/N (or -shard auto) into one, in input order", runMerge)
}

const mergeHelp = `The shard outputs are given in shard order, one per shard (their count is N):
  mtbert merge -in notes.jsonl -out all.jsonl part-0.jsonl part-1.jsonl part-2.jsonl part-3.jsonl
or as a pattern with %d and the count:
  mtbert merge -in notes.jsonl -out all.jsonl -parts 'part-%d.jsonl' -shards 4
The input is read again for the order: the lines are written as one unsharded predict run
writes them, byte for byte. Every input must be in its shard's output exactly once; when
some are missing, nothing is written, the shards lacking inputs are listed by index with
the command that finishes them, and the command exits 1.
`

func runMerge(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("merge", "merge -in FILE -out FILE (PART0 PART1 ... | -parts PATTERN -shards N)", stderr)
	in := fs.String("in", "", "the input the shards were run over (required)")
	out := fs.String("out", "-", "merged JSONL ('-' for standard output; a file is written whole, then renamed into place)")
	pattern := fs.String("parts", "", "the shard outputs as a pattern with %d for the shard index (with -shards)")
	shards := fs.Int("shards", 0, "the number of shards (with -parts)")
	usage := fs.Usage
	fs.Usage = func() { usage(); io.WriteString(stderr, "\n"+mergeHelp) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	parts := fs.Args()
	switch {
	case *in == "":
		fmt.Fprintln(stderr, "mtbert merge: -in is required (the input gives the order)")
		fs.Usage()
		return errUsage
	case *pattern != "" && (len(parts) > 0 || *shards < 1 || strings.Count(*pattern, "%d") != 1):
		io.WriteString(stderr, "mtbert merge: -parts needs one %d and -shards N >= 1, and no listed outputs\n")
		fs.Usage()
		return errUsage
	case *pattern == "" && len(parts) == 0:
		fmt.Fprintln(stderr, "mtbert merge: no shard outputs")
		fs.Usage()
		return errUsage
	}
	if *pattern != "" {
		for i := range *shards {
			parts = append(parts, fmt.Sprintf(*pattern, i))
		}
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	var rep bulk.MergeReport
	if *out == "-" {
		rep, err = bulk.Merge(f, parts, stdout)
	} else {
		rep, err = bulk.MergeFile(f, parts, *out)
	}
	if errors.Is(err, bulk.ErrIncomplete) {
		for _, g := range rep.Gaps {
			what := fmt.Sprintf("%d inputs missing (the first: id %q)", g.Missing, g.FirstID)
			if g.Absent {
				what = fmt.Sprintf("no output (%d inputs)", g.Missing)
			}
			fmt.Fprintf(stderr, "mtbert merge: shard %d of %d: %s: %s; finish it with: mtbert predict ... -shard %d/%d -resume -out %s\n",
				g.Shard, len(parts), g.Path, what, g.Shard, len(parts), g.Path)
		}
		idx := make([]string, len(rep.Gaps))
		for i, g := range rep.Gaps {
			idx[i] = fmt.Sprint(g.Shard)
		}
		return fmt.Errorf("%w; shards to run again: %s (Slurm: sbatch --array=%s ... with -resume)", err, strings.Join(idx, ","), strings.Join(idx, ","))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mtbert merge: %d inputs from %d shards\n", rep.Written, len(parts))
	return nil
}
