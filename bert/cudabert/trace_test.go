package cudabert

import (
	"fmt"
	"math"
	"testing"

	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/kernels/cuda/cudatest"
)

// traceStage is one stage of an encoder pass: its name and its hidden state in the CPU's and
// the GPU's trace.
type traceStage struct {
	name      string
	cpu, gpu  []float32
	max, mean float64 // tolerances on |gpu-cpu|
}

// traceStages lines up every stage of two traces, in pass order, failing when either trace
// lacks one (so that no layer goes uncompared).
func traceStages(t *testing.T, layers int, cpu, gpu *bert.Trace, maxTol, meanTol, embTol float64) []traceStage {
	t.Helper()
	for _, tr := range []struct {
		side string
		tr   *bert.Trace
	}{{"CPU", cpu}, {"GPU", gpu}} {
		if tr.tr.Embeddings == nil || len(tr.tr.Attention) != layers || len(tr.tr.Layers) != layers {
			t.Fatalf("%s trace: embeddings %v, %d attention and %d layer outputs for %d layers",
				tr.side, tr.tr.Embeddings != nil, len(tr.tr.Attention), len(tr.tr.Layers), layers)
		}
	}
	st := []traceStage{{"embeddings", cpu.Embeddings, gpu.Embeddings, embTol, embTol}}
	for i := 0; i < layers; i++ {
		st = append(st,
			traceStage{fmt.Sprintf("layer %d attention output (after its LayerNorm)", i), cpu.Attention[i], gpu.Attention[i], maxTol, meanTol},
			traceStage{fmt.Sprintf("layer %d FFN output (the layer's output)", i), cpu.Layers[i], gpu.Layers[i], maxTol, meanTol})
	}
	return st
}

// TestTraceMatchesCPULayerByLayer walks the CPU encoder (bert.Model.Trace, built on
// Model.Forward) and the GPU encoder (Encoder.Trace, on the host emulation in CI) stage by
// stage over a 4-layer random model and a right-padded batch: the embeddings, and in every
// layer the attention block's and the feed-forward block's outputs. It fails at the first
// stage that disagrees, naming the layer and the block, so a change on one side only (say a
// LayerNorm eps, a residual, the GELU) points at where the two encoders part.
func TestTraceMatchesCPULayerByLayer(t *testing.T) {
	c := cudatest.Open(t)
	cfg := bert.DefaultConfig()
	cfg.VocabSize, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize = 70, 64, 2, 128
	cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings = 4, 32
	// Weights 2.5 times BERT's initializer_range, so that every block moves the hidden state
	// well beyond the tolerance (with 0.02 a block adds a few percent to its residual, and the
	// attention and FFN outputs differ from the CPU's by the same amount: the FFN hardly
	// shows); larger weights sharpen the softmax until bf16 Q and K part from the CPU.
	cfg.InitializerRange = 0.05
	m, err := bert.New(cfg, 21, true)
	if err != nil {
		t.Fatal(err)
	}
	const B, T = 3, 10
	b := bert.Batch{B: B, T: T, IDs: make([]int32, B*T), TypeIDs: make([]int32, B*T), Mask: make([]float32, B*T)}
	for i := range b.IDs {
		r, p := i/T, i%T
		if p >= T-3*r { // rows of 10, 7 and 4 tokens, then padding
			continue
		}
		b.IDs[i], b.Mask[i] = int32(4+(i*29)%60), 1
		if p >= 5 {
			b.TypeIDs[i] = 1
		}
	}
	want, err := m.Trace(b)
	if err != nil {
		t.Fatal(err)
	}
	// The trace's last stage is what Forward returns.
	out, err := m.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(want.Layers[len(want.Layers)-1], out.Last.Value.Data()); d != 0 {
		t.Fatalf("CPU trace's last layer differs from Forward's last hidden state by %g", d)
	}
	// Each stage ends in a LayerNorm, so values are O(1). The embeddings are float32 gathers
	// and a LayerNorm on both sides; the layers round Q, K and V (float32 GEMMs) or every GEMM
	// input (mixed precision) to bf16, 8 bits of mantissa. The bounds are about twice the
	// differences the host emulation gives by layer 3 (8.5e-4 max, 2.1e-4 mean with float32
	// GEMMs; 4e-3 and 8.8e-4 in mixed precision).
	precs := []struct {
		name                    string
		bf16                    bool
		maxTol, meanTol, embTol float64
	}{{"float32 GEMMs", false, 2e-3, 5e-4, 1e-5}, {"mixed precision", true, 1e-2, 2e-3, 1e-5}}
	// The test only sees a change to a block that moves the hidden state well beyond the
	// tolerance: check that every block does.
	prev := want.Embeddings
	for _, s := range traceStages(t, cfg.NumHiddenLayers, want, want, 0, 0, 0)[1:] {
		moved := meanDiff(s.cpu, prev)
		t.Logf("%s: moves the CPU hidden state by %.3g on average", s.name, moved)
		if moved < 20*precs[1].meanTol {
			t.Errorf("%s moves the hidden state by only %.3g on average: a change to it could hide under the tolerance", s.name, moved)
		}
		prev = s.cpu
	}
	for _, prec := range precs {
		t.Run(prec.name, func(t *testing.T) {
			e, err := New(c, m)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if prec.bf16 {
				if err := e.UseBF16(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := e.Trace(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range traceStages(t, cfg.NumHiddenLayers, want, got, prec.maxTol, prec.meanTol, prec.embTol) {
				if len(s.gpu) != len(s.cpu) {
					t.Fatalf("%s: %d values on the GPU, %d on the CPU", s.name, len(s.gpu), len(s.cpu))
				}
				worst, sum := 0.0, 0.0
				for i := range s.cpu {
					d := math.Abs(float64(s.gpu[i] - s.cpu[i]))
					worst, sum = max(worst, d), sum+d
				}
				mean := sum / float64(len(s.cpu))
				t.Logf("%s: max |GPU-CPU| %.3g, mean %.3g", s.name, worst, mean)
				if worst > s.max || mean > s.mean {
					t.Fatalf("%s: the GPU encoder first parts from the CPU here: max |diff| %.3g (tolerance %g), mean %.3g (tolerance %g)",
						s.name, worst, s.max, mean, s.mean)
				}
			}
		})
	}
}

// maxDiff returns the largest |a[i]-b[i]|, or +Inf when the lengths differ.
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

// meanDiff returns the mean |a[i]-b[i]|.
func meanDiff(a, b []float32) float64 {
	sum := 0.0
	for i := range a {
		sum += math.Abs(float64(a[i] - b[i]))
	}
	return sum / float64(len(a))
}
