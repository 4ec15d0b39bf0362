// simt.h: the SIMT shim that lets the CUDA C sources in ../src compile as plain C++ for the
// host emulator (libmtcuda_emu.so). The threads of a block run as cooperatively scheduled
// fibers on one OS thread; blocks of a grid run one after another on each worker OS thread.
// __shared__ variables are `static thread_local`: one copy per worker, i.e. per running block.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __constant__ static
#define __shared__ static thread_local
#define __forceinline__ inline __attribute__((always_inline))
#define __align__(n) __attribute__((aligned(n)))
#define MT_HOST_EMU 1
#define __launch_bounds__(...)

typedef unsigned long long mt_u64;

struct mt_uint3 { unsigned x, y, z; };

struct MtThreadCtx {
  mt_uint3 tid;
  int linear;  // x + y*bx + z*bx*by
};
struct MtBlockCtx {
  mt_uint3 bid, bdim, gdim;
  unsigned char* dyn_smem;
  unsigned dyn_smem_bytes;
};

#define MT_EMU_API __attribute__((visibility("default")))

extern "C" {
extern thread_local MtThreadCtx* mt_emu_tc;
extern thread_local MtBlockCtx* mt_emu_bc;
void mt_emu_sync_block(void);
// Warp-synchronous all-gather: every live lane of the calling warp deposits `bytes` bytes
// from `mine`; when all have, each lane receives the 32 slots (lane-major) in `all`
// (slots of absent lanes are zero). Two warp barriers.
void mt_emu_warp_gather(const void* mine, void* all, int bytes);
// Same, without the copy: returns the warp's 32 slots (lane-major, `bytes` each), readable until
// the calling lane's next warp collective.
const void* mt_emu_warp_share(const void* mine, int bytes);
void mt_emu_syncwarp(void);
typedef void (*mt_emu_invoker)(void* fn, void** params);
void mt_emu_register_kernel(const char* name, void* fn, mt_emu_invoker inv, int nparams, const int* sizes);
}

#define threadIdx (mt_emu_tc->tid)
#define blockIdx (mt_emu_bc->bid)
#define blockDim (mt_emu_bc->bdim)
#define gridDim (mt_emu_bc->gdim)

static inline void __syncthreads() { mt_emu_sync_block(); }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)mask; mt_emu_syncwarp(); }
static inline int mt_emu_lane() { return mt_emu_tc->linear & 31; }

template <typename T>
static inline T mt_emu_shfl_idx(T v, int src) {
  static_assert(sizeof(T) <= 8, "shfl");
  const T* all = (const T*)mt_emu_warp_share(&v, (int)sizeof(T));
  return all[src & 31];
}
static inline float __shfl_sync(unsigned, float v, int src) { return mt_emu_shfl_idx(v, src); }
static inline int __shfl_sync(unsigned, int v, int src) { return mt_emu_shfl_idx(v, src); }
static inline unsigned __shfl_sync(unsigned, unsigned v, int src) { return mt_emu_shfl_idx(v, src); }
static inline float __shfl_xor_sync(unsigned, float v, int m) { return mt_emu_shfl_idx(v, mt_emu_lane() ^ m); }
static inline int __shfl_xor_sync(unsigned, int v, int m) { return mt_emu_shfl_idx(v, mt_emu_lane() ^ m); }
static inline unsigned __shfl_xor_sync(unsigned, unsigned v, int m) { return mt_emu_shfl_idx(v, mt_emu_lane() ^ m); }
static inline unsigned __ballot_sync(unsigned mask, int pred) {
  int all[32];
  int mine = pred ? 1 : 0;
  mt_emu_warp_gather(&mine, all, 4);
  unsigned r = 0;
  for (int i = 0; i < 32; i++) if (all[i]) r |= 1u << i;
  return r & mask;
}
// Atomics: blocks may run on several worker threads, so use real atomics.
static inline float atomicAdd(float* p, float v) {
  float old, nv;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do { nv = old + v; } while (!__atomic_compare_exchange(p, &old, &nv, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
static inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

static inline float mt_sqrtf(float x) { return std::sqrt(x); }
// Built with -ffp-contract=off: plain operations round one by one, as mul.rn/add.rn do.
static inline float mt_mul(float a, float b) { return a * b; }
static inline float mt_add(float a, float b) { return a + b; }
static inline float mt_fast_exp2(float x) { return std::exp2(x); }
static inline float mt_fast_log2(float x) { return std::log2(x); }
static inline float mt_fminf(float a, float b) { return std::fmin(a, b); }
static inline float mt_fmaxf(float a, float b) { return std::fmax(a, b); }
static inline float mt_fabsf(float a) { return std::fabs(a); }
static inline float mt_floorf(float a) { return std::floor(a); }
static inline unsigned mt_umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
static inline float fmaf_mt(float a, float b, float c) { return std::fma(a, b, c); }

namespace mt_emu {
template <typename T> struct ParamSize { static constexpr int v = (int)sizeof(T); };
template <typename... A, std::size_t... I>
static void invoke_impl(void (*f)(A...), void** p, std::index_sequence<I...>) {
  f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
}
template <typename... A>
struct KernelReg {
  KernelReg(const char* name, void (*f)(A...)) {
    static const int sizes[sizeof...(A) + 1] = {ParamSize<A>::v..., 0};
    mt_emu_register_kernel(
        name, (void*)f,
        [](void* fn, void** p) { invoke_impl((void (*)(A...))fn, p, std::index_sequence_for<A...>{}); },
        (int)sizeof...(A), sizes);
  }
};
template <typename... A>
static KernelReg<A...> make_reg(const char* name, void (*f)(A...)) { return KernelReg<A...>(name, f); }
}  // namespace mt_emu

#define MT_KERNEL(name) static auto mt_kreg_##name = mt_emu::make_reg(#name, &name);
#define MT_DYN_SMEM(type, name) type* name = (type*)mt_emu_bc->dyn_smem
