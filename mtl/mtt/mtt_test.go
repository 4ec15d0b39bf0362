package mtt

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl"
	"github.com/mtbert/mtbert/nn"
)

// The fixtures of testdata/gen_reference.py (Debian's python3-torch 1.13): a 2-layer
// BertModel of hidden size 32 with the heads SubwordClassificationHead_i2b2_2010,
// CLSClassificationHead_mednli_2018 and CLSRegressionHead_n2c2_2019, saved by mirrors of
// MultiTaskingBert.save_checkpoint and TransformerHead.save in both torch formats, and
// golden.json: the reference forward's logits (float64) and predict_ner.py's spans.
var releasedDirs = []string{"testdata/released-zip", "testdata/released-legacy"}

// logitTol is the bound on |mtbert - reference| for every logit.
const logitTol = 1e-5

type golden struct {
	MaxLen int `json:"max_sequence_length"`
	Notes  []struct {
		Text    string                 `json:"text"`
		IDs     []int32                `json:"ids"`
		Offsets [][2]int               `json:"offsets"`
		Logits  map[string][][]float64 `json:"logits"`
		Spans   map[string][][3]any    `json:"spans"`
	} `json:"notes"`
	Pairs []struct {
		A      string               `json:"a"`
		B      string               `json:"b"`
		IDs    []int32              `json:"ids"`
		Types  []int32              `json:"types"`
		Logits map[string][]float64 `json:"logits"`
	} `json:"pairs"`
}

func readGolden(t *testing.T) *golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func closeTo(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst := 0.0
	for i := range got {
		worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
	}
	if worst > logitTol {
		t.Errorf("%s: max |mtbert - reference| = %.3g > %g", what, worst, logitTol)
	}
}

// checkParity runs ex over golden's notes and pairs: the tokenisation, every head's logits
// (within logitTol) and, under reference decoding, predict_ner.py's spans exactly.
func checkParity(t *testing.T, ex *mtl.Extractor, g *golden) {
	t.Helper()
	ex.Decoding = mtl.DecodeReference
	for ni, n := range g.Notes {
		p, err := ex.PlanNote(n.Text, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Tokenisation: the reference's ids and character offsets.
		var ids []int32
		var offs [][2]int
		for _, tk := range p.Doc.Tokens {
			ids = append(ids, int32(tk.ID))
			offs = append(offs, [2]int{tk.Start, tk.End})
		}
		offs = bert.RuneOffsets(n.Text, offs)
		if !slices.Equal(ids, n.IDs) || !slices.Equal(offs, n.Offsets) {
			t.Fatalf("note %d: tokens %v %v, reference %v %v", ni, ids, offs, n.IDs, n.Offsets)
		}
		seqs := p.Sequences()
		out, err := ex.Run(context.Background(), seqs, mtl.PassLimits{MaxSeqs: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for task, chunks := range n.Logits {
			if len(seqs) != len(chunks) {
				t.Fatalf("note %d: %d chunks, reference %d", ni, len(seqs), len(chunks))
			}
			for c := range chunks {
				closeTo(t, task+" note chunk", out[c][task], chunks[c])
			}
		}
		res, err := p.Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		for task, spans := range n.Spans {
			var got, want []string
			for _, e := range res.Entities[task] {
				got = append(got, strings.Join([]string{itoa(e.Start), itoa(e.End), e.Type}, " "))
				if []rune(n.Text)[e.Start] != []rune(e.Text)[0] {
					t.Errorf("entity %+v: text does not start at its offset", e)
				}
			}
			for _, s := range spans {
				want = append(want, strings.Join([]string{itoa(int(s[0].(float64))), itoa(int(s[1].(float64))), s[2].(string)}, " "))
			}
			if !slices.Equal(got, want) {
				t.Errorf("note %d, %s: reference decoding gives\n%v\npredict_ner.py gives\n%v", ni, task, got, want)
			}
		}
	}
	for pi, pr := range g.Pairs {
		p, err := ex.PlanPair(pr.A, pr.B, nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs := p.Sequences()
		if len(seqs) != 1 || !slices.Equal(seqs[0].IDs, pr.IDs) || !slices.Equal(seqs[0].Types, pr.Types) {
			t.Fatalf("pair %d: encoded as %v, reference %v %v", pi, seqs, pr.IDs, pr.Types)
		}
		out, err := ex.Run(context.Background(), seqs, mtl.PassLimits{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for task, want := range pr.Logits {
			closeTo(t, task+" pair", out[0][task], want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestLoadReleasedParity loads the reference's layout in both torch formats: three heads of
// the right kinds, lower-cased tokenisation equal to the reference's, every head's logits
// within 1e-5 of the reference forward, and predict_ner.py's spans under reference decoding.
func TestLoadReleasedParity(t *testing.T) {
	g := readGolden(t)
	for _, dir := range releasedDirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if !IsReleased(dir) {
				t.Fatalf("IsReleased(%s) = false", dir)
			}
			m, tok, rep, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, tr := range rep.Tasks {
				kinds = append(kinds, tr.Task+":"+string(tr.Kind)+":"+tr.Format)
			}
			format := map[string]string{"released-zip": "zip", "released-legacy": "legacy"}[filepath.Base(dir)]
			want := []string{"mednli_2018:pair-classification:" + format, "n2c2_2019:regression:" + format, "i2b2_2010:ner:" + format}
			if !slices.Equal(kinds, want) || !tok.LowerCase() {
				t.Errorf("tasks %v lower_case %v, want %v true", kinds, tok.LowerCase(), want)
			}
			if h := m.Head("i2b2_2010"); len(h.Spec.Labels) != 14 || h.Spec.Labels[3] != mtl.ReferenceSubwordLabel || h.Spec.MaxLength != g.MaxLen {
				t.Errorf("ner spec %+v", h.Spec)
			}
			checkParity(t, mtl.NewExtractor(m, tok), g)
		})
	}
}

// TestDecodersAgreeByConstruction feeds both decoders tags on which they agree by
// construction (every entity's words and sub-words carry one type, entities separated by O)
// and checks they report the same entities; then a BERT_TOKEN at a word's first sub-word:
// strict decoding reads the word as O, the reference reports its later sub-words alone.
func TestDecodersAgreeByConstruction(t *testing.T) {
	m, tok, _, err := Load(releasedDirs[0])
	if err != nil {
		t.Fatal(err)
	}
	text := "History of hypertension, on metoprolol daily and chest pain; CT scan negative."
	// word -> tag of its sub-words (first, then the rest); words not listed are O.
	wordTags := map[string][2]string{
		"hypertension": {"U-problem", "I-problem"},
		"metoprolol":   {"B-treatment", "I-treatment"},
		"daily":        {"L-treatment", "L-treatment"},
		"chest":        {"B-problem", ""}, "pain": {"L-problem", ""},
		"ct": {"B-test", ""}, "scan": {"I-test", ""}, "negative": {"L-test", "I-test"},
	}
	labels := m.Head("i2b2_2010").Spec.Labels
	fake := func(ex *mtl.Extractor, specials bool, firstSubTag map[string]string) (mtl.Result, *mtl.NotePlan) {
		p, err := ex.PlanNote(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs := p.Sequences()
		if len(seqs) != 1 {
			t.Fatalf("%d sequences", len(seqs))
		}
		L := len(labels)
		logits := make([]float32, len(seqs[0].IDs)*L)
		for q := range seqs[0].IDs {
			tag := mtl.ReferenceSubwordLabel
			sub := q
			if specials {
				sub = q - 1
			}
			if sub >= 0 && sub < len(p.Doc.Tokens) {
				tk := p.Doc.Tokens[sub]
				w := p.Doc.Words[p.Doc.WordOf[sub]]
				word := strings.ToLower(text[w.Start:w.End])
				tag = "O"
				if wt, ok := wordTags[word]; ok {
					tag = wt[0]
					if tk.Start != w.Start {
						tag = wt[1]
					}
				}
				if ft, ok := firstSubTag[word]; ok && tk.Start == w.Start {
					tag = ft
				}
			}
			logits[q*L+slices.Index(labels, tag)] = 5
		}
		res, err := p.Decode([]mtl.Outputs{{"i2b2_2010": logits}})
		if err != nil {
			t.Fatal(err)
		}
		return res, p
	}
	spans := func(r mtl.Result) []string {
		var out []string
		for _, e := range r.Entities["i2b2_2010"] {
			out = append(out, e.Type+":"+e.Text)
		}
		return out
	}
	strict := mtl.NewExtractor(m, tok)
	ref := mtl.NewExtractor(m, tok)
	ref.Decoding = mtl.DecodeReference
	want := []string{"problem:hypertension", "treatment:metoprolol daily", "problem:chest pain", "test:CT scan negative"}
	for _, tc := range []struct {
		name              string
		first             map[string]string
		wantStrict, wantR []string
	}{
		{"well-formed", nil, want, want},
		{"BERT_TOKEN at a first sub-word", map[string]string{"hypertension": mtl.ReferenceSubwordLabel}, want[1:],
			append([]string{"problem:tension"}, want[1:]...)},
	} {
		rs, _ := fake(strict, true, tc.first)
		rr, _ := fake(ref, false, tc.first)
		if got := spans(rs); !slices.Equal(got, tc.wantStrict) {
			t.Errorf("%s: strict %v, want %v", tc.name, got, tc.wantStrict)
		}
		if got := spans(rr); !slices.Equal(got, tc.wantR) {
			t.Errorf("%s: reference %v, want %v", tc.name, got, tc.wantR)
		}
	}
}

// TestImportExportBitForBit imports the legacy-format release, exports the import, and
// compares: every tensor of the export (encoder and heads) equals the release's bit for bit,
// the head JSON files equal the reference's own json.dumps byte for byte, and the export
// loads back with the same parity.
func TestImportExportBitForBit(t *testing.T) {
	for _, src := range releasedDirs {
		t.Run(filepath.Base(src), func(t *testing.T) {
			tmp := t.TempDir()
			imp, exp := filepath.Join(tmp, "imported"), filepath.Join(tmp, "exported")
			rep, err := Import(src, imp)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Tasks) != 3 {
				t.Fatalf("report: %+v", rep)
			}
			for _, f := range []string{mtl.TasksFile, mtl.HeadsFile, mtl.ChecksumsFile, mtl.TokenizerConfig} {
				if _, err := os.Stat(filepath.Join(imp, f)); err != nil {
					t.Error(err)
				}
			}
			if IsReleased(imp) {
				t.Error("an mtbert checkpoint detected as the reference layout")
			}
			m, tok, err := mtl.LoadCheckpoint(imp, bert.DefaultLowerCase)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Export(exp, m, tok); err != nil {
				t.Fatal(err)
			}
			if _, err := Export(exp, m, tok); err == nil {
				t.Error("export over an existing folder: no error")
			}
			sameTensors(t, filepath.Join(src, bert.TorchBinFile), filepath.Join(exp, bert.TorchBinFile))
			entries, _ := os.ReadDir(src)
			n := 0
			for _, e := range entries {
				switch filepath.Ext(e.Name()) {
				case ".pt":
					sameTensors(t, filepath.Join(src, e.Name()), filepath.Join(exp, e.Name()))
					n++
				case ".json":
					if e.Name() == bert.ConfigFile {
						continue
					}
					a, _ := os.ReadFile(filepath.Join(src, e.Name()))
					b, err := os.ReadFile(filepath.Join(exp, e.Name()))
					if err != nil || !bytes.Equal(a, b) {
						t.Errorf("%s: exported\n%s\nreference wrote\n%s", e.Name(), b, a)
					}
				}
			}
			if n != 3 {
				t.Errorf("%d head files compared", n)
			}
			m2, tok2, _, err := Load(exp)
			if err != nil {
				t.Fatal(err)
			}
			checkParity(t, mtl.NewExtractor(m2, tok2), readGolden(t))
		})
	}
}

// sameTensors compares two torch.save files' tensors bit for bit (a position_ids buffer,
// which BertModel does not need, is ignored).
func sameTensors(t *testing.T, a, b string) {
	t.Helper()
	ta, err := bert.ReadTorchBin(a)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := bert.ReadTorchBin(b)
	if err != nil {
		t.Fatal(err)
	}
	delete(ta, "embeddings.position_ids")
	if len(ta) != len(tb) {
		t.Errorf("%s: %d tensors, %s: %d", a, len(ta), b, len(tb))
	}
	for k, x := range ta {
		y, ok := tb[k]
		if !ok || x.DType != y.DType || !slices.Equal(x.Shape, y.Shape) || !bytes.Equal(x.Data, y.Data) {
			t.Errorf("%s: tensor %q differs in %s", a, k, b)
		}
	}
}

// torchPython returns a python3 that imports torch, or skips the test saying why.
func torchPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import torch").Run() == nil {
			return py
		}
	}
	t.Skip("no python3 with torch (apt-get install python3-torch): the export is not checked against the reference's loader")
	return ""
}

// TestExportLoadsInReference exports the imported release and loads the export with
// testdata/load_export.py, which mirrors the reference's from_pretrained (BertModel, then
// each head's strict load_state_dict of torch.load(weights_only=True)): its float32 logits
// on the golden inputs equal mtbert's and the reference's within 1e-5.
func TestExportLoadsInReference(t *testing.T) {
	py := torchPython(t)
	m, tok, _, err := Load(releasedDirs[1])
	if err != nil {
		t.Fatal(err)
	}
	exp := filepath.Join(t.TempDir(), "exported")
	if _, err := Export(exp, m, tok); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(exp)
	cmd := exec.Command(py, "-B", "load_export.py", abs, "golden.json")
	cmd.Dir = "testdata"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("load_export.py: %v\n%s", err, stderr.String())
	}
	var got struct {
		Notes []map[string][][]float64 `json:"notes"`
		Pairs []map[string][]float64   `json:"pairs"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	g := readGolden(t)
	if len(got.Notes) != len(g.Notes) || len(got.Pairs) != len(g.Pairs) {
		t.Fatalf("python returned %d notes, %d pairs", len(got.Notes), len(got.Pairs))
	}
	to32 := func(x []float64) []float32 {
		out := make([]float32, len(x))
		for i, v := range x {
			out[i] = float32(v)
		}
		return out
	}
	for i, n := range g.Notes {
		for task, chunks := range n.Logits {
			for c := range chunks {
				closeTo(t, "python "+task, to32(got.Notes[i][task][c]), chunks[c])
			}
		}
	}
	for i, p := range g.Pairs {
		for task, want := range p.Logits {
			closeTo(t, "python "+task, to32(got.Pairs[i][task]), want)
		}
	}
}

// copyDir copies a flat folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestLoadErrorsNameTheFile: an unknown head class, a hidden_size that disagrees with the
// encoder, and a .pt with a missing key are errors naming the file and the problem.
func TestLoadErrorsNameTheFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(dir string) error
		wants []string
	}{
		{"unknown head class", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "MaskedLMHead_mimic.json"), []byte(`{"head_name": "MaskedLMHead", "head_task": "mimic"}`), 0o644)
		}, []string{"MaskedLMHead_mimic.json", `unknown head class "MaskedLMHead"`, "CLSClassificationHead"}},
		{"hidden size", func(dir string) error {
			p := filepath.Join(dir, "CLSRegressionHead_n2c2_2019.json")
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, bytes.Replace(b, []byte(`"hidden_size": 32`), []byte(`"hidden_size": 768`), 1), 0o644)
		}, []string{"CLSRegressionHead_n2c2_2019.json", "hidden_size 768 disagrees with the encoder's hidden_size 32"}},
		{"missing key", func(dir string) error {
			w := nn.F32Tensor([]int{3, 32}, make([]float32, 96))
			return bert.SaveTorchZip(filepath.Join(dir, "CLSClassificationHead_mednli_2018.pt"), []string{"classifier.weight"}, map[string]nn.SafeTensor{"classifier.weight": w})
		}, []string{"CLSClassificationHead_mednli_2018.pt", `missing key "classifier.bias"`}},
		{"wrong label count", func(dir string) error {
			w := nn.F32Tensor([]int{2, 32}, make([]float32, 64))
			b := nn.F32Tensor([]int{2}, make([]float32, 2))
			return bert.SaveTorchZip(filepath.Join(dir, "CLSClassificationHead_mednli_2018.pt"), []string{"classifier.weight", "classifier.bias"}, map[string]nn.SafeTensor{"classifier.weight": w, "classifier.bias": b})
		}, []string{"CLSClassificationHead_mednli_2018.pt", `"classifier.weight" has shape [2 32], want [3 32]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, releasedDirs[1])
			if err := tc.edit(dir); err != nil {
				t.Fatal(err)
			}
			_, _, _, err := Load(dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
