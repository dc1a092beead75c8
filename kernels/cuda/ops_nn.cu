// CUDA ops of the nn family: registration of every DS_KOP_* of the family, and the element-wise ops
// (activations, SwiGLU, add, dropout), RoPE and the embedding lookup. Norms and sum_rows are in
// ops_nn_norm.cu, softmax and cross-entropy in ops_nn_softmax.cu, the embedding backward in
// ops_nn_embed.cu.
//
// Element-wise kernels are grid-stride loops over 16-byte vectors when every pointer is 16-byte
// aligned (scalar otherwise), with the arithmetic in f32. In-place calls are safe: each element is
// read and written by the same thread, the read first.
#include "ops_nn_common.cuh"

namespace dscuda {

void register_nn_ops(ds_backend_op_fn* t) {
    t[DS_KOP_EMBEDDING] = nn::embedding;
    t[DS_KOP_EMBEDDING_BWD] = nn::embedding_bwd;
    t[DS_KOP_LAYER_NORM] = nn::layer_norm;
    t[DS_KOP_LAYER_NORM_BWD] = nn::layer_norm_bwd;
    t[DS_KOP_RMS_NORM] = nn::layer_norm;        // the args carry rms = 1
    t[DS_KOP_RMS_NORM_BWD] = nn::layer_norm_bwd;
    t[DS_KOP_ACTIVATION] = nn::activation;
    t[DS_KOP_ACTIVATION_BWD] = nn::activation_bwd;
    t[DS_KOP_SWIGLU] = nn::swiglu;
    t[DS_KOP_SWIGLU_BWD] = nn::swiglu_bwd;
    t[DS_KOP_ADD] = nn::add;
    t[DS_KOP_SUM_ROWS] = nn::sum_rows;
    t[DS_KOP_SOFTMAX] = nn::softmax;
    t[DS_KOP_SOFTMAX_BWD] = nn::softmax_bwd;
    t[DS_KOP_CROSS_ENTROPY] = nn::cross_entropy;
    t[DS_KOP_ROPE] = nn::rope;
    t[DS_KOP_DROPOUT] = nn::dropout;
}

namespace nn {
namespace {

constexpr int kThreads = 256;

// ---- activation math (the CPU kernels use the same formulas) ---------------------------------------

constexpr float kGeluK0 = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluK1 = 0.044715f;
constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// With FAST (16-bit outputs), the sigmoid uses the hardware exp2 and reciprocal approximations: a
// few f32 ulps, far below the output's rounding, and about half the instructions, which keeps the
// element-wise kernels at memory speed. f32 outputs keep expf and a correctly rounded division.
template <bool FAST>
__device__ __forceinline__ float sigm(float x) {
    if constexpr (FAST) return __fdividef(1.0f, 1.0f + __expf(-x));  // 1 / inf -> 0 for x << 0
    else return sigmoidf(x);
}

// GPT-2's GELU 0.5 x (1 + tanh(u)) computed as x * sigmoid(2u) (identical; accurate for x << 0).
template <int ACT, bool FAST>
__device__ __forceinline__ float act_fwd(float x) {
    if constexpr (ACT == DS_NN_ACT_GELU_TANH) return x * sigm<FAST>(2.0f * kGeluK0 * (x + kGeluK1 * x * x * x));
    if constexpr (ACT == DS_NN_ACT_GELU) return 0.5f * x * erfcf(-x * kInvSqrt2);
    if constexpr (ACT == DS_NN_ACT_SILU) return x * sigm<FAST>(x);
    return x < 0.0f ? 0.0f : x;
}

template <int ACT, bool FAST>
__device__ __forceinline__ float act_grad(float x) {
    if constexpr (ACT == DS_NN_ACT_GELU_TANH) {
        float s = sigm<FAST>(2.0f * kGeluK0 * (x + kGeluK1 * x * x * x));
        return s + 2.0f * x * s * (1.0f - s) * kGeluK0 * (1.0f + 3.0f * kGeluK1 * x * x);
    }
    if constexpr (ACT == DS_NN_ACT_GELU) return 0.5f * erfcf(-x * kInvSqrt2) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
    if constexpr (ACT == DS_NN_ACT_SILU) {
        float s = sigm<FAST>(x);
        return s * (1.0f + x * (1.0f - s));
    }
    return x > 0.0f ? 1.0f : 0.0f;
}

// ---- generic element-wise driver --------------------------------------------------------------------

// Calls op(i, VEC-wide vector index) for vectors [0, n / VEC) and then the scalar tail; VEC = 1 runs
// everything scalar.
template <class T, int VEC, class Op>
__device__ __forceinline__ void ew_loop(int64_t n, Op&& op) {
    const int64_t nv = n / VEC;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < nv; v += stride)
        op.template run<VEC>(v * VEC);
    if constexpr (VEC > 1) {
        for (int64_t i = nv * VEC + blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
            op.template run<1>(i);
    }
}

template <class T, int ACT>
struct ActFwd {
    const T* x;
    T* y;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float v[V];
        load_vec<T, V>(x + i, v);
#pragma unroll
        for (int j = 0; j < V; ++j) v[j] = act_fwd<ACT, sizeof(T) == 2>(v[j]);
        store_vec<T, V>(y + i, v);
    }
};

template <class T, int ACT>
struct ActBwd {
    const T* x;
    const T* dy;
    T* dx;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float v[V], g[V];
        load_vec<T, V>(x + i, v);
        load_vec<T, V>(dy + i, g);
#pragma unroll
        for (int j = 0; j < V; ++j) g[j] *= act_grad<ACT, sizeof(T) == 2>(v[j]);
        store_vec<T, V>(dx + i, g);
    }
};

template <class T>
struct SwigluFwd {
    const T* gate;
    const T* up;
    T* y;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float g[V], u[V];
        load_vec<T, V>(gate + i, g);
        load_vec<T, V>(up + i, u);
#pragma unroll
        for (int j = 0; j < V; ++j) g[j] = g[j] * sigmoidf(g[j]) * u[j];
        store_vec<T, V>(y + i, g);
    }
};

template <class T>
struct SwigluBwd {
    const T* gate;
    const T* up;
    const T* dy;
    T* dgate;
    T* dup;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float g[V], u[V], d[V];
        load_vec<T, V>(gate + i, g);
        load_vec<T, V>(up + i, u);
        load_vec<T, V>(dy + i, d);
#pragma unroll
        for (int j = 0; j < V; ++j) {
            const float s = sigmoidf(g[j]);
            const float silu = g[j] * s;
            const float dsilu = s * (1.0f + g[j] * (1.0f - s));
            g[j] = d[j] * u[j] * dsilu;
            u[j] = d[j] * silu;
        }
        store_vec<T, V>(dgate + i, g);
        store_vec<T, V>(dup + i, u);
    }
};

template <class T>
struct AddSame {
    const T* a;
    const T* b;
    T* y;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float x[V], z[V];
        load_vec<T, V>(a + i, x);
        load_vec<T, V>(b + i, z);
#pragma unroll
        for (int j = 0; j < V; ++j) x[j] += z[j];
        store_vec<T, V>(y + i, x);
    }
};

// y[r, c] = a[r, c] + b[c]; d % V == 0 whenever V > 1 (so a vector never straddles two rows).
template <class T>
struct AddBias {
    const T* a;
    const T* b;
    T* y;
    int64_t d;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float x[V], z[V];
        load_vec<T, V>(a + i, x);
        load_vec<T, V>(b + i % d, z);
#pragma unroll
        for (int j = 0; j < V; ++j) x[j] += z[j];
        store_vec<T, V>(y + i, x);
    }
};

template <class T>
struct Dropout {
    const T* x;
    T* y;
    uint64_t key, offset;
    float p, scale;
    template <int V>
    __device__ __forceinline__ void run(int64_t i) const {
        float v[V];
        load_vec<T, V>(x + i, v);
        const uint64_t c0 = offset + static_cast<uint64_t>(i);
        uint64_t h = 0;
#pragma unroll
        for (int j = 0; j < V; ++j) {
            const uint64_t c = c0 + j;
            if (j == 0 || (c & 1u) == 0) h = ds_nn_dropout_hash(key, c >> 1);  // one hash per counter pair
            const float u = ds_nn_dropout_u(h, c);
            v[j] = u >= p ? v[j] * scale : 0.0f;
        }
        store_vec<T, V>(y + i, v);
    }
};

template <class T, int VEC, class Op>
__global__ void __launch_bounds__(kThreads) ew_kernel(int64_t n, Op op) {
    ew_loop<T, VEC>(n, op);
}

// Launch op over n elements, 16-byte vectors when `vec_ok`.
template <class T, class Op>
int ew_launch(int64_t n, bool vec_ok, const Op& op, const char* what) {
    constexpr int V = kVec16<T>;
    if (vec_ok) {
        ew_kernel<T, V, Op><<<grid_for(n, int64_t{kThreads} * V), kThreads>>>(n, op);
    } else {
        ew_kernel<T, 1, Op><<<grid_for(n, kThreads), kThreads>>>(n, op);
    }
    return check_launch(what);
}

template <class T>
int act_launch(const ds_nn_act_args_t& a, bool bwd) {
    const bool vec = aligned16(a.x) && aligned16(a.out) && (!bwd || aligned16(a.dy));
    const T* x = static_cast<const T*>(a.x);
    T* out = static_cast<T*>(a.out);
    const T* dy = static_cast<const T*>(a.dy);
    const char* what = bwd ? "ds_op_activation_backward kernel" : "ds_op_activation kernel";
#define DS_NN_ACT_CASE(ACT)                                                                      \
    case ACT:                                                                                    \
        return bwd ? ew_launch<T>(a.numel, vec, ActBwd<T, ACT>{x, dy, out}, what)                \
                   : ew_launch<T>(a.numel, vec, ActFwd<T, ACT>{x, out}, what);
    switch (a.act) {
        DS_NN_ACT_CASE(DS_NN_ACT_GELU_TANH)
        DS_NN_ACT_CASE(DS_NN_ACT_GELU)
        DS_NN_ACT_CASE(DS_NN_ACT_SILU)
        DS_NN_ACT_CASE(DS_NN_ACT_RELU)
        default: return invalid("unknown activation " + std::to_string(a.act));
    }
#undef DS_NN_ACT_CASE
}

// ---- RoPE --------------------------------------------------------------------------------------------

// One block per token (grid-stride): cos/sin of the D/2 angles into shared memory (when D/2 <=
// kRopeSmem; computed per pair otherwise), then every (head, pair) of the token. Each thread reads
// its pair before writing it, so y may alias x.
constexpr int kRopeSmem = 4096;

__device__ __forceinline__ void rope_angle(float pos, int64_t i, int64_t d, float theta, float sign, float* c, float* s) {
    const float inv = powf(theta, -static_cast<float>(2 * i) / static_cast<float>(d));
    const float ang = pos * inv;
    float sn, cs;
    sincosf(ang, &sn, &cs);
    *c = cs;
    *s = sign * sn;
}

template <class T, bool TABLE>
__global__ void __launch_bounds__(kThreads) rope_kernel(ds_nn_rope_args_t a) {
    __shared__ float cs_sh[TABLE ? kRopeSmem : 1], sn_sh[TABLE ? kRopeSmem : 1];
    const int64_t half = a.d / 2, pairs = a.h * half;
    const float sign = a.inverse ? -1.0f : 1.0f;
    const T* x = static_cast<const T*>(a.x);
    T* y = static_cast<T*>(a.y);
    for (int64_t t = blockIdx.x; t < a.n; t += gridDim.x) {
        const float pos = static_cast<float>(load_index(a.positions, a.idtype, t));
        if constexpr (TABLE) {
            __syncthreads();  // the previous token's table is no longer in use
            for (int64_t i = threadIdx.x; i < half; i += blockDim.x) rope_angle(pos, i, a.d, a.theta, sign, &cs_sh[i], &sn_sh[i]);
            __syncthreads();
        }
        for (int64_t k = threadIdx.x; k < pairs; k += blockDim.x) {
            const int64_t hh = k / half, i = k - hh * half;
            float c, s;
            if constexpr (TABLE) {
                c = cs_sh[i];
                s = sn_sh[i];
            } else {
                rope_angle(pos, i, a.d, a.theta, sign, &c, &s);
            }
            const int64_t base = (t * a.h + hh) * a.d;
            const float x1 = to_f(x[base + i]), x2 = to_f(x[base + i + half]);
            y[base + i] = from_f<T>(x1 * c - x2 * s);
            y[base + i + half] = from_f<T>(x2 * c + x1 * s);
        }
    }
}

// ---- embedding ---------------------------------------------------------------------------------------

// One block per output row (grid-stride): a copy of weight row ids[r] in 16-byte pieces when rows
// are 16-byte multiples and aligned, else element by element; ids outside [0, V) give zeros.
template <class E>
__global__ void __launch_bounds__(kThreads) embedding_kernel(const E* __restrict__ w, const void* ids, int32_t idtype,
                                                             E* __restrict__ out, int64_t n, int64_t v, int64_t row) {
    for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
        const int64_t id = load_index(ids, idtype, r);
        E* o = out + r * row;
        if (id < 0 || id >= v) {
            for (int64_t i = threadIdx.x; i < row; i += blockDim.x) o[i] = E{};
        } else {
            const E* s = w + id * row;
            for (int64_t i = threadIdx.x; i < row; i += blockDim.x) o[i] = s[i];
        }
    }
}

}  // namespace

int activation(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_act_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_activation", [&](auto tag) {
        return act_launch<typename decltype(tag)::type>(a, false);
    });
}

int activation_bwd(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_act_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_activation_backward", [&](auto tag) {
        return act_launch<typename decltype(tag)::type>(a, true);
    });
}

int swiglu(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_swiglu_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_swiglu", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const bool vec = aligned16(a.gate) && aligned16(a.up) && aligned16(a.y);
        return ew_launch<T>(a.numel, vec,
                            SwigluFwd<T>{static_cast<const T*>(a.gate), static_cast<const T*>(a.up), static_cast<T*>(a.y)},
                            "ds_op_swiglu kernel");
    });
}

int swiglu_bwd(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_swiglu_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_swiglu_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const bool vec = aligned16(a.gate) && aligned16(a.up) && aligned16(a.dy) && aligned16(a.dgate) && aligned16(a.dup);
        return ew_launch<T>(a.numel, vec,
                            SwigluBwd<T>{static_cast<const T*>(a.gate), static_cast<const T*>(a.up),
                                         static_cast<const T*>(a.dy), static_cast<T*>(a.dgate), static_cast<T*>(a.dup)},
                            "ds_op_swiglu_backward kernel");
    });
}

int add(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_add_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_add", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const T* pa = static_cast<const T*>(a.a);
        const T* pb = static_cast<const T*>(a.b);
        T* py = static_cast<T*>(a.y);
        const int64_t numel = a.n * a.d;
        const bool vec = aligned16(pa) && aligned16(pb) && aligned16(py);
        if (a.b_rows == a.n || a.n <= 1) return ew_launch<T>(numel, vec, AddSame<T>{pa, pb, py}, "ds_op_add kernel");
        return ew_launch<T>(numel, vec && a.d % kVec16<T> == 0, AddBias<T>{pa, pb, py, a.d}, "ds_op_add kernel");
    });
}

int dropout(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_dropout_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_dropout", [&](auto tag) {
        using T = typename decltype(tag)::type;
        Dropout<T> op{static_cast<const T*>(a.x), static_cast<T*>(a.y), ds_nn_mix64(a.seed), a.offset, a.p,
                      a.p >= 1.0f ? 0.0f : 1.0f / (1.0f - a.p)};
        return ew_launch<T>(a.numel, aligned16(a.x) && aligned16(a.y), op, "ds_op_dropout kernel");
    });
}

int rope(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_rope_args_t*>(args);
    return dispatch_float(a.dtype, "ds_op_rope", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const unsigned grid = grid_for(a.n, 1, 64);
        if (a.d / 2 <= kRopeSmem)
            rope_kernel<T, true><<<grid, kThreads>>>(a);
        else
            rope_kernel<T, false><<<grid, kThreads>>>(a);
        return check_launch("ds_op_rope kernel");
    });
}

int embedding(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_embedding_args_t*>(args);
    const int64_t es = a.dtype == DS_NN_F32 ? 4 : 2;
    const int64_t bytes = a.d * es;
    const unsigned grid = grid_for(a.n, 1, 64);
    if (bytes % 16 == 0 && aligned16(a.weight) && aligned16(a.out))
        embedding_kernel<uint4><<<grid, kThreads>>>(static_cast<const uint4*>(a.weight), a.ids, a.idtype,
                                                    static_cast<uint4*>(a.out), a.n, a.v, bytes / 16);
    else if (es == 4)
        embedding_kernel<float><<<grid, kThreads>>>(static_cast<const float*>(a.weight), a.ids, a.idtype,
                                                    static_cast<float*>(a.out), a.n, a.v, a.d);
    else
        embedding_kernel<uint16_t><<<grid, kThreads>>>(static_cast<const uint16_t*>(a.weight), a.ids, a.idtype,
                                                       static_cast<uint16_t*>(a.out), a.n, a.v, a.d);
    return check_launch("ds_op_embedding kernel");
}

}  // namespace nn
}  // namespace dscuda
