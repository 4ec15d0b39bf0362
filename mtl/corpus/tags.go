package corpus

import (
	"fmt"
)

// Scheme is a tagging scheme for token-level entity labels.
type Scheme int

const (
	// BIO is IOB2: B-X begins an entity of type X, I-X continues it, O is
	// outside.
	BIO Scheme = iota
	// BILOU is BIO plus L-X (last token) and U-X (single-token entity);
	// the same as IOBES with E=L and S=U. The reference code tags with it.
	BILOU
)

// String returns "BIO" or "BILOU".
func (s Scheme) String() string {
	switch s {
	case BIO:
		return "BIO"
	case BILOU:
		return "BILOU"
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// TagSpan is an entity found in a tag sequence: tokens [Start,End) of
// type Type.
type TagSpan struct {
	Start, End int
	Type       string
}

// splitTag splits a tag into its prefix letter, normalised to seqeval's
// B I E S O (L -> E, U -> S), and its type. "O" and tags that are not of
// the form P-TYPE or a bare prefix letter are outside ('O').
func splitTag(tag string) (byte, string) {
	if tag == "" || tag == "O" {
		return 'O', ""
	}
	p := tag[0]
	switch p {
	case 'L':
		p = 'E'
	case 'U':
		p = 'S'
	case 'B', 'I', 'E', 'S':
	default:
		return 'O', ""
	}
	if len(tag) == 1 {
		return p, ""
	}
	if tag[1] != '-' {
		return 'O', ""
	}
	return p, tag[2:]
}

// endOfChunk and startOfChunk are seqeval's rules (sequence_labeling.py,
// default mode), over prefixes B I E S O.
func endOfChunk(prevTag, tag byte, prevType, typ string) bool {
	switch {
	case prevTag == 'E', prevTag == 'S':
		return true
	case (prevTag == 'B' || prevTag == 'I') && (tag == 'B' || tag == 'S' || tag == 'O'):
		return true
	}
	return prevTag != 'O' && prevType != typ
}

func startOfChunk(prevTag, tag byte, prevType, typ string) bool {
	switch {
	case tag == 'B', tag == 'S':
		return true
	case (prevTag == 'E' || prevTag == 'S' || prevTag == 'O') && (tag == 'E' || tag == 'I'):
		return true
	}
	return tag != 'O' && prevType != typ
}

// DecodeTags returns the entities of a tag sequence, in order, following
// seqeval's default (non-strict) get_entities, which is the same for BIO
// and BILOU/IOBES tags (the scheme only names what the caller expects):
//
//   - B-X and U-X (S-X) always start an entity; U-X (S-X) and L-X (E-X)
//     end it after the token;
//   - I-X or L-X after O, after an entity that has ended, or after a
//     different type starts a new entity (an ill-formed start);
//   - a change of type always ends the running entity.
//
// Tags that are neither O nor P-TYPE with P in B I L U E S are outside.
// Examples from seqeval's documentation and tests:
// [B-PER I-PER O B-LOC] gives PER 0-2, LOC 3-4; [O O O B-MISC I-MISC
// I-MISC O B-PER I-PER] gives MISC 3-6 and PER 7-9.
func DecodeTags(tags []string, scheme Scheme) []TagSpan {
	spans, _ := decodeTags(tags)
	return spans
}

// decodeTags is DecodeTags that also counts ill-formed starts: entities
// begun by an I- or E- (L-) tag.
func decodeTags(tags []string) ([]TagSpan, int) {
	var out []TagSpan
	ill := 0
	prevTag, prevType := byte('O'), ""
	begin := 0
	for i := 0; i <= len(tags); i++ {
		tag, typ := byte('O'), ""
		if i < len(tags) {
			tag, typ = splitTag(tags[i])
		}
		if endOfChunk(prevTag, tag, prevType, typ) {
			out = append(out, TagSpan{Start: begin, End: i, Type: prevType})
		}
		if startOfChunk(prevTag, tag, prevType, typ) {
			begin = i
			if tag == 'I' || tag == 'E' {
				ill++
			}
		}
		prevTag, prevType = tag, typ
	}
	return out, ill
}

// EncodeTags writes spans over n tokens as tags of the given scheme. Spans
// must be in range, non-empty and non-overlapping (resolve overlaps first).
func EncodeTags(n int, spans []TagSpan, scheme Scheme) ([]string, error) {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = "O"
	}
	for _, s := range spans {
		if s.Start < 0 || s.End > n || s.Start >= s.End {
			return nil, fmt.Errorf("mtl: EncodeTags: span [%d,%d) out of range for %d tokens", s.Start, s.End, n)
		}
		for i := s.Start; i < s.End; i++ {
			if tags[i] != "O" {
				return nil, fmt.Errorf("mtl: EncodeTags: span [%d,%d) %s overlaps another at token %d", s.Start, s.End, s.Type, i)
			}
			p := "I-"
			switch {
			case scheme == BILOU && s.End-s.Start == 1:
				p = "U-"
			case i == s.Start:
				p = "B-"
			case scheme == BILOU && i == s.End-1:
				p = "L-"
			}
			tags[i] = p + s.Type
		}
	}
	return tags, nil
}

// TagType strips a B-, I-, L-, U-, E- or S- prefix from a tag: the entity
// type the reference code scores tokens by. "O" stays "O".
func TagType(tag string) string {
	p, t := splitTag(tag)
	if p == 'O' {
		return tag
	}
	return t
}
