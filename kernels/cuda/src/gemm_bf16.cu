// gemm_bf16.cu: bf16 tensor-core GEMM (f32 accumulate): C[b] = alpha*op(A[b])*op(B[b]) + beta*C[b].
// Block tile 128x128x32, 8 warps as 2 (M) x 4 (N), warp tile 64x32, mma.sync m16n8k16 fed by
// ldmatrix (.trans for the transposed operand layouts), a 4-stage cp.async pipeline.
// Shared memory per stage and operand: the tile in its global orientation with 16 bytes of
// row padding (conflict-free ldmatrix): [128][32+8] (K contiguous) or [32][128+8] (M/N contiguous).
// When an operand's pointer/ld/batch stride are not all multiples of 8 elements (16 bytes) its
// tiles are loaded with plain scalar loads instead of cp.async (slower, correct).
#include "ptx_helpers.cuh"

#define GB_BM 128
#define GB_BN 128
#define GB_BK 32
#define GB_STAGES 4
#define GB_LD_K (GB_BK + 8)       // row length of a [128][BK] tile
#define GB_LD_MN (GB_BM + 8)      // row length of a [BK][128] tile
#define GB_TILE_ELEMS (GB_BM * GB_LD_K)  // 5120 >= GB_BK * GB_LD_MN = 4352
#define GB_SMEM_BYTES (GB_STAGES * 2 * GB_TILE_ELEMS * 2)  // 81920

// Loads one 128x32 (k-contiguous, kmajor = 1) or 32x128 (mn-contiguous, kmajor = 0) tile.
// rows/cols: extent of the operand in its stored orientation: stored element (r, c) at p[r*ld + c].
MT_FI void gb_load_tile(unsigned short* s, const unsigned short* p, long long ld, int r0, int c0, int nrows, int ncols,
                        int kmajor, bool vec, int tid) {
  // kmajor: tile is 128 rows x 32 cols (4 chunks per row); else 32 rows x 128 cols (16 chunks per row)
  int cpr = kmajor ? 4 : 16;
  int sld = kmajor ? GB_LD_K : GB_LD_MN;
  #pragma unroll
  for (int q = 0; q < 2; q++) {
    int c = tid + 256 * q;
    int r = c / cpr, cc = (c % cpr) * 8;
    int gr = r0 + r, gc = c0 + cc;
    int nvalid = 0;
    if (gr < nrows) {
      nvalid = ncols - gc;
      nvalid = nvalid < 0 ? 0 : (nvalid > 8 ? 8 : nvalid);
    }
    unsigned short* dst = s + r * sld + cc;
    if (vec) {
      const unsigned short* src = nvalid > 0 ? p + (long long)gr * ld + gc : p;
      mt_cp_async16(dst, src, nvalid * 2);
    } else {
      const unsigned short* src = p + (long long)gr * ld + gc;
      #pragma unroll
      for (int e = 0; e < 8; e++) dst[e] = e < nvalid ? src[e] : (unsigned short)0;
    }
  }
}

MT_FI float gb_gelu(float t) { return 0.5f * t * (1.0f + mt_erff(t * 0.7071067811865476f)); }

MT_FI void gb_gemm(const unsigned short* A, const unsigned short* B, float* C, unsigned short* Cbf16, int M, int N, int K,
                   int transA, int transB, long long lda, long long ldb, long long ldc, long long strideA,
                   long long strideB, long long strideC, float alpha, float beta, const float* bias, int act,
                   float* preact, unsigned short* smem) {
  int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int wm = warp >> 2, wn = warp & 3;
  long long bz = blockIdx.z;
  const unsigned short* Ab = A + bz * strideA;
  const unsigned short* Bb = B + bz * strideB;
  int m0 = blockIdx.y * GB_BM, n0 = blockIdx.x * GB_BN;
  bool vecA = ((((unsigned long long)A) & 15) == 0) && (lda % 8 == 0) && (strideA % 8 == 0);
  bool vecB = ((((unsigned long long)B) & 15) == 0) && (ldb % 8 == 0) && (strideB % 8 == 0);
  // A stored as M x K (transA == 0, k-major tile) or K x M (transA, mn-major tile)
  int a_kmajor = transA ? 0 : 1;
  int b_kmajor = transB ? 1 : 0;  // B stored N x K when transB

  float acc[4][4][4];
  #pragma unroll
  for (int i = 0; i < 4; i++)
    #pragma unroll
    for (int j = 0; j < 4; j++)
      #pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;

  int ktiles = (K + GB_BK - 1) / GB_BK;

  // issue the loads of k-tile kt into stage st
#define GB_ISSUE(kt, st)                                                                                 \
  do {                                                                                                   \
    unsigned short* sa = smem + (st) * 2 * GB_TILE_ELEMS;                                                \
    unsigned short* sb = sa + GB_TILE_ELEMS;                                                             \
    int k0_ = (kt) * GB_BK;                                                                              \
    if (a_kmajor) gb_load_tile(sa, Ab, lda, m0, k0_, M, K, 1, vecA, tid);                                \
    else gb_load_tile(sa, Ab, lda, k0_, m0, K, M, 0, vecA, tid);                                         \
    if (b_kmajor) gb_load_tile(sb, Bb, ldb, n0, k0_, N, K, 1, vecB, tid);                                \
    else gb_load_tile(sb, Bb, ldb, k0_, n0, K, N, 0, vecB, tid);                                         \
  } while (0)

  for (int s = 0; s < GB_STAGES - 1; s++) {
    if (s < ktiles) GB_ISSUE(s, s);
    mt_cp_async_commit();
  }
  for (int kt = 0; kt < ktiles; kt++) {
    mt_cp_async_wait<GB_STAGES - 2>();
    __syncthreads();
    int nk = kt + GB_STAGES - 1;
    if (nk < ktiles) GB_ISSUE(nk, nk % GB_STAGES);
    mt_cp_async_commit();

    const unsigned short* sa = smem + (kt % GB_STAGES) * 2 * GB_TILE_ELEMS;
    const unsigned short* sb = sa + GB_TILE_ELEMS;
    for (int kk = 0; kk < GB_BK / 16; kk++) {
      unsigned af[4][4], bfr[4][2];
      int j8 = lane >> 3, q = lane & 7;
      #pragma unroll
      for (int i = 0; i < 4; i++) {
        int r0 = wm * 64 + i * 16;
        if (a_kmajor) {
          const unsigned short* p = sa + (r0 + (lane & 15)) * GB_LD_K + kk * 16 + (lane >> 4) * 8;
          mt_ldmatrix_x4(af[i], p);
        } else {
          int k = kk * 16 + q + ((j8 >> 1) << 3);
          int m = r0 + ((j8 & 1) << 3);
          mt_ldmatrix_x4_trans(af[i], sa + k * GB_LD_MN + m);
        }
      }
      #pragma unroll
      for (int jp = 0; jp < 2; jp++) {
        int c0 = wn * 32 + jp * 16;
        unsigned r[4];
        if (b_kmajor) {
          int n = c0 + ((j8 >> 1) << 3) + q;
          int k = kk * 16 + ((j8 & 1) << 3);
          mt_ldmatrix_x4(r, sb + n * GB_LD_K + k);
        } else {
          int k = kk * 16 + ((j8 & 1) << 3) + q;
          int n = c0 + ((j8 >> 1) << 3);
          mt_ldmatrix_x4_trans(r, sb + k * GB_LD_MN + n);
        }
        bfr[2 * jp][0] = r[0];
        bfr[2 * jp][1] = r[1];
        bfr[2 * jp + 1][0] = r[2];
        bfr[2 * jp + 1][1] = r[3];
      }
      #pragma unroll
      for (int i = 0; i < 4; i++)
        #pragma unroll
        for (int j = 0; j < 4; j++) mt_mma_bf16_16816(acc[i][j], af[i], bfr[j], acc[i][j]);
    }
  }
  mt_cp_async_wait<0>();
#undef GB_ISSUE

  // epilogue
  int g = lane >> 2, t = lane & 3;
  float* Cb = C ? C + bz * strideC : (float*)0;
  unsigned short* Db = Cbf16 ? Cbf16 + bz * strideC : (unsigned short*)0;
  #pragma unroll
  for (int i = 0; i < 4; i++) {
    #pragma unroll
    for (int j = 0; j < 4; j++) {
      #pragma unroll
      for (int e = 0; e < 4; e++) {
        int m = m0 + wm * 64 + i * 16 + g + ((e >> 1) << 3);
        int n = n0 + wn * 32 + j * 8 + 2 * t + (e & 1);
        if (m >= M || n >= N) continue;
        long long off = (long long)m * ldc + n;
        float r = alpha * acc[i][j][e];
        if (beta != 0.0f) r = __builtin_fmaf(beta, Cb[off], r);
        if (bias) r += bias[n];
        if (preact) preact[bz * strideC + off] = r;
        if (act == 1) r = gb_gelu(r);
        if (Cb) Cb[off] = r;
        if (Db) Db[off] = mt_f2bf(r);
      }
    }
  }
}

extern "C" __global__ void __launch_bounds__(256) mt_gemm_bf16(
    const unsigned short* A, const unsigned short* B, float* C, unsigned short* Cbf16, int M, int N, int K, int transA,
    int transB, long long lda, long long ldb, long long ldc, long long strideA, long long strideB, long long strideC,
    float alpha, float beta) {
  MT_DYN_SMEM(unsigned short, smem);
  gb_gemm(A, B, C, Cbf16, M, N, K, transA, transB, lda, ldb, ldc, strideA, strideB, strideC, alpha, beta, (const float*)0, 0,
          (float*)0, smem);
}
MT_KERNEL(mt_gemm_bf16)

// mt_gemm_bf16 with a fused epilogue: r = alpha*acc + beta*C (+ bias[n]); preact = r; r = act(r).
extern "C" __global__ void __launch_bounds__(256) mt_gemm_bf16_ex(
    const unsigned short* A, const unsigned short* B, float* C, unsigned short* Cbf16, int M, int N, int K, int transA,
    int transB, long long lda, long long ldb, long long ldc, long long strideA, long long strideB, long long strideC,
    float alpha, float beta, const float* bias, int act, float* preact) {
  MT_DYN_SMEM(unsigned short, smem);
  gb_gemm(A, B, C, Cbf16, M, N, K, transA, transB, lda, ldb, ldc, strideA, strideB, strideC, alpha, beta, bias, act, preact,
          smem);
}
MT_KERNEL(mt_gemm_bf16_ex)
