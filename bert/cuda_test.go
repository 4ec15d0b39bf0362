package bert

import (
	"math"
	"os"
	"testing"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/kernels/cuda"
)

// openCUDA opens cuda:0 on a real GPU when MTBERT_CUDA_REAL=1, else on the host emulation of
// the driver (built from ../kernels/cuda when a C++ compiler is present; skipped otherwise).
func openCUDA(t *testing.T) *cuda.Context {
	t.Helper()
	if os.Getenv("MTBERT_CUDA_REAL") != "1" && os.Getenv(cuda.LibEnv) == "" {
		lib, msg, err := cuda.BuildEmulator("../kernels/cuda")
		if err != nil {
			t.Fatalf("building the CUDA emulation: %v", err)
		}
		if lib == "" {
			t.Skip(msg)
		}
		t.Setenv(cuda.LibEnv, lib)
	}
	c, err := cuda.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCUDAEncoderMatchesCPU runs a 2-layer encoder on the GPU path (the host emulation in CI)
// and on the CPU on a right-padded batch of two rows: the last hidden states agree within bf16
// tolerance (the attention's Q, K and V are rounded to bf16), and a left-padded mask is refused.
func TestCUDAEncoderMatchesCPU(t *testing.T) {
	c := openCUDA(t)
	cfg := DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize = 60, 128, 2, 256
	cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings = 2, 32
	m, err := New(cfg, 7, false)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 2, 13
	b := Batch{B: B, T: T, IDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i := range b.IDs {
		r, p := i/T, i%T
		if r == 1 && p >= 9 {
			continue // row 1: 9 tokens, then padding
		}
		b.IDs[i], b.Mask[i] = int32(5+(i*37)%50), 1
		if p > 6 {
			b.TypeIDs[i] = 1
		}
	}
	out, err := m.Forward(autograd.NoGrad(), b, false)
	if err != nil {
		t.Fatal(err)
	}
	want := out.Last.Value.Data()
	e, err := NewCUDAEncoder(c, m)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got, err := e.Forward(b)
	if err != nil {
		t.Fatal(err)
	}
	worst, sum := 0.0, 0.0
	for i := range want {
		d := math.Abs(float64(got[i] - want[i]))
		worst, sum = max(worst, d), sum+d
	}
	t.Logf("GPU path vs CPU: max |diff| %.3g, mean %.3g over %d values", worst, sum/float64(len(want)), len(want))
	// LayerNorm outputs are O(1); only Q, K and V are rounded to bf16 (8 bits).
	if worst > 5e-3 || sum/float64(len(want)) > 1e-3 {
		t.Errorf("GPU path differs from the CPU by up to %g (mean %g)", worst, sum/float64(len(want)))
	}
	b.Mask[0] = 0 // a hole at the start of row 0: not right padding
	if _, err := e.Forward(b); err == nil {
		t.Error("a mask that is not right padding was accepted")
	}
}
