/* The gemm family: ds_op_gemm, ds_op_quantize, ds_op_dequantize, ds_op_gemm_wq.
 *
 * Every check compares against a float64 reference computed here from the values actually stored
 * (inputs are rounded to their dtype first), on fresh random data: the seed comes from time() and is
 * printed; DSABI_TEST_SEED=<n> reproduces a run. GEMM: odd shapes that divide no tile (1x1x1,
 * 7x13x5, 33x65x17, 127x129x131), shapes that cross the K and N blocks, batched with B batched or
 * shared, all trans_a / trans_b, alpha / beta, every epilogue, f32 / f16 / bf16 inputs with C of their
 * dtype or f32; tolerances: out_eps(C dtype) |ref| + acc_eps(dtype) sqrt(K). Every CPU instruction
 * set this CPU has. Quantization: exact levels and bytes of hand-checked vectors (ties to even, int4
 * nibble order), zero and constant groups, per-element error <= scale / 2 on random data, dequantize
 * bit-exact against q scale (+ zero); gemm_wq against x dequant(W)^T in float64. Bad arguments: the
 * status and a message naming the argument. With a GPU, the same on CUDA tensors with outputs
 * poisoned (NaN or garbage bytes) first.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "dsabi.h"
#include "minitest.h"

static int32_t g_ncuda;
static uint64_t g_rng;

static double rnd(void) { /* xorshift64*, uniform in [-1, 1) */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* ---- dtype conversions (round to nearest even), independent of the library ---- */

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static uint16_t to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static float from_bf16(uint16_t h) { return bits_f32((uint32_t)h << 16); }
static float from_f16(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m + 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}
static uint16_t to_f16(float f) { /* by search over the neighbours: slow but obviously right */
    if (isnan(f)) return 0x7e00;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    float a = fabsf(f);
    if (a >= 65520.0f) return sign | 0x7c00;
    /* candidates: truncation and the next value up */
    uint16_t lo = 0;
    for (int bit = 14; bit >= 0; --bit) {
        uint16_t t = (uint16_t)(lo | (1u << bit));
        if (t <= 0x7bff && from_f16(t) <= a) lo = t;
    }
    uint16_t hi = (uint16_t)(lo + 1);
    double dl = (double)a - from_f16(lo), dh = (double)from_f16(hi) - a;
    uint16_t r = (dl < dh || (dl == dh && (lo & 1) == 0)) ? lo : hi;
    return sign | r;
}

static double load_elem(const void* p, int32_t dt, int64_t i) {
    switch (dt) {
        case DS_DTYPE_F32: return ((const float*)p)[i];
        case DS_DTYPE_F16: return from_f16(((const uint16_t*)p)[i]);
        case DS_DTYPE_BF16: return from_bf16(((const uint16_t*)p)[i]);
        case DS_DTYPE_I8: return ((const int8_t*)p)[i];
        case DS_DTYPE_U8: return ((const uint8_t*)p)[i];
        default: return NAN;
    }
}
static void store_elem(void* p, int32_t dt, int64_t i, double v) {
    switch (dt) {
        case DS_DTYPE_F32: ((float*)p)[i] = (float)v; break;
        case DS_DTYPE_F16: ((uint16_t*)p)[i] = to_f16((float)v); break;
        case DS_DTYPE_BF16: ((uint16_t*)p)[i] = to_bf16((float)v); break;
        case DS_DTYPE_I8: ((int8_t*)p)[i] = (int8_t)v; break;
        case DS_DTYPE_U8: ((uint8_t*)p)[i] = (uint8_t)v; break;
        default: break;
    }
}
/* v as stored in dtype dt */
static double rounded(int32_t dt, double v) {
    unsigned char buf[8];
    store_elem(buf, dt, 0, v);
    return load_elem(buf, dt, 0);
}
static const char* dtn(int32_t dt) { return ds_dtype_name(dt); }

/* ---- tensors on either device ---- */

static int64_t numel_of(int nd, const int64_t* shape) {
    int64_t n = 1;
    for (int i = 0; i < nd; ++i) n *= shape[i];
    return n;
}

/* A tensor on dev holding vals (converted to dt); vals NULL: poisoned (NaN for floats, 0xAB-ish bytes
 * for u8/i8). */
static ds_tensor_t* make(int32_t dev, int32_t dt, int nd, const int64_t* shape, const double* vals) {
    ds_tensor_t* h = NULL;
    if (ds_tensor_create(dt, nd, shape, DS_DEV_CPU, 0, &h) != DS_OK) {
        fprintf(stderr, "ds_tensor_create: %s\n", ds_last_error());
        abort();
    }
    if (vals) {
        void* p = NULL;
        ds_tensor_get_data(h, &p);
        int64_t n = numel_of(nd, shape);
        for (int64_t i = 0; i < n; ++i) store_elem(p, dt, i, vals[i]);
    } else {
        double poison = dt == DS_DTYPE_U8 ? 171.0 : dt == DS_DTYPE_I8 ? -77.0 : NAN;
        ds_tensor_fill(h, poison);
    }
    if (dev == DS_DEV_CPU) return h;
    ds_tensor_t* d = NULL;
    if (ds_tensor_clone(h, DS_DEV_CUDA, 0, &d) != DS_OK) {
        fprintf(stderr, "ds_tensor_clone to CUDA: %s\n", ds_last_error());
        abort();
    }
    ds_tensor_destroy(h);
    return d;
}

/* The elements of t as doubles (malloc'd). */
static double* fetch(const ds_tensor_t* t) {
    int32_t dev = 0, idx = 0, dt = 0;
    int64_t n = 0;
    ds_tensor_get_device(t, &dev, &idx);
    ds_tensor_get_dtype(t, &dt);
    ds_tensor_get_numel(t, &n);
    ds_tensor_t* h = NULL;
    const ds_tensor_t* src = t;
    if (dev != DS_DEV_CPU) {
        ds_dev_synchronize(dev, idx);
        if (ds_tensor_clone(t, DS_DEV_CPU, 0, &h) != DS_OK) {
            fprintf(stderr, "ds_tensor_clone to CPU: %s\n", ds_last_error());
            abort();
        }
        src = h;
    }
    void* p = NULL;
    ds_tensor_get_data(src, &p);
    double* out = (double*)malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; ++i) out[i] = load_elem(p, dt, i);
    ds_tensor_destroy(h);
    return out;
}

static double* rand_vals(int64_t n, int32_t dt, double scale) {
    double* v = (double*)malloc(sizeof(double) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; ++i) v[i] = rounded(dt, scale * rnd());
    return v;
}

static double out_eps(int32_t dt) { return dt == DS_DTYPE_F32 ? 2e-6 : dt == DS_DTYPE_F16 ? 1.5e-3 : 1.2e-2; }
static double acc_eps(int32_t dt) { return dt == DS_DTYPE_F32 ? 3e-6 : 1e-5; }

static double gelu_ref(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

/* ---- GEMM ---- */

typedef struct {
    int64_t batch; /* 0: 2-D */
    int64_t m, n, k;
    int ta, tb;
    int b_shared; /* batched a and c, 2-D b */
    int32_t dt, cdt;
    float alpha, beta;
    int32_t epi;
} gcase_t;

static int g_gemm_cases;

static void run_gemm(int32_t dev, const gcase_t* g, const char* where) {
    const int batched = g->batch > 0;
    const int64_t nb = batched ? g->batch : 1;
    int64_t ash[3], bsh[3], csh[3];
    int and_ = 0, bnd = 0, cnd = 0;
    if (batched) ash[and_++] = nb;
    ash[and_++] = g->ta ? g->k : g->m;
    ash[and_++] = g->ta ? g->m : g->k;
    if (batched && !g->b_shared) bsh[bnd++] = nb;
    bsh[bnd++] = g->tb ? g->n : g->k;
    bsh[bnd++] = g->tb ? g->k : g->n;
    if (batched) csh[cnd++] = nb;
    csh[cnd++] = g->m;
    csh[cnd++] = g->n;
    const int64_t na = numel_of(and_, ash), nbv = numel_of(bnd, bsh), nc = numel_of(cnd, csh);
    double* av = rand_vals(na, g->dt, 1.0);
    double* bv = rand_vals(nbv, g->dt, 1.0);
    double* c0 = g->beta != 0.0f ? rand_vals(nc, g->cdt, 1.0) : NULL;
    const int has_bias = g->epi == DS_EPILOGUE_BIAS || g->epi == DS_EPILOGUE_BIAS_GELU;
    const int has_gelu = g->epi == DS_EPILOGUE_GELU || g->epi == DS_EPILOGUE_BIAS_GELU;
    int64_t biassh[1] = {g->n};
    double* biasv = has_bias ? rand_vals(g->n, g->cdt, 1.0) : NULL;
    ds_tensor_t* A = make(dev, g->dt, and_, ash, av);
    ds_tensor_t* B = make(dev, g->dt, bnd, bsh, bv);
    ds_tensor_t* C = make(dev, g->cdt, cnd, csh, c0); /* NULL values: NaN, which beta = 0 must ignore */
    ds_tensor_t* Bias = has_bias ? make(dev, g->cdt, 1, biassh, biasv) : NULL;
    ds_gemm_options_t o;
    ds_gemm_options_init(&o);
    o.trans_a = g->ta;
    o.trans_b = g->tb;
    o.alpha = g->alpha;
    o.beta = g->beta;
    o.epilogue = g->epi;
    ++g_gemm_cases;
    ds_status_t st = ds_op_gemm(A, B, Bias, C, &o);
    if (st != DS_OK) {
        minitest_failed_checks++;
        fprintf(stderr, "%s: ds_op_gemm failed (%s) for batch %lld m %lld n %lld k %lld: %s\n", where, ds_status_str(st),
                (long long)g->batch, (long long)g->m, (long long)g->n, (long long)g->k, ds_last_error());
    } else {
        double* cv = fetch(C);
        int bad = 0;
        double worst = 0;
        for (int64_t b = 0; b < nb && bad < 3; ++b)
            for (int64_t i = 0; i < g->m && bad < 3; ++i)
                for (int64_t j = 0; j < g->n && bad < 3; ++j) {
                    double s = 0;
                    for (int64_t kk = 0; kk < g->k; ++kk) {
                        int64_t ai = b * g->m * g->k + (g->ta ? kk * g->m + i : i * g->k + kk);
                        int64_t bo = (batched && !g->b_shared) ? b * g->k * g->n : 0;
                        int64_t bi = bo + (g->tb ? j * g->k + kk : kk * g->n + j);
                        s += av[ai] * bv[bi];
                    }
                    int64_t ci = (b * g->m + i) * g->n + j;
                    double ref = (double)g->alpha * s + (c0 ? (double)g->beta * c0[ci] : 0.0);
                    if (has_bias) ref += biasv[j];
                    if (has_gelu) ref = gelu_ref(ref);
                    double tol = out_eps(g->cdt) * fabs(ref) + acc_eps(g->dt) * sqrt((double)g->k) * (1.0 + fabs(g->alpha));
                    /* cuBLASLt's GELU epilogue may evaluate tanh with a hardware approximation (relative
                     * error ~2^-11): 0.5 |x| of that */
                    if (has_gelu && dev == DS_DEV_CUDA) tol += 3e-4 * (1.0 + fabs(ref));
                    /* With a 16-bit C, cuBLASLt may round alpha*AB to C's type before adding beta*C
                     * and the bias (seen on H100): one more output rounding of each term, which
                     * matters where the terms cancel. */
                    if (dev == DS_DEV_CUDA && g->cdt != DS_DTYPE_F32)
                        tol += 2.0 * out_eps(g->cdt) *
                               (fabs((double)g->alpha * s) + (c0 ? fabs((double)g->beta * c0[ci]) : 0.0) +
                                (has_bias ? fabs(biasv[j]) : 0.0));
                    double err = fabs(cv[ci] - ref);
                    if (err > worst) worst = err;
                    if (!(err <= tol)) {
                        if (bad == 0)
                            fprintf(stderr,
                                    "%s: gemm %s->%s batch %lld%s m %lld n %lld k %lld ta %d tb %d alpha %g beta %g epi %d: "
                                    "c[%lld][%lld][%lld] = %.9g, expected %.9g (tol %.3g)\n",
                                    where, dtn(g->dt), dtn(g->cdt), (long long)g->batch, g->b_shared ? " (b shared)" : "",
                                    (long long)g->m, (long long)g->n, (long long)g->k, g->ta, g->tb, g->alpha, g->beta,
                                    g->epi, (long long)b, (long long)i, (long long)j, cv[ci], ref, tol);
                        ++bad;
                    }
                }
        if (bad) minitest_failed_checks++;
        free(cv);
    }
    ds_tensor_destroy(A);
    ds_tensor_destroy(B);
    ds_tensor_destroy(C);
    ds_tensor_destroy(Bias);
    free(av);
    free(bv);
    free(c0);
    free(biasv);
}

/* Every shape x trans combination in f32, then the dtype / alpha / beta / epilogue matrix. */
static void gemm_suite(int32_t dev, const char* where) {
    static const int64_t shapes[][4] = {/* batch, m, n, k */
                                        {0, 1, 1, 1},    {0, 7, 13, 5},    {0, 33, 65, 17}, {0, 127, 129, 131},
                                        {0, 1, 70, 300}, {0, 30, 600, 300}, {3, 17, 40, 33}, {2, 4, 40, 50}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int s = 0; s < nshapes; ++s)
        for (int t = 0; t < 4; ++t) {
            gcase_t g = {shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], t & 1, t >> 1, 0,
                         DS_DTYPE_F32, DS_DTYPE_F32, 1.0f, 0.0f, DS_EPILOGUE_NONE};
            run_gemm(dev, &g, where);
            if (g.batch) { /* the same with b shared over the batch */
                g.b_shared = 1;
                run_gemm(dev, &g, where);
            }
        }
    static const int32_t dts[3] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16};
    for (int d = 0; d < 3; ++d)
        for (int same = 0; same < 2; ++same) {
            int32_t cdt = same ? dts[d] : DS_DTYPE_F32;
            if (d == 0 && !same) continue;
            for (int e = 0; e < 4; ++e) {
                gcase_t g = {0, 45, 70, 300, e & 1, (e >> 1) & 1, 0, dts[d], cdt, 1.0f, 0.0f, e};
                run_gemm(dev, &g, where);
            }
            /* alpha / beta, with K crossing a K block so that beta is applied once only */
            gcase_t g1 = {0, 29, 33, 271, 0, 1, 0, dts[d], cdt, 0.5f, 0.75f, DS_EPILOGUE_NONE};
            run_gemm(dev, &g1, where);
            gcase_t g2 = {0, 16, 40, 9, 1, 0, 0, dts[d], cdt, -1.5f, 1.0f, DS_EPILOGUE_NONE};
            run_gemm(dev, &g2, where);
            gcase_t g3 = {4, 19, 21, 23, 1, 1, 1, dts[d], cdt, 2.0f, 0.0f, DS_EPILOGUE_BIAS_GELU};
            run_gemm(dev, &g3, where);
            gcase_t g4 = {2, 9, 50, 64, 0, 1, 0, dts[d], cdt, 1.0f, -0.5f, DS_EPILOGUE_NONE};
            run_gemm(dev, &g4, where);
            /* a few rows (the CPU's unpacked small-M path) */
            gcase_t g5 = {0, 3, 37, 45, 1, 0, 0, dts[d], cdt, 0.5f, 1.0f, DS_EPILOGUE_NONE};
            run_gemm(dev, &g5, where);
            gcase_t g6 = {0, 2, 70, 20, 0, 1, 0, dts[d], cdt, 1.0f, 0.0f, DS_EPILOGUE_BIAS_GELU};
            run_gemm(dev, &g6, where);
            gcase_t g7 = {3, 5, 33, 17, 0, 0, 0, dts[d], cdt, 1.0f, 0.0f, DS_EPILOGUE_BIAS};
            run_gemm(dev, &g7, where);
        }
    if (dev == DS_DEV_CUDA) { /* tensor-core sized shapes, Linear-like layouts */
        gcase_t big[] = {
            {0, 256, 384, 512, 0, 1, 0, DS_DTYPE_BF16, DS_DTYPE_BF16, 1.0f, 0.0f, DS_EPILOGUE_BIAS},
            {0, 256, 384, 512, 0, 0, 0, DS_DTYPE_F16, DS_DTYPE_F16, 1.0f, 0.0f, DS_EPILOGUE_GELU},
            {8, 128, 64, 96, 0, 1, 0, DS_DTYPE_BF16, DS_DTYPE_F32, 1.0f, 1.0f, DS_EPILOGUE_NONE},
            {0, 200, 300, 1000, 1, 0, 0, DS_DTYPE_F32, DS_DTYPE_F32, 1.0f, 0.0f, DS_EPILOGUE_BIAS_GELU},
            {3, 64, 96, 128, 1, 0, 1, DS_DTYPE_BF16, DS_DTYPE_BF16, 1.0f, 0.0f, DS_EPILOGUE_NONE},
            /* 2^30 multiply-adds with beta 0: the first call times cuBLASLt's candidates and keeps the
             * fastest (kernels/cuda/ops_gemm.cu, autotune_ok); C is checked after those trial runs */
            {0, 1024, 1024, 1024, 0, 1, 0, DS_DTYPE_BF16, DS_DTYPE_BF16, 1.0f, 0.0f, DS_EPILOGUE_BIAS},
            {0, 1024, 1024, 1024, 0, 0, 0, DS_DTYPE_F16, DS_DTYPE_F16, 0.5f, 0.0f, DS_EPILOGUE_NONE},
        };
        for (size_t i = 0; i < sizeof big / sizeof big[0]; ++i) run_gemm(dev, &big[i], where);
    }
}

TEST(gemm_options_defaults) {
    ds_gemm_options_t o;
    memset(&o, 0x5a, sizeof o);
    ds_gemm_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof o);
    CHECK_EQ_INT(o.abi_version, DS_ABI_VERSION);
    CHECK_EQ_INT(o.trans_a, 0);
    CHECK_EQ_INT(o.trans_b, 0);
    CHECK(o.alpha == 1.0f && o.beta == 0.0f);
    CHECK_EQ_INT(o.epilogue, DS_EPILOGUE_NONE);
    ds_quant_options_t q;
    memset(&q, 0x5a, sizeof q);
    ds_quant_options_init(&q);
    CHECK_EQ_INT(q.struct_size, sizeof q);
    CHECK_EQ_INT(q.bits, 8);
    CHECK_EQ_INT(q.group_size, 128);
    CHECK_EQ_INT(q.symmetric, 1);
    ds_gemm_options_init(NULL);
    ds_quant_options_init(NULL);
}

TEST(gemm_cpu_every_isa) {
    int32_t orig = 0;
    CHECK_OK(ds_op_get_cpu_isa(&orig));
    static const int32_t isas[3] = {DS_CPU_ISA_SCALAR, DS_CPU_ISA_AVX2, DS_CPU_ISA_AVX512};
    static const char* names[3] = {"cpu/scalar", "cpu/avx2", "cpu/avx512"};
    for (int i = 0; i < 3; ++i) {
        if (ds_op_set_cpu_isa(isas[i]) != DS_OK) {
            printf("  %s: not supported by this CPU, skipped\n", names[i]);
            continue;
        }
        int before = g_gemm_cases;
        gemm_suite(DS_DEV_CPU, names[i]);
        printf("  %s: %d GEMM cases\n", names[i], g_gemm_cases - before);
    }
    CHECK_OK(ds_op_set_cpu_isa(orig));
}

TEST(gemm_cpu_one_thread_and_many) {
    /* Work splitting differs with the thread count: one thread, and more threads than cores. */
    int32_t orig = 0;
    ds_op_get_num_threads(&orig);
    int32_t counts[2] = {1, 5};
    for (int i = 0; i < 2; ++i) {
        CHECK_OK(ds_op_set_num_threads(counts[i]));
        gcase_t g1 = {0, 3, 700, 260, 0, 1, 0, DS_DTYPE_BF16, DS_DTYPE_BF16, 1.0f, 0.0f, DS_EPILOGUE_BIAS};
        run_gemm(DS_DEV_CPU, &g1, "cpu/threads");
        gcase_t g2 = {0, 150, 40, 70, 1, 0, 0, DS_DTYPE_F32, DS_DTYPE_F32, 1.0f, 0.5f, DS_EPILOGUE_NONE};
        run_gemm(DS_DEV_CPU, &g2, "cpu/threads");
        gcase_t g3 = {5, 30, 20, 40, 0, 0, 1, DS_DTYPE_F16, DS_DTYPE_F32, 1.0f, 0.0f, DS_EPILOGUE_GELU};
        run_gemm(DS_DEV_CPU, &g3, "cpu/threads");
    }
    CHECK_OK(ds_op_set_num_threads(0));
    (void)orig;
}

/* A row-major multiply with a wrapped, offset C: the kernel writes only its own elements. */
TEST(gemm_cpu_writes_only_c) {
    float a[6] = {1, 2, 3, 4, 5, 6}; /* [2, 3] */
    float b[6] = {1, 0, 0, 1, 1, 1}; /* [3, 2] */
    float cbuf[8] = {-7, 0, 0, 0, 0, -7, -7, -7};
    int64_t as[2] = {2, 3}, bs[2] = {3, 2}, cs[2] = {2, 2};
    ds_tensor_t *A = NULL, *B = NULL, *C = NULL;
    CHECK_OK(ds_tensor_wrap(a, DS_DTYPE_F32, 2, as, NULL, DS_DEV_CPU, 0, &A));
    CHECK_OK(ds_tensor_wrap(b, DS_DTYPE_F32, 2, bs, NULL, DS_DEV_CPU, 0, &B));
    CHECK_OK(ds_tensor_wrap(cbuf + 1, DS_DTYPE_F32, 2, cs, NULL, DS_DEV_CPU, 0, &C));
    CHECK_OK(ds_op_gemm(A, B, NULL, C, NULL));
    /* [1 2 3; 4 5 6] x [1 0; 0 1; 1 1] = [4 5; 10 11] */
    CHECK(cbuf[0] == -7 && cbuf[1] == 4 && cbuf[2] == 5 && cbuf[3] == 10 && cbuf[4] == 11 && cbuf[5] == -7);
    ds_tensor_destroy(A);
    ds_tensor_destroy(B);
    ds_tensor_destroy(C);
}

static ds_tensor_t* cpu_t(int32_t dt, int nd, int64_t d0, int64_t d1, int64_t d2) {
    int64_t sh[3] = {d0, d1, d2};
    ds_tensor_t* t = NULL;
    ds_tensor_create(dt, nd, sh, DS_DEV_CPU, 0, &t);
    return t;
}

TEST(gemm_bad_arguments) {
    ds_tensor_t* a = cpu_t(DS_DTYPE_F32, 2, 4, 5, 0);
    ds_tensor_t* b = cpu_t(DS_DTYPE_F32, 2, 5, 6, 0);
    ds_tensor_t* c = cpu_t(DS_DTYPE_F32, 2, 4, 6, 0);
    ds_tensor_t* b_bad = cpu_t(DS_DTYPE_F32, 2, 4, 6, 0);
    ds_tensor_t* c_bad = cpu_t(DS_DTYPE_F32, 2, 6, 4, 0);
    ds_tensor_t* b16 = cpu_t(DS_DTYPE_BF16, 2, 5, 6, 0);
    ds_tensor_t* a16 = cpu_t(DS_DTYPE_BF16, 2, 4, 5, 0);
    ds_tensor_t* c16 = cpu_t(DS_DTYPE_F16, 2, 4, 6, 0);
    ds_tensor_t* bias = cpu_t(DS_DTYPE_F32, 1, 6, 0, 0);
    ds_tensor_t* bias_bad = cpu_t(DS_DTYPE_F32, 1, 5, 0, 0);
    ds_tensor_t* a3 = cpu_t(DS_DTYPE_F32, 3, 2, 4, 5);
    ds_tensor_t* b3 = cpu_t(DS_DTYPE_F32, 3, 3, 5, 6);
    ds_tensor_t* c3 = cpu_t(DS_DTYPE_F32, 3, 2, 4, 6);
    ds_tensor_t* i32 = cpu_t(DS_DTYPE_I32, 2, 4, 5, 0);
    ds_gemm_options_t o;
    ds_gemm_options_init(&o);

    CHECK_STATUS(ds_op_gemm(NULL, b, NULL, c, &o), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "a is NULL");
    CHECK_STATUS(ds_op_gemm(a, b, NULL, NULL, &o), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "c is NULL");
    CHECK_STATUS(ds_op_gemm(a, b_bad, NULL, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "a has shape [4, 5] and b has shape [4, 6]");
    CHECK_STATUS(ds_op_gemm(a, b, NULL, c_bad, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "c has shape [6, 4]; expected [4, 6]");
    CHECK_STATUS(ds_op_gemm(a, b16, NULL, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "b has dtype bf16 but a has f32");
    CHECK_STATUS(ds_op_gemm(a16, b16, NULL, c16, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "c has dtype f16");
    CHECK_STATUS(ds_op_gemm(i32, b, NULL, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "a has dtype i32");
    CHECK_STATUS(ds_op_gemm(a, b, NULL, a, &o), DS_ERR_INVALID_ARG); /* shape first */
    CHECK_STATUS(ds_op_gemm(a3, b3, NULL, c3, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "batch dimensions differ");
    CHECK_STATUS(ds_op_gemm(a, b3, NULL, c3, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "b has shape [3, 5, 6]");
    CHECK_STATUS(ds_op_gemm(a3, b, NULL, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "c has shape [4, 6]; expected [2, 4, 6]");

    o.epilogue = DS_EPILOGUE_BIAS;
    CHECK_STATUS(ds_op_gemm(a, b, NULL, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "bias is NULL");
    CHECK_STATUS(ds_op_gemm(a, b, bias_bad, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "bias has shape [5]; expected [6]");
    o.beta = 1.0f;
    CHECK_STATUS(ds_op_gemm(a, b, bias, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->beta");
    o.beta = 0.0f;
    o.epilogue = 9;
    CHECK_STATUS(ds_op_gemm(a, b, bias, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->epilogue=9");
    o.epilogue = DS_EPILOGUE_NONE;
    CHECK_STATUS(ds_op_gemm(a, b, bias, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "bias (f32[6]) is given");
    o.trans_a = 2;
    CHECK_STATUS(ds_op_gemm(a, b, NULL, c, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->trans_a=2");
    ds_gemm_options_init(&o);
    o.struct_size = 4;
    CHECK_STATUS(ds_op_gemm(a, b, NULL, c, &o), DS_ERR_VERSION);
    ds_gemm_options_init(&o);
    /* c aliasing an input */
    float buf[64] = {0};
    int64_t s44[2] = {4, 4};
    ds_tensor_t *x = NULL, *y = NULL;
    ds_tensor_wrap(buf, DS_DTYPE_F32, 2, s44, NULL, DS_DEV_CPU, 0, &x);
    ds_tensor_wrap(buf + 8, DS_DTYPE_F32, 2, s44, NULL, DS_DEV_CPU, 0, &y);
    CHECK_STATUS(ds_op_gemm(x, x, NULL, y, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "c (f32[4, 4]) overlaps a");
    /* a CUDA tensor mixed with CPU ones */
    if (g_ncuda > 0) {
        int64_t sh[2] = {5, 6};
        ds_tensor_t* bg = NULL;
        ds_tensor_create(DS_DTYPE_F32, 2, sh, DS_DEV_CUDA, 0, &bg);
        CHECK_STATUS(ds_op_gemm(a, bg, NULL, c, &o), DS_ERR_DEVICE_MISMATCH);
        CHECK_CONTAINS(ds_last_error(), "b is f32[5, 6] on cuda:0");
        ds_tensor_destroy(bg);
    }
    ds_tensor_destroy(x);
    ds_tensor_destroy(y);
    ds_tensor_t* all[] = {a, b, c, b_bad, c_bad, b16, a16, c16, bias, bias_bad, a3, b3, c3, i32};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) ds_tensor_destroy(all[i]);
}

/* ---- quantization ---- */

static int32_t q_dtype(int bits, int sym) { return bits == 8 && sym ? DS_DTYPE_I8 : DS_DTYPE_U8; }

/* Quantize x (rows x k values given) on dev; returns q bytes, scales and zeros through out params. */
static int quantize_on(int32_t dev, int32_t xdt, const double* xv, int64_t rows, int64_t k, int bits, int group,
                       int sym, uint8_t* q_out, float* s_out, float* z_out) {
    int64_t xs[2] = {rows, k}, qs[2] = {rows, bits == 8 ? k : k / 2}, ss[2] = {rows, k / group};
    ds_tensor_t* X = make(dev, xdt, 2, xs, xv);
    ds_tensor_t* Q = make(dev, q_dtype(bits, sym), 2, qs, NULL);
    ds_tensor_t* S = make(dev, DS_DTYPE_F32, 2, ss, NULL);
    ds_tensor_t* Z = sym ? NULL : make(dev, DS_DTYPE_F32, 2, ss, NULL);
    ds_quant_options_t o;
    ds_quant_options_init(&o);
    o.bits = bits;
    o.group_size = group;
    o.symmetric = sym;
    ds_status_t st = ds_op_quantize(X, Q, S, Z, &o);
    if (st != DS_OK) {
        fprintf(stderr, "ds_op_quantize: %s\n", ds_last_error());
    } else {
        double* qv = fetch(Q);
        double* sv = fetch(S);
        for (int64_t i = 0; i < qs[0] * qs[1]; ++i) q_out[i] = (uint8_t)(int)qv[i];
        for (int64_t i = 0; i < ss[0] * ss[1]; ++i) s_out[i] = (float)sv[i];
        free(qv);
        free(sv);
        if (Z) {
            double* zv = fetch(Z);
            for (int64_t i = 0; i < ss[0] * ss[1]; ++i) z_out[i] = (float)zv[i];
            free(zv);
        }
    }
    ds_tensor_destroy(X);
    ds_tensor_destroy(Q);
    ds_tensor_destroy(S);
    ds_tensor_destroy(Z);
    return st == DS_OK;
}

/* The signed level of element i of row r (q bytes of a [rows, k] tensor). */
static int level(const uint8_t* q, int64_t k, int64_t r, int64_t i, int bits, int sym) {
    if (bits == 8) return sym ? (int)(int8_t)q[r * k + i] : (int)q[r * k + i];
    uint8_t byte = q[r * (k / 2) + i / 2];
    int nib = (i & 1) ? byte >> 4 : byte & 15;
    return sym ? nib - 8 : nib;
}

static void quant_hand_checked(int32_t dev, const char* where) {
    /* symmetric 8-bit, one group: max |x| = 127 gives scale 1, so the levels are rne(x) */
    {
        double x[8] = {127, -3.5, 2.5, 0.4, -0.6, 1, -127, 0.5};
        int expect[8] = {127, -4, 2, 0, -1, 1, -127, 0};
        uint8_t q[8];
        float s[1], z[1];
        if (quantize_on(dev, DS_DTYPE_F32, x, 1, 8, 8, 8, 1, q, s, z)) {
            CHECK(s[0] == 1.0f);
            for (int i = 0; i < 8; ++i) {
                if (level(q, 8, 0, i, 8, 1) != expect[i])
                    fprintf(stderr, "%s: sym8 element %d: %d, expected %d\n", where, i, level(q, 8, 0, i, 8, 1), expect[i]);
                CHECK_EQ_INT(level(q, 8, 0, i, 8, 1), expect[i]);
            }
        } else {
            CHECK(0);
        }
    }
    /* asymmetric 8-bit: min -1, max 254: scale 1, zero -1, levels rne(x + 1) */
    {
        double x[8] = {-1, 254, 0.5, 1.5, 3, 100.25, -0.5, 10};
        int expect[8] = {0, 255, 2, 2, 4, 101, 0, 11};
        uint8_t q[8];
        float s[1], z[1];
        if (quantize_on(dev, DS_DTYPE_F32, x, 1, 8, 8, 8, 0, q, s, z)) {
            CHECK(s[0] == 1.0f);
            CHECK(z[0] == -1.0f);
            for (int i = 0; i < 8; ++i) CHECK_EQ_INT(level(q, 8, 0, i, 8, 0), expect[i]);
        } else {
            CHECK(0);
        }
    }
    /* symmetric 4-bit, two groups of 4: scales 1 and 2; stored q + 8, even element in the low nibble */
    {
        double x[8] = {7, -7, 0.5, 1.5, /* group 2, scale 14 / 7 = 2: */ -5, 14, 0, -2};
        uint8_t expect_bytes[4] = {(uint8_t)(15 | (1 << 4)), (uint8_t)(8 | (10 << 4)), (uint8_t)(6 | (15 << 4)),
                                   (uint8_t)(8 | (7 << 4))};
        /* -5 / 2 = -2.5 -> -2 (even), 14 / 2 = 7, 0, -2 / 2 = -1 */
        uint8_t q[4];
        float s[2], z[2];
        if (quantize_on(dev, DS_DTYPE_F32, x, 1, 8, 4, 4, 1, q, s, z)) {
            CHECK(s[0] == 1.0f && s[1] == 2.0f);
            for (int i = 0; i < 4; ++i) {
                if (q[i] != expect_bytes[i])
                    fprintf(stderr, "%s: sym4 byte %d: 0x%02x, expected 0x%02x\n", where, i, q[i], expect_bytes[i]);
                CHECK_EQ_INT(q[i], expect_bytes[i]);
            }
        } else {
            CHECK(0);
        }
    }
    /* asymmetric 4-bit: min 0, max 15: scale 1 zero 0; an all-zero group and a constant group */
    {
        double x[12] = {0, 15, 2.5, 3.5, 0, 0, 0, 0, 3, 3, 3, 3};
        uint8_t q[6];
        float s[3], z[3];
        if (quantize_on(dev, DS_DTYPE_F32, x, 1, 12, 4, 4, 0, q, s, z)) {
            CHECK(s[0] == 1.0f && z[0] == 0.0f);
            CHECK_EQ_INT(q[0], 0 | (15 << 4));
            CHECK_EQ_INT(q[1], 2 | (4 << 4));
            CHECK(s[1] == 1.0f && z[1] == 0.0f); /* zero group: scale 1 */
            CHECK_EQ_INT(q[2], 0);
            CHECK_EQ_INT(q[3], 0);
            CHECK(s[2] == 1.0f && z[2] == 3.0f); /* constant group: scale 1, zero = the value */
            CHECK_EQ_INT(q[4], 0);
            CHECK_EQ_INT(q[5], 0);
        } else {
            CHECK(0);
        }
    }
    /* symmetric 8-bit all-zero group: scale 1, q 0 */
    {
        double x[4] = {0, 0, 0, 0};
        uint8_t q[4] = {9, 9, 9, 9};
        float s[1], z[1];
        if (quantize_on(dev, DS_DTYPE_BF16, x, 1, 4, 8, 4, 1, q, s, z)) {
            CHECK(s[0] == 1.0f);
            for (int i = 0; i < 4; ++i) CHECK_EQ_INT(q[i], 0);
        } else {
            CHECK(0);
        }
    }
}

/* Random data: ranges, scales, per-element error, and dequantize bit-exact against q scale (+ zero). */
static void quant_random(int32_t dev, const char* where) {
    static const int32_t dts[3] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16};
    static const int groups[3] = {32, 3, 128}; /* 3: odd, 4-bit pairs straddle groups */
    static const int64_t ks[3] = {96, 18, 256};
    for (int bits = 8; bits >= 4; bits -= 4)
        for (int sym = 0; sym < 2; ++sym)
            for (int c = 0; c < 3; ++c) {
                const int32_t xdt = dts[c];
                const int group = groups[c];
                const int64_t rows = 5, k = ks[c], ng = k / group;
                double* xv = (double*)malloc(sizeof(double) * (size_t)(rows * k));
                for (int64_t i = 0; i < rows * k; ++i) xv[i] = rounded(xdt, 3.0 * rnd() + (sym ? 0.0 : 1.0));
                uint8_t* q = (uint8_t*)malloc((size_t)(rows * k));
                float* s = (float*)malloc(sizeof(float) * (size_t)(rows * ng));
                float* z = (float*)malloc(sizeof(float) * (size_t)(rows * ng));
                if (!quantize_on(dev, xdt, xv, rows, k, bits, group, sym, q, s, z)) {
                    CHECK(0);
                } else {
                    int bad = 0;
                    const int qmax = sym ? (bits == 8 ? 127 : 7) : (bits == 8 ? 255 : 15);
                    for (int64_t r = 0; r < rows; ++r)
                        for (int64_t g = 0; g < ng; ++g) {
                            float mx = -INFINITY, mn = INFINITY, amax = 0;
                            for (int64_t i = g * group; i < (g + 1) * group; ++i) {
                                float v = (float)xv[r * k + i];
                                mx = fmaxf(mx, v);
                                mn = fminf(mn, v);
                                amax = fmaxf(amax, fabsf(v));
                            }
                            float want_s = sym ? amax / (float)qmax : (mx - mn) / (float)qmax;
                            if (s[r * ng + g] != want_s || (!sym && z[r * ng + g] != mn)) {
                                if (!bad++)
                                    fprintf(stderr, "%s: %d-bit sym %d %s: scale %.9g zero %.9g, expected %.9g %.9g\n", where,
                                            bits, sym, dtn(xdt), s[r * ng + g], sym ? 0.0 : z[r * ng + g], want_s, mn);
                            }
                            for (int64_t i = g * group; i < (g + 1) * group; ++i) {
                                int lv = level(q, k, r, i, bits, sym);
                                double deq = sym ? (double)lv * s[r * ng + g] : (double)lv * s[r * ng + g] + z[r * ng + g];
                                double err = fabs(deq - xv[r * k + i]);
                                int in_range = sym ? (lv >= -qmax && lv <= qmax) : (lv >= 0 && lv <= qmax);
                                if (!in_range || err > 0.5 * s[r * ng + g] * (1 + 1e-5) + 1e-6 * fabs(xv[r * k + i])) {
                                    if (!bad++)
                                        fprintf(stderr, "%s: %d-bit sym %d %s x[%lld][%lld] = %.9g: level %d, dequantized %.9g "
                                                "(scale %.9g)\n", where, bits, sym, dtn(xdt), (long long)r, (long long)i,
                                                xv[r * k + i], lv, deq, s[r * ng + g]);
                                }
                            }
                        }
                    CHECK_EQ_INT(bad, 0);
                    /* dequantize into each float dtype: exactly q scale (+ zero) rounded to y's dtype */
                    for (int yd = 0; yd < 3; ++yd) {
                        int64_t qs[2] = {rows, bits == 8 ? k : k / 2}, ss[2] = {rows, ng}, ys[2] = {rows, k};
                        double* qd = (double*)malloc(sizeof(double) * (size_t)(qs[0] * qs[1]));
                        for (int64_t i = 0; i < qs[0] * qs[1]; ++i) qd[i] = bits == 8 && sym ? (double)(int8_t)q[i] : q[i];
                        double* sd = (double*)malloc(sizeof(double) * (size_t)(rows * ng));
                        double* zd = (double*)malloc(sizeof(double) * (size_t)(rows * ng));
                        for (int64_t i = 0; i < rows * ng; ++i) {
                            sd[i] = s[i];
                            zd[i] = z[i];
                        }
                        ds_tensor_t* Q = make(dev, q_dtype(bits, sym), 2, qs, qd);
                        ds_tensor_t* S = make(dev, DS_DTYPE_F32, 2, ss, sd);
                        ds_tensor_t* Z = sym ? NULL : make(dev, DS_DTYPE_F32, 2, ss, zd);
                        ds_tensor_t* Y = make(dev, dts[yd], 2, ys, NULL);
                        ds_quant_options_t o;
                        ds_quant_options_init(&o);
                        o.bits = bits;
                        o.group_size = group;
                        o.symmetric = sym;
                        CHECK_OK(ds_op_dequantize(Q, S, Z, Y, &o));
                        double* yv = fetch(Y);
                        int ybad = 0;
                        for (int64_t r = 0; r < rows; ++r)
                            for (int64_t i = 0; i < k; ++i) {
                                int lv = level(q, k, r, i, bits, sym);
                                float sc = s[r * ng + i / group];
                                float want = (float)lv * sc;
                                if (!sym) want = want + z[r * ng + i / group];
                                double w = rounded(dts[yd], want);
                                if (yv[r * k + i] != w && !ybad++)
                                    fprintf(stderr, "%s: dequantize %d-bit sym %d -> %s y[%lld][%lld] = %.9g, expected %.9g\n",
                                            where, bits, sym, dtn(dts[yd]), (long long)r, (long long)i, yv[r * k + i], w);
                            }
                        CHECK_EQ_INT(ybad, 0);
                        free(yv);
                        free(qd);
                        free(sd);
                        free(zd);
                        ds_tensor_destroy(Q);
                        ds_tensor_destroy(S);
                        ds_tensor_destroy(Z);
                        ds_tensor_destroy(Y);
                    }
                }
                free(xv);
                free(q);
                free(s);
                free(z);
            }
}

/* gemm_wq against x dequant(W)^T (+ bias) in float64, W dequantized by ds_op_dequantize (f32). */
static void gemm_wq_case(int32_t dev, int32_t dt, int64_t m, int64_t n, int64_t k, int bits, int group, int sym,
                         int with_bias, const char* where) {
    int64_t ws[2] = {n, k}, qs[2] = {n, bits == 8 ? k : k / 2}, ss[2] = {n, k / group}, xs[2] = {m, k}, ys[2] = {m, n},
            bs[1] = {n};
    double* wv = rand_vals(n * k, DS_DTYPE_F32, 1.0);
    double* xv = rand_vals(m * k, dt, 1.0);
    double* bv = with_bias ? rand_vals(n, dt, 1.0) : NULL;
    ds_tensor_t* W = make(dev, DS_DTYPE_F32, 2, ws, wv);
    ds_tensor_t* Q = make(dev, q_dtype(bits, sym), 2, qs, NULL);
    ds_tensor_t* S = make(dev, DS_DTYPE_F32, 2, ss, NULL);
    ds_tensor_t* Z = sym ? NULL : make(dev, DS_DTYPE_F32, 2, ss, NULL);
    ds_tensor_t* Wd = make(dev, DS_DTYPE_F32, 2, ws, NULL);
    ds_tensor_t* X = make(dev, dt, 2, xs, xv);
    ds_tensor_t* Y = make(dev, dt, 2, ys, NULL);
    ds_tensor_t* Bias = with_bias ? make(dev, dt, 1, bs, bv) : NULL;
    ds_quant_options_t o;
    ds_quant_options_init(&o);
    o.bits = bits;
    o.group_size = group;
    o.symmetric = sym;
    CHECK_OK(ds_op_quantize(W, Q, S, Z, &o));
    CHECK_OK(ds_op_dequantize(Q, S, Z, Wd, &o));
    ds_status_t st = ds_op_gemm_wq(X, Q, S, Z, Bias, Y, &o);
    if (st != DS_OK) {
        minitest_failed_checks++;
        fprintf(stderr, "%s: ds_op_gemm_wq failed: %s\n", where, ds_last_error());
    } else {
        double* wd = fetch(Wd);
        double* yv = fetch(Y);
        int bad = 0;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double sacc = 0, sabs = 0, ssq = 0;
                for (int64_t kk = 0; kk < k; ++kk) {
                    double p = xv[i * k + kk] * wd[j * k + kk];
                    sacc += p;
                    sabs += fabs(p);
                    ssq += p * p;
                }
                double ref = sacc + (bv ? bv[j] : 0.0);
                /* CUDA, M > 16: the weight is dequantized to x's dtype before cuBLASLt: a relative
                 * rounding of each weight of at most 2^-9 (bf16) / 2^-12 (f16), random in sign: a 4-sigma
                 * bound on its sum (dtype rounding of twice that to be safe) */
                double wq_eps = dt == DS_DTYPE_BF16 ? 1.0 / 256 : dt == DS_DTYPE_F16 ? 1.0 / 2048 : 0.0;
                double tol = out_eps(dt) * fabs(ref) + acc_eps(dt) * sqrt((double)k) + 1e-6 * sabs + 4.0 * wq_eps * sqrt(ssq);
                double err = fabs(yv[i * n + j] - ref);
                if (!(err <= tol) && !bad++)
                    fprintf(stderr, "%s: gemm_wq %s m %lld n %lld k %lld %d-bit group %d sym %d bias %d: y[%lld][%lld] = %.9g, "
                            "expected %.9g (tol %.3g)\n", where, dtn(dt), (long long)m, (long long)n, (long long)k, bits, group,
                            sym, with_bias, (long long)i, (long long)j, yv[i * n + j], ref, tol);
            }
        CHECK_EQ_INT(bad, 0);
        free(wd);
        free(yv);
    }
    ds_tensor_t* all[] = {W, Q, S, Z, Wd, X, Y, Bias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) ds_tensor_destroy(all[i]);
    free(wv);
    free(xv);
    free(bv);
}

static void gemm_wq_suite(int32_t dev, const char* where) {
    static const int32_t dts[3] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16};
    static const int64_t ms[5] = {1, 3, 5, 16, 33};
    int c = 0;
    for (int bits = 8; bits >= 4; bits -= 4)
        for (int sym = 0; sym < 2; ++sym)
            for (int d = 0; d < 3; ++d) {
                ++c;
                /* odd shapes, small groups (CUDA: the generic kernel below 17 rows) */
                gemm_wq_case(dev, dts[d], ms[c % 5], 40, 96, bits, 32, sym, c & 1, where);
                /* groups of 64 / 128 and K a multiple of 64 (CUDA: the tensor-core decode kernel) */
                gemm_wq_case(dev, dts[d], ms[(c + 2) % 5], 72, 256, bits, (c & 2) ? 64 : 128, sym, (c + 1) & 1, where);
            }
    if (dev == DS_DEV_CUDA) { /* every M of the decode kernel, and the dequantize + cuBLASLt path */
        for (int64_t m = 1; m <= 17; m += 4) gemm_wq_case(dev, DS_DTYPE_BF16, m, 136, 512, 4, 128, 1, 1, where);
        gemm_wq_case(dev, DS_DTYPE_F16, 16, 264, 1024, 8, 64, 0, 0, where);
        gemm_wq_case(dev, DS_DTYPE_BF16, 40, 264, 1024, 8, 128, 1, 1, where);
        gemm_wq_case(dev, DS_DTYPE_BF16, 300, 520, 384, 4, 128, 0, 1, where);
    }
}

TEST(quant_cpu) {
    int32_t orig = 0;
    ds_op_get_cpu_isa(&orig);
    quant_hand_checked(DS_DEV_CPU, "cpu");
    quant_random(DS_DEV_CPU, "cpu");
    static const int32_t isas[3] = {DS_CPU_ISA_SCALAR, DS_CPU_ISA_AVX2, DS_CPU_ISA_AVX512};
    static const char* names[3] = {"cpu/scalar", "cpu/avx2", "cpu/avx512"};
    for (int i = 0; i < 3; ++i) { /* gemm_wq runs the GEMM micro-kernel of each ISA for M > 4 */
        if (ds_op_set_cpu_isa(isas[i]) != DS_OK) continue;
        gemm_wq_suite(DS_DEV_CPU, names[i]);
    }
    ds_op_set_cpu_isa(orig);
}

TEST(quant_bad_arguments) {
    ds_tensor_t* x = cpu_t(DS_DTYPE_F32, 2, 4, 64, 0);
    ds_tensor_t* q8 = cpu_t(DS_DTYPE_I8, 2, 4, 64, 0);
    ds_tensor_t* u8 = cpu_t(DS_DTYPE_U8, 2, 4, 64, 0);
    ds_tensor_t* q4 = cpu_t(DS_DTYPE_U8, 2, 4, 32, 0);
    ds_tensor_t* s = cpu_t(DS_DTYPE_F32, 2, 4, 2, 0);
    ds_tensor_t* s_bad = cpu_t(DS_DTYPE_F32, 2, 4, 3, 0);
    ds_tensor_t* z = cpu_t(DS_DTYPE_F32, 2, 4, 2, 0);
    ds_tensor_t* xodd = cpu_t(DS_DTYPE_F32, 2, 4, 63, 0);
    ds_tensor_t* y = cpu_t(DS_DTYPE_F32, 2, 3, 4, 0);
    ds_tensor_t* y_bad = cpu_t(DS_DTYPE_F32, 2, 3, 5, 0);
    ds_tensor_t* xm = cpu_t(DS_DTYPE_F32, 2, 3, 64, 0);
    ds_tensor_t* w3 = cpu_t(DS_DTYPE_I8, 3, 1, 4, 64);
    ds_quant_options_t o;
    ds_quant_options_init(&o);
    o.group_size = 32;
    CHECK_OK(ds_op_quantize(x, q8, s, NULL, &o));
    o.bits = 3;
    CHECK_STATUS(ds_op_quantize(x, q8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->bits=3");
    o.bits = 8;
    o.group_size = 48;
    CHECK_STATUS(ds_op_quantize(x, q8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->group_size=48 does not divide");
    o.group_size = 0;
    CHECK_STATUS(ds_op_quantize(x, q8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->group_size=0");
    o.group_size = 32;
    CHECK_STATUS(ds_op_quantize(x, u8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "q has dtype u8");
    CHECK_STATUS(ds_op_quantize(x, q8, s_bad, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "scales has shape [4, 3]");
    o.symmetric = 0;
    CHECK_STATUS(ds_op_quantize(x, u8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "zeros is NULL");
    CHECK_OK(ds_op_quantize(x, u8, s, z, &o));
    o.symmetric = 2;
    CHECK_STATUS(ds_op_quantize(x, u8, s, z, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "opt->symmetric=2");
    o.symmetric = 1;
    o.bits = 4;
    CHECK_STATUS(ds_op_quantize(x, q8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "q has dtype i8");
    CHECK_STATUS(ds_op_quantize(x, u8, s, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "q has shape [4, 64]; expected 4 rows of 32 bytes");
    CHECK_OK(ds_op_quantize(x, q4, s, NULL, &o));
    o.group_size = 1;
    ds_tensor_t* s63 = cpu_t(DS_DTYPE_F32, 2, 4, 63, 0);
    CHECK_STATUS(ds_op_quantize(xodd, q4, s63, NULL, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "odd last dimension 63");
    ds_tensor_destroy(s63);
    o.group_size = 32;
    /* dequantize */
    ds_tensor_t* yd = cpu_t(DS_DTYPE_BF16, 2, 4, 64, 0);
    CHECK_OK(ds_op_dequantize(q4, s, NULL, yd, &o));
    CHECK_STATUS(ds_op_dequantize(q4, s, NULL, q8, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "y has dtype i8");
    CHECK_STATUS(ds_op_dequantize(NULL, s, NULL, yd, &o), DS_ERR_INVALID_HANDLE);
    CHECK_CONTAINS(ds_last_error(), "q is NULL");
    /* gemm_wq: x [3, 64], w [4, 64] -> y [3, 4] */
    o.bits = 8;
    CHECK_OK(ds_op_gemm_wq(xm, q8, s, NULL, NULL, y, &o));
    CHECK_STATUS(ds_op_gemm_wq(xm, q8, s, NULL, NULL, y_bad, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "y has shape [3, 5]; expected [3, 4]");
    CHECK_STATUS(ds_op_gemm_wq(xm, w3, s, NULL, NULL, y, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "wq has shape [1, 4, 64]");
    CHECK_STATUS(ds_op_gemm_wq(xm, q8, s, NULL, s, y, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "bias has shape [4, 2]");
    CHECK_STATUS(ds_op_gemm_wq(xm, q8, s, NULL, NULL, yd, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "y has dtype bf16 but x has f32");
    o.symmetric = 0;
    CHECK_STATUS(ds_op_gemm_wq(xm, u8, s, NULL, NULL, y, &o), DS_ERR_INVALID_ARG);
    CHECK_CONTAINS(ds_last_error(), "zeros is NULL");
    ds_tensor_t* all[] = {x, q8, u8, q4, s, s_bad, z, xodd, y, y_bad, xm, w3, yd};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) ds_tensor_destroy(all[i]);
}

TEST(cuda_ops) {
    if (g_ncuda <= 0) {
        printf("  CUDA part not run: no CUDA device (ds_dev_count(DS_DEV_CUDA) = 0)\n");
        return;
    }
    int before = g_gemm_cases;
    gemm_suite(DS_DEV_CUDA, "cuda");
    printf("  cuda: %d GEMM cases\n", g_gemm_cases - before);
    quant_hand_checked(DS_DEV_CUDA, "cuda");
    quant_random(DS_DEV_CUDA, "cuda");
    gemm_wq_suite(DS_DEV_CUDA, "cuda");
    /* CPU and CUDA quantize the same data to the same bytes */
    {
        const int64_t rows = 7, k = 256;
        double* xv = rand_vals(rows * k, DS_DTYPE_BF16, 2.0);
        for (int bits = 8; bits >= 4; bits -= 4)
            for (int sym = 0; sym < 2; ++sym) {
                uint8_t qc[rows * k], qg[rows * k];
                float sc[rows * 2], sg[rows * 2], zc[rows * 2], zg[rows * 2];
                int ok = quantize_on(DS_DEV_CPU, DS_DTYPE_BF16, xv, rows, k, bits, 128, sym, qc, sc, zc) &&
                         quantize_on(DS_DEV_CUDA, DS_DTYPE_BF16, xv, rows, k, bits, 128, sym, qg, sg, zg);
                CHECK(ok);
                if (!ok) continue;
                int64_t nq = bits == 8 ? rows * k : rows * k / 2;
                CHECK(memcmp(qc, qg, (size_t)nq) == 0);
                CHECK(memcmp(sc, sg, sizeof sc) == 0);
                if (!sym) CHECK(memcmp(zc, zg, sizeof zc) == 0);
            }
        free(xv);
    }
}

int main(void) {
    uint64_t seed = (uint64_t)time(NULL);
    const char* env = getenv("DSABI_TEST_SEED");
    if (env && *env) seed = strtoull(env, NULL, 10);
    printf("seed %llu (DSABI_TEST_SEED=%llu reproduces this run)\n", (unsigned long long)seed, (unsigned long long)seed);
    g_rng = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (!g_rng) g_rng = 1;
    if (ds_dev_count(DS_DEV_CUDA, &g_ncuda) != DS_OK) g_ncuda = 0;
    RUN(gemm_options_defaults);
    RUN(gemm_cpu_every_isa);
    RUN(gemm_cpu_one_thread_and_many);
    RUN(gemm_cpu_writes_only_c);
    RUN(gemm_bad_arguments);
    RUN(quant_cpu);
    RUN(quant_bad_arguments);
    RUN(cuda_ops);
    return minitest_report();
}
