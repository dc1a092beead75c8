/* Ops of the optim family: ds_op_optim_step (Adam, AdamW, LAMB, Lion, SGD, Adagrad), global norm,
 * scale, find_nonfinite and cast, against float64 references computed here on fresh random data
 * (seed from time(), printed; DSABI_TEST_SEED=<n> reproduces a run). Every CPU instruction set this
 * machine has is tested; with a GPU the same checks run on CUDA tensors, outputs poisoned first.
 *
 * The number formats (f16, bf16, FP8 E4M3 / E5M2) are re-implemented here with frexp/ldexp/nearbyint,
 * independently of the library's bit manipulation. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsabi.h"
#include "minitest.h"

static int32_t g_dev = DS_DEV_CPU; /* where the tensors of the current test live */
static int32_t g_n_cuda;
static uint64_t g_rng;

static uint64_t next_u64(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static double urand(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; } /* [0, 1) */
static double srand1(void) {                                                             /* [-1, 1), never 0 */
    double x = urand() * 2.0 - 1.0;
    return x == 0.0 ? 0.5 : x;
}

/* ---- reference number formats ------------------------------------------------------------------ */

typedef struct {
    int p;     /* significand bits including the hidden one */
    int emin;  /* exponent of the smallest normal */
    int bias;
    int ebits;
    int sat;   /* overflow (and inf) saturates to the largest finite value */
    int fn;    /* E4M3 "fn": no inf, only all-ones is nan */
    double maxf;
} fmt_t;

static fmt_t FMT_F16 = {11, -14, 15, 5, 0, 0, 0};
static fmt_t FMT_BF16 = {8, -126, 127, 8, 0, 0, 0};
static fmt_t FMT_E4M3 = {4, -6, 7, 4, 1, 1, 0};
static fmt_t FMT_E5M2 = {3, -14, 15, 5, 1, 0, 0};

static void init_formats(void) {
    FMT_F16.maxf = 65504.0;
    FMT_BF16.maxf = ldexp(255.0, 120);
    FMT_E4M3.maxf = 448.0;
    FMT_E5M2.maxf = 57344.0;
}

/* Round x to the format (nearest, ties to even). */
static double fmt_round(const fmt_t* f, double x) {
    if (isnan(x)) return x;
    if (isinf(x)) return f->sat ? copysign(f->maxf, x) : x;
    if (x == 0.0) return x;
    int e;
    frexp(x, &e);
    int lead = e - 1;
    if (lead < f->emin) lead = f->emin;
    double q = ldexp(1.0, lead - (f->p - 1));
    double r = nearbyint(x / q) * q;
    if (fabs(r) > f->maxf) return f->sat ? copysign(f->maxf, x) : copysign(INFINITY, x);
    if (r == 0.0) r = copysign(0.0, x);
    return r;
}

static uint32_t fmt_encode(const fmt_t* f, double v) { /* v already representable, or inf / nan */
    int mb = f->p - 1, sb = f->ebits + mb;
    uint32_t sign = signbit(v) ? 1u << sb : 0u, exmax = (1u << f->ebits) - 1;
    if (isnan(v)) return sign | (f->fn ? ((exmax << mb) | ((1u << mb) - 1)) : ((exmax << mb) | (1u << (mb - 1))));
    if (isinf(v)) return sign | (exmax << mb);
    double a = fabs(v);
    if (a == 0.0) return sign;
    int e;
    frexp(a, &e);
    int lead = e - 1;
    if (lead < f->emin) return sign | (uint32_t)(a / ldexp(1.0, f->emin - mb));
    return sign | ((uint32_t)(lead + f->bias) << mb) | ((uint32_t)(a / ldexp(1.0, lead - mb)) - (1u << mb));
}

static double fmt_decode(const fmt_t* f, uint32_t c) {
    int mb = f->p - 1, sb = f->ebits + mb;
    double s = ((c >> sb) & 1u) ? -1.0 : 1.0;
    uint32_t ex = (c >> mb) & ((1u << f->ebits) - 1), man = c & ((1u << mb) - 1), exmax = (1u << f->ebits) - 1;
    if (f->fn) {
        if (ex == exmax && man == (1u << mb) - 1) return NAN;
    } else if (ex == exmax) {
        return man ? NAN : s * INFINITY;
    }
    if (ex == 0) return s * ldexp((double)man, f->emin - mb);
    return s * ldexp((double)(man | (1u << mb)), (int)ex - f->bias - mb);
}

static const fmt_t* fmt_of(int32_t dt) {
    switch (dt) {
        case DS_DTYPE_F16: return &FMT_F16;
        case DS_DTYPE_BF16: return &FMT_BF16;
        case DS_DTYPE_FP8_E4M3: return &FMT_E4M3;
        case DS_DTYPE_FP8_E5M2: return &FMT_E5M2;
        default: return NULL;
    }
}

static size_t dsize(int32_t dt) {
    switch (dt) {
        case DS_DTYPE_F64: return 8;
        case DS_DTYPE_F32: case DS_DTYPE_I32: return 4;
        case DS_DTYPE_F16: case DS_DTYPE_BF16: return 2;
        default: return 1;
    }
}

/* v rounded to dtype (the value a tensor of dtype holds after storing v). */
static double quant(int32_t dt, double v) {
    if (dt == DS_DTYPE_F64) return v;
    if (dt == DS_DTYPE_F32) return (double)(float)v;
    return fmt_round(fmt_of(dt), v);
}

static void host_store(void* buf, int32_t dt, int64_t i, double v) {
    switch (dt) {
        case DS_DTYPE_F64: ((double*)buf)[i] = v; break;
        case DS_DTYPE_F32: ((float*)buf)[i] = (float)v; break;
        case DS_DTYPE_F16: case DS_DTYPE_BF16: ((uint16_t*)buf)[i] = (uint16_t)fmt_encode(fmt_of(dt), fmt_round(fmt_of(dt), v)); break;
        default: ((uint8_t*)buf)[i] = (uint8_t)fmt_encode(fmt_of(dt), fmt_round(fmt_of(dt), v)); break;
    }
}

static double host_load(const void* buf, int32_t dt, int64_t i) {
    switch (dt) {
        case DS_DTYPE_F64: return ((const double*)buf)[i];
        case DS_DTYPE_F32: return ((const float*)buf)[i];
        case DS_DTYPE_F16: case DS_DTYPE_BF16: return fmt_decode(fmt_of(dt), ((const uint16_t*)buf)[i]);
        default: return fmt_decode(fmt_of(dt), ((const uint8_t*)buf)[i]);
    }
}

/* ---- tensors on g_dev ------------------------------------------------------------------------ */

/* With g_unaligned set, 1-d tensors are views that start one element into a larger buffer (the
 * scalar / unaligned paths of the kernels); the buffers are kept in g_owners until free_owners(). */
static int g_unaligned;
static ds_tensor_t* g_owners[256];
static int g_n_owners;

static void free_owners(void) {
    for (int i = 0; i < g_n_owners; ++i) ds_tensor_destroy(g_owners[i]);
    g_n_owners = 0;
}

static ds_tensor_t* mk_bytes_plain(int32_t dt, int32_t ndim, const int64_t* shape, const void* host);

static ds_tensor_t* mk_bytes_shape(int32_t dt, int32_t ndim, const int64_t* shape, const void* host) {
    if (!g_unaligned || ndim != 1 || g_n_owners >= 256) return mk_bytes_plain(dt, ndim, shape, host);
    int64_t n1 = shape[0] + 1;
    unsigned char* buf = calloc((size_t)n1, dsize(dt));
    memcpy(buf + dsize(dt), host, (size_t)shape[0] * dsize(dt));
    ds_tensor_t* base = mk_bytes_plain(dt, 1, &n1, buf);
    free(buf);
    void* data = NULL;
    CHECK_OK(ds_tensor_get_data(base, &data));
    ds_tensor_t* view = NULL;
    CHECK_OK(ds_tensor_wrap((char*)data + dsize(dt), dt, 1, shape, NULL, g_dev, 0, &view));
    g_owners[g_n_owners++] = base;
    return view;
}

static ds_tensor_t* mk_bytes_plain(int32_t dt, int32_t ndim, const int64_t* shape, const void* host) {
    ds_tensor_t* h = NULL;
    CHECK_OK(ds_tensor_create(dt, ndim, shape, DS_DEV_CPU, 0, &h));
    if (!h) return NULL;
    uint64_t nb = 0;
    ds_tensor_get_nbytes(h, &nb);
    void* d = NULL;
    ds_tensor_get_data(h, &d);
    if (nb) memcpy(d, host, nb);
    if (g_dev == DS_DEV_CPU) return h;
    ds_tensor_t* c = NULL;
    CHECK_OK(ds_tensor_clone(h, g_dev, 0, &c));
    ds_tensor_destroy(h);
    return c;
}

static ds_tensor_t* mk_bytes(int32_t dt, int64_t n, const void* host) { return mk_bytes_shape(dt, 1, &n, host); }

/* A tensor holding vals rounded to dt; vals is overwritten with the values the tensor holds. */
static ds_tensor_t* mk_vals(int32_t dt, int64_t n, double* vals) {
    void* buf = malloc(n * dsize(dt) + 1);
    for (int64_t i = 0; i < n; ++i) {
        host_store(buf, dt, i, vals[i]);
        vals[i] = host_load(buf, dt, i);
    }
    ds_tensor_t* t = mk_bytes(dt, n, buf);
    free(buf);
    return t;
}

static ds_tensor_t* mk_poison(int32_t dt, int64_t n) { /* every byte 0xFF: nan in every float format */
    void* buf = malloc(n * dsize(dt) + 1);
    memset(buf, 0xFF, n * dsize(dt) + 1);
    ds_tensor_t* t = mk_bytes(dt, n, buf);
    free(buf);
    return t;
}

static void rd_bytes(ds_tensor_t* t, void* out) {
    ds_tensor_t* h = t;
    if (g_dev != DS_DEV_CPU) {
        CHECK_OK(ds_dev_synchronize(g_dev, 0));
        h = NULL;
        CHECK_OK(ds_tensor_clone(t, DS_DEV_CPU, 0, &h));
        if (!h) return;
    }
    uint64_t nb = 0;
    void* d = NULL;
    ds_tensor_get_nbytes(h, &nb);
    ds_tensor_get_data(h, &d);
    if (nb) memcpy(out, d, nb);
    if (h != t) ds_tensor_destroy(h);
}

static void rd_vals(ds_tensor_t* t, int32_t dt, int64_t n, double* out) {
    void* buf = malloc(n * dsize(dt) + 1);
    rd_bytes(t, buf);
    for (int64_t i = 0; i < n; ++i) out[i] = host_load(buf, dt, i);
    free(buf);
}

static const char* dt_name(int32_t dt) { return ds_dtype_name(dt); }

/* ---- optimizer reference (float64) --------------------------------------------------------------- */

static const char* kind_name(int32_t k) {
    static const char* names[] = {"Adam", "AdamW", "LAMB", "Lion", "SGD", "Adagrad"};
    return k >= 0 && k < 6 ? names[k] : "?";
}

typedef struct {
    int64_t n;
    double *p, *g, *m, *v, *tol; /* tol: extra per-element tolerance of p (Lion's sign near 0) */
} ref_t;

static void ref_step(const ds_optim_options_t* o, int64_t step, ref_t* ts, int nt) {
    const double lr = o->lr, b1 = o->beta1, b2 = o->beta2, eps = o->eps, wd = o->weight_decay, gs = o->grad_scale;
    const double bc1 = o->bias_correction ? 1.0 - pow(b1, (double)step) : 1.0;
    const double bc2 = o->bias_correction ? 1.0 - pow(b2, (double)step) : 1.0;
    for (int t = 0; t < nt; ++t) {
        ref_t* r = &ts[t];
        if (o->kind == DS_OPTIM_LAMB) {
            double sw = 0, su = 0;
            for (int64_t i = 0; i < r->n; ++i) {
                double g = r->g[i] * gs;
                r->m[i] = b1 * r->m[i] + (1 - b1) * g;
                r->v[i] = b2 * r->v[i] + (1 - b2) * g * g;
                double u = r->m[i] / (sqrt(r->v[i]) + eps) + wd * r->p[i];
                sw += r->p[i] * r->p[i];
                su += u * u;
            }
            double w = sqrt(sw), un = sqrt(su), ratio = 1.0;
            if (w != 0 && un != 0) ratio = fmin(fmax(w / un, (double)o->min_coeff), (double)o->max_coeff);
            double step_size = o->bias_correction ? lr * sqrt(bc2) / bc1 : lr;
            for (int64_t i = 0; i < r->n; ++i) {
                double u = r->m[i] / (sqrt(r->v[i]) + eps) + wd * r->p[i];
                r->p[i] -= step_size * ratio * u;
            }
            continue;
        }
        for (int64_t i = 0; i < r->n; ++i) {
            double g = r->g[i] * gs, p = r->p[i];
            switch (o->kind) {
                case DS_OPTIM_ADAM:
                case DS_OPTIM_ADAMW: {
                    if (o->kind == DS_OPTIM_ADAM) g += wd * p;
                    r->m[i] = b1 * r->m[i] + (1 - b1) * g;
                    r->v[i] = b2 * r->v[i] + (1 - b2) * g * g;
                    double den = sqrt(r->v[i]) / sqrt(bc2) + eps;
                    if (o->kind == DS_OPTIM_ADAMW) p *= 1 - lr * wd;
                    p -= lr / bc1 * r->m[i] / den;
                    break;
                }
                case DS_OPTIM_LION: {
                    double c = b1 * r->m[i] + (1 - b1) * g;
                    if (fabs(c) <= 1e-5 * (fabs(b1 * r->m[i]) + fabs((1 - b1) * g))) r->tol[i] += 2.0 * lr;
                    p = p * (1 - lr * wd) - lr * (c > 0 ? 1.0 : c < 0 ? -1.0 : 0.0);
                    r->m[i] = b2 * r->m[i] + (1 - b2) * g;
                    break;
                }
                case DS_OPTIM_SGD: {
                    g += wd * p;
                    if (o->momentum != 0) {
                        double buf = step == 1 ? g : o->momentum * r->m[i] + (1 - (double)o->dampening) * g;
                        r->m[i] = buf;
                        g = o->nesterov ? g + o->momentum * buf : buf;
                    }
                    p -= lr * g;
                    break;
                }
                case DS_OPTIM_ADAGRAD: {
                    g += wd * p;
                    double clr = lr / (1 + (double)(step - 1) * o->lr_decay);
                    r->m[i] += g * g;
                    p -= clr * g / (sqrt(r->m[i]) + eps);
                    break;
                }
                default: break;
            }
            r->p[i] = p;
        }
    }
}

static int uses_state1(const ds_optim_options_t* o) { return o->kind != DS_OPTIM_SGD || o->momentum != 0; }
static int uses_state2(const ds_optim_options_t* o) { return o->kind <= DS_OPTIM_LAMB; }

/* Hyper-parameters that make every term matter (variant picks SGD / bias-correction flavours). */
static void test_options(ds_optim_options_t* o, int32_t kind, int variant) {
    ds_optim_options_init(o, kind);
    o->grad_scale = (variant & 1) ? 0.5f : 1.0f;
    switch (kind) {
        case DS_OPTIM_ADAM:
        case DS_OPTIM_ADAMW:
            o->lr = 1e-2f; o->beta1 = 0.8f; o->beta2 = 0.95f; o->eps = 1e-6f; o->weight_decay = 0.1f;
            o->bias_correction = variant % 3 != 2;
            break;
        case DS_OPTIM_LAMB:
            o->lr = 1e-2f; o->beta1 = 0.9f; o->beta2 = 0.99f; o->eps = 1e-6f; o->weight_decay = 0.05f;
            o->bias_correction = variant % 3 != 2;
            break;
        case DS_OPTIM_LION: o->lr = 1e-3f; o->beta1 = 0.9f; o->beta2 = 0.99f; o->weight_decay = 0.1f; break;
        case DS_OPTIM_SGD:
            o->lr = 1e-2f; o->weight_decay = 0.01f;
            if (variant % 3 == 0) { o->momentum = 0.9f; o->dampening = 0.1f; }
            else if (variant % 3 == 1) { o->momentum = 0.8f; o->nesterov = 1; }
            break;
        case DS_OPTIM_ADAGRAD: o->lr = 1e-2f; o->lr_decay = 0.1f; o->weight_decay = 0.01f; break;
        default: break;
    }
}

typedef struct {
    int n;
    int64_t sizes[8];
    double pmag[8]; /* magnitude of the params of each tensor (LAMB's clamps) */
} sizes_t;

static int g_fail_prints;
static double g_worst; /* largest |error| / tolerance seen by run_optim_case (printed per ISA) */

static int within(double got, double ref, double tol) {
    double e = fabs(got - ref);
    if (tol > 0 && e / tol > g_worst) g_worst = e / tol;
    return e <= tol;
}

/* One configuration: kind, grad dtype, lp dtype (-1 none), the tensors; 3 steps against the reference.
 * Returns the number of mismatching elements. */
static long run_optim_case(const ds_optim_options_t* o, int32_t gdt, int32_t ldt, const sizes_t* sz, int unaligned,
                           const char* tag) {
    int nt = sz->n;
    g_unaligned = unaligned;
    ds_tensor_t *P[8], *G[8], *S1[8], *S2[8], *L[8];
    ref_t R[8];
    int s1 = uses_state1(o), s2 = uses_state2(o);
    for (int t = 0; t < nt; ++t) {
        int64_t n = sz->sizes[t];
        R[t].n = n;
        R[t].p = malloc(sizeof(double) * n);
        R[t].g = malloc(sizeof(double) * n * 3); /* three steps of gradients */
        R[t].m = malloc(sizeof(double) * n);
        R[t].v = malloc(sizeof(double) * n);
        R[t].tol = calloc(n, sizeof(double));
        for (int64_t i = 0; i < n; ++i) {
            R[t].p[i] = srand1() * sz->pmag[t];
            R[t].m[i] = o->kind == DS_OPTIM_ADAGRAD ? urand() + 1e-3 : srand1() * 0.1;
            R[t].v[i] = urand() * 0.01 + 1e-4;
        }
        for (int64_t i = 0; i < 3 * n; ++i) R[t].g[i] = quant(gdt, srand1() * (1.0 + 3.0 * urand()));
        P[t] = mk_vals(DS_DTYPE_F32, n, R[t].p);
        S1[t] = s1 ? mk_vals(DS_DTYPE_F32, n, R[t].m) : NULL;
        S2[t] = s2 ? mk_vals(DS_DTYPE_F32, n, R[t].v) : NULL;
        L[t] = ldt >= 0 ? mk_poison(ldt, n) : NULL;
        G[t] = NULL;
    }
    long bad = 0;
    for (int64_t step = 1; step <= 3; ++step) {
        ref_t cur[8];
        for (int t = 0; t < nt; ++t) {
            cur[t] = R[t];
            cur[t].g = R[t].g + (step - 1) * R[t].n;
            double* gv = malloc(sizeof(double) * R[t].n + 8);
            memcpy(gv, cur[t].g, sizeof(double) * R[t].n);
            if (G[t]) ds_tensor_destroy(G[t]);
            G[t] = mk_vals(gdt, R[t].n, gv);
            free(gv);
        }
        int32_t skipped = 7;
        CHECK_OK(ds_op_optim_step(o, step, P, nt, G, nt, S1, s1 ? nt : 0, S2, s2 ? nt : 0, L, ldt >= 0 ? nt : 0, &skipped));
        CHECK_EQ_INT(skipped, 0);
        ref_step(o, step, cur, nt);
    }
    for (int t = 0; t < nt; ++t) {
        int64_t n = R[t].n;
        double* got = malloc(sizeof(double) * n);
        float* pf = malloc(sizeof(float) * n);
        rd_bytes(P[t], pf);
        for (int64_t i = 0; i < n; ++i) {
            double ref = R[t].p[i], tol = 1e-6 * fabs(ref) + 5e-7 + R[t].tol[i];
            if (!within(pf[i], ref, tol)) {
                if (g_fail_prints++ < 10)
                    fprintf(stderr, "%s: tensor %d p[%lld] = %.9g, reference %.9g (tol %.3g)\n", tag, t, (long long)i, pf[i], ref, tol);
                ++bad;
            }
        }
        if (s1) {
            rd_vals(S1[t], DS_DTYPE_F32, n, got);
            for (int64_t i = 0; i < n; ++i) {
                double ref = R[t].m[i], tol = 2e-6 * fabs(ref) + 1e-6;
                if (!within(got[i], ref, tol)) {
                    if (g_fail_prints++ < 10)
                        fprintf(stderr, "%s: tensor %d state1[%lld] = %.9g, reference %.9g\n", tag, t, (long long)i, got[i], ref);
                    ++bad;
                }
            }
        }
        if (s2) {
            rd_vals(S2[t], DS_DTYPE_F32, n, got);
            for (int64_t i = 0; i < n; ++i) {
                double ref = R[t].v[i], tol = 2e-6 * fabs(ref) + 1e-12;
                if (!within(got[i], ref, tol)) {
                    if (g_fail_prints++ < 10)
                        fprintf(stderr, "%s: tensor %d state2[%lld] = %.9g, reference %.9g\n", tag, t, (long long)i, got[i], ref);
                    ++bad;
                }
            }
        }
        if (ldt >= 0) {
            /* The copy is exactly the RNE of the updated f32 param, and close to the reference. */
            uint16_t* lp = malloc(sizeof(uint16_t) * n);
            rd_bytes(L[t], lp);
            const fmt_t* f = fmt_of(ldt);
            for (int64_t i = 0; i < n; ++i) {
                uint32_t want = fmt_encode(f, fmt_round(f, (double)pf[i]));
                double lv = fmt_decode(f, lp[i]), ref = R[t].p[i];
                double ulp = ldexp(1.0, (int)floor(log2(fabs(ref) + 1e-30)) - (f->p - 1));
                if (lp[i] != want || !(fabs(lv - ref) <= ulp + 2e-6 * (fabs(ref) + 1.0) + R[t].tol[i])) {
                    if (g_fail_prints++ < 10)
                        fprintf(stderr, "%s: tensor %d params_lp[%lld] = 0x%04x (%.9g), expected 0x%04x from p %.9g (reference %.9g)\n",
                                tag, t, (long long)i, lp[i], lv, want, pf[i], ref);
                    ++bad;
                }
            }
            free(lp);
        }
        free(got);
        free(pf);
        ds_tensor_destroy(P[t]);
        ds_tensor_destroy(G[t]);
        ds_tensor_destroy(S1[t]);
        ds_tensor_destroy(S2[t]);
        ds_tensor_destroy(L[t]);
        free(R[t].p); free(R[t].g); free(R[t].m); free(R[t].v); free(R[t].tol);
    }
    free_owners();
    g_unaligned = 0;
    return bad;
}

static const sizes_t k_sizes[] = {
    {1, {1}, {1.0}},
    {1, {7}, {1.0}},
    {1, {1000}, {1.0}},
    {1, {100003}, {1.0}},
    {5, {5, 1, 33, 4097, 70001}, {1.0, 1e-4, 50.0, 1.0, 0.3}},
};
#define N_SIZES ((int)(sizeof k_sizes / sizeof k_sizes[0]))

/* Every kind x grad dtype x lp dtype on the given sizes (big: every size set, else the small ones
 * plus the multi-tensor set). */
static void optim_all_kinds(int big, const char* where) {
    static const int32_t gdts[] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16};
    static const int32_t ldts[] = {-1, DS_DTYPE_BF16, DS_DTYPE_F16};
    int variant = 0;
    for (int32_t kind = DS_OPTIM_ADAM; kind <= DS_OPTIM_ADAGRAD; ++kind) {
        for (int gi = 0; gi < 3; ++gi) {
            for (int li = 0; li < 3; ++li) {
                for (int s = 0; s < N_SIZES; ++s) {
                    if (!big && (s == 2 || s == 3) && (gi + li + s) % 2) continue;
                    /* A few cases run on the whole OpenMP team, the rest on one thread: an idle libgomp
                     * worker spins for milliseconds after each parallel region, which on the 2-core CI
                     * machine slows the single-threaded reference code of this test more than the ops. */
                    ds_op_set_num_threads(big && gi == li && s >= 3 ? 0 : 1);
                    ds_optim_options_t o;
                    test_options(&o, kind, variant++);
                    const int unaligned = s == N_SIZES - 1 && (gi + li) % 2 == 1;
                    char tag[192];
                    snprintf(tag, sizeof tag, "%s %s grads %s lp %s sizes#%d%s grad_scale %g bias_corr %d mom %g nesterov %d",
                             where, kind_name(kind), dt_name(gdts[gi]), ldts[li] < 0 ? "none" : dt_name(ldts[li]), s,
                             unaligned ? " unaligned" : "", (double)o.grad_scale, o.bias_correction, (double)o.momentum,
                             o.nesterov);
                    long bad = run_optim_case(&o, gdts[gi], ldts[li], &k_sizes[s], unaligned, tag);
                    if (bad) {
                        fprintf(stderr, "%s: %ld elements differ from the reference\n", tag, bad);
                        CHECK(bad == 0);
                    }
                }
            }
        }
    }
    ds_op_set_num_threads(0);
}

static const char* isa_name(int32_t isa) { return isa == DS_CPU_ISA_AVX512 ? "avx512" : isa == DS_CPU_ISA_AVX2 ? "avx2" : "scalar"; }

TEST(optim_steps_match_reference_on_every_cpu_isa) {
    int32_t orig = 0;
    CHECK_OK(ds_op_get_cpu_isa(&orig));
    for (int32_t isa = DS_CPU_ISA_AVX512; isa >= DS_CPU_ISA_SCALAR; --isa) {
        if (ds_op_set_cpu_isa(isa) != DS_OK) {
            printf("  cpu isa %s: not available on this CPU, skipped\n", isa_name(isa));
            continue;
        }
        char where[32];
        snprintf(where, sizeof where, "cpu/%s", isa_name(isa));
        g_worst = 0;
        optim_all_kinds(isa == orig, where);
        printf("  cpu isa %s: every optimizer kind checked (largest error %.2f of its tolerance)\n", isa_name(isa), g_worst);
    }
    CHECK_OK(ds_op_set_cpu_isa(orig));
}

TEST(optim_results_do_not_depend_on_thread_count) {
    /* AdamW with bf16 grads and lp copy, 1 thread vs the default team: identical bits. */
    int64_t n = 200003;
    double* p = malloc(sizeof(double) * n);
    double* g = malloc(sizeof(double) * n);
    float *out[2];
    uint16_t* lps[2];
    for (int64_t i = 0; i < n; ++i) { p[i] = srand1(); g[i] = srand1(); }
    int32_t orig = 0;
    ds_op_get_num_threads(&orig);
    for (int r = 0; r < 2; ++r) {
        CHECK_OK(ds_op_set_num_threads(r == 0 ? 1 : 0));
        double* pc = malloc(sizeof(double) * n);
        double* gc = malloc(sizeof(double) * n);
        memcpy(pc, p, sizeof(double) * n);
        memcpy(gc, g, sizeof(double) * n);
        ds_tensor_t* P = mk_vals(DS_DTYPE_F32, n, pc);
        ds_tensor_t* G = mk_vals(DS_DTYPE_BF16, n, gc);
        ds_tensor_t* M = mk_poison(DS_DTYPE_F32, n);
        ds_tensor_t* V = mk_poison(DS_DTYPE_F32, n);
        ds_tensor_fill(M, 0.0);
        ds_tensor_fill(V, 0.0);
        ds_tensor_t* L = mk_poison(DS_DTYPE_BF16, n);
        ds_optim_options_t o;
        ds_optim_options_init(&o, DS_OPTIM_ADAMW);
        CHECK_OK(ds_op_optim_step(&o, 1, &P, 1, &G, 1, &M, 1, &V, 1, &L, 1, NULL));
        out[r] = malloc(sizeof(float) * n);
        lps[r] = malloc(sizeof(uint16_t) * n);
        rd_bytes(P, out[r]);
        rd_bytes(L, lps[r]);
        ds_tensor_destroy(P); ds_tensor_destroy(G); ds_tensor_destroy(M); ds_tensor_destroy(V); ds_tensor_destroy(L);
        free(pc); free(gc);
    }
    CHECK(memcmp(out[0], out[1], sizeof(float) * n) == 0);
    CHECK(memcmp(lps[0], lps[1], sizeof(uint16_t) * n) == 0);
    CHECK_OK(ds_op_set_num_threads(0));
    (void)orig;
    for (int r = 0; r < 2; ++r) { free(out[r]); free(lps[r]); }
    free(p); free(g);
}

TEST(lamb_trust_ratio_is_one_for_zero_params) {
    /* ||p|| = 0: the ratio is 1 (not min_coeff), so p = -lr * sqrt(bc2)/bc1 * u with u = m/(sqrt(v)+eps). */
    int64_t n = 37;
    double p[37], g[37], m[37], v[37];
    for (int i = 0; i < n; ++i) { p[i] = 0.0; g[i] = srand1(); m[i] = 0.0; v[i] = 0.0; }
    ds_tensor_t* P = mk_vals(DS_DTYPE_F32, n, p);
    ds_tensor_t* G = mk_vals(DS_DTYPE_F32, n, g);
    ds_tensor_t* M = mk_vals(DS_DTYPE_F32, n, m);
    ds_tensor_t* V = mk_vals(DS_DTYPE_F32, n, v);
    ds_optim_options_t o;
    ds_optim_options_init(&o, DS_OPTIM_LAMB);
    o.lr = 0.1f;
    CHECK_OK(ds_op_optim_step(&o, 1, &P, 1, &G, 1, &M, 1, &V, 1, NULL, 0, NULL));
    float out[37];
    rd_bytes(P, out);
    double b1 = o.beta1, b2 = o.beta2, bc1 = 1 - b1, bc2 = 1 - b2, ss = (double)o.lr * sqrt(bc2) / bc1;
    for (int i = 0; i < n; ++i) {
        double mm = (1 - b1) * g[i], vv = (1 - b2) * g[i] * g[i];
        double want = -ss * (mm / (sqrt(vv) + (double)o.eps));
        CHECK_NEAR(out[i], want, 1e-6 * fabs(want) + 1e-9);
    }
    ds_tensor_destroy(P); ds_tensor_destroy(G); ds_tensor_destroy(M); ds_tensor_destroy(V);
}

/* check_finite: inf or nan in the last element of the last tensor writes nothing. */
static void skip_case(int32_t kind, int32_t gdt, double badval, float grad_scale, const char* where) {
    static const int64_t sizes[3] = {17, 40000, 1001};
    ds_optim_options_t o;
    test_options(&o, kind, 0);
    o.grad_scale = grad_scale;
    int s1 = uses_state1(&o), s2 = uses_state2(&o);
    ds_tensor_t *P[3], *G[3], *S1[3], *S2[3], *L[3];
    unsigned char* before[3][4];
    for (int t = 0; t < 3; ++t) {
        int64_t n = sizes[t];
        double* x = malloc(sizeof(double) * n);
        for (int64_t i = 0; i < n; ++i) x[i] = srand1();
        P[t] = mk_vals(DS_DTYPE_F32, n, x);
        for (int64_t i = 0; i < n; ++i) x[i] = srand1();
        if (t == 2) x[n - 1] = badval;
        G[t] = mk_vals(gdt, n, x);
        for (int64_t i = 0; i < n; ++i) x[i] = urand() + 0.01;
        S1[t] = s1 ? mk_vals(DS_DTYPE_F32, n, x) : NULL;
        S2[t] = s2 ? mk_vals(DS_DTYPE_F32, n, x) : NULL;
        L[t] = mk_poison(DS_DTYPE_BF16, n);
        ds_tensor_t* list[4] = {P[t], S1[t], S2[t], L[t]};
        for (int k = 0; k < 4; ++k) {
            before[t][k] = malloc(n * 4);
            if (list[k]) rd_bytes(list[k], before[t][k]);
        }
        free(x);
    }
    char tag[128];
    snprintf(tag, sizeof tag, "%s %s grads %s bad %g grad_scale %g", where, kind_name(kind), dt_name(gdt), badval, (double)grad_scale);
    int32_t skipped = 0;
    CHECK_OK(ds_op_optim_step(&o, 2, P, 3, G, 3, S1, s1 ? 3 : 0, S2, s2 ? 3 : 0, L, 3, &skipped));
    if (skipped != 1) fprintf(stderr, "%s: skipped = %d\n", tag, skipped);
    CHECK_EQ_INT(skipped, 1);
    /* NULL skipped is fine too. */
    CHECK_OK(ds_op_optim_step(&o, 2, P, 3, G, 3, S1, s1 ? 3 : 0, S2, s2 ? 3 : 0, L, 3, NULL));
    for (int t = 0; t < 3; ++t) {
        int64_t n = sizes[t];
        ds_tensor_t* list[4] = {P[t], S1[t], S2[t], L[t]};
        size_t nbytes[4] = {(size_t)n * 4, (size_t)n * 4, (size_t)n * 4, (size_t)n * 2};
        for (int k = 0; k < 4; ++k) {
            if (!list[k]) continue;
            unsigned char* now = malloc(n * 4);
            rd_bytes(list[k], now);
            if (memcmp(now, before[t][k], nbytes[k]) != 0) {
                fprintf(stderr, "%s: tensor %d buffer %d was written although the step was skipped\n", tag, t, k);
                CHECK(0);
            }
            free(now);
        }
    }
    /* check_finite = 0: the step runs; the bad element's param becomes nan, the others move. */
    if (badval != badval || isinf(badval)) {
        o.check_finite = 0;
        skipped = 5;
        CHECK_OK(ds_op_optim_step(&o, 2, P, 3, G, 3, S1, s1 ? 3 : 0, S2, s2 ? 3 : 0, L, 3, &skipped));
        CHECK_EQ_INT(skipped, 0);
        float* now = malloc(sizes[2] * 4);
        rd_bytes(P[2], now);
        CHECK(isnan(now[sizes[2] - 1]) || isinf(now[sizes[2] - 1]) || kind == DS_OPTIM_LION || kind == DS_OPTIM_LAMB);
        CHECK(memcmp(now, before[2][0], 4) != 0);
        free(now);
    }
    for (int t = 0; t < 3; ++t) {
        for (int k = 0; k < 4; ++k) free(before[t][k]);
        ds_tensor_destroy(P[t]); ds_tensor_destroy(G[t]); ds_tensor_destroy(S1[t]); ds_tensor_destroy(S2[t]); ds_tensor_destroy(L[t]);
    }
}

static void skip_all(const char* where) {
    for (int32_t kind = DS_OPTIM_ADAM; kind <= DS_OPTIM_ADAGRAD; ++kind) {
        skip_case(kind, DS_DTYPE_F32, INFINITY, 1.0f, where);
        skip_case(kind, DS_DTYPE_BF16, NAN, 1.0f, where);
        skip_case(kind, DS_DTYPE_F16, -INFINITY, 0.5f, where);
        /* finite grad, infinite after scaling: 60000 (f16) * 1e35 overflows f32 */
        skip_case(kind, DS_DTYPE_F16, 60000.0, 1e35f, where);
    }
}

TEST(check_finite_skips_the_whole_step) {
    int32_t orig = 0;
    CHECK_OK(ds_op_get_cpu_isa(&orig));
    for (int32_t isa = DS_CPU_ISA_AVX512; isa >= DS_CPU_ISA_SCALAR; --isa) {
        if (ds_op_set_cpu_isa(isa) != DS_OK) continue;
        char where[32];
        snprintf(where, sizeof where, "cpu/%s", isa_name(isa));
        skip_all(where);
    }
    CHECK_OK(ds_op_set_cpu_isa(orig));
}

TEST(optim_options_defaults) {
    ds_optim_options_t o;
    ds_optim_options_init(&o, DS_OPTIM_ADAM);
    CHECK_EQ_INT(o.struct_size, sizeof o);
    CHECK_EQ_INT(o.abi_version, DS_ABI_VERSION);
    CHECK(o.lr == 1e-3f && o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f && o.weight_decay == 0.0f);
    CHECK(o.bias_correction == 1 && o.grad_scale == 1.0f && o.check_finite == 1);
    ds_optim_options_init(&o, DS_OPTIM_ADAMW);
    CHECK(o.kind == DS_OPTIM_ADAMW && o.lr == 1e-3f && o.weight_decay == 0.01f && o.eps == 1e-8f);
    ds_optim_options_init(&o, DS_OPTIM_LAMB);
    CHECK(o.lr == 1e-3f && o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f && o.weight_decay == 0.0f);
    CHECK(o.max_coeff == 10.0f && o.min_coeff == 0.01f && o.bias_correction == 1);
    ds_optim_options_init(&o, DS_OPTIM_LION);
    CHECK(o.lr == 1e-4f && o.beta1 == 0.9f && o.beta2 == 0.99f && o.weight_decay == 0.0f);
    ds_optim_options_init(&o, DS_OPTIM_SGD);
    CHECK(o.lr == 1e-3f && o.momentum == 0.0f && o.dampening == 0.0f && o.nesterov == 0 && o.weight_decay == 0.0f);
    ds_optim_options_init(&o, DS_OPTIM_ADAGRAD);
    CHECK(o.lr == 1e-2f && o.lr_decay == 0.0f && o.eps == 1e-10f && o.weight_decay == 0.0f);
    CHECK(o.grad_scale == 1.0f && o.check_finite == 1 && o.bias_correction == 1);
    memset(&o, 0x5A, sizeof o);
    ds_optim_options_init(&o, 42);
    CHECK_EQ_INT(o.struct_size, sizeof o);
    CHECK_EQ_INT(o.kind, 42);
    ds_optim_options_init(NULL, DS_OPTIM_ADAM); /* no crash */
}

/* ---- bad arguments ---------------------------------------------------------------------------- */

typedef struct {
    ds_tensor_t *P[3], *G[3], *M[3], *V[3], *L[3];
} set_t;

static void mk_set(set_t* s, int32_t gdt) {
    for (int t = 0; t < 3; ++t) {
        double x[10];
        for (int i = 0; i < 10; ++i) x[i] = srand1();
        s->P[t] = mk_vals(DS_DTYPE_F32, 10, x);
        s->G[t] = mk_vals(gdt, 10, x);
        s->M[t] = mk_vals(DS_DTYPE_F32, 10, x);
        s->V[t] = mk_vals(DS_DTYPE_F32, 10, x);
        s->L[t] = mk_vals(DS_DTYPE_BF16, 10, x);
    }
}

static void free_set(set_t* s) {
    for (int t = 0; t < 3; ++t) {
        ds_tensor_destroy(s->P[t]); ds_tensor_destroy(s->G[t]); ds_tensor_destroy(s->M[t]);
        ds_tensor_destroy(s->V[t]); ds_tensor_destroy(s->L[t]);
    }
}

#define EXPECT_ERR(expr, status, needle)        \
    do {                                        \
        CHECK_STATUS(expr, status);             \
        CHECK_CONTAINS(ds_last_error(), needle); \
    } while (0)

static void bad_arguments_on(void) {
    set_t s;
    mk_set(&s, DS_DTYPE_F32);
    ds_optim_options_t o;
    ds_optim_options_init(&o, DS_OPTIM_ADAM);
    int32_t sk = 0;
    /* the good call works */
    CHECK_OK(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, s.L, 3, &sk));
    /* list lengths */
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 2, NULL, 0, &sk), DS_ERR_INVALID_ARG, "n_state2=2");
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 2, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "n_grads=2");
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, s.M, 0, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "n_state1=0");
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, s.L, 1, &sk), DS_ERR_INVALID_ARG, "n_params_lp=1");
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, NULL, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "grads is NULL");
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, -1, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "n_params=-1");
    ds_tensor_t* holes[3] = {s.G[0], NULL, s.G[2]};
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, holes, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_HANDLE, "grads[1]");
    /* Lion has no second state; SGD without momentum has no buffer */
    ds_optim_options_t lion;
    ds_optim_options_init(&lion, DS_OPTIM_LION);
    EXPECT_ERR(ds_op_optim_step(&lion, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "n_state2=3");
    ds_optim_options_t sgd;
    ds_optim_options_init(&sgd, DS_OPTIM_SGD);
    EXPECT_ERR(ds_op_optim_step(&sgd, 1, s.P, 3, s.G, 3, s.M, 3, NULL, 0, NULL, 0, &sk), DS_ERR_INVALID_ARG, "n_state1=3");
    CHECK_OK(ds_op_optim_step(&sgd, 1, s.P, 3, s.G, 3, NULL, 0, NULL, 0, NULL, 0, &sk));
    sgd.nesterov = 1;
    EXPECT_ERR(ds_op_optim_step(&sgd, 1, s.P, 3, s.G, 3, NULL, 0, NULL, 0, NULL, 0, &sk), DS_ERR_INVALID_ARG, "opt->nesterov");
    /* dtypes */
    ds_tensor_t* swap[3];
    memcpy(swap, s.P, sizeof swap);
    swap[1] = s.L[1];
    EXPECT_ERR(ds_op_optim_step(&o, 1, swap, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "params[1] has dtype bf16");
    memcpy(swap, s.M, sizeof swap);
    swap[2] = s.L[2];
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, swap, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "state1[2]");
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, s.P, 3, &sk), DS_ERR_INVALID_ARG, "params_lp[0] has dtype f32");
    memcpy(swap, s.G, sizeof swap);
    swap[2] = s.L[2]; /* bf16 grads beside f32 grads */
    EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, swap, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "grads[2] has dtype bf16");
    {
        int64_t n10 = 10;
        int32_t ibuf[10] = {0};
        ds_tensor_t* gi = mk_bytes_shape(DS_DTYPE_I32, 1, &n10, ibuf);
        memcpy(swap, s.G, sizeof swap);
        swap[0] = gi;
        EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, swap, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "grads[0] has dtype i32");
        ds_tensor_destroy(gi);
    }
    /* shapes */
    {
        int64_t shp[2] = {2, 5}, n11 = 11;
        float z[11] = {0};
        ds_tensor_t* g2 = mk_bytes_shape(DS_DTYPE_F32, 2, shp, z);
        ds_tensor_t* g11 = mk_bytes_shape(DS_DTYPE_F32, 1, &n11, z);
        memcpy(swap, s.G, sizeof swap);
        swap[1] = g2;
        EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, swap, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "grads[1] has shape [2, 5]");
        memcpy(swap, s.V, sizeof swap);
        swap[2] = g11;
        EXPECT_ERR(ds_op_optim_step(&o, 1, s.P, 3, s.G, 3, s.M, 3, swap, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "state2[2] has shape [11]");
        ds_tensor_destroy(g2);
        ds_tensor_destroy(g11);
    }
    /* options */
    EXPECT_ERR(ds_op_optim_step(NULL, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "opt is NULL");
    EXPECT_ERR(ds_op_optim_step(&o, 0, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "step=0");
    ds_optim_options_t bad = o;
    bad.kind = 17;
    EXPECT_ERR(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "opt->kind=17");
    ds_optim_options_init(&bad, 17);
    EXPECT_ERR(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "opt->kind=17");
    bad = o;
    bad.beta2 = 1.0f;
    EXPECT_ERR(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "opt->beta2=1");
    bad = o;
    bad.lr = -1.0f;
    EXPECT_ERR(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_INVALID_ARG, "opt->lr=-1");
    bad = o;
    bad.struct_size = 4;
    EXPECT_ERR(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_VERSION, "opt->struct_size=4");
    bad = o;
    bad.abi_version = 99;
    EXPECT_ERR(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk), DS_ERR_VERSION, "opt->abi_version=99");
    /* an older, shorter struct (ending after grad_scale) gets the default check_finite = 1 */
    bad = o;
    bad.struct_size = (uint32_t)((char*)&bad.check_finite - (char*)&bad);
    bad.check_finite = 0;
    CHECK_OK(ds_op_optim_step(&bad, 1, s.P, 3, s.G, 3, s.M, 3, s.V, 3, NULL, 0, &sk));
    /* nothing given: a no-op */
    sk = 9;
    CHECK_OK(ds_op_optim_step(&o, 1, NULL, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, &sk));
    CHECK_EQ_INT(sk, 0);
    /* list ops */
    double nrm = 0;
    int32_t flag = 0;
    EXPECT_ERR(ds_op_global_norm(s.P, 3, NULL), DS_ERR_INVALID_ARG, "out");
    EXPECT_ERR(ds_op_global_norm(NULL, 2, &nrm), DS_ERR_INVALID_ARG, "tensors is NULL");
    EXPECT_ERR(ds_op_find_nonfinite(s.P, 3, NULL), DS_ERR_INVALID_ARG, "out");
    {
        int64_t n10 = 10;
        int32_t ibuf[10] = {0};
        ds_tensor_t* ti = mk_bytes_shape(DS_DTYPE_I32, 1, &n10, ibuf);
        ds_tensor_t* mixed[2] = {s.P[0], ti};
        EXPECT_ERR(ds_op_global_norm(mixed, 2, &nrm), DS_ERR_INVALID_ARG, "tensors[1] has dtype i32");
        EXPECT_ERR(ds_op_scale(mixed, 2, 2.0), DS_ERR_INVALID_ARG, "tensors[1]");
        EXPECT_ERR(ds_op_find_nonfinite(mixed, 2, &flag), DS_ERR_INVALID_ARG, "tensors[1]");
        EXPECT_ERR(ds_op_cast(ti, s.P[0], 1.0f), DS_ERR_INVALID_ARG, "src has dtype i32");
        EXPECT_ERR(ds_op_cast(s.P[0], ti, 1.0f), DS_ERR_INVALID_ARG, "dst has dtype i32");
        ds_tensor_destroy(ti);
    }
    {
        int64_t n11 = 11;
        float z[11] = {0};
        ds_tensor_t* t11 = mk_bytes_shape(DS_DTYPE_F32, 1, &n11, z);
        EXPECT_ERR(ds_op_cast(s.P[0], t11, 1.0f), DS_ERR_INVALID_ARG, "dst (f32[11]");
        ds_tensor_destroy(t11);
    }
    EXPECT_ERR(ds_op_cast(NULL, s.P[0], 1.0f), DS_ERR_INVALID_HANDLE, "src");
    nrm = 5;
    CHECK_OK(ds_op_global_norm(NULL, 0, &nrm));
    CHECK(nrm == 0.0);
    flag = 5;
    CHECK_OK(ds_op_find_nonfinite(NULL, 0, &flag));
    CHECK_EQ_INT(flag, 0);
    CHECK_OK(ds_op_scale(NULL, 0, 3.0));
    free_set(&s);
}

TEST(bad_arguments_name_the_argument) { bad_arguments_on(); }

/* ---- global norm, scale, find_nonfinite --------------------------------------------------------- */

static void list_ops_on(double norm_rtol, const char* where) {
    static const int32_t dts[4] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64};
    static const int64_t sizes[5] = {1, 7, 1000, 100003, 65537};
    ds_tensor_t* T[5];
    double* vals[5];
    int32_t tdt[5];
    double sumsq = 0;
    for (int t = 0; t < 5; ++t) {
        tdt[t] = dts[(t + (int)(next_u64() % 4)) % 4];
        vals[t] = malloc(sizeof(double) * sizes[t]);
        for (int64_t i = 0; i < sizes[t]; ++i) vals[t][i] = srand1() * (t + 1);
        T[t] = mk_vals(tdt[t], sizes[t], vals[t]);
        for (int64_t i = 0; i < sizes[t]; ++i) sumsq += vals[t][i] * vals[t][i];
    }
    double nrm = -1;
    CHECK_OK(ds_op_global_norm(T, 5, &nrm));
    if (!(fabs(nrm - sqrt(sumsq)) <= norm_rtol * sqrt(sumsq)))
        fprintf(stderr, "%s: global norm %.17g, reference %.17g\n", where, nrm, sqrt(sumsq));
    CHECK_NEAR(nrm, sqrt(sumsq), norm_rtol * sqrt(sumsq));
    for (int t = 0; t < 5; ++t) { /* each dtype alone, one tensor */
        double s1 = 0;
        for (int64_t i = 0; i < sizes[t]; ++i) s1 += vals[t][i] * vals[t][i];
        CHECK_OK(ds_op_global_norm(&T[t], 1, &nrm));
        CHECK_NEAR(nrm, sqrt(s1), norm_rtol * sqrt(s1));
    }
    int32_t flag = 7;
    CHECK_OK(ds_op_find_nonfinite(T, 5, &flag));
    CHECK_EQ_INT(flag, 0);

    /* scale: every element becomes RNE(x * alpha) in its dtype */
    double alpha = -0.3 - urand();
    CHECK_OK(ds_op_scale(T, 5, alpha));
    for (int t = 0; t < 5; ++t) {
        double* got = malloc(sizeof(double) * sizes[t]);
        rd_vals(T[t], tdt[t], sizes[t], got);
        long bad = 0;
        for (int64_t i = 0; i < sizes[t]; ++i) {
            double want = quant(tdt[t], vals[t][i] * alpha);
            if (got[i] != want) {
                if (bad++ < 3)
                    fprintf(stderr, "%s: scale %s[%lld]: %.17g * %.17g = %.17g, expected %.17g\n", where, dt_name(tdt[t]),
                            (long long)i, vals[t][i], alpha, got[i], want);
            }
        }
        CHECK(bad == 0);
        free(got);
    }

    /* non-finite values: inf in the middle of the 4th tensor, then nan in a bf16 one, inf in f64 */
    for (int c = 0; c < 3; ++c) {
        int32_t dt = c == 0 ? DS_DTYPE_F32 : c == 1 ? DS_DTYPE_BF16 : DS_DTYPE_F64;
        int64_t n = 5001;
        double* x = malloc(sizeof(double) * n);
        for (int64_t i = 0; i < n; ++i) x[i] = srand1();
        x[c == 0 ? 2500 : n - 1] = c == 1 ? NAN : -INFINITY;
        ds_tensor_t* bad = mk_vals(dt, n, x);
        ds_tensor_t* lst[3] = {T[0], T[2], bad};
        flag = 0;
        CHECK_OK(ds_op_find_nonfinite(lst, 3, &flag));
        CHECK_EQ_INT(flag, 1);
        CHECK_OK(ds_op_global_norm(lst, 3, &nrm));
        CHECK(c == 1 ? isnan(nrm) : (isinf(nrm) || isnan(nrm)));
        ds_tensor_destroy(bad);
        free(x);
    }
    /* the largest finite values are finite */
    {
        double big[3] = {65504.0, -65504.0, 1.0};
        ds_tensor_t* h = mk_vals(DS_DTYPE_F16, 3, big);
        flag = 9;
        CHECK_OK(ds_op_find_nonfinite(&h, 1, &flag));
        CHECK_EQ_INT(flag, 0);
        ds_tensor_destroy(h);
    }
    for (int t = 0; t < 5; ++t) { ds_tensor_destroy(T[t]); free(vals[t]); }
}

TEST(list_ops_match_reference) {
    int32_t orig = 0;
    CHECK_OK(ds_op_get_cpu_isa(&orig));
    for (int32_t isa = DS_CPU_ISA_AVX512; isa >= DS_CPU_ISA_SCALAR; --isa) {
        if (ds_op_set_cpu_isa(isa) != DS_OK) continue;
        char where[32];
        snprintf(where, sizeof where, "cpu/%s", isa_name(isa));
        list_ops_on(1e-12, where);
    }
    CHECK_OK(ds_op_set_cpu_isa(orig));
}

TEST(global_norm_is_deterministic_across_thread_counts) {
    int64_t n = 300001;
    double* x = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < n; ++i) x[i] = srand1();
    ds_tensor_t* t = mk_vals(DS_DTYPE_F32, n, x);
    double a = 0, b = 0;
    CHECK_OK(ds_op_set_num_threads(1));
    CHECK_OK(ds_op_global_norm(&t, 1, &a));
    CHECK_OK(ds_op_set_num_threads(0));
    CHECK_OK(ds_op_global_norm(&t, 1, &b));
    CHECK(a == b);
    ds_tensor_destroy(t);
    free(x);
}

/* ---- cast -------------------------------------------------------------------------------------- */

static const int32_t k_cast_dts[6] = {DS_DTYPE_F32, DS_DTYPE_F16, DS_DTYPE_BF16, DS_DTYPE_F64, DS_DTYPE_FP8_E4M3, DS_DTYPE_FP8_E5M2};

/* dst element expected from src value x (already a value of src's dtype) times scale. */
static double cast_ref(int32_t ddt, double x, float scale) {
    double v = x * (double)scale;
    if (ddt == DS_DTYPE_F64) return v;
    if (ddt == DS_DTYPE_F32) return (double)(float)v;
    return fmt_round(fmt_of(ddt), v);
}

static int same_val(double a, double b) { return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b)); }

static void cast_all_on(const char* where) {
    int64_t n = 20011;
    for (int si = 0; si < 6; ++si) {
        for (int di = 0; di < 6; ++di) {
            int32_t sdt = k_cast_dts[si], ddt = k_cast_dts[di];
            double* x = malloc(sizeof(double) * n);
            for (int64_t i = 0; i < n; ++i) {
                double mag = ldexp(1.0, (int)(next_u64() % 40) - 24); /* 2^-24 .. 2^15 */
                x[i] = srand1() * mag;
            }
            /* special values at the front */
            double specials[] = {0.0, -0.0, 448.0, -448.0, 464.0, 480.0, 57344.0, 61440.0, 65504.0, 65520.0, 1e6,
                                 INFINITY, -INFINITY, NAN, ldexp(1.0, -10), 1.5 * ldexp(1.0, -10), ldexp(1.0, -17),
                                 3.0 * ldexp(1.0, -17), ldexp(1.0, -25), 1.0 + ldexp(1.0, -8)};
            int ns = (int)(sizeof specials / sizeof specials[0]);
            for (int k = 0; k < ns; ++k) x[k] = specials[k];
            ds_tensor_t* S = mk_vals(sdt, n, x); /* x now holds src values */
            ds_tensor_t* D = mk_poison(ddt, n);
            for (int sc = 0; sc < 2; ++sc) {
                float scale = sc == 0 ? 1.0f : 0.3711f;
                CHECK_OK(ds_op_cast(S, D, scale));
                double* got = malloc(sizeof(double) * n);
                rd_vals(D, ddt, n, got);
                long bad = 0;
                for (int64_t i = 0; i < n; ++i) {
                    double want = cast_ref(ddt, x[i], scale);
                    if (!same_val(got[i], want)) {
                        if (bad++ < 3)
                            fprintf(stderr, "%s: cast %s -> %s scale %g: [%lld] %.17g -> %.17g, expected %.17g\n", where,
                                    dt_name(sdt), dt_name(ddt), (double)scale, (long long)i, x[i], got[i], want);
                    }
                }
                CHECK(bad == 0);
                free(got);
            }
            ds_tensor_destroy(S);
            ds_tensor_destroy(D);
            free(x);
        }
    }
}

static void fp8_round_trip_on(const char* where) {
    for (int f = 0; f < 2; ++f) {
        int32_t dt = f == 0 ? DS_DTYPE_FP8_E4M3 : DS_DTYPE_FP8_E5M2;
        uint8_t codes[256], back[256];
        for (int i = 0; i < 256; ++i) codes[i] = (uint8_t)i;
        ds_tensor_t* S = mk_bytes(dt, 256, codes);
        ds_tensor_t* F = mk_poison(DS_DTYPE_F32, 256);
        ds_tensor_t* B = mk_poison(dt, 256);
        CHECK_OK(ds_op_cast(S, F, 1.0f));
        CHECK_OK(ds_op_cast(F, B, 1.0f));
        float vals[256];
        rd_bytes(F, vals);
        rd_bytes(B, back);
        for (int i = 0; i < 256; ++i) {
            double want = fmt_decode(fmt_of(dt), (uint32_t)i);
            if (!same_val(vals[i], want)) {
                fprintf(stderr, "%s: %s code 0x%02x -> %.9g, expected %.9g\n", where, dt_name(dt), i, vals[i], want);
                CHECK(0);
            }
            uint8_t want_code = (uint8_t)i;
            if (isinf(want)) want_code = (uint8_t)((i & 0x80) | 0x7b); /* E5M2 inf saturates to 57344 */
            if (isnan(want)) CHECK(isnan(fmt_decode(fmt_of(dt), back[i])));
            else if (back[i] != want_code) {
                fprintf(stderr, "%s: %s round trip 0x%02x -> 0x%02x (expected 0x%02x)\n", where, dt_name(dt), i, back[i], want_code);
                CHECK(0);
            }
        }
        ds_tensor_destroy(S); ds_tensor_destroy(F); ds_tensor_destroy(B);
    }
    /* saturation and nan, explicitly */
    double in[8] = {500.0, -1e9, INFINITY, -INFINITY, NAN, 449.0, 465.0, 0.0009765625};
    ds_tensor_t* S = mk_vals(DS_DTYPE_F32, 8, in);
    ds_tensor_t* E4 = mk_poison(DS_DTYPE_FP8_E4M3, 8);
    ds_tensor_t* E5 = mk_poison(DS_DTYPE_FP8_E5M2, 8);
    CHECK_OK(ds_op_cast(S, E4, 1.0f));
    CHECK_OK(ds_op_cast(S, E5, 1000.0f));
    uint8_t e4[8], e5[8];
    rd_bytes(E4, e4);
    rd_bytes(E5, e5);
    CHECK_EQ_INT(e4[0], 0x7e); CHECK_EQ_INT(e4[1], 0xfe); CHECK_EQ_INT(e4[2], 0x7e); CHECK_EQ_INT(e4[3], 0xfe);
    CHECK_EQ_INT(e4[4] & 0x7f, 0x7f); CHECK_EQ_INT(e4[5], 0x7e); CHECK_EQ_INT(e4[6], 0x7e);
    CHECK_EQ_INT(e4[7], 0x00); /* 2^-10 is half the smallest subnormal: ties to even -> 0 */
    CHECK_EQ_INT(e5[0], 0x7b); CHECK_EQ_INT(e5[1], 0xfb); CHECK_EQ_INT(e5[2], 0x7b); CHECK_EQ_INT(e5[3], 0xfb);
    CHECK(isnan(fmt_decode(&FMT_E5M2, e5[4])));
    ds_tensor_destroy(S); ds_tensor_destroy(E4); ds_tensor_destroy(E5);
}

TEST(cast_every_pair_matches_reference) { cast_all_on("cpu"); }
TEST(fp8_round_trip_saturation_and_nan) { fp8_round_trip_on("cpu"); }

/* ---- CUDA ------------------------------------------------------------------------------------- */

TEST(cuda_optim_and_utilities) {
    if (g_n_cuda <= 0) {
        printf("  CUDA part not run: no CUDA device (ds_dev_count(DS_DEV_CUDA) = %d)\n", g_n_cuda);
        return;
    }
    g_dev = DS_DEV_CUDA;
    g_worst = 0;
    optim_all_kinds(1, "cuda");
    printf("  cuda: every optimizer kind checked (largest error %.2f of its tolerance)\n", g_worst);
    skip_all("cuda");
    bad_arguments_on();
    list_ops_on(1e-5, "cuda");
    cast_all_on("cuda");
    fp8_round_trip_on("cuda");
    /* mixed devices */
    {
        double x[10];
        for (int i = 0; i < 10; ++i) x[i] = srand1();
        ds_tensor_t* P = mk_vals(DS_DTYPE_F32, 10, x);
        ds_tensor_t* M = mk_vals(DS_DTYPE_F32, 10, x);
        ds_tensor_t* V = mk_vals(DS_DTYPE_F32, 10, x);
        g_dev = DS_DEV_CPU;
        ds_tensor_t* G = mk_vals(DS_DTYPE_F32, 10, x);
        g_dev = DS_DEV_CUDA;
        ds_optim_options_t o;
        ds_optim_options_init(&o, DS_OPTIM_ADAMW);
        EXPECT_ERR(ds_op_optim_step(&o, 1, &P, 1, &G, 1, &M, 1, &V, 1, NULL, 0, NULL), DS_ERR_DEVICE_MISMATCH, "grads[0]");
        ds_tensor_t* two[2] = {P, G};
        double nrm;
        EXPECT_ERR(ds_op_global_norm(two, 2, &nrm), DS_ERR_DEVICE_MISMATCH, "tensors[1]");
        EXPECT_ERR(ds_op_cast(P, G, 1.0f), DS_ERR_DEVICE_MISMATCH, "dst");
        ds_tensor_destroy(P); ds_tensor_destroy(G); ds_tensor_destroy(M); ds_tensor_destroy(V);
    }
    /* many tensors in one call (more than one launch's table) */
    {
        ds_optim_options_t o;
        test_options(&o, DS_OPTIM_ADAMW, 0);
        sizes_t sz = {8, {3, 1000, 17, 64, 4096, 5, 100, 9}, {1, 1, 1, 1, 1, 1, 1, 1}};
        long bad = run_optim_case(&o, DS_DTYPE_BF16, DS_DTYPE_BF16, &sz, 0, "cuda many");
        CHECK(bad == 0);
        int n = 1000;
        ds_tensor_t** P = malloc(sizeof(ds_tensor_t*) * n);
        ds_tensor_t** G = malloc(sizeof(ds_tensor_t*) * n);
        ds_tensor_t** M = malloc(sizeof(ds_tensor_t*) * n);
        ds_tensor_t** V = malloc(sizeof(ds_tensor_t*) * n);
        double** pr = malloc(sizeof(double*) * n);
        double** gr = malloc(sizeof(double*) * n);
        for (int t = 0; t < n; ++t) {
            int64_t len = 1 + t % 37;
            pr[t] = malloc(sizeof(double) * len);
            gr[t] = malloc(sizeof(double) * len);
            double z[40] = {0};
            for (int64_t i = 0; i < len; ++i) { pr[t][i] = srand1(); gr[t][i] = srand1(); }
            P[t] = mk_vals(DS_DTYPE_F32, len, pr[t]);
            G[t] = mk_vals(DS_DTYPE_F32, len, gr[t]);
            M[t] = mk_vals(DS_DTYPE_F32, len, z);
            V[t] = mk_vals(DS_DTYPE_F32, len, z);
        }
        CHECK_OK(ds_op_optim_step(&o, 1, P, n, G, n, M, n, V, n, NULL, 0, NULL));
        long wrong = 0;
        for (int t = 0; t < n; ++t) {
            int64_t len = 1 + t % 37;
            float got[40];
            rd_bytes(P[t], got);
            for (int64_t i = 0; i < len; ++i) {
                double g = gr[t][i] * o.grad_scale, m = (1 - (double)o.beta1) * g, v = (1 - (double)o.beta2) * g * g;
                double p = pr[t][i] * (1 - (double)o.lr * o.weight_decay);
                double bc1 = 1 - (double)o.beta1, bc2 = 1 - (double)o.beta2;
                p -= (double)o.lr / bc1 * m / (sqrt(v) / sqrt(bc2) + (double)o.eps);
                if (!(fabs(got[i] - p) <= 2e-6 * (fabs(p) + 1))) ++wrong;
            }
            ds_tensor_destroy(P[t]); ds_tensor_destroy(G[t]); ds_tensor_destroy(M[t]); ds_tensor_destroy(V[t]);
            free(pr[t]); free(gr[t]);
        }
        CHECK(wrong == 0);
        free(P); free(G); free(M); free(V); free(pr); free(gr);
    }
    g_dev = DS_DEV_CPU;
    printf("  CUDA part run on %d device(s)\n", g_n_cuda);
}

int main(void) {
    const char* env = getenv("DSABI_TEST_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    printf("seed %llu (DSABI_TEST_SEED=%llu reproduces this run)\n", (unsigned long long)seed, (unsigned long long)seed);
    g_rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    if (!g_rng) g_rng = 1;
    init_formats();
    CHECK_OK(ds_dev_count(DS_DEV_CUDA, &g_n_cuda));
    int32_t isa = 0, nth = 0;
    ds_op_get_cpu_isa(&isa);
    ds_op_get_num_threads(&nth);
    printf("cpu isa %s, %d threads, CUDA devices: %d\n", isa_name(isa), nth, g_n_cuda);
    RUN(optim_options_defaults);
    RUN(optim_steps_match_reference_on_every_cpu_isa);
    RUN(optim_results_do_not_depend_on_thread_count);
    RUN(lamb_trust_ratio_is_one_for_zero_params);
    RUN(check_finite_skips_the_whole_step);
    RUN(bad_arguments_name_the_argument);
    RUN(list_ops_match_reference);
    RUN(global_norm_is_deterministic_across_thread_counts);
    RUN(cast_every_pair_matches_reference);
    RUN(fp8_round_trip_saturation_and_nan);
    RUN(cuda_optim_and_utilities);
    return minitest_report();
}
