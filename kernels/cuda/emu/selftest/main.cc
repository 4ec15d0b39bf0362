// Emulator self-tests of the kernels against plain C++ references. Run via build_and_run.sh.
#include "harness.h"
#include <algorithm>
#include <functional>

static const D3 B256 = {256, 1, 1};
static D3 g1(long long n) { long long g = (n + 255) / 256; if (g > 4096) g = 4096; if (g < 1) g = 1; return {(unsigned)g, 1, 1}; }

static unsigned long long sm64(unsigned long long x) {
  x += 0x9e3779b97f4a7c15ULL; x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL; x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL; return x ^ (x >> 31);
}
static double drop_z(float p, unsigned long long seed, unsigned long long idx) {
  if (p <= 0) return 1;
  float u = (float)(sm64(seed ^ (idx * 0x9e3779b97f4a7c15ULL)) >> 40) * (1.0f / 16777216.0f);
  return u < p ? 0.0 : (double)(1.0f / (1.0f - p));
}

static void test_elementwise() {
  for (long long n : {1LL, 7LL, 1027LL, 100000LL}) {
    float* x = dalloc<float>(n); float* y = dalloc<float>(n);
    LAUNCH(fn("elementwise", "mt_fill_f32"), g1(n), B256, 0, x, 1.5f, n);
    std::vector<double> want(n, 1.5);
    close_enough("fill", x, want, 0, 0);
    for (long long i = 0; i < n; i++) { x[i] = frand(); y[i] = frand(); want[i] = (double)std::fma(0.25f, x[i], y[i]); }
    LAUNCH(fn("elementwise", "mt_axpy_f32"), D3{3, 1, 1}, D3{64, 1, 1}, 0, y, (const float*)x, 0.25f, n);
    close_enough("axpy (grid 3 x 64)", y, want, 0, 0);
    unsigned short* h = dalloc<unsigned short>(n);
    x[0] = NAN; if (n > 1) x[1] = INFINITY; if (n > 2) x[2] = 1.00390625f + 1.0f / 512;  // ties
    LAUNCH(fn("elementwise", "mt_f32_to_bf16"), g1(n), B256, 0, h, (const float*)x, n);
    int bad = 0;
    for (long long i = 0; i < n; i++) if (h[i] != f2bf(x[i])) bad++;
    if (!(std::isnan(bf2f(h[0])))) bad++;
    if (bad) { fprintf(stderr, "FAIL f32_to_bf16 %d\n", bad); g_fail++; } else fprintf(stderr, "ok   f32_to_bf16 n=%lld\n", n);
    LAUNCH(fn("elementwise", "mt_bf16_to_f32"), g1(n), B256, 0, y, (const unsigned short*)h, n);
    for (long long i = 0; i < n; i++) want[i] = bf2f(h[i]);
    if (n > 2) { y[0] = 0; want[0] = 0; }
    if (!std::isnan(bf2f(h[0]))) g_fail++;
    dfree(h); dfree(x); dfree(y);
  }
  // Philox known-answer: ctr 0, key 0 -> x = 0x6627e8d5 -> u = 0x6627e8 / 2^24 = 0.39904...
  float* x = dalloc<float>(1); float* y = dalloc<float>(1); unsigned char* m = dalloc<unsigned char>(1);
  x[0] = 2;
  LAUNCH(fn("elementwise", "mt_dropout_fwd_f32"), D3{1, 1, 1}, D3{32, 1, 1}, 0, y, m, (const float*)x, 1LL, 0.399f, 0ULL, 0ULL);
  bool ok1 = m[0] == 1 && y[0] == 2 / (1 - 0.399f);
  LAUNCH(fn("elementwise", "mt_dropout_fwd_f32"), D3{1, 1, 1}, D3{32, 1, 1}, 0, y, m, (const float*)x, 1LL, 0.4f, 0ULL, 0ULL);
  bool ok2 = m[0] == 0 && y[0] == 0;
  if (!(ok1 && ok2)) { fprintf(stderr, "FAIL philox known answer\n"); g_fail++; } else fprintf(stderr, "ok   philox known answer\n");
  // dropout statistics and bwd consistency
  long long n = 100003;
  float* a = dalloc<float>(n); float* b = dalloc<float>(n); float* c = dalloc<float>(n); unsigned char* mm = dalloc<unsigned char>(n);
  for (long long i = 0; i < n; i++) a[i] = 1;
  LAUNCH(fn("elementwise", "mt_dropout_fwd_f32"), g1(n), B256, 0, b, mm, (const float*)a, n, 0.1f, 42ULL, 7ULL);
  LAUNCH(fn("elementwise", "mt_dropout_bwd_f32"), D3{5, 1, 1}, B256, 0, c, (const float*)a, n, 0.1f, 42ULL, 7ULL);
  long long kept = 0, bad = 0;
  for (long long i = 0; i < n; i++) { kept += mm[i]; if (b[i] != c[i] || (mm[i] ? b[i] == 0 : b[i] != 0)) bad++; }
  double frac = (double)kept / n;
  if (bad || std::fabs(frac - 0.9) > 0.005) { fprintf(stderr, "FAIL dropout bad=%lld keep=%g\n", bad, frac); g_fail++; }
  else fprintf(stderr, "ok   dropout fwd/bwd keep fraction %.4f\n", frac);
  LAUNCH(fn("elementwise", "mt_dropout_sm64_fwd_f32"), g1(n), B256, 0, b, mm, (const float*)a, n, 0.1f, 42ULL, 7ULL);
  LAUNCH(fn("elementwise", "mt_dropout_sm64_bwd_f32"), D3{5, 1, 1}, B256, 0, c, (const float*)a, n, 0.1f, 42ULL, 7ULL);
  bad = 0; kept = 0;
  for (long long i = 0; i < n; i++) {
    double z = drop_z(0.1f, 42, 7 + i);
    kept += mm[i];
    if (b[i] != (float)z || c[i] != (float)z || mm[i] != (z != 0)) bad++;
  }
  if (bad) { fprintf(stderr, "FAIL sm64 dropout bad=%lld\n", bad); g_fail++; } else fprintf(stderr, "ok   sm64 dropout matches kernels.DropoutMask formula (keep %.4f)\n", (double)kept / n);
}


static void test_reduce() {
  for (long long n : {1LL, 7LL, 1027LL, 300001LL}) {
    float* x = dalloc<float>(n); float* part = dalloc<float>(1024); float* out = dalloc<float>(1);
    double s = 0, ss = 0, mx = 0;
    for (long long i = 0; i < n; i++) { x[i] = frand(); s += x[i]; ss += (double)x[i] * x[i]; mx = std::max(mx, (double)std::fabs(x[i])); }
    int G = (int)std::min<long long>(1024, (n + 2047) / 2048);
    double want[3] = {s, ss, mx};
    for (int op = 0; op < 3; op++) {
      LAUNCH(fn("reduce", "mt_reduce_partial_f32"), D3{(unsigned)G, 1, 1}, B256, 0, part, (const float*)x, n, op);
      LAUNCH(fn("reduce", "mt_reduce_final_f32"), D3{1, 1, 1}, B256, 0, out, (const float*)part, G, op == 2 ? 1 : 0);
      char nm[64]; snprintf(nm, sizeof nm, "reduce op %d n=%lld", op, n);
      close_enough(nm, out, &want[op], 1, 1e-4 * std::sqrt((double)n), 1e-5);
    }
    dfree(x); dfree(part); dfree(out);
  }
  // colsum
  for (int rows : {1, 7, 1027}) for (int cols : {1, 33, 768}) {
    float* x = dalloc<float>((size_t)rows * cols); float* out = dalloc<float>(cols);
    std::vector<double> want(cols, 0);
    for (int c = 0; c < cols; c++) { out[c] = 1; want[c] = 1; }
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) { float v = frand(); x[(size_t)r * cols + c] = v; want[c] += v; }
    LAUNCH(fn("reduce", "mt_colsum_f32"), D3{(unsigned)((cols + 31) / 32), 1, 1}, D3{32, 8, 1}, 0, out, (const float*)x, rows, cols, 1);
    char nm[64]; snprintf(nm, sizeof nm, "colsum %dx%d acc", rows, cols);
    close_enough(nm, out, want, 1e-4, 1e-4);
    dfree(x); dfree(out);
  }
  // multi-tensor sumsq + adamw
  std::vector<long long> sizes = {1, 7, 1027, 5000};
  int nt = (int)sizes.size();
  unsigned long long* table = dalloc<unsigned long long>(8 * nt);
  std::vector<std::vector<float>> P, Gv, Mv, V;
  double ss = 0;
  for (int t = 0; t < nt; t++) {
    long long n = sizes[t];
    float *p = dalloc<float>(n), *g = dalloc<float>(n), *m = dalloc<float>(n), *v = dalloc<float>(n);
    unsigned short* pb = t % 2 ? dalloc<unsigned short>(n) : nullptr;
    for (long long i = 0; i < n; i++) { p[i] = frand(); g[i] = frand(); m[i] = frand() * 0.1f; v[i] = frand(0, 0.01f); ss += (double)g[i] * g[i]; }
    P.emplace_back(p, p + n); Gv.emplace_back(g, g + n); Mv.emplace_back(m, m + n); V.emplace_back(v, v + n);
    unsigned long long row[8] = {(uintptr_t)p, (uintptr_t)g, (uintptr_t)m, (uintptr_t)v, (uintptr_t)pb, (unsigned long long)n, (unsigned long long)(t % 2 == 0), 0};
    memcpy(table + 8 * t, row, sizeof row);
  }
  int G = 3;
  float* part = dalloc<float>(G * nt); float* norm = dalloc<float>(1);
  LAUNCH(fn("reduce", "mt_multi_sumsq_partial_f32"), D3{(unsigned)G, (unsigned)nt, 1}, B256, 0, part, (const unsigned long long*)table, nt, 1);
  LAUNCH(fn("reduce", "mt_reduce_final_f32"), D3{1, 1, 1}, B256, 0, norm, (const float*)part, G * nt, 2);
  double wn = std::sqrt(ss);
  close_enough("multi-tensor grad norm", norm, &wn, 1, 1e-5, 1e-5);
  double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01; int step = 3; float max_norm = 1.0f;
  float w1 = (float)(1 - b1), fb2 = (float)b2, w2 = (float)(1 - b2), feps = (float)eps, decay = (float)(1 - lr * wd);
  float neg_step = -(float)(lr / (1 - std::pow(b1, step))), bc2s = (float)std::sqrt(1 - std::pow(b2, step));
  LAUNCH(fn("reduce", "mt_adamw_multi_f32"), D3{2, (unsigned)nt, 1}, B256, 0, (const unsigned long long*)table, nt, w1, fb2, w2, feps,
         decay, neg_step, bc2s, 1.0f, (const float*)norm, max_norm);
  float clip = std::min(1.0f, max_norm / (norm[0] + 1e-6f));
  for (int t = 0; t < nt; t++) {
    long long n = sizes[t];
    std::vector<double> wp(n), wm(n), wv(n);
    for (long long i = 0; i < n; i++) {
      float gi = Gv[t][i] * clip, pi = P[t][i];
      if (t % 2 == 0) pi *= decay;
      float mi = Mv[t][i] + w1 * (gi - Mv[t][i]);
      float vi = V[t][i] * fb2 + w2 * gi * gi;
      float den = std::sqrt(vi) / bc2s + feps;
      wp[i] = pi + (neg_step * mi) / den; wm[i] = mi; wv[i] = vi;
    }
    float* p = (float*)table[8 * t]; float* m = (float*)table[8 * t + 2]; float* v = (float*)table[8 * t + 3];
    close_enough("adamw p", p, wp, 1e-7, 1e-5); close_enough("adamw m", m, wm, 1e-7, 1e-5); close_enough("adamw v", v, wv, 1e-9, 1e-5);
    unsigned short* pb = (unsigned short*)table[8 * t + 4];
    if (pb) { int bad = 0; for (long long i = 0; i < n; i++) if (pb[i] != f2bf(p[i])) bad++; if (bad) { g_fail++; fprintf(stderr, "FAIL adamw bf16 copy\n"); } }
  }
}

static double erf_gelu(double t) { return 0.5 * t * (1 + std::erf(t / std::sqrt(2.0))); }
static double erf_gelu_grad(double t) { return 0.5 * (1 + std::erf(t / std::sqrt(2.0))) + t * std::exp(-0.5 * t * t) / std::sqrt(2 * M_PI); }

static void test_nn() {
  // softmax cross-entropy
  for (int n : {1, 7, 33}) for (int v : {1, 7, 1027, 30522}) {
    float* lg = dalloc<float>((size_t)n * v); int* tg = dalloc<int>(n); float* loss = dalloc<float>(n); float* d = dalloc<float>((size_t)n * v);
    for (size_t i = 0; i < (size_t)n * v; i++) lg[i] = frand(-8, 8);
    for (int i = 0; i < n; i++) tg[i] = (i % 3 == 2) ? -100 : (int)(g_rng() % v);
    LAUNCH(fn("nn", "mt_softmax_xent_f32"), D3{(unsigned)n, 1, 1}, B256, 0, loss, d, (const float*)lg, (const int*)tg, n, v, -100, 0.5f);
    std::vector<double> wl(n), wd((size_t)n * v);
    for (int i = 0; i < n; i++) {
      double mx = -1e30, s = 0; for (int j = 0; j < v; j++) mx = std::max(mx, (double)lg[(size_t)i * v + j]);
      for (int j = 0; j < v; j++) s += std::exp(lg[(size_t)i * v + j] - mx);
      double lse = mx + std::log(s);
      bool ig = tg[i] == -100;
      wl[i] = ig ? 0 : lse - lg[(size_t)i * v + tg[i]];
      for (int j = 0; j < v; j++) wd[(size_t)i * v + j] = ig ? 0 : (std::exp(lg[(size_t)i * v + j] - lse) - (j == tg[i])) * 0.5;
    }
    char nm[64]; snprintf(nm, sizeof nm, "xent loss n=%d v=%d", n, v); close_enough(nm, loss, wl, 1e-5, 1e-5);
    snprintf(nm, sizeof nm, "xent grad n=%d v=%d", n, v); close_enough(nm, d, wd, 1e-6, 1e-4);
    dfree(lg); dfree(tg); dfree(loss); dfree(d);
  }
  // bias gelu
  for (int rows : {1, 7, 129}) for (int cols : {1, 7, 3072}) {
    size_t n = (size_t)rows * cols;
    float *x = dalloc<float>(n), *b = dalloc<float>(cols), *h = dalloc<float>(n), *y = dalloc<float>(n), *dy = dalloc<float>(n), *dx = dalloc<float>(n);
    unsigned short* yb = dalloc<unsigned short>(n);
    for (size_t i = 0; i < n; i++) { x[i] = frand(-5, 5); dy[i] = frand(); dx[i] = 1; }
    for (int c = 0; c < cols; c++) b[c] = frand();
    LAUNCH(fn("nn", "mt_bias_gelu_fwd_f32"), g1(n), B256, 0, h, y, yb, (const float*)x, (const float*)b, rows, cols);
    LAUNCH(fn("nn", "mt_bias_gelu_bwd_f32"), g1(n), B256, 0, dx, (unsigned short*)nullptr, (const float*)dy, (const float*)h, rows, cols, 1);
    std::vector<double> wh(n), wy(n), wdx(n);
    for (size_t i = 0; i < n; i++) { double t = (double)x[i] + b[i % cols]; wh[i] = (float)(x[i] + b[i % cols]); wy[i] = erf_gelu(wh[i]); wdx[i] = 1 + dy[i] * erf_gelu_grad(wh[i]); }
    char nm[64]; snprintf(nm, sizeof nm, "bias_gelu fwd %dx%d", rows, cols);
    close_enough(nm, y, wy, 2e-6, 2e-5); close_enough("bias_gelu h", h, wh, 0, 0);
    snprintf(nm, sizeof nm, "bias_gelu bwd %dx%d", rows, cols); close_enough(nm, dx, wdx, 2e-6, 2e-5);
    dfree(x); dfree(b); dfree(h); dfree(y); dfree(dy); dfree(dx); dfree(yb);
  }
  // layernorm fwd/bwd
  for (int rows : {1, 7, 130}) for (int cols : {1, 7, 768, 1027}) {
    size_t n = (size_t)rows * cols;
    float *x = dalloc<float>(n), *r = dalloc<float>(n), *g = dalloc<float>(cols), *be = dalloc<float>(cols), *y = dalloc<float>(n), *s = dalloc<float>(n);
    float *mean = dalloc<float>(rows), *rstd = dalloc<float>(rows), *dy = dalloc<float>(n), *dx = dalloc<float>(n);
    for (size_t i = 0; i < n; i++) { x[i] = frand(-2, 3); r[i] = frand(); dy[i] = frand(); }
    for (int c = 0; c < cols; c++) { g[c] = frand(0.5, 1.5); be[c] = frand(); }
    float eps = 1e-5f;
    LAUNCH(fn("nn", "mt_layernorm_fwd_f32"), D3{(unsigned)rows, 1, 1}, B256, 0, y, (unsigned short*)nullptr, s, mean, rstd, (const float*)x, (const float*)r,
           (const float*)g, (const float*)be, rows, cols, eps);
    LAUNCH(fn("nn", "mt_layernorm_bwd_f32"), D3{(unsigned)rows, 1, 1}, B256, 0, dx, (unsigned short*)nullptr, (const float*)dy, (const float*)s,
           (const float*)mean, (const float*)rstd, (const float*)g, rows, cols, 0);
    int rpp = 16, P = (rows + rpp - 1) / rpp;
    float* part = dalloc<float>(2 * (size_t)P * cols); float* dg = dalloc<float>(cols); float* db = dalloc<float>(cols);
    LAUNCH(fn("nn", "mt_layernorm_bwd_params_partial_f32"), D3{(unsigned)((cols + 31) / 32), (unsigned)P, 1}, D3{32, 8, 1}, 0, part, (const float*)dy,
           (const float*)s, (const float*)mean, (const float*)rstd, rows, cols, rpp);
    LAUNCH(fn("reduce", "mt_colsum_f32"), D3{(unsigned)((cols + 31) / 32), 1, 1}, D3{32, 8, 1}, 0, dg, (const float*)part, P, cols, 0);
    LAUNCH(fn("reduce", "mt_colsum_f32"), D3{(unsigned)((cols + 31) / 32), 1, 1}, D3{32, 8, 1}, 0, db, (const float*)(part + (size_t)P * cols), P, cols, 0);
    std::vector<double> wy(n), wdx(n), wdg(cols, 0), wdb(cols, 0);
    for (int i = 0; i < rows; i++) {
      double mu = 0, var = 0;
      for (int c = 0; c < cols; c++) mu += (double)x[(size_t)i * cols + c] + r[(size_t)i * cols + c];
      mu /= cols;
      for (int c = 0; c < cols; c++) { double d = (double)x[(size_t)i * cols + c] + r[(size_t)i * cols + c] - mu; var += d * d; }
      var /= cols;
      double rs = 1 / std::sqrt(var + eps), sg = 0, sgx = 0;
      for (int c = 0; c < cols; c++) {
        size_t k = (size_t)i * cols + c; double xh = ((double)x[k] + r[k] - mu) * rs;
        wy[k] = xh * g[c] + be[c]; double gg = dy[k] * g[c]; sg += gg; sgx += gg * xh; wdg[c] += dy[k] * xh; wdb[c] += dy[k];
      }
      for (int c = 0; c < cols; c++) { size_t k = (size_t)i * cols + c; double xh = ((double)x[k] + r[k] - mu) * rs; wdx[k] = rs * (dy[k] * g[c] - sg / cols - xh * sgx / cols); }
    }
    char nm[80];
    snprintf(nm, sizeof nm, "layernorm fwd %dx%d", rows, cols); close_enough(nm, y, wy, 1e-4, 1e-4);
    double tol = cols == 1 ? 1e-2 : 1e-4;  // cols == 1: var = 0, everything is eps-dominated
    snprintf(nm, sizeof nm, "layernorm bwd dx %dx%d", rows, cols); close_enough(nm, dx, wdx, tol, 1e-3);
    snprintf(nm, sizeof nm, "layernorm dgamma %dx%d", rows, cols); close_enough(nm, dg, wdg, 1e-3, 1e-3);
    snprintf(nm, sizeof nm, "layernorm dbeta %dx%d", rows, cols); close_enough(nm, db, wdb, 1e-4, 1e-4);
    dfree(x); dfree(r); dfree(g); dfree(be); dfree(y); dfree(s); dfree(mean); dfree(rstd); dfree(dy); dfree(dx); dfree(part); dfree(dg); dfree(db);
  }
  // embeddings
  {
    int V = 50, dim = 70, n = 300;
    float* tab = dalloc<float>(V * dim); int* ids = dalloc<int>(n); int* order = dalloc<int>(n); float* y = dalloc<float>(n * dim);
    float* dy = dalloc<float>(n * dim); float* dt = dalloc<float>(V * dim);
    for (int i = 0; i < V * dim; i++) { tab[i] = frand(); dt[i] = 0.5f; }
    for (int i = 0; i < n; i++) ids[i] = (i % 17 == 0) ? -1 : (int)(g_rng() % V);
    for (int i = 0; i < n * dim; i++) { dy[i] = frand(); y[i] = 1; }
    std::vector<int> ord(n); for (int i = 0; i < n; i++) ord[i] = i;
    std::stable_sort(ord.begin(), ord.end(), [&](int a, int b) { return ids[a] < ids[b]; });
    memcpy(order, ord.data(), n * 4);
    LAUNCH(fn("nn", "mt_embedding_fwd_f32"), D3{(unsigned)n, 1, 1}, D3{128, 1, 1}, 0, y, (const float*)tab, (const int*)ids, n, dim, 1);
    LAUNCH(fn("nn", "mt_embedding_bwd_f32"), D3{(unsigned)n, 1, 1}, D3{128, 1, 1}, 0, dt, (const float*)dy, (const int*)ids, (const int*)order, n, dim);
    std::vector<double> wy(n * dim), wdt(V * dim, 0.5);
    for (int i = 0; i < n; i++) for (int j = 0; j < dim; j++) {
      wy[i * dim + j] = 1 + (ids[i] < 0 ? 0 : tab[ids[i] * dim + j]);
      if (ids[i] >= 0) wdt[ids[i] * dim + j] += dy[i * dim + j];
    }
    close_enough("embedding fwd", y, wy, 1e-6, 1e-6); close_enough("embedding bwd", dt, wdt, 1e-5, 1e-5);
  }
}

static void ref_gemm(int M, int N, int K, int ta, int tb, const float* A, const float* B, long long lda, long long ldb, double alpha,
                     double beta, const float* C0, long long ldc, double* out);
static void test_gemm_ex() {
  for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) {
    int M = 77, N = 200, K = 72;
    long long lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
    std::vector<float> hA((size_t)M * K), hB((size_t)K * N);
    for (auto& v : hA) v = bf2f(f2bf(frand()));
    for (auto& v : hB) v = bf2f(f2bf(frand()));
    unsigned short* A = dalloc<unsigned short>(hA.size()); unsigned short* Bm = dalloc<unsigned short>(hB.size());
    for (size_t i = 0; i < hA.size(); i++) A[i] = f2bf(hA[i]);
    for (size_t i = 0; i < hB.size(); i++) Bm[i] = f2bf(hB[i]);
    float* bias = dalloc<float>(N); for (int n = 0; n < N; n++) bias[n] = frand();
    float* C = dalloc<float>((size_t)M * N); float* pre = dalloc<float>((size_t)M * N); unsigned short* Cb = dalloc<unsigned short>((size_t)M * N);
    std::vector<double> r((size_t)M * N), wpre((size_t)M * N), wy((size_t)M * N);
    ref_gemm(M, N, K, ta, tb, hA.data(), hB.data(), lda, ldb, 1.0, 0.0, nullptr, ldc, r.data());
    for (int m = 0; m < M; m++) for (int n = 0; n < N; n++) { double t = r[(size_t)m * N + n] + bias[n]; wpre[(size_t)m * N + n] = t; wy[(size_t)m * N + n] = erf_gelu(t); }
    CUfunction f = fn("gemm_bf16", "mt_gemm_bf16_ex");
    CK(cuFuncSetAttribute(f, 8, 81920));
    LAUNCH(f, D3{(unsigned)((N + 127) / 128), (unsigned)((M + 127) / 128), 1}, B256, 81920, (const unsigned short*)A, (const unsigned short*)Bm, C, Cb, M, N, K, ta, tb,
           lda, ldb, ldc, 0LL, 0LL, 0LL, 1.0f, 0.0f, (const float*)bias, 1, pre);
    char nm[80]; snprintf(nm, sizeof nm, "gemm_bf16_ex bias+gelu tA=%d tB=%d", ta, tb);
    close_enough(nm, C, wy, 1e-4, 1e-4); close_enough("gemm_bf16_ex preact", pre, wpre, 1e-4, 1e-4);
    std::vector<float> cb((size_t)M * N); for (size_t i = 0; i < cb.size(); i++) cb[i] = bf2f(Cb[i]);
    close_enough("gemm_bf16_ex bf16 out", cb.data(), wy, 1e-2, 1e-2);
    dfree(A); dfree(Bm); dfree(bias); dfree(C); dfree(pre); dfree(Cb);
  }
  // launch with too much dynamic smem for the attribute must fail like the driver
  CUfunction f = fn("gemm_bf16", "mt_gemm_bf16");
  CK(cuFuncSetAttribute(f, 8, 49152));
  float* C = dalloc<float>(1);
  CUresult r = launch_r(f, D3{1, 1, 1}, B256, 81920, (const unsigned short*)nullptr, (const unsigned short*)nullptr, C, (unsigned short*)nullptr, 0, 0, 0, 0, 0,
                        1LL, 1LL, 1LL, 0LL, 0LL, 0LL, 1.0f, 0.0f);
  if (r != 1) { fprintf(stderr, "FAIL smem attribute check: got %d\n", r); g_fail++; } else fprintf(stderr, "ok   launch above MAX_DYNAMIC_SHARED_SIZE_BYTES -> CUDA_ERROR_INVALID_VALUE\n");
  CK(cuFuncSetAttribute(f, 8, 81920));
  // bias add
  int rows = 7, cols = 1027;
  float* x = dalloc<float>(rows * cols); float* y = dalloc<float>(rows * cols); float* b = dalloc<float>(cols);
  std::vector<double> w(rows * cols);
  for (int c = 0; c < cols; c++) b[c] = frand();
  for (int i = 0; i < rows * cols; i++) { x[i] = frand(); w[i] = (double)(x[i] + b[i % cols]); }
  LAUNCH(fn("nn", "mt_bias_add_f32"), D3{3, 1, 1}, B256, 0, y, (unsigned short*)nullptr, (const float*)x, (const float*)b, rows, cols);
  close_enough("bias_add", y, w, 0, 0);
}

static void ref_gemm(int M, int N, int K, int ta, int tb, const float* A, const float* B, long long lda, long long ldb, double alpha,
                     double beta, const float* C0, long long ldc, double* out) {
  for (int m = 0; m < M; m++) for (int n = 0; n < N; n++) {
    double s = 0;
    for (int k = 0; k < K; k++) s += (double)(ta ? A[(long long)k * lda + m] : A[(long long)m * lda + k]) * (tb ? B[(long long)n * ldb + k] : B[(long long)k * ldb + n]);
    out[(long long)m * ldc + n] = alpha * s + (beta != 0 ? beta * C0[(long long)m * ldc + n] : 0);
  }
}

static void test_gemm(bool bf16) {
  struct Sh { int M, N, K, batch; };
  std::vector<Sh> shapes = {{3, 5, 0, 1}, {1, 1, 1, 1}, {7, 5, 3, 2}, {64, 64, 16, 1}, {65, 130, 33, 3}, {128, 128, 64, 1}, {200, 72, 96, 2}, {129, 257, 70, 1}};
  if (!bf16) shapes.push_back({1027, 7, 1027, 1});
  else shapes.push_back({300, 136, 264, 1});
  for (auto sh : shapes) for (int ta = 0; ta < 2; ta++) for (int tb = 0; tb < 2; tb++) for (int pad = 0; pad < 2; pad++) {
    int M = sh.M, N = sh.N, K = sh.K, batch = sh.batch;
    long long lda = (ta ? M : K) + (pad ? 3 : 0), ldb = (tb ? K : N) + (pad ? 5 : 0), ldc = N + (pad ? 1 : 0);
    if (bf16 && !pad) { lda = (lda + 7) / 8 * 8; ldb = (ldb + 7) / 8 * 8; }
    long long sA = lda * (ta ? K : M) + (pad ? 8 : 0), sB = ldb * (tb ? N : K) + (pad ? 16 : 0), sC = ldc * M;
    std::vector<float> hA(sA * batch), hB(sB * batch);
    for (auto& v : hA) v = bf16 ? bf2f(f2bf(frand())) : frand();
    for (auto& v : hB) v = bf16 ? bf2f(f2bf(frand())) : frand();
    float* C = dalloc<float>(sC * batch);
    std::vector<double> want(sC * batch);
    for (long long i = 0; i < sC * batch; i++) C[i] = frand();
    float alpha = 0.75f, beta = (ta + tb) % 2 ? 0.5f : 0.0f;
    if (beta == 0) for (long long i = 0; i < sC * batch; i++) C[i] = NAN;  // beta == 0 must not read C
    for (int b = 0; b < batch; b++) ref_gemm(M, N, K, ta, tb, &hA[b * sA], &hB[b * sB], lda, ldb, alpha, beta, C + b * sC, ldc, &want[b * sC]);
    // entries between rows (ldc padding) keep their value
    for (int b = 0; b < batch; b++) for (int m = 0; m < M; m++) for (long long n = N; n < ldc; n++) want[b * sC + m * ldc + n] = C[b * sC + m * ldc + n];
    D3 grid;
    if (!bf16) {
      float* A = dalloc<float>(sA * batch); float* B = dalloc<float>(sB * batch);
      memcpy(A, hA.data(), hA.size() * 4); memcpy(B, hB.data(), hB.size() * 4);
      grid = {(unsigned)((N + 63) / 64), (unsigned)((M + 63) / 64), (unsigned)batch};
      LAUNCH(fn("gemm_f32", "mt_gemm_f32"), grid, B256, 0, (const float*)A, (const float*)B, C, M, N, K, ta, tb, lda, ldb, ldc, sA, sB, sC, alpha, beta);
      dfree(A); dfree(B);
    } else {
      unsigned short* A = dalloc<unsigned short>(sA * batch); unsigned short* B = dalloc<unsigned short>(sB * batch);
      for (size_t i = 0; i < hA.size(); i++) A[i] = f2bf(hA[i]);
      for (size_t i = 0; i < hB.size(); i++) B[i] = f2bf(hB[i]);
      grid = {(unsigned)((N + 127) / 128), (unsigned)((M + 127) / 128), (unsigned)batch};
      CUfunction f = fn("gemm_bf16", "mt_gemm_bf16");
      CK(cuFuncSetAttribute(f, 8, 81920));
      LAUNCH(f, grid, B256, 81920, (const unsigned short*)A, (const unsigned short*)B, C, (unsigned short*)nullptr, M, N, K, ta, tb, lda, ldb, ldc, sA, sB, sC, alpha, beta);
      dfree(A); dfree(B);
    }
    char nm[128];
    snprintf(nm, sizeof nm, "%s M=%d N=%d K=%d batch=%d tA=%d tB=%d pad=%d beta=%g", bf16 ? "gemm_bf16" : "gemm_f32", M, N, K, batch, ta, tb, pad, beta);
    // compare only the C entries (the padding columns were set to their old values above)
    close_enough(nm, C, want, 1e-4 * std::sqrt((double)K + 1), 1e-4);
    dfree(C);
  }
}

static void test_attention() {
  struct Cfg { int B, H, T, D; bool pad; bool fused; };
  for (Cfg cf : {Cfg{1, 1, 1, 64, false, false}, Cfg{2, 3, 7, 64, true, true}, Cfg{1, 2, 65, 32, false, false}, Cfg{2, 2, 130, 64, true, true}}) {
    int B = cf.B, H = cf.H, T = cf.T, D = cf.D;
    // Q/K/V inside one [B, T, 3, H, D] buffer when fused, else [B, H, T, D] each; O, dO [B, T, H, D]; grads [B, H, T, D]
    long long q_sb, q_sh, q_st;
    if (cf.fused) { q_st = 3LL * H * D; q_sh = D; q_sb = T * q_st; } else { q_st = D; q_sh = (long long)T * D; q_sb = H * q_sh; }
    long long o_st = (long long)H * D, o_sh = D, o_sb = T * o_st;
    long long g_st = D, g_sh = (long long)T * D, g_sb = H * g_sh;
    size_t nqkv = (size_t)B * T * 3 * H * D;
    unsigned short* qkv = dalloc<unsigned short>(nqkv);
    for (size_t e = 0; e < nqkv; e++) qkv[e] = f2bf(frand(-2, 2));
    unsigned short *Q = qkv, *K, *V;
    if (cf.fused) { K = qkv + (size_t)H * D; V = qkv + 2 * (size_t)H * D; } else { K = qkv + (size_t)B * H * T * D; V = K + (size_t)B * H * T * D; }
    size_t no = (size_t)B * T * H * D;
    unsigned short* O = dalloc<unsigned short>(no); float* Of = dalloc<float>(no); unsigned short* dO = dalloc<unsigned short>(no);
    for (size_t e = 0; e < no; e++) dO[e] = f2bf(frand());
    float* lse = dalloc<float>((size_t)B * H * T); float* Dv = dalloc<float>((size_t)B * H * T);
    int* vl = dalloc<int>(B);
    for (int b = 0; b < B; b++) vl[b] = cf.pad ? std::max(1, T - 3 * b - 2) : T;
    const int* vlp = cf.pad ? vl : nullptr;
    float* dQ = dalloc<float>(no); float* dK = dalloc<float>(no); float* dV = dalloc<float>(no);
    float scale = 1.0f / std::sqrt((float)D);
    unsigned long long seed = 99;
    D3 g = {(unsigned)((T + 63) / 64), (unsigned)H, (unsigned)B};

    auto reference = [&](float dp, std::vector<double>& wO, std::vector<double>& wL, std::vector<double>& wdQ, std::vector<double>& wdK, std::vector<double>& wdV) {
      wO.assign(no, 0); wL.assign((size_t)B * H * T, 0); wdQ.assign(no, 0); wdK.assign(no, 0); wdV.assign(no, 0);
      for (int b = 0; b < B; b++) for (int h = 0; h < H; h++) {
        int nv = cf.pad ? vl[b] : T;
        auto q = [&](int t, int d) { return (double)bf2f(Q[b * q_sb + h * q_sh + t * q_st + d]); };
        auto k = [&](int t, int d) { return (double)bf2f(K[b * q_sb + h * q_sh + t * q_st + d]); };
        auto v = [&](int t, int d) { return (double)bf2f(V[b * q_sb + h * q_sh + t * q_st + d]); };
        auto go = [&](int t, int d) { return (double)bf2f(dO[b * o_sb + h * o_sh + t * o_st + d]); };
        for (int i = 0; i < T; i++) {
          std::vector<double> P(nv), Z(nv); double mx = -1e300;
          for (int j = 0; j < nv; j++) { double s = 0; for (int d = 0; d < D; d++) s += q(i, d) * k(j, d); P[j] = s * scale; mx = std::max(mx, P[j]); }
          double l = 0; for (int j = 0; j < nv; j++) { P[j] = std::exp(P[j] - mx); l += P[j]; }
          for (int j = 0; j < nv; j++) { P[j] /= l; Z[j] = drop_z(dp, seed, (((unsigned long long)b * H + h) * T + i) * T + j); }
          wL[((size_t)b * H + h) * T + i] = mx + std::log(l);
          std::vector<double> o(D, 0);
          for (int j = 0; j < nv; j++) for (int d = 0; d < D; d++) o[d] += P[j] * Z[j] * v(j, d);
          double Di = 0;
          for (int d = 0; d < D; d++) { wO[b * o_sb + h * o_sh + i * o_st + d] = o[d]; Di += go(i, d) * o[d]; }
          for (int j = 0; j < nv; j++) {
            double dpv = 0; for (int d = 0; d < D; d++) dpv += go(i, d) * v(j, d);
            double ds = P[j] * (dpv * Z[j] - Di);
            for (int d = 0; d < D; d++) {
              wdQ[b * g_sb + h * g_sh + i * g_st + d] += scale * ds * k(j, d);
              wdK[b * g_sb + h * g_sh + j * g_st + d] += scale * ds * q(i, d);
              wdV[b * g_sb + h * g_sh + j * g_st + d] += P[j] * Z[j] * go(i, d);
            }
          }
        }
      }
    };
    std::vector<double> wO, wL, wdQ, wdK, wdV;
    reference(0, wO, wL, wdQ, wdK, wdV);
    char nm[160];
    // ---- SIMT kernels
    LAUNCH(fn("attention", "mt_flash_attn_fwd"), g, B256, 0, (const unsigned short*)Q, (const unsigned short*)K, (const unsigned short*)V, O, Of, lse, vlp, B, H, T, D,
           q_sb, q_sh, q_st, o_sb, o_sh, o_st, scale);
    LAUNCH(fn("attention", "mt_flash_attn_bwd_pre"), D3{(unsigned)((T + 127) / 128), (unsigned)H, (unsigned)B}, D3{128, 1, 1}, 0, Dv, (const unsigned short*)O, (const float*)Of,
           (const unsigned short*)dO, B, H, T, D, o_sb, o_sh, o_st);
    LAUNCH(fn("attention", "mt_flash_attn_bwd_dkdv"), g, B256, 0, dK, dV, (const unsigned short*)Q, (const unsigned short*)K, (const unsigned short*)V,
           (const unsigned short*)dO, (const float*)lse, (const float*)Dv, vlp, B, H, T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale);
    LAUNCH(fn("attention", "mt_flash_attn_bwd_dq"), g, B256, 0, dQ, (const unsigned short*)Q, (const unsigned short*)K, (const unsigned short*)V,
           (const unsigned short*)dO, (const float*)lse, (const float*)Dv, vlp, B, H, T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale);
    snprintf(nm, sizeof nm, "flash fwd O f32 B=%d H=%d T=%d D=%d pad=%d fused=%d", B, H, T, D, cf.pad, cf.fused); close_enough(nm, Of, wO, 2e-5, 1e-4);
    std::vector<float> Ob(no); for (size_t e = 0; e < no; e++) Ob[e] = bf2f(O[e]);
    close_enough("flash fwd O bf16", Ob.data(), wO, 1e-2, 1e-2);
    close_enough("flash fwd lse", lse, wL, 2e-5, 1e-5);
    close_enough("flash bwd dQ", dQ, wdQ, 2e-3, 1e-2);
    close_enough("flash bwd dK", dK, wdK, 2e-3, 1e-2);
    close_enough("flash bwd dV", dV, wdV, 1e-4, 1e-4);
    // ---- tensor-core kernels, without and with dropout
    if (D == 32 || D == 64) for (float dp : {0.0f, 0.2f}) {
      if (dp > 0) reference(dp, wO, wL, wdQ, wdK, wdV);
      for (size_t e = 0; e < no; e++) { Of[e] = NAN; O[e] = 0xffff; dQ[e] = dK[e] = dV[e] = NAN; }
      LAUNCH(fn("attention", "mt_flash_attn_fwd_tc"), g, D3{128, 1, 1}, 0, (const unsigned short*)Q, (const unsigned short*)K, (const unsigned short*)V, O, Of, lse, vlp, B, H,
             T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, scale, dp, seed);
      LAUNCH(fn("attention", "mt_flash_attn_bwd_pre"), D3{(unsigned)((T + 127) / 128), (unsigned)H, (unsigned)B}, D3{128, 1, 1}, 0, Dv, (const unsigned short*)O, (const float*)Of,
             (const unsigned short*)dO, B, H, T, D, o_sb, o_sh, o_st);
      LAUNCH(fn("attention", "mt_flash_attn_bwd_dkdv_tc"), g, D3{128, 1, 1}, 0, dK, dV, (const unsigned short*)Q, (const unsigned short*)K, (const unsigned short*)V,
             (const unsigned short*)dO, (const float*)lse, (const float*)Dv, vlp, B, H, T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale, dp, seed);
      LAUNCH(fn("attention", "mt_flash_attn_bwd_dq_tc"), g, D3{128, 1, 1}, 0, dQ, (const unsigned short*)Q, (const unsigned short*)K, (const unsigned short*)V,
             (const unsigned short*)dO, (const float*)lse, (const float*)Dv, vlp, B, H, T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale, dp, seed);
      double mo = 1e-3, mq = 1e-3, mk = 1e-3, mv = 1e-3;
      for (size_t e = 0; e < no; e++) { mo = std::max(mo, std::fabs(wO[e])); mq = std::max(mq, std::fabs(wdQ[e])); mk = std::max(mk, std::fabs(wdK[e])); mv = std::max(mv, std::fabs(wdV[e])); }
      // P and dS are rounded to bf16 before the second products: errors relative to the largest value
      snprintf(nm, sizeof nm, "flash fwd_tc O f32 B=%d H=%d T=%d D=%d pad=%d fused=%d drop=%g", B, H, T, D, cf.pad, cf.fused, dp);
      close_enough(nm, Of, wO, 1e-2 * mo, 1e-2);
      close_enough("flash fwd_tc lse", lse, wL, 2e-5, 1e-5);
      std::vector<float> Ob2(no); for (size_t e = 0; e < no; e++) Ob2[e] = bf2f(O[e]);
      close_enough("flash fwd_tc O bf16", Ob2.data(), wO, 2e-2 * mo, 2e-2);
      close_enough("flash bwd_tc dQ", dQ, wdQ, 2e-2 * mq, 2e-2);
      close_enough("flash bwd_tc dK", dK, wdK, 2e-2 * mk, 2e-2);
      close_enough("flash bwd_tc dV", dV, wdV, 1e-2 * mv, 1e-2);
    }
    dfree(qkv); dfree(O); dfree(Of); dfree(dO); dfree(lse); dfree(Dv); dfree(vl); dfree(dQ); dfree(dK); dfree(dV);
  }
}

// bench: GEMM and attention timings from CUDA events. On the GPU (--real) the shapes are those of
// a BERT-base training step (batch 32, sequence 128); on the emulator much smaller ones.
static double time_ms(const std::function<void()>& body, int iters) {
  void *e0, *e1;
  CK(cuEventCreate(&e0, 0)); CK(cuEventCreate(&e1, 0));
  body();  // warm-up (and JIT)
  CK(cuEventRecord(e0, nullptr));
  for (int i = 0; i < iters; i++) body();
  CK(cuEventRecord(e1, nullptr));
  CK(cuEventSynchronize(e1));
  float ms = 0; CK(cuEventElapsedTime(&ms, e0, e1));
  return ms / iters;
}
static void bench() {
  int iters = g_real ? 20 : 1;
  int Mrows = g_real ? 32 * 128 : 256;
  struct G { const char* what; int M, N, K, ta, tb; };
  std::vector<G> gs = {{"QKV fwd   X.Wqkv^T", Mrows, 2304, 768, 0, 1}, {"attn out  X.Wo^T  ", Mrows, 768, 768, 0, 1},
                       {"FFN1 fwd  X.W1^T  ", Mrows, 3072, 768, 0, 1}, {"FFN2 fwd  H.W2^T  ", Mrows, 768, 3072, 0, 1},
                       {"FFN2 dX   dY.W2   ", Mrows, 3072, 768, 0, 0}, {"FFN2 dW   dY^T.H  ", 768, 3072, Mrows, 1, 0}};
  CUfunction f = fn("gemm_bf16", "mt_gemm_bf16"); CK(cuFuncSetAttribute(f, 8, 81920));
  for (auto& g : gs) {
    size_t na = (size_t)g.M * g.K, nb = (size_t)g.K * g.N;
    unsigned short* A = dalloc<unsigned short>(na); unsigned short* B = dalloc<unsigned short>(nb); float* C = dalloc<float>((size_t)g.M * g.N);
    for (size_t i = 0; i < na; i++) A[i] = f2bf(frand());
    for (size_t i = 0; i < nb; i++) B[i] = f2bf(frand());
    long long lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
    double ms = time_ms([&] {
      LAUNCH(f, D3{(unsigned)((g.N + 127) / 128), (unsigned)((g.M + 127) / 128), 1}, B256, 81920, (const unsigned short*)A, (const unsigned short*)B, C,
             (unsigned short*)nullptr, g.M, g.N, g.K, g.ta, g.tb, lda, ldb, (long long)g.N, 0LL, 0LL, 0LL, 1.0f, 0.0f);
    }, iters);
    fprintf(stderr, "bench gemm_bf16 %s M=%d N=%d K=%d tA=%d tB=%d: %.3f ms, %.1f TFLOP/s\n", g.what, g.M, g.N, g.K, g.ta, g.tb, ms,
            2.0 * g.M * g.N * g.K / (ms * 1e-3) / 1e12);
    dfree(A); dfree(B); dfree(C);
  }
  // attention, BERT-base: B=32 H=12 T=128 D=64, fused QKV [B,T,3,H,D], O/dO [B,T,H,D]
  int Bn = g_real ? 32 : 2, H = 12, T = 128, D = 64;
  long long q_st = 3LL * H * D, q_sh = D, q_sb = T * q_st, o_st = (long long)H * D, o_sh = D, o_sb = T * o_st, g_st = D, g_sh = (long long)T * D, g_sb = H * g_sh;
  size_t nqkv = (size_t)Bn * T * 3 * H * D, no = (size_t)Bn * T * H * D;
  unsigned short* qkv = dalloc<unsigned short>(nqkv); unsigned short* O = dalloc<unsigned short>(no); unsigned short* dO = dalloc<unsigned short>(no);
  float *lse = dalloc<float>((size_t)Bn * H * T), *Dv = dalloc<float>((size_t)Bn * H * T), *dQ = dalloc<float>(no), *dK = dalloc<float>(no), *dV = dalloc<float>(no);
  for (size_t i = 0; i < nqkv; i++) qkv[i] = f2bf(frand());
  for (size_t i = 0; i < no; i++) dO[i] = f2bf(frand());
  const unsigned short *Q = qkv, *K = qkv + H * D, *V = qkv + 2 * H * D;
  float scale = 0.125f;
  D3 g = {(unsigned)((T + 63) / 64), (unsigned)H, (unsigned)Bn};
  double fwd = time_ms([&] {
    LAUNCH(fn("attention", "mt_flash_attn_fwd_tc"), g, D3{128, 1, 1}, 0, Q, K, V, O, (float*)nullptr, lse, (const int*)nullptr, Bn, H, T, D, q_sb, q_sh, q_st, o_sb,
           o_sh, o_st, scale, 0.0f, 0ULL);
  }, iters);
  double bwd = time_ms([&] {
    LAUNCH(fn("attention", "mt_flash_attn_bwd_pre"), D3{(unsigned)((T + 127) / 128), (unsigned)H, (unsigned)Bn}, D3{128, 1, 1}, 0, Dv, (const unsigned short*)O,
           (const float*)nullptr, (const unsigned short*)dO, Bn, H, T, D, o_sb, o_sh, o_st);
    LAUNCH(fn("attention", "mt_flash_attn_bwd_dkdv_tc"), g, D3{128, 1, 1}, 0, dK, dV, Q, K, V, (const unsigned short*)dO, (const float*)lse, (const float*)Dv,
           (const int*)nullptr, Bn, H, T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale, 0.0f, 0ULL);
    LAUNCH(fn("attention", "mt_flash_attn_bwd_dq_tc"), g, D3{128, 1, 1}, 0, dQ, Q, K, V, (const unsigned short*)dO, (const float*)lse, (const float*)Dv,
           (const int*)nullptr, Bn, H, T, D, q_sb, q_sh, q_st, o_sb, o_sh, o_st, g_sb, g_sh, g_st, scale, 0.0f, 0ULL);
  }, iters);
  double flop = 4.0 * Bn * H * T * T * D;  // fwd: QK^T and PV
  fprintf(stderr, "bench flash attention tc B=%d H=%d T=%d D=%d: fwd %.3f ms (%.1f TFLOP/s), bwd %.3f ms (%.1f TFLOP/s at 2.5x fwd FLOPs)\n", Bn, H, T, D, fwd,
          flop / (fwd * 1e-3) / 1e12, bwd, 2.5 * flop / (bwd * 1e-3) / 1e12);
  if (!g_real) fprintf(stderr, "(emulator timings mean nothing about a GPU)\n");
}

int main(int argc, char** argv) {
  init();
  std::string only = argc > 1 ? argv[1] : "";
  auto want = [&](const char* t) { return only.empty() || only == t; };
  if (want("elementwise")) test_elementwise();
  if (want("reduce")) test_reduce();
  if (want("nn")) test_nn();
  if (want("gemm_f32")) test_gemm(false);
  if (want("gemm_bf16")) test_gemm(true);
  if (want("gemm_bf16") || want("gemm_ex")) test_gemm_ex();
  if (want("attention")) test_attention();
  if (only == "bench") bench();
  fprintf(stderr, g_fail ? "SELFTEST FAILED (%d)\n" : "SELFTEST OK\n", g_fail);
  return g_fail ? 1 : 0;
}
