package mtl

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mtbert/mtbert/bert"
)

// Entity is one extracted mention.
//
// Start and End are CHARACTER offsets: Unicode code points (runes) from the start of the
// note, half-open, as Python's str indexing counts them; ByteStart and ByteEnd are the same
// span as UTF-8 byte offsets (Go's string indexing). Text equals the note at both:
// []rune(note)[Start:End] and note[ByteStart:ByteEnd].
type Entity struct {
	Type      string `json:"type"`
	Start     int    `json:"start"`
	End       int    `json:"end"`
	ByteStart int    `json:"byte_start"`
	ByteEnd   int    `json:"byte_end"`
	Text      string `json:"text"`
	// Score is the mean, over the entity's words, of the softmax probability of the tag
	// predicted on the word's first sub-word.
	Score float64 `json:"score"`
}

// Result is what Extract finds in one note: per selected ner task its entities, in text
// order (an empty list when none).
type Result struct {
	Entities map[string][]Entity `json:"entities"`
}

// PairResult is one sentence-level head's output: Label and Probs (softmax over the labels)
// for classification, Score for regression.
type PairResult struct {
	Label string             `json:"label,omitempty"`
	Probs map[string]float64 `json:"probs,omitempty"`
	Score *float64           `json:"score,omitempty"`
}

// Extractor runs a multitask checkpoint over raw text. It is safe for concurrent use: each
// call runs its own forward passes and the model is only read.
type Extractor struct {
	model *Model
	tok   *bert.Tokenizer
	// Batch is the number of windows per forward pass (default 8).
	Batch int
}

// LoadExtractor loads a checkpoint written by SaveCheckpoint (checksums verified; the
// tokenizer from its tokenizer_config.json).
func LoadExtractor(dir string) (*Extractor, error) {
	m, tok, err := LoadCheckpoint(dir, bert.DefaultLowerCase)
	if err != nil {
		return nil, err
	}
	return NewExtractor(m, tok), nil
}

// NewExtractor wraps a model and its tokenizer.
func NewExtractor(m *Model, tok *bert.Tokenizer) *Extractor {
	return &Extractor{model: m, tok: tok, Batch: 8}
}

// UseEncoder runs the extractor's encoder passes with enc (see Model.UseEncoder).
func (e *Extractor) UseEncoder(enc bert.Encoder) { e.model.UseEncoder(enc) }

// Tasks returns the model's task specs in head order.
func (e *Extractor) Tasks() []TaskSpec { return e.model.Specs() }

// heads returns the named heads (every head when names is empty) whose kind ok accepts. A
// name that is not a task, or a task ok refuses, is an error.
func (e *Extractor) heads(names []string, ok func(Kind) bool, what string) ([]*Head, error) {
	if len(names) == 0 {
		var out []*Head
		for _, h := range e.model.Heads {
			if ok(h.Spec.Kind) {
				out = append(out, h)
			}
		}
		return out, nil
	}
	var out []*Head
	seen := map[string]bool{}
	for _, n := range names {
		h := e.model.Head(n)
		if h == nil {
			var have []string
			for _, h := range e.model.Heads {
				have = append(have, h.Spec.Name)
			}
			return nil, fmt.Errorf("mtl: no task %q in the model (tasks: %s)", n, strings.Join(have, ", "))
		}
		if !ok(h.Spec.Kind) {
			return nil, fmt.Errorf("mtl: task %s is %s, not %s", n, h.Spec.Kind, what)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, h)
		}
	}
	return out, nil
}

func isNER(k Kind) bool { return k == NER }
func isSentence(k Kind) bool {
	return k == PairClassification || k == Classification || k == Regression
}

// SplitTasks splits task names into the model's ner tasks and its sentence-level tasks, in
// the given order; an unknown name is an error. Empty names select every task.
func (e *Extractor) SplitTasks(names []string) (ner, sentence []string, err error) {
	if _, err := e.heads(names, func(Kind) bool { return true }, ""); err != nil {
		return nil, nil, err
	}
	for _, h := range e.model.Heads {
		want := len(names) == 0
		for _, n := range names {
			want = want || n == h.Spec.Name
		}
		if !want {
			continue
		}
		switch {
		case h.Spec.Kind == NER:
			ner = append(ner, h.Spec.Name)
		case isSentence(h.Spec.Kind):
			sentence = append(sentence, h.Spec.Name)
		case len(names) > 0:
			return nil, nil, fmt.Errorf("mtl: task %s is %s: it predicts nothing", h.Spec.Name, h.Spec.Kind)
		}
	}
	return ner, sentence, nil
}

// Extract finds the entities of the selected ner tasks (all of them when tasks is empty) in
// one note. The note is tokenised once and cut into windows of the smallest max_length of the
// selected heads (stride DefaultStride), and the encoder runs ONCE per window for all the
// selected heads; each sub-word takes every head's argmax from the window where it is most
// central (MergeWindows). Invalid UTF-8 is an error; an empty note (or one without tokens)
// gives empty lists. ctx is checked between forward passes.
//
// Each window is padded to a length that depends on its own length only (PadLength), never
// on the other windows of its forward pass, so a note's result is bit-identical whether it
// runs alone, Batch windows at a time, or batched with other notes (the Server).
func (e *Extractor) Extract(ctx context.Context, text string, tasks []string) (Result, error) {
	heads, maxLen, err := e.nerHeads(tasks)
	if err != nil {
		return Result{}, err
	}
	p, err := e.planNote(text, heads, maxLen)
	if err != nil {
		return Result{}, err
	}
	if len(p.wins) == 0 {
		return p.result(), nil
	}
	out, err := runPadded(ctx, e.model, heads, p.ids(), p.padLens(), e.Batch, 0, padID(e.tok), nil)
	if err != nil {
		return Result{}, err
	}
	return p.decode(out)
}

// nerHeads returns the selected ner heads and the window length they share: the smallest of
// their max_length and the encoder's positions.
func (e *Extractor) nerHeads(tasks []string) ([]*Head, int, error) {
	heads, err := e.heads(tasks, isNER, "ner")
	if err != nil {
		return nil, 0, err
	}
	maxLen := e.model.Encoder.Cfg.MaxPositionEmbeddings
	for _, h := range heads {
		maxLen = min(maxLen, h.Spec.MaxLength)
	}
	return heads, maxLen, nil
}

// notePlan is one note tokenised and cut into windows for a set of ner heads: what runs
// through the encoder, and what decode needs to turn the windows' logits into entities.
type notePlan struct {
	heads  []*Head
	maxLen int
	ad     AlignedDoc
	// wins is empty when there is nothing to run (no heads, or no tokens).
	wins []Window
}

// planNote checks, tokenises and windows text for heads (see Extract).
func (e *Extractor) planNote(text string, heads []*Head, maxLen int) (*notePlan, error) {
	p := &notePlan{heads: heads, maxLen: maxLen, ad: AlignedDoc{Text: text}}
	if !utf8.ValidString(text) {
		return p, fmt.Errorf("mtl: note is not valid UTF-8 (first bad byte at offset %d)", firstInvalid(text))
	}
	if len(heads) == 0 || text == "" {
		return p, nil
	}
	ad := &p.ad
	ad.Tokens = e.tok.Tokenize(text)
	if len(ad.Tokens) == 0 {
		return p, nil
	}
	ad.IDs = make([]int32, len(ad.Tokens))
	for i, t := range ad.Tokens {
		ad.IDs[i] = int32(t.ID)
	}
	ad.Labels = make([]int32, len(ad.Tokens))
	ad.Words, ad.WordOf = words(ad.Tokens)
	sp := e.tok.Vocab().Specials()
	wins, err := ad.MakeWindows(0, sp.Cls, sp.Sep, maxLen, DefaultStride(maxLen))
	if err != nil {
		return p, err
	}
	if int64(len(wins))*int64(maxLen) > 1<<31-1 {
		return p, fmt.Errorf("mtl: note too long (%d windows)", len(wins))
	}
	p.wins = wins
	return p, nil
}

// ids returns the windows' token ids.
func (p *notePlan) ids() [][]int32 {
	ids := make([][]int32, len(p.wins))
	for i, w := range p.wins {
		ids[i] = w.IDs
	}
	return ids
}

// padLens returns the padded length of each window (PadLength).
func (p *notePlan) padLens() []int {
	ts := make([]int, len(p.wins))
	for i, w := range p.wins {
		ts[i] = PadLength(len(w.IDs), p.maxLen)
	}
	return ts
}

// tokens returns the number of padded positions the note's windows take in forward passes.
func (p *notePlan) tokens() int {
	n := 0
	for _, t := range p.padLens() {
		n += t
	}
	return n
}

// result returns the result with an empty list per head.
func (p *notePlan) result() Result {
	res := Result{Entities: make(map[string][]Entity, len(p.heads))}
	for _, h := range p.heads {
		res.Entities[h.Spec.Name] = []Entity{}
	}
	return res
}

// decode turns the windows' logits (out[head][window]: len(window.IDs) rows of the head's
// labels, row-major) into the note's entities.
func (p *notePlan) decode(out map[string][][]float32) (Result, error) {
	res := p.result()
	if len(p.wins) == 0 {
		return res, nil
	}
	maxLen, ad, text := p.maxLen, &p.ad, p.ad.Text
	src := make([][]int32, len(p.wins)) // window i, position q encoded as i*maxLen+q
	for i, w := range p.wins {
		src[i] = make([]int32, len(w.IDs))
		for q := range src[i] {
			src[i][q] = int32(i*maxLen + q)
		}
	}
	// Which window and position each sub-word is read from: the same for every head.
	from, err := MergeWindows(len(ad.Tokens), p.wins, src)
	if err != nil {
		return Result{}, err
	}
	var byteOffs [][2]int
	var found [][]Entity
	for _, h := range p.heads {
		L := len(h.Spec.Labels)
		logits := out[h.Spec.Name]
		if len(logits) != len(p.wins) {
			return Result{}, fmt.Errorf("mtl: task %s: %d window outputs for %d windows", h.Spec.Name, len(logits), len(p.wins))
		}
		tags := make([]string, len(ad.Words))
		probs := make([]float64, len(ad.Words))
		for wi, w := range ad.Words {
			f := int(from[w.FirstSub])
			row := logits[f/maxLen][(f%maxLen)*L : (f%maxLen+1)*L]
			k, _ := argmax(row)
			tags[wi] = h.Spec.Labels[k]
			probs[wi] = softmaxAt(row, int(k))
		}
		var ents []Entity
		for _, ts := range DecodeTags(tags, BILOU) {
			if ts.Type == "" {
				continue
			}
			s, t := ad.Words[ts.Start].Start, ad.Words[ts.End-1].End
			sc := 0.0
			for j := ts.Start; j < ts.End; j++ {
				sc += probs[j]
			}
			ents = append(ents, Entity{Type: ts.Type, ByteStart: s, ByteEnd: t, Text: text[s:t], Score: sc / float64(ts.End-ts.Start)})
			byteOffs = append(byteOffs, [2]int{s, t})
		}
		found = append(found, ents)
	}
	runes := bert.RuneOffsets(text, byteOffs)
	k := 0
	for i, h := range p.heads {
		for j := range found[i] {
			found[i][j].Start, found[i][j].End = runes[k][0], runes[k][1]
			k++
		}
		if found[i] != nil {
			res.Entities[h.Spec.Name] = found[i]
		}
	}
	return res, nil
}

// PadLength is the length a window of n tokens is padded to in a forward pass of ner windows
// of at most maxLen tokens: 16, 32 or 64 for short windows, then the next multiple of 64,
// never more than maxLen (nor less than n). Attention's arithmetic depends on the padded
// length, so fixing it per window makes results independent of how windows are batched, at
// the cost of at most 63 padding positions per window (and at most 11 distinct lengths, so
// 11 passes, in a batch of windows of every length up to 512).
func PadLength(n, maxLen int) int {
	t := 16
	for t < n && t < 64 {
		t *= 2
	}
	if t < n {
		t = (n + 63) / 64 * 64
	}
	return max(n, min(t, maxLen))
}

// runPadded runs sequences through the encoder and every head in heads, padding sequence i
// to ts[i] tokens and putting only sequences of one padded length in a pass, at most maxSeqs
// sequences and maxTokens padded tokens a pass (0: no limit; a pass has at least one
// sequence). Passes go by padded length in order of first appearance, then in input order.
// pass, when not nil, is called after each pass with its sequences and padded length. The
// outputs are runSequences'. ctx is checked between passes.
func runPadded(ctx context.Context, m *Model, heads []*Head, ids [][]int32, ts []int, maxSeqs, maxTokens, pad int, pass func(seqs, T int)) (map[string][][]float32, error) {
	out := make(map[string][][]float32, len(heads))
	for _, h := range heads {
		out[h.Spec.Name] = make([][]float32, len(ids))
	}
	var order []int
	groups := map[int][]int{}
	for i, s := range ids {
		if len(s) == 0 || ts[i] < len(s) {
			return nil, fmt.Errorf("mtl: sequence %d of %d tokens padded to %d", i, len(s), ts[i])
		}
		if _, ok := groups[ts[i]]; !ok {
			order = append(order, ts[i])
		}
		groups[ts[i]] = append(groups[ts[i]], i)
	}
	for _, T := range order {
		g := groups[T]
		per := len(g)
		if maxSeqs > 0 {
			per = min(per, maxSeqs)
		}
		if maxTokens > 0 {
			per = min(per, max(1, maxTokens/T))
		}
		for lo := 0; lo < len(g); lo += per {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			part := g[lo:min(len(g), lo+per)]
			n := len(part)
			b := bert.Batch{B: n, T: T, IDs: make([]int32, n*T), TypeIDs: make([]int32, n*T), Mask: make([]float32, n*T)}
			for i, si := range part {
				s := ids[si]
				for j := 0; j < T; j++ {
					k := i*T + j
					if j >= len(s) {
						b.IDs[k] = int32(pad)
						continue
					}
					b.IDs[k], b.Mask[k] = s[j], 1
				}
			}
			res, err := m.Predict(b, heads)
			if err != nil {
				return nil, err
			}
			for _, h := range heads {
				r := res[h.Spec.Name]
				w := h.Spec.Outputs()
				for i, si := range part {
					if h.Spec.Kind == NER {
						out[h.Spec.Name][si] = append([]float32(nil), r[i*T*w:(i*T+len(ids[si]))*w]...)
					} else {
						out[h.Spec.Name][si] = append([]float32(nil), r[i*w:(i+1)*w]...)
					}
				}
			}
			if pass != nil {
				pass(n, T)
			}
		}
	}
	return out, nil
}

// Pair runs the selected sentence-level tasks (all of them when tasks is empty) on one pair
// of texts, encoded once ([CLS] a [SEP] b [SEP], or [CLS] a [SEP] when b is empty, truncated
// to the smallest max_length of the selected heads) through one encoder pass. Invalid UTF-8
// is an error; two empty texts give an empty result.
func (e *Extractor) Pair(ctx context.Context, a, b string, tasks []string) (map[string]PairResult, error) {
	heads, err := e.heads(tasks, isSentence, "a sentence-level task")
	if err != nil {
		return nil, err
	}
	for _, s := range []struct{ name, v string }{{"text_a", a}, {"text_b", b}} {
		if !utf8.ValidString(s.v) {
			return nil, fmt.Errorf("mtl: %s is not valid UTF-8 (first bad byte at offset %d)", s.name, firstInvalid(s.v))
		}
	}
	res := map[string]PairResult{}
	if len(heads) == 0 || (a == "" && b == "") {
		return res, nil
	}
	maxLen := e.model.Encoder.Cfg.MaxPositionEmbeddings
	for _, h := range heads {
		maxLen = min(maxLen, h.Spec.MaxLength)
	}
	ids, types := EncodeText(e.tok, a, b, maxLen)
	out, err := runSequences(ctx, e.model, heads, [][]int32{ids}, [][]int32{types}, 1, padID(e.tok))
	if err != nil {
		return nil, err
	}
	for _, h := range heads {
		v := out[h.Spec.Name][0]
		if h.Spec.Kind == Regression {
			s := float64(v[0])
			res[h.Spec.Name] = PairResult{Score: &s}
			continue
		}
		k, _ := argmax(v)
		pr := PairResult{Label: h.Spec.Labels[k], Probs: make(map[string]float64, len(v))}
		for j, l := range h.Spec.Labels {
			pr.Probs[l] = softmaxAt(v, j)
		}
		res[h.Spec.Name] = pr
	}
	return res, nil
}

// firstInvalid returns the byte offset of the first invalid UTF-8 sequence of s.
func firstInvalid(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return i
			}
		}
	}
	return len(s)
}

// NewReader returns r decompressed when it starts with the gzip or zstd magic number (as
// Open does for files), else r as it is. Closing the result releases the decompressor (not
// r).
func NewReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zstdReadCloser{zr}, nil
	}
	return io.NopCloser(br), nil
}

// zstdReadCloser is a zstd decoder as an io.ReadCloser.
type zstdReadCloser struct{ *zstd.Decoder }

// Close releases the decoder.
func (z zstdReadCloser) Close() error { z.Decoder.Close(); return nil }
