package main

import (
	"fmt"
	"io"
	"time"

	"github.com/mtbert/mtbert/bench"
)

const benchHostileHelp = `bench hostile starts an mtbert server in this process on 127.0.0.1 and measures
-clients well-behaved clients (closed loop, synthetic or -notes notes) for -duration on the
quiet server, then for -duration again while attackers run against it: -oversize clients
sending bodies over -max-body or of one-letter words far over -max-tokens, -slow clients
sending a body one byte every 500ms, -abandon clients sending long notes and giving up after
50ms, and -flood clients sending notes back to back. It reports the well-behaved p50/p99
quiet and under attack, each attacker kind's answers by status, and the process's peak RSS
and heap. Everything stays on the loopback interface and ends with the phase.
`

func benchHostile(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench hostile", "bench hostile [-model DIR | -layers 12 -hidden 768 -k 8] [-notes PATH] [-duration 10s] [-json FILE]", stderr)
	c := addBenchFlags(fs)
	o := bench.HostileOptions{}
	fs.StringVar(&o.Model, "model", "", "checkpoint folder written by mtbert train (default: a random model, see -layers)")
	fs.IntVar(&o.Layers, "layers", 12, "random model: encoder layers")
	fs.IntVar(&o.Hidden, "hidden", 768, "random model: hidden size (a multiple of 64)")
	fs.IntVar(&o.K, "k", 8, "random model: token-tagging heads")
	fs.IntVar(&o.Labels, "labels", 9, "random model: labels per head")
	fs.IntVar(&o.MaxLen, "max-len", 128, "random model: the heads' max_length")
	notes := fs.String("notes", "", "notes for the well-behaved clients (as bench serve's -notes; default: synthetic notes)")
	fs.IntVar(&o.SynthNotes, "synth-notes", 200, "synthetic notes to generate")
	fs.IntVar(&o.SynthWords, "synth-words", 150, "words per synthetic note (at least)")
	fs.IntVar(&o.Clients, "clients", 4, "well-behaved closed-loop clients")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each phase (quiet, attack)")
	fs.IntVar(&o.Oversize, "oversize", 4, "attackers sending oversized bodies")
	fs.IntVar(&o.Slow, "slow", 16, "attackers sending a body one byte every 500ms")
	fs.IntVar(&o.Abandon, "abandon", 4, "attackers sending long notes and leaving after 50ms")
	fs.IntVar(&o.Flood, "flood", 32, "attackers sending notes back to back")
	fs.IntVar(&o.MaxQueue, "max-queue", 16, "server: requests admitted at once")
	fs.IntVar(&o.MaxBatchTokens, "max-batch-tokens", 2048, "server: padded sub-words per batch")
	fs.IntVar(&o.MaxTokens, "max-tokens", 1<<18, "server: most padded sub-words per request")
	fs.Int64Var(&o.MaxBody, "max-body", 1<<20, "server: largest request body in bytes")
	fs.DurationVar(&o.BodyTimeout, "body-timeout", 2*time.Second, "server: deadline for reading a body")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "server: deadline of each request")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the random model and the synthetic notes")
	jsonOut := fs.String("json", "", "also write the full report as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress lines on standard error")
	usage := fs.Usage
	fs.Usage = func() { usage(); fmt.Fprint(stderr, "\n"+benchHostileHelp) }
	if _, err := c.start(fs, args, false, stderr); err != nil {
		return err
	}
	if o.Duration <= 0 || o.Clients < 1 || o.MaxQueue < 1 || o.MaxBody < 1 || o.MaxTokens < 1 || o.BodyTimeout <= 0 || o.Timeout <= 0 ||
		o.Oversize < 0 || o.Slow < 0 || o.Abandon < 0 || o.Flood < 0 {
		fmt.Fprintln(stderr, "mtbert bench hostile: -duration, -clients, -max-queue, -max-body, -max-tokens and the timeouts must be positive, the attacker counts not negative")
		fs.Usage()
		return errUsage
	}
	for _, n := range []*int{&o.Oversize, &o.Slow, &o.Abandon, &o.Flood} {
		if *n == 0 {
			*n = -1 // none of that kind (the library's 0 is its default)
		}
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
	r, err := bench.Hostile(o)
	if err != nil {
		return err
	}
	bench.WriteHostileTable(stdout, r)
	if *jsonOut != "" {
		return writeReport(*jsonOut, r)
	}
	return nil
}
