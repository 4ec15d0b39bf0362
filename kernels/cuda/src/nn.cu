// nn.cu: softmax cross-entropy, bias+GELU, LayerNorm (+residual), embeddings. See KERNELS.md.
#include "mt_common.cuh"

// ---------------------------------------------------------------- softmax cross-entropy
// grid (n), block (256)
extern "C" __global__ void mt_softmax_xent_f32(float* loss, float* dlogits, const float* logits, const int* targets, int n,
                                                int v, int ignore_index, float grad_scale) {
  __shared__ float scratch[32];
  long long row = blockIdx.x;
  if (row >= n) return;
  const float* x = logits + row * (long long)v;
  int t = targets[row];
  bool ignored = (t == ignore_index) || t < 0 || t >= v;
  float mx = -mt_u2f(0x7f800000u);
  for (int j = threadIdx.x; j < v; j += blockDim.x) mx = mt_fmaxf(mx, x[j]);
  mx = mt_block_max(mx, scratch);
  float s = 0.0f;
  for (int j = threadIdx.x; j < v; j += blockDim.x) s += mt_expf(x[j] - mx);
  s = mt_block_sum(s, scratch);
  float lse = mx + mt_logf(s);
  if (threadIdx.x == 0 && loss) loss[row] = ignored ? 0.0f : lse - x[t];
  if (dlogits) {
    float* d = dlogits + row * (long long)v;
    // every thread reads x[j] before writing d[j] for the same j: dlogits may alias logits
    float inv = 1.0f / s;
    for (int j = threadIdx.x; j < v; j += blockDim.x) {
      float pj = mt_expf(x[j] - mx) * inv;
      float gj = ignored ? 0.0f : (pj - (j == t ? 1.0f : 0.0f)) * grad_scale;
      d[j] = gj;
    }
  }
}
MT_KERNEL(mt_softmax_xent_f32)

// ---------------------------------------------------------------- bias + GELU (erf)
MT_FI float mt_gelu(float t) { return 0.5f * t * (1.0f + mt_erff(t * 0.7071067811865476f)); }
MT_FI float mt_gelu_grad(float t) {
  float cdf = 0.5f * (1.0f + mt_erff(t * 0.7071067811865476f));
  float pdf = 0.3989422804014327f * mt_expf(-0.5f * t * t);
  return cdf + t * pdf;
}

extern "C" __global__ void mt_bias_gelu_fwd_f32(float* h, float* y, unsigned short* y_bf16, const float* x, const float* bias,
                                                 int rows, int cols) {
  long long n = (long long)rows * cols;
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    float t = x[i] + (bias ? bias[i % cols] : 0.0f);
    float g = mt_gelu(t);
    if (h) h[i] = t;
    if (y) y[i] = g;
    if (y_bf16) y_bf16[i] = mt_f2bf(g);
  }
}
MT_KERNEL(mt_bias_gelu_fwd_f32)

extern "C" __global__ void mt_bias_gelu_bwd_f32(float* dx, unsigned short* dx_bf16, const float* dy, const float* h, int rows,
                                                 int cols, int accumulate) {
  long long n = (long long)rows * cols;
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    float d = dy[i] * mt_gelu_grad(h[i]);
    if (dx) dx[i] = accumulate ? dx[i] + d : d;
    if (dx_bf16) dx_bf16[i] = mt_f2bf(d);
  }
}
MT_KERNEL(mt_bias_gelu_bwd_f32)

// y = x + bias[col] (f32 and/or bf16 outputs). grid-stride.
extern "C" __global__ void mt_bias_add_f32(float* y, unsigned short* y_bf16, const float* x, const float* bias, int rows, int cols) {
  long long n = (long long)rows * cols;
  for (long long i = mt_gtid(); i < n; i += mt_gstride()) {
    float t = x[i] + (bias ? bias[i % cols] : 0.0f);
    if (y) y[i] = t;
    if (y_bf16) y_bf16[i] = mt_f2bf(t);
  }
}
MT_KERNEL(mt_bias_add_f32)

// ---------------------------------------------------------------- LayerNorm (+ residual)
// grid (rows), block (256)
extern "C" __global__ void mt_layernorm_fwd_f32(float* y, unsigned short* y_bf16, float* s, float* mean, float* rstd,
                                                 const float* x, const float* r, const float* gamma, const float* beta,
                                                 int rows, int cols, float eps) {
  __shared__ float scratch[32];
  long long row = blockIdx.x;
  if (row >= rows) return;
  long long base = row * (long long)cols;
  float sum = 0.0f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    float v = x[base + j] + (r ? r[base + j] : 0.0f);
    sum += v;
  }
  float mu = mt_block_sum(sum, scratch) / (float)cols;
  float sq = 0.0f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    float v = x[base + j] + (r ? r[base + j] : 0.0f);
    float d = v - mu;
    sq += d * d;
  }
  float var = mt_block_sum(sq, scratch) / (float)cols;
  float rs = 1.0f / mt_sqrtf(var + eps);
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    float v = x[base + j] + (r ? r[base + j] : 0.0f);
    float o = (v - mu) * rs * gamma[j] + beta[j];
    if (s) s[base + j] = v;
    if (y) y[base + j] = o;
    if (y_bf16) y_bf16[base + j] = mt_f2bf(o);
  }
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}
MT_KERNEL(mt_layernorm_fwd_f32)

// grid (rows), block (256)
extern "C" __global__ void mt_layernorm_bwd_f32(float* dx, unsigned short* dx_bf16, const float* dy, const float* s,
                                                 const float* mean, const float* rstd, const float* gamma, int rows, int cols,
                                                 int accumulate) {
  __shared__ float scratch[32];
  long long row = blockIdx.x;
  if (row >= rows) return;
  long long base = row * (long long)cols;
  float mu = mean[row], rs = rstd[row];
  float sg = 0.0f, sgx = 0.0f;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    float xh = (s[base + j] - mu) * rs;
    float g = dy[base + j] * gamma[j];
    sg += g;
    sgx += g * xh;
  }
  float mg = mt_block_sum(sg, scratch) / (float)cols;
  float mgx = mt_block_sum(sgx, scratch) / (float)cols;
  for (int j = threadIdx.x; j < cols; j += blockDim.x) {
    float xh = (s[base + j] - mu) * rs;
    float g = dy[base + j] * gamma[j];
    float d = rs * (g - mg - xh * mgx);
    if (dx) dx[base + j] = accumulate ? dx[base + j] + d : d;
    if (dx_bf16) dx_bf16[base + j] = mt_f2bf(d);
  }
}
MT_KERNEL(mt_layernorm_bwd_f32)

// grid (ceil(cols/32), P), block (32, 8); part = [2, P, cols]
extern "C" __global__ void mt_layernorm_bwd_params_partial_f32(float* part, const float* dy, const float* s, const float* mean,
                                                                const float* rstd, int rows, int cols, int rows_per_part) {
  __shared__ float sg[8][33], sb[8][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  int r0 = blockIdx.y * rows_per_part;
  int r1 = r0 + rows_per_part;
  if (r1 > rows) r1 = rows;
  float ag = 0.0f, ab = 0.0f;
  if (c < cols) {
    for (int r = r0 + (int)threadIdx.y; r < r1; r += 8) {
      long long i = (long long)r * cols + c;
      float xh = (s[i] - mean[r]) * rstd[r];
      ag += dy[i] * xh;
      ab += dy[i];
    }
  }
  sg[threadIdx.y][threadIdx.x] = ag;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    float tg = 0.0f, tb = 0.0f;
    for (int i = 0; i < 8; i++) {
      tg += sg[i][threadIdx.x];
      tb += sb[i][threadIdx.x];
    }
    long long P = gridDim.y;
    part[(long long)blockIdx.y * cols + c] = tg;
    part[(P + blockIdx.y) * (long long)cols + c] = tb;
  }
}
MT_KERNEL(mt_layernorm_bwd_params_partial_f32)

// ---------------------------------------------------------------- embeddings
// grid (n), block (128)
extern "C" __global__ void mt_embedding_fwd_f32(float* y, const float* table, const int* ids, int n, int dim, int accumulate) {
  long long i = blockIdx.x;
  if (i >= n) return;
  int id = ids[i];
  float* yr = y + i * (long long)dim;
  const float* tr = table + (long long)(id < 0 ? 0 : id) * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    float v = id < 0 ? 0.0f : tr[j];
    yr[j] = accumulate ? yr[j] + v : v;
  }
}
MT_KERNEL(mt_embedding_fwd_f32)

// grid (n), block (128). order: stable sort permutation of ids.
extern "C" __global__ void mt_embedding_bwd_f32(float* dtable, const float* dy, const int* ids, const int* order, int n, int dim) {
  int k = blockIdx.x;
  if (k >= n) return;
  int id = ids[order[k]];
  if (id < 0) return;
  if (k > 0 && ids[order[k - 1]] == id) return;  // not the start of a run
  int end = k + 1;
  while (end < n && ids[order[end]] == id) end++;
  float* tr = dtable + (long long)id * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) {
    float acc = 0.0f;
    for (int q = k; q < end; q++) acc += dy[(long long)order[q] * dim + j];
    tr[j] += acc;
  }
}
MT_KERNEL(mt_embedding_bwd_f32)
