package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/mtt"
)

// The -from and -to value naming MT-Clinical BERT's reference code and its checkpoint layout.
const mttLayout = "multitasking-transformers"

func init() {
	register("import", "convert a checkpoint of MT-Clinical BERT's reference code (multitasking-transformers layout) to an mtbert checkpoint", runImport)
	register("export", "write an mtbert checkpoint in MT-Clinical BERT's reference layout (multitasking-transformers)", runExport)
}

// loadModel loads -model: an mtbert checkpoint (mtl.LoadCheckpoint), or a folder in the
// reference's layout ({HeadClass}_{task}.json/.pt beside a BertModel, mtt.Load) as it is.
func loadModel(dir string) (*mtl.Model, *bert.Tokenizer, error) {
	if mtt.IsReleased(dir) {
		m, tok, _, err := mtt.Load(dir)
		return m, tok, err
	}
	return mtl.LoadCheckpoint(dir, bert.DefaultLowerCase)
}

// addDecodeFlag registers -decode on a command that extracts entities.
func addDecodeFlag(fs *flag.FlagSet) *string {
	return fs.String("decode", string(mtl.DecodeStrict), "ner decoding: strict (whole words, BIO/BILOU decoded as seqeval) or reference (MT-Clinical BERT's predict_ner.py: 512-sub-word chunks without [CLS]/[SEP], runs of sub-words of one type)")
}

// parseWithArg parses args that hold one positional argument anywhere among the flags
// ("export -to X DIR -out Y"), returning it.
func parseWithArg(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", parseErr(err)
	}
	if fs.NArg() == 0 {
		return "", nil
	}
	arg := fs.Arg(0)
	if err := parse(fs, fs.Args()[1:]); err != nil {
		return "", err
	}
	return arg, nil
}

func parseErr(err error) error {
	if err == flag.ErrHelp {
		return err
	}
	return errUsage
}

func runImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", "import -from "+mttLayout+" DIR -out DIR2", stderr)
	from := fs.String("from", mttLayout, "layout of DIR: "+mttLayout+" (a Hugging Face BertModel folder plus {HeadClass}_{task}.json and .pt per head, as MultiTaskingBert.save_checkpoint writes it)")
	out := fs.String("out", "", "mtbert checkpoint folder to write (required)")
	src, err := parseWithArg(fs, args)
	if err != nil {
		return err
	}
	if src == "" || *out == "" || *from != mttLayout {
		if *from != mttLayout {
			fmt.Fprintf(stderr, "mtbert import: -from %q: only %s is known\n", *from, mttLayout)
		}
		fs.Usage()
		return errUsage
	}
	rep, err := mtt.Import(src, *out)
	if err != nil {
		return err
	}
	rep.Write(stdout)
	fmt.Fprintf(stdout, "wrote %s (tasks.json, heads.safetensors, checksums.json)\n", *out)
	return nil
}

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "export -to "+mttLayout+" RUN/best -out DIR", stderr)
	to := fs.String("to", mttLayout, "layout to write: "+mttLayout+" (BertModel's pytorch_model.bin, config.json, vocab.txt, and {HeadClass}_{task}.json and .pt per head, torch zip format)")
	out := fs.String("out", "", "folder to write; must not exist (required)")
	src, err := parseWithArg(fs, args)
	if err != nil {
		return err
	}
	if src == "" || *out == "" || *to != mttLayout {
		if *to != mttLayout {
			fmt.Fprintf(stderr, "mtbert export: -to %q: only %s is known\n", *to, mttLayout)
		}
		fs.Usage()
		return errUsage
	}
	m, tok, err := loadModel(src)
	if err != nil {
		return err
	}
	rep, err := mtt.Export(*out, m, tok)
	if err != nil {
		return err
	}
	rep.Write(stdout)
	return nil
}
