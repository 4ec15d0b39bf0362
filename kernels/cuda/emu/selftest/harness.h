// Tiny harness for the emulator self-tests: links libmtcuda_emu.so directly, loads ptx/*.ptx
// through cuModuleLoadDataEx and launches through cuLaunchKernel, like the Go binding does.
#pragma once
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>
#include <dlfcn.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef void* CUcontext;
typedef void* CUmodule;
typedef void* CUfunction;
typedef void* CUstream;
// The driver is loaded at run time (dlopen) from $MTCUDA_LIB: the emulator by default
// (build_and_run.sh sets it), or the real libcuda.so.1 (build_and_run.sh --real). Test buffers
// are managed memory (cuMemAllocManaged) and every launch is followed by cuCtxSynchronize, so
// the tests read and write device buffers directly on both.
#define MT_CU_FUNCS(X)                                                                                      \
  X(cuInit, CUresult, (unsigned))                                                                           \
  X(cuDeviceGet, CUresult, (int*, int))                                                                     \
  X(cuDeviceGetName, CUresult, (char*, int, int))                                                           \
  X(cuDevicePrimaryCtxRetain, CUresult, (CUcontext*, int))                                                  \
  X(cuCtxSetCurrent, CUresult, (CUcontext))                                                                 \
  X(cuCtxSynchronize, CUresult, (void))                                                                     \
  X(cuModuleLoadDataEx, CUresult, (CUmodule*, const void*, unsigned, int*, void**))                          \
  X(cuModuleGetFunction, CUresult, (CUfunction*, CUmodule, const char*))                                    \
  X(cuFuncSetAttribute, CUresult, (CUfunction, int, int))                                                   \
  X(cuLaunchKernel, CUresult, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, \
                               CUstream, void**, void**))                                                   \
  X(cuMemAllocManaged, CUresult, (CUdeviceptr*, size_t, unsigned))                                          \
  X(cuMemFree_v2, CUresult, (CUdeviceptr))                                                                  \
  X(cuEventCreate, CUresult, (void**, unsigned))                                                            \
  X(cuEventRecord, CUresult, (void*, CUstream))                                                             \
  X(cuEventSynchronize, CUresult, (void*))                                                                  \
  X(cuEventElapsedTime, CUresult, (float*, void*, void*))                                                   \
  X(cuGetErrorName, CUresult, (CUresult, const char**))
#define MT_DECL(name, ret, args) static ret(*name) args;
MT_CU_FUNCS(MT_DECL)
static const char* (*p_last_error)(void);
static const char* mt_emu_last_error(void) { return p_last_error ? p_last_error() : ""; }
static bool g_real = false;

static int g_fail = 0;
#define CK(x) do { CUresult r_ = (x); if (r_) { const char* n_ = ""; cuGetErrorName(r_, &n_); \
  fprintf(stderr, "%s:%d: %s -> %d %s (%s)\n", __FILE__, __LINE__, #x, r_, n_, mt_emu_last_error()); exit(1); } } while (0)

struct D3 { unsigned x, y, z; };
static std::string g_ptxdir = "ptx";
static std::map<std::string, CUmodule> g_mods;
static void init() {
  const char* lib = getenv("MTCUDA_LIB");
  if (!lib) { fprintf(stderr, "set MTCUDA_LIB to libmtcuda_emu.so or libcuda.so.1\n"); exit(1); }
  void* h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "dlopen %s: %s\n", lib, dlerror()); exit(1); }
#define MT_LOAD(name, ret, args)                                                     \
  name = (ret(*) args)dlsym(h, #name);                                               \
  if (!name) { fprintf(stderr, "%s: no symbol %s\n", lib, #name); exit(1); }
  MT_CU_FUNCS(MT_LOAD)
  p_last_error = (const char* (*)(void))dlsym(h, "mt_emu_last_error");
  g_real = p_last_error == nullptr;
  CK(cuInit(0));
  int d; CK(cuDeviceGet(&d, 0));
  CUcontext c; CK(cuDevicePrimaryCtxRetain(&c, d));
  CK(cuCtxSetCurrent(c));
  char name[128] = {0};
  CK(cuDeviceGetName(name, sizeof name, d));
  fprintf(stderr, "selftest on %s (%s)\n", name, lib);
}
static CUfunction fn(const char* mod, const char* name) {
  if (!g_mods.count(mod)) {
    std::ifstream f(g_ptxdir + "/" + mod + ".ptx");
    if (!f) { fprintf(stderr, "cannot read %s/%s.ptx\n", g_ptxdir.c_str(), mod); exit(1); }
    std::stringstream ss; ss << f.rdbuf();
    std::string s = ss.str();
    char log[1024] = {0};
    int opts[2] = {5, 6}; void* vals[2] = {log, (void*)(uintptr_t)sizeof log};
    CUmodule m; CUresult r = cuModuleLoadDataEx(&m, s.c_str(), 2, opts, vals);
    if (r) { fprintf(stderr, "load %s: %d %s\n", mod, r, log); exit(1); }
    g_mods[mod] = m;
  }
  CUfunction f; CK(cuModuleGetFunction(&f, g_mods[mod], name));
  return f;
}
template <typename... A>
static CUresult launch_r(CUfunction f, D3 g, D3 b, unsigned smem, A... a) {
  void* p[sizeof...(A) + 1] = {(void*)&a..., nullptr};
  CUresult r = cuLaunchKernel(f, g.x, g.y, g.z, b.x, b.y, b.z, smem, nullptr, p, nullptr);
  if (r) return r;
  return cuCtxSynchronize();
}
#define LAUNCH(...) CK(launch_r(__VA_ARGS__))

template <typename T> static T* dalloc(size_t n) {
  CUdeviceptr p; CK(cuMemAllocManaged(&p, n * sizeof(T) + 16, 1 /* CU_MEM_ATTACH_GLOBAL */)); return (T*)(uintptr_t)p;
}
template <typename T> static void dfree(T* p) { CK(cuMemFree_v2((CUdeviceptr)(uintptr_t)p)); }

static std::mt19937 g_rng(1234);
static float frand(float lo = -1, float hi = 1) { return std::uniform_real_distribution<float>(lo, hi)(g_rng); }
static unsigned short f2bf(float f) {
  unsigned u; memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u); return (unsigned short)(u >> 16);
}
static float bf2f(unsigned short h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }

static bool close_enough(const char* what, const float* got, const double* want, size_t n, double atol, double rtol) {
  size_t bad = 0; double worst = 0; size_t wi = 0;
  for (size_t i = 0; i < n; i++) {
    if (std::isnan(got[i]) && std::isnan(want[i])) continue;
    double e = std::fabs((double)got[i] - want[i]), tol = atol + rtol * std::fabs(want[i]);
    if (!(e <= tol)) { if (bad == 0 || e > worst) { worst = e; wi = i; } bad++; }
  }
  if (bad) {
    fprintf(stderr, "FAIL %s: %zu/%zu mismatches, e.g. [%zu] got %g want %g\n", what, bad, n, wi, got[wi], want[wi]);
    g_fail++;
    return false;
  }
  fprintf(stderr, "ok   %s (%zu values)\n", what, n);
  return true;
}
static bool close_enough(const char* what, const float* got, const std::vector<double>& want, double atol, double rtol) {
  return close_enough(what, got, want.data(), want.size(), atol, rtol);
}
