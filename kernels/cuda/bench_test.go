package cuda

import (
	"os"
	"strings"
	"testing"
)

// GPU benchmarks. They need the real driver (MTBERT_CUDA_REAL=1 or -cuda.real): the emulator
// is not a performance target. Times come from CUDA events around the launches, and each
// benchmark reports TFLOP/s (and the device in its log). Compare with PyTorch on the same GPU
// in the same session (issue 7: GEMM >= 60% of cuBLAS bf16, attention fwd+bwd >= 70% of
// scaled_dot_product_attention).

// gpuContext opens the real device 0 or skips. MTBERT_CUDA_BENCH_EMU=1 runs the benchmarks on
// the emulator of the conformance suite instead, to smoke-test their code with -benchtime 1x
// (the figures then mean nothing).
func gpuContext(b *testing.B) *Context {
	b.Helper()
	if os.Getenv("MTBERT_CUDA_BENCH_EMU") == "1" && len(backends) > 0 && backends[0].name == "emu" {
		c, err := openWith(backends[0].lib, 0)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	if !*realFlag && os.Getenv(RealEnv) != "1" {
		b.Skip("GPU benchmarks need a real GPU: set MTBERT_CUDA_REAL=1 on a machine with an NVIDIA driver (the emulator is not a performance target)")
	}
	c, err := openWith(DefaultLib, 0)
	if err != nil {
		b.Fatalf("opening the GPU: %v", err)
	}
	b.Logf("device: %v", c.Info())
	return c
}

// timeGPU runs launch b.N times between two events and reports the rate of flops per call.
func timeGPU(b *testing.B, c *Context, flops float64, launch func() error) {
	b.Helper()
	s := c.Stream()
	for range 3 { // warm-up: module load, smem attribute, clocks
		if err := launch(); err != nil {
			b.Fatal(err)
		}
	}
	start, err := c.NewEvent(true)
	if err != nil {
		b.Fatal(err)
	}
	end, err := c.NewEvent(true)
	if err != nil {
		b.Fatal(err)
	}
	defer start.Destroy()
	defer end.Destroy()
	check := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	check(s.Synchronize())
	b.ResetTimer()
	check(start.Record(s))
	n := 0
	for b.Loop() {
		check(launch())
		n++
	}
	check(end.Record(s))
	check(end.Synchronize())
	b.StopTimer()
	ms, err := ElapsedMs(start, end)
	check(err)
	sec := float64(ms) / 1e3 / float64(n)
	b.ReportMetric(flops/sec/1e12, "TFLOP/s")
	b.ReportMetric(sec*1e6, "us/call")
}

// BenchmarkGemmBF16 times mt_gemm_bf16 on the products of a BERT-base layer at 1024 tokens
// (batch 8 × sequence 128) and the batched attention score product.
func BenchmarkGemmBF16(b *testing.B) {
	for _, sh := range []struct {
		name           string
		m, n, k, batch int
		transB         bool
	}{
		{"qkv_out_M1024_N768_K768", 1024, 768, 768, 1, true},
		{"ffn_up_M1024_N3072_K768", 1024, 3072, 768, 1, true},
		{"ffn_down_M1024_N768_K3072", 1024, 768, 3072, 1, true},
		{"attn_scores_12x128x128x64", 128, 128, 64, 12, true},
		{"square_8192", 8192, 8192, 8192, 1, true},
	} {
		b.Run(sh.name, func(b *testing.B) {
			c := gpuContext(b)
			if sh.m == 8192 && os.Getenv("MTBERT_CUDA_BENCH_EMU") == "1" {
				b.Skip("8192^3 is too large for the emulator")
			}
			g := Gemm{M: sh.m, N: sh.n, K: sh.k, Batch: sh.batch, Alpha: 1, TransB: sh.transB,
				StrideA: sh.m * sh.k, StrideB: sh.n * sh.k, StrideC: sh.m * sh.n}
			a := mustAllocB(b, c, 2*sh.m*sh.k*sh.batch)
			w := mustAllocB(b, c, 2*sh.n*sh.k*sh.batch)
			out := mustAllocB(b, c, 2*sh.m*sh.n*sh.batch)
			defer a.Free()
			defer w.Free()
			defer out.Free()
			s := c.Stream()
			for _, x := range []Buffer{a, w} {
				if err := s.MemsetD8(x.Ptr, 0x3c, x.Size); err != nil { // bf16 0x3c3c ≈ 0.0115
					b.Fatal(err)
				}
			}
			timeGPU(b, c, 2*float64(sh.m)*float64(sh.n)*float64(sh.k)*float64(sh.batch), func() error {
				return s.GemmBF16(g, a, w, Buffer{}, out)
			})
		})
	}
}

// BenchmarkGemmF32 times the float32 SIMT path on the FFN shape, for reference.
func BenchmarkGemmF32(b *testing.B) {
	c := gpuContext(b)
	const m, n, k = 1024, 3072, 768
	a, w, out := mustAllocB(b, c, 4*m*k), mustAllocB(b, c, 4*n*k), mustAllocB(b, c, 4*m*n)
	defer a.Free()
	defer w.Free()
	defer out.Free()
	s := c.Stream()
	timeGPU(b, c, 2*m*n*k, func() error {
		return s.GemmF32(Gemm{M: m, N: n, K: k, Alpha: 1, TransB: true}, a, w, out)
	})
}

func mustAllocB(b *testing.B, c *Context, n int) Buffer {
	b.Helper()
	x, err := c.Alloc(n)
	if err != nil {
		b.Fatal(err)
	}
	return x
}

// BenchmarkFlashAttention times the fused attention at BERT-base training size (B=32, H=12,
// T=128, D=64, Q/K/V from a fused QKV projection, O in [B, T, H·D]). FLOPs follow the
// FlashAttention benchmark's convention: forward 4·B·H·T²·D, backward 2.5 times that.
func BenchmarkFlashAttention(b *testing.B) {
	B, H, T, D := 32, 12, 128, 64
	if os.Getenv("MTBERT_CUDA_BENCH_EMU") == "1" {
		B, H = 1, 1 // the emulator checks the benchmark runs, not the speed
	}
	fwd := 4.0 * float64(B*H*T*T*D)
	for _, mode := range []string{"fwd", "fwd_bwd", "fwd_simt", "fwd_bwd_simt"} {
		b.Run(mode, func(b *testing.B) {
			c := gpuContext(b)
			n := B * H * T * D
			a := FlashAttention{B: B, H: H, T: T, D: D, Scale: 0.125,
				QST: 3 * H * D, QSH: D, QSB: T * 3 * H * D, OST: H * D, OSH: D, OSB: T * H * D, Kernel: AttentionTensorCore}
			if strings.HasSuffix(mode, "_simt") {
				a.Kernel = AttentionSIMT
			}
			qkv := mustAllocB(b, c, 2*3*n)
			o, of, do := mustAllocB(b, c, 2*n), mustAllocB(b, c, 4*n), mustAllocB(b, c, 2*n)
			lse := mustAllocB(b, c, 4*B*H*T)
			dq, dk, dv := mustAllocB(b, c, 4*n), mustAllocB(b, c, 4*n), mustAllocB(b, c, 4*n)
			for _, x := range []Buffer{qkv, o, of, do, lse, dq, dk, dv} {
				defer x.Free()
			}
			s := c.Stream()
			for _, x := range []Buffer{qkv, do} {
				if err := s.MemsetD8(x.Ptr, 0x3c, x.Size); err != nil {
					b.Fatal(err)
				}
			}
			q, k, v := qkv.Slice(0, 2*3*n), qkv.Slice(2*H*D, 2*3*n-2*H*D), qkv.Slice(4*H*D, 2*3*n-4*H*D)
			flops := fwd
			bwd := strings.HasPrefix(mode, "fwd_bwd")
			if bwd {
				flops = 3.5 * fwd
			}
			timeGPU(b, c, flops, func() error {
				if err := s.FlashAttentionForward(a, q, k, v, o, Buffer{}, lse); err != nil || !bwd {
					return err
				}
				return s.FlashAttentionBackward(a, dq, dk, dv, q, k, v, o, Buffer{}, do, lse)
			})
		})
	}
}
