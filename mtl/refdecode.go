package mtl

import (
	"fmt"
	"strings"

	"github.com/mtbert/mtbert/bert"
)

// NERDecoding is how a note's ner predictions become entities.
type NERDecoding string

const (
	// DecodeStrict (the default) is mtbert's decoding: windows of [CLS] ... [SEP] with the
	// task's saved stride, one tag per word (the argmax at its first sub-word, from the
	// window where that sub-word is most central), and the word tags decoded as seqeval
	// decodes BIO/BILOU, so an entity is a well-formed chunk of whole words.
	DecodeStrict NERDecoding = "strict"
	// DecodeReference reproduces the grouping of MT-Clinical BERT's examples/predict_ner.py:
	// the note's sub-words cut into consecutive chunks of the task's max length WITHOUT
	// [CLS] and [SEP] and without overlap, the argmax on every sub-word, its tag reduced to
	// the entity type (the characters after the prefix when the tag contains '-', else the
	// tag with BERT_TOKEN replaced by O), and every run of consecutive sub-words of one type
	// (not O) within a chunk reported as one entity from the first sub-word's start to the
	// last one's end, whatever the prefixes (B, I, L, U) and word boundaries say. An
	// entity's Score is the mean softmax probability of its sub-words' tags.
	DecodeReference NERDecoding = "reference"
)

// ReferenceSubwordLabel is the label MT-Clinical BERT's NER heads give [CLS], [SEP] and
// every sub-word after a word's first (multitasking_transformers' "BERT_TOKEN"). A head of
// that code base can predict it at a word's first sub-word; strict decoding then reads it as
// O (the word is outside any entity), as the reference's own predict_ner.py does.
const ReferenceSubwordLabel = "BERT_TOKEN"

// ParseNERDecoding parses a -decode value: "strict" (or empty) or "reference".
func ParseNERDecoding(s string) (NERDecoding, error) {
	switch NERDecoding(s) {
	case "", DecodeStrict:
		return DecodeStrict, nil
	case DecodeReference:
		return DecodeReference, nil
	}
	return "", fmt.Errorf("unknown ner decoding %q: want strict or reference", s)
}

// wordTag is the tag a word takes from label l in strict decoding: l, except that
// ReferenceSubwordLabel is O.
func wordTag(l string) string {
	if l == ReferenceSubwordLabel {
		return "O"
	}
	return l
}

// referenceType is predict_ner.py's reduction of a tag to an entity type:
// x[2:] if '-' in x else x.replace('BERT_TOKEN', 'O') (Python slices characters).
func referenceType(tag string) string {
	if strings.Contains(tag, "-") {
		r := []rune(tag)
		if len(r) <= 2 {
			return ""
		}
		return string(r[2:])
	}
	return strings.ReplaceAll(tag, ReferenceSubwordLabel, "O")
}

// planNoteReference is planNote for DecodeReference: the note's sub-words in consecutive
// chunks of each head's max length, no special tokens; heads of one max length share chunks.
func (e *Extractor) planNoteReference(p *NotePlan) *NotePlan {
	ad := &p.Doc
	positions := e.model.Encoder.Cfg.MaxPositionEmbeddings
	byLen := map[int]int{}
	for _, h := range p.heads {
		maxLen := min(h.Spec.MaxLength, positions)
		gi, ok := byLen[maxLen]
		if !ok {
			gi = len(p.groups)
			byLen[maxLen] = gi
			g := noteGroup{maxLen: maxLen}
			for lo := 0; lo < len(ad.IDs); lo += maxLen {
				g.wins = append(g.wins, Window{First: lo, IDs: ad.IDs[lo:min(len(ad.IDs), lo+maxLen)]})
			}
			p.groups = append(p.groups, g)
		}
		p.groups[gi].heads = append(p.groups[gi].heads, h)
	}
	p.ref = true
	return p
}

// decodeReference is Decode for a plan of planNoteReference (see DecodeReference).
func (p *NotePlan) decodeReference(out []Outputs) (Result, error) {
	res := Result{Entities: make(map[string][]Entity, len(p.heads))}
	ad, text := &p.Doc, p.Doc.Text
	found := map[*Head][]Entity{}
	var byteOffs [][2]int
	k := 0
	for _, g := range p.groups {
		if len(out) < k+len(g.wins) {
			return Result{}, fmt.Errorf("mtl: %d sequence outputs for a plan of more", len(out))
		}
		outs := out[k : k+len(g.wins)]
		k += len(g.wins)
		for _, h := range g.heads {
			L := len(h.Spec.Labels)
			for wi, w := range g.wins {
				logits := outs[wi][h.Spec.Name]
				n := len(w.IDs)
				if len(logits) != n*L {
					return Result{}, fmt.Errorf("mtl: task %s: %d outputs for a chunk of %d tokens", h.Spec.Name, len(logits), n)
				}
				types, probs := make([]string, n), make([]float64, n)
				for i := range n {
					row := logits[i*L : (i+1)*L]
					c, _ := argmax(row)
					types[i], probs[i] = referenceType(h.Spec.Labels[c]), softmaxAt(row, int(c))
				}
				for i := 0; i < n; i++ {
					if types[i] == "O" {
						continue
					}
					start := i
					for i+1 != n && types[i] == types[i+1] {
						i++
					}
					s, t := ad.Tokens[w.First+start].Start, ad.Tokens[w.First+i].End
					sc := 0.0
					for j := start; j <= i; j++ {
						sc += probs[j]
					}
					found[h] = append(found[h], Entity{Type: types[i], ByteStart: s, ByteEnd: t, Text: text[s:t], Score: sc / float64(i-start+1)})
					byteOffs = append(byteOffs, [2]int{s, t})
				}
			}
		}
	}
	if k != len(out) {
		return Result{}, fmt.Errorf("mtl: %d sequence outputs for a plan of %d", len(out), k)
	}
	runes := bert.RuneOffsets(text, byteOffs)
	j := 0
	for _, g := range p.groups {
		for _, h := range g.heads {
			for i := range found[h] {
				found[h][i].Start, found[h][i].End = runes[j][0], runes[j][1]
				j++
			}
		}
	}
	for _, h := range p.heads {
		res.Entities[h.Spec.Name] = append([]Entity{}, found[h]...)
	}
	return res, nil
}
