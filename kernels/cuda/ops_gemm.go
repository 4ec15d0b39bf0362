package cuda

import "fmt"

// Gemm describes a (strided, batched) matrix product in row-major storage:
//
//	C_b = Alpha·op(A_b)·op(B_b) + Beta·C_b,  b < Batch,  X_b = X + b·StrideX
//
// op(A) is M×K (A_b[m·LDA + k], or A_b[k·LDA + m] when TransA), op(B) is K×N (B_b[k·LDB + n],
// or B_b[n·LDB + k] when TransB), C_b[m·LDC + n]. Beta == 0 means C is not read. Batch 0 is
// taken as 1. Leading dimensions of 0 default to the packed ones.
type Gemm struct {
	TransA, TransB            bool
	M, N, K                   int
	Alpha, Beta               float32
	LDA, LDB, LDC             int
	StrideA, StrideB, StrideC int
	Batch                     int
}

func (g *Gemm) defaults() {
	if g.Batch == 0 {
		g.Batch = 1
	}
	if g.LDA == 0 {
		g.LDA = g.K
		if g.TransA {
			g.LDA = g.M
		}
	}
	if g.LDB == 0 {
		g.LDB = g.N
		if g.TransB {
			g.LDB = g.K
		}
	}
	if g.LDC == 0 {
		g.LDC = g.N
	}
}

// extent returns the elements a rows×cols matrix with leading dimension ld spans over batch
// copies stride apart.
func extent(rows, cols, ld, stride, batch int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (batch-1)*stride + (rows-1)*ld + cols
}

func (g *Gemm) check(op string, a, b, c, cbf16 Buffer, inSize int) {
	if g.M < 0 || g.N < 0 || g.K < 0 || g.Batch < 0 {
		panic(fmt.Sprintf("cuda: %s: bad dims M=%d N=%d K=%d batch=%d", op, g.M, g.N, g.K, g.Batch))
	}
	ar, ac := g.M, g.K
	if g.TransA {
		ar, ac = g.K, g.M
	}
	br, bc := g.K, g.N
	if g.TransB {
		br, bc = g.N, g.K
	}
	if ac > g.LDA && ar > 0 || bc > g.LDB && br > 0 || g.N > g.LDC && g.M > 0 {
		panic(fmt.Sprintf("cuda: %s: leading dimensions %d,%d,%d too small for M=%d N=%d K=%d", op, g.LDA, g.LDB, g.LDC, g.M, g.N, g.K))
	}
	need(op, "A", a, extent(ar, ac, g.LDA, g.StrideA, g.Batch), inSize, false)
	need(op, "B", b, extent(br, bc, g.LDB, g.StrideB, g.Batch), inSize, false)
	nc := extent(g.M, g.N, g.LDC, g.StrideC, g.Batch)
	need(op, "C", c, nc, 4, cbf16.Ptr != 0 && g.Beta == 0)
	need(op, "Cbf16", cbf16, nc, 2, true)
}

// GemmF32 computes g on float32 A, B, C with the SIMT kernel of src/gemm_f32.cu
// (64×64 tiles, block 256).
func (s *Stream) GemmF32(g Gemm, a, b, c Buffer) error {
	g.defaults()
	g.check("GemmF32", a, b, c, Buffer{}, 4)
	if g.M == 0 || g.N == 0 {
		return nil
	}
	return s.launch("gemm_f32", "mt_gemm_f32", Dim3{ceilDiv(g.N, 64), ceilDiv(g.M, 64), g.Batch}, Dim3{256, 1, 1}, 0,
		Ptr(a), Ptr(b), Ptr(c), I32(g.M), I32(g.N), I32(g.K), I32(b2i(g.TransA)), I32(b2i(g.TransB)),
		I64(g.LDA), I64(g.LDB), I64(g.LDC), I64(g.StrideA), I64(g.StrideB), I64(g.StrideC), F32(g.Alpha), F32(g.Beta))
}

// GemmBF16SharedBytes is the dynamic shared memory of mt_gemm_bf16 (MT_GEMM_BF16_SMEM).
const GemmBF16SharedBytes = 81920

// GemmBF16 computes g on bfloat16 A and B with float32 accumulation on the tensor cores
// (src/gemm_bf16.cu: 128×128 tiles, block 256, 80 KiB of dynamic shared memory). It writes
// the float32 result to c and/or its bf16 rounding to cbf16 (same LDC and StrideC); c may be
// the zero Buffer when Beta is 0.
func (s *Stream) GemmBF16(g Gemm, a, b, c, cbf16 Buffer) error {
	g.defaults()
	g.check("GemmBF16", a, b, c, cbf16, 2)
	if c.Ptr == 0 && cbf16.Ptr == 0 {
		panic("cuda: GemmBF16: neither C nor Cbf16 given")
	}
	if g.M == 0 || g.N == 0 {
		return nil
	}
	return s.launch("gemm_bf16", "mt_gemm_bf16", Dim3{ceilDiv(g.N, 128), ceilDiv(g.M, 128), g.Batch}, Dim3{256, 1, 1}, GemmBF16SharedBytes,
		Ptr(a), Ptr(b), Ptr(c), Ptr(cbf16), I32(g.M), I32(g.N), I32(g.K), I32(b2i(g.TransA)), I32(b2i(g.TransB)),
		I64(g.LDA), I64(g.LDB), I64(g.LDC), I64(g.StrideA), I64(g.StrideB), I64(g.StrideC), F32(g.Alpha), F32(g.Beta))
}

// Activation is the activation of a fused GEMM epilogue.
type Activation int

// The epilogue activations of mt_gemm_bf16_ex.
const (
	ActNone Activation = 0
	ActGELU Activation = 1 // the exact (erf) GELU, as BiasGeluForward
)

// GemmEpilogue is the fused epilogue of GemmBF16Ex: r = Alpha·acc + Beta·C + Bias[n] (Bias
// optional, N floats), Preact = r (optional, float32 with C's layout), then the activation.
type GemmEpilogue struct {
	Bias   Buffer
	Act    Activation
	Preact Buffer
}

// GemmBF16Ex is GemmBF16 with a fused epilogue: the bias add, a saved pre-activation and
// GELU (BERT's first FFN product in one launch: Act = ActGELU, Preact for the backward, Cbf16
// the bf16 input of the second product). c and cbf16 receive the activated result.
func (s *Stream) GemmBF16Ex(g Gemm, e GemmEpilogue, a, b, c, cbf16 Buffer) error {
	g.defaults()
	g.check("GemmBF16Ex", a, b, c, cbf16, 2)
	need("GemmBF16Ex", "Bias", e.Bias, g.N, 4, true)
	need("GemmBF16Ex", "Preact", e.Preact, extent(g.M, g.N, g.LDC, g.StrideC, g.Batch), 4, true)
	if e.Act != ActNone && e.Act != ActGELU {
		panic(fmt.Sprintf("cuda: GemmBF16Ex: unknown activation %d", e.Act))
	}
	if c.Ptr == 0 && cbf16.Ptr == 0 && e.Preact.Ptr == 0 {
		panic("cuda: GemmBF16Ex: no output")
	}
	if g.M == 0 || g.N == 0 {
		return nil
	}
	return s.launch("gemm_bf16", "mt_gemm_bf16_ex", Dim3{ceilDiv(g.N, 128), ceilDiv(g.M, 128), g.Batch}, Dim3{256, 1, 1}, GemmBF16SharedBytes,
		Ptr(a), Ptr(b), Ptr(c), Ptr(cbf16), I32(g.M), I32(g.N), I32(g.K), I32(b2i(g.TransA)), I32(b2i(g.TransB)),
		I64(g.LDA), I64(g.LDB), I64(g.LDC), I64(g.StrideA), I64(g.StrideB), I64(g.StrideC), F32(g.Alpha), F32(g.Beta),
		Ptr(e.Bias), I32(int(e.Act)), Ptr(e.Preact))
}
