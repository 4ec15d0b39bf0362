package bulk_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/bulk"
)

// Run a checkpoint over a mixed input (a raw note, a JSONL note, a sentence pair, a line
// that is not JSON) with two workers: one JSONL result per input, in input order.
func Example() {
	dir, err := os.MkdirTemp("", "bulk-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	model := exampleCheckpoint(dir) // a folder written by mtbert train, such as RUN/best

	ex, err := mtl.LoadExtractor(model)
	if err != nil {
		log.Fatal(err)
	}
	in := strings.NewReader(`patient took aspirin for fever .
{"id": "note-2", "text": "no chest pain after insulin ."}
{"id": 3, "text_a": "patient has fever .", "text_b": "patient has no fever ."}
{"id": 4, "text": "unterminated
`)
	var out bytes.Buffer
	st, err := bulk.Run(context.Background(), ex, in, &out, bulk.Options{Workers: 2})
	if err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r bulk.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("id %s (line %d): entities %v, pairs %v, error %q\n", r.ID, r.Line,
			slices.Sorted(maps.Keys(r.Entities)), slices.Sorted(maps.Keys(r.Pairs)), r.Error)
	}
	fmt.Printf("%+v\n", st)
	// Output:
	// id 1 (line 1): entities [ner], pairs [], error ""
	// id note-2 (line 2): entities [ner], pairs [], error ""
	// id 3 (line 3): entities [], pairs [nli sts], error ""
	// id 4 (line 4): entities [], pairs [], error "line 4: bad JSON: unexpected end of JSON input"
	// {Written:4 Failed:1 Skipped:0}
}

// exampleCheckpoint saves an untrained model with three heads (ner, nli, sts) on a tiny
// random encoder in dir/model, standing in for a trained checkpoint.
func exampleCheckpoint(dir string) string {
	vocab, err := bert.LoadVocab(filepath.Join("..", "testdata", "train", "vocab.txt"))
	if err != nil {
		log.Fatal(err)
	}
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads = vocab.Len(), 32, 1, 2
	cfg.IntermediateSize, cfg.MaxPositionEmbeddings = 64, 64
	enc, err := bert.New(cfg, 1, true)
	if err != nil {
		log.Fatal(err)
	}
	m, err := mtl.NewModel(enc, []mtl.TaskSpec{
		{Name: "ner", Kind: mtl.NER, Labels: []string{"O", "B-Drug", "I-Drug"}, Scheme: "BIO", MaxLength: 16},
		{Name: "nli", Kind: mtl.PairClassification, Labels: []string{"contradiction", "entailment", "neutral"}, MaxLength: 32},
		{Name: "sts", Kind: mtl.Regression, MaxLength: 32},
	}, 2, 0)
	if err != nil {
		log.Fatal(err)
	}
	model := filepath.Join(dir, "model")
	if err := mtl.SaveCheckpoint(model, m, bert.NewTokenizer(vocab, bert.TokenizerOptions{}), nil); err != nil {
		log.Fatal(err)
	}
	return model
}
