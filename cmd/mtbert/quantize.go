package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/mtl"
)

func init() {
	register("quantize", "write an int8 copy of a checkpoint (the encoder's linear layers), which predict, serve, eval, encode and bench load", runQuantize)
}

const quantizeHelp = `The encoder's linear layers (Q, K, V, attention output, intermediate, output of every layer)
are quantised symmetric per output channel and written as NAME.weight_int8 (I8) and
NAME.weight_scale (F32) in model.safetensors, with "mtbert_quantization": "int8" in
config.json; embeddings, LayerNorm, the pooler, the MLM head and the task heads stay float32,
the other files are written as in a normal checkpoint. Activations are quantised per token at
run time (no calibration). The output loads without -int8 and keeps no float weights for the
quantised layers; it is for inference only (train cannot resume from it).
  mtbert quantize -model RUN/best -out RUN/best-int8
A Hugging Face BERT folder (no tasks.json) is quantised the same way.
`

func runQuantize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quantize", "quantize -model DIR -out DIR", stderr)
	model := fs.String("model", "", "checkpoint folder (mtbert train's, or a Hugging Face BERT folder) (required)")
	out := fs.String("out", "", "folder to write the int8 checkpoint to (required; replaced whole)")
	usage := fs.Usage
	fs.Usage = func() { usage(); io.WriteString(stderr, "\n"+quantizeHelp) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *model == "" || *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if filepath.Clean(*model) == filepath.Clean(*out) {
		return fmt.Errorf("quantize: -out %s is the -model folder: write the int8 copy elsewhere", *out)
	}
	var enc *bert.Model
	if _, err := os.Stat(filepath.Join(*model, mtl.TasksFile)); err == nil {
		m, tok, err := mtl.LoadCheckpoint(*model, bert.DefaultLowerCase)
		if err != nil {
			return err
		}
		enc = m.Encoder
		enc.QuantizeInt8()
		if err := mtl.SaveCheckpoint(*out, m, tok, nil); err != nil {
			return err
		}
	} else {
		m, err := bert.Load(*model)
		if err != nil {
			return err
		}
		var vocab *bert.Vocab
		if _, err := os.Stat(filepath.Join(*model, bert.VocabFile)); err == nil {
			v, err := bert.LoadVocab(filepath.Join(*model, bert.VocabFile))
			if err != nil {
				return err
			}
			vocab = v
		}
		enc = m
		enc.QuantizeInt8()
		if err := m.Save(*out, vocab); err != nil {
			return err
		}
	}
	var fp32, int8 int64
	for _, l := range enc.Linears() {
		q := l.Quantized()
		fp32 += 4 * int64(q.N*q.K)
		int8 += int64(q.N*q.K) + 4*int64(q.N)
	}
	fmt.Fprintf(stdout, "quantize: %s -> %s: %d linear layers, %.1f MB of float32 weights written as %.1f MB of int8 and scales (kernel %s)\n",
		*model, *out, len(enc.Linears()), float64(fp32)/1e6, float64(int8)/1e6, kernels.QGemmPath())
	return nil
}

// int8Flag registers -int8 on fs.
func int8Flag(fs *flag.FlagSet) *bool {
	return fs.Bool("int8", false, "quantise the encoder's linear layers to int8 at load (per output channel; activations per token at run time); a checkpoint written by mtbert quantize is int8 without it")
}

// prepareInference readies a loaded encoder for the inference commands (predict, serve, eval,
// encode): it quantises enc when int8 is set (dropping its float weights), refuses an int8
// encoder on a GPU, and on the CPU packs the float layers for inference only
// (bert.Model.PackForInferenceOnly: the packed products, fused Q/K/V and epilogues, with no
// second copy of the weights).
func prepareInference(enc *bert.Model, int8 bool, gpu *cuda.Context) error {
	if int8 {
		enc.QuantizeInt8()
	}
	if enc.IsInt8() && gpu != nil {
		return errors.New("int8 models run on the CPU only (the GPU path has no int8 kernels): use -device cpu, or the float checkpoint")
	}
	if gpu == nil {
		enc.PackForInferenceOnly()
	}
	return nil
}
