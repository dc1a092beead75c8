// CUDA layer norm and RMS norm (forward and backward) and sum_rows.
//
// Forward: one thread group per row (ops_nn_rows.cuh), the row in registers, 16-byte loads, mean and
// variance by two passes over the registers (f32), so x is read once and y written once. Rows too
// wide for registers use a block-per-row kernel that re-reads the row (from L1/L2).
//
// Backward: a persistent grid of B blocks (a number that depends only on the device and the shape);
// each row group keeps its columns' partial sums of dy * xhat and dy in registers over the rows it
// visits, writes them to a [B * R, d] f32 workspace at the end, and colsum_finalize adds the rows of
// the workspace in a fixed order into dweight / dbias. No atomics: the result is deterministic. x and
// dy are read once, dx written once.
#include "ops_nn_rows.cuh"

namespace dscuda::nn {
namespace {

constexpr int kGenericThreads = 512;

// ---- register-resident kernels ---------------------------------------------------------------------

template <class T, int VEC, int CH, bool RMS>
__global__ void __launch_bounds__(512) norm_fwd_kernel(const ds_nn_norm_args_t a) {
    __shared__ float sh[16 * 32];
    const int64_t d = a.d;
    const float inv_d = 1.0f / static_cast<float>(d);
    const T* w = static_cast<const T*>(a.weight);
    const T* b = static_cast<const T*>(a.bias);
    for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < a.n;
         r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
        const int64_t row = r0 + threadIdx.y;
        const bool valid = row < a.n;
        float v[CH][VEC];
        load_row<T, VEC, CH>(static_cast<const T*>(a.x) + row * d, d, valid, v);
        float mean = 0.0f;
        if constexpr (!RMS) {
            float s = 0.0f;
#pragma unroll
            for (int c = 0; c < CH; ++c)
#pragma unroll
                for (int j = 0; j < VEC; ++j) s += v[c][j];
            mean = group_sum(s, sh) * inv_d;
        }
        float q = 0.0f;
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            const bool in = chunk_index<VEC>(c) < d;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                const float t = v[c][j] - mean;
                q += in ? t * t : 0.0f;
            }
        }
        const float rstd = 1.0f / sqrtf(group_sum(q, sh) * inv_d + a.eps);
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            const int64_t idx = chunk_index<VEC>(c);
            if (!valid || idx >= d) continue;
            float wv[VEC], bv[VEC];
            load_vec<T, VEC>(w + idx, wv);
            if (!RMS && b) {
                load_vec<T, VEC>(b + idx, bv);
            } else {
#pragma unroll
                for (int j = 0; j < VEC; ++j) bv[j] = 0.0f;
            }
#pragma unroll
            for (int j = 0; j < VEC; ++j) v[c][j] = (v[c][j] - mean) * rstd * wv[j] + bv[j];
        }
        store_row<T, VEC, CH>(static_cast<T*>(a.y) + row * d, d, valid, v);
        if (valid && threadIdx.x == 0) {
            if (a.mean) a.mean[row] = mean;
            if (a.rstd) a.rstd[row] = rstd;
        }
    }
}

template <class T, int VEC, int CH, bool RMS>
__global__ void __launch_bounds__(512) norm_bwd_kernel(const ds_nn_norm_args_t a, float* __restrict__ part_w,
                                                       float* __restrict__ part_b) {
    __shared__ float sh[16 * 32];
    const int64_t d = a.d;
    const float inv_d = 1.0f / static_cast<float>(d);
    float wv[CH][VEC], pw[CH][VEC], pb[CH][VEC];
    load_row<T, VEC, CH>(static_cast<const T*>(a.weight), d, true, wv);
#pragma unroll
    for (int c = 0; c < CH; ++c)
#pragma unroll
        for (int j = 0; j < VEC; ++j) pw[c][j] = 0.0f, pb[c][j] = 0.0f;
    for (int64_t r0 = static_cast<int64_t>(blockIdx.x) * blockDim.y; r0 < a.n;
         r0 += static_cast<int64_t>(gridDim.x) * blockDim.y) {
        const int64_t row = r0 + threadIdx.y;
        const bool valid = row < a.n;
        float xv[CH][VEC], gv[CH][VEC];
        load_row<T, VEC, CH>(static_cast<const T*>(a.x) + row * d, d, valid, xv);
        load_row<T, VEC, CH>(static_cast<const T*>(a.dy) + row * d, d, valid, gv);
        const float mean = (RMS || !valid) ? 0.0f : a.mean[row];
        const float rstd = valid ? a.rstd[row] : 0.0f;
        float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
        for (int c = 0; c < CH; ++c) {
            const bool in = chunk_index<VEC>(c) < d;
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                const float xh = in ? (xv[c][j] - mean) * rstd : 0.0f;  // gv is 0 outside the row
                const float dy = gv[c][j];
                pw[c][j] += dy * xh;
                pb[c][j] += dy;
                const float g = dy * wv[c][j];
                xv[c][j] = xh;
                gv[c][j] = g;
                s1 += g;
                s2 += g * xh;
            }
        }
        const float c1 = RMS ? 0.0f : group_sum(s1, sh) * inv_d;
        const float c2 = group_sum(s2, sh) * inv_d;
#pragma unroll
        for (int c = 0; c < CH; ++c)
#pragma unroll
            for (int j = 0; j < VEC; ++j) xv[c][j] = rstd * (gv[c][j] - c1 - xv[c][j] * c2);
        store_row<T, VEC, CH>(static_cast<T*>(a.dx) + row * d, d, valid, xv);
    }
    // This group's column partials: workspace row blockIdx.x * R + threadIdx.y.
    const int64_t prow = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
#pragma unroll
    for (int c = 0; c < CH; ++c) {
        const int64_t idx = chunk_index<VEC>(c);
        if (idx >= d) continue;
#pragma unroll
        for (int j = 0; j < VEC; ++j) {
            if (part_w) part_w[prow * d + idx + j] = pw[c][j];
            if (!RMS && part_b) part_b[prow * d + idx + j] = pb[c][j];
        }
    }
}

// ---- rows too wide for registers: a block per row, re-reading the row --------------------------------

template <class T, bool RMS>
__global__ void __launch_bounds__(kGenericThreads) norm_fwd_generic(const ds_nn_norm_args_t a) {
    __shared__ float sh[32];
    const int64_t d = a.d;
    const float inv_d = 1.0f / static_cast<float>(d);
    const T* w = static_cast<const T*>(a.weight);
    const T* b = static_cast<const T*>(a.bias);
    for (int64_t row = blockIdx.x; row < a.n; row += gridDim.x) {
        const T* x = static_cast<const T*>(a.x) + row * d;
        T* y = static_cast<T*>(a.y) + row * d;
        float mean = 0.0f;
        if constexpr (!RMS) {
            float s = 0.0f;
            for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += to_f(x[i]);
            mean = group_sum(s, sh) * inv_d;
        }
        float q = 0.0f;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
            const float t = to_f(x[i]) - mean;
            q += t * t;
        }
        const float rstd = 1.0f / sqrtf(group_sum(q, sh) * inv_d + a.eps);
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
            y[i] = from_f<T>((to_f(x[i]) - mean) * rstd * to_f(w[i]) + ((!RMS && b) ? to_f(b[i]) : 0.0f));
        if (threadIdx.x == 0) {
            if (a.mean) a.mean[row] = mean;
            if (a.rstd) a.rstd[row] = rstd;
        }
    }
}

// part_w / part_b: [gridDim.x, d], zeroed before the launch; block b owns row b.
template <class T, bool RMS>
__global__ void __launch_bounds__(kGenericThreads) norm_bwd_generic(const ds_nn_norm_args_t a, float* part_w,
                                                                    float* part_b) {
    __shared__ float sh[32];
    const int64_t d = a.d;
    const float inv_d = 1.0f / static_cast<float>(d);
    const T* w = static_cast<const T*>(a.weight);
    float* pw = part_w ? part_w + blockIdx.x * d : nullptr;
    float* pb = (!RMS && part_b) ? part_b + blockIdx.x * d : nullptr;
    for (int64_t row = blockIdx.x; row < a.n; row += gridDim.x) {
        const T* x = static_cast<const T*>(a.x) + row * d;
        const T* dy = static_cast<const T*>(a.dy) + row * d;
        T* dx = static_cast<T*>(a.dx) + row * d;
        const float mean = RMS ? 0.0f : a.mean[row];
        const float rstd = a.rstd[row];
        float s1 = 0.0f, s2 = 0.0f;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
            const float xh = (to_f(x[i]) - mean) * rstd;
            const float g = to_f(dy[i]) * to_f(w[i]);
            s1 += g;
            s2 += g * xh;
        }
        const float c1 = RMS ? 0.0f : group_sum(s1, sh) * inv_d;
        const float c2 = group_sum(s2, sh) * inv_d;
        for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
            const float xh = (to_f(x[i]) - mean) * rstd;
            const float g0 = to_f(dy[i]);
            if (pw) pw[i] += g0 * xh;
            if (pb) pb[i] += g0;
            dx[i] = from_f<T>(rstd * (g0 * to_f(w[i]) - c1 - xh * c2));
        }
    }
}

// ---- sum_rows: column partial sums over row slices -----------------------------------------------------

template <class T>
__global__ void __launch_bounds__(256) colsum_partial(const T* __restrict__ dy, int64_t n, int64_t d, int64_t slice,
                                                      float* __restrict__ part) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= d) return;
    const int64_t r0 = static_cast<int64_t>(blockIdx.y) * slice;
    const int64_t r1 = r0 + slice < n ? r0 + slice : n;
    float acc = 0.0f;
    for (int64_t r = r0; r < r1; ++r) acc += to_f(dy[r * d + c]);
    part[static_cast<int64_t>(blockIdx.y) * d + c] = acc;
}

// ---- launchers ---------------------------------------------------------------------------------------

template <class T, bool RMS>
int fwd_launch(const ds_nn_norm_args_t& a) {
    const char* what = RMS ? "ds_op_rms_norm kernel" : "ds_op_layer_norm kernel";
    const bool al = aligned16(a.x) && aligned16(a.y) && aligned16(a.weight) && (RMS || !a.bias || aligned16(a.bias));
    const RowPlan p = plan_rows<T>(a.d, al, 64);
    if (!p.ch) {
        norm_fwd_generic<T, RMS><<<grid_for(a.n, 1, 4), kGenericThreads>>>(a);
        return check_launch(what);
    }
    return with_plan<T>(p, [&](auto vec, auto ch) {
        constexpr int VEC = decltype(vec)::value, CH = decltype(ch)::value;
        norm_fwd_kernel<T, VEC, CH, RMS><<<grid_for(a.n, p.r, 64), dim3(p.g, p.r)>>>(a);
        return check_launch(what);
    });
}

template <class T, bool RMS>
int bwd_launch(const ds_nn_norm_args_t& a) {
    const char* what = RMS ? "ds_op_rms_norm_backward kernel" : "ds_op_layer_norm_backward kernel";
    const bool want_w = a.dweight != nullptr, want_b = !RMS && a.dbias != nullptr;
    const bool al = aligned16(a.x) && aligned16(a.dy) && aligned16(a.dx) && aligned16(a.weight);
    // At most 8 elements per thread where the row allows (64 registers: two 512-thread blocks per SM),
    // else 16 (rows up to 8192 elements in registers).
    RowPlan p = plan_rows<T>(a.d, al, 8);
    if (!p.ch) p = plan_rows<T>(a.d, al, 16);
    if (!p.ch) {
        const unsigned grid = grid_for(a.n, 1, 2);
        const size_t part = static_cast<size_t>(grid) * a.d;
        Workspace ws(sizeof(float) * part * 2);
        if (ws.rc) return ws.rc;
        float* pw = want_w ? static_cast<float*>(ws.p) : nullptr;
        float* pb = want_b ? static_cast<float*>(ws.p) + part : nullptr;
        if (int rc = check(cudaMemsetAsync(ws.p, 0, sizeof(float) * part * 2, 0), "cudaMemsetAsync")) return rc;
        norm_bwd_generic<T, RMS><<<grid, kGenericThreads>>>(a, pw, pb);
        if (int rc = check_launch(what)) return rc;
        if (want_w)
            if (int rc = colsum_launch<T>(pw, grid, a.d, a.dweight, what)) return rc;
        if (want_b)
            if (int rc = colsum_launch<T>(pb, grid, a.d, a.dbias, what)) return rc;
        return DS_BACKEND_OK;
    }
    return with_plan<T>(p, [&](auto vec, auto ch) -> int {
        constexpr int VEC = decltype(vec)::value, CH = decltype(ch)::value;
        if constexpr (VEC * CH > 16) {
            return invalid("internal: no backward kernel for this row layout");
        } else {
            auto kernel = norm_bwd_kernel<T, VEC, CH, RMS>;
            int per_sm = 0;
            if (int rc = check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, p.g * p.r, 0),
                               "cudaOccupancyMaxActiveBlocksPerMultiprocessor"))
                return rc;
            const unsigned grid = grid_for(a.n, p.r, per_sm > 0 ? per_sm : 1);
            const int64_t prow = static_cast<int64_t>(grid) * p.r;
            const size_t part = static_cast<size_t>(prow) * a.d;
            Workspace ws(sizeof(float) * part * ((want_w ? 1 : 0) + (want_b ? 1 : 0)));
            if (ws.rc) return ws.rc;
            float* pw = want_w ? static_cast<float*>(ws.p) : nullptr;
            float* pb = want_b ? static_cast<float*>(ws.p) + (want_w ? part : 0) : nullptr;
            kernel<<<grid, dim3(p.g, p.r)>>>(a, pw, pb);
            if (int rc = check_launch(what)) return rc;
            if (want_w)
                if (int rc = colsum_launch<T>(pw, prow, a.d, a.dweight, what)) return rc;
            if (want_b)
                if (int rc = colsum_launch<T>(pb, prow, a.d, a.dbias, what)) return rc;
            return DS_BACKEND_OK;
        }
    });
}

}  // namespace

int layer_norm(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_norm_args_t*>(args);
    if (a.pdtype != a.dtype) return invalid("ds_op_layer_norm: parameter dtype differs from the input dtype");
    return dispatch_float(a.dtype, "ds_op_layer_norm", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return a.rms ? fwd_launch<T, true>(a) : fwd_launch<T, false>(a);
    });
}

int layer_norm_bwd(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_norm_args_t*>(args);
    if (a.pdtype != a.dtype) return invalid("ds_op_layer_norm_backward: parameter dtype differs from the input dtype");
    return dispatch_float(a.dtype, "ds_op_layer_norm_backward", [&](auto tag) {
        using T = typename decltype(tag)::type;
        return a.rms ? bwd_launch<T, true>(a) : bwd_launch<T, false>(a);
    });
}

int sum_rows(int32_t dev, const void* args) {
    if (int rc = use_device(dev)) return rc;
    const auto& a = *static_cast<const ds_nn_add_args_t*>(args);
    if (a.pdtype != a.dtype) return invalid("ds_op_sum_rows: dbias dtype differs from dy's");
    return dispatch_float(a.dtype, "ds_op_sum_rows", [&](auto tag) {
        using T = typename decltype(tag)::type;
        const int64_t gx = cdiv(a.d, 256);
        int64_t slices = static_cast<int64_t>(sm_count()) * 16 / gx;
        if (slices < 1) slices = 1;
        if (slices > a.n) slices = a.n;
        if (slices > 65535) slices = 65535;
        const int64_t slice = cdiv(a.n, slices);
        slices = cdiv(a.n, slice);
        Workspace ws(sizeof(float) * static_cast<size_t>(slices * a.d));
        if (ws.rc) return ws.rc;
        float* part = static_cast<float*>(ws.p);
        colsum_partial<T><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(slices)), 256>>>(
            static_cast<const T*>(a.a), a.n, a.d, slice, part);
        if (int rc = check_launch("ds_op_sum_rows kernel")) return rc;
        return colsum_launch<T>(part, slices, a.d, a.y, "ds_op_sum_rows kernel");
    });
}

}  // namespace dscuda::nn
