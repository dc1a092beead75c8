// Launchers of the Hopper (sm_90a) flash attention forward (kernel in ops_attn_sm90.cuh). This file is
// compiled for sm_90a only (the dsabi_cuda_sm90a object library, kernels/CMakeLists.txt); ops_attn.cu
// calls attn_fwd_sm90 on compute capability 9.0 devices.
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <type_traits>

#include <cuda.h>
#include <cudaTypedefs.h>

#include "cuda_common.cuh"
#include "ops_attn_sm90.cuh"

namespace dscuda {
namespace {

// Consumer schedule (SCHED of the kernel): DSABI_ATTN_SM90_SCHED=0|1|2 (read once; kept for
// measurements), default kDefaultSched.
constexpr int kDefaultSched = 1;
int sched() {
    static const int v = [] {
        const char* e = std::getenv("DSABI_ATTN_SM90_SCHED");
        if (e && (e[0] == '0' || e[0] == '1' || e[0] == '2') && e[1] == 0) return e[0] - '0';
        return kDefaultSched;
    }();
    return v;
}

// K / V stages for D = 128: 2 (160 KB of shared memory, the default) or 3 (224 KB) with
// DSABI_ATTN_SM90_STAGES=3 (read once; kept for measurements: the same speed on an H100 since the K and V
// rings refill separately). D = 64 uses 4 (144 KB).
int stages128() {
    static const int n = [] {
        const char* e = std::getenv("DSABI_ATTN_SM90_STAGES");
        return e && e[0] == '3' && e[1] == 0 ? 3 : 2;
    }();
    return n;
}

// CTAs of the persistent grid: one per multiprocessor (cached per device), or DSABI_ATTN_SM90_GRID=N
// (read once; a test knob: a small grid makes every CTA run many work items).
int grid_size(int64_t n_items) {
    static const int forced = [] {
        const char* e = std::getenv("DSABI_ATTN_SM90_GRID");
        return e ? std::atoi(e) : 0;
    }();
    int n = forced;
    if (n <= 0) {
        static std::mutex mutex;
        static int sms[64] = {};
        std::lock_guard<std::mutex> lock(mutex);
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
        if (dev < 0 || dev >= 64) dev = 0;
        if (sms[dev] == 0) {
            int c = 0;
            if (cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || c <= 0) {
                (void)cudaGetLastError();
                c = 132;
            }
            sms[dev] = c;
        }
        n = sms[dev];
    }
    return static_cast<int>(n_items < n ? n_items : n);
}

// Loads: bulk tensor copies (TMA, the default) or cp.async with DSABI_ATTN_SM90_LOAD=cpasync (read once;
// also the fallback when the driver gives no tensor-map encoder).
bool want_tma() {
    static const bool v = [] {
        const char* e = std::getenv("DSABI_ATTN_SM90_LOAD");
        return !(e && std::string(e) == "cpasync");
    }();
    return v;
}

// cuTensorMapEncodeTiled from the driver (through the runtime; nullptr when unavailable).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
    static std::once_flag once;
    std::call_once(once, [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) == cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
        else
            (void)cudaGetLastError();
    });
    return fn;
}

// Tensor map of a [B, S, H, D] tensor of elements of `esize` bytes as dimensions (D, H, S, B), boxes of
// 128 bytes of a row x `rows` rows, 128-byte swizzle, zero fill out of bounds. False when the encoder
// refuses.
bool make_map_of(CUtensorMap* m, const void* base, CUtensorMapDataType type, int esize, int D, int64_t H, int64_t S,
                 int64_t B, int rows) {
    PFN_cuTensorMapEncodeTiled_v12000 enc = tensor_map_encoder();
    if (!enc) return false;
    const cuuint64_t e = static_cast<cuuint64_t>(esize);
    const cuuint64_t dim[4] = {static_cast<cuuint64_t>(D), static_cast<cuuint64_t>(H),
                               static_cast<cuuint64_t>(S > 0 ? S : 1), static_cast<cuuint64_t>(B)};
    const cuuint64_t stride[3] = {static_cast<cuuint64_t>(D) * e, static_cast<cuuint64_t>(H * D) * e,
                                  static_cast<cuuint64_t>((S > 0 ? S : 1) * H * D) * e};
    const cuuint32_t box[4] = {static_cast<cuuint32_t>(128 / esize), 1, static_cast<cuuint32_t>(rows), 1};
    const cuuint32_t estride[4] = {1, 1, 1, 1};
    return enc(m, type, 4, const_cast<void*>(base), dim, stride, box, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
               CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

// A [B, S, H, D] 16-bit tensor: boxes of 64 columns x `rows` rows.
bool make_map(CUtensorMap* m, const void* base, bool bf16, int D, int64_t H, int64_t S, int64_t B, int rows) {
    return make_map_of(m, base, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, D, H, S,
                       B, rows);
}

template <typename T, int D, int ST, bool CAUSAL, int SCHED>
int launch_sm90(const dsattn::FwdParams& p, int64_t B, unsigned long long* counter) {
    using Cfg = dsattn90::Sm90Cfg<D, ST>;
    constexpr bool bf16 = std::is_same<T, __nv_bfloat16>::value;
    CUtensorMap tq{}, tk{}, tv{}, to{};
    // (to: the output, boxes of the 64 rows of a consumer warpgroup; used when Cfg::OBUF)
    const bool tma = want_tma() && make_map(&tq, p.q, bf16, D, p.Hq, p.S, B, Cfg::BM) &&
                     make_map(&tk, p.k, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) &&
                     make_map(&tv, p.v, bf16, D, p.Hkv, p.Skv, B, Cfg::BN) &&
                     make_map(&to, p.o, bf16, D, p.Hq, p.S, B, Cfg::BM / 2);
    // The cp.async loader runs with the plain schedule (its producer's registers leave the software-
    // pipelined consumers too few: ptxas spills and serializes the wgmma there).
    auto kern = tma ? dsattn90::attn_fwd_sm90_kernel<T, D, ST, CAUSAL, SCHED, true>
                    : dsattn90::attn_fwd_sm90_kernel<T, D, ST, CAUSAL, 0, false>;
    int rc = check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM),
                   "ds_op_attention: cudaFuncSetAttribute (sm90)");
    if (rc != DS_BACKEND_OK) return rc;
    const int64_t n_items = (p.S + Cfg::BM - 1) / Cfg::BM * p.Hq * B;
    const int grid = grid_size(n_items);
    kern<<<grid, Cfg::NT, Cfg::SMEM, 0>>>(p, counter, n_items, tq, tk, tv, to);
    return check_launch("ds_op_attention: forward kernel (sm90)");
}

template <typename T, int SCHED>
int dispatch(const dsattn::FwdParams& p, int64_t B, int D, bool causal, unsigned long long* c) {
    if (D == 64)
        return causal ? launch_sm90<T, 64, 4, true, SCHED>(p, B, c) : launch_sm90<T, 64, 4, false, SCHED>(p, B, c);
    if (stages128() == 3)
        return causal ? launch_sm90<T, 128, 3, true, SCHED>(p, B, c) : launch_sm90<T, 128, 3, false, SCHED>(p, B, c);
    return causal ? launch_sm90<T, 128, 2, true, SCHED>(p, B, c) : launch_sm90<T, 128, 2, false, SCHED>(p, B, c);
}

}  // namespace

// make_map for the backward (ops_attn_bwd_sm90.cu).
bool attn_sm90_make_map(CUtensorMap* m, const void* base, bool bf16, int D, int64_t H, int64_t S, int64_t B, int rows) {
    return make_map(m, base, bf16, D, H, S, B, rows);
}

bool attn_sm90_make_map_f32(CUtensorMap* m, float* base, int D, int64_t H, int64_t S, int64_t B, int rows) {
    return make_map_of(m, base, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, D, H, S, B, rows);
}

int attn_fwd_sm90(const dsattn::FwdParams& p, int64_t B, int D, bool bf16, bool causal, unsigned long long* counter) {
    const int sc = sched();
    if (bf16) {
        if (sc == 0) return dispatch<__nv_bfloat16, 0>(p, B, D, causal, counter);
        if (sc == 2) return dispatch<__nv_bfloat16, 2>(p, B, D, causal, counter);
        return dispatch<__nv_bfloat16, 1>(p, B, D, causal, counter);
    }
    if (sc == 0) return dispatch<__half, 0>(p, B, D, causal, counter);
    if (sc == 2) return dispatch<__half, 2>(p, B, D, causal, counter);
    return dispatch<__half, 1>(p, B, D, causal, counter);
}

}  // namespace dscuda
