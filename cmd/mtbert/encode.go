package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/bert/cudabert"
	"github.com/mtbert/mtbert/nn"
)

func init() {
	register("encode", "run a Hugging Face BERT over JSONL inputs and save hidden states as safetensors", runEncode)
	register("tokenize", "print the WordPiece tokens, ids and offsets of text lines as JSONL", runTokenize)
}

// lowerCaseFlag documents the tokenizer default shared by every command that tokenises.
const lowerCaseHelp = "lowercase and strip accents when the model directory has no tokenizer_config.json " +
	"(default true, as Hugging Face; Bio+Clinical BERT ships a cased vocabulary without that file: pass -lower-case=false to tokenise as its vocabulary was built)"

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", "tokenize -model DIR [-in FILE] [-max-len N]", stderr)
	model := fs.String("model", "", "model directory holding vocab.txt (required)")
	in := fs.String("in", "-", "text file, one text per line ('-' for standard input)")
	maxLen := fs.Int("max-len", 0, "truncate to this many sub-words including [CLS] and [SEP] (0: no limit)")
	lower := fs.Bool("lower-case", bert.DefaultLowerCase, lowerCaseHelp)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		fs.Usage()
		return errUsage
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
	for sc.Scan() {
		enc := tok.Encode(sc.Text(), *maxLen)
		if err := printJSON(w, map[string]any{"tokens": enc.Tokens, "ids": enc.IDs, "offsets": enc.Offsets}); err != nil {
			return err
		}
	}
	return sc.Err()
}

func runEncode(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("encode", "encode -model DIR -in FILE.jsonl -out FILE.safetensors [-batch N]", stderr)
	dev := addDeviceFlag(fs)
	model := fs.String("model", "", "Hugging Face BERT directory: config.json, vocab.txt, model.safetensors or pytorch_model.bin (required)")
	in := fs.String("in", "", `JSONL inputs, one per line: {"text": ...}, {"text_a": ..., "text_b": ...} or {"input_ids": [...], "token_type_ids": [...], "attention_mask": [...]} (required; '-' for standard input)`)
	out := fs.String("out", "", "output safetensors file (required)")
	batch := fs.Int("batch", 8, "sequences per forward pass")
	maxLen := fs.Int("max-len", 0, "truncate inputs to this many sub-words (0: the model's max_position_embeddings)")
	lower := fs.Bool("lower-case", bert.DefaultLowerCase, lowerCaseHelp)
	int8 := int8Flag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	gpu, err := openDevice(*dev, true, stderr)
	if err != nil {
		return err
	}
	if *model == "" || *in == "" || *out == "" || *batch <= 0 {
		fs.Usage()
		return errUsage
	}
	m, err := bert.Load(*model)
	if err != nil {
		return err
	}
	if err := prepareInference(m, *int8, gpu); err != nil {
		return err
	}
	tok, err := bert.LoadTokenizer(*model, *lower)
	if err != nil {
		return err
	}
	if *maxLen <= 0 {
		*maxLen = m.Cfg.MaxPositionEmbeddings
	}
	sc, closeIn, err := scanLines(*in)
	if err != nil {
		return err
	}
	defer closeIn()
	var encs []bert.Encoding
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		e, err := bert.ParseInput(sc.Bytes(), tok, *maxLen)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", *in, line, err)
		}
		encs = append(encs, e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if len(encs) == 0 {
		return fmt.Errorf("%s: no inputs", *in)
	}
	embed := m.Embed
	if gpu != nil {
		e, err := cudabert.New(gpu, m)
		if err != nil {
			return err
		}
		defer e.Close()
		embed = e.Embed
	}
	all := bert.PadBatch(encs, m.Cfg.PadTokenID)
	n, t, h := all.B, all.T, m.Cfg.HiddenSize
	hidden := make([]float32, n*t*h)
	var pooled []float32
	if m.Pooler != nil {
		pooled = make([]float32, n*h)
	}
	for lo := 0; lo < n; lo += *batch {
		hi := min(n, lo+*batch)
		b := bert.Batch{B: hi - lo, T: t, IDs: all.IDs[lo*t : hi*t], TypeIDs: all.TypeIDs[lo*t : hi*t], Mask: all.Mask[lo*t : hi*t]}
		last, pool, err := embed(b)
		if err != nil {
			return err
		}
		copy(hidden[lo*t*h:], last)
		if pooled != nil {
			copy(pooled[lo*h:], pool)
		}
	}
	ids, mask := make([]int64, n*t), make([]int64, n*t)
	for i := range ids {
		ids[i], mask[i] = int64(all.IDs[i]), int64(all.Mask[i])
	}
	tensors := map[string]nn.SafeTensor{
		"last_hidden_state": nn.F32Tensor([]int{n, t, h}, hidden),
		"input_ids":         nn.I64Tensor([]int{n, t}, ids),
		"attention_mask":    nn.I64Tensor([]int{n, t}, mask),
	}
	if pooled != nil {
		tensors["pooler_output"] = nn.F32Tensor([]int{n, h}, pooled)
	}
	if err := nn.SaveSafetensors(*out, tensors, map[string]string{"model": *model}); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "encoded %d inputs (%d sub-words each after padding) into %s\n", n, t, *out)
	return nil
}

// scanLines returns a line scanner over path ("-" for standard input) that accepts lines of
// up to 64 MiB, and the function that closes the input.
func scanLines(path string) (*bufio.Scanner, func(), error) {
	var r io.Reader = os.Stdin
	closeIn := func() {}
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		r, closeIn = f, func() { f.Close() }
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	return sc, closeIn, nil
}
