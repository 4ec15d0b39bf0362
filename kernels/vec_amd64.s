#include "textflag.h"

// Constants, each broadcast to 8 lanes (generated; see vec_amd64.go).
DATA c_half<>+0(SB)/4, $0x3f000000
DATA c_half<>+4(SB)/4, $0x3f000000
DATA c_half<>+8(SB)/4, $0x3f000000
DATA c_half<>+12(SB)/4, $0x3f000000
DATA c_half<>+16(SB)/4, $0x3f000000
DATA c_half<>+20(SB)/4, $0x3f000000
DATA c_half<>+24(SB)/4, $0x3f000000
DATA c_half<>+28(SB)/4, $0x3f000000
GLOBL c_half<>(SB), RODATA|NOPTR, $32
DATA c_one<>+0(SB)/4, $0x3f800000
DATA c_one<>+4(SB)/4, $0x3f800000
DATA c_one<>+8(SB)/4, $0x3f800000
DATA c_one<>+12(SB)/4, $0x3f800000
DATA c_one<>+16(SB)/4, $0x3f800000
DATA c_one<>+20(SB)/4, $0x3f800000
DATA c_one<>+24(SB)/4, $0x3f800000
DATA c_one<>+28(SB)/4, $0x3f800000
GLOBL c_one<>(SB), RODATA|NOPTR, $32
DATA c_invSqrt2<>+0(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+4(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+8(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+12(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+16(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+20(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+24(SB)/4, $0x3f3504f3
DATA c_invSqrt2<>+28(SB)/4, $0x3f3504f3
GLOBL c_invSqrt2<>(SB), RODATA|NOPTR, $32
DATA c_invSqrt2Pi<>+0(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+4(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+8(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+12(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+16(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+20(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+24(SB)/4, $0x3ecc422a
DATA c_invSqrt2Pi<>+28(SB)/4, $0x3ecc422a
GLOBL c_invSqrt2Pi<>(SB), RODATA|NOPTR, $32
DATA c_erfClampHi<>+0(SB)/4, $0x40800000
DATA c_erfClampHi<>+4(SB)/4, $0x40800000
DATA c_erfClampHi<>+8(SB)/4, $0x40800000
DATA c_erfClampHi<>+12(SB)/4, $0x40800000
DATA c_erfClampHi<>+16(SB)/4, $0x40800000
DATA c_erfClampHi<>+20(SB)/4, $0x40800000
DATA c_erfClampHi<>+24(SB)/4, $0x40800000
DATA c_erfClampHi<>+28(SB)/4, $0x40800000
GLOBL c_erfClampHi<>(SB), RODATA|NOPTR, $32
DATA c_erfClampLo<>+0(SB)/4, $0xc0800000
DATA c_erfClampLo<>+4(SB)/4, $0xc0800000
DATA c_erfClampLo<>+8(SB)/4, $0xc0800000
DATA c_erfClampLo<>+12(SB)/4, $0xc0800000
DATA c_erfClampLo<>+16(SB)/4, $0xc0800000
DATA c_erfClampLo<>+20(SB)/4, $0xc0800000
DATA c_erfClampLo<>+24(SB)/4, $0xc0800000
DATA c_erfClampLo<>+28(SB)/4, $0xc0800000
GLOBL c_erfClampLo<>(SB), RODATA|NOPTR, $32
DATA c_a13<>+0(SB)/4, $0xaf95df0b
DATA c_a13<>+4(SB)/4, $0xaf95df0b
DATA c_a13<>+8(SB)/4, $0xaf95df0b
DATA c_a13<>+12(SB)/4, $0xaf95df0b
DATA c_a13<>+16(SB)/4, $0xaf95df0b
DATA c_a13<>+20(SB)/4, $0xaf95df0b
DATA c_a13<>+24(SB)/4, $0xaf95df0b
DATA c_a13<>+28(SB)/4, $0xaf95df0b
GLOBL c_a13<>(SB), RODATA|NOPTR, $32
DATA c_a11<>+0(SB)/4, $0x32edffee
DATA c_a11<>+4(SB)/4, $0x32edffee
DATA c_a11<>+8(SB)/4, $0x32edffee
DATA c_a11<>+12(SB)/4, $0x32edffee
DATA c_a11<>+16(SB)/4, $0x32edffee
DATA c_a11<>+20(SB)/4, $0x32edffee
DATA c_a11<>+24(SB)/4, $0x32edffee
DATA c_a11<>+28(SB)/4, $0x32edffee
GLOBL c_a11<>(SB), RODATA|NOPTR, $32
DATA c_a9<>+0(SB)/4, $0xb60cff51
DATA c_a9<>+4(SB)/4, $0xb60cff51
DATA c_a9<>+8(SB)/4, $0xb60cff51
DATA c_a9<>+12(SB)/4, $0xb60cff51
DATA c_a9<>+16(SB)/4, $0xb60cff51
DATA c_a9<>+20(SB)/4, $0xb60cff51
DATA c_a9<>+24(SB)/4, $0xb60cff51
DATA c_a9<>+28(SB)/4, $0xb60cff51
GLOBL c_a9<>(SB), RODATA|NOPTR, $32
DATA c_a7<>+0(SB)/4, $0xb86ec2d2
DATA c_a7<>+4(SB)/4, $0xb86ec2d2
DATA c_a7<>+8(SB)/4, $0xb86ec2d2
DATA c_a7<>+12(SB)/4, $0xb86ec2d2
DATA c_a7<>+16(SB)/4, $0xb86ec2d2
DATA c_a7<>+20(SB)/4, $0xb86ec2d2
DATA c_a7<>+24(SB)/4, $0xb86ec2d2
DATA c_a7<>+28(SB)/4, $0xb86ec2d2
GLOBL c_a7<>(SB), RODATA|NOPTR, $32
DATA c_a5<>+0(SB)/4, $0xba40ac63
DATA c_a5<>+4(SB)/4, $0xba40ac63
DATA c_a5<>+8(SB)/4, $0xba40ac63
DATA c_a5<>+12(SB)/4, $0xba40ac63
DATA c_a5<>+16(SB)/4, $0xba40ac63
DATA c_a5<>+20(SB)/4, $0xba40ac63
DATA c_a5<>+24(SB)/4, $0xba40ac63
DATA c_a5<>+28(SB)/4, $0xba40ac63
GLOBL c_a5<>(SB), RODATA|NOPTR, $32
DATA c_a3<>+0(SB)/4, $0xbb41a1f6
DATA c_a3<>+4(SB)/4, $0xbb41a1f6
DATA c_a3<>+8(SB)/4, $0xbb41a1f6
DATA c_a3<>+12(SB)/4, $0xbb41a1f6
DATA c_a3<>+16(SB)/4, $0xbb41a1f6
DATA c_a3<>+20(SB)/4, $0xbb41a1f6
DATA c_a3<>+24(SB)/4, $0xbb41a1f6
DATA c_a3<>+28(SB)/4, $0xbb41a1f6
GLOBL c_a3<>(SB), RODATA|NOPTR, $32
DATA c_a1<>+0(SB)/4, $0xbc83dbd4
DATA c_a1<>+4(SB)/4, $0xbc83dbd4
DATA c_a1<>+8(SB)/4, $0xbc83dbd4
DATA c_a1<>+12(SB)/4, $0xbc83dbd4
DATA c_a1<>+16(SB)/4, $0xbc83dbd4
DATA c_a1<>+20(SB)/4, $0xbc83dbd4
DATA c_a1<>+24(SB)/4, $0xbc83dbd4
DATA c_a1<>+28(SB)/4, $0xbc83dbd4
GLOBL c_a1<>(SB), RODATA|NOPTR, $32
DATA c_b8<>+0(SB)/4, $0xb77460cd
DATA c_b8<>+4(SB)/4, $0xb77460cd
DATA c_b8<>+8(SB)/4, $0xb77460cd
DATA c_b8<>+12(SB)/4, $0xb77460cd
DATA c_b8<>+16(SB)/4, $0xb77460cd
DATA c_b8<>+20(SB)/4, $0xb77460cd
DATA c_b8<>+24(SB)/4, $0xb77460cd
DATA c_b8<>+28(SB)/4, $0xb77460cd
GLOBL c_b8<>(SB), RODATA|NOPTR, $32
DATA c_b6<>+0(SB)/4, $0xb95fbd29
DATA c_b6<>+4(SB)/4, $0xb95fbd29
DATA c_b6<>+8(SB)/4, $0xb95fbd29
DATA c_b6<>+12(SB)/4, $0xb95fbd29
DATA c_b6<>+16(SB)/4, $0xb95fbd29
DATA c_b6<>+20(SB)/4, $0xb95fbd29
DATA c_b6<>+24(SB)/4, $0xb95fbd29
DATA c_b6<>+28(SB)/4, $0xb95fbd29
GLOBL c_b6<>(SB), RODATA|NOPTR, $32
DATA c_b4<>+0(SB)/4, $0xbadc924e
DATA c_b4<>+4(SB)/4, $0xbadc924e
DATA c_b4<>+8(SB)/4, $0xbadc924e
DATA c_b4<>+12(SB)/4, $0xbadc924e
DATA c_b4<>+16(SB)/4, $0xbadc924e
DATA c_b4<>+20(SB)/4, $0xbadc924e
DATA c_b4<>+24(SB)/4, $0xbadc924e
DATA c_b4<>+28(SB)/4, $0xbadc924e
GLOBL c_b4<>(SB), RODATA|NOPTR, $32
DATA c_b2<>+0(SB)/4, $0xbbf19bf8
DATA c_b2<>+4(SB)/4, $0xbbf19bf8
DATA c_b2<>+8(SB)/4, $0xbbf19bf8
DATA c_b2<>+12(SB)/4, $0xbbf19bf8
DATA c_b2<>+16(SB)/4, $0xbbf19bf8
DATA c_b2<>+20(SB)/4, $0xbbf19bf8
DATA c_b2<>+24(SB)/4, $0xbbf19bf8
DATA c_b2<>+28(SB)/4, $0xbbf19bf8
GLOBL c_b2<>(SB), RODATA|NOPTR, $32
DATA c_b0<>+0(SB)/4, $0xbc69b6a7
DATA c_b0<>+4(SB)/4, $0xbc69b6a7
DATA c_b0<>+8(SB)/4, $0xbc69b6a7
DATA c_b0<>+12(SB)/4, $0xbc69b6a7
DATA c_b0<>+16(SB)/4, $0xbc69b6a7
DATA c_b0<>+20(SB)/4, $0xbc69b6a7
DATA c_b0<>+24(SB)/4, $0xbc69b6a7
DATA c_b0<>+28(SB)/4, $0xbc69b6a7
GLOBL c_b0<>(SB), RODATA|NOPTR, $32
DATA c_expLo<>+0(SB)/4, $0xc2aeac4f
DATA c_expLo<>+4(SB)/4, $0xc2aeac4f
DATA c_expLo<>+8(SB)/4, $0xc2aeac4f
DATA c_expLo<>+12(SB)/4, $0xc2aeac4f
DATA c_expLo<>+16(SB)/4, $0xc2aeac4f
DATA c_expLo<>+20(SB)/4, $0xc2aeac4f
DATA c_expLo<>+24(SB)/4, $0xc2aeac4f
DATA c_expLo<>+28(SB)/4, $0xc2aeac4f
GLOBL c_expLo<>(SB), RODATA|NOPTR, $32
DATA c_log2e<>+0(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+4(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+8(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+12(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+16(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+20(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+24(SB)/4, $0x3fb8aa3b
DATA c_log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL c_log2e<>(SB), RODATA|NOPTR, $32
DATA c_expC1<>+0(SB)/4, $0x3f318000
DATA c_expC1<>+4(SB)/4, $0x3f318000
DATA c_expC1<>+8(SB)/4, $0x3f318000
DATA c_expC1<>+12(SB)/4, $0x3f318000
DATA c_expC1<>+16(SB)/4, $0x3f318000
DATA c_expC1<>+20(SB)/4, $0x3f318000
DATA c_expC1<>+24(SB)/4, $0x3f318000
DATA c_expC1<>+28(SB)/4, $0x3f318000
GLOBL c_expC1<>(SB), RODATA|NOPTR, $32
DATA c_expC2<>+0(SB)/4, $0xb95e8083
DATA c_expC2<>+4(SB)/4, $0xb95e8083
DATA c_expC2<>+8(SB)/4, $0xb95e8083
DATA c_expC2<>+12(SB)/4, $0xb95e8083
DATA c_expC2<>+16(SB)/4, $0xb95e8083
DATA c_expC2<>+20(SB)/4, $0xb95e8083
DATA c_expC2<>+24(SB)/4, $0xb95e8083
DATA c_expC2<>+28(SB)/4, $0xb95e8083
GLOBL c_expC2<>(SB), RODATA|NOPTR, $32
DATA c_ep0<>+0(SB)/4, $0x39506967
DATA c_ep0<>+4(SB)/4, $0x39506967
DATA c_ep0<>+8(SB)/4, $0x39506967
DATA c_ep0<>+12(SB)/4, $0x39506967
DATA c_ep0<>+16(SB)/4, $0x39506967
DATA c_ep0<>+20(SB)/4, $0x39506967
DATA c_ep0<>+24(SB)/4, $0x39506967
DATA c_ep0<>+28(SB)/4, $0x39506967
GLOBL c_ep0<>(SB), RODATA|NOPTR, $32
DATA c_ep1<>+0(SB)/4, $0x3ab743ce
DATA c_ep1<>+4(SB)/4, $0x3ab743ce
DATA c_ep1<>+8(SB)/4, $0x3ab743ce
DATA c_ep1<>+12(SB)/4, $0x3ab743ce
DATA c_ep1<>+16(SB)/4, $0x3ab743ce
DATA c_ep1<>+20(SB)/4, $0x3ab743ce
DATA c_ep1<>+24(SB)/4, $0x3ab743ce
DATA c_ep1<>+28(SB)/4, $0x3ab743ce
GLOBL c_ep1<>(SB), RODATA|NOPTR, $32
DATA c_ep2<>+0(SB)/4, $0x3c088908
DATA c_ep2<>+4(SB)/4, $0x3c088908
DATA c_ep2<>+8(SB)/4, $0x3c088908
DATA c_ep2<>+12(SB)/4, $0x3c088908
DATA c_ep2<>+16(SB)/4, $0x3c088908
DATA c_ep2<>+20(SB)/4, $0x3c088908
DATA c_ep2<>+24(SB)/4, $0x3c088908
DATA c_ep2<>+28(SB)/4, $0x3c088908
GLOBL c_ep2<>(SB), RODATA|NOPTR, $32
DATA c_ep3<>+0(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+4(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+8(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+12(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+16(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+20(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+24(SB)/4, $0x3d2aa9c1
DATA c_ep3<>+28(SB)/4, $0x3d2aa9c1
GLOBL c_ep3<>(SB), RODATA|NOPTR, $32
DATA c_ep4<>+0(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+4(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+8(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+12(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+16(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+20(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+24(SB)/4, $0x3e2aaaaa
DATA c_ep4<>+28(SB)/4, $0x3e2aaaaa
GLOBL c_ep4<>(SB), RODATA|NOPTR, $32
DATA c_ep5<>+0(SB)/4, $0x3f000000
DATA c_ep5<>+4(SB)/4, $0x3f000000
DATA c_ep5<>+8(SB)/4, $0x3f000000
DATA c_ep5<>+12(SB)/4, $0x3f000000
DATA c_ep5<>+16(SB)/4, $0x3f000000
DATA c_ep5<>+20(SB)/4, $0x3f000000
DATA c_ep5<>+24(SB)/4, $0x3f000000
DATA c_ep5<>+28(SB)/4, $0x3f000000
GLOBL c_ep5<>(SB), RODATA|NOPTR, $32
DATA c_negHalf<>+0(SB)/4, $0xbf000000
DATA c_negHalf<>+4(SB)/4, $0xbf000000
DATA c_negHalf<>+8(SB)/4, $0xbf000000
DATA c_negHalf<>+12(SB)/4, $0xbf000000
DATA c_negHalf<>+16(SB)/4, $0xbf000000
DATA c_negHalf<>+20(SB)/4, $0xbf000000
DATA c_negHalf<>+24(SB)/4, $0xbf000000
DATA c_negHalf<>+28(SB)/4, $0xbf000000
GLOBL c_negHalf<>(SB), RODATA|NOPTR, $32

DATA c_bias127<>+0(SB)/4, $127
DATA c_bias127<>+4(SB)/4, $127
DATA c_bias127<>+8(SB)/4, $127
DATA c_bias127<>+12(SB)/4, $127
DATA c_bias127<>+16(SB)/4, $127
DATA c_bias127<>+20(SB)/4, $127
DATA c_bias127<>+24(SB)/4, $127
DATA c_bias127<>+28(SB)/4, $127
GLOBL c_bias127<>(SB), RODATA|NOPTR, $32

// ERF(in, out, t0): out = erf(in) for 8 lanes, Eigen's rational approximation on [-4, 4].
// in is clobbered (clamped); t0 is scratch.
#define ERF(in, out, t0) \
	VMINPS c_erfClampHi<>(SB), in, in; \
	VMAXPS c_erfClampLo<>(SB), in, in; \
	VMULPS in, in, t0; \
	VMOVUPS c_a13<>(SB), out; \
	VFMADD213PS c_a11<>(SB), t0, out; \
	VFMADD213PS c_a9<>(SB), t0, out; \
	VFMADD213PS c_a7<>(SB), t0, out; \
	VFMADD213PS c_a5<>(SB), t0, out; \
	VFMADD213PS c_a3<>(SB), t0, out; \
	VFMADD213PS c_a1<>(SB), t0, out; \
	VMULPS in, out, out; \
	VMOVUPS c_b8<>(SB), in; \
	VFMADD213PS c_b6<>(SB), t0, in; \
	VFMADD213PS c_b4<>(SB), t0, in; \
	VFMADD213PS c_b2<>(SB), t0, in; \
	VFMADD213PS c_b0<>(SB), t0, in; \
	VDIVPS in, out, out

// EXP(in, out, t0, t1): out = e**in for 8 lanes, Cephes expf; lanes below -87.34 give 0.
// in is clobbered.
#define EXP(in, out, t0, t1) \
	VCMPPS $0x0d, c_expLo<>(SB), in, t1; \
	VMAXPS c_expLo<>(SB), in, in; \
	VMOVUPS c_half<>(SB), t0; \
	VFMADD231PS c_log2e<>(SB), in, t0; \
	VROUNDPS $1, t0, t0; \
	VFNMADD231PS c_expC1<>(SB), t0, in; \
	VFNMADD231PS c_expC2<>(SB), t0, in; \
	VCVTTPS2DQ t0, t0; \
	VPADDD c_bias127<>(SB), t0, t0; \
	VPSLLD $23, t0, t0; \
	VANDPS t0, t1, t1; \
	VMOVUPS c_ep0<>(SB), out; \
	VFMADD213PS c_ep1<>(SB), in, out; \
	VFMADD213PS c_ep2<>(SB), in, out; \
	VFMADD213PS c_ep3<>(SB), in, out; \
	VFMADD213PS c_ep4<>(SB), in, out; \
	VFMADD213PS c_ep5<>(SB), in, out; \
	VMULPS in, in, t0; \
	VFMADD213PS in, t0, out; \
	VADDPS c_one<>(SB), out, out; \
	VMULPS t1, out, out

// func geluFwdAVX2(y, x *float32, n int)   n a multiple of 8
TEXT ·geluFwdAVX2(SB), NOSPLIT, $0-24
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   gfdone
gfloop:
	VMOVUPS (SI), Y0
	VMULPS c_invSqrt2<>(SB), Y0, Y1
	ERF(Y1, Y2, Y3)
	VMULPS c_half<>(SB), Y0, Y4
	VFMADD213PS Y4, Y4, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  gfloop
gfdone:
	VZEROUPPER
	RET

// func geluBwdAVX2(dx, dy, x *float32, n int)   dx += dy*(Φ(x) + x·φ(x)); n a multiple of 8
TEXT ·geluBwdAVX2(SB), NOSPLIT, $0-32
	MOVQ dx+0(FP), DI
	MOVQ dy+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   gbdone
gbloop:
	VMOVUPS (SI), Y0
	VMULPS c_invSqrt2<>(SB), Y0, Y1
	ERF(Y1, Y2, Y3)
	VMULPS c_half<>(SB), Y2, Y2
	VADDPS c_half<>(SB), Y2, Y2
	VMULPS Y0, Y0, Y5
	VMULPS c_negHalf<>(SB), Y5, Y5
	EXP(Y5, Y6, Y7, Y8)
	VMULPS c_invSqrt2Pi<>(SB), Y6, Y6
	VFMADD231PS Y6, Y0, Y2
	VMOVUPS (DI), Y9
	VFMADD231PS (DX), Y2, Y9
	VMOVUPS Y9, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ  gbloop
gbdone:
	VZEROUPPER
	RET

// func expShiftSumAVX2(y, x *float32, n int, shift float32) float32
// y = e**(x - shift), returning the sum of the 8-lane blocks (n a multiple of 8).
TEXT ·expShiftSumAVX2(SB), NOSPLIT, $0-36
	MOVQ y+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS shift+24(FP), Y10
	VXORPS Y11, Y11, Y11
	SHRQ $3, CX
	JZ   esdone
esloop:
	VMOVUPS (SI), Y0
	VSUBPS Y10, Y0, Y0
	EXP(Y0, Y1, Y2, Y3)
	VMOVUPS Y1, (DI)
	VADDPS Y1, Y11, Y11
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  esloop
esdone:
	VEXTRACTF128 $1, Y11, X1
	VADDPS X1, X11, X11
	VHADDPS X11, X11, X11
	VHADDPS X11, X11, X11
	MOVSS X11, ret+32(FP)
	VZEROUPPER
	RET


// func adamAVX2(pp, gg, mm, vv *float32, n int, cc *adamConsts)
// One Adam/AdamW update of 8 lanes at a time with the scalar path's exact operation order and
// no fused multiply-add, so both paths give bit-identical parameters. n a multiple of 8.
// adamConsts: decay, wd, w1, b2, w2, bc2sqrt, eps, negStep float32; mode int32 (0 none, 1 L2, 2 decoupled).
TEXT ·adamAVX2(SB), NOSPLIT, $0-48
	MOVQ pp+0(FP), DI
	MOVQ gg+8(FP), SI
	MOVQ mm+16(FP), DX
	MOVQ vv+24(FP), R8
	MOVQ n+32(FP), CX
	MOVQ cc+40(FP), AX
	VBROADCASTSS 0(AX), Y8
	VBROADCASTSS 4(AX), Y9
	VBROADCASTSS 8(AX), Y10
	VBROADCASTSS 12(AX), Y11
	VBROADCASTSS 16(AX), Y12
	VBROADCASTSS 20(AX), Y13
	VBROADCASTSS 24(AX), Y14
	VBROADCASTSS 28(AX), Y15
	MOVL 32(AX), BX
	SHRQ $3, CX
	JZ   adone
aloop:
	VMOVUPS (DI), Y0
	VMOVUPS (SI), Y1
	VMOVUPS (DX), Y2
	VMOVUPS (R8), Y3
	CMPL BX, $1
	JB   amoments
	JE   al2
	VMULPS Y8, Y0, Y0
	JMP  amoments
al2:
	VMULPS Y9, Y0, Y4
	VADDPS Y4, Y1, Y1
amoments:
	VSUBPS Y2, Y1, Y4
	VMULPS Y10, Y4, Y4
	VADDPS Y4, Y2, Y2
	VMULPS Y11, Y3, Y5
	VMULPS Y12, Y1, Y6
	VMULPS Y1, Y6, Y6
	VADDPS Y6, Y5, Y3
	VSQRTPS Y3, Y7
	VDIVPS Y13, Y7, Y7
	VADDPS Y14, Y7, Y7
	VMULPS Y15, Y2, Y4
	VDIVPS Y7, Y4, Y4
	VADDPS Y4, Y0, Y0
	VMOVUPS Y0, (DI)
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, (R8)
	ADDQ $32, DI
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ CX
	JNZ  aloop
adone:
	VZEROUPPER
	RET
