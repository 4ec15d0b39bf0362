#include "textflag.h"

// One k step of the 6×16 kernel: load the 16-wide B row (Y12, Y13), broadcast each of the six
// A values of the step and accumulate into Y0..Y11 (row i in Y(2i), Y(2i+1)).
#define STEP(boff0, boff1, a0, a1, a2, a3, a4, a5) \
	VMOVUPS boff0(DI), Y12; \
	VMOVUPS boff1(DI), Y13; \
	VBROADCASTSS a0(SI), Y14; \
	VFMADD231PS Y12, Y14, Y0; \
	VFMADD231PS Y13, Y14, Y1; \
	VBROADCASTSS a1(SI), Y15; \
	VFMADD231PS Y12, Y15, Y2; \
	VFMADD231PS Y13, Y15, Y3; \
	VBROADCASTSS a2(SI), Y14; \
	VFMADD231PS Y12, Y14, Y4; \
	VFMADD231PS Y13, Y14, Y5; \
	VBROADCASTSS a3(SI), Y15; \
	VFMADD231PS Y12, Y15, Y6; \
	VFMADD231PS Y13, Y15, Y7; \
	VBROADCASTSS a4(SI), Y14; \
	VFMADD231PS Y12, Y14, Y8; \
	VFMADD231PS Y13, Y14, Y9; \
	VBROADCASTSS a5(SI), Y15; \
	VFMADD231PS Y12, Y15, Y10; \
	VFMADD231PS Y13, Y15, Y11

// Store one row: C = acc (beta == 0).
#define STORE0(r0, r1) \
	VMOVUPS r0, (DX); \
	VMOVUPS r1, 32(DX); \
	ADDQ R8, DX

// Store one row: C = acc + beta*C, beta in Y13.
#define STOREB(r0, r1) \
	VFMADD231PS (DX), Y13, r0; \
	VFMADD231PS 32(DX), Y13, r1; \
	VMOVUPS r0, (DX); \
	VMOVUPS r1, 32(DX); \
	ADDQ R8, DX

// func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, alpha, beta float32)
TEXT ·sgemmKernel6x16(SB), NOSPLIT, $0-48
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $2, R8

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

	// Prefetch the C tile (6 rows of 64 bytes) so that the final loads and stores hit cache.
	MOVQ DX, R9
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 60(R9)

	CMPQ CX, $4
	JLT  tail

loop4:
	// The A strip streams from L2 (the B strip stays in L1 across the ir loop): fetch ahead.
	PREFETCHT0 384(SI)
	STEP(0, 32, 0, 4, 8, 12, 16, 20)
	STEP(64, 96, 24, 28, 32, 36, 40, 44)
	PREFETCHT0 448(SI)
	STEP(128, 160, 48, 52, 56, 60, 64, 68)
	STEP(192, 224, 72, 76, 80, 84, 88, 92)
	ADDQ $96, SI
	ADDQ $256, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop4

tail:
	TESTQ CX, CX
	JEQ   store

tail1:
	STEP(0, 32, 0, 4, 8, 12, 16, 20)
	ADDQ $24, SI
	ADDQ $64, DI
	DECQ CX
	JNE  tail1

store:
	VBROADCASTSS alpha+40(FP), Y12
	VMULPS Y12, Y0, Y0
	VMULPS Y12, Y1, Y1
	VMULPS Y12, Y2, Y2
	VMULPS Y12, Y3, Y3
	VMULPS Y12, Y4, Y4
	VMULPS Y12, Y5, Y5
	VMULPS Y12, Y6, Y6
	VMULPS Y12, Y7, Y7
	VMULPS Y12, Y8, Y8
	VMULPS Y12, Y9, Y9
	VMULPS Y12, Y10, Y10
	VMULPS Y12, Y11, Y11

	VBROADCASTSS beta+44(FP), Y13
	VXORPS    X14, X14, X14
	VUCOMISS  X14, X13
	JNE       storeb
	JPS       storeb

	STORE0(Y0, Y1)
	STORE0(Y2, Y3)
	STORE0(Y4, Y5)
	STORE0(Y6, Y7)
	STORE0(Y8, Y9)
	STORE0(Y10, Y11)
	VZEROUPPER
	RET

storeb:
	STOREB(Y0, Y1)
	STOREB(Y2, Y3)
	STOREB(Y4, Y5)
	STOREB(Y6, Y7)
	STOREB(Y8, Y9)
	STOREB(Y10, Y11)
	VZEROUPPER
	RET

// func packB16(kb int, src *float32, ldb int, dst *float32)
// dst[p*16+j] = src[p*ldb+j] for p < kb, j < 16.
TEXT ·packB16(SB), NOSPLIT, $0-32
	MOVQ kb+0(FP), CX
	MOVQ src+8(FP), SI
	MOVQ ldb+16(FP), R8
	MOVQ dst+24(FP), DI
	SHLQ $2, R8
	TESTQ CX, CX
	JEQ  packdone

packloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ R8, SI
	ADDQ $64, DI
	DECQ CX
	JNE  packloop

packdone:
	VZEROUPPER
	RET
