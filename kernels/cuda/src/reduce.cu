// reduce.cu: deterministic reductions, column sums, multi-tensor AdamW. See KERNELS.md.
#include "mt_common.cuh"

MT_FI float mt_red_op(float acc, float v, int op) {
  if (op == 1) return __builtin_fmaf(v, v, acc);
  if (op == 2) return mt_fmaxf(acc, mt_fabsf(v));
  return acc + v;
}

// block (256,1,1); partial[blockIdx.x]
extern "C" __global__ void mt_reduce_partial_f32(float* partial, const float* x, long long n, int op) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) acc = mt_red_op(acc, x[i], op);
  float r = (op == 2) ? mt_block_max(acc, scratch) : mt_block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = r;
}
MT_KERNEL(mt_reduce_partial_f32)

extern "C" __global__ void mt_reduce_final_f32(float* out, const float* partial, int g, int mode) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (int i = threadIdx.x; i < g; i += blockDim.x) acc = (mode == 1) ? mt_fmaxf(acc, partial[i]) : acc + partial[i];
  float r = (mode == 1) ? mt_block_max(acc, scratch) : mt_block_sum(acc, scratch);
  if (threadIdx.x == 0) out[0] = (mode == 2) ? mt_sqrtf(r) : r;
}
MT_KERNEL(mt_reduce_final_f32)

// block (256,1,1), grid (G, ntensors)
extern "C" __global__ void mt_multi_sumsq_partial_f32(float* partial, const unsigned long long* table, int ntensors, int col) {
  __shared__ float scratch[32];
  const unsigned long long* row = table + (long long)blockIdx.y * 8;
  const float* x = (const float*)row[col];
  long long n = (long long)row[5];
  float acc = 0.0f;
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) acc = __builtin_fmaf(x[i], x[i], acc);
  float r = mt_block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[(long long)blockIdx.y * gridDim.x + blockIdx.x] = r;
}
MT_KERNEL(mt_multi_sumsq_partial_f32)

// grid (ceil(cols/32)), block (32, 8)
extern "C" __global__ void mt_colsum_f32(float* out, const float* x, int rows, int cols, int accumulate) {
  __shared__ float s[8][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (c < cols)
    for (int r = threadIdx.y; r < rows; r += 8) acc += x[(long long)r * cols + c];
  s[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float t = 0.0f;
    for (int i = 0; i < 8; i++) t += s[i][threadIdx.x];
    out[c] = accumulate ? out[c] + t : t;
  }
}
MT_KERNEL(mt_colsum_f32)

extern "C" __global__ void mt_adamw_multi_f32(const unsigned long long* table, int ntensors, float w1, float b2, float w2,
                                               float eps, float decay, float l2, float neg_step, float bc2_sqrt,
                                               float grad_scale, const float* gnorm, float max_norm) {
  const unsigned long long* row = table + (long long)blockIdx.y * 8;
  float* p = (float*)row[0];
  const float* g = (const float*)row[1];
  float* m = (float*)row[2];
  float* v = (float*)row[3];
  unsigned short* pb = (unsigned short*)row[4];
  long long n = (long long)row[5];
  bool wd = row[6] != 0;
  float gs = grad_scale;
  if (gnorm && max_norm > 0.0f) {
    float c = max_norm / (gnorm[0] + 1e-6f);
    if (c < 1.0f) gs = gs * c;
  }
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    // mt_mul/mt_add: each operation rounded as kernels.AdamStep's, never fused.
    float gi = mt_mul(g[i], gs);
    float pi = p[i];
    if (wd) {
      pi = mt_mul(pi, decay);                         // AdamW: decay = 1-lr*wd (l2 = 0)
      if (l2 != 0.0f) gi = mt_add(gi, mt_mul(l2, pi));  // Adam's L2 term: l2 = wd (decay = 1)
    }
    float mi = m[i];
    if (w1 < 0.5f) mi = mt_add(mi, mt_mul(w1, gi - mi));
    else mi = gi - mt_mul(gi - mi, 1.0f - w1);
    float vi = mt_add(mt_mul(v[i], b2), mt_mul(mt_mul(w2, gi), gi));
    float denom = mt_add(mt_sqrtf(vi) / bc2_sqrt, eps);
    pi = mt_add(pi, mt_mul(neg_step, mi) / denom);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
    if (pb) pb[i] = mt_f2bf(pi);
  }
}
MT_KERNEL(mt_adamw_multi_f32)
