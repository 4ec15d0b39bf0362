package cuda

import "fmt"

// FlashAttention describes one fused multi-head attention of src/attention.cu
// (FlashAttention-2: online softmax in float32, the per-row log-sum-exp saved for the
// backward, no T×T matrix in memory): B sequences, H heads, T positions, head size D <= 64.
//
// Strides are in elements, the last dimension contiguous. Q, K and V (bf16) share the Q
// strides: element (b, h, t, d) at b·QSB + h·QSH + t·QST + d (a fused QKV projection
// [B, T, 3, H, D] is QST = 3·H·D, QSH = D, QSB = T·QST, with K and V the buffer sliced H·D and
// 2·H·D elements on). O, Of32 and dO use the O strides, dQ, dK, dV (float32) the G strides.
// Strides left 0 default to the dense [B, H, T, D] layout. ValidLen (int32[B], optional) masks
// the keys t >= ValidLen[b]; a row with no valid key gets O = 0 and lse = +Inf. lse and the
// backward's Dvec are dense [B, H, T] float32.
type FlashAttention struct {
	B, H, T, D int
	Scale      float32
	ValidLen   Buffer
	Kernel     AttentionKernel
	// DropP is the dropout rate on the attention probabilities (tensor-core kernels only), with
	// kernels.Attention's rule: element (b, h, i, j) is dropped when SplitMix64 of
	// Seed ^ (((b·H+h)·T+i)·T+j)·0x9e3779b97f4a7c15 gives u < DropP; the backward regenerates it.
	DropP         float32
	Seed          uint64
	QSB, QSH, QST int
	OSB, OSH, OST int
	GSB, GSH, GST int
}

// AttentionKernel selects the implementation of FlashAttention.
type AttentionKernel int

const (
	// AttentionAuto uses the tensor-core kernels when D is 32 or 64, else the SIMT ones.
	AttentionAuto AttentionKernel = iota
	// AttentionSIMT is the float32-FMA reference implementation (any D <= 64).
	AttentionSIMT
	// AttentionTensorCore computes the products with mma.sync m16n8k16 (D = 32 or 64). P and
	// dS are rounded to bf16 before their products, as in FlashAttention-2: results differ
	// from the SIMT kernels by up to 2**-9 of the sums of absolute terms.
	AttentionTensorCore
)

// tensorCores reports whether a uses the tensor-core kernels.
func (a *FlashAttention) tensorCores() bool {
	switch a.Kernel {
	case AttentionSIMT:
		if a.DropP != 0 {
			panic("cuda: FlashAttention: the SIMT kernels have no dropout")
		}
		return false
	case AttentionTensorCore:
		if a.D != 32 && a.D != 64 {
			panic(fmt.Sprintf("cuda: FlashAttention: the tensor-core kernels need D = 32 or 64, not %d", a.D))
		}
		return true
	}
	if a.DropP != 0 && a.D != 32 && a.D != 64 {
		panic(fmt.Sprintf("cuda: FlashAttention: dropout needs the tensor-core kernels, which need D = 32 or 64, not %d", a.D))
	}
	return a.D == 32 || a.D == 64
}

func (a *FlashAttention) defaults() {
	dense := func(sb, sh, st *int) {
		if *sb == 0 && *sh == 0 && *st == 0 {
			*st, *sh, *sb = a.D, a.T*a.D, a.H*a.T*a.D
		}
	}
	dense(&a.QSB, &a.QSH, &a.QST)
	dense(&a.OSB, &a.OSH, &a.OST)
	dense(&a.GSB, &a.GSH, &a.GST)
}

func (a *FlashAttention) extent(sb, sh, st int) int {
	return (a.B-1)*sb + (a.H-1)*sh + (a.T-1)*st + a.D
}

func (a *FlashAttention) check(op string) {
	if a.B < 0 || a.H < 0 || a.T < 0 || a.D < 1 || a.D > 64 {
		panic(fmt.Sprintf("cuda: %s: bad dims B=%d H=%d T=%d D=%d (need 1 <= D <= 64)", op, a.B, a.H, a.T, a.D))
	}
	if a.QST < a.D || a.OST < a.D || a.GST < a.D {
		panic(fmt.Sprintf("cuda: %s: row strides %d, %d, %d shorter than D=%d", op, a.QST, a.OST, a.GST, a.D))
	}
	need(op, "ValidLen", a.ValidLen, a.B, 4, true)
	if a.DropP < 0 || a.DropP >= 1 {
		panic(fmt.Sprintf("cuda: %s: dropout rate %v outside [0, 1)", op, a.DropP))
	}
}

// FlashAttentionForward computes O = softmax(Scale·Q·Kᵀ + mask)·V into o (bf16) and/or of32
// (float32), each optional, and the row log-sum-exps into lse (required by the backward).
func (s *Stream) FlashAttentionForward(a FlashAttention, q, k, v, o, of32, lse Buffer) error {
	a.defaults()
	a.check("FlashAttentionForward")
	if a.B == 0 || a.H == 0 || a.T == 0 {
		return nil
	}
	nq, no := a.extent(a.QSB, a.QSH, a.QST), a.extent(a.OSB, a.OSH, a.OST)
	const op = "FlashAttentionForward"
	need(op, "Q", q, nq, 2, false)
	need(op, "K", k, nq, 2, false)
	need(op, "V", v, nq, 2, false)
	need(op, "O", o, no, 2, true)
	need(op, "Of32", of32, no, 4, true)
	need(op, "lse", lse, a.B*a.H*a.T, 4, false)
	grid := Dim3{ceilDiv(a.T, 64), a.H, a.B}
	if a.tensorCores() {
		return s.launch("attention", "mt_flash_attn_fwd_tc", grid, Dim3{128, 1, 1}, 0,
			Ptr(q), Ptr(k), Ptr(v), Ptr(o), Ptr(of32), Ptr(lse), Ptr(a.ValidLen), I32(a.B), I32(a.H), I32(a.T), I32(a.D),
			I64(a.QSB), I64(a.QSH), I64(a.QST), I64(a.OSB), I64(a.OSH), I64(a.OST), F32(a.Scale), F32(a.DropP), U64(a.Seed))
	}
	return s.launch("attention", "mt_flash_attn_fwd", grid, Dim3{256, 1, 1}, 0,
		Ptr(q), Ptr(k), Ptr(v), Ptr(o), Ptr(of32), Ptr(lse), Ptr(a.ValidLen), I32(a.B), I32(a.H), I32(a.T), I32(a.D),
		I64(a.QSB), I64(a.QSH), I64(a.QST), I64(a.OSB), I64(a.OSH), I64(a.OST), F32(a.Scale))
}

// FlashAttentionBackward writes (overwrites) dq, dk, dv (float32, G strides) from dout (bf16)
// and the forward's inputs, output and lse. The output is read from of32 when it is given
// (more precise), else from o. The per-row Σ dO·O lives in a workspace from the allocator.
func (s *Stream) FlashAttentionBackward(a FlashAttention, dq, dk, dv, q, k, v, o, of32, dout, lse Buffer) error {
	a.defaults()
	a.check("FlashAttentionBackward")
	if a.B == 0 || a.H == 0 || a.T == 0 {
		return nil
	}
	const op = "FlashAttentionBackward"
	nq, no, ng := a.extent(a.QSB, a.QSH, a.QST), a.extent(a.OSB, a.OSH, a.OST), a.extent(a.GSB, a.GSH, a.GST)
	need(op, "Q", q, nq, 2, false)
	need(op, "K", k, nq, 2, false)
	need(op, "V", v, nq, 2, false)
	if of32.Ptr == 0 {
		need(op, "O", o, no, 2, false)
	}
	need(op, "Of32", of32, no, 4, true)
	need(op, "dO", dout, no, 2, false)
	need(op, "lse", lse, a.B*a.H*a.T, 4, false)
	need(op, "dQ", dq, ng, 4, false)
	need(op, "dK", dk, ng, 4, false)
	need(op, "dV", dv, ng, 4, false)
	dvec, err := s.c.alloc.Alloc(4*a.B*a.H*a.T, s)
	if err != nil {
		return err
	}
	defer dvec.Free()
	if err := s.launch("attention", "mt_flash_attn_bwd_pre", Dim3{ceilDiv(a.T, 128), a.H, a.B}, Dim3{128, 1, 1}, 0,
		Ptr(dvec), Ptr(o), Ptr(of32), Ptr(dout), I32(a.B), I32(a.H), I32(a.T), I32(a.D),
		I64(a.OSB), I64(a.OSH), I64(a.OST)); err != nil {
		return err
	}
	grid, block := Dim3{ceilDiv(a.T, 64), a.H, a.B}, Dim3{256, 1, 1}
	if a.tensorCores() {
		block = Dim3{128, 1, 1}
		if err := s.launch("attention", "mt_flash_attn_bwd_dkdv_tc", grid, block, 0,
			Ptr(dk), Ptr(dv), Ptr(q), Ptr(k), Ptr(v), Ptr(dout), Ptr(lse), Ptr(dvec), Ptr(a.ValidLen),
			I32(a.B), I32(a.H), I32(a.T), I32(a.D),
			I64(a.QSB), I64(a.QSH), I64(a.QST), I64(a.OSB), I64(a.OSH), I64(a.OST), I64(a.GSB), I64(a.GSH), I64(a.GST),
			F32(a.Scale), F32(a.DropP), U64(a.Seed)); err != nil {
			return err
		}
		return s.launch("attention", "mt_flash_attn_bwd_dq_tc", grid, block, 0,
			Ptr(dq), Ptr(q), Ptr(k), Ptr(v), Ptr(dout), Ptr(lse), Ptr(dvec), Ptr(a.ValidLen),
			I32(a.B), I32(a.H), I32(a.T), I32(a.D),
			I64(a.QSB), I64(a.QSH), I64(a.QST), I64(a.OSB), I64(a.OSH), I64(a.OST), I64(a.GSB), I64(a.GSH), I64(a.GST),
			F32(a.Scale), F32(a.DropP), U64(a.Seed))
	}
	if err := s.launch("attention", "mt_flash_attn_bwd_dkdv", grid, block, 0,
		Ptr(dk), Ptr(dv), Ptr(q), Ptr(k), Ptr(v), Ptr(dout), Ptr(lse), Ptr(dvec), Ptr(a.ValidLen),
		I32(a.B), I32(a.H), I32(a.T), I32(a.D),
		I64(a.QSB), I64(a.QSH), I64(a.QST), I64(a.OSB), I64(a.OSH), I64(a.OST), I64(a.GSB), I64(a.GSH), I64(a.GST),
		F32(a.Scale)); err != nil {
		return err
	}
	return s.launch("attention", "mt_flash_attn_bwd_dq", grid, block, 0,
		Ptr(dq), Ptr(q), Ptr(k), Ptr(v), Ptr(dout), Ptr(lse), Ptr(dvec), Ptr(a.ValidLen),
		I32(a.B), I32(a.H), I32(a.T), I32(a.D),
		I64(a.QSB), I64(a.QSH), I64(a.QST), I64(a.OSB), I64(a.OSH), I64(a.OST), I64(a.GSB), I64(a.GSH), I64(a.GST),
		F32(a.Scale))
}
