package corpus

import (
	"reflect"
	"testing"
)

func TestDecodeTagsSeqeval(t *testing.T) {
	cases := []struct {
		tags []string
		want []TagSpan
		ill  int
	}{
		// seqeval get_entities docstring: [('PER', 0, 1), ('LOC', 3, 3)]
		// (inclusive ends).
		{[]string{"B-PER", "I-PER", "O", "B-LOC"}, []TagSpan{{0, 2, "PER"}, {3, 4, "LOC"}}, 0},
		// tests/test_metrics.py test_get_entities: [('MISC', 3, 5), ('PER', 7, 8)].
		{[]string{"O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O", "B-PER", "I-PER"}, []TagSpan{{3, 6, "MISC"}, {7, 9, "PER"}}, 0},
		// test_get_entities_with_only_IOB, flattened as seqeval does (an O
		// after each sentence): [('_', 3, 5), ('_', 8, 9)]; seqeval's '_'
		// is our empty type.
		{[]string{"O", "O", "O", "B", "I", "I", "O", "B", "I", "O"}, []TagSpan{{3, 6, ""}, {7, 9, ""}}, 0},
		// Ill-formed starts (default mode): I- after O, I- of another type.
		{[]string{"I-PER", "I-PER", "O"}, []TagSpan{{0, 2, "PER"}}, 1},
		{[]string{"B-PER", "I-LOC", "I-LOC"}, []TagSpan{{0, 1, "PER"}, {1, 3, "LOC"}}, 1},
		{[]string{"O", "I-PER", "B-PER", "I-PER"}, []TagSpan{{1, 2, "PER"}, {2, 4, "PER"}}, 1},
		// BILOU / IOBES.
		{[]string{"U-PER", "B-LOC", "L-LOC", "O", "B-X", "I-X", "L-X"}, []TagSpan{{0, 1, "PER"}, {1, 3, "LOC"}, {4, 7, "X"}}, 0},
		{[]string{"S-PER", "B-LOC", "E-LOC"}, []TagSpan{{0, 1, "PER"}, {1, 3, "LOC"}}, 0},
		{[]string{"L-PER"}, []TagSpan{{0, 1, "PER"}}, 1},
		{[]string{"B-X", "L-X", "L-X"}, []TagSpan{{0, 2, "X"}, {2, 3, "X"}}, 1},
		{[]string{"U-X", "I-X"}, []TagSpan{{0, 1, "X"}, {1, 2, "X"}}, 1},
		{[]string{"B-X", "B-X", "U-X"}, []TagSpan{{0, 1, "X"}, {1, 2, "X"}, {2, 3, "X"}}, 0},
		{nil, nil, 0},
		{[]string{"O", "MISC"}, nil, 0},
	}
	for _, c := range cases {
		got, ill := decodeTags(c.tags)
		if !reflect.DeepEqual(got, c.want) || ill != c.ill {
			t.Errorf("%v: got %v (ill %d), want %v (ill %d)", c.tags, got, ill, c.want, c.ill)
		}
		if got := DecodeTags(c.tags, BILOU); !reflect.DeepEqual(got, c.want) {
			t.Errorf("DecodeTags(%v) = %v", c.tags, got)
		}
	}
}

func TestEncodeTagsRoundTrip(t *testing.T) {
	spans := []TagSpan{{0, 1, "A"}, {2, 5, "B"}, {5, 7, "A"}}
	bio, err := EncodeTags(8, spans, BIO)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"B-A", "O", "B-B", "I-B", "I-B", "B-A", "I-A", "O"}; !reflect.DeepEqual(bio, want) {
		t.Errorf("BIO %v, want %v", bio, want)
	}
	bilou, err := EncodeTags(8, spans, BILOU)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"U-A", "O", "B-B", "I-B", "L-B", "B-A", "L-A", "O"}; !reflect.DeepEqual(bilou, want) {
		t.Errorf("BILOU %v, want %v", bilou, want)
	}
	for _, tags := range [][]string{bio, bilou} {
		if got := DecodeTags(tags, BIO); !reflect.DeepEqual(got, spans) {
			t.Errorf("decode(%v) = %v", tags, got)
		}
	}
	if _, err := EncodeTags(4, []TagSpan{{0, 2, "A"}, {1, 3, "B"}}, BIO); err == nil {
		t.Error("overlapping spans encoded without error")
	}
	if _, err := EncodeTags(4, []TagSpan{{3, 5, "A"}}, BIO); err == nil {
		t.Error("out-of-range span encoded without error")
	}
}
