// gemm_f32.cu: float32 SIMT GEMM, C[b] = alpha*op(A[b])*op(B[b]) + beta*C[b]. See KERNELS.md.
// Tile 64x64x16, 256 threads, 4x4 outputs per thread (strided by 16 to spread smem banks).
// Every load is bounds-checked, so any M, N, K, leading dimension and alignment works.
#include "mt_common.cuh"

#define GF_BM 64
#define GF_BN 64
#define GF_BK 16

extern "C" __global__ void mt_gemm_f32(const float* A, const float* B, float* C, int M, int N, int K, int transA, int transB,
                                        long long lda, long long ldb, long long ldc, long long strideA, long long strideB,
                                        long long strideC, float alpha, float beta) {
  __shared__ float As[GF_BK][GF_BM + 4];
  __shared__ float Bs[GF_BK][GF_BN + 4];
  int tid = threadIdx.x;
  int tx = tid & 15, ty = tid >> 4;
  long long bz = blockIdx.z;
  const float* Ab = A + bz * strideA;
  const float* Bb = B + bz * strideB;
  float* Cb = C + bz * strideC;
  int m0 = blockIdx.y * GF_BM, n0 = blockIdx.x * GF_BN;
  float acc[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += GF_BK) {
    for (int q = 0; q < 4; q++) {
      int idx = tid + 256 * q;
      int m, k;
      if (!transA) { m = idx >> 4; k = idx & 15; }
      else { k = idx >> 6; m = idx & 63; }
      int gm = m0 + m, gk = k0 + k;
      float v = 0.0f;
      if (gm < M && gk < K) v = transA ? Ab[(long long)gk * lda + gm] : Ab[(long long)gm * lda + gk];
      As[k][m] = v;
      int n;
      if (!transB) { k = idx >> 6; n = idx & 63; }
      else { n = idx >> 4; k = idx & 15; }
      int gn = n0 + n;
      gk = k0 + k;
      float w = 0.0f;
      if (gn < N && gk < K) w = transB ? Bb[(long long)gn * ldb + gk] : Bb[(long long)gk * ldb + gn];
      Bs[k][n] = w;
    }
    __syncthreads();
    for (int k = 0; k < GF_BK; k++) {
      float a[4], b[4];
      for (int i = 0; i < 4; i++) a[i] = As[k][ty + 16 * i];
      for (int j = 0; j < 4; j++) b[j] = Bs[k][tx + 16 * j];
      for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) acc[i][j] = __builtin_fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++) {
    int gm = m0 + ty + 16 * i;
    if (gm >= M) continue;
    for (int j = 0; j < 4; j++) {
      int gn = n0 + tx + 16 * j;
      if (gn >= N) continue;
      float* c = Cb + (long long)gm * ldc + gn;
      float r = alpha * acc[i][j];
      if (beta != 0.0f) r = __builtin_fmaf(beta, *c, r);
      *c = r;
    }
  }
}
MT_KERNEL(mt_gemm_f32)
