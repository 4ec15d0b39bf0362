// mt_common.cuh: the one header every kernel source includes. It makes the same .cu file
// compile two ways:
//   - device: clang-19 -x cuda --cuda-device-only -nocudainc -nocudalib (no CUDA headers), and
//   - host:   as C++ for the emulator (emu/simt.h provides threadIdx, __syncthreads, shuffles...).
#pragma once

#if defined(__CUDA__) && defined(__CUDA_ARCH__)
#define MT_DEVICE 1
#include <__clang_cuda_builtin_vars.h>
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define __restrict__ __restrict
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))

typedef unsigned long long mt_u64;

static __device__ __forceinline__ void __syncwarp(unsigned mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }
static __device__ __forceinline__ float __shfl_xor_sync(unsigned mask, float v, int lane) {
  return __nvvm_shfl_sync_bfly_f32(mask, v, lane, 0x1f);
}
static __device__ __forceinline__ int __shfl_xor_sync(unsigned mask, int v, int lane) {
  return __nvvm_shfl_sync_bfly_i32(mask, v, lane, 0x1f);
}
static __device__ __forceinline__ float __shfl_sync(unsigned mask, float v, int src) {
  return __nvvm_shfl_sync_idx_f32(mask, v, src, 0x1f);
}
static __device__ __forceinline__ int __shfl_sync(unsigned mask, int v, int src) {
  return __nvvm_shfl_sync_idx_i32(mask, v, src, 0x1f);
}
static __device__ __forceinline__ unsigned __ballot_sync(unsigned mask, int pred) {
  return __nvvm_vote_ballot_sync(mask, pred);
}
static __device__ __forceinline__ float atomicAdd(float* p, float v) { return __nvvm_atom_add_gen_f(p, v); }
static __device__ __forceinline__ int atomicAdd(int* p, int v) { return __nvvm_atom_add_gen_i(p, v); }
static __device__ __forceinline__ float mt_sqrtf(float x) { return __nvvm_sqrt_rn_f(x); }
// mt_mul and mt_add round each operation (mul.rn, add.rn): never fused into an fma, for kernels
// that follow a CPU reference operation for operation.
static __device__ __forceinline__ float mt_mul(float a, float b) { return __nvvm_mul_rn_f(a, b); }
static __device__ __forceinline__ float mt_add(float a, float b) { return __nvvm_add_rn_f(a, b); }
static __device__ __forceinline__ float mt_fast_exp2(float x) { return __nvvm_ex2_approx_f(x); }
static __device__ __forceinline__ float mt_fast_log2(float x) { return __nvvm_lg2_approx_f(x); }
static __device__ __forceinline__ float mt_fminf(float a, float b) { return __builtin_fminf(a, b); }
static __device__ __forceinline__ float mt_fmaxf(float a, float b) { return __builtin_fmaxf(a, b); }
static __device__ __forceinline__ float mt_fabsf(float a) { return __builtin_fabsf(a); }
static __device__ __forceinline__ float mt_floorf(float a) { return __builtin_floorf(a); }
static __device__ __forceinline__ unsigned mt_umulhi(unsigned a, unsigned b) { return __nvvm_mulhi_ui(a, b); }
#define MT_KERNEL(name)
#define MT_DYN_SMEM(type, name) extern __shared__ __align__(16) type name[]

#else  // host emulator build
#include "../emu/simt.h"
#endif

#define MT_FI static __device__ __forceinline__

// ---- bf16 <-> f32, identical bit manipulation on both builds ----
MT_FI unsigned mt_f2u(float f) { return __builtin_bit_cast(unsigned, f); }
MT_FI float mt_u2f(unsigned u) { return __builtin_bit_cast(float, u); }
MT_FI unsigned short mt_f2bf(float f) {
  unsigned u = mt_f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // NaN: quiet, sign kept
  u += 0x7fffu + ((u >> 16) & 1u);
  return (unsigned short)(u >> 16);
}
MT_FI float mt_bf2f(unsigned short h) { return mt_u2f(((unsigned)h) << 16); }
// pack two floats as bf16x2: lo in bits 0..15
MT_FI unsigned mt_pack_bf2(float lo, float hi) {
  return (unsigned)mt_f2bf(lo) | ((unsigned)mt_f2bf(hi) << 16);
}

// ---- exp / erf without libdevice ----
// mt_expf: Cephes expf, the same polynomial as the Go kernels.Expf.
MT_FI float mt_expf(float x) {
  if (x != x) return x;
  if (x > 88.72283905206835f) return mt_u2f(0x7f800000u);
  if (x < -103.972084f) return 0.0f;
  float fn = mt_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
  float z = r * r;
  float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
             1.6666665459e-1f) * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  int n = (int)fn;
  if (n < -126) {
    p *= mt_u2f((unsigned)(n + 126 + 127) << 23);
    return p * mt_u2f((unsigned)(-126 + 127) << 23);
  }
  if (n > 127) return p * 2.0f * mt_u2f((unsigned)(n - 1 + 127) << 23);
  return p * mt_u2f((unsigned)(n + 127) << 23);
}
// mt_logf: Cephes logf (~1 ulp) for positive normal and subnormal x; 0 -> -inf, x<0/NaN -> NaN.
MT_FI float mt_logf(float x) {
  unsigned u = mt_f2u(x);
  if (x != x || x < 0.0f) return mt_u2f(0x7fc00000u);
  if (x == 0.0f) return -mt_u2f(0x7f800000u);
  if (u == 0x7f800000u) return x;
  int e0 = 0;
  if (u < 0x00800000u) {  // subnormal: scale by 2^25
    x *= 33554432.0f;
    u = mt_f2u(x);
    e0 = -25;
  }
  int e = (int)((u >> 23) & 0xffu) - 126 + e0;
  float m = mt_u2f((u & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
  if (m < 0.707106781186547524f) {
    e -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  float z = m * m;
  float y = ((((((((7.0376836292E-2f * m - 1.1514610310E-1f) * m + 1.1676998740E-1f) * m - 1.2420140846E-1f) * m +
                1.4249322787E-1f) * m - 1.6668057665E-1f) * m + 2.0000714765E-1f) * m - 2.4999993993E-1f) * m +
             3.3333331174E-1f) * m * z;
  float fe = (float)e;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  m = m + y;
  m += 0.693359375f * fe;
  return m;
}
// natural log via the fast log2 (used only for log-sum-exp, ~2 ulp)
MT_FI float mt_logf_fast(float x) { return mt_fast_log2(x) * 0.69314718055994531f; }
MT_FI float mt_expf_fast(float x) { return mt_fast_exp2(x * 1.44269504088896341f); }
// erf: the rational approximation of kernels.Erff, evaluated in float32.
MT_FI float mt_erff(float x) {
  x = mt_fminf(mt_fmaxf(x, -4.0f), 4.0f);
  float x2 = x * x;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = x * p;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  return p / q;
}

// ---- warp / block reductions (blockDim.x*blockDim.y*blockDim.z a multiple of 32, <= 1024) ----
MT_FI float mt_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
MT_FI float mt_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = mt_fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide sum, result broadcast to every thread. scratch: __shared__ float[32].
// Deterministic: fixed tree order. Contains two __syncthreads.
MT_FI float mt_block_sum(float v, float* scratch) {
  int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  int nthreads = blockDim.x * blockDim.y * blockDim.z;
  int lane = tid & 31, wid = tid >> 5, nw = (nthreads + 31) >> 5;
  v = mt_warp_sum(v);
  __syncthreads();  // protect scratch from a previous use
  if (lane == 0) scratch[wid] = v;
  __syncthreads();
  float t = (lane < nw) ? scratch[lane] : 0.0f;
  return mt_warp_sum(t);
}
MT_FI float mt_block_max(float v, float* scratch) {
  int tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  int nthreads = blockDim.x * blockDim.y * blockDim.z;
  int lane = tid & 31, wid = tid >> 5, nw = (nthreads + 31) >> 5;
  v = mt_warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[wid] = v;
  __syncthreads();
  float t = (lane < nw) ? scratch[lane] : -mt_u2f(0x7f800000u);
  return mt_warp_max(t);
}

// SplitMix64 finaliser and the dropout draw of the Go CPU kernels (kernels.SplitMix64,
// kernels.DropoutMask, kernels.Attention.dropScale): u = SplitMix64(seed ^ (i * golden)) >> 40, in 2^-24.
MT_FI unsigned long long mt_splitmix64(unsigned long long x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
MT_FI float mt_sm64_uniform(unsigned long long seed, unsigned long long i) {
  return (float)(mt_splitmix64(seed ^ (i * 0x9e3779b97f4a7c15ULL)) >> 40) * (1.0f / 16777216.0f);
}

MT_FI long long mt_gtid() { return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
MT_FI long long mt_gstride() { return (long long)gridDim.x * blockDim.x; }
