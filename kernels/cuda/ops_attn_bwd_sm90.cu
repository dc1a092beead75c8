// Launcher of the Hopper (sm_90a) flash attention backward main kernel (ops_attn_bwd_sm90.cuh). This file
// is compiled for sm_90a only (the dsabi_cuda_sm90a object library, kernels/CMakeLists.txt); ops_attn.cu
// calls attn_bwd_sm90 on compute capability 9.0 devices, between its Dsum and dq conversion kernels.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "cuda_common.cuh"
#include "ops_attn_bwd_sm90.cuh"

namespace dscuda {
namespace {

// DSABI_ATTN_BWD_SM90_LAG=0|1: dQ of a step computed in the next one (1: the consumer warpgroups meet
// only through mbarriers and may drift apart by a step) or in the same step after a barrier (0: of both
// warpgroups for D = 128; of the warpgroup alone for D = 64, whose dQ covers its own keys). Read once.
// Default: 1 for D = 128, 0 for D = 64 (measured on an H100: D = 128 bwd 372 vs 348 TFLOP/s non-causal,
// 294 vs 282 causal; D = 64 causal 182-185 vs 190-191).
bool want_lag(int D) {
    static const int v = [] {
        const char* e = std::getenv("DSABI_ATTN_BWD_SM90_LAG");
        if (e && (e[0] == '0' || e[0] == '1') && e[1] == 0) return e[0] - '0';
        return -1;
    }();
    return v >= 0 ? v == 1 : D == 128;
}

// DSABI_ATTN_BWD_SM90_ORDER=N: CTA order, (batch, head) major and key blocks minor (0, the default: the
// CTAs that run together share their head's Q and dO in L2), or chunks of N (batch, head) pairs with key
// blocks major inside a chunk (under a causal mask the longest CTAs of a chunk first; 1: all pairs one
// chunk, which thrashes L2: 197 vs 294 TFLOP/s on B8 H16 S2048 D128 causal; 8 or 16: 1.03-1.07x on the
// causal S2048 shapes, slower without a mask, not measured at S8192, so not the default). Read once.
int order() {
    static const int v = [] {
        const char* e = std::getenv("DSABI_ATTN_BWD_SM90_ORDER");
        const int n = e ? std::atoi(e) : 0;
        return n > 0 && n < 65536 ? n : 0;
    }();
    return v;
}

// DSABI_ATTN_BWD_SM90_STAGES=2|3: Q / dO stages (default 2; 3 measured no faster). Read once.
int stages() {
    static const int v = [] {
        const char* e = std::getenv("DSABI_ATTN_BWD_SM90_STAGES");
        return e && e[0] == '3' && e[1] == 0 ? 3 : 2;
    }();
    return v;
}

// DSABI_ATTN_BWD_SM90_DQ=v2|v4: how the consumers add their dQ to the f32 workspace: 8-byte reductions
// straight from the accumulators (v2, the default) or 16-byte ones after pairs of lanes swap halves (v4).
// Read once.
int dq_v4() {
    static const int v = [] {
        const char* e = std::getenv("DSABI_ATTN_BWD_SM90_DQ");
        return e && std::string(e) == "v4" ? 1 : 0;
    }();
    return v;
}

template <typename T, int D, bool CAUSAL, bool LAG, int ST>
int launch_bwd_sm90(const dsattn::BwdParams& p, int64_t B, bool* launched) {
    using Cfg = dsattn90::BwdSm90Cfg<D, ST>;
    constexpr bool bf16 = std::is_same<T, __nv_bfloat16>::value;
    *launched = false;
    CUtensorMap tq{}, tk{}, tv{}, tdo{}, tdk{}, tdv{};
    if (!attn_sm90_make_map(&tq, p.q, bf16, D, p.Hq, p.S, B, Cfg::BM) ||
        !attn_sm90_make_map(&tdo, p.dout, bf16, D, p.Hq, p.S, B, Cfg::BM) ||
        !attn_sm90_make_map(&tk, p.k, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map(&tv, p.v, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map(&tdk, p.dk, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) ||
        !attn_sm90_make_map(&tdv, p.dv, bf16, D, p.Hkv, p.Skv, B, Cfg::BN))
        return DS_BACKEND_OK;
    auto kern = dsattn90::attn_bwd_sm90_kernel<T, D, CAUSAL, LAG, ST>;
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
    kern<<<static_cast<unsigned>(grid), Cfg::NT, Cfg::SMEM, 0>>>(p, static_cast<int>(n_kb), order(), dq_v4(), tq, tk,
                                                                  tv, tdo, tdk, tdv);
    return check_launch("ds_op_attention_backward: main kernel (sm90)");
}

template <typename T, bool LAG, int ST>
int dispatch(const dsattn::BwdParams& p, int64_t B, int D, bool causal, bool* launched) {
    if (D == 64)
        return causal ? launch_bwd_sm90<T, 64, true, LAG, ST>(p, B, launched)
                      : launch_bwd_sm90<T, 64, false, LAG, ST>(p, B, launched);
    return causal ? launch_bwd_sm90<T, 128, true, LAG, ST>(p, B, launched)
                  : launch_bwd_sm90<T, 128, false, LAG, ST>(p, B, launched);
}

template <typename T>
int dispatch_t(const dsattn::BwdParams& p, int64_t B, int D, bool causal, bool* launched) {
    const bool lag = want_lag(D);
    if (stages() == 3)
        return lag ? dispatch<T, true, 3>(p, B, D, causal, launched) : dispatch<T, false, 3>(p, B, D, causal, launched);
    return lag ? dispatch<T, true, 2>(p, B, D, causal, launched) : dispatch<T, false, 2>(p, B, D, causal, launched);
}

}  // namespace

int attn_bwd_sm90(const dsattn::BwdParams& p, int64_t B, int D, bool bf16, bool causal, bool* launched) {
    return bf16 ? dispatch_t<__nv_bfloat16>(p, B, D, causal, launched) : dispatch_t<__half>(p, B, D, causal, launched);
}

}  // namespace dscuda
