package bert

import (
	"math"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/nn"
)

// fillVocab is the vocabulary of the Fill tests: the five specials, then words.
var fillVocab = []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "patient", "denies", "chest", "pain", "fever", "and", "cough", ".", "no", "mg"}

// fillModel returns a tiny encoder (2 layers, hidden 32, max 16 positions, no dropout) over
// fillVocab, with an MLM head when head is set, and its (lower-casing) tokenizer.
func fillModel(t *testing.T, head bool) (*Model, *Tokenizer) {
	t.Helper()
	v, err := ReadVocab(strings.NewReader(strings.Join(fillVocab, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.NumAttentionHeads, cfg.IntermediateSize = v.Len(), 32, 2, 4, 64
	cfg.MaxPositionEmbeddings, cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = 16, 0, 0
	m, err := New(cfg, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if head {
		if _, err := m.AddMLMHead(4); err != nil {
			t.Fatal(err)
		}
	}
	return m, NewTokenizer(v, TokenizerOptions{LowerCase: true})
}

// fillID returns the id of a word of fillVocab.
func fillID(t *testing.T, tok *Tokenizer, w string) int {
	t.Helper()
	id, ok := tok.Vocab().ID(w)
	if !ok {
		t.Fatalf("%q not in the vocabulary", w)
	}
	return id
}

// TestFillKnownDistribution zeroes the head's LayerNorm (so the transform outputs 0 and the
// logits are cls.predictions.bias exactly) and sets the bias: "fever" 5, "chest" and "pain" 3
// (a tie, broken by id), the rest 0. Each [MASK] must get exactly that softmax, sorted, with
// its byte offset; k is capped at the vocabulary size.
func TestFillKnownDistribution(t *testing.T) {
	m, tok := fillModel(t, true)
	h := m.MLMHead()
	h.LN.Gamma.Value.Fill(0)
	h.LN.Beta.Value.Fill(0)
	bias := h.Bias.Value.Data()
	for i := range bias {
		bias[i] = 0
	}
	fever, chest, pain := fillID(t, tok, "fever"), fillID(t, tok, "chest"), fillID(t, tok, "pain")
	bias[fever], bias[chest], bias[pain] = 5, 3, 3
	V := len(fillVocab)
	z := math.Exp(5) + 2*math.Exp(3) + float64(V-3)
	text := "The patient denies [MASK] and [MASK]."
	fills, err := m.Fill(tok, text, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(fills) != 2 {
		t.Fatalf("%d masks filled, want 2", len(fills))
	}
	wantOff := []int{strings.Index(text, "[MASK]"), strings.LastIndex(text, "[MASK]")}
	wantTok := []string{"fever", "chest", "pain"}
	wantProb := []float64{math.Exp(5) / z, math.Exp(3) / z, math.Exp(3) / z}
	for i, f := range fills {
		if f.Offset != wantOff[i] || text[f.Offset:f.Offset+len(MaskToken)] != MaskToken {
			t.Errorf("mask %d at offset %d, want %d", i, f.Offset, wantOff[i])
		}
		if len(f.Predictions) != 3 {
			t.Fatalf("mask %d: %d predictions, want 3", i, len(f.Predictions))
		}
		sum := 0.0
		for j, p := range f.Predictions {
			sum += p.Prob
			if p.Token != wantTok[j] || p.ID != fillID(t, tok, wantTok[j]) || math.Abs(p.Prob-wantProb[j]) > 1e-6 {
				t.Errorf("mask %d prediction %d: %+v, want %s with %.6f", i, j, p, wantTok[j], wantProb[j])
			}
		}
		if sum > 1+1e-9 {
			t.Errorf("mask %d: probabilities sum to %g", i, sum)
		}
	}
	all, err := m.Fill(tok, "[MASK]", 1000)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for j, p := range all[0].Predictions {
		sum += p.Prob
		if j > 0 && p.Prob > all[0].Predictions[j-1].Prob {
			t.Errorf("predictions not sorted at %d: %+v after %+v", j, p, all[0].Predictions[j-1])
		}
		if j > 0 && p.Prob == all[0].Predictions[j-1].Prob && p.ID < all[0].Predictions[j-1].ID {
			t.Errorf("tie not broken by id at %d", j)
		}
	}
	if len(all[0].Predictions) != V || math.Abs(sum-1) > 1e-6 || all[0].Offset != 0 {
		t.Errorf("k capped to %d predictions (want %d) summing to %g, offset %d", len(all[0].Predictions), V, sum, all[0].Offset)
	}
}

// TestFillMemorised trains the tiny model on one sentence, each word in turn masked, for 300
// AdamW steps; Fill must then restore each word with the top prediction.
func TestFillMemorised(t *testing.T) {
	m, tok := fillModel(t, true)
	words := []string{"patient", "denies", "chest", "pain", "and", "cough"}
	enc := tok.Encode(strings.Join(words, " "), 0)
	T := enc.Len()
	ids := make([]int32, T)
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	mask := int32(tok.Vocab().Specials().Mask)
	opt := nn.NewAdamW(m.Params.List(), 3e-3, 0)
	tp := autograd.NewTape()
	for s := 0; s < 300; s++ {
		j := 1 + s%len(words)
		in := append([]int32(nil), ids...)
		labels := make([]int32, T)
		for i := range labels {
			labels[i] = autograd.IgnoreIndex
		}
		in[j], labels[j] = mask, ids[j]
		loss, _, err := m.MLMLoss(tp, Batch{B: 1, T: T, IDs: in}, labels, true)
		if err != nil {
			t.Fatal(err)
		}
		tp.Backward(loss)
		opt.Step()
		opt.ZeroGrad()
		tp.Reset()
	}
	for j, w := range words {
		masked := append([]string(nil), words...)
		masked[j] = MaskToken
		fills, err := m.Fill(tok, strings.Join(masked, " "), 2)
		if err != nil {
			t.Fatal(err)
		}
		p := fills[0].Predictions
		if p[0].Token != w || p[0].Prob < p[1].Prob || p[0].Prob+p[1].Prob > 1+1e-9 {
			t.Errorf("%q: predictions %+v, want %q first", strings.Join(masked, " "), p, w)
		}
	}
}

// TestFillErrors checks each refusal names its cause.
func TestFillErrors(t *testing.T) {
	bare, tok := fillModel(t, false)
	if _, err := bare.Fill(tok, "the [MASK]", 3); err == nil || !strings.Contains(err.Error(), "no MLM head") {
		t.Errorf("no head: %v", err)
	}
	m, tok := fillModel(t, true)
	if _, err := m.Fill(tok, "the patient denies pain", 3); err == nil || !strings.Contains(err.Error(), "no [MASK]") {
		t.Errorf("no mask: %v", err)
	}
	if _, err := m.Fill(tok, "", 3); err == nil || !strings.Contains(err.Error(), "no [MASK]") {
		t.Errorf("empty text: %v", err)
	}
	long := "[MASK]" + strings.Repeat(" pain", 14) // 15 words + [CLS] [SEP] = 17 > 16
	if _, err := m.Fill(tok, long, 3); err == nil || !strings.Contains(err.Error(), "17 sub-words") || !strings.Contains(err.Error(), "max_position_embeddings 16") {
		t.Errorf("too long: %v", err)
	}
	if _, err := m.Fill(tok, "[MASK]"+strings.Repeat(" pain", 13), 3); err != nil {
		t.Errorf("16 sub-words: %v", err)
	}
	if _, err := m.Fill(tok, "[MASK]", 0); err == nil || !strings.Contains(err.Error(), "k is 0") {
		t.Errorf("k 0: %v", err)
	}
}
