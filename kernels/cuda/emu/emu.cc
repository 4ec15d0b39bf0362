// emu.cc: libmtcuda_emu.so, a host emulation of the CUDA driver API subset mtbert uses.
// Device memory is host memory (CUdeviceptr = host address). Kernels are the src/*.cu sources
// compiled as C++ with simt.h; cuModuleLoadDataEx checks the PTX text and records its .entry
// names; cuModuleGetFunction resolves them against the kernels registered at load time;
// cuLaunchKernel runs the grid: blocks spread over worker OS threads (MTCUDA_EMU_THREADS,
// default min(8, #cpus)), the threads of each block as cooperative fibers.
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "simt.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
struct CUctx_st;
struct CUmod_st;
struct CUfunc_st;
struct CUstream_st;
struct CUevent_st;
typedef CUctx_st* CUcontext;
typedef CUmod_st* CUmodule;
typedef CUfunc_st* CUfunction;
typedef CUstream_st* CUstream;
typedef CUevent_st* CUevent;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_NOT_READY = 600,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
  CUDA_ERROR_ILLEGAL_INSTRUCTION = 715,
  CUDA_ERROR_LAUNCH_FAILED = 719,
  CUDA_ERROR_NOT_SUPPORTED = 801,
  CUDA_ERROR_UNKNOWN = 999,
};

#define API extern "C" MT_EMU_API

// ------------------------------------------------------------------ kernel registry
namespace {
struct KernelEntry {
  std::string name;
  void* fn;
  mt_emu_invoker inv;
  int nparams;
  const int* sizes;
};
std::map<std::string, KernelEntry>& registry() {
  static std::map<std::string, KernelEntry> r;
  return r;
}
}  // namespace

extern "C" void mt_emu_register_kernel(const char* name, void* fn, mt_emu_invoker inv, int nparams, const int* sizes) {
  registry()[name] = KernelEntry{name, fn, inv, nparams, sizes};
}

// ------------------------------------------------------------------ fibers
#if defined(__x86_64__)
extern "C" void mt_ctx_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl mt_ctx_switch
.hidden mt_ctx_switch
.type mt_ctx_switch,@function
mt_ctx_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size mt_ctx_switch, .-mt_ctx_switch
)");
struct Ctx { void* sp = nullptr; };
static void ctx_init(Ctx* c, char* stack, size_t size, void (*entry)()) {
  uintptr_t top = ((uintptr_t)(stack + size)) & ~(uintptr_t)15;
  void** sp = (void**)top;
  *--sp = nullptr;          // fake return address of entry (never used)
  *--sp = (void*)entry;     // ret target
  for (int i = 0; i < 6; i++) *--sp = nullptr;  // rbp rbx r12..r15
  c->sp = sp;
}
static inline void ctx_swap(Ctx* save, Ctx* to) { mt_ctx_switch(&save->sp, to->sp); }
#else
struct Ctx { ucontext_t uc; };
static void ctx_init(Ctx* c, char* stack, size_t size, void (*entry)()) {
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = stack;
  c->uc.uc_stack.ss_size = size;
  c->uc.uc_link = nullptr;
  makecontext(&c->uc, entry, 0);
}
static inline void ctx_swap(Ctx* save, Ctx* to) { swapcontext(&save->uc, &to->uc); }
#endif

thread_local MtThreadCtx* mt_emu_tc;
thread_local MtBlockCtx* mt_emu_bc;

namespace {
enum { F_RUN = 0, F_WAIT_BLOCK = 1, F_WAIT_WARP = 2, F_DONE = 3 };
const size_t kGatherMax = 64;

size_t stack_size() {
  static size_t s = [] {
    const char* e = getenv("MTCUDA_EMU_STACK_KB");
    long kb = e ? atol(e) : 128;
    if (kb < 16) kb = 16;
    return (size_t)kb * 1024;
  }();
  return s;
}

struct Launch;

struct CpAsync { unsigned char* dst; const unsigned char* src; int bytes; int group; };
struct Fiber {
  Ctx ctx;
  int state;
  int warp;
  MtThreadCtx tc;
  char* stack;
  std::vector<CpAsync> cp;  // pending cp.async copies
  unsigned coll_seq = 0;    // warp collectives done: picks one of the warp's two exchange buffers
  int cp_group = 0;         // index of the group being built
};

struct Worker {
  std::vector<Fiber> fibers;
  char* stack_region = nullptr;
  size_t nstacks = 0;
  Ctx sched;
  int cur = 0;
  int alive = 0, block_arrived = 0;
  std::vector<int> warp_alive, warp_arrived;
  std::vector<unsigned char> gbuf;
  std::vector<unsigned char> smem;
  MtBlockCtx bc;
  Launch* launch = nullptr;
  std::string err;

  ~Worker() {
    if (stack_region) munmap(stack_region, nstacks * (stack_size() + 4096));
  }
  void ensure_stacks(size_t n) {
    if (n <= nstacks) return;
    if (stack_region) munmap(stack_region, nstacks * (stack_size() + 4096));
    size_t per = stack_size() + 4096;
    stack_region = (char*)mmap(nullptr, n * per, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stack_region == MAP_FAILED) { stack_region = nullptr; nstacks = 0; return; }
    for (size_t i = 0; i < n; i++) mprotect(stack_region + i * per, 4096, PROT_NONE);  // guard below each stack
    nstacks = n;
  }
};
thread_local Worker* tw;

Worker* worker() {
  static thread_local Worker w;
  return &w;
}

struct Launch {
  KernelEntry* k;
  void** params;
  mt_uint3 grid, block;
  unsigned dyn;
  std::atomic<long long> next{0};
  long long nblocks;
  std::atomic<int> failed{0};
  std::mutex mu;
  std::string err;
};

void yield_to_sched() {
  Worker* w = tw;
  ctx_swap(&w->fibers[w->cur].ctx, &w->sched);
}

void release_block(Worker* w) {
  for (auto& f : w->fibers) if (f.state == F_WAIT_BLOCK) f.state = F_RUN;
  w->block_arrived = 0;
}
void release_warp(Worker* w, int wp) {
  size_t lo = (size_t)wp * 32, hi = std::min(lo + 32, w->fibers.size());
  for (size_t i = lo; i < hi; i++) if (w->fibers[i].state == F_WAIT_WARP) w->fibers[i].state = F_RUN;
  w->warp_arrived[wp] = 0;
}

void warp_barrier() {
  Worker* w = tw;
  Fiber& f = w->fibers[w->cur];
  f.state = F_WAIT_WARP;
  if (++w->warp_arrived[f.warp] == w->warp_alive[f.warp]) release_warp(w, f.warp);
  yield_to_sched();
}

void fiber_main() {
  Worker* w = tw;
  Launch* L = w->launch;
  L->k->inv(L->k->fn, L->params);
  Fiber& f = w->fibers[w->cur];
  f.state = F_DONE;
  w->alive--;
  w->warp_alive[f.warp]--;
  if (w->alive > 0 && w->block_arrived > 0 && w->block_arrived == w->alive) release_block(w);
  if (w->warp_alive[f.warp] > 0 && w->warp_arrived[f.warp] > 0 && w->warp_arrived[f.warp] == w->warp_alive[f.warp])
    release_warp(w, f.warp);
  ctx_swap(&f.ctx, &w->sched);
  abort();  // never resumed
}

bool run_block(Worker* w, Launch* L, long long b) {
  unsigned nx = L->block.x, ny = L->block.y, nz = L->block.z;
  size_t n = (size_t)nx * ny * nz;
  w->bc.bdim = L->block;
  w->bc.gdim = L->grid;
  w->bc.bid.x = (unsigned)(b % L->grid.x);
  w->bc.bid.y = (unsigned)((b / L->grid.x) % L->grid.y);
  w->bc.bid.z = (unsigned)(b / ((long long)L->grid.x * L->grid.y));
  if (w->smem.size() < L->dyn + 16) w->smem.resize(L->dyn + 16);
  unsigned char* sm = (unsigned char*)(((uintptr_t)w->smem.data() + 15) & ~(uintptr_t)15);
  memset(sm, 0xff, L->dyn);  // poison: uninitialised shared memory reads as NaN
  w->bc.dyn_smem = sm;
  w->bc.dyn_smem_bytes = L->dyn;
  mt_emu_bc = &w->bc;
  w->ensure_stacks(n);
  if (!w->stack_region) { w->err = "cannot allocate fiber stacks"; return false; }
  w->fibers.resize(n);
  size_t nw = (n + 31) / 32;
  w->warp_alive.assign(nw, 0);
  w->warp_arrived.assign(nw, 0);
  w->gbuf.assign(nw * 2 * 32 * kGatherMax, 0);
  size_t per = stack_size() + 4096;
  for (size_t i = 0; i < n; i++) {
    Fiber& f = w->fibers[i];
    f.state = F_RUN;
    f.cp.clear();
    f.cp_group = 0;
    f.coll_seq = 0;
    f.warp = (int)(i / 32);
    f.tc.linear = (int)i;
    f.tc.tid.x = (unsigned)(i % nx);
    f.tc.tid.y = (unsigned)((i / nx) % ny);
    f.tc.tid.z = (unsigned)(i / ((size_t)nx * ny));
    f.stack = w->stack_region + i * per + 4096;
    ctx_init(&f.ctx, f.stack, stack_size(), fiber_main);
    w->warp_alive[f.warp]++;
  }
  w->alive = (int)n;
  w->block_arrived = 0;
  while (w->alive > 0) {
    bool ran = false;
    for (size_t i = 0; i < n; i++) {
      if (w->fibers[i].state != F_RUN) continue;
      ran = true;
      w->cur = (int)i;
      mt_emu_tc = &w->fibers[i].tc;
      ctx_swap(&w->sched, &w->fibers[i].ctx);
    }
    if (!ran) {
      char buf[256];
      int nb = 0, nwp = 0;
      for (auto& f : w->fibers) { nb += f.state == F_WAIT_BLOCK; nwp += f.state == F_WAIT_WARP; }
      snprintf(buf, sizeof buf,
               "kernel %s block (%u,%u,%u): barrier deadlock (%d threads in __syncthreads, %d in warp collectives, %d alive): divergent barrier",
               L->k->name.c_str(), w->bc.bid.x, w->bc.bid.y, w->bc.bid.z, nb, nwp, w->alive);
      w->err = buf;
      return false;
    }
  }
  return true;
}

void worker_loop(Launch* L) {
  Worker* w = worker();
  tw = w;
  w->launch = L;
  for (;;) {
    if (L->failed.load()) break;
    long long b = L->next.fetch_add(1);
    if (b >= L->nblocks) break;
    if (!run_block(w, L, b)) {
      std::lock_guard<std::mutex> g(L->mu);
      if (!L->failed.exchange(1)) L->err = w->err;
      break;
    }
  }
  w->launch = nullptr;
}

// A small persistent pool of helper threads: every helper takes part in every launch.
struct Pool {
  std::mutex mu;
  std::condition_variable cv, done_cv;
  Launch* job = nullptr;
  long long gen = 0;
  int pending = 0;
  int nthreads = 1;
  Pool() {
    const char* e = getenv("MTCUDA_EMU_THREADS");
    int n = e ? atoi(e) : (int)std::min(8u, std::max(1u, std::thread::hardware_concurrency()));
    if (n < 1) n = 1;
    nthreads = n;
    for (int i = 1; i < n; i++) std::thread([this] { loop(); }).detach();
  }
  void loop() {
    long long seen = 0;
    for (;;) {
      Launch* L;
      {
        std::unique_lock<std::mutex> g(mu);
        cv.wait(g, [&] { return gen != seen; });
        seen = gen;
        L = job;
      }
      worker_loop(L);
      std::lock_guard<std::mutex> g(mu);
      if (--pending == 0) done_cv.notify_all();
    }
  }
  void run(Launch* L) {
    if (nthreads == 1 || L->nblocks == 1) { worker_loop(L); return; }
    {
      std::lock_guard<std::mutex> g(mu);
      job = L;
      pending = nthreads - 1;
      gen++;
    }
    cv.notify_all();
    worker_loop(L);
    std::unique_lock<std::mutex> g(mu);
    done_cv.wait(g, [&] { return pending == 0; });
  }
};
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}
std::mutex launch_mu;
}  // namespace

extern "C" void mt_emu_sync_block(void) {
  Worker* w = tw;
  Fiber& f = w->fibers[w->cur];
  f.state = F_WAIT_BLOCK;
  if (++w->block_arrived == w->alive) release_block(w);
  yield_to_sched();
}

extern "C" void mt_emu_syncwarp(void) { warp_barrier(); }

extern "C" void mt_emu_cp_async(void* dst, const void* src, int src_bytes) {
  Fiber& f = tw->fibers[tw->cur];
  if (((uintptr_t)dst & 15) || (src_bytes > 0 && ((uintptr_t)src & 15)) || src_bytes < 0 || src_bytes > 16) {
    fprintf(stderr, "mtcuda_emu: cp.async with misaligned address or bad size (dst %p src %p bytes %d)\n", dst, src, src_bytes);
    abort();
  }
  f.cp.push_back(CpAsync{(unsigned char*)dst, (const unsigned char*)src, src_bytes, f.cp_group});
}
extern "C" void mt_emu_cp_commit(void) { tw->fibers[tw->cur].cp_group++; }
extern "C" void mt_emu_cp_wait(int n) {
  Fiber& f = tw->fibers[tw->cur];
  // complete every committed group except the n most recent ones
  int limit = f.cp_group - n;
  size_t keep = 0;
  for (size_t i = 0; i < f.cp.size(); i++) {
    CpAsync& c = f.cp[i];
    if (c.group < limit) {
      if (c.bytes) memcpy(c.dst, c.src, (size_t)c.bytes);
      if (c.bytes < 16) memset(c.dst + c.bytes, 0, (size_t)(16 - c.bytes));
    } else {
      f.cp[keep++] = c;
    }
  }
  f.cp.resize(keep);
}

// One warp barrier per collective: collectives alternate between two buffers, so a lane
// depositing for collective n+1 cannot clobber buffer n, which slower lanes may still read;
// buffer n+1 was last read in collective n-1, which every lane finished before barrier n.
extern "C" const void* mt_emu_warp_share(const void* mine, int bytes) {
  Worker* w = tw;
  Fiber& f = w->fibers[w->cur];
  unsigned char* buf = w->gbuf.data() + ((size_t)f.warp * 2 + (f.coll_seq & 1)) * 32 * kGatherMax;
  f.coll_seq++;
  if (w->warp_arrived[f.warp] == 0) memset(buf, 0, 32 * kGatherMax);  // first arrival: absent lanes read 0
  memcpy(buf + (size_t)(f.tc.linear & 31) * bytes, mine, bytes);
  warp_barrier();
  return buf;
}

extern "C" void mt_emu_warp_gather(const void* mine, void* all, int bytes) {
  memcpy(all, mt_emu_warp_share(mine, bytes), (size_t)32 * bytes);
}

// ------------------------------------------------------------------ driver state
namespace {
bool g_init = false;
struct CtxObj { int dev; int refs; };
CtxObj g_primary{0, 0};
thread_local CUcontext t_cur = nullptr;
std::mutex mem_mu;
std::map<uintptr_t, size_t> g_allocs;  // device allocations
std::map<uintptr_t, size_t> g_host;    // pinned host allocations
size_t g_used = 0;
const size_t kTotalMem = (size_t)16 << 30;
const int kMaxDynDefault = 48 * 1024;
const int kMaxDynOptin = 227 * 1024;
std::string g_last_err;

struct FuncObj { KernelEntry* k; int max_dyn; int carveout; };
struct ModObj { std::vector<std::string> entries; std::map<std::string, FuncObj*> funcs; };
struct EventObj { std::chrono::steady_clock::time_point t; bool recorded; };

CtxObj* as_ctx(CUcontext c) { return (CtxObj*)c; }

bool in_alloc(uintptr_t p, size_t n) {
  std::lock_guard<std::mutex> g(mem_mu);
  auto it = g_allocs.upper_bound(p);
  if (it == g_allocs.begin()) return false;
  --it;
  return p >= it->first && p + n <= it->first + it->second;
}
bool in_host_or_any(uintptr_t, size_t) { return true; }

CUresult need_ctx() {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (!t_cur) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

void set_err(const std::string& s) {
  g_last_err = s;
  if (getenv("MTCUDA_EMU_VERBOSE")) fprintf(stderr, "mtcuda_emu: %s\n", s.c_str());
}
}  // namespace

API const char* mt_emu_last_error(void) { return g_last_err.c_str(); }

API CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  g_init = true;
  return CUDA_SUCCESS;
}
API CUresult cuDriverGetVersion(int* v) {
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  *v = 12040;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGetCount(int* n) {
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  *n = 1;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (!d) return CUDA_ERROR_INVALID_VALUE;
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
  *d = 0;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  snprintf(name, (size_t)len, "%s", "mtbert host emulator");
  return CUDA_SUCCESS;
}
API CUresult cuDeviceGetAttribute(int* pi, int attrib, CUdevice dev) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  int v;
  switch (attrib) {
    case 1: v = 1024; break;             // MAX_THREADS_PER_BLOCK
    case 2: v = 1024; break;             // MAX_BLOCK_DIM_X
    case 3: v = 1024; break;             // MAX_BLOCK_DIM_Y
    case 4: v = 64; break;               // MAX_BLOCK_DIM_Z
    case 5: v = 2147483647; break;       // MAX_GRID_DIM_X
    case 6: v = 65535; break;            // MAX_GRID_DIM_Y
    case 7: v = 65535; break;            // MAX_GRID_DIM_Z
    case 8: v = 48 * 1024; break;        // MAX_SHARED_MEMORY_PER_BLOCK
    case 9: v = 64 * 1024; break;        // TOTAL_CONSTANT_MEMORY
    case 10: v = 32; break;              // WARP_SIZE
    case 12: v = 65536; break;           // MAX_REGISTERS_PER_BLOCK
    case 13: v = 1410000; break;         // CLOCK_RATE kHz
    case 16: v = 108; break;             // MULTIPROCESSOR_COUNT
    case 19: v = 1; break;               // CAN_MAP_HOST_MEMORY
    case 36: v = 1215000; break;         // MEMORY_CLOCK_RATE
    case 37: v = 5120; break;            // GLOBAL_MEMORY_BUS_WIDTH
    case 38: v = 40 * 1024 * 1024; break;  // L2_CACHE_SIZE
    case 39: v = 2048; break;            // MAX_THREADS_PER_MULTIPROCESSOR
    case 40: v = 2; break;               // ASYNC_ENGINE_COUNT
    case 41: v = 1; break;               // UNIFIED_ADDRESSING
    case 75: v = 8; break;               // COMPUTE_CAPABILITY_MAJOR
    case 76: v = 0; break;               // COMPUTE_CAPABILITY_MINOR
    case 81: v = 164 * 1024; break;      // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
    case 82: v = 65536; break;           // MAX_REGISTERS_PER_MULTIPROCESSOR
    case 78: v = 1; break;               // STREAM_PRIORITIES_SUPPORTED
    case 95: v = 1; break;               // COOPERATIVE_LAUNCH
    case 97: v = kMaxDynOptin; break;    // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    case 106: v = 32; break;             // MAX_BLOCKS_PER_MULTIPROCESSOR
    case 111: v = 1024; break;           // RESERVED_SHARED_MEMORY_PER_BLOCK
    default: v = 0; break;
  }
  *pi = v;
  return CUDA_SUCCESS;
}
API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!bytes) return CUDA_ERROR_INVALID_VALUE;
  *bytes = kTotalMem;
  return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  g_primary.refs++;
  *pctx = (CUcontext)&g_primary;
  return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (dev != 0) return CUDA_ERROR_INVALID_DEVICE;
  if (g_primary.refs <= 0) return CUDA_ERROR_INVALID_CONTEXT;
  g_primary.refs--;
  return CUDA_SUCCESS;
}
API CUresult cuCtxSetCurrent(CUcontext c) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (c && as_ctx(c) != &g_primary) return CUDA_ERROR_INVALID_CONTEXT;
  t_cur = c;
  return CUDA_SUCCESS;
}
API CUresult cuCtxGetCurrent(CUcontext* c) {
  if (!g_init) return CUDA_ERROR_NOT_INITIALIZED;
  if (!c) return CUDA_ERROR_INVALID_VALUE;
  *c = t_cur;
  return CUDA_SUCCESS;
}
API CUresult cuCtxSynchronize(void) { return need_ctx(); }

API CUresult cuStreamCreate(CUstream* s, unsigned int flags) {
  if (CUresult r = need_ctx()) return r;
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  (void)flags;
  *s = (CUstream) new int(1);
  return CUDA_SUCCESS;
}
API CUresult cuStreamDestroy_v2(CUstream s) {
  if (CUresult r = need_ctx()) return r;
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  delete (int*)s;
  return CUDA_SUCCESS;
}
API CUresult cuStreamSynchronize(CUstream) { return need_ctx(); }
API CUresult cuStreamQuery(CUstream) { return need_ctx(); }  // synchronous streams: always idle
API CUresult cuStreamWaitEvent(CUstream, CUevent e, unsigned int flags) {
  if (CUresult r = need_ctx()) return r;
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

API CUresult cuEventCreate(CUevent* e, unsigned int) {
  if (CUresult r = need_ctx()) return r;
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  *e = (CUevent) new EventObj{std::chrono::steady_clock::now(), false};
  return CUDA_SUCCESS;
}
API CUresult cuEventRecord(CUevent e, CUstream) {
  if (CUresult r = need_ctx()) return r;
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  ((EventObj*)e)->t = std::chrono::steady_clock::now();
  ((EventObj*)e)->recorded = true;
  return CUDA_SUCCESS;
}
API CUresult cuEventQuery(CUevent e) {
  if (CUresult r = need_ctx()) return r;
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}
API CUresult cuEventSynchronize(CUevent e) {
  if (CUresult r = need_ctx()) return r;
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  return CUDA_SUCCESS;
}
API CUresult cuEventElapsedTime(float* ms, CUevent a, CUevent b) {
  if (CUresult r = need_ctx()) return r;
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  if (!a || !b) return CUDA_ERROR_INVALID_HANDLE;
  EventObj *ea = (EventObj*)a, *eb = (EventObj*)b;
  if (!ea->recorded || !eb->recorded) return CUDA_ERROR_INVALID_HANDLE;
  *ms = std::chrono::duration<float, std::milli>(eb->t - ea->t).count();
  return CUDA_SUCCESS;
}
API CUresult cuEventDestroy_v2(CUevent e) {
  if (CUresult r = need_ctx()) return r;
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  delete (EventObj*)e;
  return CUDA_SUCCESS;
}

API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (!p || n == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(mem_mu);
  if (g_used + n > kTotalMem) return CUDA_ERROR_OUT_OF_MEMORY;
  size_t sz = (n + 255) & ~(size_t)255;
  void* q = aligned_alloc(256, sz);
  if (!q) return CUDA_ERROR_OUT_OF_MEMORY;
  memset(q, 0xA5, sz);  // like real device memory, not zeroed: a recognisable pattern
  g_allocs[(uintptr_t)q] = n;
  g_used += n;
  *p = (CUdeviceptr)(uintptr_t)q;
  return CUDA_SUCCESS;
}
// Managed memory is ordinary host memory here too (flags: CU_MEM_ATTACH_GLOBAL = 1 or HOST = 2).
API CUresult cuMemAllocManaged(CUdeviceptr* p, size_t n, unsigned int flags) {
  if (flags != 1 && flags != 2) return CUDA_ERROR_INVALID_VALUE;
  return cuMemAlloc_v2(p, n);
}
API CUresult cuMemFree_v2(CUdeviceptr p) {
  if (CUresult r = need_ctx()) return r;
  if (p == 0) return CUDA_SUCCESS;
  std::lock_guard<std::mutex> g(mem_mu);
  auto it = g_allocs.find((uintptr_t)p);
  if (it == g_allocs.end()) return CUDA_ERROR_INVALID_VALUE;
  g_used -= it->second;
  g_allocs.erase(it);
  free((void*)(uintptr_t)p);
  return CUDA_SUCCESS;
}
API CUresult cuMemAllocHost_v2(void** pp, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (!pp || n == 0) return CUDA_ERROR_INVALID_VALUE;
  size_t sz = (n + 4095) & ~(size_t)4095;
  void* q = aligned_alloc(4096, sz);
  if (!q) return CUDA_ERROR_OUT_OF_MEMORY;
  std::lock_guard<std::mutex> g(mem_mu);
  g_host[(uintptr_t)q] = n;
  *pp = q;
  return CUDA_SUCCESS;
}
API CUresult cuMemFreeHost(void* p) {
  if (CUresult r = need_ctx()) return r;
  std::lock_guard<std::mutex> g(mem_mu);
  auto it = g_host.find((uintptr_t)p);
  if (it == g_host.end()) return CUDA_ERROR_INVALID_VALUE;
  g_host.erase(it);
  free(p);
  return CUDA_SUCCESS;
}
API CUresult cuMemGetInfo_v2(size_t* fr, size_t* total) {
  if (CUresult r = need_ctx()) return r;
  if (!fr || !total) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(mem_mu);
  *total = kTotalMem;
  *fr = kTotalMem - g_used;
  return CUDA_SUCCESS;
}

static CUresult check_dev(CUdeviceptr p, size_t n, const char* what) {
  if (n == 0) return CUDA_SUCCESS;
  if (!in_alloc((uintptr_t)p, n)) {
    char buf[160];
    snprintf(buf, sizeof buf, "%s: device range [0x%llx, +%zu) is not inside one allocation", what, p, n);
    set_err(buf);
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}
API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (CUresult r = check_dev(dst, n, "cuMemcpyHtoD")) return r;
  if (n) memcpy((void*)(uintptr_t)dst, src, n);
  return CUDA_SUCCESS;
}
API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (CUresult r = check_dev(src, n, "cuMemcpyDtoH")) return r;
  if (n) memcpy(dst, (void*)(uintptr_t)src, n);
  return CUDA_SUCCESS;
}
API CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (CUresult r = check_dev(src, n, "cuMemcpyDtoD src")) return r;
  if (CUresult r = check_dev(dst, n, "cuMemcpyDtoD dst")) return r;
  if (n) memmove((void*)(uintptr_t)dst, (void*)(uintptr_t)src, n);
  return CUDA_SUCCESS;
}
API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream) { return cuMemcpyHtoD_v2(dst, src, n); }
API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream) { return cuMemcpyDtoH_v2(dst, src, n); }
API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream) { return cuMemcpyDtoD_v2(dst, src, n); }
API CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (CUresult r = check_dev(p, n, "cuMemsetD8")) return r;
  if (n) memset((void*)(uintptr_t)p, v, n);
  return CUDA_SUCCESS;
}
API CUresult cuMemsetD32_v2(CUdeviceptr p, unsigned int v, size_t n) {
  if (CUresult r = need_ctx()) return r;
  if (p & 3) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_dev(p, n * 4, "cuMemsetD32")) return r;
  unsigned* q = (unsigned*)(uintptr_t)p;
  for (size_t i = 0; i < n; i++) q[i] = v;
  return CUDA_SUCCESS;
}
API CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream) { return cuMemsetD8_v2(p, v, n); }
API CUresult cuMemsetD32Async(CUdeviceptr p, unsigned int v, size_t n, CUstream) { return cuMemsetD32_v2(p, v, n); }

// ------------------------------------------------------------------ modules
static void jit_log(unsigned n, int* opts, void** vals, int bufopt, int sizeopt, const std::string& msg) {
  if (!opts || !vals) return;
  char* buf = nullptr;
  int sizeidx = -1;
  size_t size = 0;
  for (unsigned i = 0; i < n; i++) {
    if (opts[i] == bufopt) buf = (char*)vals[i];
    if (opts[i] == sizeopt) { sizeidx = (int)i; size = (size_t)(uintptr_t)vals[i]; }
  }
  if (!buf || sizeidx < 0 || size == 0) return;
  size_t m = std::min(size - 1, msg.size());
  memcpy(buf, msg.data(), m);
  buf[m] = 0;
  vals[sizeidx] = (void*)(uintptr_t)(m + 1);
}

API CUresult cuModuleLoadDataEx(CUmodule* mod, const void* image, unsigned int n, int* opts, void** vals) {
  if (CUresult r = need_ctx()) return r;
  if (!mod || !image) return CUDA_ERROR_INVALID_VALUE;
  const char* text = (const char*)image;
  std::string s(text);
  auto has_directive = [&](const char* d) {
    size_t pos = 0;
    while ((pos = s.find(d, pos)) != std::string::npos) {
      if (pos == 0 || s[pos - 1] == '\n' || s[pos - 1] == ' ' || s[pos - 1] == '\t') return true;
      pos++;
    }
    return false;
  };
  if (!has_directive(".version") || !has_directive(".target")) {
    std::string msg = "ptxas fatal   : mtbert host emulator: image is not PTX text (no .version/.target directive)";
    jit_log(n, opts, vals, 5, 6, msg);
    set_err(msg);
    return CUDA_ERROR_INVALID_PTX;
  }
  ModObj* m = new ModObj();
  size_t pos = 0;
  while ((pos = s.find(".entry", pos)) != std::string::npos) {
    pos += 6;
    if (pos >= s.size() || (s[pos] != ' ' && s[pos] != '\t')) continue;
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t')) pos++;
    size_t b = pos;
    while (pos < s.size() && (isalnum((unsigned char)s[pos]) || s[pos] == '_' || s[pos] == '$')) pos++;
    if (pos > b) m->entries.push_back(s.substr(b, pos - b));
  }
  std::string info = "mtbert host emulator: module with " + std::to_string(m->entries.size()) + " entries";
  for (auto& e : m->entries)
    if (!registry().count(e)) { info += "; warning: no host kernel for entry " + e; }
  jit_log(n, opts, vals, 3, 4, info);
  *mod = (CUmodule)m;
  return CUDA_SUCCESS;
}
API CUresult cuModuleUnload(CUmodule mod) {
  if (CUresult r = need_ctx()) return r;
  if (!mod) return CUDA_ERROR_INVALID_HANDLE;
  ModObj* m = (ModObj*)mod;
  for (auto& kv : m->funcs) delete kv.second;
  delete m;
  return CUDA_SUCCESS;
}
API CUresult cuModuleGetFunction(CUfunction* f, CUmodule mod, const char* name) {
  if (CUresult r = need_ctx()) return r;
  if (!f || !name) return CUDA_ERROR_INVALID_VALUE;
  if (!mod) return CUDA_ERROR_INVALID_HANDLE;
  ModObj* m = (ModObj*)mod;
  auto it = m->funcs.find(name);
  if (it != m->funcs.end()) { *f = (CUfunction)it->second; return CUDA_SUCCESS; }
  bool declared = false;
  for (auto& e : m->entries) if (e == name) declared = true;
  if (!declared) { set_err(std::string("cuModuleGetFunction: module has no entry ") + name); return CUDA_ERROR_NOT_FOUND; }
  auto rit = registry().find(name);
  if (rit == registry().end()) { set_err(std::string("cuModuleGetFunction: no host kernel ") + name); return CUDA_ERROR_NOT_FOUND; }
  FuncObj* fo = new FuncObj{&rit->second, kMaxDynDefault, -1};
  m->funcs[name] = fo;
  *f = (CUfunction)fo;
  return CUDA_SUCCESS;
}
API CUresult cuFuncSetAttribute(CUfunction f, int attrib, int value) {
  if (CUresult r = need_ctx()) return r;
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  FuncObj* fo = (FuncObj*)f;
  switch (attrib) {
    case 8:  // MAX_DYNAMIC_SHARED_SIZE_BYTES
      if (value < 0 || value > kMaxDynOptin) return CUDA_ERROR_INVALID_VALUE;
      fo->max_dyn = value;
      return CUDA_SUCCESS;
    case 9:  // PREFERRED_SHARED_MEMORY_CARVEOUT
      if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
      fo->carveout = value;
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}
API CUresult cuFuncGetAttribute(int* pi, int attrib, CUfunction f) {
  if (CUresult r = need_ctx()) return r;
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  FuncObj* fo = (FuncObj*)f;
  switch (attrib) {
    case 0: *pi = 1024; break;  // MAX_THREADS_PER_BLOCK
    case 1: *pi = 0; break;     // SHARED_SIZE_BYTES (static; unknown on the host)
    case 2: *pi = 0; break;     // CONST_SIZE_BYTES
    case 3: *pi = 0; break;     // LOCAL_SIZE_BYTES
    case 4: *pi = 32; break;    // NUM_REGS
    case 5: *pi = 80; break;    // PTX_VERSION
    case 6: *pi = 80; break;    // BINARY_VERSION
    case 7: *pi = 0; break;     // CACHE_MODE_CA
    case 8: *pi = fo->max_dyn; break;
    case 9: *pi = fo->carveout; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned smem, CUstream, void** params, void** extra) {
  if (CUresult r = need_ctx()) return r;
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  FuncObj* fo = (FuncObj*)f;
  char buf[256];
  if (gx == 0 || gy == 0 || gz == 0 || gx > 2147483647u || gy > 65535 || gz > 65535 || bx == 0 || by == 0 || bz == 0 ||
      bx > 1024 || by > 1024 || bz > 64 || (unsigned long long)bx * by * bz > 1024) {
    snprintf(buf, sizeof buf, "cuLaunchKernel %s: invalid grid (%u,%u,%u) or block (%u,%u,%u)", fo->k->name.c_str(), gx, gy, gz, bx, by, bz);
    set_err(buf);
    return CUDA_ERROR_INVALID_VALUE;
  }
  if ((int)smem > fo->max_dyn || smem > (unsigned)kMaxDynOptin) {
    snprintf(buf, sizeof buf, "cuLaunchKernel %s: %u bytes of dynamic shared memory above the function's limit %d",
             fo->k->name.c_str(), smem, fo->max_dyn);
    set_err(buf);
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (extra) { set_err("cuLaunchKernel: `extra` is not supported by the emulator"); return CUDA_ERROR_NOT_SUPPORTED; }
  if (fo->k->nparams > 0 && !params) { set_err("cuLaunchKernel: kernelParams is NULL"); return CUDA_ERROR_INVALID_VALUE; }
  for (int i = 0; i < fo->k->nparams; i++)
    if (!params[i]) { set_err("cuLaunchKernel: kernelParams[i] is NULL"); return CUDA_ERROR_INVALID_VALUE; }
  std::lock_guard<std::mutex> g(launch_mu);
  Launch L;
  L.k = fo->k;
  L.params = params;
  L.grid = {gx, gy, gz};
  L.block = {bx, by, bz};
  L.dyn = smem;
  L.nblocks = (long long)gx * gy * gz;
  pool().run(&L);
  if (L.failed.load()) {
    set_err(L.err);
    fprintf(stderr, "mtcuda_emu: %s\n", L.err.c_str());
    return CUDA_ERROR_LAUNCH_FAILED;
  }
  return CUDA_SUCCESS;
}

namespace {
struct ErrName { int code; const char* name; const char* desc; };
const ErrName kErrs[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {4, "CUDA_ERROR_DEINITIALIZED", "driver shutting down"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {600, "CUDA_ERROR_NOT_READY", "device not ready"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch"},
    {715, "CUDA_ERROR_ILLEGAL_INSTRUCTION", "an illegal instruction was encountered"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {801, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {999, "CUDA_ERROR_UNKNOWN", "unknown error"},
};
}  // namespace
API CUresult cuGetErrorName(CUresult e, const char** s) {
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  for (auto& x : kErrs) if (x.code == e) { *s = x.name; return CUDA_SUCCESS; }
  *s = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}
API CUresult cuGetErrorString(CUresult e, const char** s) {
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  for (auto& x : kErrs) if (x.code == e) { *s = x.desc; return CUDA_SUCCESS; }
  *s = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}
