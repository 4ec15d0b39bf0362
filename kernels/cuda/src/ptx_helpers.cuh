// ptx_helpers.cuh: every inline-PTX instruction mtbert uses, each behind a small helper with a
// host twin (emulator build) that follows the PTX ISA's documented fragment layouts.
//
// Layouts (PTX ISA, "Matrix fragments for mma.m16n8k16 with floating point type" and
// "Warp-level matrix load instruction: ldmatrix"), lane = 0..31, g = lane>>2, t = lane&3:
//  ldmatrix .x4: lanes 8j..8j+7 give the 8 row addresses (16 bytes each) of matrix j;
//    lane receives r[j] = { M_j[g][2t] (bits 0-15), M_j[g][2t+1] (bits 16-31) };
//    with .trans: r[j] = { M_j[2t][g], M_j[2t+1][g] }.
//  mma.m16n8k16.row.col bf16 -> f32:
//    A (16x16, row): a0 = A[g][2t..2t+1], a1 = A[g+8][2t..2t+1], a2 = A[g][2t+8..2t+9], a3 = A[g+8][2t+8..2t+9]
//    B (16x8, "col"): b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]    (lower k in bits 0-15)
//    C/D (16x8): c0,c1 = C[g][2t], C[g][2t+1]; c2,c3 = C[g+8][2t], C[g+8][2t+1]
#pragma once
#include "mt_common.cuh"

#if defined(MT_DEVICE)

MT_FI unsigned mt_smem_addr(const void* p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
MT_FI void mt_ldmatrix_x4(unsigned r[4], const void* row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(mt_smem_addr(row_ptr))
               : "memory");
}
MT_FI void mt_ldmatrix_x4_trans(unsigned r[4], const void* row_ptr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(mt_smem_addr(row_ptr))
               : "memory");
}
// d = a*b + c  (d may alias c)
MT_FI void mt_mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));
}
// 16-byte async copy global -> shared; bytes beyond src_bytes (0..16) are zero-filled.
// smem_dst and gmem_src must be 16-byte aligned.
MT_FI void mt_cp_async16(void* smem_dst, const void* gmem_src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(mt_smem_addr(smem_dst)), "l"(gmem_src),
               "r"(src_bytes)
               : "memory");
}
MT_FI void mt_cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
MT_FI void mt_cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

#else  // ---------------- host twins ----------------

extern "C" {
void mt_emu_cp_async(void* dst, const void* src, int src_bytes);
void mt_emu_cp_commit(void);
void mt_emu_cp_wait(int n);
}

static inline void mt_ldmatrix_x4_impl(unsigned r[4], const void* row_ptr, bool trans) {
  const void* const* rows = (const void* const*)mt_emu_warp_share(&row_ptr, (int)sizeof(void*));
  int lane = mt_emu_lane(), g = lane >> 2, t = lane & 3;
  for (int j = 0; j < 4; j++) {
    unsigned short lo, hi;
    if (!trans) {
      const unsigned short* row = (const unsigned short*)rows[8 * j + g];
      lo = row[2 * t];
      hi = row[2 * t + 1];
    } else {
      lo = ((const unsigned short*)rows[8 * j + 2 * t])[g];
      hi = ((const unsigned short*)rows[8 * j + 2 * t + 1])[g];
    }
    r[j] = (unsigned)lo | ((unsigned)hi << 16);
  }
}
static inline void mt_ldmatrix_x4(unsigned r[4], const void* p) { mt_ldmatrix_x4_impl(r, p, false); }
static inline void mt_ldmatrix_x4_trans(unsigned r[4], const void* p) { mt_ldmatrix_x4_impl(r, p, true); }

static inline void mt_mma_bf16_16816(float d[4], const unsigned a[4], const unsigned b[2], const float c[4]) {
  struct Frag { unsigned a[4], b[2]; } mine;
  for (int i = 0; i < 4; i++) mine.a[i] = a[i];
  mine.b[0] = b[0];
  mine.b[1] = b[1];
  const Frag* all = (const Frag*)mt_emu_warp_share(&mine, (int)sizeof(Frag));
  // Each lane needs rows g and g+8 of A and columns 2t, 2t+1 of B: gather just those.
  int lane = mt_emu_lane(), g = lane >> 2, t = lane & 3;
  auto lo = [](unsigned v) { return mt_bf2f((unsigned short)(v & 0xffff)); };
  auto hi = [](unsigned v) { return mt_bf2f((unsigned short)(v >> 16)); };
  float Ar[2][16], Bc[2][16];
  for (int u = 0; u < 4; u++) {
    const Frag& f = all[4 * g + u];  // lanes holding row g (a0, a2) and row g+8 (a1, a3)
    Ar[0][2 * u] = lo(f.a[0]); Ar[0][2 * u + 1] = hi(f.a[0]);
    Ar[1][2 * u] = lo(f.a[1]); Ar[1][2 * u + 1] = hi(f.a[1]);
    Ar[0][2 * u + 8] = lo(f.a[2]); Ar[0][2 * u + 9] = hi(f.a[2]);
    Ar[1][2 * u + 8] = lo(f.a[3]); Ar[1][2 * u + 9] = hi(f.a[3]);
  }
  for (int c = 0; c < 2; c++) {
    int n = 2 * t + c;
    for (int u = 0; u < 4; u++) {
      const Frag& f = all[4 * n + u];  // lanes with groupID n hold column n of B
      Bc[c][2 * u] = lo(f.b[0]); Bc[c][2 * u + 1] = hi(f.b[0]);
      Bc[c][2 * u + 8] = lo(f.b[1]); Bc[c][2 * u + 9] = hi(f.b[1]);
    }
  }
  float out[4];
  for (int i = 0; i < 4; i++) {
    float s = c[i];
    for (int k = 0; k < 16; k++) s += Ar[i >> 1][k] * Bc[i & 1][k];
    out[i] = s;
  }
  for (int i = 0; i < 4; i++) d[i] = out[i];
}
// cp.async on the host is deferred to the matching wait_group, so that a kernel that reads a
// stage before waiting for it sees stale (poisoned) shared memory here too.
static inline void mt_cp_async16(void* smem_dst, const void* gmem_src, int src_bytes) {
  mt_emu_cp_async(smem_dst, gmem_src, src_bytes);
}
static inline void mt_cp_async_commit() { mt_emu_cp_commit(); }
template <int N>
static inline void mt_cp_async_wait() { mt_emu_cp_wait(N); }

#endif
