package bert

import (
	"encoding/json"
	"fmt"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/tensor"
)

// Input is one line of `mtbert encode`: a text, a text pair, or explicit model inputs.
type Input struct {
	Text          *string `json:"text"`
	TextA         *string `json:"text_a"`
	TextB         *string `json:"text_b"`
	InputIDs      []int   `json:"input_ids"`
	TokenTypeIDs  []int   `json:"token_type_ids"`
	AttentionMask []int   `json:"attention_mask"`
}

// ParseInput decodes one JSON line and turns it into an Encoding with tok (truncated to
// maxLen sub-words). Exactly one of text, text_a/text_b or input_ids must be given; explicit
// ids are checked against the vocabulary size.
func ParseInput(line []byte, tok *Tokenizer, maxLen int) (Encoding, error) {
	var in Input
	if err := json.Unmarshal(line, &in); err != nil {
		return Encoding{}, err
	}
	kinds := 0
	if in.Text != nil {
		kinds++
	}
	if in.TextA != nil || in.TextB != nil {
		kinds++
	}
	if in.InputIDs != nil {
		kinds++
	}
	if kinds != 1 {
		return Encoding{}, fmt.Errorf(`want exactly one of "text", "text_a"+"text_b" or "input_ids"`)
	}
	switch {
	case in.Text != nil:
		return tok.Encode(*in.Text, maxLen), nil
	case in.InputIDs != nil:
		n := len(in.InputIDs)
		if n == 0 {
			return Encoding{}, fmt.Errorf("input_ids is empty")
		}
		if maxLen > 0 && n > maxLen {
			return Encoding{}, fmt.Errorf("input_ids has %d ids, more than the maximum length %d", n, maxLen)
		}
		e := Encoding{IDs: in.InputIDs, TypeIDs: in.TokenTypeIDs, AttentionMask: in.AttentionMask}
		if e.TypeIDs == nil {
			e.TypeIDs = make([]int, n)
		}
		if e.AttentionMask == nil {
			e.AttentionMask = make([]int, n)
			for i := range e.AttentionMask {
				e.AttentionMask[i] = 1
			}
		}
		if len(e.TypeIDs) != n || len(e.AttentionMask) != n {
			return Encoding{}, fmt.Errorf("input_ids has %d ids, token_type_ids %d, attention_mask %d", n, len(e.TypeIDs), len(e.AttentionMask))
		}
		for i, id := range e.IDs {
			if id < 0 || id >= tok.Vocab().Len() {
				return Encoding{}, fmt.Errorf("input_ids[%d] = %d outside the vocabulary of %d", i, id, tok.Vocab().Len())
			}
		}
		for i, m := range e.AttentionMask {
			if m != 0 && m != 1 {
				return Encoding{}, fmt.Errorf("attention_mask[%d] = %d, want 0 or 1", i, m)
			}
		}
		return e, nil
	default:
		if in.TextA == nil || in.TextB == nil {
			return Encoding{}, fmt.Errorf(`a pair needs both "text_a" and "text_b"`)
		}
		return tok.EncodePair(*in.TextA, *in.TextB, maxLen), nil
	}
}

// PadBatch lays encodings out as a batch padded with padID to the longest (T = that length).
func PadBatch(encs []Encoding, padID int) Batch {
	t := 0
	for _, e := range encs {
		t = max(t, len(e.IDs))
	}
	b := Batch{B: len(encs), T: t, IDs: make([]int32, len(encs)*t), TypeIDs: make([]int32, len(encs)*t), Mask: make([]float32, len(encs)*t)}
	for i, e := range encs {
		for j := 0; j < t; j++ {
			k := i*t + j
			if j < len(e.IDs) {
				b.IDs[k], b.TypeIDs[k], b.Mask[k] = int32(e.IDs[j]), int32(e.TypeIDs[j]), float32(e.AttentionMask[j])
			} else {
				b.IDs[k] = int32(padID)
			}
		}
	}
	return b
}

// Embed runs the encoder in inference mode and returns the last hidden state (B, T, H) and,
// when the model has a pooler, the pooled output (B, H), as fresh slices.
func (m *Model) Embed(b Batch) (last, pooled []float32, err error) {
	tp := autograd.NoGrad()
	defer tp.Reset()
	out, err := m.Infer(tp, b)
	if err != nil {
		return nil, nil, err
	}
	last = out.Last.Value.ToHost()
	if out.Pooled != nil {
		pooled = out.Pooled.Value.ToHost()
	}
	return last, pooled, nil
}

// Encoder runs a BERT encoder in inference mode. Encode returns the last hidden state Last
// (B, T, H) and, when the model has a pooler, Pooled (B, H), as constants on no tape that
// the caller owns; Hidden is not filled. *Model computes it on the CPU; package bert/cudabert
// has one for a CUDA device, so that callers such as the multitask layer import no CUDA.
type Encoder interface {
	Encode(b Batch) (*Output, error)
}

var _ Encoder = (*Model)(nil)

// Encode is Embed with the results as constants: the CPU's Encoder.
func (m *Model) Encode(b Batch) (*Output, error) {
	last, pooled, err := m.Embed(b)
	if err != nil {
		return nil, err
	}
	H := m.Cfg.HiddenSize
	out := &Output{Last: autograd.Constant(tensor.FromSlice(last, b.B, b.T, H))}
	if pooled != nil {
		out.Pooled = autograd.Constant(tensor.FromSlice(pooled, b.B, H))
	}
	return out, nil
}
