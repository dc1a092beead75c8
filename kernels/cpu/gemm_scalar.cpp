// GEMM for CPUs without AVX2: the blocked driver (gemm_driver.hpp) with a portable 4 x 16 micro-kernel
// that the compiler vectorises for the baseline (SSE2): 16 accumulators of 4 floats.
#include "cpu_common.hpp"
#include "gemm.hpp"
#include "gemm_driver.hpp"

namespace {

struct KernelScalar {
    static constexpr int MR = 4, NR = 16;
    static constexpr bool kPairs = false;
    static constexpr int64_t KC = 256, MC = 64, NC = 512;

    template <int R>
    static void micro_r(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,
                        float* __restrict c, int64_t ldc, float alpha, float beta) {
        float acc[R][NR] = {};
        for (int64_t k = 0; k < kc; ++k) {
            for (int r = 0; r < R; ++r) {
                const float av = a[r];
                for (int j = 0; j < NR; ++j) acc[r][j] += av * b[j];
            }
            a += MR;
            b += ldb;
        }
        for (int r = 0; r < R; ++r) {
            float* cr = c + r * ldc;
            if (beta == 0.0f)
                for (int j = 0; j < NR; ++j) cr[j] = alpha * acc[r][j];
            else
                for (int j = 0; j < NR; ++j) cr[j] = alpha * acc[r][j] + beta * cr[j];
        }
    }

    static void micro(int mr, int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                      float alpha, float beta) {
        switch (mr) {
            case 4: micro_r<4>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 3: micro_r<3>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            case 2: micro_r<2>(kc, a, b, ldb, c, ldc, alpha, beta); break;
            default: micro_r<1>(kc, a, b, ldb, c, ldc, alpha, beta); break;
        }
    }

    static float h2f(uint16_t h) { return ds::cpu::f16_to_f32(h); }
    static uint16_t f2h(float f) { return ds::cpu::f32_to_f16(f); }

    static void pack_bt(const void* src, int32_t dt, int64_t ldb, int64_t nr, int64_t kc, float* dst);
    static void pack_at(const void* src, int32_t dt, int64_t lda, int64_t mr, int64_t kc, float* dst);

    static void to_f32(const void* src, int32_t dt, int64_t n, float* dst) {
        if (dt == DS_DTYPE_F32) {
            memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
        } else if (dt == DS_DTYPE_BF16) {
            const uint16_t* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = g_bf16_to_f32(s[i]);
        } else {
            const uint16_t* s = static_cast<const uint16_t*>(src);
            for (int64_t i = 0; i < n; ++i) dst[i] = ds::cpu::f16_to_f32(s[i]);
        }
    }
};

void KernelScalar::pack_bt(const void* src, int32_t dt, int64_t ldb, int64_t nr, int64_t kc, float* dst) {
    GemmDriver<KernelScalar>::pack_bt_generic(src, dt, ldb, nr, kc, dst);
}

void KernelScalar::pack_at(const void* src, int32_t dt, int64_t lda, int64_t mr, int64_t kc, float* dst) {
    GemmDriver<KernelScalar>::pack_at_generic(src, dt, lda, mr, kc, dst);
}

}  // namespace

namespace ds::cpu::detail {
void gemm_scalar(const ds_op_gemm_args_t& args) { GemmDriver<KernelScalar>::run(args); }
}  // namespace ds::cpu::detail
