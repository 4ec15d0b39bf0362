package main

import (
	"flag"
	"fmt"
	"strconv"

	"github.com/mtbert/mtbert/bert"
)

// loadsModels names the commands that load a model someone else may have made: they take
// -max-model-bytes (newFlags registers it).
var loadsModels = map[string]bool{
	"train": true, "pretrain": true, "eval": true, "predict": true, "serve": true,
	"encode": true, "fill": true, "bench serve": true,
}

// maxModelBytes is -max-model-bytes: it sets bert.MaxModelBytes, the limit on a model's
// float32 parameter bytes that config.json, tasks.json and a pytorch_model.bin load are
// checked against before anything is allocated.
type maxModelBytes struct{ p *int64 }

func (f maxModelBytes) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatInt(*f.p, 10)
}

func (f maxModelBytes) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive number of bytes")
	}
	*f.p = n
	return nil
}

// addModelLimitFlag registers -max-model-bytes on fs, resetting the limit to its default
// first (commands run in-process in tests, one after another).
func addModelLimitFlag(fs *flag.FlagSet) {
	bert.MaxModelBytes = bert.DefaultMaxModelBytes
	fs.Var(maxModelBytes{&bert.MaxModelBytes}, "max-model-bytes", "refuse a model (config.json, tasks.json, weights) whose float32 parameters exceed this many `bytes` (the default is about 3x BERT-large)")
}
