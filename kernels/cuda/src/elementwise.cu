// elementwise.cu: fill, axpy, scale, f32<->bf16 casts, Philox dropout. See KERNELS.md.
#include "mt_common.cuh"

extern "C" __global__ void mt_fill_f32(float* x, float v, long long n) {
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) x[i] = v;
}
MT_KERNEL(mt_fill_f32)

extern "C" __global__ void mt_axpy_f32(float* y, const float* x, float a, long long n) {
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) y[i] = __builtin_fmaf(a, x[i], y[i]);
}
MT_KERNEL(mt_axpy_f32)

extern "C" __global__ void mt_scale_f32(float* y, const float* x, float a, long long n) {
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) y[i] = a * x[i];
}
MT_KERNEL(mt_scale_f32)

extern "C" __global__ void mt_f32_to_bf16(unsigned short* y, const float* x, long long n) {
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) y[i] = mt_f2bf(x[i]);
}
MT_KERNEL(mt_f32_to_bf16)

extern "C" __global__ void mt_bf16_to_f32(float* y, const unsigned short* x, long long n) {
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) y[i] = mt_bf2f(x[i]);
}
MT_KERNEL(mt_bf16_to_f32)

// Philox4x32-10 (Random123), returns word 0 of the output block.
MT_FI unsigned mt_philox_x(unsigned long long ctr, unsigned long long seed) {
  unsigned c0 = (unsigned)ctr, c1 = (unsigned)(ctr >> 32), c2 = 0, c3 = 0;
  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    unsigned hi0 = mt_umulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
    unsigned hi1 = mt_umulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
    unsigned n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return c0;
}
MT_FI bool mt_dropout_keep(unsigned long long i, float p, unsigned long long seed, unsigned long long offset) {
  float u = (float)(mt_philox_x(offset + i, seed) >> 8) * (1.0f / 16777216.0f);
  return u >= p;
}

extern "C" __global__ void mt_dropout_fwd_f32(float* y, unsigned char* mask, const float* x, long long n, float p,
                                               unsigned long long seed, unsigned long long offset) {
  float scale = 1.0f / (1.0f - p);
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    bool keep = mt_dropout_keep((unsigned long long)i, p, seed, offset);
    y[i] = keep ? x[i] * scale : 0.0f;
    if (mask) mask[i] = keep ? 1 : 0;
  }
}
MT_KERNEL(mt_dropout_fwd_f32)

extern "C" __global__ void mt_dropout_bwd_f32(float* dx, const float* dy, long long n, float p, unsigned long long seed,
                                               unsigned long long offset) {
  float scale = 1.0f / (1.0f - p);
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    bool keep = mt_dropout_keep((unsigned long long)i, p, seed, offset);
    dx[i] = keep ? dy[i] * scale : 0.0f;
  }
}
MT_KERNEL(mt_dropout_bwd_f32)

// The same dropout with the Go CPU generator (kernels.DropoutMask): element i is dropped when
// u = float32(SplitMix64(seed ^ ((offset+i) * 0x9e3779b97f4a7c15)) >> 40) * 2^-24 < p.
extern "C" __global__ void mt_dropout_sm64_fwd_f32(float* y, unsigned char* mask, const float* x, long long n, float p,
                                                    unsigned long long seed, unsigned long long offset) {
  float scale = 1.0f / (1.0f - p);
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    bool keep = !(mt_sm64_uniform(seed, offset + (unsigned long long)i) < p);
    y[i] = keep ? x[i] * scale : 0.0f;
    if (mask) mask[i] = keep ? 1 : 0;
  }
}
MT_KERNEL(mt_dropout_sm64_fwd_f32)

extern "C" __global__ void mt_dropout_sm64_bwd_f32(float* dx, const float* dy, long long n, float p, unsigned long long seed,
                                                    unsigned long long offset) {
  float scale = 1.0f / (1.0f - p);
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    bool keep = !(mt_sm64_uniform(seed, offset + (unsigned long long)i) < p);
    dx[i] = keep ? dy[i] * scale : 0.0f;
  }
}
MT_KERNEL(mt_dropout_sm64_bwd_f32)
