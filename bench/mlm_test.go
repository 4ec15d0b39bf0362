package bench

import "testing"

// TestMLMRuns checks the bench's accounting on a tiny encoder: 15% of the tokens masked and
// positive rates for both steps.
func TestMLMRuns(t *testing.T) {
	r, err := MLM(MLMOptions{Layers: 1, Hidden: 64, Batch: 2, Seq: 64, Reps: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Masked < 8 || r.Masked > 32 { // 15% of 126 non-special tokens: 19 expected
		t.Errorf("masked %d of 128", r.Masked)
	}
	if r.MLMTokensPerS <= 0 || r.FinetuneTokensPerS <= 0 {
		t.Errorf("rates %+v", r)
	}
	if _, err := MLM(MLMOptions{Layers: 1, Hidden: 60, Batch: 1, Seq: 8, Reps: 1}); err == nil {
		t.Error("hidden 60 accepted")
	}
}
