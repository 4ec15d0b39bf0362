package mtl

import (
	"context"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/mtl/corpus"
)

// Inference has one path, plan -> run -> decode, and every caller takes it: Extract,
// ExtractMany and Pair, the server (which runs many requests' sequences in one Run), bulk
// prediction, and evaluation. So what eval scores is exactly what predict and serve return.
//
//   - Plan: PlanNote tokenises a note once and cuts it into windows with each ner head's saved
//     geometry (TaskSpec.Window: max length and stride); PlanPair encodes a pair once per
//     max length of the selected sentence heads. A plan lists its encoder inputs as Sequences,
//     each padded to PadLength of its own length.
//   - Run: Extractor.Run pads and batches any mix of sequences (one padded length a pass,
//     bounded by PassLimits), runs the encoder once a pass and every head a sequence asks for.
//   - Decode: the plan turns the outputs back into entities (per word, the argmax at its first
//     sub-word in the window where it is most central; BIO/BILOU decoded as seqeval) or pair
//     labels and scores.

// Sequence is one encoder input of a plan.
type Sequence struct {
	// IDs are the token ids, [CLS] and [SEP] included; Types the token types (nil: all 0).
	IDs, Types []int32
	// Pad is the length the sequence is padded to in a pass (PadLength): it depends on the
	// sequence alone, so a sequence's outputs do not depend on what it is batched with.
	Pad int
	// Heads are the heads whose outputs are wanted.
	Heads []*Head
	// Ctx, when not nil, is the context of the request the sequence belongs to: Run leaves
	// the sequence out of every pass that starts after Ctx is done (its Outputs stay nil), so
	// an abandoned request stops costing passes while the others of its batch go on.
	Ctx context.Context
}

// Outputs holds one sequence's head outputs by task name, unpadded: len(IDs) rows of the
// labels' logits (row-major) for a ner head, the labels' logits for a classification head,
// one score for regression.
type Outputs map[string][]float32

// PassLimits bound one encoder pass: at most MaxSeqs sequences and MaxTokens padded positions
// (0: no limit; a pass always holds at least one sequence).
type PassLimits struct {
	MaxSeqs, MaxTokens int
}

// PadLength is the length a sequence of n tokens is padded to in a pass of sequences of at
// most maxLen tokens: 16, 32 or 64 for short ones, then the next multiple of 64, never more
// than maxLen (nor less than n). Attention's arithmetic depends on the padded length, so
// fixing it per sequence makes results independent of how sequences are batched, at the cost
// of at most 63 padding positions per sequence (and at most 11 distinct lengths, so 11
// passes, in a batch of sequences of every length up to 512).
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

// Run runs seqs through the encoder and, on each pass's output, every head any of the pass's
// sequences asks for; it returns each sequence's Outputs (parallel to seqs). Sequences of one
// padded length share passes (in order of first appearance, then input order), at most lim's
// bounds a pass. onPass, when not nil, is called after each pass with its number of sequences
// and padded length. ctx, and each sequence's own Ctx, are checked before each pass: a
// sequence whose Ctx is done is skipped and gets nil Outputs.
func (e *Extractor) Run(ctx context.Context, seqs []Sequence, lim PassLimits, onPass func(n, T int)) ([]Outputs, error) {
	out := make([]Outputs, len(seqs))
	var order []int
	groups := map[int][]int{}
	for i, s := range seqs {
		if len(s.IDs) == 0 || s.Pad < len(s.IDs) || (s.Types != nil && len(s.Types) != len(s.IDs)) {
			return nil, fmt.Errorf("mtl: sequence %d: %d tokens, %d types, padded to %d", i, len(s.IDs), len(s.Types), s.Pad)
		}
		if _, ok := groups[s.Pad]; !ok {
			order = append(order, s.Pad)
		}
		groups[s.Pad] = append(groups[s.Pad], i)
	}
	pad := PadID(e.tok)
	for _, T := range order {
		g := groups[T]
		per := len(g)
		if lim.MaxSeqs > 0 {
			per = min(per, lim.MaxSeqs)
		}
		if lim.MaxTokens > 0 {
			per = min(per, max(1, lim.MaxTokens/T))
		}
		for len(g) > 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			part := make([]int, 0, min(per, len(g)))
			for len(g) > 0 && len(part) < per {
				if c := seqs[g[0]].Ctx; c == nil || c.Err() == nil {
					part = append(part, g[0])
				}
				g = g[1:]
			}
			if len(part) == 0 {
				break
			}
			if err := e.pass(seqs, part, T, pad, out); err != nil {
				return nil, err
			}
			if onPass != nil {
				onPass(len(part), T)
			}
		}
	}
	return out, nil
}

// pass runs the sequences seqs[part] (all of padded length T) through one encoder pass and
// the union of their heads, and stores each sequence's outputs in out.
func (e *Extractor) pass(seqs []Sequence, part []int, T, pad int, out []Outputs) error {
	n := len(part)
	b := bert.Batch{B: n, T: T, IDs: make([]int32, n*T), TypeIDs: make([]int32, n*T), Mask: make([]float32, n*T)}
	var heads []*Head
	seen := map[*Head]bool{}
	for i, si := range part {
		s := seqs[si]
		for j := 0; j < T; j++ {
			k := i*T + j
			if j >= len(s.IDs) {
				b.IDs[k] = int32(pad)
				continue
			}
			b.IDs[k], b.Mask[k] = s.IDs[j], 1
			if s.Types != nil {
				b.TypeIDs[k] = s.Types[j]
			}
		}
		for _, h := range s.Heads {
			if !seen[h] {
				seen[h] = true
				heads = append(heads, h)
			}
		}
	}
	res, err := e.model.Predict(b, heads)
	if err != nil {
		return err
	}
	for i, si := range part {
		s := seqs[si]
		o := make(Outputs, len(s.Heads))
		for _, h := range s.Heads {
			r, w := res[h.Spec.Name], h.Spec.Outputs()
			if h.Spec.Kind.PerToken() {
				o[h.Spec.Name] = append([]float32(nil), r[i*T*w:(i*T+len(s.IDs))*w]...)
			} else {
				o[h.Spec.Name] = append([]float32(nil), r[i*w:(i+1)*w]...)
			}
		}
		out[si] = o
	}
	return nil
}

// Window returns the geometry of the task's ner windows on an encoder of the given number of
// positions: the max length (the spec's, at most positions) and the stride (the spec's, or
// DefaultStride when it has none or it no longer fits).
func (s TaskSpec) Window(positions int) (maxLen, stride int) {
	maxLen = min(s.MaxLength, positions)
	stride = s.Stride
	if stride < 1 || stride > maxLen-2 {
		stride = DefaultStride(maxLen)
	}
	return maxLen, stride
}

// NotePlan is one note tokenised once and cut into windows for a set of ner heads: heads
// with the same window geometry share windows (one encoder pass per window for all of them).
type NotePlan struct {
	// Doc holds the note's text, sub-words and words (no labels).
	Doc    AlignedDoc
	heads  []*Head
	groups []noteGroup
	ref    bool // DecodeReference: groups hold chunks without [CLS] and [SEP]
}

// noteGroup is the heads of one window geometry and their windows.
type noteGroup struct {
	heads  []*Head
	maxLen int
	wins   []Window
}

// PlanNote checks, tokenises and windows one note for the selected ner tasks (every ner task
// when tasks is empty). Invalid UTF-8 and an unknown or non-ner task are errors; an empty
// note, or one without tokens, has no sequences and decodes to empty lists.
func (e *Extractor) PlanNote(text string, tasks []string) (*NotePlan, error) {
	return e.PlanNoteMax(text, tasks, -1)
}

// ErrTooManyTokens is PlanNoteMax's error for a note that needs more padded positions than
// allowed.
var ErrTooManyTokens = errors.New("mtl: the note needs more padded sub-words than allowed")

// PlanNoteMax is PlanNote refusing, with ErrTooManyTokens, a note whose sequences need more
// than maxTokens padded positions (maxTokens < 0: no limit). A window holds at most as many
// sub-words as it is padded to, so it stops tokenising after maxTokens sub-words: its work and
// memory are bounded by maxTokens, not by the length of text.
func (e *Extractor) PlanNoteMax(text string, tasks []string, maxTokens int) (*NotePlan, error) {
	heads, err := e.heads(tasks, extracts, "ner")
	if err != nil {
		return nil, err
	}
	p, err := e.planNote(text, heads, maxTokens)
	if err == nil && maxTokens >= 0 && p.Tokens() > maxTokens {
		return nil, ErrTooManyTokens
	}
	return p, err
}

func (e *Extractor) planNote(text string, heads []*Head, maxTokens int) (*NotePlan, error) {
	p := &NotePlan{Doc: AlignedDoc{Text: text}, heads: heads}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("mtl: note is not valid UTF-8 (first bad byte at offset %d)", corpus.FirstInvalid(text))
	}
	if len(heads) == 0 || text == "" {
		return p, nil
	}
	ad := &p.Doc
	if maxTokens >= 0 {
		var more bool
		if ad.Tokens, more = e.tok.TokenizeN(text, maxTokens); more {
			return nil, ErrTooManyTokens
		}
	} else {
		ad.Tokens = e.tok.Tokenize(text)
	}
	if len(ad.Tokens) == 0 {
		return p, nil
	}
	ad.IDs = make([]int32, len(ad.Tokens))
	for i, t := range ad.Tokens {
		ad.IDs[i] = int32(t.ID)
	}
	ad.Labels = make([]int32, len(ad.Tokens))
	ad.Words, ad.WordOf = words(ad.Tokens)
	if e.Decoding == DecodeReference {
		return e.planNoteReference(p), nil
	}
	sp := e.tok.Vocab().Specials()
	positions := e.model.Encoder.Cfg.MaxPositionEmbeddings
	geom := map[[2]int]int{}
	need := 0
	for _, h := range heads {
		maxLen, stride := h.Spec.Window(positions)
		gi, ok := geom[[2]int{maxLen, stride}]
		if !ok {
			if need += windowTokens(len(ad.Tokens), maxLen, stride); maxTokens >= 0 && need > maxTokens {
				return nil, ErrTooManyTokens // refused before the windows are built
			}
			wins, err := ad.MakeWindows(0, sp.Cls, sp.Sep, maxLen, stride)
			if err != nil {
				return nil, fmt.Errorf("mtl: task %s: %w", h.Spec.Name, err)
			}
			if int64(len(wins))*int64(maxLen) > 1<<31-1 {
				return nil, fmt.Errorf("mtl: note too long (%d windows)", len(wins))
			}
			gi = len(p.groups)
			geom[[2]int{maxLen, stride}] = gi
			p.groups = append(p.groups, noteGroup{maxLen: maxLen, wins: wins})
		}
		p.groups[gi].heads = append(p.groups[gi].heads, h)
	}
	return p, nil
}

// windowTokens returns the padded positions of the windows MakeWindows cuts n sub-words
// into: every window but a lone one is full (maxLen); 0 for a geometry MakeWindows refuses.
func windowTokens(n, maxLen, stride int) int {
	l := maxLen - 2
	switch {
	case l < 1 || stride < 1:
		return 0
	case n <= l:
		return PadLength(n+2, maxLen)
	}
	return ((n-l+stride-1)/stride + 1) * maxLen
}

// Sequences returns the note's windows, group by group.
func (p *NotePlan) Sequences() []Sequence {
	var out []Sequence
	for _, g := range p.groups {
		for _, w := range g.wins {
			out = append(out, Sequence{IDs: w.IDs, Pad: PadLength(len(w.IDs), g.maxLen), Heads: g.heads})
		}
	}
	return out
}

// Len returns the number of the note's sequences (len(Sequences()), without building them).
func (p *NotePlan) Len() int {
	n := 0
	for _, g := range p.groups {
		n += len(g.wins)
	}
	return n
}

// Tokens returns the padded positions the note's sequences take in passes.
func (p *NotePlan) Tokens() int {
	n := 0
	for _, g := range p.groups {
		for _, w := range g.wins {
			n += PadLength(len(w.IDs), g.maxLen)
		}
	}
	return n
}

// WordTags returns, per head, the predicted tag of every word of the note and its softmax
// probability: the argmax of the logits at the word's first sub-word, read from the window in
// which that sub-word is most central (MergeWindows' rule), ReferenceSubwordLabel read as O.
// out parallels Sequences().
func (p *NotePlan) WordTags(out []Outputs) (tags map[string][]string, probs map[string][]float64, err error) {
	tags, probs = map[string][]string{}, map[string][]float64{}
	if p.ref {
		return nil, nil, fmt.Errorf("mtl: a note planned for reference decoding has no word tags")
	}
	if len(p.groups) == 0 {
		return tags, probs, nil
	}
	ad := &p.Doc
	k := 0
	for _, g := range p.groups {
		if len(out) < k+len(g.wins) {
			return nil, nil, fmt.Errorf("mtl: %d sequence outputs for a plan of more", len(out))
		}
		outs := out[k : k+len(g.wins)]
		k += len(g.wins)
		src := make([][]int32, len(g.wins)) // window i, position q encoded as i*maxLen+q
		for i, w := range g.wins {
			src[i] = make([]int32, len(w.IDs))
			for q := range src[i] {
				src[i][q] = int32(i*g.maxLen + q)
			}
		}
		from, err := MergeWindows(len(ad.Tokens), g.wins, src)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range g.heads {
			L := len(h.Spec.Labels)
			t, pr := make([]string, len(ad.Words)), make([]float64, len(ad.Words))
			for wi, w := range ad.Words {
				f := int(from[w.FirstSub])
				logits := outs[f/g.maxLen][h.Spec.Name]
				if len(logits) != len(g.wins[f/g.maxLen].IDs)*L {
					return nil, nil, fmt.Errorf("mtl: task %s: %d outputs for a window of %d tokens", h.Spec.Name, len(logits), len(g.wins[f/g.maxLen].IDs))
				}
				row := logits[(f%g.maxLen)*L : (f%g.maxLen+1)*L]
				c, _ := argmax(row)
				t[wi], pr[wi] = wordTag(h.Spec.Labels[c]), softmaxAt(row, int(c))
			}
			tags[h.Spec.Name], probs[h.Spec.Name] = t, pr
		}
	}
	if k != len(out) {
		return nil, nil, fmt.Errorf("mtl: %d sequence outputs for a plan of %d", len(out), k)
	}
	return tags, probs, nil
}

// Decode turns the outputs of the note's sequences (parallel to Sequences()) into its
// entities: per head, the word tags (WordTags) decoded as seqeval does (DecodeTags), each
// entity scored by the mean probability of its words' tags, in text order; or, for a plan of
// an Extractor with DecodeReference, the reference's grouping of sub-words.
func (p *NotePlan) Decode(out []Outputs) (Result, error) {
	if p.ref {
		return p.decodeReference(out)
	}
	res := Result{Entities: make(map[string][]Entity, len(p.heads))}
	tags, probs, err := p.WordTags(out)
	if err != nil {
		return Result{}, err
	}
	ad, text := &p.Doc, p.Doc.Text
	var byteOffs [][2]int
	found := make([][]Entity, len(p.heads))
	for i, h := range p.heads {
		found[i] = []Entity{}
		pr := probs[h.Spec.Name]
		for _, ts := range corpus.DecodeTags(tags[h.Spec.Name], corpus.BILOU) {
			if ts.Type == "" {
				continue // a bare "B" or "I" without type
			}
			s, t := ad.Words[ts.Start].Start, ad.Words[ts.End-1].End
			sc := 0.0
			for j := ts.Start; j < ts.End; j++ {
				sc += pr[j]
			}
			found[i] = append(found[i], Entity{Type: ts.Type, ByteStart: s, ByteEnd: t, Text: text[s:t], Score: sc / float64(ts.End-ts.Start)})
			byteOffs = append(byteOffs, [2]int{s, t})
		}
	}
	runes := bert.RuneOffsets(text, byteOffs)
	k := 0
	for i, h := range p.heads {
		for j := range found[i] {
			found[i][j].Start, found[i][j].End = runes[k][0], runes[k][1]
			k++
		}
		res.Entities[h.Spec.Name] = found[i]
	}
	return res, nil
}

// PairPlan is one pair of texts encoded for a set of sentence-level heads: once per max
// length among them ([CLS] a [SEP] b [SEP], or [CLS] a [SEP] when b is empty, truncated).
type PairPlan struct {
	heads []*Head
	seqs  []Sequence
}

// PlanPair checks and encodes a pair for the selected sentence-level tasks (all of them when
// tasks is empty). Invalid UTF-8 and an unknown or non-sentence task are errors; two empty
// texts have no sequence and decode to an empty result.
func (e *Extractor) PlanPair(a, b string, tasks []string) (*PairPlan, error) {
	heads, err := e.heads(tasks, pairs, "a sentence-level task")
	if err != nil {
		return nil, err
	}
	return e.planPair(a, b, heads)
}

func (e *Extractor) planPair(a, b string, heads []*Head) (*PairPlan, error) {
	for _, s := range []struct{ name, v string }{{"text_a", a}, {"text_b", b}} {
		if !utf8.ValidString(s.v) {
			return nil, fmt.Errorf("mtl: %s is not valid UTF-8 (first bad byte at offset %d)", s.name, corpus.FirstInvalid(s.v))
		}
	}
	p := &PairPlan{heads: heads}
	if a == "" && b == "" {
		return p, nil
	}
	positions := e.model.Encoder.Cfg.MaxPositionEmbeddings
	byLen := map[int]int{}
	for _, h := range heads {
		maxLen := min(h.Spec.MaxLength, positions)
		i, ok := byLen[maxLen]
		if !ok {
			ids, types := EncodeText(e.tok, a, b, maxLen)
			i = len(p.seqs)
			byLen[maxLen] = i
			p.seqs = append(p.seqs, Sequence{IDs: ids, Types: types, Pad: PadLength(len(ids), maxLen)})
		}
		p.seqs[i].Heads = append(p.seqs[i].Heads, h)
	}
	return p, nil
}

// Sequences returns the pair's encoder inputs.
func (p *PairPlan) Sequences() []Sequence { return p.seqs }

// Decode turns the outputs (parallel to Sequences()) into each head's result: the argmax
// label and the softmax over the labels, or the regression score.
func (p *PairPlan) Decode(out []Outputs) (map[string]PairResult, error) {
	if len(out) != len(p.seqs) {
		return nil, fmt.Errorf("mtl: %d sequence outputs for a pair plan of %d", len(out), len(p.seqs))
	}
	res := map[string]PairResult{}
	for i, s := range p.seqs {
		for _, h := range s.Heads {
			v := out[i][h.Spec.Name]
			if len(v) != h.Spec.Outputs() {
				return nil, fmt.Errorf("mtl: task %s: %d outputs, want %d", h.Spec.Name, len(v), h.Spec.Outputs())
			}
			res[h.Spec.Name] = h.Spec.Kind.hk().decodePair(h.Spec, v)
		}
	}
	return res, nil
}

// argmax returns the index of the largest value (the first on ties) and that value.
func argmax(x []float32) (int32, float32) {
	best, bv := 0, float32(math.Inf(-1))
	for i, v := range x {
		if v > bv {
			best, bv = i, v
		}
	}
	return int32(best), bv
}

// softmaxAt returns the softmax probability of x[k], computed in float64.
func softmaxAt(x []float32, k int) float64 { return math.Exp(logSoftmaxAt(x, k)) }

// logSoftmaxAt returns log softmax(x)[k] in float64, without underflow.
func logSoftmaxAt(x []float32, k int) float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	return float64(x[k]) - mx - math.Log(s)
}
