package bert

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/tensor"
)

// within5Sigma reports whether k successes in n trials are within 5 standard deviations of
// a Binomial(n, p) mean (a false alarm about once in 1.7 million runs per check; the draws
// are seeded, so the test is deterministic anyway).
func within5Sigma(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	t.Logf("%s: %d of %d = %.4f, expected %.4f ± %.4f (5σ)", what, k, n, float64(k)/float64(n), p, 5*sd/float64(n))
	if math.Abs(float64(k)-mean) > 5*sd {
		t.Errorf("%s: %d of %d, expected %.1f ± %.1f (5σ)", what, k, n, mean, 5*sd)
	}
}

// corpus returns rows of T ids: [CLS], random ids in [5, V), [SEP], then [PAD] to T.
func corpus(rows, T, V int, seed uint64) []int32 {
	g := tensor.NewRNG(seed)
	ids := make([]int32, rows*T)
	for r := 0; r < rows; r++ {
		n := T - g.IntN(T/4) // real length
		row := ids[r*T : (r+1)*T]
		row[0], row[n-1] = 2, 3
		for j := 1; j < n-1; j++ {
			row[j] = int32(5 + g.IntN(V-5))
		}
	}
	return ids
}

// TestMaskingStatistics masks 800 rows of up to 128 tokens (≈ 88,000 maskable tokens) with the
// standard rule and checks each rate against its binomial distribution within 5σ: selected
// 15% of non-special tokens, of those [MASK] 80%, a random id 10%·(1 − 1/995) and the original
// kept 10% + 10%/995 (a random draw can give the original back). Specials are never selected
// nor drawn; labels are the original id exactly where selected.
func TestMaskingStatistics(t *testing.T) {
	const V, T, rows = 1000, 128, 800
	mk, err := NewMaskingIDs(V, 4, []int32{0, 1, 2, 3}, nil, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	ids := corpus(rows, T, V, 1)
	orig := slices.Clone(ids)
	in, labels, err := mk.Mask(ids, 42)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, orig) {
		t.Fatal("Mask modified its input")
	}
	var cand, sel, masked, random, kept int
	for i, id := range ids {
		special := id < 5
		if !special {
			cand++
		}
		if labels[i] == autograd.IgnoreIndex {
			if in[i] != id {
				t.Fatalf("position %d not selected but changed from %d to %d", i, id, in[i])
			}
			continue
		}
		if special || labels[i] != id {
			t.Fatalf("position %d (id %d) labelled %d", i, id, labels[i])
		}
		sel++
		switch {
		case in[i] == 4:
			masked++
		case in[i] == id:
			kept++
		case in[i] < 5:
			t.Fatalf("special id %d drawn as a random replacement", in[i])
		default:
			random++
		}
	}
	within5Sigma(t, "selected", sel, cand, 0.15)
	within5Sigma(t, "[MASK]", masked, sel, 0.8)
	within5Sigma(t, "random", random, sel, 0.1*(1-1.0/995))
	within5Sigma(t, "kept", kept, sel, 0.1+0.1/995)

	// Deterministic in (Seed, key); a new key or seed gives a new mask.
	in2, labels2, _ := mk.Mask(ids, 42)
	if !slices.Equal(in, in2) || !slices.Equal(labels, labels2) {
		t.Fatal("same seed and key gave a different mask")
	}
	in3, _, _ := mk.Mask(ids, 43)
	mk2, _ := NewMaskingIDs(V, 4, []int32{0, 1, 2, 3}, nil, 8, false)
	in4, _, _ := mk2.Mask(ids, 42)
	if slices.Equal(in, in3) || slices.Equal(in, in4) {
		t.Fatal("a new key or seed gave the same mask")
	}
	if _, _, err := mk.Mask([]int32{2, 1000}, 0); err == nil || !strings.Contains(err.Error(), "id 1000") {
		t.Fatalf("out-of-vocabulary id: %v", err)
	}
}

// TestWholeWordMasking builds words of 1–4 pieces (ids ≥ 500 are "##" pieces) and checks that
// every word is masked whole or not at all, that the word rate is 15% within 5σ, and that a
// "##" piece right after a special token is a word of its own.
func TestWholeWordMasking(t *testing.T) {
	const V, T, rows = 1000, 128, 400
	cont := make([]bool, V)
	for i := 500; i < V; i++ {
		cont[i] = true
	}
	mk, err := NewMaskingIDs(V, 4, []int32{0, 1, 2, 3}, cont, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	g := tensor.NewRNG(9)
	ids := make([]int32, rows*T)
	var words [][2]int // [start, end) of each word
	for r := 0; r < rows; r++ {
		row := ids[r*T : (r+1)*T]
		row[0] = 2
		j := 1
		if r%10 == 0 { // an orphan piece right after [CLS]
			row[1] = int32(500 + g.IntN(500))
			words = append(words, [2]int{r*T + 1, r*T + 2})
			j = 2
		}
		for {
			n := 1 + g.IntN(4)
			if j+n >= T-1 {
				break
			}
			row[j] = int32(5 + g.IntN(495))
			for k := 1; k < n; k++ {
				row[j+k] = int32(500 + g.IntN(500))
			}
			words = append(words, [2]int{r*T + j, r*T + j + n})
			j += n
		}
		row[j] = 3
	}
	_, labels, err := mk.Mask(ids, 5)
	if err != nil {
		t.Fatal(err)
	}
	sel := 0
	for _, w := range words {
		n := 0
		for i := w[0]; i < w[1]; i++ {
			if labels[i] != autograd.IgnoreIndex {
				n++
			}
		}
		if n != 0 && n != w[1]-w[0] {
			t.Fatalf("word %v split: %d of its %d pieces masked", w, n, w[1]-w[0])
		}
		if n > 0 {
			sel++
		}
	}
	within5Sigma(t, "words selected", sel, len(words), 0.15)
	for i, id := range ids {
		if id < 5 && labels[i] != autograd.IgnoreIndex {
			t.Fatalf("special token at %d masked", i)
		}
	}
}

// TestNewMaskingFromVocab takes specials and "##" pieces from a vocabulary, and MaskBatch
// masks row r of batch k as Mask does with key k·B + r.
func TestNewMaskingFromVocab(t *testing.T) {
	v, err := ReadVocab(strings.NewReader("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nfe\n##ver\nhigh\n"))
	if err != nil {
		t.Fatal(err)
	}
	mk, err := NewMasking(v, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(mk.nonSpec, []int32{5, 6, 7}) || !mk.cont[6] || mk.cont[5] || mk.MaskID != 4 {
		t.Fatalf("non-special %v, continuation %v, mask %d", mk.nonSpec, mk.cont, mk.MaskID)
	}
	noMask, _ := ReadVocab(strings.NewReader("[PAD]\n[UNK]\n[CLS]\n[SEP]\nfe\n"))
	if _, err := NewMasking(noMask, 1, false); err == nil {
		t.Fatal("vocabulary without [MASK] accepted")
	}
	b := Batch{B: 3, T: 6, IDs: []int32{2, 5, 6, 7, 3, 0, 2, 7, 7, 3, 0, 0, 2, 5, 6, 5, 6, 3}}
	mb, labels, err := mk.MaskBatch(b, 4)
	if err != nil {
		t.Fatal(err)
	}
	for r := 0; r < b.B; r++ {
		in, lab, _ := mk.Mask(b.IDs[r*b.T:(r+1)*b.T], uint64(4*b.B+r))
		if !slices.Equal(in, mb.IDs[r*b.T:(r+1)*b.T]) || !slices.Equal(lab, labels[r*b.T:(r+1)*b.T]) {
			t.Fatalf("row %d of MaskBatch differs from Mask", r)
		}
	}
}
