package bench

import "testing"

// TestBertSmoke runs a two-layer model in both modes; the training step must reuse its
// buffers after the warm-up step.
func TestBertSmoke(t *testing.T) {
	for _, mode := range []string{"infer", "train"} {
		r, err := Bert(BertOptions{Layers: 2, Hidden: 64, Batch: 2, Seq: 16, Mode: mode, Reps: 2, Dropout: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		if r.TokensPerS <= 0 || r.PoolAllocs != 0 {
			t.Fatalf("%s: %+v", mode, r)
		}
	}
	if _, err := Bert(BertOptions{Layers: 1, Hidden: 60, Batch: 1, Seq: 1, Mode: "train", Reps: 1}); err == nil {
		t.Fatal("hidden 60 accepted")
	}
}

// TestMTSpeedup checks that one pass feeding k heads beats k passes: with 4 heads on a small
// encoder the speed-up must exceed 2 (it approaches k as the heads' share shrinks).
func TestMTSpeedup(t *testing.T) {
	r, err := MT(MTOptions{K: 4, Labels: 9, Layers: 2, Hidden: 64, Batch: 2, Seq: 32, Reps: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Speedup < 2 {
		t.Fatalf("speed-up %.2f with 4 heads: %+v", r.Speedup, r)
	}
}
