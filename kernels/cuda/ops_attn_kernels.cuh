// Flash attention kernels (FlashAttention-2 structure) for sm_80+ tensor cores: mma.sync m16n8k16 with
// f32 accumulation, operands loaded with ldmatrix from XOR-swizzled shared memory filled by cp.async.
// Included by ops_attn.cu (launchers). The device primitives are isolated at the top so that a host
// emulator can provide them instead (DSATTN_EMULATE; not part of the build).
//
// Layouts (kernels/op_attn.h): q, o, dq [B, S, Hq, D]; k, v, dk, dv [B, S_kv, Hkv, D]; lse [B, Hq, S].
// Causal: query i sees key j iff j <= i + (S_kv - S).
//
// Forward, one CTA per (query block of BM = 16 * MT * NW rows, query head, batch), NW warps, each warp
// owning 16 * MT query rows (MT = 2 by default: two 16-row m-tiles, so that every K and V fragment loaded
// from shared memory feeds two mmas; MT = 1 with 8 warps is the alternative the launcher can select) for
// the whole loop:
//   Q block -> shared (cp.async); its A fragments are re-read with ldmatrix for every key tile;
//   for each key tile of BN keys (64; 128 for D = 64; double-buffered K/V tiles in shared memory,
//   cp.async prefetch of the next tile while this one is used), in sub-tiles of SUB keys (32 for D = 128
//   so that S and the O accumulators fit in the registers without spilling; else BN):
//     S = Q K^T (mma), scaled into log2 units, masked (-inf) where needed,
//     online softmax in registers (row max and sum per thread, quad shuffles), P = exp2(S - m), where
//     m only moves (and O and l are rescaled) when some row of the warp grew by more than 8 (lazy
//     rescaling: P stays below 2^8),
//     O += P V with P converted in registers from the accumulator layout to A fragments;
//   O / l staged through shared memory and written with 16-byte stores; lse = (m + log2 l) * ln 2.
// Causal tile skipping: a query block only visits the key tiles its last row can see, and a warp skips
// the sub-tiles its last row cannot see; causal blocks are scheduled heaviest first across all heads.
//
// Backward, one CTA per (key tile of BN = 64 keys, kv head, batch), NW = 4 warps each owning 16 keys:
//   K, V tile -> shared once; for every query head of the kv head's group and every query block of BM =
//   64 rows that can see the tile (Q, dO, lse, Dsum prefetched double-buffered):
//     S^T = K Q^T, P^T = exp2(S^T * scale * log2e - lse * log2e)   (rows = keys, columns = queries)
//     dP^T = V dO^T, dS^T = P^T * (dP^T - Dsum)
//     dV += P^T dO, dK += dS^T Q              (accumulated in registers over the whole loop)
//     dS^T -> shared; dQ_block += dS K, added with f32 atomics into a [B, S, Hq, D] f32 workspace;
//   dK * scale and dV written at the end. A preprocessing kernel computes Dsum = rowsum(dO * O) and a
//   final kernel converts the dQ workspace (times scale) into dq.
#pragma once

#include <stdint.h>

#ifndef DSATTN_EMULATE
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#define DSATTN_DEV __device__ __forceinline__
#define DSATTN_SMEM(name) extern __shared__ __align__(128) unsigned char name[]

namespace dsattn {

DSATTN_DEV uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

// 16 bytes global -> shared, asynchronous; valid == false writes 16 zero bytes (src is not read).
DSATTN_DEV void cp_async16(void* dst, const void* src, bool valid) {
    const int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(n) : "memory");
}
DSATTN_DEV void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Wait until at most N of this thread's committed groups are still in flight.
template <int N>
DSATTN_DEV void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 b16 matrices; lane 8i + r gives the address of row r of matrix i; r[i] is matrix i's fragment
// (lane l: row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1). _t: transposed (lane l: rows 2 (l % 4) and
// 2 (l % 4) + 1 of column l / 4).
DSATTN_DEV void ldsm_x4(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p))
                 : "memory");
}
DSATTN_DEV void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p))
                 : "memory");
}

// d (16x8 f32) += a (16x16, row) * b (16x8, col).
template <typename T>
DSATTN_DEV void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
DSATTN_DEV void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
DSATTN_DEV void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> two 16-bit values in one register, lo in the low half (round to nearest even).
template <typename T>
DSATTN_DEV uint32_t pack2(float lo, float hi);
template <>
DSATTN_DEV uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}
template <>
DSATTN_DEV uint32_t pack2<__half>(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

template <typename T>
DSATTN_DEV float to_f32(T x);
template <>
DSATTN_DEV float to_f32<__nv_bfloat16>(__nv_bfloat16 x) {
    return __bfloat162float(x);
}
template <>
DSATTN_DEV float to_f32<__half>(__half x) {
    return __half2float(x);
}
// The two 16-bit values of a register (lo: the low half) as floats.
template <typename T>
DSATTN_DEV float2 unpack2(uint32_t v);
template <>
DSATTN_DEV float2 unpack2<__nv_bfloat16>(uint32_t v) {
    return make_float2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
}
template <>
DSATTN_DEV float2 unpack2<__half>(uint32_t v) {
    __half2 h;
    memcpy(&h, &v, 4);
    return __half22float2(h);
}
template <typename T>
DSATTN_DEV T from_f32(float x);
template <>
DSATTN_DEV __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}
template <>
DSATTN_DEV __half from_f32<__half>(float x) {
    return __float2half_rn(x);
}

// 2^x (MUFU; 2^-inf = 0).
DSATTN_DEV float exp2_approx(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

DSATTN_DEV float shfl_xor(float v, int mask) { return __shfl_xor_sync(0xffffffffu, v, mask); }

// Programmatic dependent launch (sm_90): a kernel launched with programmatic stream serialization may
// start while the kernel ahead of it in the stream still runs. grid_dep_wait blocks until that kernel
// has finished and its writes are visible; grid_dep_launch lets the next such kernel start before this
// one finishes. Both do nothing in a kernel launched the ordinary way, and below sm_90.
DSATTN_DEV void grid_dep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
DSATTN_DEV void grid_dep_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
DSATTN_DEV bool warp_any(bool v) { return __any_sync(0xffffffffu, v) != 0; }

// *p += a, p[1] += b (f32, relaxed; the dQ workspace).
DSATTN_DEV void atomic_add2(float* p, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2*>(p), make_float2(a, b));
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
#endif
}

DSATTN_DEV int lane_id() { return static_cast<int>(threadIdx.x) & 31; }
DSATTN_DEV int warp_id() { return static_cast<int>(threadIdx.x) >> 5; }

}  // namespace dsattn
#endif  // DSATTN_EMULATE

namespace dsattn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// Element offset of 16-byte chunk `ch` of row `r` in a shared tile whose rows hold `row_elems` 16-bit
// elements: chunks are XOR-swizzled with the row's low three bits, so the eight rows an ldmatrix reads at
// the same logical chunk fall into eight different bank groups.
DSATTN_DEV int swz(int r, int ch, int row_elems) { return r * row_elems + ((ch ^ (r & 7)) << 3); }

struct FwdParams {
    const void* q;
    const void* k;
    const void* v;
    void* o;
    float* lse;  // may be null
    int64_t S, Skv, off;  // off = Skv - S
    int Hq, Hkv, G;       // G = Hq / Hkv
    float scale_log2;     // scale * log2(e)
};

struct BwdParams {
    const void* q;
    const void* k;
    const void* v;
    const void* dout;
    const float* lse;
    const float* dsum;  // [B, Hq, S]
    float* dq_acc;      // [B, S, Hq, D] f32, zeroed
    void* dk;
    void* dv;
    int64_t S, Skv, off;
    int Hq, Hkv, G;
    float scale;
    float scale_log2;
};

// Copy a tile of `rows` rows x D 16-bit elements (rows row0.. of a [*, stride] global matrix whose row r
// starts at base + r * stride) into a swizzled shared tile; rows at or past `limit` are zero-filled.
template <int D, int NTHREADS, typename T>
DSATTN_DEV void load_tile(T* sdst, const T* base, int64_t stride, int64_t row0, int64_t limit, int rows, int tid) {
    constexpr int CH = D / 8;
    constexpr int RS = NTHREADS / CH;  // rows per pass: a thread keeps its chunk and (row & 7) over passes
    static_assert(NTHREADS % CH == 0 && RS % 8 == 0, "load_tile: thread layout");
    const int r0 = tid / CH, ch = tid % CH;
    T* d = sdst + swz(r0, ch, D);
    int64_t row = row0 + r0;
    const T* src = base + row * stride + ch * 8;
    const int64_t step = static_cast<int64_t>(RS) * stride;
    for (int r = r0; r < rows; r += RS) {
        const bool valid = row < limit;
        cp_async16(d, valid ? src : base, valid);
        d += RS * D;
        row += RS;
        src += step;
    }
}

// load_tile with the chunk loop of the backward (whose register allocation does better with it).
template <int D, int NTHREADS, typename T>
DSATTN_DEV void load_tile_b(T* sdst, const T* base, int64_t stride, int64_t row0, int64_t limit, int rows, int tid) {
    constexpr int CH = D / 8;
    for (int c = tid; c < rows * CH; c += NTHREADS) {
        const int r = c / CH, ch = c % CH;
        const int64_t row = row0 + r;
        const bool valid = row < limit;
        const T* src = base + (valid ? row : 0) * stride + ch * 8;
        cp_async16(sdst + swz(r, ch, D), src, valid);
    }
}

// ---- forward ---------------------------------------------------------------------------------------

template <int D, int NW, int MT_ = 2>
struct FwdCfg {
    static constexpr int MT = MT_;           // 16-row m-tiles per warp: each K / V fragment feeds MT mmas
    static constexpr int BM = 16 * MT * NW;  // query rows per CTA
    static constexpr int BN = D == 64 ? 128 : 64;  // keys per tile (double-buffered in shared memory)
    // Keys per softmax step (a divisor of BN): 32 for D = 128 with two m-tiles, so that the S fragments
    // (16 MT x SUB f32 per warp) and the O accumulators fit in the registers without spilling.
    static constexpr int SUB = (D == 128 && MT_ == 2) ? 32 : 64;
    static constexpr int NT = 32 * NW;       // threads
    static constexpr int SMEM = (BM * D + 4 * BN * D) * 2;  // Q, K[2], V[2] (16-bit elements)
};

template <typename T, int D, int NW, int MT_, bool CAUSAL>
__global__ void __launch_bounds__(32 * NW, MT_ == 2 ? 2 : 1) attn_fwd_kernel(const FwdParams p) {
    using Cfg = FwdCfg<D, NW, MT_>;
    constexpr int MT = Cfg::MT, BM = Cfg::BM, BN = Cfg::BN, NT = Cfg::NT, SUB = Cfg::SUB;
    constexpr int KD = D / 16;   // k-steps over the head dimension
    constexpr int NB = SUB / 8;  // 8-key column blocks of S (per sub-tile)
    constexpr int DB = D / 8;   // 8-wide column blocks of O
    DSATTN_SMEM(smem);
    T* sQ = reinterpret_cast<T*>(smem);
    T* sK = sQ + BM * D;
    T* sV = sK + 2 * BN * D;

    const int tid = static_cast<int>(threadIdx.x);
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, tq = lane & 3;  // mma row group and thread-in-group
    // Causal: blocks are numbered x fastest, then y, z (the launch order), and mapped so that the query
    // block varies slowest, heaviest (last) first: the long blocks of every head start before the short
    // ones, which fill the tail. Otherwise the blocks of one head run together (their K / V stay in L2).
    int64_t m_block, b;
    int h;
    if (CAUSAL) {
        const int64_t hb_n = static_cast<int64_t>(gridDim.y) * gridDim.z;  // (head, batch) pairs
        const int64_t flat = blockIdx.x + static_cast<int64_t>(gridDim.x) * (blockIdx.y + static_cast<int64_t>(gridDim.y) * blockIdx.z);
        m_block = static_cast<int64_t>(gridDim.x) - 1 - flat / hb_n;
        h = static_cast<int>(flat % hb_n % gridDim.y);
        b = flat % hb_n / gridDim.y;
    } else {
        m_block = blockIdx.x;
        h = static_cast<int>(blockIdx.y);
        b = blockIdx.z;
    }
    const int hk = h / p.G;
    const int64_t m0 = m_block * BM;
    const int64_t q_stride = static_cast<int64_t>(p.Hq) * D;
    const int64_t kv_stride = static_cast<int64_t>(p.Hkv) * D;
    const T* qg = static_cast<const T*>(p.q) + (b * p.S * p.Hq + h) * D;
    const T* kg = static_cast<const T*>(p.k) + (b * p.Skv * p.Hkv + hk) * D;
    const T* vg = static_cast<const T*>(p.v) + (b * p.Skv * p.Hkv + hk) * D;
    T* og = static_cast<T*>(p.o) + (b * p.S * p.Hq + h) * D;
    const int wrow = warp * 16 * MT;  // this warp's first row within the block

    // Keys this block needs: [0, kv_end).
    int64_t kv_end = p.Skv;
    if (CAUSAL) {
        const int64_t last_row = (m0 + BM < p.S ? m0 + BM : p.S) - 1;
        kv_end = last_row + p.off + 1;
        if (kv_end > p.Skv) kv_end = p.Skv;
        if (kv_end < 0) kv_end = 0;
    }
    const int n_tiles = static_cast<int>((kv_end + BN - 1) / BN);

    load_tile<D, NT>(sQ, qg, q_stride, m0, p.S, BM, tid);
    if (n_tiles > 0) {
        load_tile<D, NT>(sK, kg, kv_stride, 0, p.Skv, BN, tid);
        load_tile<D, NT>(sV, vg, kv_stride, 0, p.Skv, BN, tid);
    }
    cp_async_commit();

    float acc[MT][DB][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < DB; ++i) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.0f;
    float row_max[MT][2], row_sum[MT][2];  // log2 units; this thread's partial sums
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) row_max[mt][0] = row_max[mt][1] = -INFINITY, row_sum[mt][0] = row_sum[mt][1] = 0.0f;
    // Rows of acc[mt][.][0..1]: m0 + wrow + 16 mt + g; acc[mt][.][2..3]: 8 more.
    const int64_t row_a = m0 + wrow + g;

    for (int t = 0; t < n_tiles; ++t) {
        const int buf = t & 1;
        if (t + 1 < n_tiles) {
            load_tile<D, NT>(sK + (buf ^ 1) * BN * D, kg, kv_stride, static_cast<int64_t>(t + 1) * BN, p.Skv, BN, tid);
            load_tile<D, NT>(sV + (buf ^ 1) * BN * D, vg, kv_stride, static_cast<int64_t>(t + 1) * BN, p.Skv, BN, tid);
        }
        cp_async_commit();
        cp_async_wait<1>();  // Q (first tile) and this tile have landed
        __syncthreads();

        // The tile's keys in sub-tiles of SUB keys, each with its own online softmax step (SUB < BN keeps
        // S small enough for the D = 128 accumulators to stay in registers).
#pragma unroll 1
        for (int sub = 0; sub < BN / SUB; ++sub) {
            const int64_t n0 = static_cast<int64_t>(t) * BN + sub * SUB;
            // A sub-tile that no row of this warp sees (past S_kv, or after the causal limit of the warp's
            // last row) changes nothing: skip it (warp-uniform).
            if (n0 >= p.Skv || (CAUSAL && n0 > m0 + wrow + 16 * MT - 1 + p.off)) continue;
            const T* tK = sK + buf * BN * D + sub * SUB * D;
            const T* tV = sV + buf * BN * D + sub * SUB * D;

            // S = Q K^T for 16 MT rows x SUB keys; each K fragment feeds MT m-tiles.
            float s[MT][NB][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int i = 0; i < NB; ++i) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.0f;
#pragma unroll 2
            for (int kk = 0; kk < KD; ++kk) {
                uint32_t qa[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
                    ldsm_x4(qa[mt], sQ + swz(wrow + 16 * mt + (lane & 15), kk * 2 + (lane >> 4), D));
#pragma unroll
                for (int nb2 = 0; nb2 < NB / 2; ++nb2) {
                    uint32_t kb[4];
                    ldsm_x4(kb, tK + swz(nb2 * 16 + ((lane >> 4) << 3) + (lane & 7), kk * 2 + ((lane >> 3) & 1), D));
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma16816<T>(s[mt][2 * nb2], qa[mt], kb[0], kb[1]);
                        mma16816<T>(s[mt][2 * nb2 + 1], qa[mt], kb[2], kb[3]);
                    }
                }
            }

            // Scale to log2 units; mask keys past S_kv and, under a causal mask, keys after the row's limit.
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int nb = 0; nb < NB; ++nb)
#pragma unroll
                    for (int e = 0; e < 4; ++e) s[mt][nb][e] *= p.scale_log2;
            if (n0 + SUB > p.Skv || (CAUSAL && n0 + SUB - 1 > m0 + wrow + p.off)) {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int r = 0; r < 2; ++r) {
                        // Keys of this sub-tile that row (mt, r) sees: columns [0, lim).
                        int64_t lim64 = p.Skv - n0;
                        if (CAUSAL) {
                            const int64_t causal_lim = row_a + 16 * mt + 8 * r + p.off + 1 - n0;
                            lim64 = causal_lim < lim64 ? causal_lim : lim64;
                        }
                        const int lim = lim64 < 0 ? 0 : lim64 > SUB ? SUB : static_cast<int>(lim64);
#pragma unroll
                        for (int nb = 0; nb < NB; ++nb) {
                            if (nb * 8 + 2 * tq >= lim) s[mt][nb][2 * r] = -INFINITY;
                            if (nb * 8 + 2 * tq + 1 >= lim) s[mt][nb][2 * r + 1] = -INFINITY;
                        }
                    }
            }

            // Online softmax for rows (mt, r): row_a + 16 mt + 8 r. The running max only moves (and O and
            // the sums are rescaled) when some row of the warp has grown by more than kLazy (log2 units);
            // otherwise the stale max stays, which bounds P by 2^kLazy (exact in f32 sums and bf16/f16 P).
            constexpr float kLazy = 8.0f;
            float mx[MT][2];
            bool grow = false;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    float m = row_max[mt][r];
#pragma unroll
                    for (int nb = 0; nb < NB; ++nb) m = fmaxf(m, fmaxf(s[mt][nb][2 * r], s[mt][nb][2 * r + 1]));
                    m = fmaxf(m, shfl_xor(m, 1));
                    m = fmaxf(m, shfl_xor(m, 2));
                    mx[mt][r] = m;
                    grow |= m > row_max[mt][r] + kLazy;  // -inf + kLazy = -inf: a first finite max grows
                }
            if (warp_any(grow)) {
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int r = 0; r < 2; ++r) {
                        const float base = mx[mt][r] == -INFINITY ? 0.0f : mx[mt][r];
                        const float alpha = exp2_approx(row_max[mt][r] - base);
                        row_max[mt][r] = mx[mt][r];
                        row_sum[mt][r] *= alpha;
#pragma unroll
                        for (int db = 0; db < DB; ++db) {
                            acc[mt][db][2 * r] *= alpha;
                            acc[mt][db][2 * r + 1] *= alpha;
                        }
                    }
            }
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const float base = row_max[mt][r] == -INFINITY ? 0.0f : row_max[mt][r];  // rows that saw nothing yet stay at zero
                    float sum = 0.0f;
#pragma unroll
                    for (int nb = 0; nb < NB; ++nb) {
                        s[mt][nb][2 * r] = exp2_approx(s[mt][nb][2 * r] - base);
                        s[mt][nb][2 * r + 1] = exp2_approx(s[mt][nb][2 * r + 1] - base);
                        sum += s[mt][nb][2 * r] + s[mt][nb][2 * r + 1];
                    }
                    row_sum[mt][r] += sum;
                }

            // O += P V: P's accumulator layout is the A fragment layout of a 16 x 16 key step; each V
            // fragment feeds MT m-tiles.
#pragma unroll
            for (int kk = 0; kk < SUB / 16; ++kk) {
                uint32_t pa[MT][4];
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    pa[mt][0] = pack2<T>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                    pa[mt][1] = pack2<T>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                    pa[mt][2] = pack2<T>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                    pa[mt][3] = pack2<T>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
                }
#pragma unroll
                for (int db2 = 0; db2 < DB / 2; ++db2) {
                    uint32_t vb[4];
                    ldsm_x4_t(vb, tV + swz(kk * 16 + (((lane >> 3) & 1) << 3) + (lane & 7), db2 * 2 + (lane >> 4), D));
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma16816<T>(acc[mt][2 * db2], pa[mt], vb[0], vb[1]);
                        mma16816<T>(acc[mt][2 * db2 + 1], pa[mt], vb[2], vb[3]);
                    }
                }
            }
        }
        __syncthreads();  // everyone is done with buffer `buf` before it is refilled
    }
    cp_async_wait<0>();  // the Q load when there was no key tile
    __syncthreads();

    // Finish the rows: complete the sums over the quad, normalise, stage in this warp's rows of sQ
    // (no other warp reads them), then 16-byte stores.
    T* sO = sQ + wrow * D;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float sum = row_sum[mt][r];
            sum += shfl_xor(sum, 1);
            sum += shfl_xor(sum, 2);
            const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
            const int64_t i = row_a + 16 * mt + 8 * r;
            if (p.lse && tq == 0 && i < p.S)
                p.lse[(b * p.Hq + h) * p.S + i] = sum > 0.0f ? (row_max[mt][r] + log2f(sum)) * kLn2 : -INFINITY;
            const int row = 16 * mt + 8 * r + g;
#pragma unroll
            for (int db = 0; db < DB; ++db)
                *reinterpret_cast<uint32_t*>(sO + swz(row, db, D) + 2 * tq) =
                    pack2<T>(acc[mt][db][2 * r] * inv, acc[mt][db][2 * r + 1] * inv);
        }
    __syncwarp();
    constexpr int CH = D / 8;
    for (int c = lane; c < 16 * MT * CH; c += 32) {
        const int row = c / CH, ch = c % CH;
        const int64_t i = m0 + wrow + row;
        if (i < p.S) *reinterpret_cast<uint4*>(og + i * q_stride + ch * 8) = *reinterpret_cast<const uint4*>(sO + swz(row, ch, D));
    }
}

// ---- backward ----------------------------------------------------------------------------------------

// Dsum[b, h, i] = sum_d dO[b, i, h, d] * O[b, i, h, d], and the row's dq_acc [b, i, h, :] zeroed (the
// main kernel adds dS K there): D / 8 threads per (b, i, h) row, each 16 bytes of O and of dO (one load
// each) and 32 bytes of zeros. The sum over a row's threads is a shuffle among them (D / 8 divides 32, so
// a row never straddles two warps). On an H100 (ncu, B8 H16 S2048 D128) 94 us, where a warp per row
// with 2-byte loads (58 us) and a cudaMemsetAsync of dq_acc (~55 us) took about 113; cuDNN's pass 97 us.
// It lets the next kernel start at once (grid_dep_launch): the sm90 main kernel, launched with
// programmatic stream serialization, sets itself up and waits (grid_dep_wait) before it reads Dsum.
template <typename T, int D>
__global__ void attn_bwd_dsum_kernel(const T* __restrict__ o, const T* __restrict__ dout, float* __restrict__ dsum,
                                     float* __restrict__ dq_acc, int64_t rows, int64_t S, int Hq) {
    grid_dep_launch();
    constexpr int TPR = D / 8;  // threads per row
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t row = e / TPR;
    const int c = static_cast<int>(e % TPR);
    float acc = 0.0f;
    if (row < rows) {
        const int64_t at = row * D + c * 8;
        const uint4 a = *reinterpret_cast<const uint4*>(o + at);
        const uint4 b = *reinterpret_cast<const uint4*>(dout + at);
        const uint32_t aw[4] = {a.x, a.y, a.z, a.w}, bw[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float2 x = unpack2<T>(aw[j]), y = unpack2<T>(bw[j]);
            acc += x.x * y.x + x.y * y.y;
        }
        uint4* z = reinterpret_cast<uint4*>(dq_acc + at);
        z[0] = uint4{0u, 0u, 0u, 0u};
        z[1] = uint4{0u, 0u, 0u, 0u};
    }
#pragma unroll
    for (int m = TPR / 2; m >= 1; m >>= 1) acc += shfl_xor(acc, m);  // every lane: no early return above
    if (row < rows && c == 0) {
        // row = (b * S + i) * Hq + h
        const int h = static_cast<int>(row % Hq);
        const int64_t bi = row / Hq;
        const int64_t b = bi / S, i = bi % S;
        dsum[(b * Hq + h) * S + i] = acc;
    }
}

// dq = dq_acc * scale, converted.
template <typename T>
__global__ void attn_bwd_dq_kernel(const float* __restrict__ acc, T* __restrict__ dq, int64_t n, float scale) {
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x)
        dq[e] = from_f32<T>(acc[e] * scale);
}

template <int D>
struct BwdCfg {
    static constexpr int NW = 4;
    static constexpr int BN = 16 * NW;  // keys per CTA
    static constexpr int BM = 64;       // query rows per step (= 16 * NW for the dQ split)
    static constexpr int NT = 32 * NW;
    // K, V [BN][D]; Q, dO [2][BM][D]; dS^T [BN][BM] (16-bit); lse, Dsum [2][BM] f32.
    static constexpr int SMEM = (2 * BN * D + 4 * BM * D + BN * BM) * 2 + 4 * BM * 4;
};

template <typename T, int D, bool CAUSAL>
__global__ void __launch_bounds__(128, 1) attn_bwd_kernel(const BwdParams p) {
    using Cfg = BwdCfg<D>;
    constexpr int BN = Cfg::BN, BM = Cfg::BM, NT = Cfg::NT;
    constexpr int KD = D / 16;   // k-steps over the head dimension
    constexpr int QB = BM / 8;   // 8-query column blocks of S^T
    constexpr int DB = D / 8;    // 8-wide column blocks of dK, dV
    static_assert(BM == 16 * Cfg::NW, "dQ split: one warp per 16 query rows");
    DSATTN_SMEM(smem);
    T* sK = reinterpret_cast<T*>(smem);
    T* sV = sK + BN * D;
    T* sQ = sV + BN * D;          // [2][BM][D]
    T* sdO = sQ + 2 * BM * D;     // [2][BM][D]
    T* sdS = sdO + 2 * BM * D;    // [BN][BM]
    float* sL = reinterpret_cast<float*>(sdS + BN * BM);  // [2][BM]: lse * log2e (+inf: row contributes nothing)
    float* sDs = sL + 2 * BM;                              // [2][BM]

    const int tid = static_cast<int>(threadIdx.x);
    const int warp = tid >> 5, lane = tid & 31;
    const int g = lane >> 2, tq = lane & 3;
    const int64_t n0 = static_cast<int64_t>(blockIdx.x) * BN;
    const int hk = static_cast<int>(blockIdx.y);
    const int64_t b = blockIdx.z;
    const int64_t q_stride = static_cast<int64_t>(p.Hq) * D;
    const int64_t kv_stride = static_cast<int64_t>(p.Hkv) * D;
    const T* kg = static_cast<const T*>(p.k) + (b * p.Skv * p.Hkv + hk) * D;
    const T* vg = static_cast<const T*>(p.v) + (b * p.Skv * p.Hkv + hk) * D;

    // Query blocks that can see this key tile: [mt_first, n_mt) for each head of the group.
    const int64_t n_mt = (p.S + BM - 1) / BM;
    int64_t mt_first = 0;
    if (CAUSAL) {
        int64_t first_row = n0 - p.off;  // the first query that sees key n0
        if (first_row < 0) first_row = 0;
        mt_first = first_row / BM;
        if (mt_first > n_mt) mt_first = n_mt;
    }
    const int64_t per_head = n_mt - mt_first;
    const int64_t n_steps = per_head * p.G;

    // Query block `step` (head, block) -> shared buffer `buf`.
    auto load_q = [&](int64_t step, int buf) {
        const int h = hk * p.G + static_cast<int>(step / per_head);
        const int64_t m0 = (mt_first + step % per_head) * BM;
        const int64_t q_off = (b * p.S * p.Hq + h) * D;
        load_tile_b<D, NT>(sQ + buf * BM * D, static_cast<const T*>(p.q) + q_off, q_stride, m0, p.S, BM, tid);
        load_tile_b<D, NT>(sdO + buf * BM * D, static_cast<const T*>(p.dout) + q_off, q_stride, m0, p.S, BM, tid);
        for (int r = tid; r < BM; r += NT) {
            const int64_t i = m0 + r;
            float l2 = INFINITY, ds = 0.0f;
            if (i < p.S) {
                const float l = p.lse[(b * p.Hq + h) * p.S + i];
                l2 = l == -INFINITY ? INFINITY : l * kLog2e;
                ds = p.dsum[(b * p.Hq + h) * p.S + i];
            }
            sL[buf * BM + r] = l2;
            sDs[buf * BM + r] = ds;
        }
    };

    load_tile_b<D, NT>(sK, kg, kv_stride, n0, p.Skv, BN, tid);
    load_tile_b<D, NT>(sV, vg, kv_stride, n0, p.Skv, BN, tid);
    if (n_steps > 0) load_q(0, 0);
    cp_async_commit();

    float dk[DB][4], dv[DB][4];
#pragma unroll
    for (int i = 0; i < DB; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.0f;
    const int64_t key_a = n0 + warp * 16 + g;  // keys of the accumulator rows e = 0, 1; key_a + 8 for e = 2, 3

    for (int64_t step = 0; step < n_steps; ++step) {
        const int buf = static_cast<int>(step & 1);
        cp_async_wait<0>();
        __syncthreads();  // step's tiles are visible; everyone is done with the other buffer and with sdS
        if (step + 1 < n_steps) load_q(step + 1, buf ^ 1);
        cp_async_commit();

        const int h = hk * p.G + static_cast<int>(step / per_head);
        const int64_t m0 = (mt_first + step % per_head) * BM;
        const T* tQ = sQ + buf * BM * D;
        const T* tdO = sdO + buf * BM * D;
        const float* tL = sL + buf * BM;
        const float* tDs = sDs + buf * BM;

        // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys x BM queries.
        float st[QB][4], dpt[QB][4];
#pragma unroll
        for (int i = 0; i < QB; ++i)
#pragma unroll
            for (int e = 0; e < 4; ++e) st[i][e] = dpt[i][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
            uint32_t ka[4], va[4];
            ldsm_x4(ka, sK + swz(warp * 16 + (lane & 15), kk * 2 + (lane >> 4), D));
            ldsm_x4(va, sV + swz(warp * 16 + (lane & 15), kk * 2 + (lane >> 4), D));
#pragma unroll
            for (int qb2 = 0; qb2 < QB / 2; ++qb2) {
                const int row = qb2 * 16 + ((lane >> 4) << 3) + (lane & 7);
                const int ch = kk * 2 + ((lane >> 3) & 1);
                uint32_t qb[4], ob[4];
                ldsm_x4(qb, tQ + swz(row, ch, D));
                ldsm_x4(ob, tdO + swz(row, ch, D));
                mma16816<T>(st[2 * qb2], ka, qb[0], qb[1]);
                mma16816<T>(st[2 * qb2 + 1], ka, qb[2], qb[3]);
                mma16816<T>(dpt[2 * qb2], va, ob[0], ob[1]);
                mma16816<T>(dpt[2 * qb2 + 1], va, ob[2], ob[3]);
            }
        }

        // P^T = exp2(S^T scale log2e - lse log2e), zero where masked; dS^T = P^T (dP^T - Dsum).
        const bool need_mask = n0 + BN > p.Skv || m0 + BM > p.S || (CAUSAL && n0 + BN - 1 > m0 + p.off);
#pragma unroll
        for (int qb = 0; qb < QB; ++qb)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int c = qb * 8 + 2 * tq + (e & 1);  // query column within the block
                float pv = exp2_approx(st[qb][e] * p.scale_log2 - tL[c]);
                if (need_mask) {
                    const int64_t j = key_a + (e >> 1) * 8;
                    const int64_t i = m0 + c;
                    if (j >= p.Skv || i >= p.S || (CAUSAL && j > i + p.off)) pv = 0.0f;
                }
                st[qb][e] = pv;
                dpt[qb][e] = pv * (dpt[qb][e] - tDs[c]);
            }

        // dV += P^T dO and dK += dS^T Q: the accumulator layout of P^T / dS^T is the A fragment layout
        // of a 16 x 16 query step.
#pragma unroll
        for (int kk = 0; kk < BM / 16; ++kk) {
            uint32_t pa[4], sa[4];
            pa[0] = pack2<T>(st[2 * kk][0], st[2 * kk][1]);
            pa[1] = pack2<T>(st[2 * kk][2], st[2 * kk][3]);
            pa[2] = pack2<T>(st[2 * kk + 1][0], st[2 * kk + 1][1]);
            pa[3] = pack2<T>(st[2 * kk + 1][2], st[2 * kk + 1][3]);
            sa[0] = pack2<T>(dpt[2 * kk][0], dpt[2 * kk][1]);
            sa[1] = pack2<T>(dpt[2 * kk][2], dpt[2 * kk][3]);
            sa[2] = pack2<T>(dpt[2 * kk + 1][0], dpt[2 * kk + 1][1]);
            sa[3] = pack2<T>(dpt[2 * kk + 1][2], dpt[2 * kk + 1][3]);
            // dS^T to shared for the dQ product (rows = keys, columns = queries).
            *reinterpret_cast<uint32_t*>(sdS + swz(warp * 16 + g, 2 * kk, BM) + 2 * tq) = sa[0];
            *reinterpret_cast<uint32_t*>(sdS + swz(warp * 16 + g + 8, 2 * kk, BM) + 2 * tq) = sa[1];
            *reinterpret_cast<uint32_t*>(sdS + swz(warp * 16 + g, 2 * kk + 1, BM) + 2 * tq) = sa[2];
            *reinterpret_cast<uint32_t*>(sdS + swz(warp * 16 + g + 8, 2 * kk + 1, BM) + 2 * tq) = sa[3];
#pragma unroll
            for (int db2 = 0; db2 < DB / 2; ++db2) {
                const int row = kk * 16 + (((lane >> 3) & 1) << 3) + (lane & 7);
                const int ch = db2 * 2 + (lane >> 4);
                uint32_t ob[4], qb[4];
                ldsm_x4_t(ob, tdO + swz(row, ch, D));
                ldsm_x4_t(qb, tQ + swz(row, ch, D));
                mma16816<T>(dv[2 * db2], pa, ob[0], ob[1]);
                mma16816<T>(dv[2 * db2 + 1], pa, ob[2], ob[3]);
                mma16816<T>(dk[2 * db2], sa, qb[0], qb[1]);
                mma16816<T>(dk[2 * db2 + 1], sa, qb[2], qb[3]);
            }
        }
        __syncthreads();  // dS^T complete

        // dQ rows [m0 + 16 warp, +16) += dS K over this tile's BN keys, into the f32 workspace.
        uint32_t da[BN / 16][4];
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk)
            ldsm_x4_t(da[kk], sdS + swz(kk * 16 + ((lane >> 4) << 3) + (lane & 7), warp * 2 + ((lane >> 3) & 1), BM));
        const int64_t qi = m0 + warp * 16 + g;
        float* dq_row = p.dq_acc + ((b * p.S + qi) * p.Hq + h) * D;
#pragma unroll
        for (int db2 = 0; db2 < DB / 2; ++db2) {
            float a2[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
#pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
                uint32_t kb[4];
                ldsm_x4_t(kb, sK + swz(kk * 16 + (((lane >> 3) & 1) << 3) + (lane & 7), db2 * 2 + (lane >> 4), D));
                mma16816<T>(a2[0], da[kk], kb[0], kb[1]);
                mma16816<T>(a2[1], da[kk], kb[2], kb[3]);
            }
#pragma unroll
            for (int x = 0; x < 2; ++x) {
                const int d = (2 * db2 + x) * 8 + 2 * tq;
                if (qi < p.S) atomic_add2(dq_row + d, a2[x][0], a2[x][1]);
                if (qi + 8 < p.S) atomic_add2(dq_row + 8 * q_stride + d, a2[x][2], a2[x][3]);
            }
        }
    }

    cp_async_wait<0>();  // nothing left in flight (K/V when no query block sees this tile)

    // dK = scale * dK, dV: rows key_a and key_a + 8.
    T* dkg = static_cast<T*>(p.dk) + (b * p.Skv * p.Hkv + hk) * D;
    T* dvg = static_cast<T*>(p.dv) + (b * p.Skv * p.Hkv + hk) * D;
#pragma unroll
    for (int db = 0; db < DB; ++db)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const int64_t j = key_a + 8 * r;
            if (j < p.Skv) {
                const int64_t at = j * kv_stride + db * 8 + 2 * tq;
                *reinterpret_cast<uint32_t*>(dkg + at) = pack2<T>(dk[db][2 * r] * p.scale, dk[db][2 * r + 1] * p.scale);
                *reinterpret_cast<uint32_t*>(dvg + at) = pack2<T>(dv[db][2 * r], dv[db][2 * r + 1]);
            }
        }
}

}  // namespace dsattn
