package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/serve"
	"github.com/mtbert/mtbert/nn"
)

// releasedDir is a checkpoint in MT-Clinical BERT's reference layout, written by mirrors of
// the reference's own save code (mtl/mtt/testdata/gen_reference.py), with its goldens.
const (
	releasedDir    = "../../mtl/mtt/testdata/released-legacy"
	releasedGolden = "../../mtl/mtt/testdata/golden.json"
)

type mttGolden struct {
	Notes []struct {
		Text  string              `json:"text"`
		Spans map[string][][3]any `json:"spans"`
	} `json:"notes"`
	Pairs []struct {
		A      string               `json:"a"`
		B      string               `json:"b"`
		IDs    []int                `json:"ids"`
		Types  []int                `json:"types"`
		Logits map[string][]float64 `json:"logits"`
	} `json:"pairs"`
}

func readMTTGolden(t *testing.T) *mttGolden {
	t.Helper()
	raw, err := os.ReadFile(releasedGolden)
	if err != nil {
		t.Fatal(err)
	}
	var g mttGolden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// TestServeReleasedLayout serves the reference-layout folder as it is with -decode
// reference: /v1/pairs gives the regression score within 1e-5 of the reference forward and
// the softmax of its classification logits; /v1/extract gives predict_ner.py's spans.
func TestServeReleasedLayout(t *testing.T) {
	g := readMTTGolden(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	addr := make(chan string, 1)
	done := make(chan error, 1)
	o := serveOptions{model: releasedDir, addr: "127.0.0.1:0", grace: 10 * time.Second, decode: "reference",
		cfg: serve.Config{MaxWait: time.Millisecond}}
	go func() { done <- listenAndServe(ctx, o, &logs, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	post := func(path string, body any, out any) {
		b, _ := json.Marshal(body)
		resp, err := http.Post(base+path, "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range g.Pairs {
		var res struct {
			Pairs map[string]struct {
				Label string             `json:"label"`
				Probs map[string]float64 `json:"probs"`
				Score *float64           `json:"score"`
			} `json:"pairs"`
		}
		post("/v1/pairs", map[string]string{"text_a": p.A, "text_b": p.B}, &res)
		if s := res.Pairs["n2c2_2019"].Score; s == nil || math.Abs(*s-p.Logits["n2c2_2019"][0]) > 1e-5 {
			t.Errorf("n2c2_2019 score %v, reference %v", s, p.Logits["n2c2_2019"][0])
		}
		z := p.Logits["mednli_2018"]
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v)
		}
		for i, l := range []string{"contradiction", "entailment", "neutral"} {
			if got := res.Pairs["mednli_2018"].Probs[l]; math.Abs(got-math.Exp(z[i])/sum) > 1e-5 {
				t.Errorf("mednli_2018 P(%s) = %v, reference softmax %v", l, got, math.Exp(z[i])/sum)
			}
		}
	}
	for ni, n := range g.Notes {
		var res struct {
			Entities map[string][]struct {
				Type       string `json:"type"`
				Start, End int
			} `json:"entities"`
		}
		post("/v1/extract", map[string]string{"text": n.Text}, &res)
		var got, want []string
		for _, e := range res.Entities["i2b2_2010"] {
			got = append(got, e.Type+":"+strconv.Itoa(e.Start)+"-"+strconv.Itoa(e.End))
		}
		for _, s := range n.Spans["i2b2_2010"] {
			want = append(want, s[2].(string)+":"+strconv.Itoa(int(s[0].(float64)))+"-"+strconv.Itoa(int(s[1].(float64))))
		}
		if !slices.Equal(got, want) {
			t.Errorf("note %d: served\n%v\npredict_ner.py\n%v", ni, got, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestImportExportCommands runs import (its report names the tasks, kinds, labels and
// casing), then export of the import, and predicts with the export and the release: the
// same output; eval-style loading of an import works as any checkpoint.
func TestImportExportCommands(t *testing.T) {
	dir := t.TempDir()
	imp, exp := filepath.Join(dir, "imported"), filepath.Join(dir, "exported")
	out, _ := runCmd(t, 0, "import", "-from", "multitasking-transformers", releasedDir, "-out", imp)
	for _, w := range []string{"3 tasks", "i2b2_2010      ner", "mednli_2018    pair-classification", "n2c2_2019      regression",
		"14 labels: B-problem", "BERT_TOKEN", "lower_case=true", "legacy", "wrote " + imp} {
		if !strings.Contains(out, w) {
			t.Errorf("import report lacks %q:\n%s", w, out)
		}
	}
	out, _ = runCmd(t, 0, "export", "-to", "multitasking-transformers", imp, "-out", exp)
	if !strings.Contains(out, "SubwordClassificationHead_i2b2_2010.pt (zip)") {
		t.Errorf("export report:\n%s", out)
	}
	for _, f := range []string{"pytorch_model.bin", "config.json", "vocab.txt", "CLSRegressionHead_n2c2_2019.json", "CLSClassificationHead_mednli_2018.pt"} {
		if _, err := os.Stat(filepath.Join(exp, f)); err != nil {
			t.Error(err)
		}
	}
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id": "a", "text": "History of hypertension, on metoprolol daily."}`+"\n"+`{"id": "b", "text_a": "He takes aspirin daily.", "text_b": "A man takes aspirin."}`+"\n"), 0o644)
	a := runCmdOut(t, "predict", "-model", releasedDir, "-in", in)
	b := runCmdOut(t, "predict", "-model", exp, "-in", in)
	c := runCmdOut(t, "predict", "-model", imp, "-in", in)
	if a != b || a != c || !strings.Contains(a, `"n2c2_2019"`) {
		t.Errorf("predict differs:\nrelease %s\nexport  %s\nimport  %s", a, b, c)
	}
	_, stderr := runCmd(t, 2, "import", "-from", "huggingface", releasedDir, "-out", filepath.Join(dir, "x"))
	if !strings.Contains(stderr, `-from "huggingface": only multitasking-transformers is known`) {
		t.Errorf("stderr %q", stderr)
	}
	_, stderr = runCmd(t, 1, "export", "-to", "multitasking-transformers", imp, "-out", exp)
	if !strings.Contains(stderr, "already exists") {
		t.Errorf("export over an existing folder: %q", stderr)
	}
}

// TestEncodeReleasedLayout: encode reads the reference layout's BertModel (legacy torch
// format, lower-cased): the [CLS] hidden state of a golden pair, through the regression
// head's weights, gives the reference's score within 1e-5.
func TestEncodeReleasedLayout(t *testing.T) {
	g := readMTTGolden(t)
	p := g.Pairs[0]
	dir := t.TempDir()
	line, _ := json.Marshal(map[string]any{"input_ids": p.IDs, "token_type_ids": p.Types})
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.safetensors")
	os.WriteFile(in, append(line, '\n'), 0o644)
	runCmd(t, 0, "encode", "-model", releasedDir, "-in", in, "-out", out)
	f, err := nn.LoadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := f.Tensors["last_hidden_state"].Float32()
	head, err := bert.ReadTorchBin(filepath.Join(releasedDir, "CLSRegressionHead_n2c2_2019.pt"))
	if err != nil {
		t.Fatal(err)
	}
	w, _ := head["classifier.weight"].Float32()
	b, _ := head["classifier.bias"].Float32()
	s := float64(b[0])
	for i, v := range w {
		s += float64(v) * float64(h[i])
	}
	if want := p.Logits["n2c2_2019"][0]; math.Abs(s-want) > 1e-5 {
		t.Errorf("score from encode's [CLS] %v, reference %v", s, want)
	}
}
