package cuda

import "fmt"

// This file launches the kernels of src/elementwise.cu and src/reduce.cu as KERNELS.md
// specifies them. Every wrapper checks its buffers' sizes (panicking on a mismatch, as the
// CPU kernels do) and queues the kernel on the stream; nothing waits.

// FillF32 sets x[0:n] = v.
func (s *Stream) FillF32(x Buffer, v float32, n int) error {
	need("FillF32", "x", x, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_fill_f32", g, b, 0, Ptr(x), F32(v), I64(n))
}

// AxpyF32 computes y[i] += a·x[i] for i < n (as fmaf(a, x[i], y[i])).
func (s *Stream) AxpyF32(y, x Buffer, a float32, n int) error {
	need("AxpyF32", "y", y, n, 4, false)
	need("AxpyF32", "x", x, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_axpy_f32", g, b, 0, Ptr(y), Ptr(x), F32(a), I64(n))
}

// ScaleF32 computes y[i] = a·x[i] (y may be x).
func (s *Stream) ScaleF32(y, x Buffer, a float32, n int) error {
	need("ScaleF32", "y", y, n, 4, false)
	need("ScaleF32", "x", x, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_scale_f32", g, b, 0, Ptr(y), Ptr(x), F32(a), I64(n))
}

// F32ToBF16 rounds x[0:n] to bfloat16 (nearest even) into y.
func (s *Stream) F32ToBF16(y, x Buffer, n int) error {
	need("F32ToBF16", "y", y, n, 2, false)
	need("F32ToBF16", "x", x, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_f32_to_bf16", g, b, 0, Ptr(y), Ptr(x), I64(n))
}

// BF16ToF32 widens bfloat16 x[0:n] into float32 y.
func (s *Stream) BF16ToF32(y, x Buffer, n int) error {
	need("BF16ToF32", "y", y, n, 4, false)
	need("BF16ToF32", "x", x, n, 2, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_bf16_to_f32", g, b, 0, Ptr(y), Ptr(x), I64(n))
}

// DropoutForward computes y = x·keep/(1−p) with keep drawn from Philox4x32-10 at
// (seed, offset+i), and writes keep (0/1 bytes) to mask unless mask is the zero Buffer.
func (s *Stream) DropoutForward(y, mask, x Buffer, n int, p float32, seed, offset uint64) error {
	if p < 0 || p >= 1 {
		panic("cuda: DropoutForward: p must be in [0, 1)")
	}
	need("DropoutForward", "y", y, n, 4, false)
	need("DropoutForward", "mask", mask, n, 1, true)
	need("DropoutForward", "x", x, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_dropout_fwd_f32", g, b, 0, Ptr(y), Ptr(mask), Ptr(x), I64(n), F32(p), U64(seed), U64(offset))
}

// DropoutBackward computes dx = dy·keep/(1−p), regenerating keep as DropoutForward drew it.
func (s *Stream) DropoutBackward(dx, dy Buffer, n int, p float32, seed, offset uint64) error {
	if p < 0 || p >= 1 {
		panic("cuda: DropoutBackward: p must be in [0, 1)")
	}
	need("DropoutBackward", "dx", dx, n, 4, false)
	need("DropoutBackward", "dy", dy, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_dropout_bwd_f32", g, b, 0, Ptr(dx), Ptr(dy), I64(n), F32(p), U64(seed), U64(offset))
}

// Reduction selects what ReduceF32 computes.
type Reduction int

// The reductions of src/reduce.cu.
const (
	ReduceSum    Reduction = iota // Σ x
	ReduceSumSq                   // Σ x²
	ReduceMaxAbs                  // max |x|
	ReduceNorm2                   // √Σ x²
)

// ReduceF32 writes the reduction of x[0:n] to out[0], deterministically (two passes, fixed
// order). The partial sums live in a block from the context's allocator, freed in stream order.
func (s *Stream) ReduceF32(out, x Buffer, n int, r Reduction) error {
	need("ReduceF32", "out", out, 1, 4, false)
	need("ReduceF32", "x", x, n, 4, false)
	op, mode := 0, 0
	switch r {
	case ReduceSum:
	case ReduceSumSq:
		op = 1
	case ReduceMaxAbs:
		op, mode = 2, 1
	case ReduceNorm2:
		op, mode = 1, 2
	default:
		panic(fmt.Sprintf("cuda: ReduceF32: unknown reduction %d", r))
	}
	g := min(max(ceilDiv(n, 2048), 1), 1024)
	part, err := s.c.alloc.Alloc(4*g, s)
	if err != nil {
		return err
	}
	defer part.Free()
	if err := s.launch("reduce", "mt_reduce_partial_f32", Dim3{g, 1, 1}, Dim3{256, 1, 1}, 0, Ptr(part), Ptr(x), I64(n), I32(op)); err != nil {
		return err
	}
	return s.launch("reduce", "mt_reduce_final_f32", Dim3{1, 1, 1}, Dim3{256, 1, 1}, 0, Ptr(out), Ptr(part), I32(g), I32(mode))
}

// ColSumF32 computes out[c] = (accumulate ? out[c] : 0) + Σ_r x[r, c] for x (rows, cols),
// deterministically.
func (s *Stream) ColSumF32(out, x Buffer, rows, cols int, accumulate bool) error {
	need("ColSumF32", "out", out, cols, 4, false)
	need("ColSumF32", "x", x, rows*cols, 4, false)
	if cols == 0 {
		return nil
	}
	return s.launch("reduce", "mt_colsum_f32", Dim3{ceilDiv(cols, 32), 1, 1}, Dim3{32, 8, 1}, 0,
		Ptr(out), Ptr(x), I32(rows), I32(cols), I32(b2i(accumulate)))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DropoutForwardSplitMix is DropoutForward with the generator of the CPU path
// (kernels.DropoutMask: SplitMix64 of seed ^ (offset+i)·0x9e3779b97f4a7c15), so that the GPU
// drops exactly the elements the CPU drops.
func (s *Stream) DropoutForwardSplitMix(y, mask, x Buffer, n int, p float32, seed, offset uint64) error {
	if p < 0 || p >= 1 {
		panic("cuda: DropoutForwardSplitMix: p must be in [0, 1)")
	}
	need("DropoutForwardSplitMix", "y", y, n, 4, false)
	need("DropoutForwardSplitMix", "mask", mask, n, 1, true)
	need("DropoutForwardSplitMix", "x", x, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_dropout_sm64_fwd_f32", g, b, 0, Ptr(y), Ptr(mask), Ptr(x), I64(n), F32(p), U64(seed), U64(offset))
}

// DropoutBackwardSplitMix is DropoutBackward for masks drawn by DropoutForwardSplitMix.
func (s *Stream) DropoutBackwardSplitMix(dx, dy Buffer, n int, p float32, seed, offset uint64) error {
	if p < 0 || p >= 1 {
		panic("cuda: DropoutBackwardSplitMix: p must be in [0, 1)")
	}
	need("DropoutBackwardSplitMix", "dx", dx, n, 4, false)
	need("DropoutBackwardSplitMix", "dy", dy, n, 4, false)
	if n == 0 {
		return nil
	}
	g, b := gridStride(n)
	return s.launch("elementwise", "mt_dropout_sm64_bwd_f32", g, b, 0, Ptr(dx), Ptr(dy), I64(n), F32(p), U64(seed), U64(offset))
}
