package bench

import (
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"time"

	"github.com/mtbert/mtbert/autograd"
	"github.com/mtbert/mtbert/bert"
	"github.com/mtbert/mtbert/bert/cudabert"
	"github.com/mtbert/mtbert/kernels"
	"github.com/mtbert/mtbert/kernels/cuda"
	"github.com/mtbert/mtbert/nn"
	"github.com/mtbert/mtbert/tensor"
)

// BertOptions sets up a BERT workload: a randomly initialised encoder of Layers layers and
// Hidden units (Hidden/64 heads, 4·Hidden intermediate, Bio+Clinical BERT's 28,996-token
// vocabulary) and a 9-label token-classification head, as ../shared/tools/torch_bert.py builds.
type BertOptions struct {
	Layers, Hidden, Batch, Seq int
	// Mode is "infer" (forward and head, no tape) or "train" (forward, cross-entropy, backward
	// and an AdamW step).
	Mode string
	// Reps is the number of timed repetitions after one warm-up; the median is reported.
	Reps int
	// Dropout is the hidden and attention dropout in train mode (the PyTorch anchor has none).
	Dropout float64
	// CUDA, when set, runs the workload on that device (cudabert.Encoder, cudabert.Trainer)
	// instead of the CPU.
	CUDA *cuda.Context
	// Float32 keeps the GPU path's GEMMs in float32 (the SIMT kernel) instead of mixed
	// precision (bf16 inputs on the tensor-core kernel, float32 accumulation and master weights).
	Float32 bool
	// NoPack, in infer mode, leaves the linear weights unpacked (packed by every GEMM call, as
	// before bert.Model.PackForInference): the baseline of the packing.
	NoPack bool
	// Int8, in infer mode, quantises the encoder's linear layers to int8 and drops their float
	// weights (bert.Model.QuantizeInt8).
	Int8 bool
	// Model, when set, loads the encoder from this folder (a Hugging Face BERT or mtbert
	// checkpoint, float or int8 as `mtbert quantize` writes it) instead of building a random
	// one; Layers and Hidden are then taken from its config. Infer mode only.
	Model string
}

// BertResult is one line of `mtbert bench bert`.
type BertResult struct {
	Mode       string  `json:"mode"`
	TokensPerS float64 `json:"tokens_per_s"`
	MsPerStep  float64 `json:"ms_per_step"`
	MsBest     float64 `json:"ms_best"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	// LoadRSSMB is the resident set once the model is built or loaded and its weights prepared
	// (packed or quantised), after a GC that returns freed memory to the OS; InferPeakRSSMB the
	// peak resident set of the timed steps alone (VmHWM reset after loading; 0 where Linux
	// cannot reset it): the weights plus the activations, without the loader's transients.
	LoadRSSMB      float64 `json:"load_rss_mb"`
	InferPeakRSSMB float64 `json:"infer_peak_rss_mb"`
	Layers         int     `json:"layers"`
	Hidden         int     `json:"hidden"`
	Batch          int     `json:"batch"`
	Seq            int     `json:"seq"`
	Reps           int     `json:"reps"`
	Threads        int     `json:"threads"`
	GemmPath       string  `json:"gemm_path"`
	Weights        string  `json:"weights"` // "fp32", "fp32-packed" or "int8" (infer mode)
	Dropout        float64 `json:"dropout"`
	PoolAllocs     int     `json:"pool_allocs_after_warmup"`
	ParamsCount    int     `json:"params"`
	// Device is "cpu" or the CUDA device's name.
	Device string `json:"device"`
	// On a CUDA device, from the caching allocator's statistics: the peak of the memory
	// handed out and of the segments held from the driver (weights, gradients, moments and
	// activations), and the driver allocations during the timed steps (0 once warm).
	PeakDeviceMB         float64 `json:"peak_device_mb,omitempty"`
	PeakDeviceReservedMB float64 `json:"peak_device_reserved_mb,omitempty"`
	DriverAllocsTimed    *int64  `json:"device_driver_allocs_after_warmup,omitempty"`
}

// Bert runs the workload and measures it.
func Bert(o BertOptions) (BertResult, error) {
	if o.Mode != "infer" && o.Mode != "train" {
		return BertResult{}, fmt.Errorf("bench bert: mode %q, want infer or train", o.Mode)
	}
	if o.Hidden%64 != 0 || o.Hidden <= 0 || o.Layers <= 0 || o.Batch <= 0 || o.Seq <= 0 || o.Reps <= 0 {
		return BertResult{}, fmt.Errorf("bench bert: need positive layers, batch, seq, reps and hidden a multiple of 64 (have %+v)", o)
	}
	var m *bert.Model
	if o.Model != "" {
		if o.Mode != "infer" || o.CUDA != nil {
			return BertResult{}, fmt.Errorf("bench bert: -model is for -mode infer on the CPU")
		}
		lm, err := bert.Load(o.Model)
		if err != nil {
			return BertResult{}, err
		}
		if o.Seq > lm.Cfg.MaxPositionEmbeddings {
			return BertResult{}, fmt.Errorf("bench bert: -seq %d is more than %s's max_position_embeddings %d", o.Seq, o.Model, lm.Cfg.MaxPositionEmbeddings)
		}
		m, o.Layers, o.Hidden = lm, lm.Cfg.NumHiddenLayers, lm.Cfg.HiddenSize
	} else {
		cfg := bert.DefaultConfig()
		cfg.VocabSize, cfg.NumHiddenLayers, cfg.HiddenSize = 28996, o.Layers, o.Hidden
		cfg.NumAttentionHeads, cfg.IntermediateSize = o.Hidden/64, 4*o.Hidden
		cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = o.Dropout, o.Dropout
		cfg.MaxPositionEmbeddings = max(512, o.Seq)
		nm, err := bert.New(cfg, 1, false)
		if err != nil {
			return BertResult{}, err
		}
		m = nm
	}
	cfg := m.Cfg
	if o.CUDA != nil {
		return bertCUDA(o, m)
	}
	g := tensor.NewRNG(2)
	head := nn.NewLinear(nn.Root(m.Params).Sub("head"), g, o.Hidden, 9, true, 0.02)
	opt := nn.NewAdamW(m.Params.List(), 5e-5, 0.01)
	n := o.Batch * o.Seq
	b := bert.Batch{B: o.Batch, T: o.Seq, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	labels := make([]int32, n)
	for i := range b.IDs {
		b.IDs[i] = int32(g.IntN(cfg.VocabSize))
		b.Mask[i] = 1
		labels[i] = int32(g.IntN(9))
	}
	train := o.Mode == "train"
	weights := "fp32"
	switch {
	case train:
	case m.IsInt8():
		weights = "int8 checkpoint (" + kernels.QGemmPath() + ")"
	case o.Int8:
		m.QuantizeInt8()
		weights = "int8 (" + kernels.QGemmPath() + ")"
	case !o.NoPack:
		m.PackForInferenceOnly() // as predict and serve: no second copy of the weights
		weights = "fp32-packed"
	}
	var tp *autograd.Tape
	if train {
		tp = autograd.NewTape()
	} else {
		tp = autograd.NoGrad()
	}
	step := func() error {
		var out *bert.Output
		var err error
		if train {
			out, err = m.Forward(tp, b, true)
		} else {
			out, err = m.Infer(tp, b) // as the inference commands run it
		}
		if err != nil {
			return err
		}
		logits := head.Forward(tp, out.Last)
		if train {
			tp.Backward(tp.CrossEntropy(logits, labels, autograd.IgnoreIndex))
			opt.Step()
			m.Params.ZeroGrad()
		}
		tp.Reset()
		return nil
	}
	peakLoad := PeakRSSMB()
	debug.FreeOSMemory()
	loadRSS := procStatusMB("VmRSS:")
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	if err := step(); err != nil {
		return BertResult{}, err
	}
	warm := tp.PoolAllocs()
	med, best, err := timeSteps(o.Reps, step)
	if err != nil {
		return BertResult{}, err
	}
	var inferPeak float64
	if hwmReset {
		inferPeak = PeakRSSMB()
	}
	return BertResult{
		LoadRSSMB: loadRSS, InferPeakRSSMB: inferPeak,
		Mode: o.Mode, TokensPerS: float64(n) / med, MsPerStep: med * 1e3, MsBest: best * 1e3,
		PeakRSSMB: max(peakLoad, PeakRSSMB()), Layers: o.Layers, Hidden: o.Hidden, Batch: o.Batch, Seq: o.Seq, Reps: o.Reps,
		Threads: kernels.Threads(), GemmPath: kernels.GemmPath(), Weights: weights, Dropout: o.Dropout,
		PoolAllocs: tp.PoolAllocs() - warm, ParamsCount: m.Params.Count(), Device: "cpu",
	}, nil
}

// bertCUDA is Bert on o.CUDA: inference is cudabert.Encoder.Forward (the last hidden state is
// copied back, which synchronises), a training step is cudabert.Trainer.Step (forward, a 9-label
// head's cross-entropy, backward and the multi-tensor AdamW kernel; the loss copied back).
func bertCUDA(o BertOptions, m *bert.Model) (BertResult, error) {
	g := tensor.NewRNG(2)
	head := nn.NewLinear(nn.Root(nn.NewParams()).Sub("head"), g, o.Hidden, 9, true, 0.02)
	n := o.Batch * o.Seq
	b := bert.Batch{B: o.Batch, T: o.Seq, IDs: make([]int32, n), TypeIDs: make([]int32, n), Mask: make([]float32, n)}
	labels := make([]int32, n)
	for i := range b.IDs {
		b.IDs[i], b.Mask[i], labels[i] = int32(g.IntN(m.Cfg.VocabSize)), 1, int32(g.IntN(9))
	}
	e, err := cudabert.New(o.CUDA, m)
	if err != nil {
		return BertResult{}, err
	}
	defer e.Close()
	path := "cuda float32 simt"
	if !o.Float32 {
		if err := e.UseBF16(); err != nil {
			return BertResult{}, err
		}
		path = "cuda bf16 tensor cores (mixed precision)"
	}
	step := func() error { _, err := e.Forward(b); return err }
	if o.Mode == "train" {
		tr, err := cudabert.NewTrainer(e, head, 5e-5, 0.01, nil)
		if err != nil {
			return BertResult{}, err
		}
		defer tr.Close()
		step = func() error { _, err := tr.Step(b, labels, autograd.IgnoreIndex); return err }
	}
	if err := step(); err != nil {
		return BertResult{}, err
	}
	warm := o.CUDA.Allocator().Stats().DriverAllocs
	med, best, err := timeSteps(o.Reps, step)
	if err != nil {
		return BertResult{}, err
	}
	st := o.CUDA.Allocator().Stats()
	timed := st.DriverAllocs - warm
	return BertResult{
		Mode: o.Mode, TokensPerS: float64(n) / med, MsPerStep: med * 1e3, MsBest: best * 1e3,
		PeakRSSMB: PeakRSSMB(), Layers: o.Layers, Hidden: o.Hidden, Batch: o.Batch, Seq: o.Seq, Reps: o.Reps,
		ParamsCount: m.Params.Count(), Device: o.CUDA.Info().Name, GemmPath: path, Dropout: o.Dropout,
		PeakDeviceMB: float64(st.PeakAllocated) / (1 << 20), PeakDeviceReservedMB: float64(st.PeakReserved) / (1 << 20), DriverAllocsTimed: &timed,
	}, nil
}

// timeSteps runs step reps times and returns the median and the best wall time in seconds.
func timeSteps(reps int, step func() error) (med, best float64, err error) {
	times := make([]float64, reps)
	for i := range times {
		t0 := time.Now()
		if err := step(); err != nil {
			return 0, 0, err
		}
		times[i] = time.Since(t0).Seconds()
	}
	sort.Float64s(times)
	return times[len(times)/2], times[0], nil
}

// PeakRSSMB returns the process's peak resident set (VmHWM) in MiB, or 0 where /proc is absent.
func PeakRSSMB() float64 { return procStatusMB("VmHWM:") }
