// attention.cu: fused multi-head attention, FlashAttention-2 algorithm (online softmax in f32,
// log-sum-exp saved, P recomputed per tile in the backward, no T x T matrix in global memory).
// This first version is SIMT (f32 FMAs on bf16 tiles in shared memory), not tensor cores.
// Layout: element (b, h, t, d) of Q/K/V is at ptr[b*q_sb + h*q_sh + t*q_st + d]; O and dO use the
// o_* strides, dQ/dK/dV (f32) the g_* strides; lse and Dvec are dense [B, H, T] f32.
// Key padding: keys t >= valid_len[b] are masked (valid_len may be 0 = no padding).
// A query row with no valid key gets O = 0 and lse = +inf (so the backward gives it P = 0).
#include "ptx_helpers.cuh"

#define FA_BQ 64      // query rows per block (fwd, dq)
#define FA_BKF 64     // keys per tile (fwd)
#define FA_BQB 32     // query rows per tile (bwd dk/dv)
#define FA_BKB 32     // keys per tile (bwd dq)
#define FA_LDS 66     // smem row length (bf16) for D <= 64
#define FA_LOG2E 1.44269504088896341f

// rows [r0, r0+n) of a [T, D] bf16 matrix (row stride st) into s[n][FA_LDS], zero outside.
MT_FI void fa_load_tile(unsigned short* s, const unsigned short* p, long long st, int r0, int n, int T, int D, int tid,
                        int nthreads) {
  for (int e = tid; e < n * 64; e += nthreads) {
    int r = e >> 6, d = e & 63;
    int t = r0 + r;
    s[r * FA_LDS + d] = (t < T && d < D) ? p[(long long)t * st + d] : (unsigned short)0;
  }
}

// grid (ceil(T/64), H, B), block (256,1,1). thread: query row r = tid/4, quarter c = tid%4.
extern "C" __global__ void __launch_bounds__(256) mt_flash_attn_fwd(
    const unsigned short* Q, const unsigned short* K, const unsigned short* V, unsigned short* O, float* Of32, float* lse,
    const int* valid_len, int B, int H, int T, int D, long long q_sb, long long q_sh, long long q_st, long long o_sb,
    long long o_sh, long long o_st, float scale) {
  __shared__ unsigned short Ks[FA_BKF * FA_LDS];
  __shared__ unsigned short Vs[FA_BKF * FA_LDS];
  __shared__ float Ps[FA_BQ][FA_BKF + 1];
  int tid = threadIdx.x, r = tid >> 2, c = tid & 3;
  int b = blockIdx.z, h = blockIdx.y;
  int i = blockIdx.x * FA_BQ + r;  // my query row
  long long qoff = (long long)b * q_sb + (long long)h * q_sh;
  long long ooff = (long long)b * o_sb + (long long)h * o_sh;
  int nvalid = valid_len ? valid_len[b] : T;
  if (nvalid > T) nvalid = T;
  float q[64];
#pragma unroll
  for (int d = 0; d < 64; d++) q[d] = (i < T && d < D) ? mt_bf2f(Q[qoff + (long long)i * q_st + d]) : 0.0f;
  float sl2 = scale * FA_LOG2E;
  float m = -mt_u2f(0x7f800000u), l = 0.0f;
  float o[16];
#pragma unroll
  for (int dd = 0; dd < 16; dd++) o[dd] = 0.0f;
  for (int k0 = 0; k0 < nvalid; k0 += FA_BKF) {
    __syncthreads();
    fa_load_tile(Ks, K + qoff, q_st, k0, FA_BKF, nvalid, D, tid, 256);
    fa_load_tile(Vs, V + qoff, q_st, k0, FA_BKF, nvalid, D, tid, 256);
    __syncthreads();
    float s[16];
    float mt = -mt_u2f(0x7f800000u);
#pragma unroll
    for (int jj = 0; jj < 16; jj++) {
      int j = c + 4 * jj;
      float acc = 0.0f;
      const unsigned short* kr = Ks + j * FA_LDS;
#pragma unroll
      for (int d = 0; d < 64; d++) acc = __builtin_fmaf(q[d], mt_bf2f(kr[d]), acc);
      s[jj] = (k0 + j < nvalid) ? acc * sl2 : -mt_u2f(0x7f800000u);
      mt = mt_fmaxf(mt, s[jj]);
    }
    mt = mt_fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 1));
    mt = mt_fmaxf(mt, __shfl_xor_sync(0xffffffffu, mt, 2));
    float mnew = mt_fmaxf(m, mt);  // finite: the tile has at least one valid key
    float alpha = mt_fast_exp2(m - mnew);
    float ls = 0.0f;
#pragma unroll
    for (int jj = 0; jj < 16; jj++) {
      float p = mt_fast_exp2(s[jj] - mnew);
      ls += p;
      Ps[r][c + 4 * jj] = p;
    }
    ls += __shfl_xor_sync(0xffffffffu, ls, 1);
    ls += __shfl_xor_sync(0xffffffffu, ls, 2);
    l = l * alpha + ls;
    m = mnew;
    __syncwarp();
#pragma unroll
    for (int dd = 0; dd < 16; dd++) o[dd] *= alpha;
    for (int j = 0; j < FA_BKF; j++) {
      float p = Ps[r][j];
      const unsigned short* vr = Vs + j * FA_LDS + c;
#pragma unroll
      for (int dd = 0; dd < 16; dd++) o[dd] = __builtin_fmaf(p, mt_bf2f(vr[4 * dd]), o[dd]);
    }
    __syncwarp();
  }
  if (i < T) {
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
#pragma unroll
    for (int dd = 0; dd < 16; dd++) {
      int d = c + 4 * dd;
      if (d >= D) continue;
      float v = o[dd] * inv;
      long long off = ooff + (long long)i * o_st + d;
      if (O) O[off] = mt_f2bf(v);
      if (Of32) Of32[off] = v;
    }
    if (c == 0) {
      long long li = ((long long)b * H + h) * T + i;
      lse[li] = l > 0.0f ? (m + mt_fast_log2(l)) * (1.0f / FA_LOG2E) : mt_u2f(0x7f800000u);
    }
  }
}
MT_KERNEL(mt_flash_attn_fwd)

// Dvec[b,h,i] = sum_d dO[i,d] * O[i,d] (O from Of32 when given, else the bf16 O).
// grid (ceil(T/128), H, B), block (128,1,1).
extern "C" __global__ void mt_flash_attn_bwd_pre(float* Dvec, const unsigned short* O, const float* Of32, const unsigned short* dO, int B, int H,
                                                  int T, int D, long long o_sb, long long o_sh, long long o_st) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  int b = blockIdx.z, h = blockIdx.y;
  if (i >= T) return;
  long long off = (long long)b * o_sb + (long long)h * o_sh + (long long)i * o_st;
  float acc = 0.0f;
  if (Of32)
    for (int d = 0; d < D; d++) acc = __builtin_fmaf(mt_bf2f(dO[off + d]), Of32[off + d], acc);
  else
    for (int d = 0; d < D; d++) acc = __builtin_fmaf(mt_bf2f(dO[off + d]), mt_bf2f(O[off + d]), acc);
  Dvec[((long long)b * H + h) * T + i] = acc;
}
MT_KERNEL(mt_flash_attn_bwd_pre)

// dK, dV for 64 keys per block. grid (ceil(T/64), H, B), block (256,1,1).
// thread: key row r = tid/4, quarter c = tid%4 (owns queries c+4*ii of each 32-query tile and dims c+4*dd).
extern "C" __global__ void __launch_bounds__(256) mt_flash_attn_bwd_dkdv(
    float* dK, float* dV, const unsigned short* Q, const unsigned short* K, const unsigned short* V,
    const unsigned short* dO, const float* lse, const float* Dvec, const int* valid_len, int B, int H, int T, int D,
    long long q_sb, long long q_sh, long long q_st, long long o_sb, long long o_sh, long long o_st, long long g_sb,
    long long g_sh, long long g_st, float scale) {
  __shared__ unsigned short Ks[64 * FA_LDS];
  __shared__ unsigned short Vs[64 * FA_LDS];
  __shared__ unsigned short Qs[FA_BQB * FA_LDS];
  __shared__ unsigned short dOs[FA_BQB * FA_LDS];
  __shared__ float Ss[64][FA_BQB + 1];
  __shared__ float Ls[FA_BQB], Ds[FA_BQB];
  int tid = threadIdx.x, r = tid >> 2, c = tid & 3;
  int b = blockIdx.z, h = blockIdx.y;
  int j0 = blockIdx.x * 64, j = j0 + r;
  long long qoff = (long long)b * q_sb + (long long)h * q_sh;
  long long ooff = (long long)b * o_sb + (long long)h * o_sh;
  long long goff = (long long)b * g_sb + (long long)h * g_sh;
  long long loff = ((long long)b * H + h) * T;
  int nvalid = valid_len ? valid_len[b] : T;
  if (nvalid > T) nvalid = T;
  fa_load_tile(Ks, K + qoff, q_st, j0, 64, T, D, tid, 256);
  fa_load_tile(Vs, V + qoff, q_st, j0, 64, T, D, tid, 256);
  bool jvalid = j < nvalid;
  float sl2 = scale * FA_LOG2E;
  float dk[16], dv[16];
#pragma unroll
  for (int dd = 0; dd < 16; dd++) dk[dd] = dv[dd] = 0.0f;
  for (int i0 = 0; i0 < T && j0 < nvalid; i0 += FA_BQB) {
    __syncthreads();
    fa_load_tile(Qs, Q + qoff, q_st, i0, FA_BQB, T, D, tid, 256);
    fa_load_tile(dOs, dO + ooff, o_st, i0, FA_BQB, T, D, tid, 256);
    if (tid < FA_BQB) {
      int i = i0 + tid;
      Ls[tid] = i < T ? lse[loff + i] : mt_u2f(0x7f800000u);
      Ds[tid] = i < T ? Dvec[loff + i] : 0.0f;
    }
    __syncthreads();
    const unsigned short* kr = Ks + r * FA_LDS;
    const unsigned short* vr = Vs + r * FA_LDS;
    float p[8], ds[8];
#pragma unroll
    for (int ii = 0; ii < 8; ii++) {
      int il = c + 4 * ii;
      const unsigned short* qr = Qs + il * FA_LDS;
      const unsigned short* gr = dOs + il * FA_LDS;
      float s = 0.0f, dp = 0.0f;
      for (int d = 0; d < 64; d++) {
        s = __builtin_fmaf(mt_bf2f(qr[d]), mt_bf2f(kr[d]), s);
        dp = __builtin_fmaf(mt_bf2f(gr[d]), mt_bf2f(vr[d]), dp);
      }
      float lv = Ls[il];
      float pv = (jvalid && i0 + il < T) ? mt_fast_exp2(s * sl2 - lv * FA_LOG2E) : 0.0f;
      p[ii] = pv;
      ds[ii] = pv * (dp - Ds[il]);
    }
    // dV_j += sum_i P_ij dO_i
#pragma unroll
    for (int ii = 0; ii < 8; ii++) Ss[r][c + 4 * ii] = p[ii];
    __syncwarp();
    for (int il = 0; il < FA_BQB; il++) {
      float pv = Ss[r][il];
      const unsigned short* gr = dOs + il * FA_LDS + c;
#pragma unroll
      for (int dd = 0; dd < 16; dd++) dv[dd] = __builtin_fmaf(pv, mt_bf2f(gr[4 * dd]), dv[dd]);
    }
    __syncwarp();
    // dK_j += scale * sum_i dS_ij Q_i
#pragma unroll
    for (int ii = 0; ii < 8; ii++) Ss[r][c + 4 * ii] = ds[ii];
    __syncwarp();
    for (int il = 0; il < FA_BQB; il++) {
      float dsv = Ss[r][il];
      const unsigned short* qr = Qs + il * FA_LDS + c;
#pragma unroll
      for (int dd = 0; dd < 16; dd++) dk[dd] = __builtin_fmaf(dsv, mt_bf2f(qr[4 * dd]), dk[dd]);
    }
    __syncwarp();
  }
  if (j < T) {
#pragma unroll
    for (int dd = 0; dd < 16; dd++) {
      int d = c + 4 * dd;
      if (d >= D) continue;
      long long off = goff + (long long)j * g_st + d;
      dK[off] = dk[dd] * scale;
      dV[off] = dv[dd];
    }
  }
}
MT_KERNEL(mt_flash_attn_bwd_dkdv)

// dQ for 64 queries per block. grid (ceil(T/64), H, B), block (256,1,1).
// thread: query row r = tid/4, quarter c (owns keys c+4*jj of each 32-key tile and dims c+4*dd).
extern "C" __global__ void __launch_bounds__(256) mt_flash_attn_bwd_dq(
    float* dQ, const unsigned short* Q, const unsigned short* K, const unsigned short* V, const unsigned short* dO,
    const float* lse, const float* Dvec, const int* valid_len, int B, int H, int T, int D, long long q_sb, long long q_sh,
    long long q_st, long long o_sb, long long o_sh, long long o_st, long long g_sb, long long g_sh, long long g_st,
    float scale) {
  __shared__ unsigned short Qs[64 * FA_LDS];
  __shared__ unsigned short dOs[64 * FA_LDS];
  __shared__ unsigned short Ks[FA_BKB * FA_LDS];
  __shared__ unsigned short Vs[FA_BKB * FA_LDS];
  __shared__ float Ss[64][FA_BKB + 1];
  int tid = threadIdx.x, r = tid >> 2, c = tid & 3;
  int b = blockIdx.z, h = blockIdx.y;
  int i0 = blockIdx.x * 64, i = i0 + r;
  long long qoff = (long long)b * q_sb + (long long)h * q_sh;
  long long ooff = (long long)b * o_sb + (long long)h * o_sh;
  long long goff = (long long)b * g_sb + (long long)h * g_sh;
  long long loff = ((long long)b * H + h) * T;
  int nvalid = valid_len ? valid_len[b] : T;
  if (nvalid > T) nvalid = T;
  fa_load_tile(Qs, Q + qoff, q_st, i0, 64, T, D, tid, 256);
  fa_load_tile(dOs, dO + ooff, o_st, i0, 64, T, D, tid, 256);
  float lv = i < T ? lse[loff + i] : mt_u2f(0x7f800000u);
  float Di = i < T ? Dvec[loff + i] : 0.0f;
  float sl2 = scale * FA_LOG2E;
  float dq[16];
#pragma unroll
  for (int dd = 0; dd < 16; dd++) dq[dd] = 0.0f;
  for (int k0 = 0; k0 < nvalid; k0 += FA_BKB) {
    __syncthreads();
    fa_load_tile(Ks, K + qoff, q_st, k0, FA_BKB, nvalid, D, tid, 256);
    fa_load_tile(Vs, V + qoff, q_st, k0, FA_BKB, nvalid, D, tid, 256);
    __syncthreads();
    const unsigned short* qr = Qs + r * FA_LDS;
    const unsigned short* gr = dOs + r * FA_LDS;
#pragma unroll
    for (int jj = 0; jj < 8; jj++) {
      int jl = c + 4 * jj;
      const unsigned short* kr = Ks + jl * FA_LDS;
      const unsigned short* vr = Vs + jl * FA_LDS;
      float s = 0.0f, dp = 0.0f;
      for (int d = 0; d < 64; d++) {
        s = __builtin_fmaf(mt_bf2f(qr[d]), mt_bf2f(kr[d]), s);
        dp = __builtin_fmaf(mt_bf2f(gr[d]), mt_bf2f(vr[d]), dp);
      }
      float pv = (k0 + jl < nvalid) ? mt_fast_exp2(s * sl2 - lv * FA_LOG2E) : 0.0f;
      Ss[r][jl] = pv * (dp - Di);
    }
    __syncwarp();
    for (int jl = 0; jl < FA_BKB; jl++) {
      float dsv = Ss[r][jl];
      const unsigned short* kr = Ks + jl * FA_LDS + c;
#pragma unroll
      for (int dd = 0; dd < 16; dd++) dq[dd] = __builtin_fmaf(dsv, mt_bf2f(kr[4 * dd]), dq[dd]);
    }
    __syncwarp();
  }
  if (i < T) {
#pragma unroll
    for (int dd = 0; dd < 16; dd++) {
      int d = c + 4 * dd;
      if (d >= D) continue;
      dQ[goff + (long long)i * g_st + d] = dq[dd] * scale;
    }
  }
}
MT_KERNEL(mt_flash_attn_bwd_dq)

// ============================================================================================
// Tensor-core forward (mma.sync m16n8k16 bf16, f32 accumulate), D = 32 or 64.
// Block: 4 warps, 64 query rows (16 per warp); key/value tiles of 64 rows, double-buffered
// with cp.async (scalar loads when the layout is not 16-byte aligned).
// ============================================================================================
#define FT_BQ 64
#define FT_BK 64
#define FT_LD 72  // smem row length (bf16): 144 bytes, conflict-free ldmatrix

// Attention-probability dropout factor of element (b, h, i, j), as kernels.Attention.dropScale:
// index = ((b*H + h)*T + i)*T + j, dropped when mt_sm64_uniform(seed, index) < p, else 1/(1-p).
MT_FI float ft_drop(float p, unsigned long long seed, long long bh, int T, int i, int j) {
  unsigned long long idx = ((unsigned long long)bh * (unsigned long long)T + (unsigned long long)i) * (unsigned long long)T +
                           (unsigned long long)j;
  return mt_sm64_uniform(seed, idx) < p ? 0.0f : 1.0f / (1.0f - p);
}

// rows [r0, r0+64) (only rows < nrows) of a [*, D] bf16 matrix with row stride st, into s[64][FT_LD]
template <int D>
MT_FI void ft_load(unsigned short* s, const unsigned short* p, long long st, int r0, int nrows, bool vec, int tid) {
  const int cpr = D / 8;  // 16-byte chunks per row
  for (int c = tid; c < 64 * cpr; c += 128) {
    int r = c / cpr, cc = (c % cpr) * 8;
    int t = r0 + r;
    unsigned short* dst = s + r * FT_LD + cc;
    if (vec) {
      mt_cp_async16(dst, t < nrows ? p + (long long)t * st + cc : p, t < nrows ? 16 : 0);
    } else {
#pragma unroll
      for (int e = 0; e < 8; e++) dst[e] = t < nrows ? p[(long long)t * st + cc + e] : (unsigned short)0;
    }
  }
}

template <int D>
MT_FI void ft_fwd(const unsigned short* Q, const unsigned short* K, const unsigned short* V, unsigned short* O, float* Of32,
                  float* lse, const int* valid_len, int H, int T, long long q_sb, long long q_sh, long long q_st,
                  long long o_sb, long long o_sh, long long o_st, float scale, float drop_p, unsigned long long drop_seed,
                  unsigned short* Qs, unsigned short* Ks0) {
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int g = lane >> 2, t4 = lane & 3, j8 = lane >> 3, q8 = lane & 7;
  int b = blockIdx.z, h = blockIdx.y;
  int i0 = blockIdx.x * FT_BQ;
  long long qoff = (long long)b * q_sb + (long long)h * q_sh;
  long long ooff = (long long)b * o_sb + (long long)h * o_sh;
  int nvalid = valid_len ? valid_len[b] : T;
  if (nvalid > T) nvalid = T;
  bool vec = ((((unsigned long long)Q) & 15) == 0) && ((((unsigned long long)K) & 15) == 0) &&
             ((((unsigned long long)V) & 15) == 0) && q_st % 8 == 0 && q_sh % 8 == 0 && q_sb % 8 == 0;
  const unsigned short* Qb = Q + qoff;
  const unsigned short* Kb = K + qoff;
  const unsigned short* Vb = V + qoff;
  ft_load<D>(Qs, Qb + (long long)i0 * q_st, q_st, 0, T - i0, vec, tid);
  int ntiles = nvalid > 0 ? (nvalid + FT_BK - 1) / FT_BK : 0;
  if (ntiles > 0) {
    ft_load<D>(Ks0, Kb, q_st, 0, nvalid, vec, tid);
    ft_load<D>(Ks0 + FT_BK * FT_LD, Vb, q_st, 0, nvalid, vec, tid);
  }
  mt_cp_async_commit();

  const float sl2 = scale * FA_LOG2E;
  const float NEG_INF = -mt_u2f(0x7f800000u);
  float m[2] = {NEG_INF, NEG_INF}, l[2] = {0.0f, 0.0f};
  float o[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) o[j][e] = 0.0f;
  unsigned qf[D / 16][4];

  for (int kt = 0; kt < ntiles; kt++) {
    unsigned short* Ks = Ks0 + (kt & 1) * (FT_BK * FT_LD * 2);
    unsigned short* Vs = Ks + FT_BK * FT_LD;
    // prefetch the next tile into the other buffer (its last readers finished at the end of kt-1)
    if (kt + 1 < ntiles) {
      unsigned short* Kn = Ks0 + ((kt + 1) & 1) * (FT_BK * FT_LD * 2);
      ft_load<D>(Kn, Kb, q_st, (kt + 1) * FT_BK, nvalid, vec, tid);
      ft_load<D>(Kn + FT_BK * FT_LD, Vb, q_st, (kt + 1) * FT_BK, nvalid, vec, tid);
    }
    mt_cp_async_commit();
    mt_cp_async_wait<1>();
    __syncthreads();
    if (kt == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++)
        mt_ldmatrix_x4(qf[kk], Qs + (warp * 16 + (lane & 15)) * FT_LD + kk * 16 + (lane >> 4) * 8);
    }
    // S = Q K^T (16 x 64 per warp)
    float s[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
      for (int jp = 0; jp < 4; jp++) {
        unsigned r[4];
        int n = jp * 16 + ((j8 >> 1) << 3) + q8;
        mt_ldmatrix_x4(r, Ks + n * FT_LD + kk * 16 + ((j8 & 1) << 3));
        unsigned b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(s[2 * jp], qf[kk], b0, s[2 * jp]);
        mt_mma_bf16_16816(s[2 * jp + 1], qf[kk], b1, s[2 * jp + 1]);
      }
    }
    // online softmax, rows g (e = 0,1) and g+8 (e = 2,3)
    float mx[2] = {NEG_INF, NEG_INF};
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int key = kt * FT_BK + j * 8 + 2 * t4 + (e & 1);
        float v = key < nvalid ? s[j][e] * sl2 : NEG_INF;
        s[j][e] = v;
        mx[e >> 1] = mt_fmaxf(mx[e >> 1], v);
      }
    float alpha[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      mx[hr] = mt_fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
      mx[hr] = mt_fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
      float mnew = mt_fmaxf(m[hr], mx[hr]);  // finite: every tile has a valid key
      alpha[hr] = mt_fast_exp2(m[hr] - mnew);
      m[hr] = mnew;
    }
    float ls[2] = {0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float p = mt_fast_exp2(s[j][e] - m[e >> 1]);
        ls[e >> 1] += p;  // the normaliser counts dropped probabilities too
        if (drop_p > 0.0f)
          p *= ft_drop(drop_p, drop_seed, (long long)b * H + h, T, i0 + warp * 16 + g + ((e >> 1) << 3),
                       kt * FT_BK + j * 8 + 2 * t4 + (e & 1));
        s[j][e] = p;
      }
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
      ls[hr] += __shfl_xor_sync(0xffffffffu, ls[hr], 1);
      ls[hr] += __shfl_xor_sync(0xffffffffu, ls[hr], 2);
      l[hr] = l[hr] * alpha[hr] + ls[hr];
    }
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
      o[j][0] *= alpha[0];
      o[j][1] *= alpha[0];
      o[j][2] *= alpha[1];
      o[j][3] *= alpha[1];
    }
    // O += P V: P (16 x 64) as A fragments straight from the S accumulators
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      unsigned pa[4];
      pa[0] = mt_pack_bf2(s[2 * kk][0], s[2 * kk][1]);
      pa[1] = mt_pack_bf2(s[2 * kk][2], s[2 * kk][3]);
      pa[2] = mt_pack_bf2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pa[3] = mt_pack_bf2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
      for (int dp = 0; dp < D / 16; dp++) {
        unsigned r[4];
        int k = kk * 16 + ((j8 & 1) << 3) + q8;
        int n = dp * 16 + ((j8 >> 1) << 3);
        mt_ldmatrix_x4_trans(r, Vs + k * FT_LD + n);
        unsigned b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(o[2 * dp], pa, b0, o[2 * dp]);
        mt_mma_bf16_16816(o[2 * dp + 1], pa, b1, o[2 * dp + 1]);
      }
    }
    __syncthreads();  // everyone is done with this buffer before it is refilled
  }
  mt_cp_async_wait<0>();
  // epilogue
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    int i = i0 + warp * 16 + g + hr * 8;
    if (i >= T) continue;
    float inv = l[hr] > 0.0f ? 1.0f / l[hr] : 0.0f;
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
#pragma unroll
      for (int e = 0; e < 2; e++) {
        int d = j * 8 + 2 * t4 + e;
        float v = o[j][hr * 2 + e] * inv;
        long long off = ooff + (long long)i * o_st + d;
        if (O) O[off] = mt_f2bf(v);
        if (Of32) Of32[off] = v;
      }
    }
    if (t4 == 0)
      lse[((long long)b * H + h) * T + i] =
          l[hr] > 0.0f ? (m[hr] + mt_fast_log2(l[hr])) * (1.0f / FA_LOG2E) : mt_u2f(0x7f800000u);
  }
}

// Same contract as mt_flash_attn_fwd, but D must be 32 or 64 (other D: use mt_flash_attn_fwd).
// grid (ceil(T/64), H, B), block (128,1,1), static smem 45 KiB.
extern "C" __global__ void __launch_bounds__(128) mt_flash_attn_fwd_tc(
    const unsigned short* Q, const unsigned short* K, const unsigned short* V, unsigned short* O, float* Of32, float* lse,
    const int* valid_len, int B, int H, int T, int D, long long q_sb, long long q_sh, long long q_st, long long o_sb,
    long long o_sh, long long o_st, float scale, float drop_p, unsigned long long drop_seed) {
  __shared__ __align__(16) unsigned short Qs[FT_BQ * FT_LD];
  __shared__ __align__(16) unsigned short KVs[2 * 2 * FT_BK * FT_LD];
  if (D == 64)
    ft_fwd<64>(Q, K, V, O, Of32, lse, valid_len, H, T, q_sb, q_sh, q_st, o_sb, o_sh, o_st, scale, drop_p, drop_seed, Qs, KVs);
  else if (D == 32)
    ft_fwd<32>(Q, K, V, O, Of32, lse, valid_len, H, T, q_sb, q_sh, q_st, o_sb, o_sh, o_st, scale, drop_p, drop_seed, Qs, KVs);
}
MT_KERNEL(mt_flash_attn_fwd_tc)

// ============================================================================================
// Tensor-core backward, D = 32 or 64: same contracts as mt_flash_attn_bwd_dkdv / _dq.
// ============================================================================================

// C-fragment pair (two 16x8 accumulators, keys/queries 16kk..16kk+15) -> bf16 A fragment
MT_FI void ft_acc_to_a(unsigned a[4], const float* c0, const float* c1) {
  a[0] = mt_pack_bf2(c0[0], c0[1]);
  a[1] = mt_pack_bf2(c0[2], c0[3]);
  a[2] = mt_pack_bf2(c1[0], c1[1]);
  a[3] = mt_pack_bf2(c1[2], c1[3]);
}

// Each warp owns 16 keys of the block's 64; loops over query tiles of 64.
template <int D>
MT_FI void ft_bwd_dkdv(float* dK, float* dV, const unsigned short* Q, const unsigned short* K, const unsigned short* V,
                       const unsigned short* dO, const float* lse, const float* Dvec, const int* valid_len, int H, int T,
                       long long q_sb, long long q_sh, long long q_st, long long o_sb, long long o_sh, long long o_st,
                       long long g_sb, long long g_sh, long long g_st, float scale, float drop_p,
                       unsigned long long drop_seed, unsigned short* Ks, unsigned short* Vs, unsigned short* Qs,
                       unsigned short* dOs, float* Ls, float* Ds) {
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int g = lane >> 2, t4 = lane & 3, j8 = lane >> 3, q8 = lane & 7;
  int b = blockIdx.z, h = blockIdx.y;
  int j0 = blockIdx.x * FT_BK;
  long long qoff = (long long)b * q_sb + (long long)h * q_sh;
  long long ooff = (long long)b * o_sb + (long long)h * o_sh;
  long long goff = (long long)b * g_sb + (long long)h * g_sh;
  long long loff = ((long long)b * H + h) * T;
  int nvalid = valid_len ? valid_len[b] : T;
  if (nvalid > T) nvalid = T;
  bool vec = ((((unsigned long long)Q) & 15) == 0) && ((((unsigned long long)K) & 15) == 0) &&
             ((((unsigned long long)V) & 15) == 0) && ((((unsigned long long)dO) & 15) == 0) && q_st % 8 == 0 &&
             q_sh % 8 == 0 && q_sb % 8 == 0 && o_st % 8 == 0 && o_sh % 8 == 0 && o_sb % 8 == 0;
  ft_load<D>(Ks, K + qoff + (long long)j0 * q_st, q_st, 0, T - j0, vec, tid);
  ft_load<D>(Vs, V + qoff + (long long)j0 * q_st, q_st, 0, T - j0, vec, tid);
  mt_cp_async_commit();
  const float sl2 = scale * FA_LOG2E;
  float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[j][e] = dv[j][e] = 0.0f;
  unsigned kf[D / 16][4], vf[D / 16][4];
  bool any = j0 < nvalid;
  for (int i0 = 0; any && i0 < T; i0 += FT_BQ) {
    __syncthreads();  // previous tile fully consumed
    ft_load<D>(Qs, Q + qoff + (long long)i0 * q_st, q_st, 0, T - i0, vec, tid);
    ft_load<D>(dOs, dO + ooff + (long long)i0 * o_st, o_st, 0, T - i0, vec, tid);
    mt_cp_async_commit();
    if (tid < FT_BQ) {
      int i = i0 + tid;
      Ls[tid] = i < T ? lse[loff + i] * FA_LOG2E : mt_u2f(0x7f800000u);
      Ds[tid] = i < T ? Dvec[loff + i] : 0.0f;
    }
    mt_cp_async_wait<0>();
    __syncthreads();
    if (i0 == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        mt_ldmatrix_x4(kf[kk], Ks + (warp * 16 + (lane & 15)) * FT_LD + kk * 16 + (lane >> 4) * 8);
        mt_ldmatrix_x4(vf[kk], Vs + (warp * 16 + (lane & 15)) * FT_LD + kk * 16 + (lane >> 4) * 8);
      }
    }
    // S^T = K Q^T and dP^T = V dO^T (16 keys x 64 queries per warp)
    float s[8][4], dp[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[j][e] = dp[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
      for (int jp = 0; jp < 4; jp++) {
        unsigned r[4];
        int n = jp * 16 + ((j8 >> 1) << 3) + q8;
        int k = kk * 16 + ((j8 & 1) << 3);
        mt_ldmatrix_x4(r, Qs + n * FT_LD + k);
        unsigned b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(s[2 * jp], kf[kk], b0, s[2 * jp]);
        mt_mma_bf16_16816(s[2 * jp + 1], kf[kk], b1, s[2 * jp + 1]);
        mt_ldmatrix_x4(r, dOs + n * FT_LD + k);
        unsigned c0[2] = {r[0], r[1]}, c1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(dp[2 * jp], vf[kk], c0, dp[2 * jp]);
        mt_mma_bf16_16816(dp[2 * jp + 1], vf[kk], c1, dp[2 * jp + 1]);
      }
    }
    // P^T and dS^T
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int il = j * 8 + 2 * t4 + (e & 1);
        int key = j0 + warp * 16 + g + ((e >> 1) << 3);
        float p = key < nvalid ? mt_fast_exp2(s[j][e] * sl2 - Ls[il]) : 0.0f;
        float z = drop_p > 0.0f ? ft_drop(drop_p, drop_seed, (long long)b * H + h, T, i0 + il, key) : 1.0f;
        s[j][e] = p * z;
        dp[j][e] = p * (dp[j][e] * z - Ds[il]);
      }
    // dV += P^T dO ; dK += dS^T Q   (k = the 64 queries)
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      unsigned pa[4], da[4];
      ft_acc_to_a(pa, s[2 * kk], s[2 * kk + 1]);
      ft_acc_to_a(da, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
      for (int dq = 0; dq < D / 16; dq++) {
        unsigned r[4];
        int k = kk * 16 + ((j8 & 1) << 3) + q8;
        int n = dq * 16 + ((j8 >> 1) << 3);
        mt_ldmatrix_x4_trans(r, dOs + k * FT_LD + n);
        unsigned b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(dv[2 * dq], pa, b0, dv[2 * dq]);
        mt_mma_bf16_16816(dv[2 * dq + 1], pa, b1, dv[2 * dq + 1]);
        mt_ldmatrix_x4_trans(r, Qs + k * FT_LD + n);
        unsigned c0[2] = {r[0], r[1]}, c1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(dk[2 * dq], da, c0, dk[2 * dq]);
        mt_mma_bf16_16816(dk[2 * dq + 1], da, c1, dk[2 * dq + 1]);
      }
    }
  }
  mt_cp_async_wait<0>();
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    int j = j0 + warp * 16 + g + hr * 8;
    if (j >= T) continue;
#pragma unroll
    for (int jj = 0; jj < D / 8; jj++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        long long off = goff + (long long)j * g_st + jj * 8 + 2 * t4 + e;
        dK[off] = dk[jj][hr * 2 + e] * scale;
        dV[off] = dv[jj][hr * 2 + e];
      }
  }
}

// grid (ceil(T/64), H, B), block (128,1,1), static smem ~37 KiB. D must be 32 or 64.
extern "C" __global__ void __launch_bounds__(128) mt_flash_attn_bwd_dkdv_tc(
    float* dK, float* dV, const unsigned short* Q, const unsigned short* K, const unsigned short* V,
    const unsigned short* dO, const float* lse, const float* Dvec, const int* valid_len, int B, int H, int T, int D,
    long long q_sb, long long q_sh, long long q_st, long long o_sb, long long o_sh, long long o_st, long long g_sb,
    long long g_sh, long long g_st, float scale, float drop_p, unsigned long long drop_seed) {
  __shared__ __align__(16) unsigned short Ks[FT_BK * FT_LD];
  __shared__ __align__(16) unsigned short Vs[FT_BK * FT_LD];
  __shared__ __align__(16) unsigned short Qs[FT_BQ * FT_LD];
  __shared__ __align__(16) unsigned short dOs[FT_BQ * FT_LD];
  __shared__ float Ls[FT_BQ], Ds[FT_BQ];
  if (D == 64)
    ft_bwd_dkdv<64>(dK, dV, Q, K, V, dO, lse, Dvec, valid_len, H, T, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st,
                    scale, drop_p, drop_seed, Ks, Vs, Qs, dOs, Ls, Ds);
  else if (D == 32)
    ft_bwd_dkdv<32>(dK, dV, Q, K, V, dO, lse, Dvec, valid_len, H, T, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st,
                    scale, drop_p, drop_seed, Ks, Vs, Qs, dOs, Ls, Ds);
}
MT_KERNEL(mt_flash_attn_bwd_dkdv_tc)

// Each warp owns 16 queries of the block's 64; loops over key tiles of 64.
template <int D>
MT_FI void ft_bwd_dq(float* dQ, const unsigned short* Q, const unsigned short* K, const unsigned short* V,
                     const unsigned short* dO, const float* lse, const float* Dvec, const int* valid_len, int H, int T,
                     long long q_sb, long long q_sh, long long q_st, long long o_sb, long long o_sh, long long o_st,
                     long long g_sb, long long g_sh, long long g_st, float scale, float drop_p,
                     unsigned long long drop_seed, unsigned short* Qs, unsigned short* dOs, unsigned short* Ks,
                     unsigned short* Vs) {
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int g = lane >> 2, t4 = lane & 3, j8 = lane >> 3, q8 = lane & 7;
  int b = blockIdx.z, h = blockIdx.y;
  int i0 = blockIdx.x * FT_BQ;
  long long qoff = (long long)b * q_sb + (long long)h * q_sh;
  long long ooff = (long long)b * o_sb + (long long)h * o_sh;
  long long goff = (long long)b * g_sb + (long long)h * g_sh;
  long long loff = ((long long)b * H + h) * T;
  int nvalid = valid_len ? valid_len[b] : T;
  if (nvalid > T) nvalid = T;
  bool vec = ((((unsigned long long)Q) & 15) == 0) && ((((unsigned long long)K) & 15) == 0) &&
             ((((unsigned long long)V) & 15) == 0) && ((((unsigned long long)dO) & 15) == 0) && q_st % 8 == 0 &&
             q_sh % 8 == 0 && q_sb % 8 == 0 && o_st % 8 == 0 && o_sh % 8 == 0 && o_sb % 8 == 0;
  ft_load<D>(Qs, Q + qoff + (long long)i0 * q_st, q_st, 0, T - i0, vec, tid);
  ft_load<D>(dOs, dO + ooff + (long long)i0 * o_st, o_st, 0, T - i0, vec, tid);
  mt_cp_async_commit();
  float lv[2], Di[2];
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    int i = i0 + warp * 16 + g + hr * 8;
    lv[hr] = i < T ? lse[loff + i] * FA_LOG2E : mt_u2f(0x7f800000u);
    Di[hr] = i < T ? Dvec[loff + i] : 0.0f;
  }
  const float sl2 = scale * FA_LOG2E;
  float dq[D / 8][4];
#pragma unroll
  for (int j = 0; j < D / 8; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) dq[j][e] = 0.0f;
  unsigned qf[D / 16][4], of[D / 16][4];
  for (int k0 = 0; k0 < nvalid; k0 += FT_BK) {
    __syncthreads();
    ft_load<D>(Ks, K + qoff + (long long)k0 * q_st, q_st, 0, nvalid - k0, vec, tid);
    ft_load<D>(Vs, V + qoff + (long long)k0 * q_st, q_st, 0, nvalid - k0, vec, tid);
    mt_cp_async_commit();
    mt_cp_async_wait<0>();
    __syncthreads();
    if (k0 == 0) {
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) {
        mt_ldmatrix_x4(qf[kk], Qs + (warp * 16 + (lane & 15)) * FT_LD + kk * 16 + (lane >> 4) * 8);
        mt_ldmatrix_x4(of[kk], dOs + (warp * 16 + (lane & 15)) * FT_LD + kk * 16 + (lane >> 4) * 8);
      }
    }
    // S = Q K^T, dP = dO V^T (16 queries x 64 keys per warp)
    float s[8][4], dp[8][4];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[j][e] = dp[j][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
#pragma unroll
      for (int jp = 0; jp < 4; jp++) {
        unsigned r[4];
        int n = jp * 16 + ((j8 >> 1) << 3) + q8;
        int k = kk * 16 + ((j8 & 1) << 3);
        mt_ldmatrix_x4(r, Ks + n * FT_LD + k);
        unsigned b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(s[2 * jp], qf[kk], b0, s[2 * jp]);
        mt_mma_bf16_16816(s[2 * jp + 1], qf[kk], b1, s[2 * jp + 1]);
        mt_ldmatrix_x4(r, Vs + n * FT_LD + k);
        unsigned c0[2] = {r[0], r[1]}, c1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(dp[2 * jp], of[kk], c0, dp[2 * jp]);
        mt_mma_bf16_16816(dp[2 * jp + 1], of[kk], c1, dp[2 * jp + 1]);
      }
    }
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        int key = k0 + j * 8 + 2 * t4 + (e & 1);
        int hr = e >> 1;
        float p = key < nvalid ? mt_fast_exp2(s[j][e] * sl2 - lv[hr]) : 0.0f;
        float z = drop_p > 0.0f ? ft_drop(drop_p, drop_seed, (long long)b * H + h, T, i0 + warp * 16 + g + hr * 8, key)
                                : 1.0f;
        s[j][e] = p * (dp[j][e] * z - Di[hr]);  // dS
      }
    // dQ += dS K   (k = the 64 keys)
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
      unsigned da[4];
      ft_acc_to_a(da, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int dd = 0; dd < D / 16; dd++) {
        unsigned r[4];
        int k = kk * 16 + ((j8 & 1) << 3) + q8;
        int n = dd * 16 + ((j8 >> 1) << 3);
        mt_ldmatrix_x4_trans(r, Ks + k * FT_LD + n);
        unsigned b0[2] = {r[0], r[1]}, b1[2] = {r[2], r[3]};
        mt_mma_bf16_16816(dq[2 * dd], da, b0, dq[2 * dd]);
        mt_mma_bf16_16816(dq[2 * dd + 1], da, b1, dq[2 * dd + 1]);
      }
    }
  }
  mt_cp_async_wait<0>();
#pragma unroll
  for (int hr = 0; hr < 2; hr++) {
    int i = i0 + warp * 16 + g + hr * 8;
    if (i >= T) continue;
#pragma unroll
    for (int jj = 0; jj < D / 8; jj++)
#pragma unroll
      for (int e = 0; e < 2; e++) dQ[goff + (long long)i * g_st + jj * 8 + 2 * t4 + e] = dq[jj][hr * 2 + e] * scale;
  }
}

// grid (ceil(T/64), H, B), block (128,1,1), static smem 36 KiB. D must be 32 or 64.
extern "C" __global__ void __launch_bounds__(128) mt_flash_attn_bwd_dq_tc(
    float* dQ, const unsigned short* Q, const unsigned short* K, const unsigned short* V, const unsigned short* dO,
    const float* lse, const float* Dvec, const int* valid_len, int B, int H, int T, int D, long long q_sb, long long q_sh,
    long long q_st, long long o_sb, long long o_sh, long long o_st, long long g_sb, long long g_sh, long long g_st,
    float scale, float drop_p, unsigned long long drop_seed) {
  __shared__ __align__(16) unsigned short Qs[FT_BQ * FT_LD];
  __shared__ __align__(16) unsigned short dOs[FT_BQ * FT_LD];
  __shared__ __align__(16) unsigned short Ks[FT_BK * FT_LD];
  __shared__ __align__(16) unsigned short Vs[FT_BK * FT_LD];
  if (D == 64)
    ft_bwd_dq<64>(dQ, Q, K, V, dO, lse, Dvec, valid_len, H, T, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale,
                  drop_p, drop_seed, Qs, dOs, Ks, Vs);
  else if (D == 32)
    ft_bwd_dq<32>(dQ, Q, K, V, dO, lse, Dvec, valid_len, H, T, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale,
                  drop_p, drop_seed, Qs, dOs, Ks, Vs);
}
MT_KERNEL(mt_flash_attn_bwd_dq_tc)
