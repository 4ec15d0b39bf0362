#include "textflag.h"

// func absMax16AVX512(x *float32, n int, out *[16]float32)
// out[l] = max over i ≡ l (mod 16) of |x[i]|, n a positive multiple of 16.
TEXT ·absMax16AVX512(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ out+16(FP), DI
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	CMPQ CX, $32
	JLT  one
loop2:
	VPANDD (SI), Z31, Z2
	VPANDD 64(SI), Z31, Z3
	VMAXPS Z2, Z0, Z0
	VMAXPS Z3, Z1, Z1
	ADDQ $128, SI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE  loop2
one:
	TESTQ CX, CX
	JEQ   done
	VPANDD (SI), Z31, Z2
	VMAXPS Z2, Z0, Z0
done:
	VMAXPS Z1, Z0, Z0
	VMOVUPS Z0, (DI)
	VZEROUPPER
	RET

// func quantI8AVX512(dst *int8, x *float32, n int, inv float32)
// dst[i] = int8(clamp(roundHalfAway(x[i]*inv), -127, 127)) for n a positive multiple of 16:
// the product rounded to float32, then t = trunc(v), plus copysign(1, v) where |v-t| >= 0.5
// (v-t is exact), as math.Round does; then VCVTTPS2DQ and VPMOVDB.
TEXT ·quantI8AVX512(SB), NOSPLIT, $0-28
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS inv+24(FP), Z30
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL $0x80000000, AX
	VPBROADCASTD AX, Z29
	MOVL $0x3f800000, AX // 1.0
	VPBROADCASTD AX, Z28
	MOVL $0x3f000000, AX // 0.5
	VPBROADCASTD AX, Z27
	MOVL $0x42fe0000, AX // 127.0
	VPBROADCASTD AX, Z26
	MOVL $0xc2fe0000, AX // -127.0
	VPBROADCASTD AX, Z25
loop:
	VMULPS (SI), Z30, Z1
	VRNDSCALEPS $3, Z1, Z2
	VSUBPS Z2, Z1, Z3
	VPANDD Z31, Z3, Z3
	VCMPPS $29, Z27, Z3, K1
	VPANDD Z29, Z1, Z4
	VPORD Z28, Z4, Z4
	VADDPS Z4, Z2, K1, Z2
	VMINPS Z26, Z2, Z2
	VMAXPS Z25, Z2, Z2
	VCVTTPS2DQ Z2, Z2
	VPMOVDB Z2, (DI)
	ADDQ $64, SI
	ADDQ $16, DI
	SUBQ $16, CX
	JNE  loop
	VZEROUPPER
	RET
