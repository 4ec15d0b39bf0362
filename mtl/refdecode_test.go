package mtl

import "testing"

// TestReferenceType checks the reduction of predict_ner.py, x[2:] if '-' in x else
// x.replace('BERT_TOKEN', 'O'), on the values Python gives.
func TestReferenceType(t *testing.T) {
	for in, want := range map[string]string{
		"B-problem": "problem", "U-treatment": "treatment", "L-ADE": "ADE", "I-CLINICAL_DEPT": "CLINICAL_DEPT",
		"BERT_TOKEN": "O", "O": "O", "B-Reason-Drug": "Reason-Drug", "é-x": "x", "-": "", "B-": "",
	} {
		if got := referenceType(in); got != want {
			t.Errorf("referenceType(%q) = %q, want %q", in, got, want)
		}
	}
	if wordTag(ReferenceSubwordLabel) != "O" || wordTag("B-problem") != "B-problem" {
		t.Error("wordTag: BERT_TOKEN must read as O and other tags as themselves")
	}
	for in, want := range map[string]NERDecoding{"": DecodeStrict, "strict": DecodeStrict, "reference": DecodeReference} {
		if got, err := ParseNERDecoding(in); err != nil || got != want {
			t.Errorf("ParseNERDecoding(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseNERDecoding("seqeval"); err == nil {
		t.Error("ParseNERDecoding(seqeval): no error")
	}
}
