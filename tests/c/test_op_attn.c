/* Attention (ds_op_attention, ds_op_attention_backward) against a float64 reference with a full
 * softmax, on fresh random data (seed from time(), printed; DSABI_TEST_SEED=<n> reproduces a run):
 * odd sequence lengths that divide no tile, S != S_kv, grouped-query heads, causal masks aligned at the
 * bottom right (rows that see no key), f32 / f16 / bf16 storage, the log-sum-exp, every CPU instruction
 * set; the backward against the reference gradient and against central finite differences; bad
 * arguments. With a GPU the same checks run on CUDA tensors (bf16 / f16, D 64 and 128) with the
 * outputs poisoned with NaN first. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsabi.h"
#include "minitest.h"

static int32_t g_n_cuda;
static uint64_t g_rng;

static uint64_t next_u64(void) { /* splitmix64 */
    g_rng += 0x9E3779B97F4A7C15ull;
    uint64_t z = g_rng;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform(double lo, double hi) { return lo + (hi - lo) * ((double)(next_u64() >> 11) / 9007199254740992.0); }

/* ---- storage dtypes ------------------------------------------------------------------------------ */

static uint16_t enc_bf16(double x) {
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static double dec_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint16_t enc_f16(double x) { /* round to nearest even; the test's values are far from overflow */
    uint16_t sign = x < 0 ? 0x8000u : 0;
    double a = fabs(x);
    if (a == 0) return sign;
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    int exp16 = e - 1 + 15;
    if (exp16 < 1) return (uint16_t)(sign | (uint16_t)nearbyint(a * 16777216.0)); /* subnormal: units of 2^-24 */
    double m = a / ldexp(1.0, e - 1) - 1.0; /* [0, 1) */
    double mant = nearbyint(m * 1024.0);
    if (mant == 1024.0) { mant = 0; exp16++; }
    return (uint16_t)(sign | (uint16_t)(exp16 << 10) | (uint16_t)mant);
}
static double dec_f16(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double s = (h & 0x8000u) ? -1.0 : 1.0;
    if (e == 0x1f) return m ? NAN : s * INFINITY;
    if (e == 0) return s * ldexp(m, -24);
    return s * ldexp(1024 + m, e - 25);
}
static double round_to(int32_t dtype, double x) {
    if (dtype == DS_DTYPE_BF16) return dec_bf16(enc_bf16(x));
    if (dtype == DS_DTYPE_F16) return dec_f16(enc_f16(x));
    return (double)(float)x;
}
static const char* dname(int32_t dtype) { return ds_dtype_name(dtype); }

/* A tensor on (dev_type, 0) holding vals (already representable in dtype). */
static ds_tensor_t* make(int32_t dtype, int ndim, const int64_t* shape, int32_t dev, const double* vals) {
    ds_tensor_t* host = NULL;
    if (ds_tensor_create(dtype, ndim, shape, DS_DEV_CPU, 0, &host) != DS_OK) return NULL;
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    void* p = NULL;
    ds_tensor_get_data(host, &p);
    for (int64_t i = 0; vals && i < n; ++i) {
        if (dtype == DS_DTYPE_F32) ((float*)p)[i] = (float)vals[i];
        else if (dtype == DS_DTYPE_BF16) ((uint16_t*)p)[i] = enc_bf16(vals[i]);
        else ((uint16_t*)p)[i] = enc_f16(vals[i]);
    }
    if (dev == DS_DEV_CPU) return host;
    ds_tensor_t* t = NULL;
    if (ds_tensor_create(dtype, ndim, shape, dev, 0, &t) == DS_OK) {
        if (vals) CHECK_OK(ds_tensor_copy(t, host));
        else CHECK_OK(ds_tensor_fill(t, NAN)); /* outputs: poisoned so that unwritten elements show */
    }
    ds_tensor_destroy(host);
    return t;
}
static ds_tensor_t* make_out(int32_t dtype, int ndim, const int64_t* shape, int32_t dev) {
    ds_tensor_t* t = make(dtype, ndim, shape, dev, NULL);
    if (t && dev == DS_DEV_CPU) CHECK_OK(ds_tensor_fill(t, NAN));
    return t;
}
/* Read a tensor back as doubles (a CUDA tensor through a host clone). */
static void fetch(const ds_tensor_t* t, double* out) {
    int32_t dev_type = 0, dev_index = 0, dtype = 0;
    int64_t n = 0;
    ds_tensor_get_device(t, &dev_type, &dev_index);
    ds_tensor_get_dtype(t, &dtype);
    ds_tensor_get_numel(t, &n);
    ds_tensor_t* host = NULL;
    if (dev_type != DS_DEV_CPU) {
        CHECK_OK(ds_tensor_clone(t, DS_DEV_CPU, 0, &host));
        if (!host) return;
    }
    void* p = NULL;
    ds_tensor_get_data(host ? host : t, &p);
    for (int64_t i = 0; i < n; ++i) {
        if (dtype == DS_DTYPE_F32) out[i] = ((const float*)p)[i];
        else if (dtype == DS_DTYPE_BF16) out[i] = dec_bf16(((const uint16_t*)p)[i]);
        else out[i] = dec_f16(((const uint16_t*)p)[i]);
    }
    ds_tensor_destroy(host);
}

/* ---- the float64 reference ------------------------------------------------------------------------ */

typedef struct {
    int64_t B, S, Skv;
    int Hq, Hkv, D;
    int causal;
    double scale; /* 0: 1 / sqrt(D) */
} shape_t;

static int64_t key_limit(const shape_t* c, int64_t i) {
    if (!c->causal) return c->Skv;
    int64_t l = i + c->Skv - c->S + 1;
    return l < 0 ? 0 : l > c->Skv ? c->Skv : l;
}
static double eff_scale(const shape_t* c) { return c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->D); }
static int64_t q_at(const shape_t* c, int64_t b, int64_t i, int h) { return ((b * c->S + i) * c->Hq + h) * c->D; }
static int64_t kv_at(const shape_t* c, int64_t b, int64_t j, int h) { return ((b * c->Skv + j) * c->Hkv + h) * c->D; }

/* Probabilities of row (b, h, i) into p[0, lim) (full softmax); returns lim, *lse the log-sum-exp. */
static int64_t ref_probs(const shape_t* c, const double* q, const double* k, int64_t b, int h, int64_t i, double* p,
                         double* lse) {
    const int64_t lim = key_limit(c, i);
    const int hk = h / (c->Hq / c->Hkv);
    const double* qi = q + q_at(c, b, i, h);
    double m = -INFINITY, sum = 0;
    for (int64_t j = 0; j < lim; ++j) {
        const double* kj = k + kv_at(c, b, j, hk);
        double s = 0;
        for (int d = 0; d < c->D; ++d) s += qi[d] * kj[d];
        p[j] = s * eff_scale(c);
        if (p[j] > m) m = p[j];
    }
    for (int64_t j = 0; j < lim; ++j) sum += (p[j] = exp(p[j] - m));
    for (int64_t j = 0; j < lim; ++j) p[j] /= sum;
    *lse = lim ? m + log(sum) : -INFINITY;
    return lim;
}

static void ref_forward(const shape_t* c, const double* q, const double* k, const double* v, double* o, double* lse) {
    double* p = malloc(sizeof(double) * (size_t)(c->Skv + 1));
    const int G = c->Hq / c->Hkv;
    for (int64_t b = 0; b < c->B; ++b)
        for (int64_t i = 0; i < c->S; ++i)
            for (int h = 0; h < c->Hq; ++h) {
                double l;
                const int64_t lim = ref_probs(c, q, k, b, h, i, p, &l);
                double* oi = o + q_at(c, b, i, h);
                for (int d = 0; d < c->D; ++d) oi[d] = 0;
                for (int64_t j = 0; j < lim; ++j) {
                    const double* vj = v + kv_at(c, b, j, h / G);
                    for (int d = 0; d < c->D; ++d) oi[d] += p[j] * vj[d];
                }
                if (lse) lse[(b * c->Hq + h) * c->S + i] = l;
            }
    free(p);
}

/* Gradients of L = sum(dout * attention(q, k, v)), computed directly from the full softmax. */
static void ref_backward(const shape_t* c, const double* q, const double* k, const double* v, const double* dout,
                         double* dq, double* dk, double* dv) {
    const int64_t nq = c->B * c->S * c->Hq * c->D, nk = c->B * c->Skv * c->Hkv * c->D;
    const int G = c->Hq / c->Hkv;
    const double sc = eff_scale(c);
    double* p = malloc(sizeof(double) * (size_t)(c->Skv + 1));
    double* o = malloc(sizeof(double) * (size_t)(c->D + 1));
    for (int64_t e = 0; e < nq; ++e) dq[e] = 0;
    for (int64_t e = 0; e < nk; ++e) dk[e] = dv[e] = 0;
    for (int64_t b = 0; b < c->B; ++b)
        for (int64_t i = 0; i < c->S; ++i)
            for (int h = 0; h < c->Hq; ++h) {
                double l;
                const int64_t lim = ref_probs(c, q, k, b, h, i, p, &l);
                const int hk = h / G;
                const double* doi = dout + q_at(c, b, i, h);
                const double* qi = q + q_at(c, b, i, h);
                double* dqi = dq + q_at(c, b, i, h);
                for (int d = 0; d < c->D; ++d) o[d] = 0;
                for (int64_t j = 0; j < lim; ++j)
                    for (int d = 0; d < c->D; ++d) o[d] += p[j] * v[kv_at(c, b, j, hk) + d];
                double di = 0;
                for (int d = 0; d < c->D; ++d) di += doi[d] * o[d];
                for (int64_t j = 0; j < lim; ++j) {
                    const int64_t at = kv_at(c, b, j, hk);
                    double dp = 0;
                    for (int d = 0; d < c->D; ++d) dp += doi[d] * v[at + d];
                    const double ds = p[j] * (dp - di);
                    for (int d = 0; d < c->D; ++d) {
                        dqi[d] += sc * ds * k[at + d];
                        dk[at + d] += sc * ds * qi[d];
                        dv[at + d] += p[j] * doi[d];
                    }
                }
            }
    free(p);
    free(o);
}

/* max |got - ref| / max(max |ref|, 1e-3) <= tol (NaN fails); prints the worst element otherwise. */
static int close_enough(const char* what, const char* ctx, const double* got, const double* ref, int64_t n, double tol) {
    double big = 1e-3, worst = 0;
    int64_t at = -1;
    for (int64_t e = 0; e < n; ++e)
        if (fabs(ref[e]) > big) big = fabs(ref[e]);
    for (int64_t e = 0; e < n; ++e) {
        double err = fabs(got[e] - ref[e]);
        if (!(err <= worst)) {
            worst = isnan(err) ? INFINITY : err;
            at = e;
            if (isnan(err)) break;
        }
    }
    if (!(worst <= tol * big)) {
        fprintf(stderr, "%s %s: max error %.3g (%.3g of max |ref| %.3g, tolerance %.3g) at element %lld: %.9g vs %.9g\n",
                ctx, what, worst, worst / big, big, tol, (long long)at, at >= 0 ? got[at] : 0.0, at >= 0 ? ref[at] : 0.0);
        return 0;
    }
    return 1;
}

typedef struct {
    double fwd, grad, lse;
} tol_t;

static tol_t tolerance(int32_t dtype, int32_t dev) {
    tol_t t;
    if (dtype == DS_DTYPE_F32) { t.fwd = 1e-4; t.grad = 2e-4; }
    else if (dtype == DS_DTYPE_F16) { t.fwd = dev == DS_DEV_CPU ? 2e-3 : 4e-3; t.grad = dev == DS_DEV_CPU ? 5e-3 : 1e-2; }
    else { t.fwd = dev == DS_DEV_CPU ? 1e-2 : 2e-2; t.grad = dev == DS_DEV_CPU ? 3e-2 : 4e-2; }
    t.lse = 2e-4;
    return t;
}

static double* fill_random(int64_t n, int32_t dtype, double lo, double hi) {
    double* x = malloc(sizeof(double) * (size_t)(n + 1));
    for (int64_t e = 0; e < n; ++e) x[e] = round_to(dtype, uniform(lo, hi));
    return x;
}

static const char* g_isa_name = "";

/* Forward (and backward) of one case on device dev against the reference. */
static void run_case(const shape_t* c, int32_t dtype, int32_t dev, int with_backward) {
    char ctx[200];
    snprintf(ctx, sizeof ctx, "%s%s %s B%lld S%lld Skv%lld Hq%d Hkv%d D%d%s%s", dev == DS_DEV_CPU ? "cpu/" : "cuda",
             dev == DS_DEV_CPU ? g_isa_name : "", dname(dtype), (long long)c->B, (long long)c->S, (long long)c->Skv,
             c->Hq, c->Hkv, c->D, c->causal ? " causal" : "", c->scale != 0 ? " scale" : "");
    const int64_t nq = c->B * c->S * c->Hq * c->D, nk = c->B * c->Skv * c->Hkv * c->D, nl = c->B * c->Hq * c->S;
    const int64_t qshape[4] = {c->B, c->S, c->Hq, c->D}, kshape[4] = {c->B, c->Skv, c->Hkv, c->D};
    const int64_t lshape[3] = {c->B, c->Hq, c->S};
    const tol_t tol = tolerance(dtype, dev);
    double* q = fill_random(nq, dtype, -2, 2);
    double* k = fill_random(nk, dtype, -2, 2);
    double* v = fill_random(nk, dtype, -1, 1);
    double* o_ref = malloc(sizeof(double) * (size_t)(nq + 1));
    double* l_ref = malloc(sizeof(double) * (size_t)(nl + 1));
    double* o = malloc(sizeof(double) * (size_t)(nq + 1));
    double* l = malloc(sizeof(double) * (size_t)(nl + 1));
    ds_tensor_t* Q = make(dtype, 4, qshape, dev, q);
    ds_tensor_t* K = make(dtype, 4, kshape, dev, k);
    ds_tensor_t* V = make(dtype, 4, kshape, dev, v);
    ds_tensor_t* O = make_out(dtype, 4, qshape, dev);
    ds_tensor_t* L = make_out(DS_DTYPE_F32, 3, lshape, dev);
    ds_attn_options_t opt;
    ds_attn_options_init(&opt);
    opt.causal = c->causal;
    opt.scale = (float)c->scale;
    int ok = Q && K && V && O && L;
    CHECK(ok);
    if (ok) {
        CHECK_OK(ds_op_attention(Q, K, V, O, L, &opt));
        CHECK_OK(ds_dev_synchronize(dev, 0));
        fetch(O, o);
        fetch(L, l);
        ref_forward(c, q, k, v, o_ref, l_ref);
        int good = close_enough("o", ctx, o, o_ref, nq, tol.fwd);
        for (int64_t e = 0; e < nl && good; ++e) {
            int inf_ref = isinf(l_ref[e]);
            if (inf_ref ? !(isinf(l[e]) && l[e] < 0) : !(fabs(l[e] - l_ref[e]) <= tol.lse * (1 + fabs(l_ref[e])))) {
                fprintf(stderr, "%s lse[%lld] = %.9g, expected %.9g\n", ctx, (long long)e, l[e], l_ref[e]);
                good = 0;
            }
        }
        /* Rows that see no key: exactly zero. */
        for (int64_t b = 0; b < c->B && good; ++b)
            for (int64_t i = 0; i < c->S && good; ++i)
                if (key_limit(c, i) == 0)
                    for (int64_t e = q_at(c, b, i, 0); e < q_at(c, b, i, 0) + (int64_t)c->Hq * c->D; ++e)
                        if (o[e] != 0) {
                            fprintf(stderr, "%s o[%lld] = %g in a row that sees no key\n", ctx, (long long)e, o[e]);
                            good = 0;
                            break;
                        }
        CHECK(good);
    }
    if (ok && with_backward) {
        double* dout = fill_random(nq, dtype, -1, 1);
        double* dq_ref = malloc(sizeof(double) * (size_t)(nq + 1));
        double* dk_ref = malloc(sizeof(double) * (size_t)(nk + 1));
        double* dv_ref = malloc(sizeof(double) * (size_t)(nk + 1));
        double* dq = malloc(sizeof(double) * (size_t)(nq + 1));
        double* dk = malloc(sizeof(double) * (size_t)(nk + 1));
        double* dv = malloc(sizeof(double) * (size_t)(nk + 1));
        ds_tensor_t* DO = make(dtype, 4, qshape, dev, dout);
        ds_tensor_t* DQ = make_out(dtype, 4, qshape, dev);
        ds_tensor_t* DK = make_out(dtype, 4, kshape, dev);
        ds_tensor_t* DV = make_out(dtype, 4, kshape, dev);
        CHECK_OK(ds_op_attention_backward(Q, K, V, O, DO, L, DQ, DK, DV, &opt));
        CHECK_OK(ds_dev_synchronize(dev, 0));
        fetch(DQ, dq);
        fetch(DK, dk);
        fetch(DV, dv);
        ref_backward(c, q, k, v, dout, dq_ref, dk_ref, dv_ref);
        CHECK(close_enough("dq", ctx, dq, dq_ref, nq, tol.grad));
        CHECK(close_enough("dk", ctx, dk, dk_ref, nk, tol.grad));
        CHECK(close_enough("dv", ctx, dv, dv_ref, nk, tol.grad));
        if (dev == DS_DEV_CPU) {
            /* Deterministic: a second run (one thread) gives the same bits. */
            int32_t threads = 0;
            ds_op_get_num_threads(&threads);
            CHECK_OK(ds_op_set_num_threads(1));
            CHECK_OK(ds_op_attention_backward(Q, K, V, O, DO, L, DQ, DK, DV, &opt));
            CHECK_OK(ds_op_set_num_threads(threads));
            double* again = malloc(sizeof(double) * (size_t)(nq + nk + 1));
            fetch(DQ, again);
            CHECK(memcmp(again, dq, sizeof(double) * (size_t)nq) == 0);
            fetch(DK, again);
            CHECK(memcmp(again, dk, sizeof(double) * (size_t)nk) == 0);
            free(again);
        }
        ds_tensor_destroy(DO);
        ds_tensor_destroy(DQ);
        ds_tensor_destroy(DK);
        ds_tensor_destroy(DV);
        free(dout); free(dq_ref); free(dk_ref); free(dv_ref); free(dq); free(dk); free(dv);
    }
    ds_tensor_destroy(Q);
    ds_tensor_destroy(K);
    ds_tensor_destroy(V);
    ds_tensor_destroy(O);
    ds_tensor_destroy(L);
    free(q); free(k); free(v); free(o_ref); free(l_ref); free(o); free(l);
}

/* ---- CPU tests ------------------------------------------------------------------------------------- */

static const shape_t g_cpu_shapes[] = {
    /* B  S    Skv  Hq Hkv D    causal scale */
    {1, 1, 1, 1, 1, 8, 0, 0},
    {1, 1, 1, 1, 1, 8, 1, 0},
    {2, 7, 33, 4, 2, 17, 1, 0},   /* S < Skv, GQA 2, odd D */
    {2, 7, 33, 4, 2, 17, 0, 0.3}, /* explicit scale */
    {1, 33, 7, 4, 1, 64, 1, 0},   /* S > Skv: the first 26 rows see no key; Hkv = 1 */
    {1, 33, 7, 4, 1, 64, 0, 0},
    {1, 130, 130, 2, 2, 128, 1, 0},
    {1, 130, 130, 2, 1, 128, 0, 0},
    {2, 130, 33, 4, 4, 8, 0, 0},
    {1, 33, 130, 4, 2, 64, 1, 0},
    {1, 1, 130, 2, 1, 128, 1, 0}, /* one query (decoding) */
    {1, 5, 0, 2, 1, 8, 0, 0},     /* no keys at all: zero output, lse -inf */
};

TEST(options_init_defaults) {
    ds_attn_options_t o;
    memset(&o, 0x5a, sizeof o);
    ds_attn_options_init(&o);
    CHECK_EQ_INT(o.struct_size, sizeof o);
    CHECK_EQ_INT(o.abi_version, DS_ABI_VERSION);
    CHECK_EQ_INT(o.causal, 0);
    CHECK(o.scale == 0.0f);
    ds_attn_options_init(NULL);
}

static void cpu_all_shapes(void) {
    const int32_t dtypes[3] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16};
    const int n = (int)(sizeof g_cpu_shapes / sizeof g_cpu_shapes[0]);
    for (int s = 0; s < n; ++s)
        for (int t = 0; t < 3; ++t) run_case(&g_cpu_shapes[s], dtypes[t], DS_DEV_CPU, 1);
}

/* The backward against central finite differences of the float64 forward (f32 storage), which also
 * checks the reference gradient itself. */
static void finite_differences(const shape_t* c) {
    const int64_t nq = c->B * c->S * c->Hq * c->D, nk = c->B * c->Skv * c->Hkv * c->D;
    const int64_t qshape[4] = {c->B, c->S, c->Hq, c->D}, kshape[4] = {c->B, c->Skv, c->Hkv, c->D};
    const int64_t lshape[3] = {c->B, c->Hq, c->S};
    double* x[3] = {fill_random(nq, DS_DTYPE_F32, -2, 2), fill_random(nk, DS_DTYPE_F32, -2, 2),
                    fill_random(nk, DS_DTYPE_F32, -1, 1)};
    const int64_t n[3] = {nq, nk, nk};
    double* dout = fill_random(nq, DS_DTYPE_F32, -1, 1);
    double* o = malloc(sizeof(double) * (size_t)nq);
    double* g_ref[3] = {malloc(sizeof(double) * (size_t)nq), malloc(sizeof(double) * (size_t)nk),
                        malloc(sizeof(double) * (size_t)nk)};
    double* g_lib[3] = {malloc(sizeof(double) * (size_t)nq), malloc(sizeof(double) * (size_t)nk),
                        malloc(sizeof(double) * (size_t)nk)};
    double* g_fd[3] = {malloc(sizeof(double) * (size_t)nq), malloc(sizeof(double) * (size_t)nk),
                       malloc(sizeof(double) * (size_t)nk)};
    ref_backward(c, x[0], x[1], x[2], dout, g_ref[0], g_ref[1], g_ref[2]);
    const double h = 1e-5;
    for (int a = 0; a < 3; ++a)
        for (int64_t e = 0; e < n[a]; ++e) {
            const double keep = x[a][e];
            double lp = 0, lm = 0;
            x[a][e] = keep + h;
            ref_forward(c, x[0], x[1], x[2], o, NULL);
            for (int64_t f = 0; f < nq; ++f) lp += dout[f] * o[f];
            x[a][e] = keep - h;
            ref_forward(c, x[0], x[1], x[2], o, NULL);
            for (int64_t f = 0; f < nq; ++f) lm += dout[f] * o[f];
            x[a][e] = keep;
            g_fd[a][e] = (lp - lm) / (2 * h);
        }
    ds_tensor_t* Q = make(DS_DTYPE_F32, 4, qshape, DS_DEV_CPU, x[0]);
    ds_tensor_t* K = make(DS_DTYPE_F32, 4, kshape, DS_DEV_CPU, x[1]);
    ds_tensor_t* V = make(DS_DTYPE_F32, 4, kshape, DS_DEV_CPU, x[2]);
    ds_tensor_t* DO = make(DS_DTYPE_F32, 4, qshape, DS_DEV_CPU, dout);
    ds_tensor_t* O = make_out(DS_DTYPE_F32, 4, qshape, DS_DEV_CPU);
    ds_tensor_t* L = make_out(DS_DTYPE_F32, 3, lshape, DS_DEV_CPU);
    ds_tensor_t* G[3] = {make_out(DS_DTYPE_F32, 4, qshape, DS_DEV_CPU), make_out(DS_DTYPE_F32, 4, kshape, DS_DEV_CPU),
                         make_out(DS_DTYPE_F32, 4, kshape, DS_DEV_CPU)};
    ds_attn_options_t opt;
    ds_attn_options_init(&opt);
    opt.causal = c->causal;
    CHECK_OK(ds_op_attention(Q, K, V, O, L, &opt));
    CHECK_OK(ds_op_attention_backward(Q, K, V, O, DO, L, G[0], G[1], G[2], &opt));
    const char* names[3] = {"dq", "dk", "dv"};
    char ctx[120];
    snprintf(ctx, sizeof ctx, "finite differences %s S%lld Skv%lld%s", g_isa_name, (long long)c->S, (long long)c->Skv,
             c->causal ? " causal" : "");
    for (int a = 0; a < 3; ++a) {
        fetch(G[a], g_lib[a]);
        CHECK(close_enough(names[a], ctx, g_ref[a], g_fd[a], n[a], 1e-7)); /* the reference is right */
        CHECK(close_enough(names[a], ctx, g_lib[a], g_fd[a], n[a], 1e-4)); /* the library agrees */
        ds_tensor_destroy(G[a]);
        free(x[a]); free(g_ref[a]); free(g_lib[a]); free(g_fd[a]);
    }
    ds_tensor_destroy(Q); ds_tensor_destroy(K); ds_tensor_destroy(V); ds_tensor_destroy(DO);
    ds_tensor_destroy(O); ds_tensor_destroy(L);
    free(dout); free(o);
}

static void cpu_finite_differences(void) {
    const shape_t a = {1, 3, 5, 2, 1, 4, 0, 0}, b = {1, 5, 3, 2, 1, 3, 1, 0}, c = {2, 4, 4, 2, 2, 5, 1, 0};
    finite_differences(&a);
    finite_differences(&b); /* rows 0 and 1 see no key */
    finite_differences(&c);
}

TEST(cpu_every_isa) {
    int32_t best = 0;
    CHECK_OK(ds_op_get_cpu_isa(&best));
    const char* names[3] = {"scalar", "avx2", "avx512"};
    for (int32_t isa = DS_CPU_ISA_SCALAR; isa <= DS_CPU_ISA_AVX512; ++isa) {
        if (ds_op_set_cpu_isa(isa) != DS_OK) {
            printf("cpu isa %s: not supported here, skipped\n", names[isa]);
            continue;
        }
        g_isa_name = names[isa];
        clock_t t0 = clock();
        cpu_all_shapes();
        cpu_finite_differences();
        printf("cpu isa %s: %d shapes x 3 dtypes, forward + backward, and finite differences (%.1f s cpu)\n",
               names[isa], (int)(sizeof g_cpu_shapes / sizeof g_cpu_shapes[0]), (double)(clock() - t0) / CLOCKS_PER_SEC);
    }
    CHECK_OK(ds_op_set_cpu_isa(best));
}

/* ---- bad arguments --------------------------------------------------------------------------------- */

static ds_tensor_t* zeros(int32_t dtype, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, int32_t dev) {
    const int64_t shape[4] = {a, b, c, d};
    ds_tensor_t* t = NULL;
    CHECK_OK(ds_tensor_create(dtype, ndim, shape, dev, 0, &t));
    return t;
}

#define EXPECT_FAIL(expr, status, text)              \
    do {                                             \
        CHECK_STATUS(expr, status);                  \
        CHECK_CONTAINS(ds_last_error(), text);       \
    } while (0)

TEST(cpu_bad_arguments) {
    const int32_t f32 = DS_DTYPE_F32, cpu = DS_DEV_CPU;
    ds_tensor_t* q = zeros(f32, 4, 2, 5, 4, 8, cpu);
    ds_tensor_t* k = zeros(f32, 4, 2, 6, 2, 8, cpu);
    ds_tensor_t* v = zeros(f32, 4, 2, 6, 2, 8, cpu);
    ds_tensor_t* o = zeros(f32, 4, 2, 5, 4, 8, cpu);
    ds_tensor_t* lse = zeros(f32, 3, 2, 4, 5, 1, cpu);
    ds_tensor_t* q3 = zeros(f32, 3, 2, 5, 32, 1, cpu);
    ds_tensor_t* k16 = zeros(DS_DTYPE_F16, 4, 2, 6, 2, 8, cpu);
    ds_tensor_t* k3h = zeros(f32, 4, 2, 6, 3, 8, cpu);
    ds_tensor_t* kd = zeros(f32, 4, 2, 6, 2, 16, cpu);
    ds_tensor_t* v7 = zeros(f32, 4, 2, 7, 2, 8, cpu);
    ds_tensor_t* o_bad = zeros(f32, 4, 2, 5, 2, 8, cpu);
    ds_tensor_t* lse_bad = zeros(f32, 3, 2, 5, 4, 1, cpu);
    ds_tensor_t* lse_bf = zeros(DS_DTYPE_BF16, 3, 2, 4, 5, 1, cpu);
    ds_tensor_t* qi = zeros(DS_DTYPE_I32, 4, 2, 5, 4, 8, cpu);
    ds_tensor_t* dq = zeros(f32, 4, 2, 5, 4, 8, cpu);
    ds_tensor_t* dk = zeros(f32, 4, 2, 6, 2, 8, cpu);
    ds_tensor_t* dv = zeros(f32, 4, 2, 6, 2, 8, cpu);
    ds_tensor_t* dk_bad = zeros(f32, 4, 2, 6, 4, 8, cpu);
    ds_attn_options_t opt;
    ds_attn_options_init(&opt);

    CHECK_OK(ds_op_attention(q, k, v, o, lse, &opt));
    CHECK_OK(ds_op_attention(q, k, v, o, NULL, NULL)); /* lse and options are optional */
    EXPECT_FAIL(ds_op_attention(NULL, k, v, o, lse, &opt), DS_ERR_INVALID_HANDLE, "q");
    EXPECT_FAIL(ds_op_attention(q3, k, v, o, lse, &opt), DS_ERR_INVALID_ARG, "q has shape [2, 5, 32]; expected 4 dimensions");
    EXPECT_FAIL(ds_op_attention(qi, k, v, o, lse, &opt), DS_ERR_INVALID_ARG, "q has dtype i32");
    EXPECT_FAIL(ds_op_attention(q, k16, v, o, lse, &opt), DS_ERR_INVALID_ARG, "k has dtype f16");
    EXPECT_FAIL(ds_op_attention(q, k3h, v, o, lse, &opt), DS_ERR_INVALID_ARG, "Hq must be a multiple of Hkv");
    EXPECT_FAIL(ds_op_attention(q, kd, v, o, lse, &opt), DS_ERR_INVALID_ARG, "k has shape [2, 6, 2, 16]");
    EXPECT_FAIL(ds_op_attention(q, k, v7, o, lse, &opt), DS_ERR_INVALID_ARG, "v has shape [2, 7, 2, 8]");
    EXPECT_FAIL(ds_op_attention(q, k, v, o_bad, lse, &opt), DS_ERR_INVALID_ARG, "o has shape [2, 5, 2, 8]");
    EXPECT_FAIL(ds_op_attention(q, k, v, o, lse_bad, &opt), DS_ERR_INVALID_ARG, "lse has shape [2, 5, 4]; expected [2, 4, 5]");
    EXPECT_FAIL(ds_op_attention(q, k, v, o, lse_bf, &opt), DS_ERR_INVALID_ARG, "lse has dtype bf16");
    EXPECT_FAIL(ds_op_attention(q, k, v, q, lse, &opt), DS_ERR_INVALID_ARG, "o overlaps q");
    opt.causal = 2;
    EXPECT_FAIL(ds_op_attention(q, k, v, o, lse, &opt), DS_ERR_INVALID_ARG, "opt->causal=2");
    ds_attn_options_init(&opt);
    opt.scale = NAN;
    EXPECT_FAIL(ds_op_attention(q, k, v, o, lse, &opt), DS_ERR_INVALID_ARG, "opt->scale");
    ds_attn_options_init(&opt);
    opt.struct_size = 4;
    EXPECT_FAIL(ds_op_attention(q, k, v, o, lse, &opt), DS_ERR_VERSION, "opt->struct_size");
    ds_attn_options_init(&opt);

    CHECK_OK(ds_op_attention_backward(q, k, v, o, o, lse, dq, dk, dv, &opt));
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o, NULL, dq, dk, dv, &opt), DS_ERR_INVALID_ARG, "lse is NULL");
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o, lse, dq, dk_bad, dv, &opt), DS_ERR_INVALID_ARG, "dk has shape [2, 6, 4, 8]");
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o_bad, lse, dq, dk, dv, &opt), DS_ERR_INVALID_ARG, "dout has shape");
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o, lse_bad, dq, dk, dv, &opt), DS_ERR_INVALID_ARG, "lse has shape");
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o, lse, dq, dk, dk, &opt), DS_ERR_INVALID_ARG, "dk overlaps dv");
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o, lse, q, dk, dv, &opt), DS_ERR_INVALID_ARG, "dq overlaps q");
    EXPECT_FAIL(ds_op_attention_backward(q, k16, v, o, o, lse, dq, dk, dv, &opt), DS_ERR_INVALID_ARG, "k has dtype f16");
    EXPECT_FAIL(ds_op_attention_backward(q, k, v, o, o, lse, dq, dk, NULL, &opt), DS_ERR_INVALID_HANDLE, "dv");

    ds_tensor_t* all[] = {q, k, v, o, lse, q3, k16, k3h, kd, v7, o_bad, lse_bad, lse_bf, qi, dq, dk, dv, dk_bad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) ds_tensor_destroy(all[i]);
}

/* ---- CUDA -------------------------------------------------------------------------------------------- */

static void cuda_bad_arguments(void) {
    const int32_t cu = DS_DEV_CUDA, bf = DS_DTYPE_BF16;
    ds_tensor_t* q = zeros(bf, 4, 1, 5, 2, 64, cu);
    ds_tensor_t* k = zeros(bf, 4, 1, 6, 1, 64, cu);
    ds_tensor_t* v = zeros(bf, 4, 1, 6, 1, 64, cu);
    ds_tensor_t* o = zeros(bf, 4, 1, 5, 2, 64, cu);
    ds_tensor_t* k_host = zeros(bf, 4, 1, 6, 1, 64, DS_DEV_CPU);
    ds_tensor_t* q32 = zeros(DS_DTYPE_F32, 4, 1, 5, 2, 64, cu);
    ds_tensor_t* k32 = zeros(DS_DTYPE_F32, 4, 1, 6, 1, 64, cu);
    ds_tensor_t* o32 = zeros(DS_DTYPE_F32, 4, 1, 5, 2, 64, cu);
    ds_tensor_t* qd = zeros(bf, 4, 1, 5, 2, 32, cu);
    ds_tensor_t* kd = zeros(bf, 4, 1, 6, 1, 32, cu);
    ds_tensor_t* od = zeros(bf, 4, 1, 5, 2, 32, cu);
    CHECK_OK(ds_op_attention(q, k, v, o, NULL, NULL));
    EXPECT_FAIL(ds_op_attention(q, k_host, v, o, NULL, NULL), DS_ERR_DEVICE_MISMATCH, "k");
    EXPECT_FAIL(ds_op_attention(q32, k32, k32, o32, NULL, NULL), DS_ERR_INVALID_ARG, "f16 or bf16");
    EXPECT_FAIL(ds_op_attention(qd, kd, kd, od, NULL, NULL), DS_ERR_INVALID_ARG, "D = 64 and 128");
    ds_tensor_t* all[] = {q, k, v, o, k_host, q32, k32, o32, qd, kd, od};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) ds_tensor_destroy(all[i]);
}

TEST(cuda_matches_reference) {
    if (g_n_cuda <= 0) {
        printf("CUDA part not run: no CUDA device (ds_dev_count(DS_DEV_CUDA) = 0)\n");
        return;
    }
    static const shape_t shapes[] = {
        /* B  S     Skv   Hq Hkv D    causal */
        {1, 1, 1, 2, 1, 64, 0, 0},
        {1, 1, 257, 4, 2, 128, 1, 0},
        {2, 33, 33, 2, 2, 64, 1, 0},
        {1, 33, 128, 4, 1, 128, 0, 0},
        {1, 128, 128, 2, 2, 128, 1, 0},
        {1, 128, 33, 4, 2, 64, 1, 0}, /* S > Skv: rows that see no key */
        {1, 100, 60, 2, 1, 128, 1, 0}, /* S > Skv by less than a block of 64 rows */
        {1, 200, 100, 2, 1, 128, 1, 0}, /* by more: whole 64-row blocks see no key */
        {2, 300, 300, 4, 2, 128, 1, 0},
        {1, 150, 520, 2, 2, 128, 1, 0},
        {2, 190, 190, 4, 1, 128, 0, 0},
        {2, 70, 40, 4, 2, 64, 1, 0},
        {2, 257, 257, 4, 2, 64, 1, 0},
        {1, 257, 130, 2, 1, 128, 0, 0.2},
        {1, 1024, 1024, 2, 1, 128, 1, 0},
        {1, 1024, 1024, 2, 2, 64, 0, 0},
        {1, 5, 0, 2, 1, 64, 0, 0},
    };
    const int32_t dtypes[2] = {DS_DTYPE_BF16, DS_DTYPE_F16};
    const int n = (int)(sizeof shapes / sizeof shapes[0]);
    clock_t t0 = clock();
    for (int s = 0; s < n; ++s)
        for (int t = 0; t < 2; ++t) run_case(&shapes[s], dtypes[t], DS_DEV_CUDA, 1);
    cuda_bad_arguments();
    printf("cuda: %d shapes x 2 dtypes, forward + backward (%.1f s cpu)\n", n, (double)(clock() - t0) / CLOCKS_PER_SEC);
}

int main(void) {
    uint64_t seed = (uint64_t)time(NULL);
    const char* env = getenv("DSABI_TEST_SEED");
    if (env && *env) seed = strtoull(env, NULL, 10);
    g_rng = seed;
    printf("seed %llu (DSABI_TEST_SEED=%llu reproduces this run)\n", (unsigned long long)seed, (unsigned long long)seed);
    if (ds_dev_count(DS_DEV_CUDA, &g_n_cuda) != DS_OK) g_n_cuda = 0;
    RUN(options_init_defaults);
    RUN(cpu_bad_arguments);
    RUN(cpu_every_isa);
    RUN(cuda_matches_reference);
    return minitest_report();
}
