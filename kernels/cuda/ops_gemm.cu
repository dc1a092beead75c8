// CUDA ops of the gemm family: the GEMM through cuBLASLt (this file) and quantization / weight-only
// quantized linear (ops_gemm_quant.cu).
//
// Row-major C[m, n] = op(A) op(B) is computed as the column-major C^T[n, m] = op(B)^T op(A)^T: the
// bytes of a row-major matrix are its transpose in column-major order, so cuBLASLt's "A" is our B
// (transposed when trans_b = 0 is NOT requested: a row-major [k, n] B is a column-major n x k matrix,
// which is exactly op(B)^T) and its "B" is our A. The bias [n] is then a vector over the rows of the
// column-major result, which is what CUBLASLT_EPILOGUE_BIAS adds. Compute type CUBLAS_COMPUTE_32F for
// every dtype (f32 inputs stay exact f32: no TF32), scale type f32. Split-K reductions in the output
// type are excluded (accumulation stays f32 for bf16/f16 outputs). Batches use cuBLASLt's strided
// batch; a B shared over the batch is folded into one tall GEMM when A and C allow it (trans_a = 0),
// else run as one GEMM per entry.
//
// Per call, the layouts and the matmul descriptor are created and destroyed (host-only, sub-
// microsecond); the heuristic's algorithm (for large GEMMs, the fastest of its first candidates, timed
// on first use: autotune_ok) is cached per (device, dtypes, transposes, epilogue,
// whether beta is 0, shape, leading dimensions, batch strides, pointer alignments), thread-safely. One
// cuBLASLt handle and one 32 MiB workspace per device, both kept for the life of the process: every
// call runs on the legacy default stream, which serialises them, so the workspace is never shared by
// two running GEMMs.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <cstdlib>
#include <utility>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cublaslt_api.cuh"
#include "ops_gemm.cuh"

namespace dscuda::gemm {
namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;
constexpr int kMaxDevices = 64;
constexpr size_t kMaxPlans = 16384;

struct DeviceState {
    cublasLtHandle_t handle = nullptr;
    void* workspace = nullptr;
};

using Key = std::array<int64_t, 22>;
struct KeyHash {
    size_t operator()(const Key& k) const {
        uint64_t h = 1469598103934665603ull;
        for (int64_t v : k) {
            h ^= static_cast<uint64_t>(v);
            h *= 1099511628211ull;
        }
        return static_cast<size_t>(h);
    }
};

std::mutex g_mutex;
DeviceState g_dev[kMaxDevices];
std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash>* g_algos = nullptr;  // under g_mutex; never freed

int lt_fail(cublasStatus_t st, const std::string& what) {
    int rc = st == CUBLAS_STATUS_ALLOC_FAILED     ? DS_BACKEND_NOMEM
             : st == CUBLAS_STATUS_INVALID_VALUE ? DS_BACKEND_INVALID
                                                 : DS_BACKEND_ERR;
    set_error_text(what + ": " + lt().GetStatusName(st) + " (" + lt().GetStatusString(st) + ")");
    return rc;
}

#define DS_LT(call, what)                                                     \
    do {                                                                      \
        cublasStatus_t st_ = (call);                                          \
        if (st_ != CUBLAS_STATUS_SUCCESS) return lt_fail(st_, (what));        \
    } while (0)

struct Layout {
    cublasLtMatrixLayout_t h = nullptr;
    ~Layout() {
        if (h) lt().MatrixLayoutDestroy(h);
    }
};
struct Desc {
    cublasLtMatmulDesc_t h = nullptr;
    ~Desc() {
        if (h) lt().MatmulDescDestroy(h);
    }
};
struct Pref {
    cublasLtMatmulPreference_t h = nullptr;
    ~Pref() {
        if (h) lt().MatmulPreferenceDestroy(h);
    }
};

cudaDataType_t cuda_type(int32_t dt) {
    return dt == DS_OPG_F16 ? CUDA_R_16F : dt == DS_OPG_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}
int64_t esize(int32_t dt) { return dt == DS_OPG_F32 ? 4 : 2; }

// Largest power of two (<= 256) dividing the address and, for a batch, the batch stride in bytes.
uint32_t alignment(const void* p, int64_t stride_bytes, int64_t batch) {
    uint64_t v = reinterpret_cast<uint64_t>(p);
    if (batch > 1) v |= static_cast<uint64_t>(stride_bytes);
    uint32_t a = 256;
    while (a > 1 && (v & (a - 1))) a >>= 1;
    return a;
}

// First-use tuning: for a GEMM of at least 2^30 multiply-adds with beta = 0 (so that a trial run only
// rewrites C) and C apart from A, B and the bias (so that it never rewrites an input), the heuristic's
// first kCandidates algorithms are timed on stream 0 (fastest: round-robin, best of three) and the
// fastest is cached with the plan. The call that tunes blocks until its trials finish (a few
// milliseconds, once per shape). DSABI_GEMM_AUTOTUNE=0 turns it off (read once).
constexpr int kCandidates = 8;
bool autotune_enabled() {
    static const bool on = [] {
        const char* e = std::getenv("DSABI_GEMM_AUTOTUNE");
        return !(e && e[0] == '0' && e[1] == 0);
    }();
    return on;
}
bool autotune_ok(const ds_op_gemm_args_t& g) {
    if (!autotune_enabled() || g.beta != 0.0f || g.batch != 1) return false;
    if (static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k) < 1073741824.0) return false;
    auto span = [](const void* p, int64_t rows, int64_t ld, int64_t es) {
        const uintptr_t b = reinterpret_cast<uintptr_t>(p);
        return std::make_pair(b, b + static_cast<uintptr_t>(rows * ld * es));
    };
    const auto c = span(g.c, g.m, g.ldc, esize(g.c_dtype));
    const auto a = span(g.a, g.trans_a ? g.k : g.m, g.lda, esize(g.a_dtype));
    const auto b = span(g.b, g.trans_b ? g.n : g.k, g.ldb, esize(g.b_dtype));
    const auto bias = span(g.bias, g.bias ? 1 : 0, g.n, esize(g.c_dtype));
    for (const auto& x : {a, b, bias})
        if (x.first < c.second && c.first < x.second) return false;
    return true;
}
// The fastest of candidates 0 .. n - 1 (run(i) enqueues candidate i; one that fails is skipped): after
// a warm-up run of each, kRounds rounds that run every candidate once in turn (so that clock and power
// drift over the trials affects all alike), each candidate's best run counted; the heuristic's first
// choice is kept unless another is at least 2 % faster.
constexpr int kRounds = 3;
template <typename Run>
int fastest(int n, Run run, int* best) {
    cudaEvent_t ev[kRounds][kCandidates][2] = {};
    int rc = DS_BACKEND_OK;
    for (int r = 0; r < kRounds; ++r)
        for (int i = 0; i < n; ++i)
            for (int e = 0; e < 2 && rc == DS_BACKEND_OK; ++e)
                rc = check(cudaEventCreate(&ev[r][i][e]), "cudaEventCreate");
    bool ok[kCandidates] = {};
    for (int i = 0; i < n; ++i) ok[i] = rc == DS_BACKEND_OK && run(i) == CUBLAS_STATUS_SUCCESS;  // warm-up
    for (int r = 0; r < kRounds && rc == DS_BACKEND_OK; ++r)
        for (int i = 0; i < n && rc == DS_BACKEND_OK; ++i) {
            rc = check(cudaEventRecord(ev[r][i][0], 0), "cudaEventRecord");
            if (ok[i]) ok[i] = run(i) == CUBLAS_STATUS_SUCCESS;
            if (rc == DS_BACKEND_OK) rc = check(cudaEventRecord(ev[r][i][1], 0), "cudaEventRecord");
        }
    if (rc == DS_BACKEND_OK) rc = check(cudaEventSynchronize(ev[kRounds - 1][n - 1][1]), "cudaEventSynchronize");
    float t[kCandidates];
    for (int i = 0; i < n; ++i) {
        t[i] = -1.0f;
        for (int r = 0; r < kRounds && rc == DS_BACKEND_OK && ok[i]; ++r) {
            float ms = 0.0f;
            if (cudaEventElapsedTime(&ms, ev[r][i][0], ev[r][i][1]) != cudaSuccess)
                (void)cudaGetLastError();  // (that trial is not counted)
            else if (t[i] < 0.0f || ms < t[i])
                t[i] = ms;
        }
    }
    *best = 0;
    for (int i = 1; i < n; ++i)
        if (t[i] >= 0.0f && (t[*best] < 0.0f || t[i] < t[*best])) *best = i;
    if (*best != 0 && t[0] >= 0.0f && t[*best] > 0.98f * t[0]) *best = 0;
    for (auto& round : ev)
        for (auto& cand : round)
            for (cudaEvent_t e : cand)
                if (e) cudaEventDestroy(e);
    return rc;
}

int device_state(DeviceState** out, int* dev_out) {
    int dev = 0;
    if (int rc = check(cudaGetDevice(&dev), "cudaGetDevice")) return rc;
    if (dev < 0 || dev >= kMaxDevices) return invalid("CUDA device index " + std::to_string(dev) + " beyond 64");
    std::lock_guard<std::mutex> lock(g_mutex);
    DeviceState& s = g_dev[dev];
    if (!s.handle) {
        if (!lt().error.empty()) {
            set_error_text(lt().error);
            return DS_BACKEND_ERR;
        }
        DS_LT(lt().Create(&s.handle), "cublasLtCreate");
    }
    if (!s.workspace) {
        if (int rc = check(cudaMalloc(&s.workspace, kWorkspaceBytes), "cudaMalloc of the 32 MiB cuBLASLt workspace")) {
            s.workspace = nullptr;
            return rc;
        }
    }
    if (!g_algos) g_algos = new std::unordered_map<Key, cublasLtMatmulAlgo_t, KeyHash>();
    *out = &s;
    *dev_out = dev;
    return DS_BACKEND_OK;
}

__device__ inline float to_f(float v) { return v; }
__device__ inline float to_f(__half v) { return __half2float(v); }
__device__ inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T>
__device__ inline T from_f(float v);
template <>
__device__ inline float from_f<float>(float v) { return v; }
template <>
__device__ inline __half from_f<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ inline __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ inline float gelu_tanh(float x) {
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

// K = 0: C = epilogue(beta C) (cuBLASLt is not asked to multiply empty matrices).
template <class T>
__global__ void empty_k_epilogue(T* c, const T* bias, int64_t batch, int64_t m, int64_t n, int64_t ldc, int64_t stride_c,
                                 float beta, int bias_on, int gelu_on) {
    const int64_t total = batch * m * n;
    for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
         idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t b = idx / (m * n), r = idx % (m * n), i = r / n, j = r % n;
        T* p = c + b * stride_c + i * ldc + j;
        float v = beta != 0.0f ? beta * to_f(*p) : 0.0f;
        if (bias_on) v += to_f(bias[j]);
        if (gelu_on) v = gelu_tanh(v);
        *p = from_f<T>(v);
    }
}

template <class T>
int launch_empty_k(const ds_op_gemm_args_t& g) {
    const bool bias = g.epilogue == DS_OPG_EPILOGUE_BIAS || g.epilogue == DS_OPG_EPILOGUE_BIAS_GELU;
    const bool gelu = g.epilogue == DS_OPG_EPILOGUE_GELU || g.epilogue == DS_OPG_EPILOGUE_BIAS_GELU;
    const int64_t total = g.batch * g.m * g.n;
    const int threads = 256;
    const int64_t blocks = total / threads + 1 < 4096 ? total / threads + 1 : 4096;
    empty_k_epilogue<T><<<static_cast<unsigned>(blocks), threads>>>(static_cast<T*>(g.c), static_cast<const T*>(g.bias),
                                                                    g.batch, g.m, g.n, g.ldc, g.stride_c, g.beta, bias,
                                                                    gelu);
    return check_launch("ds_op_gemm (K = 0) epilogue kernel");
}

}  // namespace

int matmul(const ds_op_gemm_args_t& args) {
    ds_op_gemm_args_t g = args;
    if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return DS_BACKEND_OK;
    // A batch over a shared B with untransposed, packed A and C is one tall GEMM.
    if (g.batch > 1 && g.stride_b == 0 && !g.trans_a && g.lda == g.k && g.stride_a == g.m * g.k && g.ldc == g.n &&
        g.stride_c == g.m * g.n) {
        g.m *= g.batch;
        g.batch = 1;
    }
    if (g.k <= 0) {
        switch (g.c_dtype) {
            case DS_OPG_F16: return launch_empty_k<__half>(g);
            case DS_OPG_BF16: return launch_empty_k<__nv_bfloat16>(g);
            default: return launch_empty_k<float>(g);
        }
    }
    if (g.batch > 1 && g.stride_b == 0) {
        // B shared but not foldable (trans_a, or strided A / C): one GEMM per batch entry rather than
        // a zero batch stride, which cuBLASLt does not document.
        ds_op_gemm_args_t one = g;
        one.batch = 1;
        const int64_t ea = esize(g.a_dtype), ec = esize(g.c_dtype);
        for (int64_t b = 0; b < g.batch; ++b) {
            one.a = static_cast<const char*>(g.a) + b * g.stride_a * ea;
            one.c = static_cast<char*>(g.c) + b * g.stride_c * ec;
            if (int rc = matmul(one)) return rc;
        }
        return DS_BACKEND_OK;
    }
    if (g.batch > INT32_MAX) return invalid("batch " + std::to_string(g.batch) + " exceeds cuBLASLt's int32 batch count");
    DeviceState* st = nullptr;
    int dev = 0;
    if (int rc = device_state(&st, &dev)) return rc;

    const bool bias_on = g.epilogue == DS_OPG_EPILOGUE_BIAS || g.epilogue == DS_OPG_EPILOGUE_BIAS_GELU;
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (g.epilogue == DS_OPG_EPILOGUE_BIAS) epi = CUBLASLT_EPILOGUE_BIAS;
    if (g.epilogue == DS_OPG_EPILOGUE_GELU) epi = CUBLASLT_EPILOGUE_GELU;
    if (g.epilogue == DS_OPG_EPILOGUE_BIAS_GELU) epi = CUBLASLT_EPILOGUE_GELU_BIAS;
    const uint32_t al_a = alignment(g.a, g.stride_a * esize(g.a_dtype), g.batch);
    const uint32_t al_b = alignment(g.b, g.stride_b * esize(g.b_dtype), g.batch);
    const uint32_t al_c = alignment(g.c, g.stride_c * esize(g.c_dtype), g.batch);
    const uint32_t al_bias = bias_on ? alignment(g.bias, 0, 1) : 0;

    // cuBLASLt's A is our B, its B our A (see the top of the file).
    Layout la, lb, lc;
    DS_LT(lt().MatrixLayoutCreate(&la.h, cuda_type(g.b_dtype), static_cast<uint64_t>(g.trans_b ? g.k : g.n),
                                     static_cast<uint64_t>(g.trans_b ? g.n : g.k), g.ldb),
          "cublasLtMatrixLayoutCreate(b)");
    DS_LT(lt().MatrixLayoutCreate(&lb.h, cuda_type(g.a_dtype), static_cast<uint64_t>(g.trans_a ? g.m : g.k),
                                     static_cast<uint64_t>(g.trans_a ? g.k : g.m), g.lda),
          "cublasLtMatrixLayoutCreate(a)");
    DS_LT(lt().MatrixLayoutCreate(&lc.h, cuda_type(g.c_dtype), static_cast<uint64_t>(g.n), static_cast<uint64_t>(g.m),
                                     g.ldc),
          "cublasLtMatrixLayoutCreate(c)");
    if (g.batch > 1) {
        const int32_t count = static_cast<int32_t>(g.batch);
        const int64_t strides[3] = {g.stride_b, g.stride_a, g.stride_c};
        cublasLtMatrixLayout_t ls[3] = {la.h, lb.h, lc.h};
        for (int i = 0; i < 3; ++i) {
            DS_LT(lt().MatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
                  "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)");
            DS_LT(lt().MatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                                   sizeof strides[i]),
                  "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)");
        }
    }
    Desc desc;
    DS_LT(lt().MatmulDescCreate(&desc.h, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    const cublasOperation_t op_a = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    DS_LT(lt().MatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
          "cublasLtMatmulDescSetAttribute(TRANSA)");
    DS_LT(lt().MatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
          "cublasLtMatmulDescSetAttribute(TRANSB)");
    if (epi != CUBLASLT_EPILOGUE_DEFAULT)
        DS_LT(lt().MatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
              "cublasLtMatmulDescSetAttribute(EPILOGUE)");
    if (bias_on)
        DS_LT(lt().MatmulDescSetAttribute(desc.h, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias),
              "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");

    const Key key = {dev,       g.a_dtype, g.b_dtype,  g.c_dtype,  g.trans_a, g.trans_b, g.epilogue, g.beta == 0.0f,
                     g.batch,   g.m,       g.n,        g.k,        g.lda,     g.ldb,     g.ldc,      g.stride_a,
                     g.stride_b, g.stride_c, al_a,     al_b,       al_c,      al_bias};
    cublasLtMatmulAlgo_t algo;
    bool cached = false;
    {
        std::lock_guard<std::mutex> lock(g_mutex);
        auto it = g_algos->find(key);
        if (it != g_algos->end()) {
            algo = it->second;
            cached = true;
        }
    }
    if (!cached) {
        Pref pref;
        DS_LT(lt().MatmulPreferenceCreate(&pref.h), "cublasLtMatmulPreferenceCreate");
        const uint64_t ws = kWorkspaceBytes;
        const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_MASK & ~static_cast<uint32_t>(CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE);
        DS_LT(lt().MatmulPreferenceSetAttribute(pref.h, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
              "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
        DS_LT(lt().MatmulPreferenceSetAttribute(pref.h, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
                                                   sizeof reductions),
              "cublasLtMatmulPreferenceSetAttribute(REDUCTION_SCHEME_MASK)");
        const struct {
            cublasLtMatmulPreferenceAttributes_t attr;
            uint32_t value;
        } aligns[4] = {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_b},
                       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_a},
                       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_c},
                       {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_c}};
        for (const auto& a : aligns)
            DS_LT(lt().MatmulPreferenceSetAttribute(pref.h, a.attr, &a.value, sizeof a.value),
                  "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");
        cublasLtMatmulHeuristicResult_t results[kCandidates];
        std::memset(results, 0, sizeof results);
        const bool tune = autotune_ok(g);
        int found = 0;
        DS_LT(lt().MatmulAlgoGetHeuristic(st->handle, desc.h, la.h, lb.h, lc.h, lc.h, pref.h, tune ? kCandidates : 1,
                                          results, &found),
              "cublasLtMatmulAlgoGetHeuristic");
        if (found < 1) {
            set_error_text("cuBLASLt has no algorithm for this GEMM (m " + std::to_string(g.m) + ", n " +
                           std::to_string(g.n) + ", k " + std::to_string(g.k) + ", batch " + std::to_string(g.batch) +
                           ", epilogue " + std::to_string(g.epilogue) + ")");
            return DS_BACKEND_ERR;
        }
        int best = 0;
        if (tune && found > 1) {
            const float alpha = g.alpha, beta = g.beta;
            auto run = [&](int i) {
                return lt().Matmul(st->handle, desc.h, &alpha, g.b, la.h, g.a, lb.h, &beta, g.c, lc.h, g.c, lc.h,
                                   &results[i].algo, st->workspace, kWorkspaceBytes, static_cast<cudaStream_t>(0));
            };
            if (int rc = fastest(found, run, &best)) return rc;
        }
        algo = results[best].algo;
        std::lock_guard<std::mutex> lock(g_mutex);
        if (g_algos->size() >= kMaxPlans) g_algos->clear();
        (*g_algos)[key] = algo;
    }
    const float alpha = g.alpha, beta = g.beta;
    DS_LT(lt().Matmul(st->handle, desc.h, &alpha, g.b, la.h, g.a, lb.h, &beta, g.c, lc.h, g.c, lc.h, &algo,
                         st->workspace, kWorkspaceBytes, static_cast<cudaStream_t>(0)),
          "cublasLtMatmul");
    return DS_BACKEND_OK;
}

namespace {

int op_gemm(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    return matmul(*static_cast<const ds_op_gemm_args_t*>(args));
}

}  // namespace
}  // namespace dscuda::gemm

namespace dscuda {
void register_gemm_ops(ds_backend_op_fn* table) {
    table[DS_KOP_GEMM] = gemm::op_gemm;
    gemm::register_quant_ops(table);
}
}  // namespace dscuda
