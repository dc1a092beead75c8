// CUDA embedding backward, deterministic: dweight[id] += sum of dout rows with that id, summed in
// increasing token order, without float atomics.
//
//   1. keys[i] = ids[i] (V for an id outside [0, V): skipped), vals[i] = i
//   2. a stable radix sort of (keys, vals) (CUB): the tokens of one id become one contiguous run, in
//      increasing token index
//   3. one block per sorted position; the block at the start of a run sums the run's dout rows in
//      order (threads over the columns, f32) and adds the sum into dweight[id] once
// Temporaries come from the stream-ordered allocator on the legacy default stream.
#include <cub/device/device_radix_sort.cuh>

#include "ops_nn_common.cuh"

namespace dscuda::nn {
namespace {

constexpr int kThreads = 256;

__global__ void embed_keys(const void* ids, int32_t idtype, int64_t n, int64_t v, uint32_t* keys, int32_t* vals) {
    for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
         i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
        const int64_t id = load_index(ids, idtype, i);
        keys[i] = (id < 0 || id >= v) ? static_cast<uint32_t>(v) : static_cast<uint32_t>(id);
        vals[i] = static_cast<int32_t>(i);
    }
}

template <class T>
__global__ void __launch_bounds__(kThreads) embed_accumulate(const uint32_t* __restrict__ keys,
                                                             const int32_t* __restrict__ vals, int64_t n, int64_t v,
                                                             int64_t d, const T* __restrict__ dout,
                                                             T* __restrict__ dweight) {
    for (int64_t s = blockIdx.x; s < n; s += gridDim.x) {
        const uint32_t key = keys[s];
        if (key >= v || (s > 0 && keys[s - 1] == key)) continue;  // not the start of a run
        int64_t e = s + 1;
        while (e < n && keys[e] == key) ++e;
        T* dst = dweight + static_cast<int64_t>(key) * d;
        for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
            float acc = 0.0f;
            for (int64_t j = s; j < e; ++j) acc += to_f(dout[static_cast<int64_t>(vals[j]) * d + c]);
            dst[c] = from_f<T>(to_f(dst[c]) + acc);
        }
    }
}

}  // namespace

int embedding_bwd(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_embedding_args_t*>(args);
    if (a.pdtype != a.dtype) return invalid("ds_op_embedding_backward: dweight dtype differs from dout's");
    if (a.n > INT32_MAX || a.v >= static_cast<int64_t>(UINT32_MAX))
        return invalid("ds_op_embedding_backward: more than 2^31 ids or 2^32 rows are not supported on CUDA");
    const int n = static_cast<int>(a.n);
    int end_bit = 1;
    while (end_bit < 32 && (static_cast<uint64_t>(1) << end_bit) <= static_cast<uint64_t>(a.v)) ++end_bit;
    size_t sort_bytes = 0;
    if (int rc = check(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, static_cast<const uint32_t*>(nullptr),
                                                       static_cast<uint32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                       static_cast<int32_t*>(nullptr), n, 0, end_bit, cudaStream_t{}),
                       "cub::DeviceRadixSort::SortPairs (size)"))
        return rc;
    const size_t arr = (static_cast<size_t>(n) * 4 + 255) & ~static_cast<size_t>(255);
    Workspace ws(4 * arr + sort_bytes);
    if (ws.rc) return ws.rc;
    char* base = static_cast<char*>(ws.p);
    uint32_t* keys_in = reinterpret_cast<uint32_t*>(base);
    uint32_t* keys_out = reinterpret_cast<uint32_t*>(base + arr);
    int32_t* vals_in = reinterpret_cast<int32_t*>(base + 2 * arr);
    int32_t* vals_out = reinterpret_cast<int32_t*>(base + 3 * arr);
    embed_keys<<<grid_for(a.n, kThreads), kThreads>>>(a.ids, a.idtype, a.n, a.v, keys_in, vals_in);
    if (int rc = check_launch("ds_op_embedding_backward (keys)")) return rc;
    if (int rc = check(cub::DeviceRadixSort::SortPairs(base + 4 * arr, sort_bytes, keys_in, keys_out, vals_in, vals_out,
                                                       n, 0, end_bit, cudaStream_t{}),
                       "cub::DeviceRadixSort::SortPairs"))
        return rc;
    return dispatch_float(a.dtype, "ds_op_embedding_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        int threads = static_cast<int>(cdiv(a.d, 32) * 32);
        threads = threads > kThreads ? kThreads : threads;
        embed_accumulate<T><<<grid_for(a.n, 1, 2048 / threads), threads>>>(
            keys_out, vals_out, a.n, a.v, a.d, static_cast<const T*>(a.dout), static_cast<T*>(a.dweight));
        return check_launch("ds_op_embedding_backward (accumulate)");
    });
}

}  // namespace dscuda::nn
