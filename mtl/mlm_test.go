package mtl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/mtl/corpus"
	"github.com/mtbert/mtbert/mtl/internal/fixture"
	"github.com/mtbert/mtbert/mtl/train"
	"github.com/mtbert/mtbert/nn"
)

// mlmText is a tiny corpus over the words of testdata/train/vocab.txt.
var mlmText = []string{
	"the patient took aspirin for fever .",
	"the patient took insulin daily and is stable .",
	"no chest pain , no cough , no rash .",
	"the patient has a fever after metformin .",
	"nausea and chest pain after heparin .",
	"the patient took ibuprofen for chest pain .",
}

// writeMLMText writes mlmText (one document per line, with an empty line) into dir/text.txt.
func writeMLMText(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "text.txt")
	body := strings.Join(mlmText[:3], "\n") + "\n\n" + strings.Join(mlmText[3:], "\n") + "\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mlmFixture is the tiny config of testdata/train with its tasks replaced by (or, with mixed,
// extended by) an mlm task over mlmText.
func mlmFixture(t *testing.T, mixed bool, edit func(*train.Config)) *train.Run {
	t.Helper()
	text := writeMLMText(t, t.TempDir())
	return fixture.Prepare(t, func(c *train.Config) {
		mt := train.TaskConfig{Name: "lm", Kind: mtl.MLM, Format: train.FormatText, Train: train.Paths{text}, Dev: train.Paths{text}, MaxLength: 12, BatchSize: 4}
		if mixed {
			c.Tasks = append(c.Tasks, mt)
		} else {
			c.Tasks = []train.TaskConfig{mt}
		}
		c.Training.BestMetric = "mean"
		if edit != nil {
			edit(c)
		}
	})
}

func TestReadTextBadInput(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("word ", 50) + strings.Repeat("x", 70) // 320 bytes, one unbreakable run
	files := map[string][]byte{
		"lines.txt":  []byte("first document\n\n   \nsecond \xff\xfe document\r\n" + long + "\nlast without newline"),
		"binary.txt": append([]byte("ELF"), make([]byte, 100)...),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	docs, st, err := corpus.ReadText(filepath.Join(dir, "lines.txt"), 64)
	if err != nil {
		t.Fatal(err)
	}
	if st.EmptyLines != 2 || st.SplitLines != 1 || st.InvalidUTF8 != 1 || st.BinaryFiles != 0 || st.Files != 1 {
		t.Errorf("stats %+v, want 2 empty lines, 1 split, 1 invalid UTF-8, 1 file", st)
	}
	if docs[0].Text != "first document" || docs[0].ID != "lines.txt:1" {
		t.Errorf("doc 0 %+v", docs[0])
	}
	if docs[1].Text != "second \uFFFD document" || docs[1].ID != "lines.txt:4" {
		t.Errorf("doc 1 %q (%s)", docs[1].Text, docs[1].ID)
	}
	// The long line comes back in pieces of at most 64 bytes that together hold all of it.
	var pieces []string
	for _, d := range docs[2 : len(docs)-1] {
		if len(d.Text) > 64 || d.ID != "lines.txt:5" {
			t.Errorf("piece %q (%d bytes, %s)", d.Text, len(d.Text), d.ID)
		}
		pieces = append(pieces, d.Text)
	}
	if got := strings.ReplaceAll(strings.Join(pieces, ""), " ", ""); got != strings.ReplaceAll(long, " ", "") {
		t.Errorf("pieces lost text: %q", got)
	}
	if d := docs[len(docs)-1]; d.Text != "last without newline" || d.ID != "lines.txt:6" {
		t.Errorf("last doc %+v", d)
	}
	// A binary file is skipped and counted; a folder reads its .txt files as documents.
	if docs, st, err := corpus.ReadText(filepath.Join(dir, "binary.txt"), 0); err != nil || len(docs) != 0 || st.BinaryFiles != 1 {
		t.Errorf("binary: %d docs, %+v, %v", len(docs), st, err)
	}
	sub := filepath.Join(dir, "notes", "a")
	os.MkdirAll(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "n1.txt"), []byte("line one\nline two\n"), 0o644)
	os.WriteFile(filepath.Join(sub, "skip.ann"), []byte("T1\tX 0 1\tl\n"), 0o644)
	docs, st, err = corpus.ReadText(filepath.Join(dir, "notes"), 0)
	if err != nil || len(docs) != 1 || docs[0].Text != "line one line two" || docs[0].ID != filepath.Join("a", "n1.txt") || st.Files != 1 {
		t.Errorf("folder: %+v %+v %v", docs, st, err)
	}
	// gzip and zstd give the same documents as the plain file.
	plain, _, _ := corpus.ReadText(filepath.Join(dir, "lines.txt"), 64)
	var gz, zs bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(files["lines.txt"])
	zw.Close()
	ze, _ := zstd.NewWriter(&zs)
	ze.Write(files["lines.txt"])
	ze.Close()
	for n, b := range map[string][]byte{"lines.txt.gz": gz.Bytes(), "lines.zst": zs.Bytes()} {
		p := filepath.Join(dir, n)
		os.WriteFile(p, b, 0o644)
		got, _, err := corpus.ReadText(p, 64)
		if err != nil || len(got) != len(plain) {
			t.Fatalf("%s: %d docs, %v", n, len(got), err)
		}
		for i := range got {
			if got[i].Text != plain[i].Text {
				t.Errorf("%s doc %d: %q, want %q", n, i, got[i].Text, plain[i].Text)
			}
		}
	}
}

// FuzzReadText: any bytes read without a panic, every document non-empty valid UTF-8 of at
// most the limit.
func FuzzReadText(f *testing.F) {
	f.Add([]byte("a b\n\nc\xff\n"), 8)
	f.Add([]byte("\x00binary"), 4)
	f.Add([]byte(strings.Repeat("é", 40)), 5)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = 4 + (max&0xff+256)%256
		p := filepath.Join(dir, "f.txt")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		docs, _, err := corpus.ReadText(p, max)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			// A piece holds at most max bytes, each invalid byte of which becomes U+FFFD's 3.
			if d.Text == "" || !utf8Valid(d.Text) || len(d.Text) > 3*max {
				t.Fatalf("doc %q (limit %d)", d.Text, max)
			}
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func TestPackText(t *testing.T) {
	tok, err := train.TokenizerFromVocab("testdata/train/vocab.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	var docs []corpus.Document
	var want []int32
	for i, s := range mlmText {
		docs = append(docs, corpus.Document{Text: s}, corpus.Document{Text: " \u200b "}) // an empty document adds no [SEP]
		if i > 0 && len(want)%7 != 0 {
			want = append(want, 3) // [SEP] between documents, unless a sequence just ended
		}
		for _, tk := range tok.Tokenize(s) {
			want = append(want, int32(tk.ID))
		}
	}
	exs, err := mtl.PackText(tok, docs, 9)
	if err != nil {
		t.Fatal(err)
	}
	var got []int32
	for i, e := range exs {
		if e.IDs[0] != 2 || e.IDs[len(e.IDs)-1] != 3 || len(e.IDs) > 9 || (i < len(exs)-1 && len(e.IDs) != 9) {
			t.Errorf("sequence %d: %v", i, e.IDs)
		}
		got = append(got, e.IDs[1:len(e.IDs)-1]...)
	}
	if len(got) != len(want) {
		t.Fatalf("packed %d sub-words, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("sub-word %d: %d, want %d", i, got[i], want[i])
		}
	}
	if _, err := mtl.PackText(tok, docs, 2); err == nil {
		t.Error("length 2 accepted")
	}
}

// TestMLMMemorises trains the mlm task alone on six sentences: the masked-token loss falls to
// near zero and the dev (same text, fixed masks) accuracy reaches 1.
func TestMLMMemorises(t *testing.T) {
	// One packed sequence of the whole corpus, masked anew at every step.
	r := mlmFixture(t, false, func(c *train.Config) {
		c.Tasks[0].MaxLength = 64
		c.Training.Dropout = 0
		c.Training.LR = 1e-2
		c.Training.Optimizer = "adamw"
		c.Training.Epochs = 300
	})
	r.Model.Encoder.Dropout = nn.NewDropout(0, 1)
	var first, last float64
	n := 0
	err := r.Trainer.RunEpochs(context.Background(), 300, func(s mtl.StepInfo) error {
		if n < 5 {
			first += s.Loss / 5
		}
		if n >= r.TotalSteps-20 {
			last += s.Loss / 20
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tm, err := train.EvaluateTask(r.Model, r.Tokenizer, r.Loaded[0], train.SplitDev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loss %.3f -> %.4f over %d steps; dev %v", first, last, n, tm.Metrics)
	if first < 2.5 || last > 0.05 {
		t.Errorf("loss %.3f -> %.4f, want from above ln(26) ~ 3.3 to below 0.05", first, last)
	}
	if tm.Metrics["accuracy"] < 0.99 || tm.Metrics["perplexity"] > 1.1 || tm.Metrics["masked"] < 1 {
		t.Errorf("dev metrics %v", tm.Metrics)
	}
}

// TestAccumulateEqualsLargerBatch: two accumulated batches of 4 take the same step as one
// batch of 8 (same examples, same masks; the loss is the mean over all masked tokens).
func TestAccumulateEqualsLargerBatch(t *testing.T) {
	run := func(bs, acc int) *train.Run {
		r := mlmFixture(t, false, func(c *train.Config) {
			c.Tasks[0].BatchSize = bs
			c.Tasks[0].MaxLength = 5 // more sequences than one batch
			c.Training.Accumulate = acc
			c.Training.Dropout = 0
		})
		r.Model.Encoder.Dropout = nn.NewDropout(0, 1)
		for k := 0; k < 2; k++ {
			if _, err := r.Trainer.Step(); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	a, b := run(8, 1), run(4, 2)
	if len(a.Data[0].Train) < 16 {
		t.Fatalf("only %d sequences", len(a.Data[0].Train))
	}
	moved := false
	pa, pb := a.Model.AllParams(), b.Model.AllParams()
	init := mlmFixture(t, false, func(c *train.Config) { c.Tasks[0].MaxLength = 5 }).Model.AllParams()
	for i := range pa {
		x, y, z := pa[i].Value.Data(), pb[i].Value.Data(), init[i].Value.Data()
		for j := range x {
			if d := math.Abs(float64(x[j] - y[j])); d > 2e-5+2e-4*math.Abs(float64(x[j])) {
				t.Fatalf("%s[%d]: %g (batch 8) vs %g (2 x 4)", pa[i].Name, j, x[j], y[j])
			}
			moved = moved || x[j] != z[j]
		}
	}
	if !moved {
		t.Fatal("no parameter moved")
	}
	// Accumulation also divides the epoch: 2 x 4 takes as many steps as 8.
	if a.Trainer.RoundsPerEpoch() != b.Trainer.RoundsPerEpoch() {
		t.Errorf("rounds per epoch %d vs %d", a.Trainer.RoundsPerEpoch(), b.Trainer.RoundsPerEpoch())
	}
}

// TestMLMInTheMix trains ner, nli, sts and mlm round robin, interrupted and resumed: the
// weights equal an uninterrupted run's bit for bit; the checkpoint is a BertForMaskedLM
// directory whose MLM head loads back (LoadCheckpoint, bert.LoadMaskedLM) with the trained
// values; prediction ignores the mlm task.
func TestMLMInTheMix(t *testing.T) {
	dir := t.TempDir()
	straight, split := filepath.Join(dir, "straight"), filepath.Join(dir, "split")
	r := mlmFixture(t, true, nil)
	if len(r.Data) != 4 || r.Data[3].Masking == nil {
		t.Fatalf("%d tasks", len(r.Data))
	}
	if _, err := train.Train(context.Background(), r, train.Options{Out: straight}); err != nil {
		t.Fatal(err)
	}
	if _, err := train.Train(context.Background(), mlmFixture(t, true, nil), train.Options{Out: split, MaxSteps: r.TotalSteps/2 + 1}); err != nil {
		t.Fatalf("MaxSteps: %v", err)
	}
	if _, err := train.Train(context.Background(), mlmFixture(t, true, nil), train.Options{Out: split, Resume: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.safetensors", "heads.safetensors", "trainer.safetensors"} {
		a, _ := os.ReadFile(filepath.Join(straight, train.LastDir, f))
		b, _ := os.ReadFile(filepath.Join(split, train.LastDir, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the straight and the resumed run", f)
		}
	}
	last := filepath.Join(straight, train.LastDir)
	var cfg struct{ Architectures []string }
	raw, _ := os.ReadFile(filepath.Join(last, bert.ConfigFile))
	if json.Unmarshal(raw, &cfg) != nil || len(cfg.Architectures) != 1 || cfg.Architectures[0] != "BertForMaskedLM" {
		t.Errorf("config.json architectures %v", cfg.Architectures)
	}
	f, err := nn.LoadSafetensors(filepath.Join(last, bert.SafetensorsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"bert.embeddings.word_embeddings.weight", "cls.predictions.bias", "cls.predictions.transform.dense.weight"} {
		if _, ok := f.Tensors[k]; !ok {
			t.Errorf("model.safetensors lacks %s", k)
		}
	}
	// The trained head comes back from the checkpoint, through both loaders.
	m, _, err := mtl.LoadCheckpoint(last, false)
	if err != nil {
		t.Fatal(err)
	}
	lm, fromCkpt, err := bert.LoadMaskedLM(last, 99)
	if err != nil || !fromCkpt {
		t.Fatalf("LoadMaskedLM: %v (from checkpoint %v)", err, fromCkpt)
	}
	want, err := f.Tensors["cls.predictions.transform.dense.weight"].Float32()
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]float32{m.Encoder.MLMHead().Dense.W.Value.Data(), lm.MLMHead().Dense.W.Value.Data()} {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("MLM head weight %d: %g, want %g", i, got[i], want[i])
			}
		}
	}
	// Continued pretraining: a config whose encoder.pretrained is that checkpoint starts
	// from its trained MLM head, not a fresh one; a supervised-only config drops the head.
	cont := mlmFixture(t, false, func(c *train.Config) { c.Encoder.Pretrained, c.Encoder.Vocab = last, "" })
	got := cont.Model.Encoder.MLMHead().Dense.W.Value.Data()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("continued pretraining: MLM head weight %d is %g, the checkpoint's %g", i, got[i], want[i])
		}
	}
	if sup := fixture.Prepare(t, func(c *train.Config) { c.Encoder.Pretrained, c.Encoder.Vocab = last, "" }); sup.Model.Encoder.HasMLMHead() {
		t.Error("a supervised run from the checkpoint kept the MLM head")
	}
	ex := mtl.NewExtractor(m, r.Tokenizer)
	ner, sent, err := ex.SplitTasks(nil)
	if err != nil || strings.Join(ner, ",") != "ner" || strings.Join(sent, ",") != "nli,sts" {
		t.Errorf("SplitTasks: %v %v %v", ner, sent, err)
	}
	if _, _, err := ex.SplitTasks([]string{"lm"}); err == nil || !strings.Contains(err.Error(), "predicts nothing") {
		t.Errorf("SplitTasks(lm): %v", err)
	}
}
