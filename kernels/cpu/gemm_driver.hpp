// The blocked GEMM driver, instantiated once per instruction set by gemm_scalar.cpp, gemm_avx2.cpp
// and gemm_avx512.cpp with that set's micro-kernel and conversions.
//
// Everything here has internal linkage (anonymous namespace) and calls no inline function of
// another header that could be emitted out of line: each ISA's translation unit is compiled with its
// own -m flags, and a shared out-of-line copy (a COMDAT picked by the linker) compiled for AVX-512
// would crash an AVX2-only CPU running the "AVX2" kernel. For the same reason no std:: templates.
//
// Algorithm (Goto / BLIS, row-major C), for one tile of C by one thread:
//   for jc over the tile's columns in steps of NC, for pc over K in steps of KC:
//     pack op(B)[pc:pc+KC, jc:jc+NC] into NR-wide slivers (k-major);
//     for ic over the tile's rows in steps of MC:
//       pack op(A)[ic:ic+MC, pc:pc+KC] into MR-tall slivers (k-major);
//       for each A sliver (kept in L1), for each B sliver (streamed from L2):
//         the MR x NR micro-kernel: acc = sum_k a[k][r] b[k][j] in registers, then
//         C = alpha acc + beta' C (beta' = beta on the first K block, 1 after; 0 never reads C).
//   f32 C accumulates in place; f16/bf16 C accumulates in an f32 workspace and is converted, with
//   beta C, bias and GELU, after the last K block (the finish pass, on a block still in cache).
// Threads split C into tiles (see run()) and never wait for each other inside a call. K = 0 gives
// epilogue(beta C). Up to kSmallM rows (decode-like) skip packing: see small_m(). Few rows with f32
// [k, n] B read B in place. A kernel may pack bf16 pairs instead of f32 (kPairs, AVX512_BF16).
#pragma once

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <new>

#include "dsabi.h"
#include "op/cpu.hpp"
#include "op_gemm.h"

namespace {

inline int64_t g_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t g_min(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t g_round_up(int64_t a, int64_t b) { return g_cdiv(a, b) * b; }

inline float g_bf16_to_f32(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline uint16_t g_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

// GPT-2's GELU: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
inline float g_gelu_tanh(float x) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

inline int64_t g_dtype_size(int32_t dt) { return dt == DS_DTYPE_F32 ? 4 : 2; }

// A 64-byte aligned scratch area per calling thread, grown on demand and kept (packing buffers of
// the next call). Allocated before the parallel region: nothing inside it can throw.
struct GemmScratch {
    float* p = nullptr;
    size_t cap = 0;
    GemmScratch() = default;
    GemmScratch(const GemmScratch&) = delete;
    GemmScratch& operator=(const GemmScratch&) = delete;
    ~GemmScratch() { free(p); }
    float* get(size_t floats) {
        if (floats > cap) {
            free(p);
            p = nullptr;
            cap = 0;
            size_t bytes = (floats * sizeof(float) + 63) & ~static_cast<size_t>(63);
            p = static_cast<float*>(aligned_alloc(64, bytes));
            if (!p) throw std::bad_alloc();
            cap = floats;
        }
        return p;
    }
};

// K supplies: MR, NR, KC, MC, NC (MC a multiple of MR, NC of NR);
//   micro(mr, kc, a, b, ldb, c, ldc, alpha, beta): c[mr x NR] = alpha a^T b + beta c for the first
//   mr <= MR rows of an A sliver (beta 0: c not read), B row k at b + k ldb;
//   to_f32(src, dtype, n, dst): convert n contiguous elements; h2f / f2h: one f16 element;
//   pack_bt(src, dtype, ldb, nr, kc, dst): dst[k * NR + j] = src[j * ldb + k] for j < nr, 0 for
//   nr <= j < NR (B given as [n, k], the layout of a torch Linear weight);
//   pack_at(src, dtype, lda, mr, kc, dst): dst[k * MR + r] = src[r * lda + k] for r < mr, 0 above;
//   kPairs: false, or true with pack_a_pairs / pack_b_pairs packing slivers in the kernel's own format
//   (bf16 pairs along K, at most the f32 sliver's size) instead of f32.
template <class K>
struct GemmDriver {
    static constexpr int MR = K::MR, NR = K::NR;

    static float load1(const void* p, int32_t dt, int64_t i) {
        switch (dt) {
            case DS_DTYPE_F16: return K::h2f(static_cast<const uint16_t*>(p)[i]);
            case DS_DTYPE_BF16: return g_bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
            default: return static_cast<const float*>(p)[i];
        }
    }

    static void store1(void* p, int32_t dt, int64_t i, float v) {
        switch (dt) {
            case DS_DTYPE_F16: static_cast<uint16_t*>(p)[i] = K::f2h(v); break;
            case DS_DTYPE_BF16: static_cast<uint16_t*>(p)[i] = g_f32_to_bf16(v); break;
            default: static_cast<float*>(p)[i] = v; break;
        }
    }

    static const void* at(const void* base, int32_t dt, int64_t elem) {
        return static_cast<const char*>(base) + elem * g_dtype_size(dt);
    }

    // One NR-wide sliver of op(B): rows pc..pc+kc, columns j0..j0+nr (nr <= NR, zero padded).
    static void pack_b(const ds_op_gemm_args_t& g, const void* B, int64_t pc, int64_t kc, int64_t j0, int64_t nr,
                       float* dst) {
        if constexpr (K::kPairs) {  // the kernel's own packed format (bf16 pairs)
            K::pack_b_pairs(g, B, pc, kc, j0, nr, dst);
            return;
        }
        const int32_t dt = g.b_dtype;
        if (!g.trans_b) {  // B is [k, n]: each k row of the sliver is contiguous
            for (int64_t k = 0; k < kc; ++k) {
                float* d = dst + k * NR;
                K::to_f32(at(B, dt, (pc + k) * g.ldb + j0), dt, nr, d);
                for (int64_t j = nr; j < NR; ++j) d[j] = 0.0f;
            }
        } else {  // B is [n, k]: a transposition (the ISA's SIMD one, or pack_bt_generic)
            K::pack_bt(at(B, dt, j0 * g.ldb + pc), dt, g.ldb, nr, kc, dst);
        }
    }

    // Portable transposing pack of an [nr, kc] block of B (row stride ldb) into dst[k * NR + j],
    // 8 K columns at a time through a small block that stays in L1.
    static void pack_bt_generic(const void* src, int32_t dt, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
        float blk[NR][8];
        for (int64_t kb = 0; kb < kc; kb += 8) {
            const int64_t w = g_min(8, kc - kb);
            for (int64_t j = 0; j < nr; ++j) K::to_f32(at(src, dt, j * ldb + kb), dt, w, blk[j]);
            for (int64_t kk = 0; kk < w; ++kk) {
                float* d = dst + (kb + kk) * NR;
                for (int64_t j = 0; j < nr; ++j) d[j] = blk[j][kk];
                for (int64_t j = nr; j < NR; ++j) d[j] = 0.0f;
            }
        }
    }

    // Portable transposing pack of an [mr, kc] block of A (row stride lda) into dst[k * MR + r].
    static void pack_at_generic(const void* src, int32_t dt, int64_t lda, int64_t mr, int64_t kc, float* dst) {
        float blk[MR][8];
        for (int64_t kb = 0; kb < kc; kb += 8) {
            const int64_t w = g_min(8, kc - kb);
            for (int64_t r = 0; r < mr; ++r) K::to_f32(at(src, dt, r * lda + kb), dt, w, blk[r]);
            for (int64_t kk = 0; kk < w; ++kk) {
                float* d = dst + (kb + kk) * MR;
                for (int64_t r = 0; r < mr; ++r) d[r] = blk[r][kk];
                for (int64_t r = mr; r < MR; ++r) d[r] = 0.0f;
            }
        }
    }

    // One MR-tall sliver of op(A): rows i0..i0+mr (mr <= MR, zero padded), columns pc..pc+kc.
    static void pack_a(const ds_op_gemm_args_t& g, const void* A, int64_t i0, int64_t mr, int64_t pc, int64_t kc,
                       float* dst) {
        if constexpr (K::kPairs) {
            K::pack_a_pairs(g, A, i0, mr, pc, kc, dst);
            return;
        }
        const int32_t dt = g.a_dtype;
        if (!g.trans_a) {  // A is [m, k]: a transposition (the ISA's SIMD one, or pack_at_generic)
            K::pack_at(at(A, dt, i0 * g.lda + pc), dt, g.lda, mr, kc, dst);
        } else {  // A is [k, m]: each k row of the sliver is contiguous
            for (int64_t k = 0; k < kc; ++k) {
                float* d = dst + k * MR;
                K::to_f32(at(A, dt, (pc + k) * g.lda + i0), dt, mr, d);
                for (int64_t r = mr; r < MR; ++r) d[r] = 0.0f;
            }
        }
    }

    // Epilogue on rows [i0, i1) x columns [j0, j1) after the last K block. f32 C holds
    // alpha acc + beta C already; otherwise ws (row stride ldw, origin row iw, column jw) holds alpha acc.
    static void finish(const ds_op_gemm_args_t& g, void* C, const float* ws, int64_t ldw, int64_t iw, int64_t jw,
                       int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
        const int32_t cdt = g.c_dtype;
        const bool bias = g.epilogue == DS_EPILOGUE_BIAS || g.epilogue == DS_EPILOGUE_BIAS_GELU;
        const bool gelu = g.epilogue == DS_EPILOGUE_GELU || g.epilogue == DS_EPILOGUE_BIAS_GELU;
        const int64_t ec = g_dtype_size(cdt);
        // A row segment at a time, one simple loop per step (each vectorises; a dtype switch per element
        // would not): v = acc (+ beta C) (+ bias), GELU, converted store.
        alignas(64) float v[256], t[256];
        for (int64_t i = i0; i < i1; ++i) {
            for (int64_t jb = j0; jb < j1; jb += 256) {
                const int64_t n = g_min(256, j1 - jb);
                const int64_t ci = i * g.ldc + jb;
                if (cdt == DS_DTYPE_F32) {
                    const float* c = static_cast<const float*>(C) + ci;
                    for (int64_t j = 0; j < n; ++j) v[j] = c[j];
                } else {
                    const float* w = ws + (i - iw) * ldw + (jb - jw);
                    for (int64_t j = 0; j < n; ++j) v[j] = w[j];
                    if (g.beta != 0.0f) {
                        K::to_f32(static_cast<const char*>(C) + ci * ec, cdt, n, t);
                        for (int64_t j = 0; j < n; ++j) v[j] += g.beta * t[j];
                    }
                }
                if (bias) {
                    K::to_f32(static_cast<const char*>(g.bias) + jb * ec, cdt, n, t);
                    for (int64_t j = 0; j < n; ++j) v[j] += t[j];
                }
                if (gelu)
                    for (int64_t j = 0; j < n; ++j) v[j] = g_gelu_tanh(v[j]);
                void* out = static_cast<char*>(C) + ci * ec;
                if (cdt == DS_DTYPE_F32) {
                    float* o = static_cast<float*>(out);
                    for (int64_t j = 0; j < n; ++j) o[j] = v[j];
                } else if (cdt == DS_DTYPE_BF16) {
                    uint16_t* o = static_cast<uint16_t*>(out);
                    for (int64_t j = 0; j < n; ++j) {  // round to nearest even, NaN kept quiet; branch-free
                        uint32_t u;
                        memcpy(&u, &v[j], 4);
                        const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
                        const uint32_t q = (u >> 16) | 0x40u;
                        o[j] = static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? q : r);
                    }
                } else {
                    uint16_t* o = static_cast<uint16_t*>(out);
                    for (int64_t j = 0; j < n; ++j) o[j] = K::f2h(v[j]);
                }
            }
        }
    }

    // K = 0: C = epilogue(beta C).
    static void scale_only(const ds_op_gemm_args_t& g) {
        for (int64_t b = 0; b < g.batch; ++b) {
            void* C = static_cast<char*>(g.c) + b * g.stride_c * g_dtype_size(g.c_dtype);
            const bool bias = g.epilogue == DS_EPILOGUE_BIAS || g.epilogue == DS_EPILOGUE_BIAS_GELU;
            const bool gelu = g.epilogue == DS_EPILOGUE_GELU || g.epilogue == DS_EPILOGUE_BIAS_GELU;
            for (int64_t i = 0; i < g.m; ++i)
                for (int64_t j = 0; j < g.n; ++j) {
                    const int64_t ci = i * g.ldc + j;
                    float v = g.beta != 0.0f ? g.beta * load1(C, g.c_dtype, ci) : 0.0f;
                    if (bias) v += load1(g.bias, g.c_dtype, j);
                    if (gelu) v = g_gelu_tanh(v);
                    store1(C, g.c_dtype, ci, v);
                }
        }
    }

    // Per-thread buffers (floats): packed B panel, packed A block, f32 C workspace.
    struct Buffers {
        float* bp;
        float* ap;
        float* ws;
    };

    // The whole Goto loop nest over rows [i0, i1) x columns [j0, j1) of batch entry b, by one thread.
    static void tile(const ds_op_gemm_args_t& g, int64_t b, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                     const Buffers& buf) {
        const int64_t esa = g_dtype_size(g.a_dtype), esb = g_dtype_size(g.b_dtype), esc = g_dtype_size(g.c_dtype);
        const void* A = static_cast<const char*>(g.a) + b * g.stride_a * esa;
        const void* B = static_cast<const char*>(g.b) + b * g.stride_b * esb;
        void* C = static_cast<char*>(g.c) + b * g.stride_c * esc;
        const bool c_f32 = g.c_dtype == DS_DTYPE_F32;
        const bool need_finish = !c_f32 || g.epilogue != DS_EPILOGUE_NONE;
        const int64_t KC = K::KC, MC = K::MC, NC = K::NC;
        // Few rows: each B element is used only a few times, so packing B would cost as much as the
        // multiply; f32 [k, n] B is then read in place (full-width slivers; the last one is packed).
        const bool direct_b = g.b_dtype == DS_DTYPE_F32 && !g.trans_b && i1 - i0 <= 4 * MR;
        for (int64_t jc = j0; jc < j1; jc += NC) {
            const int64_t nc = g_min(NC, j1 - jc);
            const int64_t nslv = g_cdiv(nc, NR);
            for (int64_t pc = 0; pc < g.k; pc += KC) {
                const int64_t kc = g_min(KC, g.k - pc);
                const bool first = pc == 0, last = pc + kc >= g.k;
                for (int64_t s = 0; s < nslv; ++s)
                    if (!direct_b || nc - s * NR < NR)
                        pack_b(g, B, pc, kc, jc + s * NR, g_min(NR, nc - s * NR), buf.bp + s * kc * NR);
                for (int64_t ic = i0; ic < i1; ic += MC) {
                    const int64_t mc = g_min(MC, i1 - ic);
                    for (int64_t ir = 0; ir < mc; ir += MR)
                        pack_a(g, A, ic + ir, g_min(MR, mc - ir), pc, kc, buf.ap + ir * kc);
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        const int mr = static_cast<int>(g_min(MR, mc - ir));
                        const float* a = buf.ap + ir * kc;
                        for (int64_t s = 0; s < nslv; ++s) {
                            const int64_t jj = jc + s * NR, nr = g_min(NR, nc - s * NR);
                            float* cp;
                            int64_t ldcp;
                            float beta;
                            if (c_f32) {
                                cp = static_cast<float*>(C) + (ic + ir) * g.ldc + jj;
                                ldcp = g.ldc;
                                beta = first ? g.beta : 1.0f;
                            } else {  // rows relative to i0, columns relative to jc
                                cp = buf.ws + (ic + ir - i0) * NC + (jj - jc);
                                ldcp = NC;
                                beta = first ? 0.0f : 1.0f;
                            }
                            const float* bs = buf.bp + s * kc * NR;
                            int64_t ldbk = NR;
                            if (direct_b && nr == NR) {
                                bs = static_cast<const float*>(B) + pc * g.ldb + jj;
                                ldbk = g.ldb;
                            }
                            if (nr == NR) {
                                K::micro(mr, kc, a, bs, ldbk, cp, ldcp, g.alpha, beta);
                            } else {
                                alignas(64) float t[MR * NR];
                                K::micro(mr, kc, a, bs, ldbk, t, NR, g.alpha, 0.0f);
                                for (int64_t r = 0; r < mr; ++r)
                                    for (int64_t j = 0; j < nr; ++j) {
                                        float* d = cp + r * ldcp + j;
                                        *d = beta != 0.0f ? t[r * NR + j] + beta * *d : t[r * NR + j];
                                    }
                            }
                        }
                    }
                    if (last && need_finish)
                        finish(g, C, buf.ws, NC, i0, jc, ic, ic + mc, jc, jc + nc);
                }
            }
        }
    }

    // ---- small M (decode-like: M <= kSmallM): no packing, B streamed once ----
    // op(A) is converted to f32 rows once; threads split the columns of C. B [n, k] (trans_b): one dot
    // product of K per output, 16 partial sums; B [k, n]: rows of B scaled and added into an M x CW
    // accumulator (CW columns per work item).
    static constexpr int64_t kSmallM = 6;
    static constexpr int64_t kCW = 256;

    static float dot(const float* __restrict x, const float* __restrict w, int64_t n) {
        float acc[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        int64_t k = 0;
        for (; k + 16 <= n; k += 16)
            for (int j = 0; j < 16; ++j) acc[j] += x[k + j] * w[k + j];
        for (; k < n; ++k) acc[k & 15] += x[k] * w[k];
        for (int j = 0; j < 8; ++j) acc[j] += acc[j + 8];
        for (int j = 0; j < 4; ++j) acc[j] += acc[j + 4];
        return (acc[0] + acc[2]) + (acc[1] + acc[3]);
    }

    static void store_out(const ds_op_gemm_args_t& g, void* C, int64_t i, int64_t j, float acc) {
        const int64_t ci = i * g.ldc + j;
        float v = g.alpha * acc;
        if (g.beta != 0.0f) v += g.beta * load1(C, g.c_dtype, ci);
        if (g.epilogue == DS_EPILOGUE_BIAS || g.epilogue == DS_EPILOGUE_BIAS_GELU) v += load1(g.bias, g.c_dtype, j);
        if (g.epilogue == DS_EPILOGUE_GELU || g.epilogue == DS_EPILOGUE_BIAS_GELU) v = g_gelu_tanh(v);
        store1(C, g.c_dtype, ci, v);
    }

    static void small_m(const ds_op_gemm_args_t& g, int T) {
        const int64_t M = g.m, N = g.n, Kd = g.k;
        const int64_t esa = g_dtype_size(g.a_dtype), esb = g_dtype_size(g.b_dtype), esc = g_dtype_size(g.c_dtype);
        const int64_t chunks = g.trans_b ? g_cdiv(N, 64) : g_cdiv(N, kCW);
        const int64_t items = g.batch * chunks;
        const double bytes = static_cast<double>(N) * Kd * g.batch;
        int nthreads = static_cast<int>(g_min(T, items));
        if (bytes < 6.0e4) nthreads = 1;
        // per thread: one converted row of B (trans_b) or a B row chunk, and the accumulators
        const int64_t per_thread = g_round_up(g.trans_b ? Kd : kCW, 16) + kSmallM * kCW;
        const int64_t a_size = g_round_up(M * Kd, 16);
        static thread_local GemmScratch scratch;
        float* base = scratch.get(static_cast<size_t>(g.batch * a_size + nthreads * per_thread));
        // op(A) of every batch entry as f32 rows
        for (int64_t b = 0; b < g.batch; ++b) {
            const void* A = static_cast<const char*>(g.a) + b * g.stride_a * esa;
            float* af = base + b * a_size;
            for (int64_t i = 0; i < M; ++i) {
                if (!g.trans_a) {
                    K::to_f32(at(A, g.a_dtype, i * g.lda), g.a_dtype, Kd, af + i * Kd);
                } else {
                    for (int64_t k = 0; k < Kd; ++k) af[i * Kd + k] = load1(A, g.a_dtype, k * g.lda + i);
                }
            }
        }
        float* thread_base = base + g.batch * a_size;
#pragma omp parallel for num_threads(nthreads) schedule(static)
        for (int64_t it = 0; it < items; ++it) {
            float* buf = thread_base + omp_get_thread_num() * per_thread;
            const int64_t b = it / chunks, c = it % chunks;
            const float* af = base + b * a_size;
            const void* B = static_cast<const char*>(g.b) + b * g.stride_b * esb;
            void* C = static_cast<char*>(g.c) + b * g.stride_c * esc;
            if (g.trans_b) {
                for (int64_t j = c * 64; j < g_min(N, (c + 1) * 64); ++j) {
                    const float* w;
                    if (g.b_dtype == DS_DTYPE_F32) {
                        w = static_cast<const float*>(B) + j * g.ldb;
                    } else {
                        K::to_f32(at(B, g.b_dtype, j * g.ldb), g.b_dtype, Kd, buf);
                        w = buf;
                    }
                    for (int64_t i = 0; i < M; ++i) store_out(g, C, i, j, dot(af + i * Kd, w, Kd));
                }
            } else {
                const int64_t j0 = c * kCW, nj = g_min(kCW, N - j0);
                float* acc = buf + g_round_up(kCW, 16);
                for (int64_t x = 0; x < M * kCW; ++x) acc[x] = 0.0f;
                for (int64_t k = 0; k < Kd; ++k) {
                    const float* brow;
                    if (g.b_dtype == DS_DTYPE_F32) {
                        brow = static_cast<const float*>(B) + k * g.ldb + j0;
                    } else {
                        K::to_f32(at(B, g.b_dtype, k * g.ldb + j0), g.b_dtype, nj, buf);
                        brow = buf;
                    }
                    for (int64_t i = 0; i < M; ++i) {
                        const float a = af[i * Kd + k];
                        float* __restrict ar = acc + i * kCW;
                        for (int64_t j = 0; j < nj; ++j) ar[j] += a * brow[j];
                    }
                }
                for (int64_t i = 0; i < M; ++i)
                    for (int64_t j = 0; j < nj; ++j) store_out(g, C, i, j0 + j, acc[i * kCW + j]);
            }
        }
    }

    // Threads: each takes whole tiles of C (a tm x tn grid per batch entry, or whole entries when the
    // batch has at least one per thread) and runs the full loop nest on them with its own packed
    // panels: no barrier inside a call (on a shared, oversubscribed machine a barrier costs a
    // scheduler time slice), at the price of packing A tn times and B tm times, a small fraction of
    // the flops for the tm x tn chosen below.
    static void run(const ds_op_gemm_args_t& args) {
        ds_op_gemm_args_t g = args;
        if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
        // A batch over a shared B with untransposed, packed A and C is one tall GEMM.
        if (g.batch > 1 && g.stride_b == 0 && !g.trans_a && g.lda == g.k && g.stride_a == g.m * g.k &&
            g.ldc == g.n && g.stride_c == g.m * g.n) {
            g.m *= g.batch;
            g.batch = 1;
        }
        if (g.k <= 0) {
            scale_only(g);
            return;
        }
        int T = ds::op::threads();
        if (g.m <= kSmallM) {
            small_m(g, T);
            return;
        }
        const double flops = 2.0 * static_cast<double>(g.m) * g.n * g.k * g.batch;
        if (flops < 4.0e5) T = 1;  // below ~60^3: a parallel region costs more than it saves
        const int64_t mblocks = g_cdiv(g.m, MR), nblocks = g_cdiv(g.n, NR);
        int64_t tm = 1, tn = 1;
        if (g.batch < T) {
            // Per thread: compute (m/tm)(n/tn)k / 16 FMA per cycle + packing (m/tm + n/tn) k / ~2 per
            // cycle. Every (tm, tn) with tm tn <= T that has work for each thread is a candidate.
            const int64_t per_entry = T / g.batch;
            double best = 1e300;
            for (int64_t a = 1; a <= per_entry; ++a) {
                const int64_t b = per_entry / a;
                if (a > mblocks || b > nblocks) continue;
                const double mt = static_cast<double>(g_cdiv(mblocks, a) * MR), nt = static_cast<double>(g_cdiv(nblocks, b) * NR);
                const double cost = mt * nt / 16.0 + (mt + nt) / 2.0;
                if (cost < best - 1e-9) {
                    best = cost;
                    tm = a;
                    tn = b;
                }
            }
        }
        const int64_t tiles = tm * tn;
        const int64_t items = g.batch * tiles;
        const int nthreads = static_cast<int>(g_min(T, items));
        const int64_t m_tile = g_cdiv(mblocks, tm) * MR;  // rows of one tile at most (a multiple of MR)
        const int64_t kc_max = g_min(K::KC, g.k);
        const int64_t bp_size = kc_max * K::NC;
        const int64_t ap_size = K::MC * kc_max;
        const int64_t ws_size = g.c_dtype == DS_DTYPE_F32 ? 0 : m_tile * K::NC;
        const int64_t stride = g_round_up(bp_size + ap_size + ws_size, 16);  // 64-byte aligned
        static thread_local GemmScratch scratch;
        float* base = scratch.get(static_cast<size_t>(nthreads * stride));
        const int64_t mb_per = g_cdiv(mblocks, tm), nb_per = g_cdiv(nblocks, tn);

#pragma omp parallel num_threads(nthreads)
        {
            const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
            float* mine = base + tid * stride;
            const Buffers buf{mine, mine + bp_size, mine + bp_size + ap_size};
            for (int64_t it = tid; it < items; it += nt) {
                const int64_t b = it / tiles, t = it % tiles;
                const int64_t ti = t / tn, tj = t % tn;
                const int64_t i0 = g_min(g.m, ti * mb_per * MR), i1 = g_min(g.m, (ti + 1) * mb_per * MR);
                const int64_t j0 = g_min(g.n, tj * nb_per * NR), j1 = g_min(g.n, (tj + 1) * nb_per * NR);
                if (i0 < i1 && j0 < j1) tile(g, b, i0, i1, j0, j1, buf);
            }
        }
    }
};

}  // namespace
