package bert

import (
	"fmt"
	"strings"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/tensor"
)

// Masking is BERT's dynamic masking for masked-language-model training. Each unit (a
// non-special token, or with WholeWord a whole word: a token and the "##" pieces that follow
// it) is selected independently with probability Prob; every token of a selected unit gets its
// original id as label and, independently per token, becomes MaskID with probability MaskFrac,
// a random non-special id with probability RandomFrac, and is kept otherwise. Special tokens
// are never selected and never drawn as random replacements; unselected tokens get the label
// autograd.IgnoreIndex.
//
// The draw is a pure function of (Seed, key): passing, say, the global index of a sequence as
// key gives a new mask every epoch (dynamic masking) and the same mask again after a resume.
type Masking struct {
	Prob, MaskFrac, RandomFrac float64
	WholeWord                  bool
	MaskID                     int32
	Seed                       uint64

	special  []bool // by id
	cont     []bool // by id: a "##" continuation piece
	nonSpec  []int32
	vocabLen int
}

// NewMasking returns the standard rule (15%; 80% [MASK], 10% random, 10% kept) for vocabulary
// v: its [PAD], [UNK], [CLS], [SEP] and [MASK] are the special tokens (as Hugging Face's
// all_special_ids), and tokens starting with "##" are continuation pieces for whole-word
// masking. The vocabulary must have [MASK].
func NewMasking(v *Vocab, seed uint64, wholeWord bool) (*Masking, error) {
	sp := v.Specials()
	if sp.Mask < 0 {
		return nil, fmt.Errorf("bert: vocabulary %s has no [MASK] token", v.Name())
	}
	var specials []int32
	for _, id := range []int{sp.Pad, sp.Unk, sp.Cls, sp.Sep, sp.Mask} {
		if id >= 0 {
			specials = append(specials, int32(id))
		}
	}
	cont := make([]bool, v.Len())
	for i := range cont {
		cont[i] = strings.HasPrefix(v.Token(i), "##")
	}
	return NewMaskingIDs(v.Len(), int32(sp.Mask), specials, cont, seed, wholeWord)
}

// NewMaskingIDs is NewMasking for a vocabulary given by its size, [MASK] id, special ids and,
// for whole-word masking, which ids are continuation pieces (nil: none).
func NewMaskingIDs(vocabSize int, maskID int32, specials []int32, continuation []bool, seed uint64, wholeWord bool) (*Masking, error) {
	if maskID < 0 || int(maskID) >= vocabSize {
		return nil, fmt.Errorf("bert: [MASK] id %d outside vocabulary of %d", maskID, vocabSize)
	}
	if continuation != nil && len(continuation) != vocabSize {
		return nil, fmt.Errorf("bert: %d continuation flags for a vocabulary of %d", len(continuation), vocabSize)
	}
	mk := &Masking{Prob: 0.15, MaskFrac: 0.8, RandomFrac: 0.1, WholeWord: wholeWord, MaskID: maskID, Seed: seed,
		special: make([]bool, vocabSize), cont: continuation, vocabLen: vocabSize}
	if mk.cont == nil {
		mk.cont = make([]bool, vocabSize)
	}
	mk.special[maskID] = true
	for _, id := range specials {
		if id < 0 || int(id) >= vocabSize {
			return nil, fmt.Errorf("bert: special id %d outside vocabulary of %d", id, vocabSize)
		}
		mk.special[id] = true
	}
	for id, s := range mk.special {
		if !s {
			mk.nonSpec = append(mk.nonSpec, int32(id))
		}
	}
	if len(mk.nonSpec) == 0 {
		return nil, fmt.Errorf("bert: every id of the vocabulary is special: nothing to mask")
	}
	return mk, nil
}

// Mask returns the masked inputs and the labels for ids (one sequence, or a flat B×T batch
// whose rows start with a special token such as [CLS] or end in [PAD], so no word spans two
// rows). ids is not modified. An id outside the vocabulary is an error.
func (mk *Masking) Mask(ids []int32, key uint64) (inputs, labels []int32, err error) {
	inputs, labels = make([]int32, len(ids)), make([]int32, len(ids))
	if err := mk.maskInto(inputs, labels, ids, key); err != nil {
		return nil, nil, err
	}
	return inputs, labels, nil
}

// maskInto writes the masked ids into inputs and the labels into labels for ids (the three of
// one length; inputs must not alias ids: word boundaries are read from the original ids).
func (mk *Masking) maskInto(inputs, labels, ids []int32, key uint64) error {
	for i, id := range ids {
		if id < 0 || int(id) >= mk.vocabLen {
			return fmt.Errorf("bert: masking: id %d at position %d outside vocabulary of %d", id, i, mk.vocabLen)
		}
	}
	g := tensor.NewRNG(kernels.SplitMix64(mk.Seed ^ kernels.SplitMix64(key)))
	copy(inputs, ids)
	for i := range labels {
		labels[i] = autograd.IgnoreIndex
	}
	selected := false
	for i, id := range ids {
		if mk.special[id] {
			selected = false
			continue
		}
		// A unit starts at every non-special token, or with whole words at one that is not a
		// continuation of the word before it.
		if !mk.WholeWord || i == 0 || !mk.cont[id] || mk.special[ids[i-1]] {
			selected = float64(g.Float32()) < mk.Prob
		}
		if !selected {
			continue
		}
		labels[i] = id
		switch r := float64(g.Float32()); {
		case r < mk.MaskFrac:
			inputs[i] = mk.MaskID
		case r < mk.MaskFrac+mk.RandomFrac:
			inputs[i] = mk.nonSpec[g.IntN(len(mk.nonSpec))]
		}
	}
	return nil
}

// MaskBatch masks a padded batch (each row with key·B + row, so a row's mask does not depend
// on the batch it is in when keys count sequences) and returns the masked batch (type ids and
// attention mask shared with b) and the labels (B·T).
func (mk *Masking) MaskBatch(b Batch, key uint64) (Batch, []int32, error) {
	out := b
	out.IDs = append([]int32(nil), b.IDs...)
	labels := make([]int32, len(b.IDs))
	if err := mk.MaskRows(out.IDs, labels, b.B, b.T, func(r int) uint64 { return key*uint64(b.B) + uint64(r) }); err != nil {
		return Batch{}, nil, err
	}
	return out, labels, nil
}

// MaskRows masks the B rows of T ids in place, row r with key(r) (see Mask), writing their
// labels into labels (B·T).
func (mk *Masking) MaskRows(ids, labels []int32, B, T int, key func(r int) uint64) error {
	if len(ids) != B*T || len(labels) != B*T {
		return fmt.Errorf("bert: masking: %d ids and %d labels for %d rows of %d", len(ids), len(labels), B, T)
	}
	row := make([]int32, T)
	for r := 0; r < B; r++ {
		copy(row, ids[r*T:(r+1)*T])
		if err := mk.maskInto(ids[r*T:(r+1)*T], labels[r*T:(r+1)*T], row, key(r)); err != nil {
			return err
		}
	}
	return nil
}
