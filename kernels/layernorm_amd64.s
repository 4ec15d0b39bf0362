#include "textflag.h"

// The row kernels of LayerNorm (layernorm.go), AVX2, each the scalar loop's arithmetic in the
// same order, so bit-identical to it (tests compare the two).

// func lnPartialsAVX2(x *float32, n int, m float64, sq bool, out *[8]float64)
// For n a multiple of 8 (> 0): out[j] = Σ_{i ≡ j mod 8} t(x[i]) in order, t(v) = float64(v)
// (sq false) or (float64(v) − m)² rounded as d·d then added (sq true). Lanes j = 0..3 in Y0,
// 4..7 in Y1.
TEXT ·lnPartialsAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+32(FP), DI
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	MOVBLZX sq+24(FP), AX
	TESTQ AX, AX
	JNE   sqloop
sumloop:
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	ADDQ $32, SI
	SUBQ $8, CX
	JNE  sumloop
	JMP  done
sqloop:
	VBROADCASTSD m+16(FP), Y5
sqloop1:
	VCVTPS2PD (SI), Y2
	VCVTPS2PD 16(SI), Y3
	VSUBPD Y5, Y2, Y2
	VSUBPD Y5, Y3, Y3
	VMULPD Y2, Y2, Y2
	VMULPD Y3, Y3, Y3
	VADDPD Y2, Y0, Y0
	VADDPD Y3, Y1, Y1
	ADDQ $32, SI
	SUBQ $8, CX
	JNE  sqloop1
done:
	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VZEROUPPER
	RET

// func lnOutAVX2(out, row, gamma, beta *float32, n int, mf, rf float32)
// For n a multiple of 8 (> 0): out[i] = ((row[i] − mf)·rf)·gamma[i] + beta[i], each
// operation rounded in turn (no fused multiply-add), as the scalar loop.
TEXT ·lnOutAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ row+8(FP), SI
	MOVQ gamma+16(FP), R8
	MOVQ beta+24(FP), R9
	MOVQ n+32(FP), CX
	VBROADCASTSS mf+40(FP), Y4
	VBROADCASTSS rf+44(FP), Y5
outloop:
	VMOVUPS (SI), Y0
	VSUBPS  Y4, Y0, Y0
	VMULPS  Y5, Y0, Y0
	VMULPS  (R8), Y0, Y0
	VADDPS  (R9), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	SUBQ $8, CX
	JNE  outloop
	VZEROUPPER
	RET

// func addAVX2(dst, src *float32, n int)
// For n a multiple of 8 (> 0): dst[i] += src[i].
TEXT ·addAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
addloop:
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNE  addloop
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
// For n a multiple of 8 (> 0): the largest of x[0..n), NaN ignored (−Inf when all are NaN or
// −Inf), as the scalar loop of softmax finds it (the sign of a zero maximum may differ, which
// no later step can see: x − (+0) and x − (−0) are equal but for x = ±0, whose exp is 1).
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVL $0xff800000, AX
	MOVL AX, X0
	VBROADCASTSS X0, Y0
maxloop:
	VMOVUPS (SI), Y1
	VMAXPS  Y0, Y1, Y0 // max(x, acc): acc where x is NaN
	ADDQ $32, SI
	SUBQ $8, CX
	JNE  maxloop
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X0, X1, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS X0, X1, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS X0, X1, X0
	MOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(y *float32, n int, a float32)
// For n a multiple of 8 (> 0): y[i] *= a.
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ y+0(FP), DI
	MOVQ n+8(FP), CX
	VBROADCASTSS a+16(FP), Y1
scaleloop:
	VMULPS  (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JNE  scaleloop
	VZEROUPPER
	RET
