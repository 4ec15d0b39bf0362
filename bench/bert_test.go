package bench

import (
	"strings"
	"testing"

	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
)

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

// TestMTRuns runs the multitask comparison on a small encoder. Speed is a benchmark figure
// (mtbert bench mt), not something a test on a shared machine can assert; this checks the run
// completes and reports what it measured.
func TestMTRuns(t *testing.T) {
	r, err := MT(MTOptions{K: 4, Labels: 9, Layers: 2, Hidden: 64, Batch: 2, Seq: 32, Reps: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.K != 4 || !(r.MultiMs > 0) || !(r.SingleMs > 0) {
		t.Fatalf("%+v", r)
	}
	if _, err := MT(MTOptions{K: 0, Labels: 9, Layers: 1, Hidden: 64, Batch: 1, Seq: 8, Reps: 1}); err == nil {
		t.Fatal("k = 0 accepted")
	}
}

// TestBertOnTheGPUPath runs bench bert's inference and training step on the host emulation of
// the CUDA driver (a real GPU with MTBERT_CUDA_REAL=1): the workload runs and reports the device.
func TestBertOnTheGPUPath(t *testing.T) {
	c := cudatest.Open(t)
	for _, mode := range []string{"infer", "train"} {
		for _, f32 := range []bool{false, true} {
			r, err := Bert(BertOptions{Layers: 1, Hidden: 64, Batch: 2, Seq: 8, Mode: mode, Reps: 1, CUDA: c, Float32: f32})
			if err != nil {
				t.Fatal(mode, err)
			}
			if r.Device != c.Info().Name || r.TokensPerS <= 0 || r.Mode != mode || strings.Contains(r.GemmPath, "bf16") == f32 {
				t.Errorf("%s, float32 %v: %+v", mode, f32, r)
			}
		}
	}
	if r, err := Bert(BertOptions{Layers: 1, Hidden: 64, Batch: 2, Seq: 8, Mode: "train", Reps: 1, Dropout: 0.1, CUDA: c}); err != nil || r.Dropout != 0.1 {
		t.Errorf("training with dropout on the GPU path: %+v, %v", r, err)
	}
}
