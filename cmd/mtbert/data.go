package main

import (
	"fmt"
	"io"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/train"
)

func init() {
	register("data", "read, tokenise and align every task of a config and summarise it", runData)
}

func runData(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("data", "data -config FILE [-data-root DIR] [-vocab FILE] [-json | -text-out FILE | -dump DIR [-dump-steps K]]", stderr)
	config := fs.String("config", "", "YAML or JSON config (required)")
	dataRoot := fs.String("data-root", "", "folder that relative task paths resolve against (default: the config's data_root, else the config's folder)")
	vocab := fs.String("vocab", "", "vocab.txt to tokenise with instead of the encoder's (lowercasing: encoder.lower_case, else "+fmt.Sprint(bert.DefaultLowerCase)+")")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	textOut := fs.String("text-out", "", "instead of the summary, write the raw text of every task's train split (after holdout) to this file, one document per line (each text of a pair is a document; exact repeats are written once): a pretraining corpus that holds no dev or test text")
	dump := fs.String("dump", "", "instead of the summary, write into this folder exactly what training will feed its first -dump-steps steps, without training: the step-0 checkpoint (initial/), every step's input_ids, token_type_ids, attention_mask and labels (-100 where untrained) in batches.safetensors, one line per step in steps.jsonl (task, learning rate, dropout seeds and counters) and the optimiser settings in run.json (see mtl/train/testdata/trajectory/replay.py)")
	dumpSteps := fs.Int("dump-steps", 50, "number of steps -dump writes")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *config == "" {
		fs.Usage()
		return errUsage
	}
	load := train.LoadConfig
	if *vocab != "" {
		load = train.LoadDataConfig // the data is tokenised with -vocab: the encoder folder may be absent
	}
	cfg, err := load(*config, *dataRoot)
	if err != nil {
		return err
	}
	if cfg.PretrainedMissing {
		fmt.Fprintf(stderr, "mtbert data: encoder.pretrained %s not found: tokenising with %s, lengths checked against BERT-base's 512 positions\n", cfg.Encoder.Pretrained, *vocab)
	}
	if *dump != "" {
		r, err := train.Prepare(cfg)
		if err != nil {
			return err
		}
		if err := train.Dump(r, *dump, *dumpSteps); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: the first %d of %d steps (batches, rates, dropout counters) and the step-0 checkpoint\n", *dump, min(*dumpSteps, r.TotalSteps), r.TotalSteps)
		return nil
	}
	if *textOut != "" {
		st, err := train.WriteTrainText(cfg, *textOut)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d documents, %d bytes (%d repeats left out) from the train splits of %d task(s)\n", *textOut, st.Documents, st.Bytes, st.Repeats, len(cfg.Tasks))
		return nil
	}
	var tok *bert.Tokenizer
	if *vocab != "" {
		tok, err = train.TokenizerFromVocab(*vocab, cfg.Encoder.LowerCase)
	} else {
		tok, err = cfg.Tokenizer()
	}
	if err != nil {
		return err
	}
	sum := train.Summarize(cfg, tok)
	if *asJSON {
		err = printJSON(stdout, sum)
	} else {
		err = sum.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if errs := sum.ErrorList(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(stderr, "mtbert data: %s\n", e)
		}
		return fmt.Errorf("%d split(s) or task(s) could not be read or aligned (see the summary)", len(errs))
	}
	return nil
}
