package main

import (
	"bufio"
	"fmt"
	"io"

	"github.com/mtbert/mtbert/bert"
)

func init() {
	register("fill", "predict the tokens at each [MASK] of text lines with a masked-LM checkpoint, as JSONL", runFill)
}

// fillPrediction, fillMask and fillLine are the JSON lines fill prints.
type fillPrediction struct {
	Token string  `json:"token"`
	Prob  float64 `json:"prob"`
}

type fillMask struct {
	Offset      int              `json:"offset"`
	Predictions []fillPrediction `json:"predictions"`
}

type fillLine struct {
	Text  string     `json:"text"`
	Masks []fillMask `json:"masks,omitempty"`
	Error string     `json:"error,omitempty"`
}

func runFill(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fill", "fill -model DIR [-in FILE] [-k 5] [-lower-case]", stderr)
	dev := addDeviceFlag(fs)
	model := fs.String("model", "", "Hugging Face BertForMaskedLM directory with its MLM head (cls.predictions.*) and vocab.txt (required)")
	in := fs.String("in", "-", "text file, one text per line with one or more [MASK] ('-' for standard input; empty lines are skipped)")
	k := fs.Int("k", 5, "predictions per [MASK], most probable first")
	lower := fs.Bool("lower-case", bert.DefaultLowerCase, lowerCaseHelp)
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := useDevice(*dev, stderr); err != nil {
		return err
	}
	if *model == "" || *k < 1 {
		fs.Usage()
		return errUsage
	}
	m, fromCkpt, err := bert.LoadMaskedLM(*model, 0)
	if err != nil {
		return err
	}
	if !fromCkpt {
		return fmt.Errorf("%s has no MLM head (cls.predictions.transform.*): fill needs a BertForMaskedLM or BertForPreTraining checkpoint", *model)
	}
	tok, err := bert.LoadTokenizer(*model, *lower)
	if err != nil {
		return err
	}
	sc, closeIn, err := scanLines(*in)
	if err != nil {
		return err
	}
	defer closeIn()
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	lines, failed := 0, 0
	for sc.Scan() {
		text := sc.Text()
		if text == "" {
			continue
		}
		lines++
		out := fillLine{Text: text}
		fills, err := m.Fill(tok, text, *k)
		if err != nil {
			failed++
			out.Error = err.Error()
		}
		for _, f := range fills {
			fm := fillMask{Offset: f.Offset, Predictions: make([]fillPrediction, len(f.Predictions))}
			for i, p := range f.Predictions {
				fm.Predictions[i] = fillPrediction{Token: p.Token, Prob: p.Prob}
			}
			out.Masks = append(out.Masks, fm)
		}
		if err := printJSON(w, out); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d lines failed", failed, lines)
	}
	return nil
}
