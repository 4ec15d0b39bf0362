package bert

import (
	"fmt"
	"math"

	"github.com/mtbert/mtbert/autograd"
)

// FillPrediction is one candidate for a [MASK]: a vocabulary entry and its softmax probability.
type FillPrediction struct {
	ID    int
	Token string
	Prob  float64
}

// MaskFill is the prediction at one [MASK] of a text: Offset is the byte offset of the [MASK]
// in the text, Predictions the top candidates, most probable first (equal logits by id).
type MaskFill struct {
	Offset      int
	Predictions []FillPrediction
}

// Fill encodes text (no truncation), runs the encoder without gradients and returns, for each
// [MASK] of the text in order, its k most probable vocabulary entries under the MLM head's
// softmax (k is capped at the vocabulary size). The head's logits are computed only at the
// [MASK] positions. It fails when the model has no MLM head, when the text holds no [MASK],
// and when the text is longer than max_position_embeddings after tokenization.
func (m *Model) Fill(tok *Tokenizer, text string, k int) ([]MaskFill, error) {
	h := m.MLMHead()
	if h == nil {
		return nil, fmt.Errorf("bert: fill: the model has no MLM head (load it with LoadMaskedLM)")
	}
	if k < 1 {
		return nil, fmt.Errorf("bert: fill: k is %d, want at least 1", k)
	}
	maskID := tok.Vocab().Specials().Mask
	if maskID < 0 {
		return nil, fmt.Errorf("bert: fill: the vocabulary has no %s token", MaskToken)
	}
	enc := tok.Encode(text, 0)
	var positions []int32
	for i, id := range enc.IDs {
		if id == maskID && enc.SequenceIDs[i] >= 0 {
			positions = append(positions, int32(i))
		}
	}
	if len(positions) == 0 {
		return nil, fmt.Errorf("bert: fill: no %s in the text", MaskToken)
	}
	n := enc.Len()
	if n > m.Cfg.MaxPositionEmbeddings {
		return nil, fmt.Errorf("bert: fill: the text is %d sub-words after tokenization (with [CLS] and [SEP]), longer than max_position_embeddings %d", n, m.Cfg.MaxPositionEmbeddings)
	}
	b := Batch{B: 1, T: n, IDs: make([]int32, n), TypeIDs: make([]int32, n)}
	for i := range enc.IDs {
		b.IDs[i], b.TypeIDs[i] = int32(enc.IDs[i]), int32(enc.TypeIDs[i])
	}
	tp := autograd.NoGrad()
	defer tp.Reset()
	out, err := m.Forward(tp, b, false)
	if err != nil {
		return nil, fmt.Errorf("bert: fill: %w", err)
	}
	V := m.Cfg.VocabSize
	k = min(k, V)
	logits := h.Logits(tp, out.Last, positions).Value.Data()
	fills := make([]MaskFill, len(positions))
	for i, p := range positions {
		row := logits[i*V : (i+1)*V]
		fills[i] = MaskFill{Offset: enc.Offsets[p][0], Predictions: topK(row, k, tok.Vocab())}
	}
	return fills, nil
}

// topK returns the k entries of row with the largest logits (equal logits: smaller id first)
// with their softmax probabilities over the whole row.
func topK(row []float32, k int, v *Vocab) []FillPrediction {
	mx := math.Inf(-1)
	for _, x := range row {
		mx = max(mx, float64(x))
	}
	var sum float64
	for _, x := range row {
		sum += math.Exp(float64(x) - mx)
	}
	// Insertion into a sorted list of at most k ids: O(V·k), with k small.
	best := make([]int, 0, k)
	better := func(a, b int) bool { return row[a] > row[b] || (row[a] == row[b] && a < b) }
	for id := range row {
		if len(best) == k && !better(id, best[k-1]) {
			continue
		}
		if len(best) < k {
			best = append(best, id)
		} else {
			best[k-1] = id
		}
		for j := len(best) - 1; j > 0 && better(best[j], best[j-1]); j-- {
			best[j], best[j-1] = best[j-1], best[j]
		}
	}
	out := make([]FillPrediction, len(best))
	for i, id := range best {
		out[i] = FillPrediction{ID: id, Token: v.Token(id), Prob: math.Exp(float64(row[id])-mx) / sum}
	}
	return out
}
