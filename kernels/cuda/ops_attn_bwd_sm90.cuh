// Flash attention backward for Hopper (sm_90a): warpgroup MMA (wgmma) with a warp-specialized pipeline.
// Compiled only into the sm_90a object of the CUDA module (ops_attn_bwd_sm90.cu; kernels/CMakeLists.txt);
// ops_attn.cu selects it on compute capability 9.0 devices (DSABI_ATTN_BWD_IMPL=fa2|sm90 forces a choice).
// Same contract as the FA2 backward (ops_attn_kernels.cuh, BwdParams): q, dout [B, S, Hq, D], k, v
// [B, Skv, Hkv, D], lse [B, Hq, S] (natural log), dsum [B, Hq, S] = rowsum(dO o O) (the Dsum kernel runs
// first), dq_acc [B, S, Hq, D] f32 zeroed (dS K accumulates there; the dq kernel writes scale times it), dk, dv
// written here (dk scaled by the softmax scale; grouped-query heads summed over the group).
//
// One CTA of 3 warpgroups per (key block of BN = 128 keys, kv head, batch), in the order of the launcher's
// `order` (ops_attn_bwd_sm90.cu: without a mask (batch, head) major and key blocks minor, so that the CTAs
// that run together share their head's Q and dO in L2; under a causal mask chunks of 8 (batch, head)
// pairs, key blocks major inside a chunk: the longest CTAs first, a shorter tail; key blocks major over
// all pairs ran at 0.67x for want of L2). Launched with programmatic stream serialization after the Dsum
// kernel: K and V are loaded before griddepcontrol.wait, Dsum and dq_acc touched after. It walks every
// query head of the group and every block of BM = 64 query rows that can see the key block (causal
// skipping):
//   warpgroup 0, the producer (setmaxnreg down to 24 registers, 40 for D = 64; warp 0 alone works): lane 0
//   copies the CTA's K and V tiles once (bulk tensor copies, 128-byte swizzle, rows past the end zero-filled; mbarrier
//   full_kv) and, per step, the Q and dO blocks of the step into one of STAGES (2) stages (full[s]:
//   expect_tx, then the copies); then the 32 lanes load the step's lse (as lse * log2 e; +inf for a row
//   past the end or one that sees no key) and Dsum into the stage and arrive on full[s]. A stage is
//   refilled once the consumers are done with it (empty[s], 256 arrivals).
//   warpgroups 1 and 2, the consumers (setmaxnreg up to 240, 232 for D = 64), keys n0 + 64 cw .. + 63 each; per step:
//     S^T  = K Q^T        wgmma m64n64k16, A (K) and B (Q) from shared memory, both K-major;
//     dP^T = V dO^T       likewise;
//     P^T  = exp2(S^T scale log2e - lse log2e) (0 where masked), dS^T = P^T o (dP^T - Dsum), in registers;
//     dV  += P^T dO       wgmma m64nDk16, A (P^T, 16-bit) from registers, B (dO) MN-major (imm-trans-b);
//     dK  += dS^T Q       likewise;
//     dS^T (16-bit) to shared memory [128 keys][64 queries] (128-byte rows, swizzled; two buffers by step
//     parity), fence.proxy.async, then
//     dQ   = dS K         wgmma m64n64k16 SS with both operands MN-major (imm-trans-a, imm-trans-b): for
//                         D = 128 warpgroup cw takes the columns 64 cw .. + 63 over all 128 keys, for D = 64
//                         all 64 columns over its own 64 keys; the f32 result goes to the warpgroup's shared
//                         dQ tile and one thread adds it to dq_acc with bulk tensor reductions
//                         (cp.reduce.async.bulk.tensor .add.f32 through tm_dq), which the TMA unit carries
//                         out while the warpgroup moves on.
//     LAG (D = 128): dQ of step t is computed in step t + 1, once both warpgroups have stored their dS^T of
//     step t (mbarriers ds_full / ds_empty per buffer, 256 arrivals), so that the two warpgroups meet only
//     there and may drift apart by a step (one's softmax overlapping the other's products); step 0 computes
//     a product that is discarded, from the other dS^T buffer (a conditionally issued wgmma made ptxas
//     serialize them for want of registers). Without LAG (D = 64): the warpgroup's own named barrier, then
//     dQ of the step.
//     ILV: bit 0 issues the S^T and dP^T k-steps alternately, bit 1 the dV, dK and dQ ones: chains of
//     accumulations into one m64n64 accumulator leave the tensor cores waiting on each other; alternating
//     chains hide that (ops_attn_bwd_sm90.cu has the measurements and the defaults).
//   Epilogue: dK * scale and dV to the K and V tiles (both warpgroups are done reading them), stored with
//   bulk tensor copies.
// Measured on an H100 (B8 H16 S2048 D128 causal bf16, ncu): before dQ went through bulk reductions the
// consumers' red.global instructions backed up behind L2 (the reduction traffic is 64 x 128 f32 per CTA
// and step, 1.1 GB on this shape).
// Shared tiles as in the forward (ops_attn_sm90.cuh): 128-byte rows of 64 16-bit elements, a D = 128 tile
// two column halves one after the other, 16-byte chunk c of row r at chunk c ^ (r % 8), 1024-byte aligned.
#pragma once

#include <stdint.h>

#include "ops_attn_sm90.cuh"

namespace dscuda {
// Launch the sm_90a backward main kernel (ops_attn_bwd_sm90.cu) on stream 0, after the Dsum kernel and
// before the dq conversion kernel. The caller has checked the arguments (D 64 / 128, 16-bit dtype, Hq
// multiple of Hkv, sequences below 2^30) and that the device has compute capability 9.0. *launched is
// false (and DS_BACKEND_OK returned) when the tensor maps cannot be made: the caller then runs the FA2
// kernel.
int attn_bwd_sm90(const dsattn::BwdParams& p, int64_t B, int D, bool bf16, bool causal, bool* launched);
}  // namespace dscuda


namespace dsattn90 {

using dsattn::BwdParams;

template <int D, int STAGES_>
struct BwdSm90Cfg {
    static constexpr int BN = 128;  // keys per CTA (64 per consumer warpgroup)
    static constexpr int BM = 64;   // query rows per step
    static constexpr int STAGES = STAGES_;  // Q / dO (lse, Dsum) stages
    static constexpr int NT = 384;
    static constexpr int KV_BYTES = BN * D * 2;
    static constexpr int QB_BYTES = BM * D * 2;
    static constexpr int DS_BYTES = BN * BM * 2;
    static constexpr int OFF_K = 0;
    static constexpr int OFF_V = KV_BYTES;
    static constexpr int OFF_Q = 2 * KV_BYTES;
    static constexpr int OFF_DO = OFF_Q + STAGES * QB_BYTES;
    static constexpr int OFF_DS = OFF_DO + STAGES * QB_BYTES;
    static constexpr int DQ_BYTES = BM * 64 * 4;              // a dQ tile: 64 x 64 f32, two per consumer
    static constexpr int OFF_DQ = OFF_DS + 2 * DS_BYTES;
    static constexpr int OFF_L = OFF_DQ + 4 * DQ_BYTES;       // lse * log2e [STAGES][BM] f32
    static constexpr int OFF_DSUM = OFF_L + STAGES * BM * 4;  // Dsum [STAGES][BM] f32
    static constexpr int OFF_BAR = OFF_DSUM + STAGES * BM * 4;
    // full_kv, full[STAGES], empty[STAGES], ds_full[2], ds_empty[2]
    static constexpr int N_BAR = 1 + 2 * STAGES + 4;
    static constexpr int SMEM = OFF_BAR + 8 * N_BAR + 1024;  // + slack to align the base to 1024 bytes
    static_assert(SMEM <= 227 * 1024, "BwdSm90Cfg: shared memory");
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// D[64 x 64] (f32, this thread's 32) (+)= A (shared) * B (shared); imm-trans-a = TA, imm-trans-b = TB
// (0: K-major, 1: MN-major); bf16 operands.
template <int TA, int TB>
DSA9_DEV void wgmma_ss_n64_bf16(float (&d)[32], uint64_t da, uint64_t db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}
// D[64 x 64] (f32, this thread's 32) (+)= A (shared) * B (shared); imm-trans-a = TA, imm-trans-b = TB
// (0: K-major, 1: MN-major); f16 operands.
template <int TA, int TB>
DSA9_DEV void wgmma_ss_n64_f16(float (&d)[32], uint64_t da, uint64_t db, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, %35, %36;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB));
}

template <typename T>
struct WgB;
template <>
struct WgB<__nv_bfloat16> {
    template <int TA, int TB>
    static DSA9_DEV void ss64(float (&d)[32], uint64_t a, uint64_t b, int acc) {
        wgmma_ss_n64_bf16<TA, TB>(d, a, b, acc);
    }
};
template <>
struct WgB<__half> {
    template <int TA, int TB>
    static DSA9_DEV void ss64(float (&d)[32], uint64_t a, uint64_t b, int acc) {
        wgmma_ss_n64_f16<TA, TB>(d, a, b, acc);
    }
};

// Add `bytes` to the transaction count of the mbarrier's current phase (no arrival).
DSA9_DEV void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
DSA9_DEV void st_shared_f32x2(uint32_t a, float x, float y) {
    asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a), "f"(x), "f"(y) : "memory");
}
// The tensor map's box at (c0 .. c3) += the shared box src (f32 add; elements out of bounds are skipped).
// Joins this thread's current bulk group.
DSA9_DEV void tma_reduce_add_4d(const CUtensorMap* map, int c0, int c1, int c2, int c3, uint32_t src) {
    asm volatile(
        "cp.reduce.async.bulk.tensor.4d.global.shared::cta.add.tile.bulk_group [%0, {%1, %2, %3, %4}], [%5];\n" ::"l"(
            reinterpret_cast<uint64_t>(map)),
        "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(src)
        : "memory");
}
DSA9_DEV float2 ld_shared_f32x2(uint32_t a) {
    float2 v;
    asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "r"(a) : "memory");
    return v;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// n_kb: key blocks per (batch, kv head). Tensor maps (dimensions D, heads, sequence, batch; boxes of 64
// columns, 128-byte swizzle): tm_q, tm_do with BM rows, tm_k, tm_v with BN rows.
// LAG: dQ of step t is computed in step t + 1 (the warpgroups meet only through the mbarriers of the two
// dS^T buffers and may drift apart by a step); otherwise in step t after a named barrier.
// order 0: CTAs (batch, head) major, key blocks minor; N > 0: chunks of N (batch, head) pairs, key blocks
// major inside a chunk (block 0 of the chunk's pairs first: longest first under a causal mask).
// ILV (measurement variants): bit 0, the S^T and dP^T k-steps issued alternately (two independent
// accumulation chains in flight) and waited for together; bit 1 (LAG only), the previous step's dQ k-steps
// issued between the dV and dK ones before this step's dS^T is stored.
template <typename T, int D, bool CAUSAL, bool LAG, int STAGES, int ILV>
__global__ void __launch_bounds__(384, 1)
    attn_bwd_sm90_kernel(const BwdParams p, int n_kb, int order, const __grid_constant__ CUtensorMap tm_q,
                         const __grid_constant__ CUtensorMap tm_k, const __grid_constant__ CUtensorMap tm_v,
                         const __grid_constant__ CUtensorMap tm_do, const __grid_constant__ CUtensorMap tm_dk,
                         const __grid_constant__ CUtensorMap tm_dv, const __grid_constant__ CUtensorMap tm_dq) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    using Cfg = BwdSm90Cfg<D, STAGES>;
    constexpr int BN = Cfg::BN, BM = Cfg::BM, ST = Cfg::STAGES;
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t sK = base + Cfg::OFF_K, sV = base + Cfg::OFF_V, sQ = base + Cfg::OFF_Q, sdO = base + Cfg::OFF_DO;
    const uint32_t sdS = base + Cfg::OFF_DS, sL = base + Cfg::OFF_L, sDsum = base + Cfg::OFF_DSUM;
    const uint32_t full_kv = base + Cfg::OFF_BAR;
    auto full = [&](int s) { return full_kv + 8u * (1 + s); };
    auto empty = [&](int s) { return full_kv + 8u * (1 + ST + s); };
    auto ds_full = [&](int j) { return full_kv + 8u * (1 + 2 * ST + j); };
    auto ds_empty = [&](int j) { return full_kv + 8u * (3 + 2 * ST + j); };

    const int tid = static_cast<int>(threadIdx.x);
    const int wg = tid >> 7;
    int64_t bh;
    int kb;
    if (order == 0) {
        bh = static_cast<int64_t>(blockIdx.x) / n_kb;
        kb = static_cast<int>(static_cast<int64_t>(blockIdx.x) - bh * n_kb);
    } else {
        // chunks of `order` (batch, head) pairs, key blocks major inside a chunk (1: the same as 0)
        const int64_t n_bh = gridDim.x / n_kb;
        const int64_t csz = static_cast<int64_t>(order) * n_kb;
        const int64_t chunk = static_cast<int64_t>(blockIdx.x) / csz;
        const int64_t r = static_cast<int64_t>(blockIdx.x) - chunk * csz;
        const int64_t c0 = chunk * order;
        const int64_t cn = n_bh - c0 < order ? n_bh - c0 : order;
        kb = static_cast<int>(r / cn);
        bh = c0 + (r - static_cast<int64_t>(kb) * cn);
    }
    const int hk = static_cast<int>(bh % p.Hkv);
    const int64_t b = bh / p.Hkv;
    const int64_t n0 = static_cast<int64_t>(kb) * BN;
    // Query blocks that can see the key block: [mt_first, n_mt) for each head of the group.
    const int64_t n_mt = (p.S + BM - 1) / BM;
    int64_t mt_first = 0;
    if (CAUSAL) {
        const int64_t first_row = n0 - p.off;  // the first query that sees key n0
        mt_first = first_row <= 0 ? 0 : first_row / BM;
        if (mt_first > n_mt) mt_first = n_mt;
    }
    const int64_t per_head = n_mt - mt_first;
    const int64_t n_steps = per_head * p.G;

    if (tid == 0) {
        mbar_init(full_kv, 1);
        for (int s = 0; s < ST; ++s) {
            mbar_init(full(s), 32);    // the producer warp's lanes (lane 0 also sets the copies' bytes)
            mbar_init(empty(s), 256);  // every consumer thread
        }
        for (int j = 0; j < 2; ++j) {
            mbar_init(ds_full(j), 256);
            mbar_init(ds_empty(j), 256);
        }
    }
    __syncthreads();
    // Launched with programmatic stream serialization after the Dsum kernel (which also zeroes dq_acc):
    // K and V are loaded before waiting for it, Dsum read and dq_acc added to after. The dq conversion
    // kernel may be launched once every CTA of this grid has started.
    dsattn::grid_dep_launch();

    if (wg == 0) {
        // ---- producer ----
        setmaxnreg_dec<D == 64 ? 40 : 24>();
        if (tid >= 32) return;
        const int lane = tid;
        if (lane == 0 && n_steps > 0) {  // (with no step the consumers never wait: nothing may be in flight)
            mbar_arrive_expect_tx(full_kv, 2 * BN * D * 2);
#pragma unroll
            for (int c = 0; c < D / 64; ++c) {
                tma_load_4d(sK + c * BN * 128, &tm_k, 64 * c, hk, static_cast<int>(n0), static_cast<int>(b), full_kv);
                tma_load_4d(sV + c * BN * 128, &tm_v, 64 * c, hk, static_cast<int>(n0), static_cast<int>(b), full_kv);
            }
        }
        dsattn::grid_dep_wait();
        // 32-bit block indices (sequences below 2^30; the producer runs on 24 or 40 registers).
        const int n_mt32 = static_cast<int>(n_mt), mt_first32 = static_cast<int>(mt_first);
        const int S32 = static_cast<int>(p.S);
        // (n_steps <= blocks of 64 query rows x Hq: far below 2^31 for any q that fits in memory)
        const int n_steps32 = static_cast<int>(n_steps);
        int mi = mt_first32;  // the next step's query block and head
        int h_next = hk * p.G;
        int s = 0;         // the step's stage
        uint32_t use = 0;  // and its use of that stage
#pragma unroll 1
        for (int step = 0; step < n_steps32; ++step, (++s == ST ? (s = 0, ++use) : 0)) {
            const int hs = h_next;
            const int m0 = mi * BM;
            if (++mi == n_mt32) {
                mi = mt_first32;
                ++h_next;
            }
            if (use > 0) mbar_wait(empty(s), (use + 1) & 1);  // the consumers are done with use - 1
            if (lane == 0) {  // the copies first (their bytes; lane 0 arrives with the others below)
                mbar_expect_tx(full(s), 2 * BM * D * 2);
#pragma unroll
                for (int c = 0; c < D / 64; ++c) {
                    tma_load_4d(sQ + s * Cfg::QB_BYTES + c * BM * 128, &tm_q, 64 * c, hs, m0, static_cast<int>(b),
                                full(s));
                    tma_load_4d(sdO + s * Cfg::QB_BYTES + c * BM * 128, &tm_do, 64 * c, hs, m0, static_cast<int>(b),
                                full(s));
                }
            }
            const int64_t row0 = (b * p.Hq + hs) * p.S + m0;
#pragma unroll
            for (int r = lane; r < BM; r += 32) {
                float l2 = INFINITY, ds = 0.0f;
                if (m0 + r < S32) {
                    const float l = p.lse[row0 + r];
                    l2 = l == -INFINITY ? INFINITY : l * dsattn::kLog2e;
                    ds = p.dsum[row0 + r];
                }
                st_shared_f32(sL + 4u * (s * BM + r), l2);
                st_shared_f32(sDsum + 4u * (s * BM + r), ds);
            }
            mbar_arrive(full(s));  // releases this lane's lse / Dsum stores
        }
        return;
    }

    // ---- consumers: warpgroup cw owns keys n0 + 64 cw .. + 63 ----
    setmaxnreg_inc<D == 64 ? 232 : 240>();
    dsattn::grid_dep_wait();  // (the Dsum kernel's writes: dq_acc zeroed)
    const int cw = wg - 1;
    const int ctid = tid - 128 * wg;
    const int warp = ctid >> 5, lane = ctid & 31;
    const int g = lane >> 2, tq = lane & 3;
    constexpr int NA = D / 2;  // dK / dV accumulators per thread (64 x D over 128 threads)
    const float scale_log2 = p.scale_log2;
    const uint32_t k_base = sK + static_cast<uint32_t>(cw * 64 * 128);
    const uint32_t v_base = sV + static_cast<uint32_t>(cw * 64 * 128);
    const int64_t key_a = n0 + 64 * cw + 16 * warp + g;  // this thread's keys: key_a, key_a + 8
    // dQ: D = 128: columns 64 cw .. over all 128 keys; D = 64: all columns over the warpgroup's keys.
    constexpr int DQ_K = D == 128 ? BN / 16 : 4;
    const int dq_key0 = D == 128 ? 0 : 64 * cw;
    const int dq_col0 = D == 128 ? 64 * cw : 0;

    float dk[NA], dv[NA];
#pragma unroll
    for (int i = 0; i < NA; ++i) dk[i] = dv[i] = 0.0f;
    float st[32], dp[32], dq[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) st[i] = dp[i] = dq[i] = 0.0f;
    uint32_t pa[BM / 16][4], sa[BM / 16][4];

    if (n_steps > 0) mbar_wait(full_kv, 0);
    // dQ rows m0 + 16 warp + g (+ 8), columns dq_col0 + 8 i + 2 tq (+ 1) of head h added to dq_acc: into
    // one of the warpgroup's two shared tiles (by parity of its use), row r at r * 128 bytes, columns
    // 32 x + c at x * 8 KB + chunk ((c / 4) ^ (r % 8)) * 16 + (c % 4) * 4 (the 128-byte swizzle of tm_dq; the
    // 8-byte stores of a warp cover each 16-byte chunk twice: two wavefronts, no conflict); then one barrier
    // of the warpgroup, after which its first thread adds the tile to dq_acc with two bulk tensor
    // reductions (rows past the end are skipped) that the TMA unit carries out while the warpgroup moves
    // on. Before that barrier the first thread waits until the previous use's reductions have read their
    // tile (issued a step earlier: rarely a wait), which frees that tile for the next use.
    const uint32_t dq_tiles = base + Cfg::OFF_DQ + static_cast<uint32_t>(cw * 2 * Cfg::DQ_BYTES);
    uint32_t dq_use = 0;  // uses of the tiles so far
    // D = 64 (whose two warpgroups add to the same dQ rows and columns) measured faster with one tile and
    // two barriers (the first thread waits for the previous reductions to read it, a barrier, the stores,
    // a barrier): 286 vs 257 TFLOP/s fwd+bwd on B8 H16 S2048 D64 causal; D = 128 with two tiles 386 vs 375.
    constexpr bool TWO_TILES = D == 128;
    auto add_dq = [&](int64_t m0, int h) {
        const uint32_t k = dq_use++;
        const uint32_t tile = dq_tiles + static_cast<uint32_t>((TWO_TILES ? k & 1 : 0) * Cfg::DQ_BYTES);
        if (!TWO_TILES) {
            if (ctid == 0) bulk_wait<0, true>();
            named_barrier(2 + cw, 128);
        }
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            const uint32_t row = tile + static_cast<uint32_t>((16 * warp + g + 8 * r) * 128 + ((tq & 1) << 3));
#pragma unroll
            for (int i = 0; i < 8; ++i)
                st_shared_f32x2(row + static_cast<uint32_t>((i >> 2) * 64 * 128 + (((2 * (i & 3) + (tq >> 1)) ^ g) << 4)),
                                dq[4 * i + 2 * r], dq[4 * i + 2 * r + 1]);
        }
        fence_proxy_async();
        if (TWO_TILES && ctid == 0) bulk_wait<0, true>();
        named_barrier(2 + cw, 128);
        if (ctid == 0 && m0 < p.S) {
#pragma unroll
            for (int x = 0; x < 2; ++x)
                tma_reduce_add_4d(&tm_dq, dq_col0 + 32 * x, h, static_cast<int>(m0), static_cast<int>(b),
                                  tile + static_cast<uint32_t>(x * 64 * 128));
            bulk_commit();
        }
    };
    // dQ = dS K from dS^T buffer ds_buf: A = dS^T (MN-major: queries contiguous, 8-key groups 1024 bytes
    // apart), B = K (MN-major: D contiguous). Issued and committed.
    // One k-step (16 keys) of it (kk == 0 starts the accumulation), not committed.
    auto dq_kstep = [&](uint32_t ds_buf, int kk) {
        const uint32_t row = static_cast<uint32_t>((dq_key0 + 16 * kk) * 128);
        WgB<T>::template ss64<1, 1>(dq, sw128_desc(ds_buf + row, 8 * 1024, 1024),
                                    sw128_desc(sK + static_cast<uint32_t>((dq_col0 / 64) * BN * 128) + row, BN * 128,
                                               1024),
                                    kk > 0 ? 1 : 0);
    };
    auto issue_dq = [&](uint32_t ds_buf) {
        // A fresh definition (the first k-step overwrites it): dq is not live between the steps.
#pragma unroll
        for (int i = 0; i < 32; ++i) dq[i] = 0.0f;
        fence_regs(dq);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < DQ_K; ++kk) dq_kstep(ds_buf, kk);
        wgmma_commit();
    };

    // dV += P^T dO and dK += dS^T Q (B MN-major: queries = K, 8-row groups 1024 bytes apart; column halves
    // BM * 128 bytes apart) with the k-steps of dQ = dS K from ds_buf (D = 128: 8, two per query step; D =
    // 64: 4) in between: three independent accumulation chains. Issued and committed.
    auto issue_mixed = [&](uint32_t ds_buf, uint32_t q_base, uint32_t do_base) {
#pragma unroll
        for (int i = 0; i < 32; ++i) dq[i] = 0.0f;
        fence_regs(dq);
        fence_regs(pa);
        fence_regs(sa);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BM / 16; ++kk) {
            Wg<T>::rs(dv, pa[kk], sw128_desc(do_base + static_cast<uint32_t>(kk * 16 * 128), BM * 128, 1024));
            dq_kstep(ds_buf, (DQ_K / (BM / 16)) * kk);
            Wg<T>::rs(dk, sa[kk], sw128_desc(q_base + static_cast<uint32_t>(kk * 16 * 128), BM * 128, 1024));
            if (DQ_K == 2 * (BM / 16)) dq_kstep(ds_buf, 2 * kk + 1);
        }
        wgmma_commit();
    };

    int64_t mi = mt_first;  // the next step's query block and head
    int h_next = hk * p.G;
    int64_t prev_m0 = 0;  // the previous step's (LAG)
    int prev_h = 0;
    int s = 0;         // the step's stage
    uint32_t use = 0;  // and its use of that stage
#pragma unroll 1
    for (int64_t step = 0; step < n_steps; ++step, (++s == ST ? (s = 0, ++use) : 0)) {
        const int h = h_next;
        const int64_t m0 = mi * BM;
        if (++mi == n_mt) {
            mi = mt_first;
            ++h_next;
        }
        const uint32_t q_base = sQ + static_cast<uint32_t>(s * Cfg::QB_BYTES);
        const uint32_t do_base = sdO + static_cast<uint32_t>(s * Cfg::QB_BYTES);
        const uint32_t ds_buf = sdS + static_cast<uint32_t>((step & 1) * Cfg::DS_BYTES);
        mbar_wait(full(s), use & 1);

        // S^T = K Q^T, dP^T = V dO^T (64 keys x 64 queries each; k-steps of 16 over D), two groups.
        fence_regs(st);
        fence_regs(dp);
        wgmma_fence();
        // One k-step of S^T (x = 0) or dP^T (x = 1).
        auto sdp_kstep = [&](int x, int kk) {
            const uint32_t koff = static_cast<uint32_t>((kk >> 2) * BN * 128 + (kk & 3) * 32);
            const uint32_t qoff = static_cast<uint32_t>((kk >> 2) * BM * 128 + (kk & 3) * 32);
            if (x == 0)
                WgB<T>::template ss64<0, 0>(st, sw128_desc(k_base + koff, 16, 1024), sw128_desc(q_base + qoff, 16, 1024),
                                            kk > 0 ? 1 : 0);
            else
                WgB<T>::template ss64<0, 0>(dp, sw128_desc(v_base + koff, 16, 1024), sw128_desc(do_base + qoff, 16, 1024),
                                            kk > 0 ? 1 : 0);
        };
        // ILV bit 0: the two chains alternate in one group; otherwise S^T, then dP^T, in two groups.
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            sdp_kstep(0, kk);
            if (ILV & 1) sdp_kstep(1, kk);
        }
        if (!(ILV & 1)) {
            wgmma_commit();
#pragma unroll
            for (int kk = 0; kk < D / 16; ++kk) sdp_kstep(1, kk);
        }
        wgmma_commit();

        // lse * log2e of this thread's query columns 8 i + 2 tq, + 1.
        float l2[16];
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const float2 a = ld_shared_f32x2(sL + 4u * (s * BM + 8 * i + 2 * tq));
            l2[2 * i] = a.x;
            l2[2 * i + 1] = a.y;
        }
        // Masking: keys past the end (their K rows are zero-filled, but P must not be huge there) and the
        // causal boundary. Rows past the end have lse +inf (P = 0).
        const bool need_mask = n0 + 64 * cw + 64 > p.Skv || (CAUSAL && n0 + 64 * cw + 63 > m0 + p.off);
        if (ILV & 1)
            wgmma_wait<0>();
        else
            wgmma_wait<1>();
        fence_regs(st);
        // P^T: element 4 i + 2 r + e is (key key_a + 8 r, query m0 + 8 i + 2 tq + e).
        if (CAUSAL) {
#pragma unroll
            for (int x = 0; x < 32; ++x)
                st[x] = dsattn::exp2_approx(fmaf(st[x], scale_log2, -l2[2 * (x >> 2) + (x & 1)]));
            if (need_mask) {
                // A pass of its own, which the steps off the diagonal (most of them) branch over; 32-bit
                // (sequences below 2^30): key j is masked for query q when j >= Skv or j - off > q. On an
                // H100 (B8 H16 S2048 D128 causal, fwd+bwd, same run) 404-407 TFLOP/s against 396-399 with
                // the 64-bit test inside the exponent loop, which ptxas made predicated selects run on
                // every step; S8192 521-525 against 510. Without a mask the old form measured faster
                // (500-505 against 494-496) and stays below.
                const int j0 = static_cast<int>(key_a), skv = static_cast<int>(p.Skv), off = static_cast<int>(p.off);
                const int q0 = static_cast<int>(m0) + 2 * tq;
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int r = 0; r < 2; ++r)
#pragma unroll
                        for (int e = 0; e < 2; ++e) {
                            const int j = j0 + 8 * r;
                            if (j >= skv || j - off > q0 + 8 * i + e) st[4 * i + 2 * r + e] = 0.0f;
                        }
            }
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i)
#pragma unroll
                for (int r = 0; r < 2; ++r)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        float pv = dsattn::exp2_approx(fmaf(st[4 * i + 2 * r + e], scale_log2, -l2[2 * i + e]));
                        if (need_mask && key_a + 8 * r >= p.Skv) pv = 0.0f;  // keys past the end
                        st[4 * i + 2 * r + e] = pv;
                    }
        }
        wgmma_wait<0>();
        fence_regs(dp);
        float dsv[16];  // Dsum of the same columns
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const float2 c = ld_shared_f32x2(sDsum + 4u * (s * BM + 8 * i + 2 * tq));
            dsv[2 * i] = c.x;
            dsv[2 * i + 1] = c.y;
        }
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int r = 0; r < 2; ++r)
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    dp[4 * i + 2 * r + e] = st[4 * i + 2 * r + e] * (dp[4 * i + 2 * r + e] - dsv[2 * i + e]);
        // A fragments of query step kk (queries 16 kk ..): accumulator blocks 2 kk and 2 kk + 1.
#pragma unroll
        for (int kk = 0; kk < BM / 16; ++kk) {
#pragma unroll
            for (int x = 0; x < 4; ++x) {
                pa[kk][x] = dsattn::pack2<T>(st[8 * kk + 2 * x], st[8 * kk + 2 * x + 1]);
                sa[kk][x] = dsattn::pack2<T>(dp[8 * kk + 2 * x], dp[8 * kk + 2 * x + 1]);
            }
        }
        // dV += P^T dO, dK += dS^T Q: B MN-major (queries = K, 8-row groups 1024 bytes apart; column
        // halves BM * 128 bytes apart).
        constexpr bool MIX = LAG && (ILV & 2) != 0 && D == 128;
        // D = 64 without LAG: dV, dK and this step's dQ (over the warpgroup's own keys) issued together,
        // after dS^T is stored.
        constexpr bool MIX64 = !LAG && (ILV & 2) != 0 && D == 64;
        if (MIX) {
            // dV, dK of this step with dQ of the previous one (in step 0 a discarded product), once both
            // warpgroups' dS^T of it is in shared memory: three accumulation chains in flight.
            const int64_t u = step - 1;
            if (step >= 1) mbar_wait(ds_full(static_cast<int>(u & 1)), static_cast<uint32_t>((u >> 1) & 1));
            issue_mixed(sdS + static_cast<uint32_t>((step >= 1 ? (u & 1) : 1) * Cfg::DS_BYTES), q_base, do_base);
        } else if (!MIX64) {
            fence_regs(pa);
            fence_regs(sa);
            wgmma_fence();
#pragma unroll
            for (int kk = 0; kk < BM / 16; ++kk)
                Wg<T>::rs(dv, pa[kk], sw128_desc(do_base + static_cast<uint32_t>(kk * 16 * 128), BM * 128, 1024));
#pragma unroll
            for (int kk = 0; kk < BM / 16; ++kk)
                Wg<T>::rs(dk, sa[kk], sw128_desc(q_base + static_cast<uint32_t>(kk * 16 * 128), BM * 128, 1024));
            wgmma_commit();
        }

        // dS^T to shared memory: row 64 cw + 16 warp + g (+ 8), chunk i (queries 8 i ..) at i ^ g.
        if (LAG && step >= 2)  // both warpgroups' dQ of step - 2 (the buffer's last use) is done
            mbar_wait(ds_empty(static_cast<int>(step & 1)), static_cast<uint32_t>(((step >> 1) + 1) & 1));
        {
            const uint32_t row = ds_buf + static_cast<uint32_t>((64 * cw + 16 * warp + g) * 128 + 4 * tq);
#pragma unroll
            for (int kk = 0; kk < BM / 16; ++kk)
#pragma unroll
                for (int x = 0; x < 4; ++x) {
                    const int i = 2 * kk + (x >> 1), r = x & 1;
                    st_shared_u32(row + static_cast<uint32_t>(r * 8 * 128 + ((i ^ g) << 4)), sa[kk][x]);
                }
        }
        fence_proxy_async();
        if (LAG) {
            mbar_arrive(ds_full(static_cast<int>(step & 1)));
            if (!MIX) {
                // dQ of the previous step, once both warpgroups' dS^T of it is in shared memory; in step 0
                // from the other buffer (the product is discarded: issued unconditionally, since ptxas
                // serializes the wgmma of a conditional issue here for want of registers).
                const int64_t u = step - 1;
                if (step >= 1) mbar_wait(ds_full(static_cast<int>(u & 1)), static_cast<uint32_t>((u >> 1) & 1));
                issue_dq(sdS + static_cast<uint32_t>((step >= 1 ? (u & 1) : 1) * Cfg::DS_BYTES));
            }
            wgmma_wait<0>();
            fence_regs(dq);
            fence_regs(dv);
            fence_regs(dk);
            fence_regs(pa);
            fence_regs(sa);
            mbar_arrive(empty(s));
            if (step >= 1) {
                mbar_arrive(ds_empty(static_cast<int>((step - 1) & 1)));
                add_dq(prev_m0, prev_h);
            }
            prev_m0 = m0;
            prev_h = h;
        } else {
            // dS^T is in shared memory: both warpgroups' (D = 128: dQ columns over all keys) or this one's
            // (D = 64: dQ over its own keys).
            if (D == 64)
                named_barrier(2 + cw, 128);
            else
                named_barrier(1, 256);
            if (MIX64) {
                issue_mixed(ds_buf, q_base, do_base);
            } else {
                issue_dq(ds_buf);
            }
            wgmma_wait<0>();
            fence_regs(dq);
            fence_regs(dv);
            fence_regs(dk);
            fence_regs(pa);
            fence_regs(sa);
            mbar_arrive(empty(s));
            add_dq(m0, h);
        }
    }
    if (LAG && n_steps > 0) {  // dQ of the last step
        const int64_t u = n_steps - 1;
        mbar_wait(ds_full(static_cast<int>(u & 1)), static_cast<uint32_t>((u >> 1) & 1));
        issue_dq(sdS + static_cast<uint32_t>((u & 1) * Cfg::DS_BYTES));
        wgmma_wait<0>();
        fence_regs(dq);
        add_dq(prev_m0, prev_h);
    }

    // ---- epilogue: dK * scale and dV (rows key_a, key_a + 8) into the K and V tiles, which both warpgroups
    // are done reading (their last products were waited for above), in the layout of the loads (16-byte
    // chunk c of row r at c ^ (r % 8): conflict-free); then one thread stores both tiles with bulk tensor
    // copies (rows past the end are not written) and waits until they have read shared memory.
    if (ctid == 0) bulk_wait<0, true>();  // the last reductions have read their tile
    named_barrier(1, 256);
    {
        const uint32_t row = static_cast<uint32_t>((64 * cw + 16 * warp + g) * 128 + 4 * tq);
#pragma unroll
        for (int r = 0; r < 2; ++r)
#pragma unroll
            for (int i = 0; i < D / 8; ++i) {
                const uint32_t at = row + static_cast<uint32_t>(r * 8 * 128 + (i >> 3) * BN * 128 + (((i & 7) ^ g) << 4));
                st_shared_u32(sK + at, dsattn::pack2<T>(dk[4 * i + 2 * r] * p.scale, dk[4 * i + 2 * r + 1] * p.scale));
                st_shared_u32(sV + at, dsattn::pack2<T>(dv[4 * i + 2 * r], dv[4 * i + 2 * r + 1]));
            }
    }
    fence_proxy_async();
    named_barrier(1, 256);
    if (tid == 128) {
#pragma unroll
        for (int c = 0; c < D / 64; ++c) {
            tma_store_4d(&tm_dk, 64 * c, hk, static_cast<int>(n0), static_cast<int>(b), sK + c * BN * 128);
            tma_store_4d(&tm_dv, 64 * c, hk, static_cast<int>(n0), static_cast<int>(b), sV + c * BN * 128);
        }
        bulk_commit();
        bulk_wait<0, true>();
    }
#else
    (void)p;  // not sm_90a: never launched (the launcher runs only on compute capability 9.0)
    (void)n_kb;
    (void)tm_q;
    (void)tm_k;
    (void)tm_v;
    (void)tm_do;
    (void)tm_dk;
    (void)tm_dv;
    (void)tm_dq;
#endif
}

}  // namespace dsattn90
