// CUDA ops of the attn family: flash attention forward and backward (kernels in ops_attn_kernels.cuh),
// bf16 and f16, head dimensions 64 and 128, causal or not, grouped-query heads, any sequence lengths.
// The forward has two implementations: the FA2-style mma.sync kernel (ops_attn_kernels.cuh, any sm_80+)
// and the Hopper wgmma kernel (ops_attn_sm90.cuh, compute capability 9.0 only). The environment variable
// DSABI_ATTN_IMPL=fa2|sm90 (read once) forces one; otherwise the default below applies
// (kSm90FwdDefault). Devices other than 9.0, scales <= 0 and sequences of 2^30 or more always use the
// FA2 kernel. The backward's main kernel likewise: FA2 (attn_bwd_kernel) or Hopper
// (ops_attn_bwd_sm90.cuh), DSABI_ATTN_BWD_IMPL=fa2|sm90 (read once), default kSm90BwdDefault; devices
// other than 9.0 and sequences of 2^30 or more use the FA2 kernel. Both share the Dsum and dq kernels.
// Everything runs on the legacy default stream, asynchronously; the backward's f32 workspace (dQ
// accumulator and Dsum) is stream-ordered memory from a memory pool of this module that keeps what it
// has allocated (so that repeated calls do not map and unmap memory), with the device's default pool as
// the fallback.
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <type_traits>

#include "cuda_common.cuh"
#include "op_attn.h"
#include "ops_attn_kernels.cuh"
#include "ops_attn_bwd_sm90.cuh"
#include "ops_attn_sm90.cuh"

namespace dscuda {
namespace {

using dsattn::BwdCfg;
using dsattn::BwdParams;
using dsattn::FwdCfg;
using dsattn::FwdParams;

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The module's workspace pool of device dev (created once; nullptr when pools are unavailable).
cudaMemPool_t workspace_pool(int32_t dev) {
    static std::mutex mutex;
    static cudaMemPool_t pools[64] = {};
    static bool tried[64] = {};
    if (dev < 0 || dev >= 64) return nullptr;
    std::lock_guard<std::mutex> lock(mutex);
    if (!tried[dev]) {
        tried[dev] = true;
        cudaMemPoolProps props{};
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = dev;
        cudaMemPool_t pool = nullptr;
        if (cudaMemPoolCreate(&pool, &props) == cudaSuccess) {
            uint64_t keep = UINT64_MAX;
            cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
            pools[dev] = pool;
        } else {
            (void)cudaGetLastError();
        }
    }
    return pools[dev];
}

// Shared checks of the forward and backward (the C API has validated shapes; these guard the module's
// own limits).
int check_common(int32_t dtype, int32_t D, int64_t B, int64_t S, int64_t Skv, int32_t Hq, int32_t Hkv,
                 std::initializer_list<const void*> ptrs, const char* what) {
    if (dtype != DS_ATTN_DTYPE_BF16 && dtype != DS_ATTN_DTYPE_F16)
        return invalid(std::string(what) + ": CUDA kernels take f16 or bf16 tensors");
    if (D != 64 && D != 128) return invalid(std::string(what) + ": CUDA kernels support head dimensions 64 and 128");
    if (Hkv < 1 || Hq % Hkv != 0) return invalid(std::string(what) + ": Hq must be a multiple of Hkv");
    if (B > 65535 || Hq > 65535) return invalid(std::string(what) + ": batch and heads are limited to 65535 on CUDA");
    if (S > (int64_t)INT_MAX * 64 || Skv > (int64_t)INT_MAX * 64) return invalid(std::string(what) + ": sequence too long");
    for (const void* p : ptrs)
        if (p && !aligned16(p)) return invalid(std::string(what) + ": CUDA attention needs 16-byte aligned tensor data");
    return DS_BACKEND_OK;
}

template <typename T, int D, int NW, int MT, bool CAUSAL>
int launch_fwd(const FwdParams& p, int64_t B) {
    using Cfg = FwdCfg<D, NW, MT>;
    auto kern = dsattn::attn_fwd_kernel<T, D, NW, MT, CAUSAL>;
    int rc = check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM),
                   "ds_op_attention: cudaFuncSetAttribute");
    if (rc != DS_BACKEND_OK) return rc;
    const dim3 grid(static_cast<unsigned>((p.S + Cfg::BM - 1) / Cfg::BM), static_cast<unsigned>(p.Hq),
                    static_cast<unsigned>(B));
    kern<<<grid, Cfg::NT, Cfg::SMEM, 0>>>(p);
    return check_launch("ds_op_attention: forward kernel");
}

// Forward kernel shape: 4 warps x 32 query rows (default), or 8 warps x 16 rows when the environment
// sets DSABI_ATTN_FWD_MT=1 (a variant kept for measurements; read once).
bool fwd_one_mtile() {
    static const bool one = [] {
        const char* e = std::getenv("DSABI_ATTN_FWD_MT");
        return e && e[0] == '1' && e[1] == 0;
    }();
    return one;
}

template <typename T>
int fwd_dispatch(const FwdParams& p, int64_t B, int D, bool causal) {
    if (fwd_one_mtile()) {
        if (D == 64) return causal ? launch_fwd<T, 64, 8, 1, true>(p, B) : launch_fwd<T, 64, 8, 1, false>(p, B);
        return causal ? launch_fwd<T, 128, 8, 1, true>(p, B) : launch_fwd<T, 128, 8, 1, false>(p, B);
    }
    if (D == 64) return causal ? launch_fwd<T, 64, 4, 2, true>(p, B) : launch_fwd<T, 64, 4, 2, false>(p, B);
    return causal ? launch_fwd<T, 128, 4, 2, true>(p, B) : launch_fwd<T, 128, 4, 2, false>(p, B);
}

// Whether the sm_90a forward is used by default on compute capability 9.0 devices.
constexpr bool kSm90FwdDefault = true;

// An implementation choice from the environment: 0 unset (or another value), 1 "fa2", 2 "sm90".
int impl_choice(const char* name) {
    const char* e = std::getenv(name);
    if (!e) return 0;
    const std::string s(e);
    return s == "fa2" ? 1 : s == "sm90" ? 2 : 0;
}

// DSABI_ATTN_IMPL (read once).
int fwd_impl_env() {
    static const int v = impl_choice("DSABI_ATTN_IMPL");
    return v;
}

// Compute capability 9.0 (Hopper: the sm_90a kernels run there and nowhere else); cached per device.
bool device_is_sm90(int32_t dev) {
    static std::mutex mutex;
    static signed char known[64] = {};  // 0 unknown, 1 yes, -1 no
    if (dev < 0 || dev >= 64) return false;
    std::lock_guard<std::mutex> lock(mutex);
    if (known[dev] == 0) {
        int major = 0, minor = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
            (void)cudaGetLastError();
            return false;
        }
        known[dev] = (major == 9 && minor == 0) ? 1 : -1;
    }
    return known[dev] == 1;
}

bool use_sm90_fwd(int32_t dev) {
    const int env = fwd_impl_env();
    if (env == 1) return false;
    if (env == 0 && !kSm90FwdDefault) return false;
    return device_is_sm90(dev);
}

int attn_fwd(int32_t dev, const void* args) {
    int rc = use_device(dev);
    if (rc != DS_BACKEND_OK) return rc;
    const ds_attn_fwd_args_t& a = *static_cast<const ds_attn_fwd_args_t*>(args);
    rc = check_common(a.dtype, a.head_dim, a.batch, a.seq_q, a.seq_kv, a.heads_q, a.heads_kv, {a.q, a.k, a.v, a.o},
                      "ds_op_attention");
    if (rc != DS_BACKEND_OK) return rc;
    if (a.batch == 0 || a.seq_q == 0 || a.heads_q == 0) return DS_BACKEND_OK;
    FwdParams p{};
    p.q = a.q;
    p.k = a.k;
    p.v = a.v;
    p.o = a.o;
    p.lse = a.lse;
    p.S = a.seq_q;
    p.Skv = a.seq_kv;
    p.off = a.seq_kv - a.seq_q;
    p.Hq = a.heads_q;
    p.Hkv = a.heads_kv;
    p.G = a.heads_q / a.heads_kv;
    p.scale_log2 = a.scale * dsattn::kLog2e;
    // The sm_90a kernel: positive scales (its softmax takes the row max before scaling) and sequences
    // below 2^30 (32-bit tensor-map coordinates and tile offsets).
    if (a.scale > 0.0f && a.seq_q < INT_MAX / 2 && a.seq_kv < INT_MAX / 2 && use_sm90_fwd(dev)) {
        // The persistent kernel's work-item counter: stream-ordered, zeroed before the launch.
        void* counter = nullptr;
        cudaMemPool_t pool = workspace_pool(dev);
        rc = check(pool ? cudaMallocFromPoolAsync(&counter, 256, pool, 0) : cudaMallocAsync(&counter, 256, 0),
                   "ds_op_attention: work counter (cudaMallocAsync)");
        if (rc != DS_BACKEND_OK) return rc;
        rc = check(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), 0), "ds_op_attention: cudaMemsetAsync");
        if (rc == DS_BACKEND_OK)
            rc = attn_fwd_sm90(p, a.batch, a.head_dim, a.dtype == DS_ATTN_DTYPE_BF16, a.causal != 0,
                               static_cast<unsigned long long*>(counter));
        const int rc2 = check(cudaFreeAsync(counter, 0), "ds_op_attention: cudaFreeAsync");
        return rc != DS_BACKEND_OK ? rc : rc2;
    }
    if (a.dtype == DS_ATTN_DTYPE_BF16) return fwd_dispatch<__nv_bfloat16>(p, a.batch, a.head_dim, a.causal != 0);
    return fwd_dispatch<__half>(p, a.batch, a.head_dim, a.causal != 0);
}

template <typename T, int D, bool CAUSAL>
int launch_bwd_main(const BwdParams& p, int64_t B) {
    using Cfg = BwdCfg<D>;
    auto kern = dsattn::attn_bwd_kernel<T, D, CAUSAL>;
    int rc = check(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM),
                   "ds_op_attention_backward: cudaFuncSetAttribute");
    if (rc != DS_BACKEND_OK) return rc;
    const dim3 grid(static_cast<unsigned>((p.Skv + Cfg::BN - 1) / Cfg::BN), static_cast<unsigned>(p.Hkv),
                    static_cast<unsigned>(B));
    kern<<<grid, Cfg::NT, Cfg::SMEM, 0>>>(p);
    return check_launch("ds_op_attention_backward: main kernel");
}

// dq = dq_acc * scale, converted, 4 elements a thread per iteration (16-byte loads, 8-byte stores; the
// element count is a multiple of 4 since D is 64 or 128, and the tensors are 16-byte aligned).
// Launched after the sm90 main kernel with programmatic stream serialization: it waits for that kernel.
template <typename T>
__global__ void attn_bwd_dq4_kernel(const float4* __restrict__ acc, uint2* __restrict__ dq, int64_t n4, float scale) {
    dsattn::grid_dep_wait();
    for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n4;
         e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const float4 a = acc[e];
        dq[e] = make_uint2(dsattn::pack2<T>(a.x * scale, a.y * scale), dsattn::pack2<T>(a.z * scale, a.w * scale));
    }
}

// DSABI_ATTN_BWD_IMPL (read once).
int bwd_impl_env() {
    static const int v = impl_choice("DSABI_ATTN_BWD_IMPL");
    return v;
}

template <typename T, int D>
int bwd_dispatch(const BwdParams& p, const ds_attn_bwd_args_t& a, bool sm90) {
    const int64_t rows = a.batch * a.seq_q * a.heads_q;
    const int64_t nq = rows * D;
    if (rows > 0) {  // Dsum, and dq_acc zeroed
        const int64_t blocks = (rows * (D / 8) + 255) / 256;
        dsattn::attn_bwd_dsum_kernel<T, D><<<static_cast<unsigned>(blocks), 256, 0, 0>>>(
            static_cast<const T*>(a.o), static_cast<const T*>(a.dout), const_cast<float*>(p.dsum), p.dq_acc, rows,
            a.seq_q, a.heads_q);
        int rc = check_launch("ds_op_attention_backward: Dsum kernel");
        if (rc != DS_BACKEND_OK) return rc;
    }
    bool launched = false;  // the sm90 main kernel
    if (a.seq_kv > 0) {
        if (sm90) {
            int rc = attn_bwd_sm90(p, a.batch, D, std::is_same<T, __nv_bfloat16>::value, a.causal != 0, &launched);
            if (rc != DS_BACKEND_OK) return rc;
            // Asked for by name (tests and benchmarks): say so rather than run the other kernel.
            if (!launched && bwd_impl_env() == 2)
                return invalid("ds_op_attention_backward: DSABI_ATTN_BWD_IMPL=sm90, but the sm90 kernel cannot take "
                               "this call (its tensor maps could not be made)");
        }
        if (!launched) {
            int rc = a.causal ? launch_bwd_main<T, D, true>(p, a.batch) : launch_bwd_main<T, D, false>(p, a.batch);
            if (rc != DS_BACKEND_OK) return rc;
        }
    }
    if (nq > 0) {
        const int64_t n4 = nq / 4;  // nq = rows * D, D a multiple of 4
        int64_t blocks = (n4 + 255) / 256;
        if (blocks > 132 * 16) blocks = 132 * 16;
        const char* what = "ds_op_attention_backward: dq kernel";
        const auto acc = reinterpret_cast<const float4*>(p.dq_acc);
        const auto dq = static_cast<uint2*>(a.dq);
        if (launched)  // programmatic: launched while the main kernel's last CTAs run
            return launch_dependent(attn_bwd_dq4_kernel<T>, dim3(static_cast<unsigned>(blocks)), dim3(256), 0, what,
                                    acc, dq, n4, a.scale);
        attn_bwd_dq4_kernel<T><<<static_cast<unsigned>(blocks), 256, 0, 0>>>(acc, dq, n4, a.scale);
        return check_launch(what);
    }
    return DS_BACKEND_OK;
}

// Whether the sm_90a backward main kernel is used by default on compute capability 9.0 devices.
constexpr bool kSm90BwdDefault = true;

bool use_sm90_bwd(int32_t dev) {
    const int env = bwd_impl_env();
    if (env == 1) return false;
    if (env == 0 && !kSm90BwdDefault) return false;
    return device_is_sm90(dev);
}

int attn_bwd(int32_t dev, const void* args) {
    int rc = use_device(dev);
    if (rc != DS_BACKEND_OK) return rc;
    const ds_attn_bwd_args_t& a = *static_cast<const ds_attn_bwd_args_t*>(args);
    rc = check_common(a.dtype, a.head_dim, a.batch, a.seq_q, a.seq_kv, a.heads_q, a.heads_kv,
                      {a.q, a.k, a.v, a.o, a.dout, a.dq, a.dk, a.dv}, "ds_op_attention_backward");
    if (rc != DS_BACKEND_OK) return rc;
    if ((reinterpret_cast<uintptr_t>(a.lse) & 3u) != 0) return invalid("ds_op_attention_backward: lse is not 4-byte aligned");
    if (a.batch == 0 || (a.seq_q == 0 && a.seq_kv == 0)) return DS_BACKEND_OK;  // nothing to write

    const int64_t nq = a.batch * a.seq_q * a.heads_q * a.head_dim;
    const int64_t nl = a.batch * a.heads_q * a.seq_q;
    const size_t bytes = static_cast<size_t>(nq + nl) * sizeof(float);  // dq_acc and Dsum
    void* ws = nullptr;
    if (bytes > 0) {
        cudaMemPool_t pool = workspace_pool(dev);
        rc = check(pool ? cudaMallocFromPoolAsync(&ws, bytes, pool, 0) : cudaMallocAsync(&ws, bytes, 0),
                   "ds_op_attention_backward: workspace (cudaMallocAsync)");
        if (rc != DS_BACKEND_OK) return rc;
    }
    if (rc == DS_BACKEND_OK) {
        BwdParams p{};
        p.q = a.q;
        p.k = a.k;
        p.v = a.v;
        p.dout = a.dout;
        p.lse = a.lse;
        p.dq_acc = static_cast<float*>(ws);
        p.dsum = static_cast<float*>(ws) + nq;
        p.dk = a.dk;
        p.dv = a.dv;
        p.S = a.seq_q;
        p.Skv = a.seq_kv;
        p.off = a.seq_kv - a.seq_q;
        p.Hq = a.heads_q;
        p.Hkv = a.heads_kv;
        p.G = a.heads_q / a.heads_kv;
        p.scale = a.scale;
        p.scale_log2 = a.scale * dsattn::kLog2e;
        // The sm_90a kernel: sequences below 2^30 (32-bit tensor-map coordinates).
        const bool sm90 = a.seq_q < INT_MAX / 2 && a.seq_kv < INT_MAX / 2 && use_sm90_bwd(dev);
        if (a.dtype == DS_ATTN_DTYPE_BF16)
            rc = a.head_dim == 64 ? bwd_dispatch<__nv_bfloat16, 64>(p, a, sm90) : bwd_dispatch<__nv_bfloat16, 128>(p, a, sm90);
        else
            rc = a.head_dim == 64 ? bwd_dispatch<__half, 64>(p, a, sm90) : bwd_dispatch<__half, 128>(p, a, sm90);
    }
    if (ws) {
        int rc2 = check(cudaFreeAsync(ws, 0), "ds_op_attention_backward: cudaFreeAsync");
        if (rc == DS_BACKEND_OK) rc = rc2;
    }
    return rc;
}

}  // namespace

void register_attn_ops(ds_backend_op_fn* table) {
    table[DS_KOP_ATTENTION] = attn_fwd;
    table[DS_KOP_ATTENTION_BWD] = attn_bwd;
}

}  // namespace dscuda
