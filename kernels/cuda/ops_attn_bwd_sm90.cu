// Launcher of the Hopper (sm_90a) flash attention backward main kernel (ops_attn_bwd_sm90.cuh). This file
// is compiled for sm_90a only (the dsabi_cuda_sm90a object library, kernels/CMakeLists.txt); ops_attn.cu
// calls attn_bwd_sm90 on compute capability 9.0 devices, between its Dsum and dq conversion kernels.
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <type_traits>

#include "cuda_common.cuh"
#include "ops_attn_bwd_sm90.cuh"

namespace dscuda {
namespace {

// An environment variable read once: its value when it is one of `allowed`, else -1.
int env_choice(const char* name, std::initializer_list<const char*> allowed) {
    const char* e = std::getenv(name);
    if (!e) return -1;
    int i = 0;
    for (const char* a : allowed) {
        if (std::string(e) == a) return i;
        ++i;
    }
    return -1;
}

// DSABI_ATTN_BWD_SM90_ILV=0..3 (the kernel's ILV bits): bit 0, the S^T and dP^T k-steps alternate; bit
// 1, the dV, dK and dQ k-steps alternate (D = 128: with the previous step's dQ; D = 64: with this step's).
// Default 3. Measured on an H100 (B8 H16 S2048 causal bf16, fwd+bwd TFLOP/s): with one dQ tile per
// warpgroup, ILV 0 / 1 / 3: D = 128 370 / 377 / 369-370, D = 64 265 / 269 / 278-279; with two tiles for
// D = 128 (the kernel now), 1 / 3: 379-380 / 386 (non-causal 471-473 / 490). Each lets the tensor cores
// work on independent accumulators; before dQ went through bulk reductions, D = 128 gave 330 / 336 / 357.
// Read once; -1 when unset.
int ilv_env() {
    static const int v = env_choice("DSABI_ATTN_BWD_SM90_ILV", {"0", "1", "2", "3"});
    return v;
}

// CTA order: 0, (batch, head) major and key blocks minor (the CTAs that run together share their head's
// Q and dO in L2), or N > 0, chunks of N (batch, head) pairs with key blocks major inside a chunk (under a
// causal mask the longest CTAs of a chunk first, which shortens the tail of the grid; 1 is the same as 0;
// key blocks major over all pairs at once thrashed L2: 197 vs 294 TFLOP/s on B8 H16 S2048 D128 causal). Default: 8 under a causal
// mask, 0 without. Measured on an H100 (fwd+bwd TFLOP/s, order 0 / 8, same run): B8 H16 S2048 D128 causal
// 381 / 386, D64 causal 283 / 294, B2 S8192 D128 causal 484 / 492. DSABI_ATTN_BWD_SM90_ORDER=N overrides
// (read once; -1 when unset).
int order_env() {
    static const int v = [] {
        const char* e = std::getenv("DSABI_ATTN_BWD_SM90_ORDER");
        const int n = e ? std::atoi(e) : -1;
        return n >= 0 && n < 65536 ? n : -1;
    }();
    return v;
}

// D = 128 runs with LAG (dQ of a step computed in the next one, so that the warpgroups meet only through
// the mbarriers of the dS^T buffers), D = 64 without (its dQ covers the warpgroup's own keys: no meeting).
template <typename T, int D, bool CAUSAL, int ILV>
int launch_bwd_sm90(const dsattn::BwdParams& p, int64_t B, bool* launched) {
    constexpr bool LAG = D == 128;
    using Cfg = dsattn90::BwdSm90Cfg<D, 2>;
    constexpr bool bf16 = std::is_same<T, __nv_bfloat16>::value;
    *launched = false;
    CUtensorMap tq{}, tk{}, tv{}, tdo{}, tdk{}, tdv{}, tdq{};
    if (!attn_sm90_make_map(&tq, p.q, bf16, D, p.Hq, p.S, B, Cfg::BM) ||
        !attn_sm90_make_map(&tdo, p.dout, bf16, D, p.Hq, p.S, B, Cfg::BM) ||
        !attn_sm90_make_map(&tk, p.k, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map(&tv, p.v, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map(&tdk, p.dk, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map(&tdv, p.dv, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map_f32(&tdq, p.dq_acc, D, p.Hq, p.S, B, Cfg::BM))
        return DS_BACKEND_OK;
    auto kern = dsattn90::attn_bwd_sm90_kernel<T, D, CAUSAL, LAG, 2, ILV>;
    int rc = check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM),
                   "ds_op_attention_backward: cudaFuncSetAttribute (sm90)");
    if (rc != DS_BACKEND_OK) return rc;
    const int64_t n_kb = (p.Skv + Cfg::BN - 1) / Cfg::BN;
    const int64_t grid = n_kb * p.Hkv * B;
    if (grid <= 0) {
        *launched = true;
        return DS_BACKEND_OK;
    }
    // (never for tensors that fit in memory) the FA2 kernel takes it: 31-bit grid and step counts
    if (grid > 0x7fffffff || (p.S + Cfg::BM - 1) / Cfg::BM * p.Hq > 0x7fffffff) return DS_BACKEND_OK;
    *launched = true;
    const int order = order_env() >= 0 ? order_env() : CAUSAL ? 8 : 0;
    // Programmatic: the CTAs set up and load K / V while the Dsum kernel finishes (the kernel waits for
    // it before it reads Dsum or adds to dq_acc).
    return launch_dependent(kern, dim3(static_cast<unsigned>(grid)), dim3(Cfg::NT), Cfg::SMEM,
                            "ds_op_attention_backward: main kernel (sm90)", p, static_cast<int>(n_kb), order, tq, tk,
                            tv, tdo, tdk, tdv, tdq);
}

template <typename T, int D, bool CAUSAL>
int dispatch_ilv(const dsattn::BwdParams& p, int64_t B, bool* launched) {
    const int v = ilv_env() >= 0 ? ilv_env() : 3;
    switch (v) {
        case 0: return launch_bwd_sm90<T, D, CAUSAL, 0>(p, B, launched);
        case 1: return launch_bwd_sm90<T, D, CAUSAL, 1>(p, B, launched);
        case 2: return launch_bwd_sm90<T, D, CAUSAL, 2>(p, B, launched);
        default: return launch_bwd_sm90<T, D, CAUSAL, 3>(p, B, launched);
    }
}

template <typename T, int D>
int dispatch(const dsattn::BwdParams& p, int64_t B, bool causal, bool* launched) {
    return causal ? dispatch_ilv<T, D, true>(p, B, launched) : dispatch_ilv<T, D, false>(p, B, launched);
}

}  // namespace

int attn_bwd_sm90(const dsattn::BwdParams& p, int64_t B, int D, bool bf16, bool causal, bool* launched) {
    if (bf16) return D == 64 ? dispatch<__nv_bfloat16, 64>(p, B, causal, launched)
                             : dispatch<__nv_bfloat16, 128>(p, B, causal, launched);
    return D == 64 ? dispatch<__half, 64>(p, B, causal, launched) : dispatch<__half, 128>(p, B, causal, launched);
}

}  // namespace dscuda
